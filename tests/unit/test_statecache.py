"""The watch-fed state cache, driven by a scripted API: lists, events, breaks and 410 Gone."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from webhook.admission.statecache import StateCache, _Gone
from webhook.core.errors import ClusterReadError
from webhook.kube.reader import observed_state_from

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


class ScriptedApi:
    """get_json answers lists; stream_events plays the queued events, then ends or breaks."""

    def __init__(self, lists: Mapping[str, list[dict[str, Any]]]) -> None:
        self.lists = {path: list(items) for path, items in lists.items()}
        self.events: dict[str, list[dict[str, Any]]] = {path: [] for path in lists}
        self.fail_lists = False
        self.list_calls: list[str] = []

    def get_json(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        self.list_calls.append(path)
        if self.fail_lists:
            raise ClusterReadError(f"GET {path}: 503 unavailable")
        return {"metadata": {"resourceVersion": "10"}, "items": self.lists[path]}

    def stream_events(
        self, path: str, query: Mapping[str, str], read_timeout: float
    ) -> Iterator[dict[str, Any]]:
        assert query["watch"] == "1"
        queued, self.events[path] = self.events[path], []
        yield from queued


def test_a_listed_cache_reads_exactly_like_the_direct_reader() -> None:
    in_ns = [revision("web-v2", "web", 2), revision("web-v1", "web", 1)]
    rollouts = [rollout("web", "app", "web-v2", 5), rollout("db", "another", "db-v1", 1)]
    lists = {REVISIONS: [*in_ns, revision("x-v1", "x", 1, "other")], ROLLOUTS: rollouts}
    cache = StateCache(ScriptedApi(lists))  # type: ignore[arg-type]
    cache.revisions._list()
    cache.rollouts._list()
    # The direct reader lists one namespace; the cache holds them all.
    assert cache.read("ns", "app") == observed_state_from("ns", "app", in_ns, rollouts)
    assert cache.read("ns", "app", rollouts=False) == observed_state_from("ns", "app", in_ns, [])


def test_watch_events_add_change_and_remove_entries() -> None:
    api = ScriptedApi({REVISIONS: [revision("web-v1", "web", 1)], ROLLOUTS: []})
    cache = StateCache(api)  # type: ignore[arg-type]
    cache.revisions._list()
    cache.rollouts._list()
    api.events[REVISIONS] = [
        {"type": "ADDED", "object": revision("web-v2", "web", 2)},
        {"type": "MODIFIED", "object": revision("web-v1", "web", 3)},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "42"}}},
    ]
    assert cache.revisions._watch("10") == "42"
    state = cache.read("ns", "app")
    assert state is not None
    assert [(r.name, r.number) for r in state.revisions] == [("web-v2", 2), ("web-v1", 3)]
    api.events[REVISIONS] = [{"type": "DELETED", "object": revision("web-v2", "web", 2)}]
    cache.revisions._watch("42")
    state = cache.read("ns", "app")
    assert state is not None
    assert [r.name for r in state.revisions] == ["web-v1"]


def test_an_expired_resource_version_asks_for_a_new_list() -> None:
    api = ScriptedApi({REVISIONS: [], ROLLOUTS: []})
    cache = StateCache(api)  # type: ignore[arg-type]
    api.events[REVISIONS] = [{"type": "ERROR", "object": {"code": 410, "message": "too old"}}]
    with pytest.raises(_Gone):
        cache.revisions._watch("1")


def test_other_watch_errors_are_cluster_read_errors() -> None:
    api = ScriptedApi({REVISIONS: [], ROLLOUTS: []})
    cache = StateCache(api)  # type: ignore[arg-type]
    api.events[REVISIONS] = [{"type": "ERROR", "object": {"code": 500, "message": "etcd down"}}]
    with pytest.raises(ClusterReadError, match="etcd down"):
        cache.revisions._watch("1")


def test_nothing_is_served_before_the_first_list_or_after_a_stop() -> None:
    cache = StateCache(ScriptedApi({REVISIONS: [], ROLLOUTS: []}))  # type: ignore[arg-type]
    assert cache.read("ns", "app") is None
    cache.revisions._list()
    assert cache.read("ns", "app") is None  # Rollouts not listed yet
    assert cache.read("ns", "app", rollouts=False) is not None
    cache.rollouts._list()
    assert cache.read("ns", "app") is not None
    cache.stop()
    assert cache.read("ns", "app") is None


def wait_until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_failing_api_takes_the_cache_out_of_service_until_a_list_succeeds() -> None:
    api = ScriptedApi({REVISIONS: [revision("web-v1", "web", 1)], ROLLOUTS: []})
    api.fail_lists = True
    cache = StateCache(api)  # type: ignore[arg-type]
    cache.start()
    try:
        assert wait_until(lambda: cache.revisions.error is not None)
        assert cache.read("ns", "app") is None
        assert "503" in (cache.revisions.error or "")
        api.fail_lists = False
        assert wait_until(lambda: cache.live)
        state = cache.read("ns", "app")
        assert state is not None
        assert [r.name for r in state.revisions] == ["web-v1"]
    finally:
        cache.stop()
