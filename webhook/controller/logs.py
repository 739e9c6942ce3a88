"""The controller's logs: where they go, in which format, and what each line is about.

Holds ``about(namespace=, app=, component=)``, a context manager that binds those fields
to every line logged in the same thread (a contextvar) while it is open; ContextFilter,
which copies them onto each record the handler sees (our loggers and the libraries'
alike); and ``configure``, which sends every logger's lines to one stream as JSON lines
(the default) or text, ours at the chosen level and the libraries' from WARNING, and
routes warnings and uncaught exceptions through it too, so that no line breaks the
format. It must not decide what is logged, nor format lines itself (webhook.core.logformat
does).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType, TracebackType
from typing import TextIO

from webhook.core.logformat import CONTEXT_ATTRIBUTE, JsonFormatter, TextFormatter

FORMATS = ("json", "text")
LEVELS = ("debug", "info", "warning", "error")
OUR_LOGGERS = "oam_rollout"  # the parent of every logger of the product

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("oam_rollout_log_context", default=_EMPTY)


@contextmanager
def about(**fields: str) -> Iterator[None]:
    """Bind ``fields`` (empty ones are left out) to what this thread logs meanwhile, on
    top of what an enclosing ``about`` bound."""
    merged = {**_context.get(), **{key: value for key, value in fields.items() if value}}
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)


def bound() -> Mapping[str, str]:
    """What ``about`` binds in this thread now."""
    return _context.get()


class ContextFilter(logging.Filter):
    """Puts the bound fields on each record (a record that names its own is left as it is)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        if fields and not hasattr(record, CONTEXT_ATTRIBUTE):
            setattr(record, CONTEXT_ATTRIBUTE, dict(fields))
        return True


def configure(log_format: str, level: str, stream: TextIO | None = None) -> logging.Handler:
    """One handler on the root logger for every line of the process; the handler."""
    if log_format not in FORMATS or level not in LEVELS:
        raise ValueError(f"log format {log_format!r} / level {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # the libraries (urllib3, kubernetes): their problems only
    logging.getLogger(OUR_LOGGERS).setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings become lines of the same format
    failed = logging.getLogger(f"{OUR_LOGGERS}.controller")

    def uncaught(kind: type[BaseException], exc: BaseException,
                 tb: TracebackType | None) -> None:
        failed.critical("uncaught exception", exc_info=(kind, exc, tb))

    def uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            failed.critical("uncaught exception in thread %s",
                            args.thread.name if args.thread else "?",
                            exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = uncaught
    threading.excepthook = uncaught_in_thread
    return handler
