"""A watch-fed copy of the live state admission reads: component revisions and Rollouts.

Holds ``StateCache``: two reflectors, one per resource, each fed by a
webhook.kube.watching.ListWatch (list, watch from the listing's resourceVersion, list
again after 410 Gone or any break). They cover the ControllerRevisions labelled with a
component and the Rollouts of every namespace, stored as the reduced values decisions use,
indexed by namespace and name: whose a Rollout is (its controller) is looked up by name, so
the ownership rule costs one lookup per component whatever the namespace holds. ``read``
answers only while every reflector it needs is live.
Otherwise it returns None, the caller reads the API directly, and a broken watch never
serves old state. It must not take decisions and must not write to the cluster.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from webhook.core.labels import (
    LABEL_CONTROLLER_COMPONENT,
    ROLLOUT_GROUP,
    ROLLOUT_PLURAL,
    ROLLOUT_VERSION,
)
from webhook.core.objects import (
    applications_of,
    component_observation,
    controller_of,
    revision_record,
)
from webhook.core.state import ComponentObservation, ObservedState, OwnerRef, RevisionRecord
from webhook.kube.watching import ListWatch, WatchApi, WatchPolicy

log = logging.getLogger("oam_rollout.webhook")

# The apiserver ends each watch after this long; we then watch again from where it ended.
WATCH_SECONDS = 240
POLICY = WatchPolicy(watch_seconds=WATCH_SECONDS, backoff_first=0.2, backoff_max=5.0)

V = TypeVar("V")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _where(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _meta(obj)
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


class Reflector(Generic[V]):
    """Keeps {namespace: {name: reduce(object)}} in step with one listed resource."""

    def __init__(
        self,
        api: WatchApi,
        path: str,
        reduce: Callable[[Mapping[str, Any]], V | None],
        selector: str | None = None,
    ) -> None:
        self.reduce = reduce
        self._items: dict[str, dict[str, V]] = {}
        self._lock = threading.Lock()
        # "state cache: <failure>" in the webhook's log, as one JSON line.
        self.watch = ListWatch(
            "state cache", api, path, self, selector=selector, policy=POLICY, logger=log
        )

    @property
    def live(self) -> bool:
        """Listed, and watching without a break since."""
        return self.watch.live

    @property
    def error(self) -> str | None:
        """The last failure while not live."""
        return self.watch.error

    def start(self) -> None:
        self.watch.start()

    def stop(self) -> None:
        self.watch.stop(timeout=0)

    def values_in(self, namespace: str) -> list[V]:
        with self._lock:
            return list(self._items.get(namespace, {}).values())

    def get(self, namespace: str, name: str) -> V | None:
        """The object named ``name`` in ``namespace``, by index."""
        with self._lock:
            return self._items.get(namespace, {}).get(name)

    # -- the WatchHandler the ListWatch calls --------------------------------------------

    def listed(self, items: list[dict[str, Any]]) -> None:
        fresh: dict[str, dict[str, V]] = {}
        for obj in items:
            self._store(fresh, obj, self.reduce(obj))
        with self._lock:
            self._items = fresh

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            namespace, name = _where(obj)
            with self._lock:
                self._items.get(namespace, {}).pop(name, None)
            return
        value = self.reduce(obj)  # outside the lock: readers never wait on a reduction
        with self._lock:
            self._store(self._items, obj, value)

    @staticmethod
    def _store(items: dict[str, dict[str, V]], obj: Mapping[str, Any], value: V | None) -> None:
        namespace, name = _where(obj)
        if value is None:
            items.get(namespace, {}).pop(name, None)
        else:
            items.setdefault(namespace, {})[name] = value


# A Rollout as admission needs it: which Applications it belongs to, what it observes, and
# its controller.
RolloutEntry = tuple[str, frozenset[str], ComponentObservation, OwnerRef | None]


def rollout_entry(obj: Mapping[str, Any]) -> RolloutEntry | None:
    return (str(_meta(obj).get("name", "")), applications_of(obj), component_observation(obj),
            controller_of(obj))


class RolloutOwners(Mapping[str, OwnerRef]):
    """{Rollout name: controller} for one namespace, answered from the reflector's index.

    Lookups read the cache when they are made (a review makes one per component); iterating
    walks the namespace and is for comparisons and debugging only.
    """

    def __init__(self, rollouts: Reflector[RolloutEntry], namespace: str) -> None:
        self._rollouts = rollouts
        self._namespace = namespace

    def __getitem__(self, name: str) -> OwnerRef:
        entry = self._rollouts.get(self._namespace, name)
        if entry is None or entry[3] is None:
            raise KeyError(name)
        return entry[3]

    def _owned(self) -> dict[str, OwnerRef]:
        return {e[0]: e[3] for e in self._rollouts.values_in(self._namespace) if e[3] is not None}

    def __iter__(self) -> Iterator[str]:
        return iter(self._owned())

    def __len__(self) -> int:
        return len(self._owned())


class StateCache:
    """Watch-fed ObservedState for any Application; ``read`` is None while not live."""

    def __init__(self, api: WatchApi) -> None:
        self.revisions: Reflector[RevisionRecord] = Reflector(
            api, "/apis/apps/v1/controllerrevisions", revision_record, LABEL_CONTROLLER_COMPONENT
        )
        self.rollouts: Reflector[RolloutEntry] = Reflector(
            api, f"/apis/{ROLLOUT_GROUP}/{ROLLOUT_VERSION}/{ROLLOUT_PLURAL}", rollout_entry
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
                for rollout, apps, seen, _ in self.rollouts.values_in(namespace)
                if name in apps
            }
            if rollouts
            else {}
        )
        owners: Mapping[str, OwnerRef] = (
            RolloutOwners(self.rollouts, namespace) if rollouts else {}
        )
        return ObservedState(
            namespace=namespace, revisions=records, components=components, rollout_owners=owners
        )
