"""The one list-then-watch engine, driven by a scripted API: listing, events, bookmarks,
410 Gone, failures and their backoff, kinds that are not installed, and stopping."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.polling import eventually
from tests.fixtures.watching import RecordingStop, ScriptedApi
from webhook.kube.watching import EachObject, ListWatch, WatchPolicy

PODS = "/api/v1/pods"


def pod(name: str, version: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(version)}}


class Seen:
    """A handler that records what it is told, as (kind, name) pairs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((kind, obj["metadata"]["name"]))


@pytest.fixture
def api() -> ScriptedApi:
    return ScriptedApi({PODS: [pod("a", 1), pod("b", 2)]})


@pytest.fixture
def running() -> Iterator[list[ListWatch]]:
    """Watches a test starts; all are stopped afterwards."""
    started: list[ListWatch] = []
    yield started
    for watch in started:
        watch.stop()


def start(running: list[ListWatch], api: ScriptedApi, seen: Seen,
          policy: WatchPolicy | None = None) -> ListWatch:
    watch = ListWatch("pods", api, PODS, EachObject(seen), policy=policy)
    running.append(watch)
    watch.start()
    assert watch.synced.wait(5)
    return watch


def test_the_listing_comes_first_then_every_event_in_order(
    api: ScriptedApi, running: list[ListWatch]
) -> None:
    seen = Seen()
    start(running, api, seen)
    api.send(PODS, {"type": "ADDED", "object": pod("c", 3)},
             {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "4"}}},
             {"type": "MODIFIED", "object": pod("a", 5)},
             {"type": "DELETED", "object": pod("b", 6)})
    expected = [("SYNC", "a"), ("SYNC", "b"), ("ADDED", "c"), ("MODIFIED", "a"),
                ("DELETED", "b")]
    assert eventually(lambda: seen.events, equals=expected, timeout=5, interval=0.01)


@pytest.mark.parametrize(
    ("policy", "lists", "next_watch"),
    [
        (WatchPolicy(), 1, (PODS, "42")),
        (WatchPolicy(relist_after_watch=True), 2, (PODS, "10")),
    ],
    ids=["resumes from the last version", "lists again (a resync)"],
)
def test_a_watch_the_server_ends_is_followed_by_the_next(
    api: ScriptedApi, running: list[ListWatch], policy: WatchPolicy, lists: int,
    next_watch: tuple[str, str],
) -> None:
    start(running, api, Seen(), policy)
    api.send(PODS, {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "42"}}})
    api.end(PODS)
    assert eventually(lambda: len(api.watch_calls), equals=2, timeout=5, interval=0.01)
    assert (len(api.list_calls), api.watch_calls) == (lists, [(PODS, "10"), next_watch])


def test_an_expired_resource_version_lists_again_at_once(
    api: ScriptedApi, running: list[ListWatch]
) -> None:
    seen = Seen()
    watch = start(running, api, seen)
    api.lists[PODS] = [pod("z", 9)]
    api.send(PODS, {"type": "ERROR", "object": {"code": 410, "message": "too old"}})
    assert eventually(lambda: seen.events[-1], equals=("SYNC", "z"), timeout=5, interval=0.01)
    assert (watch.live, watch.error) == (True, None)


def test_a_watch_error_takes_the_watch_out_of_service_until_a_listing_succeeds(
    api: ScriptedApi, running: list[ListWatch]
) -> None:
    watch = start(running, api, Seen())
    api.failing.add(PODS)
    api.send(PODS, {"type": "ERROR", "object": {"code": 500, "message": "etcd down"}})
    eventually(lambda: watch.live, equals=False, timeout=5, interval=0.01)
    assert watch.error in ("WATCH /api/v1/pods: 500 etcd down", "GET /api/v1/pods: 503 unavailable")
    api.failing.clear()
    assert eventually(lambda: (watch.live, watch.error), equals=(True, None), timeout=5,
                      interval=0.01)


def test_failures_back_off_exponentially_up_to_the_most(api: ScriptedApi) -> None:
    api.failing.add(PODS)
    stop = RecordingStop(limit=6)
    policy = WatchPolicy(backoff_first=0.2, backoff_max=2.0)
    ListWatch("pods", api, PODS, EachObject(Seen()), policy=policy, stop=stop).run()
    assert stop.waits == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0])


def test_a_failure_that_repeats_is_logged_once(
    api: ScriptedApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.failing.add(PODS)
    with caplog.at_level(logging.WARNING, logger="oam_rollout.kube"):
        ListWatch("pods", api, PODS, EachObject(Seen()), stop=RecordingStop(limit=4)).run()
    assert [r.getMessage() for r in caplog.records] == ["pods: GET /api/v1/pods: 503 unavailable"]


@pytest.mark.parametrize(
    ("absent_retry", "synced", "waits"),
    [(30.0, True, [30.0, 30.0]), (None, False, [0.2, 0.4])],
    ids=["an optional kind counts as synced", "a required kind keeps failing"],
)
def test_a_kind_that_is_not_installed(
    api: ScriptedApi, absent_retry: float | None, synced: bool, waits: list[float]
) -> None:
    api.missing.add(PODS)
    stop = RecordingStop(limit=2)
    watch = ListWatch("pods", api, PODS, EachObject(Seen()), stop=stop,
                      policy=WatchPolicy(absent_retry=absent_retry))
    watch.run()
    assert (watch.synced.is_set(), watch.live, stop.waits) == (synced, False, waits)


def test_stop_ends_a_watch_waiting_for_its_next_event(
    api: ScriptedApi, running: list[ListWatch]
) -> None:
    watch = start(running, api, Seen())
    eventually(lambda: api.streams, timeout=5, interval=0.01)
    watch.stop(timeout=5)
    assert (api.streams[-1].interrupted.is_set(), watch.live, watch.stopped) == (True, False, True)
    assert not any(t.name == "watch pods" and t.is_alive() for t in threading.enumerate())


def test_an_isolated_callback_that_fails_on_one_object_does_not_stop_the_others(
    api: ScriptedApi, running: list[ListWatch]
) -> None:
    seen = Seen()

    def picky(kind: str, obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == "a":
            raise ValueError("cannot handle a")
        seen(kind, obj)

    watch = ListWatch("pods", api, PODS, EachObject(picky, isolated=True))
    running.append(watch)
    watch.start()
    assert watch.synced.wait(5)
    api.send(PODS, {"type": "ADDED", "object": pod("c", 3)})
    assert eventually(lambda: seen.events, equals=[("SYNC", "b"), ("ADDED", "c")], timeout=5,
                      interval=0.01)
    assert len(api.list_calls) == 1


def test_a_handler_that_fails_fails_the_watch_which_lists_again(api: ScriptedApi) -> None:
    def broken(kind: str, obj: dict[str, Any]) -> None:
        raise KeyError("spec")

    stop = RecordingStop(limit=2)
    watch = ListWatch("pods", api, PODS, EachObject(broken), stop=stop)
    watch.run()
    assert (len(api.list_calls), watch.synced.is_set(), watch.error) == (2, False, "'spec'")


def test_an_answer_that_is_not_a_list_is_a_failure(api: ScriptedApi) -> None:
    api.lists[PODS] = {"kind": "Status"}  # type: ignore[assignment]
    watch = ListWatch("pods", api, PODS, EachObject(Seen()), stop=RecordingStop(limit=1))
    watch.run()
    assert watch.error == "GET /api/v1/pods: the API answered something that is not a list"
