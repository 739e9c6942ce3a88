"""A watch-fed copy of the live state admission reads: component revisions and Rollouts.

Holds ``StateCache``: two reflectors, one per resource, each fed by a
webhook.kube.watching.ListWatch (list page by page, watch from the listing's
resourceVersion, list again after 410 Gone or any break). They cover the
ControllerRevisions labelled with a component and the Rollouts of every namespace,
stored as the reduced values decisions use, by namespace and name, with an index kept in
step: revisions by (namespace, component) and by the stem of their name, Rollouts by
(namespace, Application) and by name (whose a Rollout is, its controller, is looked up by
name). ``read`` with a ReadScope (webhook.admission.judge) hands a review only the
objects it can look at, through index lookups, so a review costs the same whatever the
namespace holds; what it read is remembered until the next change of either resource.
``read`` answers only while every reflector it needs is live.
Otherwise it returns None, the caller reads the API directly, and a broken watch never
serves old state. It must not take decisions and must not write to the cluster.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from webhook.admission.judge import ReadScope
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
# States StateCache.read remembers (see StateCache._memo).
MEMO_SIZE = 256
# Objects per page of a listing (kubectl's page is 500 too).
LIST_PAGE = 500
# The key under which a listed item carries its value, reduced while paging (_PagedLists).
REDUCED = "oam-rollout.dev/reduced"

V = TypeVar("V")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _where(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _meta(obj)
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


class Reflector(Generic[V]):
    """Keeps {namespace: {name: reduce(object)}} in step with one listed resource, with a
    secondary index {namespace: {key: names}} over ``keys(value)``.

    Adds, changes, deletes and relists keep both in step under one lock, so a reader
    never sees an entry its index does not list, or the other way round.
    """

    def __init__(
        self,
        api: WatchApi,
        path: str,
        reduce: Callable[[Mapping[str, Any]], V | None],
        selector: str | None = None,
        keys: Callable[[str, V], Iterable[Hashable]] = lambda _name, _value: (),
    ) -> None:
        self.reduce = reduce
        self.keys = keys
        self._items: dict[str, dict[str, V]] = {}
        self._index: dict[str, dict[Hashable, set[str]]] = {}
        self._lock = threading.Lock()
        # Moves on with every change: what was read at one generation holds until the next.
        self.generation = 0
        # "state cache: <failure>" in the webhook's log, as one JSON line.
        self.watch = ListWatch(
            "state cache", _PagedLists(api, reduce), path, self, selector=selector, policy=POLICY,
            logger=log,
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

    def select(
        self, namespace: str, keys: Iterable[Hashable], names: Iterable[str] = ()
    ) -> dict[str, V]:
        """{name: value} of the objects of ``namespace`` filed under any of ``keys``, and
        of those named in ``names``: index lookups, whatever else the namespace holds."""
        out: dict[str, V] = {}
        with self._lock:
            items = self._items.get(namespace)
            if not items:
                return out
            index = self._index.get(namespace, {})
            for key in keys:
                for name in index.get(key, ()):
                    out[name] = items[name]
            for name in names:
                value = items.get(name)
                if value is not None:
                    out[name] = value
        return out

    def index_view(self) -> dict[str, dict[Hashable, frozenset[str]]]:
        """A copy of the secondary index, for tests and debugging."""
        with self._lock:
            return {
                ns: {key: frozenset(names) for key, names in keyed.items()}
                for ns, keyed in self._index.items()
            }

    # -- the WatchHandler the ListWatch calls --------------------------------------------

    def listed(self, items: list[dict[str, Any]]) -> None:
        fresh: dict[str, dict[str, V]] = {}
        index: dict[str, dict[Hashable, set[str]]] = {}
        for obj in items:
            namespace, name = _where(obj)
            # Listed through _PagedLists, objects come reduced already.
            value = obj[REDUCED] if REDUCED in obj else self.reduce(obj)
            self._put(fresh, index, namespace, name, value)
        with self._lock:
            self._items, self._index = fresh, index
            self.generation += 1

    def changed(self, kind: str, obj: dict[str, Any]) -> None:
        namespace, name = _where(obj)
        # Reduced outside the lock: readers never wait on a reduction.
        value = None if kind == "DELETED" else self.reduce(obj)
        with self._lock:
            self._put(self._items, self._index, namespace, name, value)
            self.generation += 1

    def _put(
        self,
        items: dict[str, dict[str, V]],
        index: dict[str, dict[Hashable, set[str]]],
        namespace: str,
        name: str,
        value: V | None,
    ) -> None:
        """Store (or, with None, drop) one entry and move its index keys with it."""
        in_namespace = items.get(namespace)
        old = in_namespace.get(name) if in_namespace is not None else None
        if old is not None:
            keyed = index[namespace]
            for key in self.keys(name, old):
                names = keyed.get(key)
                if names is not None:
                    names.discard(name)
                    if not names:
                        del keyed[key]
        if value is None:
            if in_namespace is not None and in_namespace.pop(name, None) is not None and (
                not in_namespace
            ):
                del items[namespace]
                index.pop(namespace, None)
            return
        items.setdefault(namespace, {})[name] = value
        keyed = index.setdefault(namespace, {})
        for key in self.keys(name, value):
            keyed.setdefault(key, set()).add(name)


class _PagedLists(Generic[V]):
    """The WatchApi a reflector lists through: pages of LIST_PAGE objects, each object
    reduced (``reduce``) before the next page is fetched.

    One listing of 20,000 ControllerRevisions is tens of MB of JSON. Decoded whole, every
    object with its managedFields would be alive at once, and the memory the reduced
    values are kept in would be strewn among theirs: the worker grew by 55 MiB for them,
    against 20 MiB page by page. The apiserver serves every page of one listing from the
    same snapshot (continue tokens), whose resourceVersion the watch resumes from.
    Each item of the answer is ``{"metadata": {namespace, name}, REDUCED: value}``, which
    the Reflector stores as it is; objects that reduce to None are left out.
    """

    def __init__(self, api: WatchApi, reduce: Callable[[Mapping[str, Any]], V | None]) -> None:
        self._api = api
        self._reduce = reduce

    def get_json(
        self, path: str, query: Mapping[str, str] | None = None, read_timeout: float | None = None
    ) -> Any:
        items: list[dict[str, Any]] = []
        params = {**(query or {}), "limit": str(LIST_PAGE)}
        first: Any = None
        while True:
            page = self._api.get_json(path, params, read_timeout)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                return page  # the ListWatch says what is wrong with it
            if first is None:
                first = {k: v for k, v in page.items() if k != "items"}
            for obj in page["items"]:
                value = self._reduce(obj) if isinstance(obj, dict) else None
                if value is not None:
                    namespace, name = _where(obj)
                    items.append({"metadata": {"namespace": namespace, "name": name},
                                  REDUCED: value})
            token = _meta(page).get("continue")
            del page  # before the next page is read
            if not isinstance(token, str) or not token:
                break
            params = {**(query or {}), "limit": str(LIST_PAGE), "continue": token}
        return {**first, "items": items}

    def watch(
        self, path: str, resource_version: str, timeout_seconds: int, selector: str | None = None
    ) -> Iterable[dict[str, Any]]:
        return self._api.watch(path, resource_version, timeout_seconds, selector)


def revision_keys(name: str, record: RevisionRecord) -> tuple[Hashable, ...]:
    """A revision is filed under its component, and under the stem of its name
    (``web`` for ``web-v12``): the names a new revision of ``web`` must avoid."""
    stem = revision_stem(name)
    keys: tuple[Hashable, ...] = (("component", record.component),)
    return keys if stem is None else (*keys, ("stem", stem))


def revision_stem(name: str) -> str | None:
    """``web`` for ``web-v12``; None for a name not of the form ``<stem>-v<digits>``."""
    stem, sep, number = name.rpartition("-v")
    return stem if sep and stem and number.isascii() and number.isdigit() else None


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


def rollout_keys(_name: str, entry: RolloutEntry) -> tuple[Hashable, ...]:
    """A Rollout is filed under each Application it belongs to."""
    return tuple(("application", app) for app in entry[1])


class StateCache:
    """Watch-fed ObservedState for any Application; ``read`` is None while not live."""

    def __init__(self, api: WatchApi) -> None:
        # The states read lately, by (namespace, name, rollouts, scope), with the reflectors'
        # generations they were read at: a review reads what the last one with the same
        # Application read unless something changed since (a retry, dry-run then write,
        # the mutating then the validating call), without rebuilding it.
        self._memo: OrderedDict[Hashable, tuple[tuple[int, int], ObservedState]] = OrderedDict()
        self._memo_lock = threading.Lock()
        self.revisions: Reflector[RevisionRecord] = Reflector(
            api, "/apis/apps/v1/controllerrevisions", revision_record, LABEL_CONTROLLER_COMPONENT,
            keys=revision_keys,
        )
        self.rollouts: Reflector[RolloutEntry] = Reflector(
            api, f"/apis/{ROLLOUT_GROUP}/{ROLLOUT_VERSION}/{ROLLOUT_PLURAL}", rollout_entry,
            keys=rollout_keys,
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

    def read(
        self, namespace: str, name: str, *, rollouts: bool = True, scope: ReadScope | None = None
    ) -> ObservedState | None:
        """What is live, as webhook.kube.reader.read_observed_state reads it; None if not live.

        With ``scope``, the revisions are only those the scope names (by component, by
        the stem of their name, by name), found through the index: a review's read costs
        the same whatever else the namespace holds.
        """
        if not self.revisions.live or (rollouts and not self.rollouts.live):
            return None
        # Sampled before reading: what is read is at least as new as its generation says.
        generation = (self.revisions.generation, self.rollouts.generation if rollouts else -1)
        key = (namespace, name, rollouts, scope)
        with self._memo_lock:
            remembered = self._memo.get(key)
            if remembered is not None and remembered[0] == generation:
                self._memo.move_to_end(key)
                return remembered[1]
        state = self._read(namespace, name, rollouts, scope)
        with self._memo_lock:
            self._memo[key] = (generation, state)
            self._memo.move_to_end(key)
            while len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
        return state

    def _read(
        self, namespace: str, name: str, rollouts: bool, scope: ReadScope | None
    ) -> ObservedState:
        if scope is None:
            found = self.revisions.values_in(namespace)
        else:
            keys = [("component", c) for c in scope.components]
            keys += [("stem", c) for c in scope.components]
            found = list(self.revisions.select(namespace, keys, scope.revisions).values())
        records = tuple(sorted(found, key=lambda r: (r.component, r.number, r.name)))
        components = (
            {
                rollout: seen
                for rollout, _apps, seen, _ in self.rollouts.select(
                    namespace, [("application", name)]
                ).values()
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
