"""The admission webhook's HTTP server: a Flask app with a raw WSGI fast path in front.

Modules: ``app`` (the Flask app factory and routes), ``handler`` (the one path from a
body to an answer, which both the routes and the fast path call), ``fastpath`` (plain
admission POSTs without Flask), ``logging`` (JSON review lines), ``metrics``
(Prometheus). This package must not decide admission (webhook.admission.judge does)
and must not read the cluster itself. The names below are what the webhook command
and the tests use.
"""

from __future__ import annotations

from webhook.admission.server.app import create_app
from webhook.admission.server.handler import MAX_BODY_BYTES
from webhook.admission.server.logging import JsonFormatter, ReviewLineHandler
from webhook.admission.server.metrics import Metrics

__all__ = ["MAX_BODY_BYTES", "JsonFormatter", "Metrics", "ReviewLineHandler", "create_app"]
