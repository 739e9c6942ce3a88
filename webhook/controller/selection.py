"""Which watched objects concern Applications this controller acts on (its shard's, and
not passed through to another controller).

Holds Selection: an index of the Applications the Application watch has shown, each
judged once by webhook.core.scope.Scope.ours from the watched object itself, and
``keys`` (the work-queue keys of one watch event that this controller may act on). An
event on a Rollout, a ControllerRevision or a workload concerns the Application that
owns it (its controller ownerReference, else its app.oam.dev/name label); one whose
Application is not in the index as ours is dropped, so a shard never reads (beyond its
watches) nor writes another shard's objects. An Application that becomes ours (first
seen, or pinned here by its label) also queues its components' Rollouts, so a run in
flight is driven at once. A deleted Application stays in the index until the next
listing, so the deletion of its objects still reaches its own controller. A namespace
the namespace selector no longer matches (``left_namespace``) makes its Applications not
ours at once; one it comes to match has its Applications judged again by the loop.

The index is only right once the Applications are listed: the loop starts the other
watches after that. It must not read the API and must not decide whether an Application
is ours (core.scope does).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.controller.queue import Key
from webhook.core.objects import owner_application
from webhook.core.scope import Scope

AppKey = tuple[str, str]  # (namespace, name)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def component_names(app: Mapping[str, Any]) -> list[str]:
    """The component names of a raw Application's spec (as watched: any shape)."""
    spec = app.get("spec")
    components = spec.get("components") if isinstance(spec, Mapping) else None
    if not isinstance(components, list):
        return []
    return [str(c["name"]) for c in components
            if isinstance(c, Mapping) and isinstance(c.get("name"), str) and c["name"]]


@dataclass
class Selection:
    scope: Scope
    _ours: dict[AppKey, bool] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ours(self, namespace: str, app: str) -> bool:
        """The Application ``namespace/app`` is in the index as ours."""
        with self._lock:
            return self._ours.get((namespace, app), False)

    def listed(self, apps: list[dict[str, Any]]) -> None:
        """A fresh listing of the Applications: whatever it lacks is gone (tombstones and
        deletions missed while the watch was down); what it holds is judged as it comes."""
        present = {(str(_meta(a).get("namespace", "")), str(_meta(a).get("name", "")))
                   for a in apps}
        with self._lock:
            self._ours = {k: v for k, v in self._ours.items() if k in present}

    def left_namespace(self, namespace: str) -> None:
        """``namespace`` is no longer selected: none of its Applications is ours now (their
        next events judge them again)."""
        with self._lock:
            for key in self._ours:
                if key[0] == namespace:
                    self._ours[key] = False

    def keys(self, application_event: bool, obj: Mapping[str, Any], deleted: bool,
             keys: list[Key]) -> list[Key]:
        """Of ``keys`` (what one event concerns, loop.keys_for), those this controller
        may act on; for an Application event the index is updated first."""
        meta = _meta(obj)
        namespace = str(meta.get("namespace", ""))
        if application_event:
            key = (namespace, str(meta.get("name", "")))
            with self._lock:
                was = self._ours.get(key)
                # Deleted: kept as it was until the next listing (see the module docstring).
                now = was if deleted and was is not None else self.scope.ours(obj)
                self._ours[key] = bool(now)
            if not now:
                return []
            if was:
                return keys
            # Newly ours: its Rollouts may be mid-run under the shard that had it.
            extra: list[Key] = [("rollout", namespace, c) for c in component_names(obj)]
            return [*keys, *(k for k in extra if k not in keys)]
        app = owner_application(obj)
        return keys if app and self.ours(namespace, app) else []
