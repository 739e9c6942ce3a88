"""The controller's Prometheus metrics, in a registry of its own.

Holds ControllerMetrics: reconciles by kind and result, reconcile duration, work-queue
depth, Rollouts by rollingState, batch hand-off latency and the leader gauge, plus the
small memory those last three need (each Rollout's last state, when its batch's pods
were seen Ready). It must not decide anything nor talk to the API: the loop and the
reconciler report what happened, and /metrics reads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webhook.core.labels import (
    ABANDONING,
    FINALISING,
    INITIALIZING,
    ROLLING_IN_BATCHES,
    ROLLOUT_FAILED,
    ROLLOUT_SUCCEED,
    VERIFYING_SPEC,
)

PREFIX = "oam_rollout_controller"
# Every rollingState, so a dashboard sees zeros rather than missing series.
STATES = (VERIFYING_SPEC, INITIALIZING, ROLLING_IN_BATCHES, FINALISING, ROLLOUT_SUCCEED,
          ROLLOUT_FAILED, ABANDONING)
# Reconciles take milliseconds; a batch hand-off includes old pods going away (seconds).
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HANDOFF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
RESULTS = ("success", "conflict", "error")

RolloutKey = tuple[str, str]  # (namespace, name)


class _StateCollector(Collector):
    """Rollouts by rollingState, counted at scrape time from the last state seen."""

    def __init__(self, states: Callable[[], dict[str, int]]) -> None:
        self._states = states

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(f"{PREFIX}_rollouts", "Rollouts by rollingState",
                                   labels=["rolling_state"])
        counts = self._states()
        for state in sorted(set(STATES) | set(counts)):
            family.add_metric([state or "none"], counts.get(state, 0))
        yield family


class ControllerMetrics:
    """What /metrics shows; thread-safe, one per controller process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.clock = clock
        self._lock = threading.Lock()
        self._states: dict[RolloutKey, str] = {}
        self._batch_ready_at: dict[RolloutKey, float] = {}
        self.reconciles = Counter(f"{PREFIX}_reconcile", "Reconciles by kind and result",
                                  ["kind", "result"], registry=self.registry)
        self.duration = Histogram(f"{PREFIX}_reconcile_duration_seconds",
                                  "Time one reconcile takes, reads and writes included",
                                  ["kind"], buckets=RECONCILE_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge(f"{PREFIX}_workqueue_depth",
                                 "Keys waiting or being reconciled", registry=self.registry)
        self.handoff = Histogram(
            f"{PREFIX}_batch_handoff_seconds",
            "From a batch's new pods seen Ready to the next batch's workload write",
            buckets=HANDOFF_BUCKETS, registry=self.registry)
        self.leader = Gauge(f"{PREFIX}_leader",
                            "1 while this replica leads (or runs without election)",
                            registry=self.registry)
        self.registry.register(_StateCollector(self.state_counts))
        for kind in ("app", "rollout"):
            for result in RESULTS:
                self.reconciles.labels(kind, result)  # zeros from the start

    def observe_reconcile(self, kind: str, result: str, seconds: float) -> None:
        self.reconciles.labels(kind, result).inc()
        self.duration.labels(kind).observe(seconds)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(lambda: float(depth()))

    def set_leader(self, leading: bool) -> None:
        self.leader.set(1.0 if leading else 0.0)

    def rollout_seen(self, key: RolloutKey, state: str, steps: tuple[str, ...],
                     workload_written: bool) -> None:
        """One decided Rollout: its state, and the hand-off clock between batches.

        The clock starts when a batch's new pods are seen Ready (shrink-others) and stops
        when the next batch's workload write has been carried out (next-batch).
        """
        now = self.clock()
        with self._lock:
            self._states[key] = state
            if "shrink-others" in steps:
                self._batch_ready_at[key] = now
            started = None
            if "next-batch" in steps and workload_written:
                started = self._batch_ready_at.pop(key, None)
            if state in (ROLLOUT_SUCCEED, ROLLOUT_FAILED, ABANDONING):
                self._batch_ready_at.pop(key, None)
        if started is not None:
            self.handoff.observe(now - started)

    def rollout_gone(self, key: RolloutKey) -> None:
        with self._lock:
            self._states.pop(key, None)
            self._batch_ready_at.pop(key, None)

    def state_counts(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for state in self._states.values():
                counts[state] = counts.get(state, 0) + 1
            return counts

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
