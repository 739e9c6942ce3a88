"""A watch-fed copy of the live state admission reads: component revisions and Rollouts.

Holds ``StateCache``: two reflectors, one per resource. Each one lists, then watches from the
list's resourceVersion, and lists again after 410 Gone or any break. They cover the
ControllerRevisions labelled with a component and the Rollouts of every namespace, stored
as the reduced values decisions use, indexed by namespace. ``read`` answers only while
every reflector it needs is live. Otherwise it returns None, the caller reads the API
directly, and a broken watch never serves old state. It must not take decisions and must
not write to the cluster.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from webhook.core.errors import ClusterReadError
from webhook.core.labels import (
    APP_KIND,
    LABEL_APP_NAME,
    LABEL_CONTROLLER_COMPONENT,
    ROLLOUT_GROUP,
    ROLLOUT_PLURAL,
    ROLLOUT_VERSION,
)
from webhook.core.state import ComponentObservation, ObservedState, RevisionRecord
from webhook.kube.reader import (
    ApiReader,
    component_observation,
    revision_record,
)

log = logging.getLogger("oam_rollout.webhook")

# The apiserver ends each watch after this long; we then watch again from where it ended.
WATCH_SECONDS = 240
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 5.0

V = TypeVar("V")


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


class Reflector(Generic[V]):
    """Keeps {namespace: {name: reduce(object)}} in step with one listed resource."""

    def __init__(
        self,
        reader: ApiReader,
        path: str,
        reduce: Callable[[Mapping[str, Any]], V | None],
        selector: str | None = None,
    ) -> None:
        self.reader = reader
        self.path = path
        self.reduce = reduce
        self.selector = selector
        self.error: str | None = None
        self._items: dict[str, dict[str, V]] = {}
        self._lock = threading.Lock()
        self._live = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"reflect {path}")

    @property
    def live(self) -> bool:
        """Listed, and watching without a break since."""
        return self._live

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._live = False

    def values_in(self, namespace: str) -> list[V]:
        with self._lock:
            return list(self._items.get(namespace, {}).values())

    def _query(self) -> dict[str, str]:
        return {"labelSelector": self.selector} if self.selector else {}

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._stopped.is_set():
            try:
                version = self._list()
                backoff = BACKOFF_FIRST
                while not self._stopped.is_set():
                    began = time.monotonic()
                    version = self._watch(version)
                    if time.monotonic() - began < 1.0:
                        # A stream that ends at once (a proxy, a misbehaving server) must
                        # not turn this loop into a busy one.
                        self._stopped.wait(0.5)
            except _Gone:
                continue
            except (ClusterReadError, ValueError, TypeError, KeyError) as exc:
                if self._live or self.error != str(exc):
                    log.warning({"level": "warning", "msg": f"state cache: {exc}"})
                self._live = False
                self.error = str(exc)
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _list(self) -> str:
        listing = self.reader.get_json(self.path, self._query())
        if not isinstance(listing, dict) or not isinstance(listing.get("items"), list):
            raise ClusterReadError(f"listing {self.path}: the API answered something else")
        items: dict[str, dict[str, V]] = {}
        for obj in listing["items"]:
            if isinstance(obj, dict):
                self._put(items, obj)
        with self._lock:
            self._items = items
        self._live, self.error = True, None
        return str(_meta(listing).get("resourceVersion", ""))

    def _put(self, items: dict[str, dict[str, V]], obj: Mapping[str, Any]) -> None:
        meta = _meta(obj)
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        value = self.reduce(obj)
        if value is None:
            items.get(namespace, {}).pop(name, None)
        else:
            items.setdefault(namespace, {})[name] = value

    def _watch(self, version: str) -> str:
        query = {
            **self._query(),
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        for event in self.reader.stream_events(self.path, query, WATCH_SECONDS + 30):
            kind, obj = event.get("type"), event.get("object")
            if not isinstance(obj, dict):
                continue
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _Gone
                raise ClusterReadError(f"WATCH {self.path}: {obj.get('message', obj)}")
            version = str(_meta(obj).get("resourceVersion", version))
            if kind in ("ADDED", "MODIFIED"):
                with self._lock:
                    self._put(self._items, obj)
            elif kind == "DELETED":
                meta = _meta(obj)
                with self._lock:
                    self._items.get(str(meta.get("namespace", "")), {}).pop(
                        str(meta.get("name", "")), None
                    )
            if self._stopped.is_set():
                break
        return version


# A Rollout as admission needs it: which Applications it belongs to, and what it observes.
RolloutEntry = tuple[str, frozenset[str], ComponentObservation]


def rollout_entry(obj: Mapping[str, Any]) -> RolloutEntry | None:
    meta = _meta(obj)
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    apps = {str(labels[LABEL_APP_NAME])} if labels and LABEL_APP_NAME in labels else set()
    refs = meta.get("ownerReferences")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict) and ref.get("kind") == APP_KIND and ref.get("name"):
            apps.add(str(ref["name"]))
    return str(meta.get("name", "")), frozenset(apps), component_observation(obj)


class StateCache:
    """Watch-fed ObservedState for any Application; ``read`` is None while not live."""

    def __init__(self, reader: ApiReader) -> None:
        self.revisions: Reflector[RevisionRecord] = Reflector(
            reader, "/apis/apps/v1/controllerrevisions", revision_record, LABEL_CONTROLLER_COMPONENT
        )
        self.rollouts: Reflector[RolloutEntry] = Reflector(
            reader, f"/apis/{ROLLOUT_GROUP}/{ROLLOUT_VERSION}/{ROLLOUT_PLURAL}", rollout_entry
        )

    def start(self) -> None:
        self.revisions.start()
        self.rollouts.start()

    def stop(self) -> None:
        self.revisions.stop()
        self.rollouts.stop()

    @property
    def live(self) -> bool:
        return self.revisions.live and self.rollouts.live

    def read(self, namespace: str, name: str, *, rollouts: bool = True) -> ObservedState | None:
        """What is live, as webhook.kube.reader.read_observed_state reads it; None if not live."""
        if not self.revisions.live or (rollouts and not self.rollouts.live):
            return None
        records = tuple(
            sorted(
                self.revisions.values_in(namespace), key=lambda r: (r.component, r.number, r.name)
            )
        )
        components = (
            {
                rollout: seen
                for rollout, apps, seen in self.rollouts.values_in(namespace)
                if name in apps
            }
            if rollouts
            else {}
        )
        return ObservedState(namespace=namespace, revisions=records, components=components)
