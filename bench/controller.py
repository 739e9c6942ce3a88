"""Controller bench: batch hand-off latency and memory with 200 Applications.

Runs on the local control plane (started here, or an existing one with --kubeconfig) with
the simulated kubelet, and the controller as its own process, as deployed. Prints:

1. for an upgrade in N >= 20 batches of one replica, the time from the last pod of batch i
   becoming Ready (seen on a pod watch) to the target Deployment's patch for batch i+1
   (seen on a Deployment watch): p50 / p99 / max, against KubeVela's 5 s and Kruise
   Rollouts' 2 s recheck periods;
2. the controller's resident memory (VmRSS, and its peak VmHWM) once 200 Applications
   are rolled out.

Bounded: every wait has a deadline; everything started here is stopped by PID.
Usage: .venv/bin/python bench/controller.py [--kubeconfig FILE] [--batches 24] [--apps 200]
"""

from __future__ import annotations

import argparse
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
from pathlib import Path
from typing import Any

if not __package__:
    # Run as `python bench/controller.py`: its folder comes first on sys.path, where
    # bench/webhook.py would shadow the webhook package. Use the repository root instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from webhook.kube.client import (
    APPLICATIONS,
    DEPLOYMENTS,
    ROLLOUTS,
    KubeApi,
    Resource,
    connect,
)

PODS = Resource("", "v1", "pods")
NAMESPACES = Resource("", "v1", "namespaces")


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


def bench_handoff(api: KubeApi, batches: int) -> tuple[list[float], dict[str, float]]:
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
    time.sleep(0.5)
    apply_app(api, namespace, app_body(name, 2, batches, [1] * batches))
    wait_until("upgrade", lambda: succeeded(api, namespace, name, f"{name}-v2"),
               30 + 3 * batches)
    probe.stop()
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
    return gaps, medians


def bench_memory(api: KubeApi, pid: int, apps: int) -> tuple[int, int, float]:
    namespace = f"bench-memory-{os.getpid()}"
    api.create(NAMESPACES.path(), {"metadata": {"name": namespace}})
    wait_until("default service account", lambda: api.get(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/default") is not None, 30)
    time.sleep(1.0)
    began = time.monotonic()
    for i in range(apps):
        apply_app(api, namespace, app_body(f"app-{i:03d}", 1, 1, [1]))

    def all_done() -> bool:
        listing = api.list(ROLLOUTS.path(namespace))
        done = sum(1 for ro in listing
                   if (ro.get("status") or {}).get("rollingState") == "rolloutSucceed")
        return done == apps

    wait_until(f"{apps} applications rolled out", all_done, 600)
    took = time.monotonic() - began
    rss, peak = rss_kib(pid)
    api.delete(NAMESPACES.path(None, namespace))
    return rss, peak, took


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def controller_view(port: int) -> dict[str, float]:
    """Hand-offs and reconciles as the controller's /metrics counts them (loopback)."""
    from prometheus_client.parser import text_string_to_metric_families

    began = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    scrape = time.perf_counter() - began
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    handoffs = values.get("oam_rollout_controller_batch_handoff_seconds_count", 0.0)
    reconciles = values.get("oam_rollout_controller_reconcile_duration_seconds_count", 0.0)
    return {
        "handoffs": handoffs,
        "handoff_mean_ms": round(1000 * values.get(
            "oam_rollout_controller_batch_handoff_seconds_sum", 0.0) / max(1.0, handoffs), 1),
        "reconciles": reconciles,
        "reconcile_mean_ms": round(1000 * values.get(
            "oam_rollout_controller_reconcile_duration_seconds_sum", 0.0) / max(1.0, reconciles),
            1),
        "scrape_ms": round(1000 * scrape, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", help="use this running cluster (default: start one)")
    parser.add_argument("--batches", type=int, default=24, help="upgrade batches (>= 20)")
    parser.add_argument("--apps", type=int, default=200, help="applications for the RSS figure")
    parser.add_argument("--ready-delay", type=float, default=0.2,
                        help="simulated kubelet: seconds until a pod is Ready")
    parser.add_argument("--json", action="store_true", help="print figures as JSON too")
    args = parser.parse_args(argv)

    cluster = kubelet = None
    if args.kubeconfig:
        kubeconfig = Path(args.kubeconfig)
    else:
        from webhook.localcluster.cluster import LocalCluster
        from webhook.localcluster.kubelet import SimulatedKubelet

        cluster = LocalCluster(die_with_parent=True)
        cluster.start()
        kubeconfig = Path(cluster.kubeconfig)
        kubelet = SimulatedKubelet(kubeconfig, ready_delay=args.ready_delay)
        kubelet.start()
    fd, log_name = tempfile.mkstemp(prefix="oam-rollout-bench-controller-", suffix=".log")
    health_port = free_port()
    with os.fdopen(fd, "wb") as log:
        controller = subprocess.Popen(
            [sys.executable, "-m", "webhook", "controller", "--kubeconfig", str(kubeconfig),
             "--health-port", str(health_port)],
            stdout=log, stderr=subprocess.STDOUT)
    figures: dict[str, Any] = {}
    try:
        api = connect(str(kubeconfig))
        time.sleep(1.5)  # the controller's imports and first lists
        gaps, medians = bench_handoff(api, args.batches)
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
        print(f"  targets p50 <= 200 ms, p99 <= 1000 ms; KubeVela rechecks every 5000 ms "
              f"({5000 / figures['p50_ms']:.0f}x our p50), Kruise Rollouts every 2000 ms "
              f"({2000 / figures['p50_ms']:.0f}x)")
        seen = controller_view(health_port)
        figures["controller_view"] = seen
        print(f"  the controller's own /metrics: {seen['handoffs']} hand-offs, mean "
              f"{seen['handoff_mean_ms']} ms (new pods Ready -> next batch written); "
              f"{seen['reconciles']} reconciles, mean {seen['reconcile_mean_ms']} ms; "
              f"scrape {seen['scrape_ms']} ms")
        rss, peak, took = bench_memory(api, controller.pid, args.apps)
        figures.update(apps=args.apps, rss_mib=round(rss / 1024, 1),
                       peak_rss_mib=round(peak / 1024, 1), rollout_seconds=round(took, 1))
        print(f"controller memory with {args.apps} applications rolled out "
              f"(in {took:.1f} s): RSS {figures['rss_mib']} MiB, peak "
              f"{figures['peak_rss_mib']} MiB (target <= 150 MiB)")
        if args.json:
            print(json.dumps(figures))
    finally:
        if controller.poll() is None:
            os.kill(controller.pid, signal.SIGTERM)
            try:
                controller.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(controller.pid, signal.SIGKILL)
                controller.wait()
        if kubelet is not None:
            kubelet.stop()
        if cluster is not None:
            cluster.stop()
    print(f"controller log: {log_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
