"""Leader hand-over: a stand-by waits on a watch of the Lease, a leader releases it on its
way out before anything else, and neither waits longer than it must."""

from __future__ import annotations

import math
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from tests.fixtures.leases import LEASE_PATH, FakeLeases, holder
from webhook.controller.lease import LeaderElector
from webhook.controller.loop import ControllerLoop
from webhook.core.errors import ApiError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def elector(api: Any, identity: str, clock: Clock | None = None, *, lease_seconds: float = 15.0,
            renew_seconds: float = 10.0, retry_seconds: float = 2.0) -> LeaderElector:
    return LeaderElector(api, "default", "lease", identity=identity,
                         clock=clock or time.monotonic, lease_seconds=lease_seconds,
                         renew_seconds=renew_seconds, retry_seconds=retry_seconds)


class Waiting:
    """``acquire`` of one elector in a thread, as the controller's main thread runs it."""

    def __init__(self, who: LeaderElector) -> None:
        self.who = who
        self.stop = threading.Event()
        self.result: list[bool] = []
        self.thread = threading.Thread(target=lambda: self.result.append(who.acquire(self.stop)),
                                       daemon=True)
        self.thread.start()

    def outcome(self, within: float) -> list[bool]:
        self.thread.join(within)
        return self.result

    def halt(self) -> None:
        self.stop.set()
        self.who.interrupt()
        self.thread.join(5)


def wait_for(check: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_stand_by_takes_a_released_lease_at_once_not_at_its_next_retry() -> None:
    api = FakeLeases()
    a = elector(api, "a")
    assert a.try_acquire_or_renew() is True
    # A retry period far beyond the wait below: only the watch can wake the stand-by.
    b = Waiting(elector(api, "b", lease_seconds=30.0, renew_seconds=20.0, retry_seconds=30.0))
    wait_for(lambda: api.watches)
    a.release()
    assert (b.outcome(within=2.0), holder(api)) == ([True], "b")


def test_a_stand_by_sees_a_silent_holder_out_when_the_term_it_saw_runs_out() -> None:
    api = FakeLeases(watch_time_scale=0.01)  # the watch's whole seconds pass at once
    clock = Clock()
    assert elector(api, "a", clock, lease_seconds=3.0).try_acquire_or_renew() is True
    b = Waiting(elector(api, "b", clock, lease_seconds=3.0, retry_seconds=30.0))
    wait_for(lambda: len(api.watches) >= 2)
    assert b.result == []  # the term has not run out on b's clock: it watches again
    clock.now += 3.5
    assert (b.outcome(within=2.0), holder(api)) == ([True], "b")


@pytest.mark.parametrize(
    ("holder_term", "own_term", "seconds"),
    [(15, 15.0, 15), (1, 15.0, 1), (3600, 15.0, 15), (15, 2.5, 3)],
    ids=["the holder's term", "a released lease's second", "never past our own term",
         "whole seconds, rounded up"],
)
def test_a_stand_by_watches_until_the_holders_term_could_have_run_out(
    holder_term: float, own_term: float, seconds: int
) -> None:
    api = FakeLeases(watch_time_scale=10.0)
    clock = Clock()
    first = elector(api, "a", clock, lease_seconds=holder_term, renew_seconds=0.5)
    assert first.try_acquire_or_renew() is True
    b = Waiting(elector(api, "b", clock, lease_seconds=own_term, retry_seconds=30.0))
    wait_for(lambda: api.watches)
    b.halt()
    assert [(timeout, int(rv), fields) for _path, rv, timeout, fields in api.watches] == [
        (seconds, 1, "metadata.name=lease")]
    assert math.isclose(b.who.last_attempt or 0.0, clock.now)


def test_a_stand_by_stops_waiting_at_once_when_halted() -> None:
    api = FakeLeases()
    assert elector(api, "a").try_acquire_or_renew() is True
    b = Waiting(elector(api, "b", retry_seconds=30.0))
    wait_for(lambda: api.watches)
    began = time.monotonic()
    b.halt()
    assert (b.result, time.monotonic() - began < 1.0) == ([False], True)


class Unwatchable(FakeLeases):
    def watch(self, path: str, resource_version: str, timeout_seconds: int,
              selector: str | None = None, field_selector: str | None = None) -> Any:
        raise ApiError("WATCH", path, 403, "forbidden")


def test_a_stand_by_that_may_not_watch_the_lease_still_takes_it_at_a_retry() -> None:
    api = Unwatchable()
    a = elector(api, "a")
    assert a.try_acquire_or_renew() is True
    b = Waiting(elector(api, "b", retry_seconds=0.05))
    a.release()
    assert (b.outcome(within=2.0), holder(api)) == ([True], "b")


# ---- the leader's way out ---------------------------------------------------------------


class RenewedMidRelease(FakeLeases):
    """The holder's renewal lands between the release's read and its write, once."""

    overtaken = False

    def get(self, path: str) -> dict[str, Any] | None:
        lease = super().get(path)
        if lease is not None and not self.overtaken:
            self.overtaken = True
            renewed = {**lease, "spec": {**lease["spec"], "renewTime": "later"}}
            with self.cond:
                self._store(path, renewed, "MODIFIED")
        return lease


def test_a_release_overtaken_by_a_renewal_is_made_again() -> None:
    api = RenewedMidRelease()
    a = elector(api, "a")
    assert a.try_acquire_or_renew() is True
    api.overtaken = False
    a.release()
    assert (holder(api), api.leases[LEASE_PATH]["spec"]["leaseDurationSeconds"]) == ("", 1)


class Recorder:
    """An event recorder whose close() notes who held the lease when it began draining."""

    def __init__(self, api: FakeLeases) -> None:
        self.api = api
        self.holder_at_close: list[str | None] = []

    def close(self) -> None:
        self.holder_at_close.append(holder(self.api))


def leading_loop(api: FakeLeases) -> ControllerLoop:
    leader = elector(api, "a")
    assert leader.try_acquire_or_renew() is True
    reconciler = SimpleNamespace(events=Recorder(api))
    return ControllerLoop(api, reconciler, elector=leader)  # type: ignore[arg-type]


def test_a_leader_hands_the_lease_over_before_its_event_recorder_drains() -> None:
    api = FakeLeases()
    loop = leading_loop(api)
    loop.shutdown()
    assert loop.reconciler.events.holder_at_close == [""]  # type: ignore[union-attr]


def test_a_leader_waits_for_its_stuck_workers_once_not_once_per_worker() -> None:
    api = FakeLeases()
    loop = leading_loop(api)
    stuck = threading.Event()

    def reconcile_that_hangs() -> None:
        stuck.wait(10)

    for i in range(4):
        loop._spawn(reconcile_that_hangs, f"worker-{i}")
    began = time.monotonic()
    loop.shutdown(timeout=0.5)
    took = time.monotonic() - began
    stuck.set()
    assert (holder(api), took < 1.5) == ("", True), f"shutdown took {took:.1f} s"


def test_a_leader_lets_a_renewal_under_way_land_before_it_releases() -> None:
    api = FakeLeases()
    loop = leading_loop(api)
    leader = loop.elector
    assert leader is not None

    def renewal_under_way() -> None:  # keep(): its try began before the stop
        time.sleep(0.3)
        leader.try_acquire_or_renew()

    loop._spawn(renewal_under_way, "lease")
    loop.shutdown(timeout=2.0)
    for thread in loop.threads:
        thread.join(2)
    assert holder(api) == ""
