"""The webhook's Prometheus metrics, and the state readers that count what they do.

Holds ``Metrics``: review counts and durations, HTTP rejections, and reads of live state
(by source, duration, failures); in multiprocess mode (gunicorn workers, with
PROMETHEUS_MULTIPROC_DIR set) /metrics aggregates every worker. It must not decide
admission and must not read the cluster itself (readers are handed in).
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from webhook.admission.judge import StateReader
from webhook.core.errors import ApiError
from webhook.core.state import ObservedState

_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class CachedReader(Protocol):
    """Like a StateReader, but None when it cannot vouch for what it holds."""

    def __call__(
        self, namespace: str, name: str, *, rollouts: bool = True
    ) -> ObservedState | None: ...


class Metrics:
    """The webhook's Prometheus metrics; in multiprocess mode /metrics aggregates all workers."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.reviews = Counter(
            "oam_rollout_admission_reviews",
            "AdmissionReviews answered, by webhook, operation, verdict and status code.",
            ["webhook", "operation", "allowed", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "oam_rollout_admission_duration_seconds",
            "Time to answer one AdmissionReview, body read to response encoded.",
            ["webhook"],
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "oam_rollout_http_rejections",
            "Requests refused before admission (400, 404, 405, 413, 415).",
            ["code"],
            registry=self.registry,
        )
        self.cluster_reads = Histogram(
            "oam_rollout_cluster_read_duration_seconds",
            "Time to read the observed state of one Application from the API.",
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.state_reads = Counter(
            "oam_rollout_state_reads",
            "Observed-state reads, by source: the watch-fed cache or the API directly.",
            ["source"],
            registry=self.registry,
        )
        self.cluster_read_errors = Counter(
            "oam_rollout_cluster_read_errors",
            "Reads of the observed state that failed (each one denied a review).",
            registry=self.registry,
        )

        # Labelled children, looked up once: labels() validates and locks on every call.
        self._children: dict[tuple[str, ...], Any] = {}

    def review_counter(self, webhook: str, operation: str, is_allowed: bool, code: int) -> Any:
        key = ("reviews", webhook, operation, str(is_allowed).lower(), str(code))
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, self.reviews.labels(*key[1:]))
        return child

    def duration_histogram(self, webhook: str) -> Any:
        key = ("duration", webhook)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, self.duration.labels(webhook))
        return child

    def reject(self, code: int) -> None:
        """Count one request refused before admission."""
        self.rejected.labels(str(code)).inc()

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    def layered_reader(self, cached: CachedReader, direct: StateReader) -> StateReader:
        """Answer from ``cached`` while it is live, else from ``direct`` (the API)."""
        return _LayeredReader(
            cached, direct, self.state_reads.labels("cache"), self.state_reads.labels("api")
        )

    def timed_reader(self, read_state: StateReader) -> StateReader:
        """``read_state`` with its duration and failures counted."""
        return _TimedReader(read_state, self)


class _LayeredReader:
    """A StateReader: the cache when it vouches for its answer, else the API; both counted."""

    def __init__(self, cached: CachedReader, direct: StateReader, hits: Any, misses: Any) -> None:
        self._cached = cached
        self._direct = direct
        self._hits = hits
        self._misses = misses

    def __call__(self, namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
        state = self._cached(namespace, name, rollouts=rollouts)
        if state is not None:
            self._hits.inc()
            return state
        self._misses.inc()
        return self._direct(namespace, name, rollouts=rollouts)


class _TimedReader:
    """A StateReader that records how long each read took and counts the failed ones."""

    def __init__(self, read_state: StateReader, metrics: Metrics) -> None:
        self._read_state = read_state
        self._metrics = metrics

    def __call__(self, namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
        started = time.perf_counter()
        try:
            return self._read_state(namespace, name, rollouts=rollouts)
        except ApiError:
            self._metrics.cluster_read_errors.inc()
            raise
        finally:
            self._metrics.cluster_reads.observe(time.perf_counter() - started)
