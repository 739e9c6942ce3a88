"""The webhook's logs: one JSON line per review on stderr, and errors as JSON lines too.

Holds the loggers (``oam_rollout.reviews``, ``oam_rollout.webhook``), ``JsonFormatter``
(the controller's too: it lives in webhook.core.logformat), ``ReviewLineHandler`` and
``log_review``, which writes a review line straight to our own handler when nothing else
listens (building a LogRecord costs a third of a review's logging), else through logging
as usual. It must not decide what is logged about a review (the handler does) and must
not log bodies or objects.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from webhook.admission.wirejson import dumps_line
from webhook.core.logformat import JsonFormatter

__all__ = ["ERROR_LOGGER", "REVIEW_LOGGER", "TLS_LOGGER", "JsonFormatter", "ReviewLineHandler",
           "configure_logging", "error_log", "log_review", "review_log"]

REVIEW_LOGGER = "oam_rollout.reviews"
ERROR_LOGGER = "oam_rollout.webhook"
TLS_LOGGER = "oam_rollout.tls"

review_log = logging.getLogger(REVIEW_LOGGER)
error_log = logging.getLogger(ERROR_LOGGER)


class ReviewLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The review log's own handler; ``write_entry`` skips the LogRecord for plain entries."""

    def write_entry(self, logger: logging.Logger, entry: dict[str, Any]) -> None:
        # The entry JsonFormatter would print, without building a LogRecord (a third of a
        # review's logging cost) and encoded by orjson (a third of the rest), written under
        # the handler's lock as emit is.
        entry["ts"] = round(time.time(), 3)
        entry["logger"] = logger.name
        line = dumps_line(entry) + self.terminator
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(line)
                self.stream.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": entry}))


def configure_logging() -> None:
    """Review lines go to stderr as bare JSON; other messages as one JSON line too."""
    for logger in (review_log, error_log, logging.getLogger(TLS_LOGGER)):
        if not logger.handlers:
            handler = ReviewLineHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False


def _only_our_handler() -> ReviewLineHandler | None:
    """Our handler when it alone would print the review line as it is, else None."""
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
        return handlers[0]
    return None


def log_review(entry: dict[str, Any]) -> None:
    """One review line: straight to our handler when it is the only one, else via logging."""
    direct = _only_our_handler()
    if direct is not None:
        direct.write_entry(review_log, entry)
    elif review_log.isEnabledFor(logging.INFO):
        # makeRecord + handle, not info(): the same record, without the caller lookup
        # (a walk up the stack) that logging does for every message and we never print.
        review_log.handle(
            review_log.makeRecord(review_log.name, logging.INFO, __file__, 0, entry, (), None)
        )
