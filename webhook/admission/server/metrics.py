"""The webhook's Prometheus metrics, and the state readers that count what they do.

Holds ``Metrics``: review counts and durations, HTTP rejections, reads of live state
(by source, duration, failures) and the process's own metrics (CPU, memory, file
descriptors); in multiprocess mode (gunicorn workers, with PROMETHEUS_MULTIPROC_DIR set)
/metrics aggregates every worker, and shows the process metrics of every live worker
with a ``pid`` label (``ServerProcesses``). It must not
decide admission and must not read the cluster itself (readers are handed in).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from webhook.admission.judge import ReadScope, ScopedStateReader, StateReader
from webhook.core.errors import ApiError
from webhook.core.state import ObservedState

_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# A worker's value files in the multiprocess directory end in _<pid>.db.
_WORKER_FILE = re.compile(r"_(\d+)\.db$")

# A *_created sample beside every counter and histogram is noise nobody graphs.
disable_created_metrics()  # type: ignore[no-untyped-call]


class CachedReader(Protocol):
    """Like a StateReader, but None when it cannot vouch for what it holds; with a
    ``scope``, it may answer with only what the scope names."""

    def __call__(
        self, namespace: str, name: str, *, rollouts: bool = True, scope: ReadScope | None = None
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
        # One process (tests, a bare Flask app): its own metrics, as the default registry
        # shows them. Multiprocess mode shows every process instead (exposition).
        ProcessCollector(registry=self.registry)

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
            registry.register(ServerProcesses(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
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


class ServerProcesses(Collector):
    """The process metrics of every live worker of a multiprocess server (each one that
    has value files in ``directory``, and this one), by ``pid``.

    Whichever worker answers the scrape reads them all from /proc, so the series do not
    jump from one worker's figures to another's between scrapes. The gunicorn master,
    which only forks and watches the workers, is left out.
    """

    def __init__(self, directory: str, proc: str = "/proc") -> None:
        self._directory = directory
        self._proc = proc

    def pids(self) -> list[int]:
        found = {os.getpid()}
        for name in os.listdir(self._directory):
            match = _WORKER_FILE.search(name)
            if match:
                found.add(int(match.group(1)))
        return sorted(p for p in found if os.path.isdir(os.path.join(self._proc, str(p))))

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for pid in self.pids():
            one = ProcessCollector(pid=lambda pid=pid: pid, proc=self._proc,  # type: ignore[misc]
                                   registry=None)
            for family in one.collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type))
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)},
                                      sample.value)
        yield from families.values()


class _LayeredReader(ScopedStateReader):
    """A StateReader: the cache when it vouches for its answer, else the API; both counted.

    A scoped read is answered from the cache's index; the API answers with the whole
    namespace, which holds the scope.
    """

    def __init__(self, cached: CachedReader, direct: StateReader, hits: Any, misses: Any) -> None:
        self._cached = cached
        self._direct = direct
        self._hits = hits
        self._misses = misses

    def __call__(self, namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
        return self._read(namespace, name, rollouts, None)

    def read_scoped(
        self, namespace: str, name: str, scope: ReadScope, *, rollouts: bool = True
    ) -> ObservedState:
        return self._read(namespace, name, rollouts, scope)

    def _read(
        self, namespace: str, name: str, rollouts: bool, scope: ReadScope | None
    ) -> ObservedState:
        state = self._cached(namespace, name, rollouts=rollouts, scope=scope)
        if state is not None:
            self._hits.inc()
            return state
        self._misses.inc()
        return self._direct(namespace, name, rollouts=rollouts)


class _TimedReader(ScopedStateReader):
    """A StateReader that records how long each read took and counts the failed ones;
    scoped reads pass through when the reader it wraps takes them."""

    def __init__(self, read_state: StateReader, metrics: Metrics) -> None:
        self._read_state = read_state
        self._metrics = metrics

    def __call__(self, namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
        return self._timed(namespace, name, rollouts, None)

    def read_scoped(
        self, namespace: str, name: str, scope: ReadScope, *, rollouts: bool = True
    ) -> ObservedState:
        return self._timed(namespace, name, rollouts, scope)

    def _timed(
        self, namespace: str, name: str, rollouts: bool, scope: ReadScope | None
    ) -> ObservedState:
        started = time.perf_counter()
        reader = self._read_state
        try:
            if scope is not None and isinstance(reader, ScopedStateReader):
                return reader.read_scoped(namespace, name, scope, rollouts=rollouts)
            return reader(namespace, name, rollouts=rollouts)
        except ApiError:
            self._metrics.cluster_read_errors.inc()
            raise
        finally:
            self._metrics.cluster_reads.observe(time.perf_counter() - started)
