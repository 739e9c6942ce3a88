"""The watch-fed state cache, driven by a scripted API: lists, events, breaks and 410 Gone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.polling import eventually
from tests.fixtures.watching import ScriptedApi
from webhook.admission.statecache import StateCache
from webhook.core.objects import observed_state_from
from webhook.core.state import ObservedState, OwnerRef

REVISIONS = "/apis/apps/v1/controllerrevisions"
ROLLOUTS = "/apis/standard.oam.dev/v1alpha1/rollouts"


def revision(name: str, component: str, number: int, namespace: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(number),
            "labels": {
                "controller.oam.dev/component": component,
                "app.oam.dev/component-revision-hash": f"h{number}",
            },
        },
        "revision": number,
    }


def rollout(name: str, app: str, target: str, size: int, namespace: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "ownerReferences": [{"kind": "Application", "name": app, "controller": True}],
        },
        "spec": {"targetRevisionName": target},
        "status": {
            "lastTargetRevision": target,
            "rolloutTargetSize": size,
            "rollingState": "rolloutSucceed",
        },
    }


@pytest.fixture
def caches() -> Iterator[list[StateCache]]:
    """State caches a test starts; all are stopped afterwards."""
    started: list[StateCache] = []
    yield started
    for cache in started:
        cache.stop()


def live_cache(api: ScriptedApi, caches: list[StateCache]) -> StateCache:
    cache = StateCache(api)
    caches.append(cache)
    cache.start()
    eventually(lambda: cache.live, timeout=5, interval=0.01, what="the cache is live")
    return cache


def revisions_in(cache: StateCache) -> list[tuple[str, int]] | None:
    state = cache.read("ns", "app")
    return None if state is None else [(r.name, r.number) for r in state.revisions]


def test_a_listed_cache_reads_exactly_like_the_direct_reader(caches: list[StateCache]) -> None:
    in_ns = [revision("web-v2", "web", 2), revision("web-v1", "web", 1)]
    rollouts = [rollout("web", "app", "web-v2", 5), rollout("db", "another", "db-v1", 1)]
    lists = {REVISIONS: [*in_ns, revision("x-v1", "x", 1, "other")], ROLLOUTS: rollouts}
    cache = live_cache(ScriptedApi(lists), caches)
    # The direct reader lists one namespace; the cache holds them all.
    assert cache.read("ns", "app") == observed_state_from("ns", "app", in_ns, rollouts)
    assert cache.read("ns", "app", rollouts=False) == observed_state_from("ns", "app", in_ns, [])


def test_watch_events_add_change_and_remove_entries(caches: list[StateCache]) -> None:
    api = ScriptedApi({REVISIONS: [revision("web-v1", "web", 1)], ROLLOUTS: []})
    cache = live_cache(api, caches)
    api.send(
        REVISIONS,
        {"type": "ADDED", "object": revision("web-v2", "web", 2)},
        {"type": "MODIFIED", "object": revision("web-v1", "web", 3)},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "42"}}},
    )
    assert eventually(lambda: revisions_in(cache), equals=[("web-v2", 2), ("web-v1", 3)],
                      timeout=5, interval=0.01)
    api.send(REVISIONS, {"type": "DELETED", "object": revision("web-v2", "web", 2)})
    assert eventually(lambda: revisions_in(cache), equals=[("web-v1", 3)], timeout=5,
                      interval=0.01)


def test_the_controller_of_a_rollout_is_looked_up_by_name_and_follows_the_watch(
    caches: list[StateCache],
) -> None:
    api = ScriptedApi({REVISIONS: [], ROLLOUTS: [rollout("web", "other-app", "web-v1", 3)]})
    cache = live_cache(api, caches)
    state = cache.read("ns", "app")
    assert state is not None
    # Another Application's Rollout: not this app's component, but its name is taken.
    assert state.components == {}
    assert state.rollout_owners.get("web") == OwnerRef("Application", "other-app")
    assert state.rollout_owners.get("db") is None
    assert dict(state.rollout_owners) == {"web": OwnerRef("Application", "other-app")}
    api.send(ROLLOUTS, {"type": "MODIFIED", "object": rollout("web", "app", "web-v1", 3)})
    assert eventually(lambda: cache.read("ns", "app").rollout_owners.get("web"),  # type: ignore[union-attr]
                      equals=OwnerRef("Application", "app"), timeout=5, interval=0.01)
    api.send(ROLLOUTS, {"type": "DELETED", "object": rollout("web", "app", "web-v1", 3)})
    eventually(lambda: "web" in cache.read("ns", "app").rollout_owners,  # type: ignore[union-attr]
               equals=False, timeout=5, interval=0.01)


def test_an_expired_resource_version_is_replaced_by_a_new_listing(
    caches: list[StateCache],
) -> None:
    api = ScriptedApi({REVISIONS: [revision("web-v1", "web", 1)], ROLLOUTS: []})
    cache = live_cache(api, caches)
    api.lists[REVISIONS] = [revision("web-v7", "web", 7)]
    api.send(REVISIONS, {"type": "ERROR", "object": {"code": 410, "message": "too old"}})
    assert eventually(lambda: revisions_in(cache), equals=[("web-v7", 7)], timeout=5,
                      interval=0.01)
    assert api.list_calls.count(REVISIONS) == 2


def test_a_watch_error_serves_nothing_until_a_new_listing(caches: list[StateCache]) -> None:
    api = ScriptedApi({REVISIONS: [revision("web-v1", "web", 1)], ROLLOUTS: []})
    cache = live_cache(api, caches)
    api.failing.add(REVISIONS)
    api.send(REVISIONS, {"type": "ERROR", "object": {"code": 500, "message": "etcd down"}})
    eventually(lambda: cache.read("ns", "app"), equals=None, timeout=5, interval=0.01)
    assert cache.revisions.error in (f"WATCH {REVISIONS}: 500 etcd down",
                                     f"GET {REVISIONS}: 503 unavailable")
    api.failing.clear()
    assert eventually(lambda: revisions_in(cache), equals=[("web-v1", 1)], timeout=5,
                      interval=0.01)


def test_nothing_is_served_before_every_needed_listing_or_after_a_stop(
    caches: list[StateCache],
) -> None:
    api = ScriptedApi({REVISIONS: [], ROLLOUTS: []})
    api.failing.add(ROLLOUTS)
    cache = StateCache(api)
    caches.append(cache)
    assert cache.read("ns", "app", rollouts=False) is None  # not started
    cache.start()
    assert eventually(lambda: cache.read("ns", "app", rollouts=False), timeout=5,
                      interval=0.01) == ObservedState(namespace="ns")
    assert cache.read("ns", "app") is None  # Rollouts not listed yet
    api.failing.clear()
    assert eventually(lambda: cache.read("ns", "app"), timeout=5, interval=0.01) is not None
    cache.stop()
    assert (cache.read("ns", "app"), cache.read("ns", "app", rollouts=False)) == (None, None)


def test_a_failing_api_takes_the_cache_out_of_service_until_a_list_succeeds(
    caches: list[StateCache],
) -> None:
    api = ScriptedApi({REVISIONS: [revision("web-v1", "web", 1)], ROLLOUTS: []})
    api.failing.add(REVISIONS)
    cache = StateCache(api)
    caches.append(cache)
    cache.start()
    eventually(lambda: cache.revisions.error, timeout=5, interval=0.01)
    assert cache.read("ns", "app") is None
    assert cache.revisions.error == f"GET {REVISIONS}: 503 unavailable"
    api.failing.clear()
    assert eventually(lambda: revisions_in(cache), equals=[("web-v1", 1)], timeout=5,
                      interval=0.01)
