"""SimulatedKubelet: a SIMULATION of a kubelet for a control plane that has no nodes.

Holds a fake Node and the pod lifecycle a real kubelet would drive, without running
any container: it binds pending pods to its node, reports them Running and Ready
after a delay, and finalizes terminating pods, so the real Deployment / ReplicaSet
controllers see readyReplicas as on a real cluster. Failure injection by pod
annotation (never ready, crash after a while, own ready delay). The decision of
what a pod needs is a pure function (pods.pod_action); the class only does the I/O.
It must not run processes or set a pod IP outside 127.0.0.0/8.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webhook.kube.reader import ApiReader, load_credentials
from webhook.kube.watching import EachObject, ListWatch, WatchPolicy
from webhook.localcluster.pods import (
    CRASH_AFTER,
    NEVER_READY,
    POD_IP,
    READY_DELAY,
    PodAction,
    annotation,
    is_crashed,
    parse_duration,
    pod_action,
    spec_images,
    status_patch,
)

log = logging.getLogger("oam_rollout.localcluster")

# Both simulators' watches: they end after 5 minutes; after a failure (the API
# restarting, say) the simulators look again soon.
WATCH_POLICY = WatchPolicy(watch_seconds=300, backoff_first=0.5, backoff_max=0.5,
                           list_timeout=30.0)
NODE_NAME = "oam-rollout-sim-node"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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

    def __init__(self, kubeconfig: Path, ready_delay: float = 0.5, node_name: str = NODE_NAME,
                 *, bind_pods: bool = True):
        """bind_pods=False: a real kube-scheduler places pods (real nodes beside this one);
        this node then only plays the kubelet for the pods bound to it."""
        self.kubeconfig = kubeconfig
        self.ready_delay = ready_delay
        self.node_name = node_name
        self.bind_pods = bind_pods
        self._timers: list[_Timer] = []
        self._pending: set[tuple[str, str]] = set()  # (uid, kind) with a timer queued
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._api: Any = None
        self._core: Any = None
        self._watcher: ListWatch | None = None
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
        self._watcher = ListWatch(
            "sim-kubelet-pods",
            ApiReader(load_credentials(str(self.kubeconfig))),
            "/api/v1/pods",
            EachObject(self._on_pod, isolated=True),
            policy=WATCH_POLICY,
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
        elif action is PodAction.BIND and self.bind_pods:
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
