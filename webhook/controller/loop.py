"""The controller's run loop: watches feed a work queue, workers reconcile, a Lease elects.

Holds the mapping from watched objects to Application / Rollout keys (``keys_for``), the
handler that turns each watch event into queued keys, and ControllerLoop tying the parts
together: one webhook.kube.watching.ListWatch per watched kind (list, then watch from the
list's resourceVersion; each watch's end lists again, which is the resync safety net; no
fixed polling), the WorkQueue (queue.py), the workers, the LeaderElector (lease.py); it
reports its health facts (role, busy workers, synced watches) and its reconciles to
metrics. It must not decide rollouts (keys go to reconcile.Reconciler) nor judge its own
health (health.py does).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.controller.health import HealthFacts
from webhook.controller.lease import LeaderElector
from webhook.controller.metrics import ControllerMetrics
from webhook.controller.queue import Key, WorkQueue
from webhook.controller.reconcile import ANNOTATION_ROLLED_BY, Reconciler
from webhook.controller.views import blocked_components
from webhook.core.errors import ApiError, OamRolloutError
from webhook.core.labels import LABEL_COMPONENT, LABEL_CONTROLLER_COMPONENT
from webhook.core.objects import owner_application
from webhook.kube.client import (
    APPLICATIONS,
    CLONESETS,
    DEPLOYMENTS,
    REVISIONS,
    ROLLOUTS,
    KubeApi,
    Resource,
)
from webhook.kube.watching import ListWatch, WatchApi, WatchPolicy

log = logging.getLogger("oam_rollout.controller")

# ---- mapping watched objects to keys ----------------------------------------------------


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def keys_for(resource: Resource, obj: Mapping[str, Any], deleted: bool = False) -> list[Key]:
    """Which reconciles an event on ``obj`` concerns (``deleted``: the event says it went)."""
    meta = _meta(obj)
    ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    labels = meta.get("labels") or {}
    app = owner_application(obj)
    keys: list[Key] = []
    if resource is APPLICATIONS:
        keys.append(("app", ns, name))
        # Rollouts waiting for rights wait for a change: one to their Application retries them.
        keys.extend(("rollout", ns, component) for component in blocked_components(obj))
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
            # A rolled workload gone ends a run: the revision it ran may now be trimmed.
            if app and (not rolled or deleted):
                keys.append(("app", ns, app))
    return keys


WATCHED = (APPLICATIONS, ROLLOUTS, REVISIONS, DEPLOYMENTS, CLONESETS)
SELECTORS = {REVISIONS: LABEL_CONTROLLER_COMPONENT, DEPLOYMENTS: LABEL_COMPONENT,
             CLONESETS: LABEL_COMPONENT}
# A kind that is not installed (no CloneSet CRD, say) is looked for again this often.
ABSENT_RETRY_SECONDS = 30.0
# Reads answer fast; the listing of a kind may take longer than a single object's read.
LIST_TIMEOUT_SECONDS = 10.0


@dataclass
class EventFeed:
    """The WatchHandler of one watched kind: every listed or changed object becomes the
    keys it concerns, queued (our own Rollout status writes excepted)."""

    resource: Resource
    queue: WorkQueue
    on_event: Callable[[Resource, str, Mapping[str, Any]], None] | None = None
    own_write: Callable[[str], bool] | None = None

    def listed(self, items: list[dict[str, Any]]) -> None:
        for obj in items:
            self.changed("SYNC", obj)

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(self.resource, kind, obj)
        own = (self.resource is ROLLOUTS and kind == "MODIFIED" and self.own_write is not None
               and self.own_write(str(_meta(obj).get("resourceVersion"))))
        for key in keys_for(self.resource, obj, deleted=kind == "DELETED"):
            if own and key[0] == "rollout":
                continue  # our own status write: decided already, nothing new to see
            self.queue.add(key)


def watch_kind(api: WatchApi, resource: Resource, feed: EventFeed, namespace: str | None,
               stop: threading.Event, resync_seconds: int = 300) -> ListWatch:
    """The ListWatch of one kind: a watch ends after about ``resync_seconds`` (spread by
    up to a fifth, so replicas do not relist together) and the kind is listed again."""
    policy = WatchPolicy(
        watch_seconds=resync_seconds, jitter=0.2, relist_after_watch=True, backoff_first=0.2,
        backoff_max=10.0, absent_retry=ABSENT_RETRY_SECONDS, list_timeout=LIST_TIMEOUT_SECONDS)
    return ListWatch(f"watch {resource.plural}", api, resource.path(namespace), feed,
                     selector=SELECTORS.get(resource), policy=policy, stop=stop, logger=log)


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
    watchers: dict[str, ListWatch] = field(default_factory=dict)  # by plural
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
            feed = EventFeed(resource, self.queue, self.on_event, self.reconciler.wrote)
            watcher = watch_kind(self.api, resource, feed, self.namespace, self.stop,
                                 self.resync_seconds)
            self.watchers[resource.plural] = watcher
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
            unsynced_watches=tuple(plural for plural, w in self.watchers.items()
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

    def halt(self) -> None:
        """Ask everything to stop (safe in a signal handler): a stand-by's wait for the
        lease ends at once."""
        self.stop.set()
        if self.elector is not None:
            self.elector.interrupt()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop; wait up to ``timeout`` s in all for reconciles and a renewal under way,
        then hand the lease over before anything else (a pod deleted with no grace has
        2 s)."""
        self.stop.set()
        self.queue.close()
        for watcher in self.watchers.values():
            watcher.stop(timeout=0)  # end the reads waiting for events; the threads exit
        deadline = self.clock() + timeout
        for thread in self.threads:
            if thread.name.startswith("worker") or thread.name == "lease":
                thread.join(max(0.0, deadline - self.clock()))
        if self.elector is not None:
            self.elector.release()
        if self.reconciler.events is not None:
            self.reconciler.events.close()
        if self.metrics is not None:
            self.metrics.set_leader(False)
