"""The controller's Prometheus metrics, in a registry of its own.

Holds ControllerMetrics: reconciles by kind and result, reconcile duration, work-queue
depth, Rollouts by rollingState, batch hand-off latency, the leader gauge, the process's
own metrics (CPU, memory, file descriptors; Python's GC and version), and per Rollout
(RolloutSeries, as last decided): ``oam_rollout_rollout_info`` (its states and target
revision as labels), its current batch, upgraded and ready replicas, and
``oam_rollout_rollout_failure_info`` while it stands failed. The per-Rollout series are
built at scrape time from the last decision of each Rollout still there (a deletion
seen, a Rollout no longer driven, or one missing from a full listing of the Rollouts
takes its series away), so a deleted Rollout or a state left behind leaves no stale
series. It must not decide anything nor
talk to the API: the loop and the reconciler report what happened, and /metrics reads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
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
ROLLOUT_PREFIX = "oam_rollout_rollout"
# Every rollingState, so a dashboard sees zeros rather than missing series.
STATES = (VERIFYING_SPEC, INITIALIZING, ROLLING_IN_BATCHES, FINALISING, ROLLOUT_SUCCEED,
          ROLLOUT_FAILED, ABANDONING)
# Reconciles take milliseconds; a batch hand-off includes old pods going away (seconds).
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HANDOFF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
RESULTS = ("success", "conflict", "error")

RolloutKey = tuple[str, str]  # (namespace, name)

# A *_created sample beside every counter and histogram is noise nobody graphs.
disable_created_metrics()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class RolloutSeries:
    """What /metrics shows of one Rollout: its status as last decided."""

    component: str
    rolling_state: str
    batch_state: str = ""
    target_revision: str = ""
    current_batch: int = 0
    upgraded: int = 0  # upgradedReplicas
    ready: int = 0  # upgradedReadyReplicas
    failure: str = ""  # the reason it stands failed (a condition's reason), else ""


class _RolloutCollector(Collector):
    """Rollouts by rollingState, and one set of series per Rollout, built at scrape time
    from the last decision of each Rollout still known."""

    def __init__(self, rollouts: Callable[[], dict[RolloutKey, RolloutSeries]]) -> None:
        self._rollouts = rollouts

    def collect(self) -> Iterator[Metric]:
        rollouts = self._rollouts()
        family = GaugeMetricFamily(f"{PREFIX}_rollouts", "Rollouts by rollingState",
                                   labels=["rolling_state"])
        counts: dict[str, int] = {}
        for series in rollouts.values():
            counts[series.rolling_state] = counts.get(series.rolling_state, 0) + 1
        for state in sorted(set(STATES) | set(counts)):
            family.add_metric([state or "none"], counts.get(state, 0))
        yield family
        key_labels = ["namespace", "name"]
        info = GaugeMetricFamily(
            f"{ROLLOUT_PREFIX}_info", "One Rollout: 1, its states and target as labels",
            labels=[*key_labels, "component", "rolling_state", "batch_state",
                    "target_revision"])
        failure = GaugeMetricFamily(
            f"{ROLLOUT_PREFIX}_failure_info",
            "1 while a Rollout stands failed (rolloutFailed, or a write it was refused), "
            "with the reason of the condition that says why",
            labels=[*key_labels, "component", "reason"])
        batch = GaugeMetricFamily(f"{ROLLOUT_PREFIX}_current_batch",
                                  "The batch a Rollout is at (currentBatch, from 0)",
                                  labels=key_labels)
        upgraded = GaugeMetricFamily(f"{ROLLOUT_PREFIX}_upgraded_replicas",
                                     "Replicas of a Rollout's target revision "
                                     "(upgradedReplicas)", labels=key_labels)
        ready = GaugeMetricFamily(f"{ROLLOUT_PREFIX}_ready_replicas",
                                  "Ready replicas of a Rollout's target revision "
                                  "(upgradedReadyReplicas)", labels=key_labels)
        for (namespace, name), series in sorted(rollouts.items()):
            info.add_metric([namespace, name, series.component, series.rolling_state,
                             series.batch_state, series.target_revision], 1)
            if series.failure:
                failure.add_metric([namespace, name, series.component, series.failure], 1)
            batch.add_metric([namespace, name], series.current_batch)
            upgraded.add_metric([namespace, name], series.upgraded)
            ready.add_metric([namespace, name], series.ready)
        yield from (info, failure, batch, upgraded, ready)


class ControllerMetrics:
    """What /metrics shows; thread-safe, one per controller process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.clock = clock
        self._lock = threading.Lock()
        self._rollouts: dict[RolloutKey, RolloutSeries] = {}
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
        self.registry.register(_RolloutCollector(self.rollouts))
        # The process's own (CPU, memory, fds, start time) and Python's, as the default
        # registry would show them.
        ProcessCollector(registry=self.registry)
        for collector in (PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
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

    def rollout_seen(self, key: RolloutKey, series: RolloutSeries, steps: tuple[str, ...],
                     workload_written: bool) -> None:
        """One decided Rollout: its series, and the hand-off clock between batches.

        The clock starts when a batch's new pods are seen Ready (shrink-others) and stops
        when the next batch's workload write has been carried out (next-batch).
        """
        now = self.clock()
        state = series.rolling_state
        with self._lock:
            self._rollouts[key] = series
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
        """The Rollout is deleted, or no longer driven: its series go."""
        with self._lock:
            self._rollouts.pop(key, None)
            self._batch_ready_at.pop(key, None)

    def rollouts_listed(self, items: list[dict[str, Any]]) -> None:
        """A full listing of the Rollouts: one known here but not in it was deleted while
        no watch saw it go (a gap between watches), and its series go."""
        present = {(str(meta.get("namespace")), str(meta.get("name")))
                   for meta in (item.get("metadata") or {} for item in items)}
        with self._lock:
            for key in set(self._rollouts) - present:
                del self._rollouts[key]
                self._batch_ready_at.pop(key, None)

    def rollouts(self) -> dict[RolloutKey, RolloutSeries]:
        with self._lock:
            return dict(self._rollouts)

    def state_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for series in self.rollouts().values():
            counts[series.rolling_state] = counts.get(series.rolling_state, 0) + 1
        return counts

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
