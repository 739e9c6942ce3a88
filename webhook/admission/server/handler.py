"""The one path from an admission body to an HTTP answer: parse, decide, encode, count, log.

Holds ``ReviewHandler``, which both the Flask routes (webhook.admission.server.app) and
the raw WSGI fast path (webhook.admission.server.fastpath) call with a body of the
right content type, and the wire limits they share. A body that is not an
AdmissionReview gets a plain 400; our own failures become an AdmissionReview denial
with code 500 and the traceback goes to the log only. It must not decide admission
(webhook.admission.judge does), must not touch Flask or WSGI, and must not read the
cluster itself (the state reader is injected).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from webhook.admission.judge import Mode, Renderer, StateReader, mutate, validate
from webhook.admission.reviews import BadReview, ReviewRequest, errored, parse_review
from webhook.admission.server.logging import error_log, log_review
from webhook.admission.server.metrics import Metrics
from webhook.admission.wirejson import dumps, loads
from webhook.core.errors import OamRolloutError
from webhook.core.properties import DEFAULT_POLICY, ComponentPolicy

MAX_BODY_BYTES = 7 * 1024 * 1024
JSON_TYPES = ("application/json",)
ADMISSION_PATHS: dict[str, Mode] = {"/validate": "validate", "/mutate": "mutate"}


def error_body(code: int, message: str) -> bytes:
    """The JSON body of a plain HTTP error: {"code": ..., "error": ...}."""
    return dumps({"code": code, "error": message})


class ReviewHandler:
    """Answers admission bodies; every answer is counted and logged as one review line."""

    def __init__(
        self,
        read_state: StateReader,
        renderer: Renderer,
        metrics: Metrics,
        *,
        record_requester: bool = False,
        policy: ComponentPolicy = DEFAULT_POLICY,
    ) -> None:
        self.read_state = read_state
        self.renderer = renderer
        self.metrics = metrics
        # What Applications may ask the controller for (hostPath, NodePort, LoadBalancer).
        self.policy = policy
        # Mutation names the writer of every spec (webhook.admission.judge.requester_value).
        self.record_requester = record_requester

    def refuse(self, code: int, message: str) -> tuple[int, bytes]:
        """A request refused before admission: counted, and a plain HTTP error."""
        self.metrics.reject(code)
        return code, error_body(code, message)

    def answer(self, mode: Mode, body: bytes, started: float) -> tuple[int, bytes]:
        """(HTTP status, JSON body) for one admission body of the right content type.

        ``started`` is when the request began (perf_counter), for the duration metric.
        """
        try:
            request = parse_review(loads(body))
        except (ValueError, RecursionError) as exc:
            what = str(exc) if isinstance(exc, BadReview) else "the body is not valid JSON"
            return self.refuse(400, f"not an AdmissionReview: {what}")
        try:
            response = self._decide(mode, request)
        except BadReview as exc:
            return self.refuse(400, f"not an AdmissionReview: {exc}")
        payload = dumps(response)
        self._record(mode, request, response, time.perf_counter() - started)
        return 200, payload

    def _decide(self, mode: Mode, request: ReviewRequest) -> dict[str, Any]:
        """The AdmissionReview answer; BadReview passes, our own failures deny with 500."""
        try:
            if mode == "mutate":
                return mutate(request, self.read_state, self.renderer,
                              record_requester=self.record_requester, policy=self.policy)
            return validate(request, self.read_state, self.renderer, policy=self.policy)
        except BadReview:
            raise
        except OamRolloutError as exc:
            error_log.exception({"level": "error", "msg": f"{mode} failed", "uid": request.uid})
            return errored(request, f"oam-rollout {mode} failed: {exc}")
        except Exception:
            incident = uuid.uuid4().hex[:12]
            error_log.exception(
                {"level": "error", "msg": f"{mode} crashed", "uid": request.uid,
                 "incident": incident}
            )  # fmt: skip
            return errored(
                request,
                f"oam-rollout {mode} hit an internal error (incident {incident}, see its log)",
            )

    def _record(
        self, mode: Mode, req: ReviewRequest, review: Mapping[str, Any], elapsed: float
    ) -> None:
        response = review["response"]
        is_allowed = bool(response.get("allowed"))
        code = int(response.get("status", {}).get("code", 200))
        self.metrics.review_counter(mode, req.operation, is_allowed, code).inc()
        self.metrics.duration_histogram(mode).observe(elapsed)
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
