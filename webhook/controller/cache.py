"""The objects the controller's watches see, kept for its reconcilers to read.

Holds Store (one kind's objects, as last listed, seen on its watch or written by the
controller itself, by namespace and name, slimmed: no managedFields, no workload pod
template) and Caches (the Stores of the kinds the controller reads: what the
Application pass's inventory lists and what a Rollout's decision reads). A Store tells
its feed what a listing changed (``replace``), so a periodic relist queues only what
changed since, not every key; a listed Application whose status lags its spec or is not
healthy is queued again too (``wants_resync``), so a write refused for want of rights
is still retried once per resync. A newer resourceVersion always wins: a watch event
that arrives after the controller's own write of a later version does not roll it back.

Reads from a Store may lag the API by a watch event; every decision made on them is
level-based and every status write carries its resourceVersion as a precondition, so a
stale read costs a 409 and a retry (after ``refresh``), never a wrong write. Deletions
re-read from the API (guards.py). It must not talk to the API (the watches feed it, the
reconcilers tell it what they wrote) nor decide anything about the objects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.core.labels import LABEL_APP_NAME, LABEL_MANAGED_BY, MANAGED_BY
from webhook.core.objects import labels_of, metadata
from webhook.kube.client import (
    APPLICATIONS,
    CLONESETS,
    DEPLOYMENTS,
    KNOWN_KINDS,
    REVISIONS,
    ROLLOUTS,
    Resource,
)

ObjKey = tuple[str, str]  # (namespace, name)
SERVICES = KNOWN_KINDS[("v1", "Service")]
CONFIGMAPS = KNOWN_KINDS[("v1", "ConfigMap")]
# Kinds no watch of the loop's queues keys for, cached for the inventory alone; only
# objects labelled managed-by are kept (the watch selects them).
INVENTORY_ONLY = (SERVICES, CONFIGMAPS)
INVENTORY_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
# The label every Store indexes its objects by, within a namespace: the inventory reads
# one Application's objects at a time.
INDEXED = LABEL_APP_NAME
_WORKLOADS = frozenset({DEPLOYMENTS.plural, CLONESETS.plural})


def _version(obj: Mapping[str, Any]) -> int | None:
    try:
        return int(str(metadata(obj).get("resourceVersion")))
    except ValueError:
        return None


def _newer(kept: Mapping[str, Any], seen: Mapping[str, Any]) -> bool:
    """``kept`` is a later version than ``seen`` (resourceVersions are etcd revisions;
    one that is not a number is never judged older)."""
    kept_v, seen_v = _version(kept), _version(seen)
    return kept_v is not None and seen_v is not None and kept_v > seen_v


def slim(resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` as kept: without managedFields (most of an object's size) and, for a
    workload, without its pod template (a decision reads sizes and status; a write of a
    template renders it anew, and a retemplate reads the live object fresh)."""
    out = dict(obj)
    meta = dict(metadata(obj))
    meta.pop("managedFields", None)
    out["metadata"] = meta
    spec = obj.get("spec")
    if resource.plural in _WORKLOADS and isinstance(spec, Mapping) and "template" in spec:
        out["spec"] = {k: v for k, v in spec.items() if k != "template"}
    return out


class Store:
    """One kind's objects by (namespace, name), indexed by (namespace, app name label)."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.synced = threading.Event()
        self._lock = threading.Lock()
        self._objects: dict[ObjKey, dict[str, Any]] = {}
        self._index: dict[ObjKey, set[str]] = {}  # (namespace, app label) -> names

    def __len__(self) -> int:
        return len(self._objects)

    # ---- fed by the watch and by the controller's own writes ---------------------------

    def replace(self, items: Iterable[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """A full listing: what it changed since the last one, as watch events (ADDED or
        MODIFIED for a new resourceVersion, DELETED for an object no longer there)."""
        changed: list[tuple[str, dict[str, Any]]] = []
        seen: set[ObjKey] = set()
        with self._lock:
            for raw in items:
                key = _key(raw)
                seen.add(key)
                old = self._objects.get(key)
                if old is not None and (_newer(old, raw) or metadata(old).get(
                        "resourceVersion") == metadata(raw).get("resourceVersion")):
                    continue  # unchanged, or our own write after the listing's snapshot
                changed.append(("ADDED" if old is None else "MODIFIED", dict(raw)))
                self._put(key, slim(self.resource, raw))
            for key in [k for k in self._objects if k not in seen]:
                changed.append(("DELETED", self._objects[key]))
                self._drop(key)
        self.synced.set()
        return changed

    def apply(self, kind: str, raw: Mapping[str, Any]) -> None:
        """One watch event, or one of our own writes (``MODIFIED``) or deletes
        (``DELETED``); an older version than the one kept is ignored."""
        obj = slim(self.resource, raw)
        key = _key(obj)
        with self._lock:
            old = self._objects.get(key)
            if old is not None and _newer(old, obj):
                return
            if kind == "DELETED":
                if old is not None and metadata(old).get("uid") == metadata(obj).get("uid"):
                    self._drop(key)
                return
            self._put(key, obj)

    def _put(self, key: ObjKey, obj: dict[str, Any]) -> None:
        old = self._objects.get(key)
        if old is not None:
            self._unindex(key, old)
        self._objects[key] = obj
        app = labels_of(obj).get(INDEXED)
        if app:
            self._index.setdefault((key[0], str(app)), set()).add(key[1])

    def _drop(self, key: ObjKey) -> None:
        old = self._objects.pop(key, None)
        if old is not None:
            self._unindex(key, old)

    def _unindex(self, key: ObjKey, old: Mapping[str, Any]) -> None:
        app = labels_of(old).get(INDEXED)
        names = self._index.get((key[0], str(app))) if app else None
        if names is not None:
            names.discard(key[1])
            if not names:
                del self._index[(key[0], str(app))]

    # ---- read by the reconcilers -------------------------------------------------------

    # Reads hand out shallow copies: a reconcile that sets a field of what it read (the
    # metadata its write answered with, say) does not change the kept object.

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._objects.get((namespace, name))
        return dict(found) if found is not None else None

    def of_app(self, namespace: str, app: str,
               labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """The objects labelled with Application ``app``'s name in ``namespace`` that also
        carry every label of ``labels``, by name."""
        with self._lock:
            found = [dict(self._objects[(namespace, n)])
                     for n in sorted(self._index.get((namespace, app), ()))]
        if not labels:
            return found
        return [o for o in found
                if all(labels_of(o).get(k) == v for k, v in labels.items())]

    def in_namespace(self, namespace: str, label: str,
                     values: Iterable[str]) -> list[dict[str, Any]]:
        """The objects of ``namespace`` whose ``label`` is one of ``values`` (any owner:
        names must not collide), by name."""
        wanted = set(values)
        with self._lock:
            found = [dict(o) for (ns, _), o in self._objects.items()
                     if ns == namespace and labels_of(o).get(label) in wanted]
        return sorted(found, key=lambda o: str(metadata(o).get("name")))


def _key(obj: Mapping[str, Any]) -> ObjKey:
    meta = metadata(obj)
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Caches:
    """The Stores the controller reads instead of the API: every kind the loop watches,
    and the inventory's Services and ConfigMaps."""

    def __init__(self) -> None:
        kinds = (APPLICATIONS, ROLLOUTS, REVISIONS, DEPLOYMENTS, CLONESETS, *INVENTORY_ONLY)
        self.stores: dict[str, Store] = {r.plural: Store(r) for r in kinds}

    def store(self, resource: Resource) -> Store:
        return self.stores[resource.plural]

    def synced(self) -> bool:
        return all(s.synced.is_set() for s in self.stores.values())

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store(resource).get(namespace, name)

    def wrote(self, resource: Resource, obj: Mapping[str, Any] | None) -> None:
        """Our own write's answer: kept at once, so the next read does not miss it. The
        answer's own kind decides where (a workload's Service goes with the Services)."""
        if not isinstance(obj, Mapping) or not metadata(obj).get("name"):
            return
        resource = KNOWN_KINDS.get((str(obj.get("apiVersion")), str(obj.get("kind"))),
                                   resource)
        if resource.plural in self.stores:
            self.store(resource).apply("MODIFIED", obj)

    def deleted(self, resource: Resource, namespace: str, name: str, uid: str) -> None:
        """Our own delete of that very object (by UID): gone from the cache at once."""
        if resource.plural in self.stores:
            self.store(resource).apply("DELETED", {"metadata": {
                "namespace": namespace, "name": name, "uid": uid}})

    def owned(self, namespace: str, app: str,
              kinds: Mapping[str, Resource]) -> list[tuple[str, dict[str, Any]]]:
        """(kind, object) of every ``kinds`` object labelled managed-by for Application
        ``app``: what the inventory lists."""
        mark = {LABEL_MANAGED_BY: MANAGED_BY}
        return [(kind, obj) for kind, resource in kinds.items()
                if resource.plural in self.stores
                for obj in self.store(resource).of_app(namespace, app, mark)]


def wants_resync(resource: Resource, obj: Mapping[str, Any]) -> bool:
    """A listed object queued again though it did not change: an Application whose
    status lags its spec or reports a problem (a write refused for want of rights may be
    allowed now: nothing else would tell)."""
    if resource is not APPLICATIONS:
        return False
    status = obj.get("status")
    if not isinstance(status, Mapping):
        return True
    if status.get("observedGeneration") != metadata(obj).get("generation"):
        return True
    services = status.get("services")
    return status.get("status") != "running" or not isinstance(services, list) or not all(
        isinstance(s, Mapping) and s.get("healthy") is True for s in services)


def lagging(resource: Resource, obj: Mapping[str, Any]) -> bool:
    """An Application whose status was not written for its current spec (changed while
    no replica led, say): a new leader takes it before the listing's others."""
    if resource is not APPLICATIONS:
        return False
    status = obj.get("status")
    observed = status.get("observedGeneration") if isinstance(status, Mapping) else None
    return observed != metadata(obj).get("generation")
