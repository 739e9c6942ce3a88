"""The raw WSGI path for well-formed admission POSTs, in front of the Flask app.

Holds ``FastPath``, WSGI middleware that answers the plain case itself: POST to
/validate or /mutate, a Content-Length within the limit and a JSON content type. Flask's
routing, request context and Response cost as much CPU as a whole denial, and nearly
every request the API server sends is the plain case (bench/webhook.py measures it).
Everything else (other routes and methods, chunked or oversized bodies, other content
types) goes to Flask, which gives the same answers and errors. It must not answer
anything differently from the Flask routes: both call the same ReviewHandler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from webhook.admission.server.handler import (
    ADMISSION_PATHS,
    JSON_TYPES,
    MAX_BODY_BYTES,
    ReviewHandler,
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
HTTP_REASONS = {200: "OK", 400: "BAD REQUEST"}


class FastPath:
    """WSGI app: plain admission POSTs answered by ``handler``, the rest by ``fallback``."""

    def __init__(self, fallback: WSGIApp, handler: ReviewHandler) -> None:
        self.fallback = fallback
        self.handler = handler

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        mode = ADMISSION_PATHS.get(environ.get("PATH_INFO", ""))
        length = _plain_length(environ) if mode is not None else None
        if mode is None or length is None:
            return self.fallback(environ, start_response)
        started = time.perf_counter()
        body = environ["wsgi.input"].read(length) if length else b""
        if len(body) < length:
            status, payload = self.handler.refuse(400, "the body ended before its Content-Length")
        else:
            status, payload = self.handler.answer(mode, body, started)
        start_response(
            f"{status} {HTTP_REASONS.get(status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]


def _plain_length(environ: dict[str, Any]) -> int | None:
    """The Content-Length of a plain admission POST; None sends the request to Flask."""
    if environ.get("REQUEST_METHOD") != "POST":
        return None
    mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    length_text = environ.get("CONTENT_LENGTH", "")
    if mimetype not in JSON_TYPES or not (length_text.isascii() and length_text.isdigit()):
        return None
    length = int(length_text)
    # Over the limit, Flask refuses it with its 413.
    return length if length <= MAX_BODY_BYTES else None
