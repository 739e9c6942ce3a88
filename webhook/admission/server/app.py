"""The admission HTTP shell: the Flask app factory.

Holds ``create_app`` (POST /validate, POST /mutate, GET /healthz, /readyz, /metrics):
it wires the state reader, the renderer and the metrics into one ReviewHandler, serves
the routes with it, and puts the raw WSGI fast path in front. Bad requests get plain
HTTP errors (400 not JSON / not an AdmissionReview, 405, 413 over 7 MiB, 415 not JSON
content). It must not decide admission and must not talk to the Kubernetes API itself
(the state reader is injected).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException

from webhook.admission.judge import Mode, Renderer, StateReader
from webhook.admission.server.fastpath import FastPath
from webhook.admission.server.handler import JSON_TYPES, MAX_BODY_BYTES, ReviewHandler
from webhook.admission.server.logging import configure_logging
from webhook.admission.server.metrics import Metrics
from webhook.core.properties import DEFAULT_POLICY, ComponentPolicy

Readiness = Callable[[], Mapping[str, bool]]


def create_app(
    read_state: StateReader,
    renderer: Renderer,
    *,
    metrics: Metrics | None = None,
    ready: Readiness | None = None,
    record_requester: bool = False,
    policy: ComponentPolicy = DEFAULT_POLICY,
) -> Flask:
    """The WSGI app. ``read_state`` and ``renderer`` are the seams tests replace;
    ``record_requester``: /mutate records who wrote each spec (the server turns it on);
    ``policy``: what /validate lets Applications ask for (hostPath, NodePort, LoadBalancer)."""
    counters = metrics if metrics is not None else Metrics()
    handler = ReviewHandler(counters.timed_reader(read_state), renderer, counters,
                            record_requester=record_requester, policy=policy)
    routes = Routes(handler, ready or _templates_loaded)
    configure_logging()

    app = Flask("oam_rollout.webhook")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.register_error_handler(HTTPException, routes.http_error)
    app.add_url_rule("/validate", "validate", routes.validate, methods=["POST"])
    app.add_url_rule("/mutate", "mutate", routes.mutate, methods=["POST"])
    app.add_url_rule("/healthz", "healthz", routes.healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", routes.readyz, methods=["GET"])
    app.add_url_rule("/metrics", "metrics", routes.metrics, methods=["GET"])
    app.wsgi_app = FastPath(app.wsgi_app, handler)  # type: ignore[method-assign]
    return app


def _templates_loaded() -> Mapping[str, bool]:
    # The renderer loaded its templates before the app was built.
    return {"templates": True}


class Routes:
    """The Flask view functions; admission POSTs that reach them are the unusual ones."""

    def __init__(self, handler: ReviewHandler, ready: Readiness) -> None:
        self.handler = handler
        self.ready = ready

    def http_error(self, exc: HTTPException) -> Response:
        code = exc.code or 500
        status, body = self.handler.refuse(code, exc.description or exc.name)
        return Response(body, status=status, mimetype="application/json")

    def validate(self) -> Response:
        return self._review("validate")

    def mutate(self) -> Response:
        return self._review("mutate")

    def _review(self, mode: Mode) -> Response:
        started = time.perf_counter()
        if request.mimetype not in JSON_TYPES:
            shown = request.mimetype or "none"
            status, body = self.handler.refuse(
                415, f"Content-Type must be application/json, got {shown}"
            )
        else:
            data = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
            status, body = self.handler.answer(mode, data, started)
        return Response(body, status=status, mimetype="application/json")

    def healthz(self) -> Response:
        return Response("ok\n", mimetype="text/plain")

    def readyz(self) -> Response:
        checks = dict(self.ready())
        ok = all(checks.values())
        body = json.dumps({"ready": ok, "checks": checks}, sort_keys=True)
        return Response(body, status=200 if ok else 503, mimetype="application/json")

    def metrics(self) -> Response:
        return Response(self.handler.metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
