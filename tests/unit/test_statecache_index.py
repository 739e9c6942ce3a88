"""The state cache's index: adds, updates, deletes and relists keep it in step with its
entries (property-based, the naive scan as oracle), scoped reads judge like whole ones,
and listings are read page by page."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fixtures.polling import eventually
from tests.fixtures.watching import ScriptedApi
from tests.fixtures.webhook import StubRenderer
from webhook.admission.judge import ReadScope, judge, read_scope
from webhook.admission.server.metrics import Metrics
from webhook.admission.statecache import (
    LIST_PAGE,
    Reflector,
    StateCache,
    _PagedLists,
    revision_keys,
    revision_stem,
)
from webhook.core.model import parse_application
from webhook.core.objects import revision_record
from webhook.core.revisions import resolve_revisions, spec_hash
from webhook.core.state import ObservedState, RevisionRecord

REVISIONS = "/apis/apps/v1/controllerrevisions"
ROLLOUTS = "/apis/standard.oam.dev/v1alpha1/rollouts"
NAMESPACES = ("ns", "other")
COMPONENTS = ("web", "db", "web-v1")
IMAGES = ("example/web:1", "example/web:2")
OWNERS = ("", "app", "other-app")


def image_hash(image: str) -> str:
    """The revision hash a webservice component with ``image`` has."""
    return spec_hash({"type": "webservice", "properties": {"image": image}})


def revision(
    name: str, component: str, number: Any, namespace: str = "ns", owner: str = "",
    image: str = IMAGES[0],
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {
            "controller.oam.dev/component": component,
            "app.oam.dev/component-revision-hash": image_hash(image),
        },
    }
    if owner:
        meta["ownerReferences"] = [{"kind": "Application", "name": owner, "controller": True}]
    return {"metadata": meta, "revision": number,
            "data": {"name": component, "type": "webservice", "properties": {"image": image}}}


def rollout(name: str, app: str, target: str, namespace: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.oam.dev/name": app},
            "ownerReferences": [{"kind": "Application", "name": app, "controller": True}],
        },
        "spec": {"targetRevisionName": target},
        "status": {"lastTargetRevision": target, "rolloutTargetSize": 2,
                   "rollingState": "rolloutSucceed"},
    }


# Names of every shape the index files differently: <component>-v<N>, a stem that is
# itself a component (web-v1-v2), names with no stem (ext, web-v, web-v01 files as web).
revision_names = st.one_of(
    st.builds(lambda c, n: f"{c}-v{n}", st.sampled_from(COMPONENTS), st.integers(1, 4)),
    st.sampled_from(["ext", "web-v", "web-v01", "db-vx", "web-v1-v2"]),
)
revision_objects = st.builds(
    revision,
    name=revision_names,
    component=st.sampled_from(COMPONENTS),
    # A number that is not an integer makes the object no component revision: dropped.
    number=st.one_of(st.integers(1, 5), st.just("x")),
    namespace=st.sampled_from(NAMESPACES),
    owner=st.sampled_from(OWNERS),
    image=st.sampled_from(IMAGES),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), revision_objects),
        st.tuples(st.just("delete"), revision_objects),
        st.tuples(st.just("relist"), st.lists(revision_objects, max_size=8)),
    ),
    max_size=25,
)


def where(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


Index = dict[str, dict[Hashable, frozenset[str]]]


def naive_index(model: dict[tuple[str, str], RevisionRecord]) -> Index:
    """The index a scan of every entry builds."""
    out: dict[str, dict[Hashable, set[str]]] = {}
    for (namespace, name), record in model.items():
        for key in revision_keys(name, record):
            out.setdefault(namespace, {}).setdefault(key, set()).add(name)
    return {ns: {k: frozenset(v) for k, v in keyed.items()} for ns, keyed in out.items()}


def store(model: dict[tuple[str, str], RevisionRecord], obj: dict[str, Any]) -> None:
    record = revision_record(obj)
    if record is None:
        model.pop(where(obj), None)
    else:
        model[where(obj)] = record


@settings(max_examples=300, deadline=None)
@given(operations)
def test_adds_updates_deletes_and_relists_keep_the_index_equal_to_a_scan(
    ops: list[tuple[str, Any]],
) -> None:
    reflector: Reflector[RevisionRecord] = Reflector(
        ScriptedApi({}), REVISIONS, revision_record, keys=revision_keys
    )
    model: dict[tuple[str, str], RevisionRecord] = {}
    for op, arg in ops:
        if op == "put":
            reflector.changed("MODIFIED" if where(arg) in model else "ADDED", arg)
            store(model, arg)
        elif op == "delete":
            reflector.changed("DELETED", arg)
            model.pop(where(arg), None)
        else:
            reflector.listed(arg)
            model = {}
            for obj in arg:
                store(model, obj)
        assert reflector.index_view() == naive_index(model)
        for namespace in NAMESPACES:
            scanned = {n: r for (ns, n), r in model.items() if ns == namespace}
            assert {r.name: r for r in reflector.values_in(namespace)} == scanned
            for component in COMPONENTS:
                assert reflector.select(namespace, [("component", component)]) == {
                    n: r for n, r in scanned.items() if r.component == component
                }
                assert reflector.select(namespace, [("stem", component)]) == {
                    n: r for n, r in scanned.items() if revision_stem(n) == component
                }
            assert reflector.select(namespace, [], ["ext", "web-v1"]) == {
                n: r for n, r in scanned.items() if n in ("ext", "web-v1")
            }


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("web-v12", "web"),
        ("web-v1-v2", "web-v1"),
        ("web-v01", "web"),
        ("web-v", None),
        ("web-vx", None),
        ("web-v١", None),  # a digit, but not an ASCII one: never a generated name
        ("-v1", None),
        ("ext", None),
    ],
)
def test_the_stem_of_a_revision_name_is_what_precedes_its_v_number(
    name: str, stem: str | None
) -> None:
    assert revision_stem(name) == stem


def test_a_revision_moved_to_another_component_moves_in_the_index() -> None:
    reflector: Reflector[RevisionRecord] = Reflector(
        ScriptedApi({}), REVISIONS, revision_record, keys=revision_keys
    )
    reflector.listed([revision("web-v1", "web", 1)])
    reflector.changed("MODIFIED", revision("web-v1", "db", 1))
    assert reflector.index_view() == {
        "ns": {("component", "db"): frozenset({"web-v1"}), ("stem", "web"): frozenset({"web-v1"})}
    }
    reflector.changed("DELETED", revision("web-v1", "db", 1))
    assert reflector.index_view() == {}


# ---------------------------------------------------------------------------
# scoped reads judge like whole ones


@pytest.fixture
def live_cache() -> Iterator[StateCache]:
    cache = StateCache(ScriptedApi({REVISIONS: [], ROLLOUTS: []}))
    cache.start()
    try:
        eventually(lambda: cache.live, timeout=5, interval=0.01, what="the cache is live")
        yield cache
    finally:
        cache.stop()


def app_object(components: list[tuple[str, str | None, str | None, str]]) -> dict[str, Any]:
    """Application `app` in `ns`: (name, externalRevision, targetRevision, image) each."""
    out = []
    for name, external, target, image in components:
        plan: dict[str, Any] = {"targetSize": 2, "rolloutBatches": [{"replicas": 2}]}
        if target is not None:
            plan["targetRevision"] = target
        component: dict[str, Any] = {"name": name, "type": "webservice",
                                     "properties": {"image": image},
                                     "traits": [{"type": "rollout", "properties": plan}]}
        if external is not None:
            component["externalRevision"] = external
        out.append(component)
    return {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
            "metadata": {"name": "app", "namespace": "ns"}, "spec": {"components": out}}


named = st.one_of(st.none(), revision_names)
applications = st.lists(
    st.tuples(st.sampled_from(COMPONENTS), named, named, st.sampled_from(IMAGES)),
    min_size=1, max_size=3, unique_by=lambda c: c[0],
).map(app_object)
rollout_objects = st.lists(
    st.builds(rollout, name=st.sampled_from(COMPONENTS), app=st.sampled_from(OWNERS[1:]),
              target=revision_names, namespace=st.sampled_from(NAMESPACES)),
    max_size=6,
)


def verdict_of(app: dict[str, Any], state: ObservedState) -> tuple[list[str], list[str]]:
    verdict = judge(app, state, StubRenderer())
    return [str(e) for e in verdict.errors], verdict.warnings


def test_a_scoped_read_judges_every_application_as_the_whole_namespace_does(
    live_cache: StateCache,
) -> None:
    @settings(max_examples=300, deadline=None)
    @given(applications, st.lists(revision_objects, max_size=12), rollout_objects)
    # The cases a narrower scope would get wrong: a name web's next revision must avoid,
    # held by another component; an externalRevision another component holds.
    @example(app_object([("web", None, None, IMAGES[1])]), [revision("web-v1", "db", 1)], [])
    @example(app_object([("web", "ext", None, IMAGES[0])]), [revision("ext", "db", 1)], [])
    def check(app: dict[str, Any], revisions: list[dict[str, Any]],
              rollouts: list[dict[str, Any]]) -> None:
        # As the watch hands them over: the cache stays live.
        live_cache.revisions.listed(revisions)
        live_cache.rollouts.listed(rollouts)
        parsed, errors = parse_application(app)
        assert parsed is not None and not errors
        whole = live_cache.read("ns", "app")
        scoped = live_cache.read("ns", "app", scope=read_scope(parsed))
        assert whole is not None and scoped is not None
        everything = {r.name: r for r in whole.revisions}
        assert all(everything.get(r.name) == r for r in scoped.revisions)
        assert resolve_revisions(parsed, scoped) == resolve_revisions(parsed, whole)
        # What a mutation reads: no Rollouts, no targets; it names the same revisions.
        bare = live_cache.read("ns", "app", rollouts=False,
                               scope=read_scope(parsed, targets=False))
        assert bare is not None
        assert resolve_revisions(parsed, bare) == resolve_revisions(parsed, whole)
        assert verdict_of(app, scoped) == verdict_of(app, whole)

    check()


def test_a_scoped_read_holds_only_what_the_scope_names(live_cache: StateCache) -> None:
    live_cache.revisions.listed([
        revision("web-v1", "web", 1), revision("web-v2", "web", 2),
        revision("pinned", "web", 3), revision("web-v3", "other", 1),
        revision("db-v1", "db", 1), revision("web-v4", "web", 4, namespace="other"),
    ])  # fmt: skip
    state = live_cache.read("ns", "app", scope=ReadScope(frozenset({"web"}), frozenset({"x"})))
    assert state is not None
    # By component (web-v1, web-v2, pinned) and by stem (web-v3, another component's).
    assert [r.name for r in state.revisions] == ["web-v3", "web-v1", "web-v2", "pinned"]


def test_a_read_is_remembered_until_anything_in_the_cache_changes(live_cache: StateCache) -> None:
    scope = ReadScope(frozenset({"web"}), frozenset())
    live_cache.revisions.listed([revision("web-v1", "web", 1)])
    first = live_cache.read("ns", "app", scope=scope)
    assert live_cache.read("ns", "app", scope=scope) is first
    # Another namespace's change moves the generation too: read again, the same answer.
    live_cache.revisions.changed("ADDED", revision("web-v9", "web", 9, namespace="other"))
    again = live_cache.read("ns", "app", scope=scope)
    assert again is not first and again == first
    live_cache.revisions.changed("ADDED", revision("web-v2", "web", 2))
    live_cache.rollouts.changed("ADDED", rollout("web", "app", "web-v2"))
    latest = live_cache.read("ns", "app", scope=scope)
    assert latest is not None
    assert [r.name for r in latest.revisions] == ["web-v1", "web-v2"]
    assert latest.component("web").current_revision == "web-v2"
    # Without the Rollouts, the Rollouts' changes do not matter.
    bare = live_cache.read("ns", "app", rollouts=False, scope=scope)
    live_cache.rollouts.changed("DELETED", rollout("web", "app", "web-v2"))
    assert live_cache.read("ns", "app", rollouts=False, scope=scope) is bare


def test_the_webhook_reader_hands_the_scope_to_the_cache_and_reads_the_api_without_it() -> None:
    asked: list[tuple[str, ReadScope | None]] = []
    scope = ReadScope(frozenset({"web"}), frozenset())

    def cached(namespace: str, name: str, *, rollouts: bool = True,
               scope: ReadScope | None = None) -> ObservedState | None:
        asked.append(("cache", scope))
        return None  # not live: the API answers

    def direct(namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
        asked.append(("api", None))
        return ObservedState(namespace=namespace)

    metrics = Metrics()
    reader = metrics.timed_reader(metrics.layered_reader(cached, direct))
    from webhook.admission.judge import ScopedStateReader

    assert isinstance(reader, ScopedStateReader)
    assert reader.read_scoped("ns", "app", scope) == ObservedState(namespace="ns")
    assert asked == [("cache", scope), ("api", None)]


# ---------------------------------------------------------------------------
# listings, page by page


class PagedApi:
    """Answers a listing in pages of ``size`` with continue tokens, as the apiserver does."""

    def __init__(self, items: list[dict[str, Any]], size: int) -> None:
        self.items = items
        self.size = size
        self.queries: list[dict[str, str]] = []

    def get_json(self, path: str, query: Any = None, read_timeout: float | None = None) -> Any:
        self.queries.append(dict(query or {}))
        start = int((query or {}).get("continue") or 0)
        end = start + self.size
        meta: dict[str, Any] = {"resourceVersion": "41" if start == 0 else "99"}
        if end < len(self.items):
            meta["continue"] = str(end)
        return {"kind": "List", "metadata": meta, "items": self.items[start:end]}

    def watch(self, *args: Any) -> Any:
        raise AssertionError("not watched here")


def test_a_listing_is_read_page_by_page_and_reduced_as_it_goes() -> None:
    objects = [revision(f"web-v{n}", "web", n) for n in range(1, 6)]
    objects[2]["revision"] = "x"  # not a component revision: left out
    for obj in objects:
        obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    api = PagedApi(objects, size=2)
    listing = _PagedLists(api, revision_record).get_json(REVISIONS, {"labelSelector": "c"})
    assert [q.get("continue") for q in api.queries] == [None, "2", "4"]
    assert {(q["labelSelector"], q["limit"]) for q in api.queries} == {("c", str(LIST_PAGE))}
    # The snapshot's version is the first page's.
    assert listing["metadata"]["resourceVersion"] == "41"
    reflector: Reflector[RevisionRecord] = Reflector(
        ScriptedApi({}), REVISIONS, revision_record, keys=revision_keys
    )
    reflector.listed(listing["items"])
    kept = [o for o in objects if o["revision"] != "x"]
    assert reflector.values_in("ns") == [revision_record(o) for o in kept]
    assert reflector.select("ns", [("stem", "web")]) == {
        o["metadata"]["name"]: revision_record(o) for o in kept
    }


def test_an_answer_that_is_not_a_list_goes_to_the_listwatch_as_it_came() -> None:
    class Broken(PagedApi):
        def get_json(self, path: str, query: Any = None, read_timeout: float | None = None) -> Any:
            return {"kind": "Status", "message": "nope"}

    answer = _PagedLists(Broken([], 1), revision_record).get_json(REVISIONS)
    assert answer == {"kind": "Status", "message": "nope"}
