"""Controller bench: batch hand-off latency, and the controller with 1,000 Applications.

Runs on the local control plane (started here, or an existing one with --kubeconfig) with
the simulated kubelet, and the controller as its own process (leader-elected, as
deployed). Prints:

1. for an upgrade in N >= 20 batches of one replica, the time from the last pod of batch i
   becoming Ready (seen on a pod watch) to the target Deployment's patch for batch i+1
   (seen on a Deployment watch): p50 / p99 / max, against KubeVela's 5 s and Kruise
   Rollouts' 2 s recheck periods; each hand-off split into the controller's own stages
   and kube-controller-manager's; the ready-pod invariant sampled throughout (the bench
   fails when it breaks);
2. the scale phase, with --apps Applications (default 1,000) created at once: the time
   until all are rolled out; once they settle, over --quiet seconds (default 60): the
   controller's CPU (share of one core), the API writes to every kind it writes
   (counted on watches of the namespace, by the writer's managedFields / Event
   reportingComponent) and its reconciles; its RSS (VmRSS, and its peak VmHWM);
   reconcile p50 / p99 over the phase (from its debug log lines); then a graceful
   restart: SIGTERM to the leader with a ready stand-by running, one Application changed
   at once, and the time to the stand-by holding the Lease and to its first action on
   the change (its ControllerRevision created); then the same for a cold restart (no
   stand-by: the new process starts as the old one gets SIGTERM).

Bounded: every wait has a deadline; everything started here is stopped by PID.
Usage: .venv/bin/python bench/controller.py [--kubeconfig FILE] [--batches 24] [--apps 1000]
       [--quiet 60] [--kcm-qps 100] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if not __package__:
    # Run as `python bench/controller.py`: its folder comes first on sys.path, where
    # bench/webhook.py would shadow the webhook package. Use the repository root instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from webhook.kube.client import (
    APPLICATIONS,
    DEPLOYMENTS,
    EVENTS,
    REVISIONS,
    ROLLOUTS,
    KubeApi,
    Resource,
    connect,
)

PODS = Resource("", "v1", "pods")
NAMESPACES = Resource("", "v1", "namespaces")
SERVICES = Resource("", "v1", "services")
CONFIGMAPS = Resource("", "v1", "configmaps")


def app_body(name: str, version: int, size: int, batches: list[int]) -> dict[str, Any]:
    return {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {"components": [{
            "name": name,
            "type": "webservice",
            "externalRevision": f"{name}-v{version}",
            "properties": {"image": f"stefanprodan/podinfo:5.0.{version}"},
            "traits": [{"type": "rollout", "properties": {
                "targetSize": size,
                "rolloutBatches": [{"replicas": n} for n in batches]}}],
        }]},
    }


def apply_app(api: KubeApi, namespace: str, body: dict[str, Any]) -> None:
    path = APPLICATIONS.path(namespace)
    live = api.get(APPLICATIONS.path(namespace, body["metadata"]["name"]))
    if live is None:
        api.create(path, body)
    else:
        api.merge_patch(APPLICATIONS.path(namespace, body["metadata"]["name"]),
                        {"spec": body["spec"]})


def wait_until(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what}: not reached in {timeout:.0f}s")


def succeeded(api: KubeApi, namespace: str, name: str, revision: str) -> bool:
    ro = api.get(ROLLOUTS.path(namespace, name)) or {}
    status = ro.get("status") or {}
    return (status.get("rollingState"), status.get("lastTargetRevision")) == (
        "rolloutSucceed", revision)


class HandOffProbe:
    """Watches the target revision's pods and Deployment; stamps Ready counts and patches."""

    def __init__(self, api: KubeApi, namespace: str, revision: str) -> None:
        self.api, self.namespace, self.revision = api, namespace, revision
        self.ready_at: dict[int, float] = {}  # ready pod count -> first time seen
        self.patched_at: dict[int, float] = {}  # spec.replicas -> first time seen
        # For the breakdown: the target's reported readyReplicas, and the source's
        # spec.replicas and status.replicas, each value -> first time seen.
        self.target_ready_at: dict[int, float] = {}
        self.source_patched_at: dict[int, float] = {}
        self.source_gone_at: dict[int, float] = {}
        self._ready: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        for target in (self._pods, self._deployments):
            threading.Thread(target=target, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _stream(self, resource: Resource, selector: str | None) -> Any:
        path = resource.path(self.namespace)
        listing = self.api.request("GET", path, query={"labelSelector": selector}
                                   if selector else None)
        for item in listing.get("items") or []:
            yield {"type": "ADDED", "object": item}
        version = listing["metadata"]["resourceVersion"]
        yield from self.api.watch(path, version, 300, selector)

    def _pods(self) -> None:
        for event in self._stream(PODS, f"app.oam.dev/revision={self.revision}"):
            if self._stop.is_set():
                return
            now = time.monotonic()
            pod = event["object"]
            name = pod["metadata"]["name"]
            ready = event["type"] != "DELETED" and not pod["metadata"].get(
                "deletionTimestamp") and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or [])
            with self._lock:
                (self._ready.add if ready else self._ready.discard)(name)
                self.ready_at.setdefault(len(self._ready), now)

    def _deployments(self) -> None:
        for event in self._stream(DEPLOYMENTS, None):
            if self._stop.is_set():
                return
            obj = event["object"]
            now = time.monotonic()
            spec, status = obj.get("spec") or {}, obj.get("status") or {}
            with self._lock:
                if obj["metadata"]["name"] == self.revision:
                    self.patched_at.setdefault(int(spec.get("replicas", 0)), now)
                    self.target_ready_at.setdefault(int(status.get("readyReplicas", 0)), now)
                else:
                    self.source_patched_at.setdefault(int(spec.get("replicas", 0)), now)
                    self.source_gone_at.setdefault(int(status.get("replicas", 0)), now)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def bench_handoff(api: KubeApi, kubeconfig: Path, batches: int) -> tuple[
        list[float], dict[str, float], tuple[int, list[tuple[int, int, int]]]]:
    """The hand-off gaps, the median of each stage, and the ready-pod invariant's
    (samples, violations) over the upgrade."""
    from tests.fixtures.controller import ReadySampler

    namespace = f"bench-handoff-{os.getpid()}"
    api.create(NAMESPACES.path(), {"metadata": {"name": namespace}})
    wait_until("default service account", lambda: api.get(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/default") is not None, 30)
    time.sleep(1.0)  # its token secret follows the account
    name = "handoff"
    apply_app(api, namespace, app_body(name, 1, batches, [batches]))
    wait_until("first deploy", lambda: succeeded(api, namespace, name, f"{name}-v1"), 120)
    probe = HandOffProbe(api, namespace, f"{name}-v2")
    probe.start()
    sampler = ReadySampler(kubeconfig, namespace, name)
    with sampler:
        time.sleep(0.5)
        sampler.active = True
        apply_app(api, namespace, app_body(name, 2, batches, [1] * batches))
        wait_until("upgrade", lambda: succeeded(api, namespace, name, f"{name}-v2"),
                   30 + 3 * batches)
        time.sleep(1.0)  # the last old pod's going is sampled too
    probe.stop()
    invariant = (len(sampler.samples), sampler.violations())
    gaps = []
    stages: dict[str, list[float]] = {
        "pod Ready -> Deployment reports it (kube-controller-manager)": [],
        "-> old Deployment patched (controller)": [],
        "-> old pod gone from its status (kube-controller-manager)": [],
        "-> next batch patched (controller)": [],
    }
    names = list(stages)
    for i in range(1, batches):  # batch i-1 ends with i ready pods; batch i patches to i+1
        if i in probe.ready_at and i + 1 in probe.patched_at:
            gaps.append(probe.patched_at[i + 1] - probe.ready_at[i])
        found = [probe.ready_at.get(i), probe.target_ready_at.get(i),
                 probe.source_patched_at.get(batches - i), probe.source_gone_at.get(batches - i),
                 probe.patched_at.get(i + 1)]
        marks = [m for m in found if m is not None]
        if len(marks) == len(found):
            for name, (a, b) in zip(names, itertools.pairwise(marks), strict=True):
                stages[name].append(b - a)
    api.delete(NAMESPACES.path(None, namespace))
    medians = {name: statistics.median(v) * 1000 for name, v in stages.items() if v}
    return gaps, medians, invariant


def controller_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (/proc/PID/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric_values(port: int) -> dict[str, float]:
    """The controller's /metrics, samples summed over their labels but ``kind``."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if "kind" in sample.labels:
                name += "{" + sample.labels["kind"] + "}"
            values[name] = values.get(name, 0.0) + sample.value
    return values


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


# The kinds the controller writes in an Application's namespace (Leases live elsewhere).
WRITTEN = (APPLICATIONS, ROLLOUTS, REVISIONS, DEPLOYMENTS, SERVICES, CONFIGMAPS, EVENTS)
CONTROLLER_MANAGER = "oam-rollout-controller"


def last_writer(obj: dict[str, Any]) -> str:
    """Who wrote ``obj`` last: its newest managedFields entry's manager (an Event's
    reportingComponent or source)."""
    if obj.get("kind") == "Event" or "involvedObject" in obj:
        return str(obj.get("reportingComponent") or (obj.get("source") or {}).get(
            "component") or "")
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    if not entries:
        return ""
    newest = max(entries, key=lambda e: str(e.get("time") or ""))
    return str(newest.get("manager") or "")


class WriteCounter:
    """Counts every change to the kinds the controller writes in one namespace, from now,
    by kind and by whether the controller made it."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.ours: dict[str, int] = {}
        self.others: dict[str, int] = {}
        self.samples: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._watch, args=(r,), daemon=True)
                         for r in WRITTEN]
        self._versions = {r.plural: str(api.request("GET", r.path(namespace), query={
            "limit": "1"})["metadata"]["resourceVersion"]) for r in WRITTEN}

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, resource: Resource) -> None:
        version = self._versions[resource.plural]
        while not self._stop.is_set():
            try:
                for event in self.api.watch(resource.path(self.namespace), version, 30):
                    if self._stop.is_set():
                        return
                    obj = event.get("object") or {}
                    version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                    if event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
                        continue
                    ours = last_writer(obj).startswith(CONTROLLER_MANAGER)
                    with self._lock:
                        tally = self.ours if ours else self.others
                        tally[resource.plural] = tally.get(resource.plural, 0) + 1
                        if len(self.samples) < 10:
                            self.samples.append(
                                f"{event.get('type')} {resource.plural}/"
                                f"{(obj.get('metadata') or {}).get('name')} by "
                                f"{last_writer(obj) or '?'}")
            except Exception:  # a watch that ended: go on from the last version
                self._stop.wait(0.2)


class RolloutWatch:
    """Stamps when each Rollout of a namespace first shows rolloutSucceed at a revision."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.succeeded: dict[tuple[str, str], float] = {}  # (name, revision) -> when
        self.revisions_created: dict[str, float] = {}  # ControllerRevision name -> when
        self._stop = threading.Event()

    def start(self) -> None:
        for resource in (ROLLOUTS, REVISIONS):
            threading.Thread(target=self._watch, args=(resource,), daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, resource: Resource) -> None:
        path = resource.path(self.namespace)
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listing = self.api.request("GET", path)
                    for item in listing.get("items") or []:
                        self._seen(resource, item)
                    version = str(listing["metadata"]["resourceVersion"])
                for event in self.api.watch(path, version, 60):
                    if self._stop.is_set():
                        return
                    obj = event.get("object") or {}
                    version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._seen(resource, obj)
            except Exception:
                version = ""
                self._stop.wait(0.2)

    def _seen(self, resource: Resource, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        name = str((obj.get("metadata") or {}).get("name"))
        if resource is REVISIONS:
            self.revisions_created.setdefault(name, now)
            return
        status = obj.get("status") or {}
        if status.get("rollingState") == "rolloutSucceed":
            self.succeeded.setdefault((name, str(status.get("lastTargetRevision"))), now)

    def done(self, revision_of: dict[str, str]) -> int:
        return sum(1 for name, rev in revision_of.items() if (name, rev) in self.succeeded)


def reconcile_durations(log_path: Path, since: int) -> dict[str, list[float]]:
    """Per kind, each reconcile's seconds, from the debug lines the controller wrote after
    byte ``since`` of its log ("reconciled KIND NS/NAME in Ss")."""
    out: dict[str, list[float]] = {"app": [], "rollout": []}
    with log_path.open("rb") as f:
        f.seek(since)
        for raw in f:
            if b'"reconciled ' not in raw:
                continue
            try:
                msg = json.loads(raw)["msg"]
            except (ValueError, KeyError):
                continue
            parts = msg.split()  # reconciled KIND NS/NAME in 0.012s
            if len(parts) == 5 and parts[0] == "reconciled" and parts[4].endswith("s"):
                out.setdefault(parts[1], []).append(float(parts[4][:-1]))
    return out


def wait_settled(api: KubeApi, namespace: str, port: int, timeout: float,
                 still: float = 5.0) -> float:
    """Wait until the controller's queue is empty, and neither a reconcile ran nor a
    write was made (its Events included: they are posted in the background) for
    ``still`` s; the time it took."""
    began = time.monotonic()
    deadline = began + timeout
    counter = WriteCounter(api, namespace)
    counter.start()
    last: tuple[float, float, int] | None = None
    since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            values = metric_values(port)
            count = sum(v for k, v in values.items()
                        if k.startswith("oam_rollout_controller_reconcile_total"))
            depth = values.get("oam_rollout_controller_workqueue_depth", 1.0)
            now = (count, depth, sum(counter.ours.values()) + sum(counter.others.values()))
            if now != last or depth > 0:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= still:
                return time.monotonic() - began
            time.sleep(1.0)
    finally:
        counter.stop()
    raise TimeoutError(f"the controller did not settle in {timeout:.0f}s")


def last_logged(log_path: Path, since: int, prefix: str, word: str) -> float:
    """The time (epoch seconds) of the last line after byte ``since`` of the controller's
    log whose message starts with ``prefix`` and holds ``word``."""
    last = 0.0
    with log_path.open("rb") as f:
        f.seek(since)
        for raw in f:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            msg = str(line.get("msg", ""))
            if msg.startswith(prefix) and word in msg:
                last = max(last, float(line.get("ts", 0.0)))
    return last


def reconciles_logged(log_path: Path, since: int) -> int:
    """Reconciles the controller logged after byte ``since`` of its log (debug lines)."""
    with log_path.open("rb") as f:
        f.seek(since)
        return sum(1 for line in f if b'"msg":"reconciled ' in line)


class Controller:
    """One `oam-rollout controller` process, leader-elected, debug log to a file."""

    def __init__(self, kubeconfig: Path, identity: str, resync: int = 300) -> None:
        self.identity = identity
        self.port = free_port()
        fd, name = tempfile.mkstemp(prefix=f"oam-rollout-bench-{identity}-", suffix=".log")
        self.log = Path(name)
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "webhook", "controller", "--kubeconfig", str(kubeconfig),
                 "--leader-elect", "--lease-namespace", "default", "--identity", identity,
                 "--health-port", str(self.port), "--log-level", "debug",
                 "--resync", str(resync)],
                stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def lease_holder(api: KubeApi) -> str:
    lease = api.get("/apis/coordination.k8s.io/v1/namespaces/default/leases/"
                    "oam-rollout-controller") or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def lease_taken(api: KubeApi, holder: str, timeout: float) -> float:
    """When (monotonic) ``holder`` was first seen holding the Lease, polled every 10 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lease_holder(api) == holder:
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"{holder} did not take the Lease in {timeout:.0f}s")


def bench_scale(api: KubeApi, kubeconfig: Path, leader: Controller, apps: int,
                quiet: float) -> tuple[dict[str, Any], list[Controller]]:
    """The scale phase; its figures, and the controllers it started."""
    namespace = f"bench-scale-{os.getpid()}"
    api.create(NAMESPACES.path(), {"metadata": {"name": namespace}})
    wait_until("default service account", lambda: api.get(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/default") is not None, 30)
    time.sleep(1.0)
    figures: dict[str, Any] = {"apps": apps}
    watch = RolloutWatch(api, namespace)
    watch.start()
    log_mark = leader.log.stat().st_size
    before = metric_values(leader.port)
    names = [f"app-{i:04d}" for i in range(apps)]
    began, began_wall = time.monotonic(), time.time()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: api.create(APPLICATIONS.path(namespace),
                                           app_body(n, 1, 1, [1])), names))
    figures["create_seconds"] = round(time.monotonic() - began, 1)
    wanted = {n: f"{n}-v1" for n in names}
    deadline = time.monotonic() + 1800
    while watch.done(wanted) < apps:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{watch.done(wanted)} of {apps} rolled out in 1800s")
        time.sleep(0.5)
    figures["rollout_seconds"] = round(max(watch.succeeded[(n, r)] for n, r in wanted.items())
                                       - began, 1)
    figures["targets_scaled_seconds"] = round(last_logged(
        leader.log, log_mark, f"rollout {namespace}/", "change-target") - began_wall, 1)
    figures["settle_seconds"] = round(wait_settled(api, namespace, leader.port, 900), 1)
    after = metric_values(leader.port)
    durations = reconcile_durations(leader.log, log_mark)
    figures["reconciles"] = {k: int(after.get(f"oam_rollout_controller_reconcile_total{{{k}}}",
                                              0) - before.get(
        f"oam_rollout_controller_reconcile_total{{{k}}}", 0)) for k in ("app", "rollout")}
    every = durations["app"] + durations["rollout"]
    for kind, values in (("app", durations["app"]), ("rollout", durations["rollout"]),
                         ("all", every)):
        if values:
            figures[f"reconcile_{kind}_ms"] = {
                "p50": round(1000 * statistics.median(values), 1),
                "p99": round(1000 * percentile(values, 99), 1),
                "max": round(1000 * max(values), 1), "count": len(values)}
    # At rest: nothing to do, so nothing may be written and (almost) no CPU spent. No
    # scrape of /metrics meanwhile (one costs the controller CPU): its log counts.
    counter = WriteCounter(api, namespace)
    counter.start()
    mark = leader.log.stat().st_size
    cpu_before, t_before = controller_cpu_seconds(leader.pid), time.monotonic()
    time.sleep(quiet)
    cpu_after, t_after = controller_cpu_seconds(leader.pid), time.monotonic()
    reconciles_at_rest = reconciles_logged(leader.log, mark)
    counter.stop()
    rss, peak = rss_kib(leader.pid)
    # What one Prometheus scrape costs the controller with this many Rollouts.
    cpu_scrape, t_scrape = controller_cpu_seconds(leader.pid), time.monotonic()
    metric_values(leader.port)
    figures.update(scrape_ms=round(1000 * (time.monotonic() - t_scrape), 1),
                   scrape_cpu_ms=round(1000 * (controller_cpu_seconds(leader.pid)
                                               - cpu_scrape), 1))
    figures.update(
        quiet_seconds=round(t_after - t_before, 1),
        cpu_at_rest_percent=round(100 * (cpu_after - cpu_before) / (t_after - t_before), 2),
        writes_at_rest_by_controller=sum(counter.ours.values()),
        writes_at_rest_by_controller_by_kind=dict(counter.ours),
        writes_at_rest_by_others=sum(counter.others.values()),
        writes_at_rest_by_others_by_kind=dict(counter.others),
        writes_at_rest_samples=list(counter.samples),
        reconciles_at_rest=reconciles_at_rest,
        rss_mib=round(rss / 1024, 1), peak_rss_mib=round(peak / 1024, 1))
    # A graceful restart: a ready stand-by, SIGTERM to the leader, one change at once.
    standby = Controller(kubeconfig, "bench-b")
    wait_until("stand-by ready", lambda: ready(standby.port), 60)
    changed = names[-1]  # the last listed: no head start in the new leader's queue
    t0 = time.monotonic()
    os.kill(leader.pid, signal.SIGTERM)
    apply_app(api, namespace, app_body(changed, 2, 1, [1]))
    figures["restart_lease_taken_seconds"] = round(lease_taken(api, "bench-b", 60) - t0, 2)
    wait_until("first action", lambda: f"{changed}-v2" in watch.revisions_created, 120)
    figures["restart_first_action_seconds"] = round(
        watch.revisions_created[f"{changed}-v2"] - t0, 2)
    wait_until("changed app rolled out", lambda: (changed, f"{changed}-v2") in watch.succeeded,
               120)
    figures["restart_rolled_out_seconds"] = round(
        watch.succeeded[(changed, f"{changed}-v2")] - t0, 2)
    with contextlib.suppress(subprocess.TimeoutExpired):
        leader.proc.wait(15)
    figures["old_leader_exit"] = leader.proc.poll()
    # A cold restart (one replica): the new process starts as the old one gets SIGTERM.
    changed = names[-2]
    t0 = time.monotonic()
    os.kill(standby.pid, signal.SIGTERM)
    cold = Controller(kubeconfig, "bench-c")
    apply_app(api, namespace, app_body(changed, 2, 1, [1]))
    figures["cold_restart_lease_taken_seconds"] = round(lease_taken(api, "bench-c", 60) - t0,
                                                        2)
    wait_until("first action", lambda: f"{changed}-v2" in watch.revisions_created, 120)
    figures["cold_restart_first_action_seconds"] = round(
        watch.revisions_created[f"{changed}-v2"] - t0, 2)
    watch.stop()
    api.delete(NAMESPACES.path(None, namespace))
    return figures, [standby, cold]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def controller_view(port: int) -> dict[str, float]:
    """Hand-offs and reconciles as the controller's /metrics counts them (loopback)."""
    began = time.perf_counter()
    values = metric_values(port)
    scrape = time.perf_counter() - began
    handoffs = values.get("oam_rollout_controller_batch_handoff_seconds_count", 0.0)
    reconciles = sum(v for k, v in values.items()
                     if k.startswith("oam_rollout_controller_reconcile_duration_seconds_count"))
    total = sum(v for k, v in values.items()
                if k.startswith("oam_rollout_controller_reconcile_duration_seconds_sum"))
    return {
        "handoffs": handoffs,
        "handoff_mean_ms": round(1000 * values.get(
            "oam_rollout_controller_batch_handoff_seconds_sum", 0.0) / max(1.0, handoffs), 1),
        "reconciles": reconciles,
        "reconcile_mean_ms": round(1000 * total / max(1.0, reconciles), 1),
        "scrape_ms": round(1000 * scrape, 1),
    }


def raise_kcm_qps(qps: int) -> None:
    """kube-controller-manager's client at ``qps`` (burst 1.5x) for the clusters started
    here: at its default 20 its own rate limiter, not the API server nor our controller,
    sets how fast 1,000 Deployments get their ReplicaSets and pods."""
    from webhook.localcluster import cluster

    plain = cluster.controller_manager_args

    def tuned(*args: Any, **kwargs: Any) -> list[str]:
        return [*plain(*args, **kwargs), f"--kube-api-qps={qps}",
                f"--kube-api-burst={qps * 3 // 2}"]

    cluster.controller_manager_args = tuned  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", help="use this running cluster (default: start one)")
    parser.add_argument("--batches", type=int, default=24, help="upgrade batches (>= 20)")
    parser.add_argument("--apps", type=int, default=1000,
                        help="applications of the scale phase (0: skip it)")
    parser.add_argument("--quiet", type=float, default=60.0,
                        help="seconds at rest measured once the applications settle")
    parser.add_argument("--resync", type=int, default=300,
                        help="the controllers' --resync (relist period, seconds)")
    parser.add_argument("--kcm-qps", type=int, default=100,
                        help="kube-controller-manager's --kube-api-qps (a cluster started "
                             "here; 0: its default, 20)")
    parser.add_argument("--ready-delay", type=float, default=0.2,
                        help="simulated kubelet: seconds until a pod is Ready")
    parser.add_argument("--json", action="store_true", help="print figures as JSON too")
    args = parser.parse_args(argv)
    # SIGTERM (a timeout, say) unwinds like Ctrl-C: everything started here is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    cluster = kubelet = None
    if args.kubeconfig:
        kubeconfig = Path(args.kubeconfig)
    else:
        from webhook.localcluster.cluster import LocalCluster
        from webhook.localcluster.kubelet import SimulatedKubelet

        if args.kcm_qps:
            raise_kcm_qps(args.kcm_qps)
        cluster = LocalCluster(die_with_parent=True)
        cluster.start()
        kubeconfig = Path(cluster.kubeconfig)
        kubelet = SimulatedKubelet(kubeconfig, ready_delay=args.ready_delay)
        kubelet.start()
    load = Path("/proc/loadavg").read_text().split()[:3]
    controllers = [Controller(kubeconfig, "bench-a", args.resync)]
    figures: dict[str, Any] = {"load_at_start": " ".join(load)}
    failed = False
    try:
        api = connect(str(kubeconfig))
        wait_until("controller ready", lambda: ready(controllers[0].port), 60)
        gaps, medians, invariant = bench_handoff(api, kubeconfig, args.batches)
        ms = [g * 1000 for g in gaps]
        figures.update(
            batches=args.batches, handoffs=len(ms),
            p50_ms=round(statistics.median(ms), 1), p99_ms=round(percentile(ms, 99), 1),
            max_ms=round(max(ms), 1), mean_ms=round(statistics.fmean(ms), 1))
        print(f"batch hand-off over {len(ms)} batches (last pod Ready -> next batch patch):")
        print(f"  p50 {figures['p50_ms']} ms   p99 {figures['p99_ms']} ms   "
              f"max {figures['max_ms']} ms   mean {figures['mean_ms']} ms")
        print("  median of each stage:")
        for stage, ms_stage in medians.items():
            print(f"    {ms_stage:7.1f} ms  {stage}")
        figures["stages_ms"] = {k: round(v, 1) for k, v in medians.items()}
        own = round(sum(v for k, v in medians.items() if "(controller)" in k), 1)
        kcm = round(sum(v for k, v in medians.items() if "kube-controller-manager" in k), 1)
        figures.update(own_stages_p50_ms=own, kcm_stages_p50_ms=kcm)
        print(f"  the controller's own stages: {own} ms (target <= 40 ms); "
              f"kube-controller-manager's: {kcm} ms")
        samples, violations = invariant
        figures.update(invariant_samples=samples, invariant_violations=len(violations))
        print(f"  ready-pod invariant: {samples} samples, {len(violations)} outside "
              f"targetSize -/+ batch{': ' + str(violations[:5]) if violations else ''}")
        failed = failed or bool(violations)
        print(f"  targets p50 <= 200 ms, p99 <= 1000 ms; KubeVela rechecks every 5000 ms "
              f"({5000 / figures['p50_ms']:.0f}x our p50), Kruise Rollouts every 2000 ms "
              f"({2000 / figures['p50_ms']:.0f}x)")
        seen = controller_view(controllers[0].port)
        figures["controller_view"] = seen
        print(f"  the controller's own /metrics: {seen['handoffs']} hand-offs, mean "
              f"{seen['handoff_mean_ms']} ms (new pods Ready -> next batch written); "
              f"{seen['reconciles']} reconciles, mean {seen['reconcile_mean_ms']} ms; "
              f"scrape {seen['scrape_ms']} ms")
        if args.apps:
            scale, started = bench_scale(api, kubeconfig, controllers[0], args.apps, args.quiet)
            controllers.extend(started)
            figures["scale"] = scale
            print_scale(scale)
        figures["load_at_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"load average: {figures['load_at_start']} at start, "
              f"{figures['load_at_end']} at end")
        if args.json:
            print(json.dumps(figures))
    finally:
        for controller in controllers:
            controller.stop()
        if kubelet is not None:
            kubelet.stop()
        if cluster is not None:
            cluster.stop()
    print("controller logs: " + ", ".join(str(c.log) for c in controllers))
    return 1 if failed else 0


def print_scale(s: dict[str, Any]) -> None:
    print(f"{s['apps']} applications: created in {s['create_seconds']} s, all rolled out "
          f"{s['rollout_seconds']} s after the first create (the controller had written "
          f"every first batch after {s['targets_scaled_seconds']} s; the rest is "
          f"kube-controller-manager and the simulated kubelet making pods Ready); "
          f"settled {s['settle_seconds']} s later")
    for kind in ("app", "rollout", "all"):
        r = s.get(f"reconcile_{kind}_ms")
        if r:
            print(f"  reconcile ({kind}): {r['count']} reconciles, p50 {r['p50']} ms, "
                  f"p99 {r['p99']} ms, max {r['max']} ms")
    print(f"  at rest over {s['quiet_seconds']} s: CPU {s['cpu_at_rest_percent']} % of a core "
          f"(target <= 1 %), {s['writes_at_rest_by_controller']} API writes by the controller "
          f"(target 0) {s['writes_at_rest_by_controller_by_kind'] or ''}, "
          f"{s['writes_at_rest_by_others']} by others "
          f"{s['writes_at_rest_by_others_by_kind'] or ''}, "
          f"{s['reconciles_at_rest']} reconciles")
    if s["writes_at_rest_samples"]:
        print(f"    e.g. {s['writes_at_rest_samples']}")
    print(f"  controller RSS {s['rss_mib']} MiB, peak {s['peak_rss_mib']} MiB "
          f"(target <= 150 MiB); one /metrics scrape {s['scrape_ms']} ms, "
          f"{s['scrape_cpu_ms']} ms of its CPU")
    print(f"  graceful restart (SIGTERM, one Application changed at once): stand-by leads "
          f"after {s['restart_lease_taken_seconds']} s, first action (the change's "
          f"ControllerRevision) after {s['restart_first_action_seconds']} s (target <= 5 s), "
          f"that Application rolled out after {s['restart_rolled_out_seconds']} s; "
          f"old leader exit code {s['old_leader_exit']}")
    print(f"  cold restart (no stand-by: a new process started at the SIGTERM): it leads "
          f"after {s['cold_restart_lease_taken_seconds']} s, first action after "
          f"{s['cold_restart_first_action_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
