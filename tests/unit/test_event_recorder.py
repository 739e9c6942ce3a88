"""The controller's Event recorder: a burst is posted by several threads, never dropped
below its limit, and one Application's Events (its own and its Rollouts') keep their
order."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from tests.fixtures.polling import eventually
from webhook.controller.reconcile import EventRecorder


class SlowEvents:
    """Answers each Event create after a pause, recording the order they arrive in."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str]] = []  # (involved name, reason)
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        time.sleep(0.002)
        with self._lock:
            self.threads.add(threading.current_thread().name)
            self.posted.append((body["involvedObject"]["name"], body["reason"]))
        return dict(body)


def event(name: str, reason: str) -> dict[str, Any]:
    return {"involvedObject": {"kind": "Rollout", "name": name}, "reason": reason}


def test_a_burst_is_posted_in_order_per_application_by_every_thread() -> None:
    api = SlowEvents()
    recorder = EventRecorder(api, limit=1000, threads=2)  # type: ignore[arg-type]
    apps = [f"app-{i}" for i in range(20)]
    for step in range(10):
        for app in apps:
            recorder.record("ns", event(app, f"step-{step}"), family=app)
    assert eventually(lambda: len(api.posted), equals=200, timeout=20, interval=0.05)
    recorder.close()
    for app in apps:
        assert [r for n, r in api.posted if n == app] == [f"step-{i}" for i in range(10)]
    assert api.threads == {"events-0", "events-1"}


def test_events_past_the_limit_are_dropped_not_waited_for() -> None:
    api = SlowEvents()
    recorder = EventRecorder(api, limit=4, threads=2)  # type: ignore[arg-type]
    began = time.monotonic()
    for i in range(50):
        recorder.record("ns", event("app", f"e{i}"), family="app")
    assert time.monotonic() - began < 1.0  # record never blocks a reconcile
    recorder.close()
    assert 1 <= len(api.posted) < 50
