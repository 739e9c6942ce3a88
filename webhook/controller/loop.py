"""The controller's run loop: watches feed a work queue, workers reconcile, a Lease elects.

Holds WorkQueue (keys deduplicated, one worker per key at a time, retries backed off),
the watch threads (list, then watch from the list's resourceVersion; on expiry list
again, which is also the resync safety net; no fixed polling), key mapping from watched
objects to Application / Rollout keys, LeaderElector on a coordination.k8s.io/v1 Lease,
and ControllerLoop tying them together, reporting its health facts (role, busy workers,
synced watches) and its reconciles to metrics. It must not decide rollouts (keys go to
reconcile.Reconciler) nor judge its own health (health.py does).
"""

from __future__ import annotations

import heapq
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from webhook.controller.health import HealthFacts
from webhook.controller.metrics import ControllerMetrics
from webhook.controller.reconcile import ANNOTATION_ROLLED_BY, Reconciler
from webhook.core.errors import OamRolloutError
from webhook.core.labels import (
    APP_KIND,
    LABEL_APP_NAME,
    LABEL_COMPONENT,
    LABEL_CONTROLLER_COMPONENT,
)
from webhook.kube.client import (
    APPLICATIONS,
    CLONESETS,
    DEPLOYMENTS,
    LEASES,
    REVISIONS,
    ROLLOUTS,
    ApiError,
    KubeApi,
    Resource,
)

log = logging.getLogger("oam-rollout.controller")

Key = tuple[str, str, str]  # (kind "app" | "rollout", namespace, name)


class WorkQueue:
    """Pending keys, each processed by one worker at a time; a key added while it is being
    processed runs once more afterwards (so no change is ever missed)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: list[Key] = []
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._later: list[tuple[float, Key]] = []
        self._failures: dict[Key, int] = {}
        self._wakes: dict[Key, float] = {}  # key: when its pending wake-up falls due
        self._closed = False

    def add(self, key: Key) -> None:
        with self._cond:
            if key in self._active:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
                self._cond.notify()

    def add_after(self, key: Key, delay: float) -> None:
        with self._cond:
            heapq.heappush(self._later, (time.monotonic() + delay, key))
            self._cond.notify()

    def wake_after(self, key: Key, delay: float) -> None:
        """Reconcile ``key`` again after ``delay`` seconds (a deadline falls due then).

        Each reconcile of a waiting batch asks again for the same moment, so a key keeps
        one pending wake-up: an earlier one is enough, as that reconcile asks anew.
        """
        with self._cond:
            due = time.monotonic() + delay
            pending = self._wakes.get(key)
            if pending is not None and pending <= due:
                return
            self._wakes[key] = due
            heapq.heappush(self._later, (due, key))
            self._cond.notify()

    def retry(self, key: Key, immediate: bool = False) -> None:
        """Back off exponentially (5 ms doubling to 30 s); a conflict retries at once."""
        with self._cond:
            n = self._failures.get(key, 0) + 1
            self._failures[key] = n
        if immediate and n < 5:
            self.add(key)
        else:
            self.add_after(key, min(30.0, 0.005 * 2 ** min(n, 13)))

    def forget(self, key: Key) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def get(self) -> Key | None:
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    due, key = heapq.heappop(self._later)
                    if self._wakes.get(key) == due:
                        del self._wakes[key]
                    if key in self._active:
                        self._dirty.add(key)
                    elif key not in self._queued:
                        self._queued.add(key)
                        self._ready.append(key)
                if self._ready:
                    key = self._ready.pop(0)
                    self._queued.discard(key)
                    self._active.add(key)
                    return key
                timeout = self._later[0][0] - now if self._later else None
                self._cond.wait(timeout)

    def done(self, key: Key) -> None:
        with self._cond:
            self._active.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._queued.add(key)
                self._ready.append(key)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._ready) + len(self._active)


# ---- mapping watched objects to keys ----------------------------------------------------


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def owner_app(obj: Mapping[str, Any]) -> str | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("kind") == APP_KIND:
            return str(ref.get("name"))
    name = (_meta(obj).get("labels") or {}).get(LABEL_APP_NAME)
    return str(name) if name else None


def keys_for(resource: Resource, obj: Mapping[str, Any]) -> list[Key]:
    """Which reconciles an event on ``obj`` concerns."""
    meta = _meta(obj)
    ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    labels = meta.get("labels") or {}
    app = owner_app(obj)
    keys: list[Key] = []
    if resource is APPLICATIONS:
        keys.append(("app", ns, name))
    elif resource is ROLLOUTS:
        keys.append(("rollout", ns, name))
        if app:
            keys.append(("app", ns, app))
    elif resource is REVISIONS:
        component = labels.get(LABEL_CONTROLLER_COMPONENT)
        if component:
            keys.append(("rollout", ns, str(component)))
    else:  # workloads
        component = labels.get(LABEL_COMPONENT)
        if component:
            keys.append(("rollout", ns, str(component)))
            rolled = ANNOTATION_ROLLED_BY in (meta.get("annotations") or {})
            if app and not rolled:
                keys.append(("app", ns, app))
    return keys


WATCHED = (APPLICATIONS, ROLLOUTS, REVISIONS, DEPLOYMENTS, CLONESETS)
SELECTORS = {REVISIONS: LABEL_CONTROLLER_COMPONENT, DEPLOYMENTS: LABEL_COMPONENT,
             CLONESETS: LABEL_COMPONENT}


@dataclass
class Watcher:
    """List, enqueue everything, then watch from the list's resourceVersion; repeat."""

    api: KubeApi
    resource: Resource
    queue: WorkQueue
    namespace: str | None
    stop: threading.Event
    resync_seconds: int = 300
    on_event: Callable[[Resource, str, Mapping[str, Any]], None] | None = None
    own_write: Callable[[str], bool] | None = None
    # Set once the first list has been queued: the controller has seen everything.
    synced: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                self._list_and_watch()
                failures = 0
            except ApiError as exc:
                if exc.status == 404:
                    # The kind is not installed (e.g. no CloneSet CRD): nothing to sync
                    # now, so it does not hold readiness back; look again later.
                    self.synced.set()
                    self.stop.wait(30)
                    continue
                failures += 1
                log.warning("watch %s: %s", self.resource.plural, exc)
                self.stop.wait(min(10.0, 0.1 * 2 ** failures))
            except Exception:  # a bug must not kill the watch thread for good
                failures += 1
                log.exception("watch %s failed", self.resource.plural)
                self.stop.wait(min(10.0, 0.1 * 2 ** failures))

    def _list_and_watch(self) -> None:
        path = self.resource.path(self.namespace)
        selector = SELECTORS.get(self.resource)
        query = {"labelSelector": selector} if selector else None
        listing = self.api.request("GET", path, query=query)
        for obj in listing.get("items") or []:
            self._enqueue("SYNC", obj)
        self.synced.set()
        version = str((listing.get("metadata") or {}).get("resourceVersion", ""))
        # The server ends a watch after the timeout; listing again is the resync.
        timeout = max(5, int(self.resync_seconds * random.uniform(0.8, 1.0)))
        for event in self.api.watch(path, version, timeout, selector):
            if self.stop.is_set():
                return
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return  # expired resourceVersion: list again
                raise ApiError("WATCH", path, int(obj.get("code") or 0), str(obj.get("message")))
            if kind == "BOOKMARK":
                continue
            self._enqueue(str(kind), obj)

    def _enqueue(self, kind: str, obj: Mapping[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(self.resource, kind, obj)
        own = (self.resource is ROLLOUTS and kind == "MODIFIED" and self.own_write is not None
               and self.own_write(str(_meta(obj).get("resourceVersion"))))
        for key in keys_for(self.resource, obj):
            if own and key[0] == "rollout":
                continue  # our own status write: decided already, nothing new to see
            self.queue.add(key)


# ---- leader election ---------------------------------------------------------------------


def default_identity() -> str:
    """A replica's identity when none is given: unique per host and process."""
    return f"{socket.gethostname()}_{os.getpid()}"


def micro_time(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElector:
    """Holds a coordination.k8s.io/v1 Lease; a holder that misses its renew deadline stops.

    Expiry is judged by the local clock from when this process last saw the lease record
    change (as client-go does), so clock skew between replicas does not matter.
    """

    api: KubeApi
    namespace: str
    name: str = "oam-rollout-controller"
    identity: str = field(default_factory=default_identity)
    lease_seconds: float = 15.0
    renew_seconds: float = 10.0  # renew deadline: give up leadership after this long
    retry_seconds: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _observed: tuple[str, str] = ("", "")
    _observed_at: float = 0.0
    last_attempt: float | None = None  # clock() of the last try, for the liveness probe

    def _path(self) -> str:
        return LEASES.path(self.namespace, self.name)

    def try_acquire_or_renew(self) -> bool:
        now = self.clock()
        self.last_attempt = now
        lease = self.api.get(self._path())
        spec_new = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_seconds)),
            "renewTime": micro_time(),
        }
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {**spec_new, "acquireTime": micro_time(), "leaseTransitions": 0}}
            try:
                self.api.create(LEASES.path(self.namespace), body)
            except ApiError as exc:
                if exc.conflict:
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        expired = now - self._observed_at > float(spec.get("leaseDurationSeconds")
                                                  or self.lease_seconds)
        if holder and holder != self.identity and not expired:
            return False
        new_spec = dict(spec)
        new_spec.update(spec_new)
        if holder != self.identity:
            new_spec["acquireTime"] = micro_time()
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        body = {**lease, "spec": new_spec}
        try:
            self.api.request("PUT", self._path(), body)  # resourceVersion in body: a CAS
        except ApiError as exc:
            if exc.conflict:
                return False
            raise
        self._observed = (self.identity, new_spec["renewTime"])
        self._observed_at = now
        return True

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this process leads (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    log.info("leading as %s (lease %s/%s)", self.identity, self.namespace,
                             self.name)
                    return True
            except ApiError as exc:
                log.warning("lease: %s", exc)
            stop.wait(self.retry_seconds * random.uniform(1.0, 1.2))
        return False

    def keep(self, stop: threading.Event, lost: Callable[[], None]) -> None:
        """Renew until ``stop``; call ``lost`` when a renewal deadline passes."""
        last_ok = self.clock()
        while not stop.wait(self.retry_seconds):
            try:
                if self.try_acquire_or_renew():
                    last_ok = self.clock()
                    continue
            except ApiError as exc:
                log.warning("lease renew: %s", exc)
            if self.clock() - last_ok > self.renew_seconds:
                log.error("lost the lease %s/%s", self.namespace, self.name)
                lost()
                return

    def release(self) -> None:
        """Hand the lease over at once on a clean shutdown."""
        try:
            lease = self.api.get(self._path())
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                spec = dict(lease["spec"])
                spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=micro_time())
                self.api.request("PUT", self._path(), {**lease, "spec": spec})
        except ApiError as exc:
            log.warning("lease release: %s", exc)


# ---- the whole controller ------------------------------------------------------------------


@dataclass
class ControllerLoop:
    api: KubeApi
    reconciler: Reconciler
    namespace: str | None = None
    workers: int = 4
    resync_seconds: int = 300
    elector: LeaderElector | None = None
    on_event: Callable[[Resource, str, Mapping[str, Any]], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    queue: WorkQueue = field(default_factory=WorkQueue)
    lost_lease: Callable[[], None] = field(default=lambda: os._exit(3))
    threads: list[threading.Thread] = field(default_factory=list)
    metrics: ControllerMetrics | None = None
    clock: Callable[[], float] = time.monotonic
    role: str = "starting"  # follower (waiting for the lease), leader, stopping
    watchers: list[Watcher] = field(default_factory=list)
    _busy: dict[str, tuple[str, float]] = field(default_factory=dict)
    _busy_lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> bool:
        """Start watching and working; with an elector, only once the lease is ours."""
        if self.metrics is not None:
            self.metrics.watch_queue(lambda: len(self.queue))
        elector = self.elector
        if elector is not None:
            self.role = "follower"
            if not elector.acquire(self.stop):
                return False
            self._spawn(lambda: elector.keep(self.stop, self.lost_lease), "lease")
        self.role = "leader"
        if self.metrics is not None:
            self.metrics.set_leader(True)
        for resource in WATCHED:
            watcher = Watcher(self.api, resource, self.queue, self.namespace, self.stop,
                              self.resync_seconds, self.on_event, self.reconciler.wrote)
            self.watchers.append(watcher)
            self._spawn(watcher.run, f"watch-{resource.plural}")
        for i in range(self.workers):
            self._spawn(self._work, f"worker-{i}")
        return True

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def health_facts(self) -> HealthFacts:
        """What the health endpoint judges: threads, busy workers, watches, the lease."""
        elector = self.elector
        with self._busy_lock:
            busy = dict(self._busy)
        return HealthFacts(
            now=self.clock(),
            role="stopping" if self.stop.is_set() else self.role,
            busy=busy,
            dead_threads=() if self.stop.is_set() else tuple(
                t.name for t in self.threads if not t.is_alive()),
            unsynced_watches=tuple(w.resource.plural for w in self.watchers
                                   if not w.synced.is_set()),
            lease_tried=elector.last_attempt if elector is not None else None,
            lease_patience=(3 * elector.lease_seconds + elector.retry_seconds + 10
                            if elector is not None else 60.0),
        )

    def _work(self) -> None:
        worker = threading.current_thread().name
        while True:
            key = self.queue.get()
            if key is None:
                return
            began = self.clock()
            with self._busy_lock:
                self._busy[worker] = (f"{key[0]} {key[1]}/{key[2]}", began)
            result = "error"
            try:
                self.process(key)
                self.queue.forget(key)
                result = "success"
            except ApiError as exc:
                log.info("%s %s/%s: %s; retrying", *key, exc)
                result = "conflict" if exc.conflict else "error"
                self.queue.retry(key, immediate=exc.conflict)
            except OamRolloutError as exc:  # e.g. a template that cannot render: no traceback
                log.warning("%s %s/%s: %s; retrying", *key, exc)
                self.queue.retry(key)
            except Exception:
                log.exception("%s %s/%s failed; retrying", *key)
                self.queue.retry(key)
            finally:
                with self._busy_lock:
                    self._busy.pop(worker, None)
                if self.metrics is not None:
                    self.metrics.observe_reconcile(key[0], result, self.clock() - began)
                self.queue.done(key)

    def process(self, key: Key) -> None:
        kind, namespace, name = key
        if kind == "app":
            self.reconciler.application(namespace, name)
            return
        wake = self.reconciler.rollout(namespace, name)
        if wake is not None:
            self.queue.wake_after(key, wake)

    def shutdown(self, timeout: float = 5.0) -> None:
        self.stop.set()
        self.queue.close()
        for thread in self.threads:
            if thread.name.startswith("worker"):
                thread.join(timeout)
        if self.reconciler.events is not None:
            self.reconciler.events.close()
        if self.elector is not None:
            self.elector.release()
        if self.metrics is not None:
            self.metrics.set_leader(False)
