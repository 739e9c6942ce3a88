"""The admission HTTP shell: a Flask app factory that decodes, limits, dispatches, logs and counts.

Holds ``create_app`` (POST /validate, POST /mutate, GET /healthz, /readyz, /metrics),
``Metrics`` (Prometheus, multiprocess-aware) and the JSON review log. Requests are turned
into data here and handed to webhook.admission.judge; its answer is encoded back. Bad bodies
get plain HTTP errors (400 not JSON / not an AdmissionReview, 413 over 7 MiB, 415 not
JSON content); our own failures become an AdmissionReview denial with code 500 and the
traceback goes to the log only. It must not decide admission and must not talk to the
Kubernetes API itself (the state reader is injected).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from werkzeug.exceptions import HTTPException

from webhook.admission.judge import Mode, Renderer, StateReader, mutate, validate
from webhook.admission.reviews import BadReview, ReviewRequest, errored, parse_review
from webhook.core.errors import ClusterReadError, OamRolloutError
from webhook.core.state import ObservedState

MAX_BODY_BYTES = 7 * 1024 * 1024
JSON_TYPES = ("application/json",)


class CachedReader(Protocol):
    """Like a StateReader, but None when it cannot vouch for what it holds."""

    def __call__(
        self, namespace: str, name: str, *, rollouts: bool = True
    ) -> ObservedState | None: ...


review_log = logging.getLogger("oam_rollout.reviews")
# Built once: json.dumps with any option builds a new encoder on every call.
_REVIEW_ENCODER = json.JSONEncoder(separators=(",", ":"))
_LOG_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
error_log = logging.getLogger("oam_rollout.webhook")


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
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
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
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
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

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    def layered_reader(self, cached: CachedReader, direct: StateReader) -> StateReader:
        """Answer from ``cached`` while it is live, else from ``direct`` (the API)."""

        from_cache, from_api = self.state_reads.labels("cache"), self.state_reads.labels("api")

        def read(namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
            state = cached(namespace, name, rollouts=rollouts)
            if state is not None:
                from_cache.inc()
                return state
            from_api.inc()
            return direct(namespace, name, rollouts=rollouts)

        return read

    def timed_reader(self, read_state: StateReader) -> StateReader:
        """``read_state`` with its duration and failures counted."""

        def read(namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
            started = time.perf_counter()
            try:
                return read_state(namespace, name, rollouts=rollouts)
            except ClusterReadError:
                self.cluster_read_errors.inc()
                raise
            finally:
                self.cluster_reads.observe(time.perf_counter() - started)

        return read


def configure_logging() -> None:
    """Review lines go to stderr as bare JSON; other messages as one JSON line too."""
    for logger in (review_log, error_log, logging.getLogger("oam_rollout.tls")):
        if not logger.handlers:
            handler = ReviewLineHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False


class ReviewLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The review log's own handler; ``write_entry`` skips the LogRecord for plain entries."""

    def write_entry(self, logger: logging.Logger, entry: dict[str, Any]) -> None:
        # The line JsonFormatter would print for this entry, without building a LogRecord
        # (a third of a review's logging cost), written under the handler's lock as emit is.
        entry["ts"] = round(time.time(), 3)
        entry["logger"] = logger.name
        line = _LOG_ENCODER.encode(entry) + self.terminator
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(line)
                self.stream.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": entry}))


def log_review(entry: dict[str, Any]) -> None:
    """One review line: straight to our handler when it is the only one, else via logging."""
    handlers = review_log.handlers
    if (
        len(handlers) == 1
        and type(handlers[0]) is ReviewLineHandler
        and not review_log.propagate
        and not review_log.filters
        and review_log.isEnabledFor(logging.INFO)
        and handlers[0].level <= logging.INFO
        and not handlers[0].filters
    ):
        handlers[0].write_entry(review_log, entry)
    elif review_log.isEnabledFor(logging.INFO):
        # makeRecord + handle, not info(): the same record, without the caller lookup
        # (a walk up the stack) that logging does for every message and we never print.
        review_log.handle(
            review_log.makeRecord(review_log.name, logging.INFO, __file__, 0, entry, (), None)
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, dict):
            entry = dict(record.msg)
        else:
            entry = {"level": record.levelname.lower(), "msg": record.getMessage()}
        entry.setdefault("ts", round(record.created, 3))
        entry.setdefault("logger", record.name)
        if record.exc_info:
            entry["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, default=str, separators=(",", ":"))


def _plain_error(code: int, message: str) -> Response:
    body = json.dumps({"code": code, "error": message})
    return Response(body, status=code, mimetype="application/json")


def _error_body(code: int, message: str) -> bytes:
    return json.dumps({"code": code, "error": message}).encode()


def create_app(
    read_state: StateReader,
    renderer: Renderer,
    *,
    metrics: Metrics | None = None,
    ready: Callable[[], Mapping[str, bool]] | None = None,
) -> Flask:
    """The WSGI app. ``read_state`` and ``renderer`` are the seams tests replace."""
    app = Flask("oam_rollout.webhook")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    counters = metrics if metrics is not None else Metrics()
    reader = counters.timed_reader(read_state)
    readiness = ready or (lambda: {"templates": True})
    configure_logging()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        counters.rejected.labels(str(code)).inc()
        return _plain_error(code, exc.description or exc.name)

    def answer(mode: Mode) -> Response:
        started = time.perf_counter()
        if request.mimetype not in JSON_TYPES:
            counters.rejected.labels("415").inc()
            shown = request.mimetype or "none"
            return _plain_error(415, f"Content-Type must be application/json, got {shown}")
        body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
        status, payload = review_body(mode, body, started)
        return Response(payload, status=status, mimetype="application/json")

    def review_body(mode: Mode, body: bytes, started: float) -> tuple[int, bytes]:
        """(HTTP status, JSON body) for one admission body of the right content type."""
        try:
            review_request = parse_review(json.loads(body))
        except (ValueError, RecursionError) as exc:
            counters.rejected.labels("400").inc()
            what = str(exc) if isinstance(exc, BadReview) else "the body is not valid JSON"
            return 400, _error_body(400, f"not an AdmissionReview: {what}")
        decide = mutate if mode == "mutate" else validate
        try:
            response = decide(review_request, reader, renderer)
        except BadReview as exc:
            counters.rejected.labels("400").inc()
            return 400, _error_body(400, f"not an AdmissionReview: {exc}")
        except OamRolloutError as exc:
            error_log.exception(
                {"level": "error", "msg": f"{mode} failed", "uid": review_request.uid}
            )
            response = errored(review_request, f"oam-rollout {mode} failed: {exc}")
        except Exception:
            incident = uuid.uuid4().hex[:12]
            error_log.exception(
                {
                    "level": "error",
                    "msg": f"{mode} crashed",
                    "uid": review_request.uid,
                    "incident": incident,
                }
            )
            response = errored(
                review_request,
                f"oam-rollout {mode} hit an internal error (incident {incident}, see its log)",
            )
        payload = _REVIEW_ENCODER.encode(response).encode()
        record(mode, review_request, response, time.perf_counter() - started)
        return 200, payload

    def record(mode: Mode, req: ReviewRequest, review: Mapping[str, Any], elapsed: float) -> None:
        response = review["response"]
        is_allowed = bool(response.get("allowed"))
        code = int(response.get("status", {}).get("code", 200))
        counters.review_counter(mode, req.operation, is_allowed, code).inc()
        counters.duration_histogram(mode).observe(elapsed)
        namespace = req.namespace
        log_review(
            {
                "webhook": mode,
                "uid": req.uid,
                "kind": req.kind_name,
                "object": f"{namespace}/{req.object_name}" if namespace else req.object_name,
                "operation": req.operation,
                "dryRun": req.dry_run,
                "allowed": is_allowed,
                "code": code,
                "patched": "patch" in response,
                "durationMs": round(elapsed * 1000, 3),
            }
        )

    @app.post("/validate")
    def validate_endpoint() -> Response:
        return answer("validate")

    @app.post("/mutate")
    def mutate_endpoint() -> Response:
        return answer("mutate")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def readyz() -> Response:
        checks = dict(readiness())
        ok = all(checks.values())
        body = json.dumps({"ready": ok, "checks": checks}, sort_keys=True)
        return Response(body, status=200 if ok else 503, mimetype="application/json")

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(counters.exposition(), content_type=CONTENT_TYPE_LATEST)

    app.wsgi_app = admission_fast_path(app.wsgi_app, review_body, counters)  # type: ignore[method-assign,assignment]
    return app


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ADMISSION_PATHS: dict[str, Mode] = {"/validate": "validate", "/mutate": "mutate"}


def admission_fast_path(
    flask_app: WSGIApp,
    review_body: Callable[[Mode, bytes, float], tuple[int, bytes]],
    counters: Metrics,
) -> WSGIApp:
    """Serve well-formed admission POSTs without Flask's request machinery.

    Flask's routing, request context and Response cost as much CPU as a whole denial.
    Only the plain case is taken here: POST to /validate or /mutate, a Content-Length
    within the limit and a JSON content type. Anything else (other routes and methods,
    chunked or oversized bodies, other content types) goes to Flask, which gives the
    same answers and errors as before.
    """

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        mode = ADMISSION_PATHS.get(environ.get("PATH_INFO", ""))
        if mode is None or environ.get("REQUEST_METHOD") != "POST":
            return flask_app(environ, start_response)
        mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        length_text = environ.get("CONTENT_LENGTH", "")
        if mimetype not in JSON_TYPES or not (length_text.isascii() and length_text.isdigit()):
            return flask_app(environ, start_response)
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            return flask_app(environ, start_response)
        started = time.perf_counter()
        body = environ["wsgi.input"].read(length) if length else b""
        if len(body) < length:
            counters.rejected.labels("400").inc()
            status, payload = 400, _error_body(400, "the body ended before its Content-Length")
        else:
            status, payload = review_body(mode, body, started)
        start_response(
            "200 OK" if status == 200 else f"{status} {HTTP_REASONS.get(status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    return wsgi


HTTP_REASONS = {400: "BAD REQUEST"}
