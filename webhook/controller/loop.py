"""The controller's run loop: watches feed a work queue, workers reconcile, a Lease elects.

Holds the mapping from watched objects to Application / Rollout keys (``keys_for``), the
handler that turns each watch event into queued keys, and ControllerLoop tying the parts
together: one webhook.kube.watching.ListWatch per watched kind (list, then watch from the
list's resourceVersion; each watch's end lists again, which is the resync safety net; no
fixed polling), the WorkQueue (queue.py), the workers, the LeaderElector (lease.py); it
reports its health facts (role, busy workers, synced watches) and its reconciles to
metrics. With a Scope that is not everything (a shard of several, unknown types left to
another controller), events pass through a Selection (selection.py) and the Applications
are listed before the other kinds are watched (with --namespace-selector, the selected
namespaces before those: namespaces.py), so no key of another controller's
Application is ever queued. It must not decide rollouts (keys go to
reconcile.Reconciler) nor judge its own health (health.py does).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.controller.cache import (
    INVENTORY_ONLY,
    INVENTORY_SELECTOR,
    Store,
    lagging,
    wants_resync,
)
from webhook.controller.health import HealthFacts
from webhook.controller.lease import LeaderElector
from webhook.controller.logs import about
from webhook.controller.metrics import ControllerMetrics
from webhook.controller.namespaces import NAMESPACES, NamespaceFeed, NamespaceIndex
from webhook.controller.queue import Key, WorkQueue
from webhook.controller.reconcile import ANNOTATION_ROLLED_BY, Reconciler
from webhook.controller.selection import Selection
from webhook.controller.views import blocked_components
from webhook.core.errors import ApiError, OamRolloutError
from webhook.core.labels import LABEL_COMPONENT, LABEL_CONTROLLER_COMPONENT
from webhook.core.objects import owner_application
from webhook.core.scope import EVERYTHING, Scope
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
             CLONESETS: LABEL_COMPONENT,
             **dict.fromkeys(INVENTORY_ONLY, INVENTORY_SELECTOR)}
# A kind that is not installed (no CloneSet CRD, say) is looked for again this often.
ABSENT_RETRY_SECONDS = 30.0
# After our own Rollout status write, its Application's pass (the health it reports) waits
# this long, so that one pass follows a run of quick writes.
OWN_WRITE_APP_DELAY = 0.5
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
    # Only the keys of Applications this controller acts on (None: every key).
    selection: Selection | None = None
    # Told every full listing of the kind (metrics forget Rollouts deleted unseen).
    on_listed: Callable[[list[dict[str, Any]]], None] | None = None
    # The kind's cache (cache.py): a relist then queues only what changed since.
    store: Store | None = None

    def listed(self, items: list[dict[str, Any]]) -> None:
        if self.selection is not None and self.resource is APPLICATIONS:
            self.selection.listed(items)
        if self.on_listed is not None:
            self.on_listed(items)
        if self.store is None:
            for obj in items:
                self.changed("SYNC", obj)
            return
        first = not self.store.synced.is_set()
        changed = self.store.replace(items)
        moved = {str(_meta(o).get("uid")) for _, o in changed}
        for kind, obj in changed:  # at the first listing, everything: all of it SYNC
            self._queue("SYNC" if first else kind, obj)
        for obj in items:  # unchanged, but a problem may have gone (cache.wants_resync)
            if str(_meta(obj).get("uid")) not in moved and wants_resync(self.resource, obj):
                self._queue("SYNC", obj)

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        if self.store is not None:
            self.store.apply(kind, obj)
        self._queue(kind, obj)

    def _queue(self, kind: str, obj: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(self.resource, kind, obj)
        own = (self.resource is ROLLOUTS and kind == "MODIFIED" and self.own_write is not None
               and self.own_write(str(_meta(obj).get("resourceVersion"))))
        keys = keys_for(self.resource, obj, deleted=kind == "DELETED")
        if self.selection is not None:
            keys = self.selection.keys(self.resource is APPLICATIONS, obj, kind == "DELETED",
                                       keys)
        # A change seen now goes ahead of a listing's backlog; so does a listed
        # Application whose status lags its spec (changed while no replica led, say).
        first = kind != "SYNC" or lagging(self.resource, obj)
        for key in keys:
            if own and key[0] == "rollout":
                continue  # our own status write: decided already, nothing new to see
            if own:
                # Its Application's health follows, a moment later: one pass for the
                # writes of a few batches, never in the way of the next batch's write.
                self.queue.wake_after(key, OWN_WRITE_APP_DELAY)
                continue
            self.queue.add(key, first=first)


def watch_kind(api: WatchApi, resource: Resource, feed: EventFeed | NamespaceFeed,
               namespace: str | None, stop: threading.Event, resync_seconds: int = 300,
               selector: str | None = None) -> ListWatch:
    """The ListWatch of one kind: a watch ends after about ``resync_seconds`` (spread by
    up to a fifth, so replicas do not relist together) and the kind is listed again."""
    policy = WatchPolicy(
        watch_seconds=resync_seconds, jitter=0.2, relist_after_watch=True, backoff_first=0.2,
        backoff_max=10.0, absent_retry=ABSENT_RETRY_SECONDS, list_timeout=LIST_TIMEOUT_SECONDS)
    return ListWatch(f"watch {resource.plural}", api, resource.path(namespace), feed,
                     selector=selector or SELECTORS.get(resource), policy=policy, stop=stop,
                     logger=log)


def key_fields(key: Key) -> dict[str, str]:
    """What a key's log lines are about: an Application's key names the app, a Rollout's
    the component (a Rollout is named after its component)."""
    kind, namespace, name = key
    return {"namespace": namespace, "app" if kind == "app" else "component": name}


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
    # The Applications this controller acts on (its shard's, not passed through).
    scope: Scope = EVERYTHING
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
        selection = None if self.scope.everything else Selection(self.scope)
        caches = self.reconciler.caches
        for resource in WATCHED:
            feed = EventFeed(resource, self.queue, self.on_event, self.reconciler.wrote,
                             selection)
            if resource is ROLLOUTS and self.metrics is not None:
                feed.on_listed = self.metrics.rollouts_listed
            feed.store = caches.store(resource) if caches is not None else None
            self.watchers[resource.plural] = watch_kind(
                self.api, resource, feed, self.namespace, self.stop, self.resync_seconds)
        kinds = WATCHED if caches is None else (*WATCHED, *INVENTORY_ONLY)
        for resource in kinds[len(WATCHED):]:  # read by the inventory, from its cache
            feed = EventFeed(resource, self.queue, selection=selection,
                             store=caches.store(resource) if caches is not None else None)
            self.watchers[resource.plural] = watch_kind(
                self.api, resource, feed, self.namespace, self.stop, self.resync_seconds)
        if selection is not None and self.scope.namespace_selector is not None:
            # Applications are judged by their namespace's labels: know those first.
            watcher = self._watch_namespaces(selection)
            while not watcher.synced.wait(0.1):
                if self.stop.is_set():
                    return True
        # Every watcher is known before any starts, so /readyz waits for all of them.
        for resource in kinds:
            watcher = self.watchers[resource.plural]
            self._spawn(watcher.run, f"watch-{resource.plural}")
            if selection is not None and resource is APPLICATIONS:
                # Events of the other kinds are judged by their Application: know them all.
                while not watcher.synced.wait(0.1):
                    if self.stop.is_set():
                        return True
        # Reconciles read the caches: none before every kind is listed.
        while caches is not None and not all(w.synced.wait(0.05) for w in
                                             self.watchers.values()):
            if self.stop.is_set():
                return True
        for i in range(self.workers):
            self._spawn(self._work, f"worker-{i}")
        return True

    def _watch_namespaces(self, selection: Selection) -> ListWatch:
        """Start the watch of the namespaces --namespace-selector matches (namespaces.py):
        one that comes to match has its Applications listed, judged again and queued; one
        that stops matching has none of them acted on from then on."""
        index = self.scope.namespace_labels
        assert isinstance(index, NamespaceIndex), "a namespace selector needs a NamespaceIndex"

        def entered(namespace: str) -> None:
            listing = self.api.get_json(APPLICATIONS.path(namespace), None,
                                        LIST_TIMEOUT_SECONDS)
            items = listing.get("items") if isinstance(listing, dict) else None
            for app in items if isinstance(items, list) else []:
                if isinstance(app, dict):  # now ours: queued with its Rollouts (selection.py)
                    for key in selection.keys(True, app, False, keys_for(APPLICATIONS, app)):
                        self.queue.add(key, first=True)

        feed = NamespaceFeed(self.scope, index, entered, selection.left_namespace)
        watcher = watch_kind(self.api, NAMESPACES, feed, None, self.stop, self.resync_seconds,
                             selector=str(self.scope.namespace_selector))
        self.watchers[NAMESPACES.plural] = watcher
        self._spawn(watcher.run, f"watch-{NAMESPACES.plural}")
        return watcher

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
                with about(**key_fields(key)):
                    result = self._reconcile(key, began)
            finally:
                with self._busy_lock:
                    self._busy.pop(worker, None)
                if self.metrics is not None:
                    self.metrics.observe_reconcile(key[0], result, self.clock() - began)
                self.queue.done(key)

    def _reconcile(self, key: Key, began: float) -> str:
        """One reconcile of ``key``, failures logged and the key retried; its result."""
        try:
            self.process(key)
        except ApiError as exc:
            log.info("%s %s/%s: %s; retrying", *key, exc)
            self.queue.retry(key, immediate=exc.conflict)
            return "conflict" if exc.conflict else "error"
        except OamRolloutError as exc:  # e.g. a template that cannot render: no traceback
            log.warning("%s %s/%s: %s; retrying", *key, exc)
            self.queue.retry(key)
            return "error"
        except Exception:
            log.exception("%s %s/%s failed; retrying", *key)
            self.queue.retry(key)
            return "error"
        self.queue.forget(key)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("reconciled %s %s/%s in %.3fs", *key, self.clock() - began)
        return "success"

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
