"""SimulatedKubelet: a SIMULATION of a kubelet for a control plane that has no nodes.

Holds a fake Node and the pod lifecycle a real kubelet would drive, without running
any container: it binds pending pods to its node, reports them Running and Ready
after a delay, and finalizes terminating pods, so the real Deployment / ReplicaSet
controllers see readyReplicas as on a real cluster. Failure injection by pod
annotation (never ready, crash after a while, own ready delay). The decision of
what a pod needs is a pure function (pod_action); the class only does the I/O.
It must not run processes or set a pod IP outside 127.0.0.0/8.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from webhook.kube.watching import ResourceWatcher

log = logging.getLogger(__name__)

NODE_NAME = "oam-rollout-sim-node"
# Failure injection, set on the pod (template) by a test.
NEVER_READY = "sim.oam-rollout.dev/never-ready"  # "true": Running but never Ready
CRASH_AFTER = "sim.oam-rollout.dev/crash-after"  # "2s": Ready, then CrashLoopBackOff
READY_DELAY = "sim.oam-rollout.dev/ready-delay"  # "3s": this pod's own start delay
CRASH_REASON = "CrashLoopBackOff"
POD_IP = "127.0.0.1"


class PodAction(Enum):
    """What the simulated kubelet must do next for one pod."""

    IGNORE = "ignore"  # not ours, finished, or already in the wanted state
    FINALIZE = "finalize"  # terminating: delete with grace 0
    BIND = "bind"  # unscheduled: bind to our node
    START = "start"  # containers (re)starting: report not ready, schedule readiness
    AWAIT_READY = "await-ready"  # started, readiness due later (timer may be lost)
    HOLD_UNREADY = "hold-unready"  # never-ready injection: Running, never Ready


def parse_duration(text: str) -> float:
    """'500ms', '2s', '1.5', '1m' -> seconds; ValueError on anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 500ms, 2s, 1m)")
    value = float(match.group(1))
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]


def spec_images(pod: Mapping[str, Any]) -> dict[str, str]:
    return {c["name"]: c.get("image", "") for c in pod.get("spec", {}).get("containers", [])}


def status_images(pod: Mapping[str, Any]) -> dict[str, str]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return {c["name"]: c.get("image", "") for c in statuses}


def condition(pod: Mapping[str, Any], kind: str) -> str | None:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def is_crashed(pod: Mapping[str, Any]) -> bool:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if (status.get("state", {}).get("waiting") or {}).get("reason") == CRASH_REASON:
            return True
    return False


def annotation(pod: Mapping[str, Any], key: str) -> str | None:
    value = (pod.get("metadata", {}).get("annotations") or {}).get(key)
    return None if value is None else str(value)


def pod_action(pod: Mapping[str, Any], node: str) -> PodAction:
    """The next step for a pod as a kubelet on `node` sees it (pure)."""
    meta = pod.get("metadata", {})
    bound_to = pod.get("spec", {}).get("nodeName")
    if bound_to and bound_to != node:
        return PodAction.IGNORE
    if meta.get("deletionTimestamp"):
        return PodAction.FINALIZE
    if not bound_to:
        return PodAction.BIND
    if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") or is_crashed(pod):
        return PodAction.IGNORE
    if status_images(pod) != spec_images(pod):
        return PodAction.START
    if annotation(pod, NEVER_READY) == "true":
        return (
            PodAction.IGNORE
            if condition(pod, "Ready") == "False" and _running(pod)
            else (PodAction.HOLD_UNREADY)
        )
    if condition(pod, "Ready") != "True":
        return PodAction.AWAIT_READY
    return PodAction.IGNORE


def _running(pod: Mapping[str, Any]) -> bool:
    return bool(pod.get("status", {}).get("phase") == "Running")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(ready: bool, now: str) -> list[dict[str, str]]:
    flag = "True" if ready else "False"
    return [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
        {"type": "Ready", "status": flag, "lastTransitionTime": now},
    ]


def status_patch(pod: Mapping[str, Any], state: str, now: str) -> dict[str, Any]:
    """The pod status a kubelet would report in `state` (starting, running, unready, crashed)."""
    images = spec_images(pod)
    previous = {c["name"]: c for c in pod.get("status", {}).get("containerStatuses") or []}
    containers = []
    for name, image in images.items():
        restarts = int(previous.get(name, {}).get("restartCount", 0))
        entry: dict[str, Any] = {
            "name": name,
            "image": image,
            "imageID": f"sim://{image}",
            "restartCount": restarts,
            "ready": state == "running",
            "started": state in ("running", "unready"),
        }
        if state == "starting":
            entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif state == "crashed":
            entry["restartCount"] = restarts + 1
            entry["state"] = {"waiting": {"reason": CRASH_REASON, "message": "simulated crash"}}
            entry["lastState"] = {
                "terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now}
            }
        else:
            entry["state"] = {"running": {"startedAt": now}}
        containers.append(entry)
    started = pod.get("status", {}).get("startTime") or now
    phase = "Pending" if state == "starting" and not _running(pod) else "Running"
    return {
        "status": {
            "phase": phase,
            "hostIP": POD_IP,
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": started,
            "conditions": _conditions(state == "running", now),
            "containerStatuses": containers,
        }
    }


@dataclass(order=True)
class _Timer:
    due: float
    seq: int
    kind: str  # "ready" | "crash"
    namespace: str
    name: str
    uid: str
    images: tuple[tuple[str, str], ...]


class SimulatedKubelet:
    """Plays the kubelet for every pod of the cluster (simulation: no containers run)."""

    def __init__(self, kubeconfig: Path, ready_delay: float = 0.5, node_name: str = NODE_NAME):
        self.kubeconfig = kubeconfig
        self.ready_delay = ready_delay
        self.node_name = node_name
        self._timers: list[_Timer] = []
        self._pending: set[tuple[str, str]] = set()  # (uid, kind) with a timer queued
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._api: Any = None
        self._core: Any = None
        self._watcher: ResourceWatcher | None = None
        self._timer_thread: threading.Thread | None = None

    def start(self) -> None:
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=cfg)
        self._api = client.ApiClient(cfg)
        self._core = client.CoreV1Api(self._api)
        self._register_node()
        self._timer_thread = threading.Thread(
            target=self._run_timers, name="sim-kubelet-timers", daemon=True
        )
        self._timer_thread.start()
        self._watcher = ResourceWatcher(
            "sim-kubelet-pods", self._core.list_pod_for_all_namespaces, self._on_pod
        )
        self._watcher.start()
        self._watcher.synced.wait(10)
        log.info("simulated kubelet running as node %s", self.node_name)

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher:
            self._watcher.stop()
        with self._cond:
            self._cond.notify_all()
        if self._timer_thread:
            self._timer_thread.join(5)
        if self._api is not None:
            self._api.close()

    # -- node -----------------------------------------------------------------

    def _register_node(self) -> None:
        from kubernetes.client.rest import ApiException

        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "oam-rollout.dev/simulated": "true",
                },
            },
        }
        try:
            self._core.create_node(node)
        except ApiException as exc:
            if exc.status != 409:
                raise
        now = _now()
        capacity = {"cpu": "64", "memory": "256Gi", "pods": "1000"}
        self._core.patch_node_status(
            self.node_name,
            {
                "status": {
                    "capacity": capacity,
                    "allocatable": capacity,
                    "addresses": [{"type": "InternalIP", "address": POD_IP}],
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "simulated kubelet (oam-rollout tests)",
                            "lastHeartbeatTime": now,
                            "lastTransitionTime": now,
                        }
                    ],
                    "nodeInfo": {"kubeletVersion": "v1.20.2-sim"},
                }
            },
        )

    # -- pods -----------------------------------------------------------------

    def _on_pod(self, event: str, pod: dict[str, Any]) -> None:
        if event == "DELETED" or self._stopping.is_set():
            return
        action = pod_action(pod, self.node_name)
        meta = pod["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        if action is PodAction.FINALIZE:
            self._finalize(ns, name, uid)
        elif action is PodAction.BIND:
            self._bind(ns, name)
        elif action is PodAction.START:
            self._patch_status(pod, "starting")
            self._schedule("ready", pod, self._delay_of(pod))
        elif action is PodAction.AWAIT_READY:
            self._schedule("ready", pod, self._delay_of(pod))
        elif action is PodAction.HOLD_UNREADY:
            self._patch_status(pod, "unready")

    def _delay_of(self, pod: Mapping[str, Any]) -> float:
        text = annotation(pod, READY_DELAY)
        if text is None:
            return self.ready_delay
        try:
            return parse_duration(text)
        except ValueError:
            log.warning(
                "pod %s: bad %s %r; using default", pod["metadata"]["name"], READY_DELAY, text
            )
            return self.ready_delay

    def _bind(self, ns: str, name: str) -> None:
        from kubernetes.client.rest import ApiException

        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            # _preload_content=False: the client cannot deserialize a Binding answer.
            self._core.create_namespaced_pod_binding(name, ns, body, _preload_content=False)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _finalize(self, ns: str, name: str, uid: str) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self._core.delete_namespaced_pod(
                name,
                ns,
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
                grace_period_seconds=0,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _patch_status(self, pod: Mapping[str, Any], state: str) -> None:
        from kubernetes.client.rest import ApiException

        meta = pod["metadata"]
        try:
            self._core.patch_namespaced_pod_status(
                meta["name"],
                meta["namespace"],
                status_patch(pod, state, _now()),
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status not in (404, 409, 422):
                raise

    # -- timers ---------------------------------------------------------------

    def _schedule(self, kind: str, pod: Mapping[str, Any], delay: float) -> None:
        meta = pod["metadata"]
        key = (meta["uid"], kind)
        with self._cond:
            if key in self._pending:
                return
            self._pending.add(key)
            heapq.heappush(
                self._timers,
                _Timer(
                    time.monotonic() + delay,
                    next(self._seq),
                    kind,
                    meta["namespace"],
                    meta["name"],
                    meta["uid"],
                    tuple(sorted(spec_images(pod).items())),
                ),
            )
            self._cond.notify()

    def _run_timers(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                if not self._timers:
                    self._cond.wait(1.0)
                    continue
                wait = self._timers[0].due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                timer = heapq.heappop(self._timers)
                self._pending.discard((timer.uid, timer.kind))
            try:
                self._fire(timer)
            except Exception:
                if not self._stopping.is_set():
                    log.exception("simulated kubelet: %s of %s failed", timer.kind, timer.name)

    def _fire(self, timer: _Timer) -> None:
        from kubernetes.client.rest import ApiException

        try:
            resp = self._core.read_namespaced_pod(
                timer.name, timer.namespace, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        pod = json.loads(resp.data)
        meta = pod["metadata"]
        if meta["uid"] != timer.uid or meta.get("deletionTimestamp") or is_crashed(pod):
            return
        if tuple(sorted(spec_images(pod).items())) != timer.images:
            # The images changed while this timer was queued, and the restart their
            # change caused was deduplicated against it: decide afresh for the new ones.
            self._on_pod("MODIFIED", pod)
            return
        if timer.kind == "ready":
            if annotation(pod, NEVER_READY) == "true":
                self._patch_status(pod, "unready")
                return
            self._patch_status(pod, "running")
            crash = annotation(pod, CRASH_AFTER)
            if crash:
                try:
                    self._schedule("crash", pod, parse_duration(crash))
                except ValueError:
                    log.warning("pod %s: bad %s %r", timer.name, CRASH_AFTER, crash)
        elif timer.kind == "crash":
            self._patch_status(pod, "crashed")
