"""WorkQueue: the controller's pending reconciles, deduplicated, one worker per key at a time.

Holds the queue the watches feed and the workers drain: keys added while queued are
merged, a key added while a worker holds it runs once more afterwards, retries back off
exponentially, and deadline wake-ups keep one pending entry per key. Keys added
``first`` (a change seen now) go ahead of the others (a listing's backlog), so a new
leader with thousands of listed keys acts on what just changed first. It must not know
what a key means (loop.py maps objects to keys, reconcile.py acts on them).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque

Key = tuple[str, str, str]  # (kind "app" | "rollout", namespace, name)


class WorkQueue:
    """Pending keys, each processed by one worker at a time; a key added while it is being
    processed runs once more afterwards (so no change is ever missed)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # Two lanes, ``first`` drained before ``_ready``; a key promoted from the second
        # lane leaves a stale entry there, skipped as it is no longer in ``_queued``.
        self._first: deque[Key] = deque()
        self._ready: deque[Key] = deque()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._in_first: set[Key] = set()  # queued with an entry in the first lane
        self._later: list[tuple[float, Key]] = []
        self._failures: dict[Key, int] = {}
        self._wakes: dict[Key, float] = {}  # key: when its pending wake-up falls due
        self._closed = False

    def add(self, key: Key, first: bool = False) -> None:
        """Queue ``key``; ``first``: ahead of the keys queued without it."""
        with self._cond:
            if key in self._active:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                (self._first if first else self._ready).append(key)
                if first:
                    self._in_first.add(key)
                self._cond.notify()
            elif first and key not in self._in_first:
                self._in_first.add(key)
                self._first.append(key)

    def add_after(self, key: Key, delay: float) -> None:
        with self._cond:
            heapq.heappush(self._later, (time.monotonic() + delay, key))
            self._cond.notify()

    def wake_after(self, key: Key, delay: float) -> None:
        """Reconcile ``key`` again after ``delay`` seconds (a deadline falls due then).

        Each reconcile of a waiting batch asks again for the same moment, so a key keeps
        one pending wake-up: an earlier one is enough, as that reconcile asks anew.
        """
        with self._cond:
            due = time.monotonic() + delay
            pending = self._wakes.get(key)
            if pending is not None and pending <= due:
                return
            self._wakes[key] = due
            heapq.heappush(self._later, (due, key))
            self._cond.notify()

    def retry(self, key: Key, immediate: bool = False) -> None:
        """Back off exponentially (5 ms doubling to 30 s); a conflict retries at once."""
        with self._cond:
            n = self._failures.get(key, 0) + 1
            self._failures[key] = n
        if immediate and n < 5:
            self.add(key, first=True)
        else:
            self.add_after(key, min(30.0, 0.005 * 2 ** min(n, 13)))

    def forget(self, key: Key) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def get(self) -> Key | None:
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    due, key = heapq.heappop(self._later)
                    if self._wakes.get(key) == due:
                        del self._wakes[key]
                    if key in self._active:
                        self._dirty.add(key)
                    elif key not in self._queued:  # due now: ahead of a backlog
                        self._queued.add(key)
                        self._in_first.add(key)
                        self._first.append(key)
                while self._first or self._ready:
                    key = (self._first or self._ready).popleft()
                    if key not in self._queued:
                        continue  # promoted, and taken already
                    self._queued.discard(key)
                    self._in_first.discard(key)
                    self._active.add(key)
                    return key
                timeout = self._later[0][0] - now if self._later else None
                self._cond.wait(timeout)

    def done(self, key: Key) -> None:
        with self._cond:
            self._active.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._queued.add(key)  # changed while it ran: ahead of a backlog
                self._in_first.add(key)
                self._first.append(key)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        """Keys ready or being processed (delayed ones are not counted)."""
        with self._cond:
            return len(self._queued) + len(self._active)

    def pending_delays(self) -> int:
        """Delayed additions not yet due: retries backing off and deadline wake-ups."""
        with self._cond:
            return len(self._later)
