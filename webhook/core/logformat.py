"""How one log record reads: a JSON line, or a text line, with the object it concerns.

Holds JsonFormatter (the webhook's review and error lines and the controller's default
format), TextFormatter (the controller's ``--log-format text``) and CONTEXT_ATTRIBUTE, the
record attribute holding the fields that name what a line is about (namespace, app,
component), set by whoever logs (the controller's filter, or ``extra=``). Both parts of
the product format through here, so their lines agree. It must not write anywhere,
configure loggers or keep state: handlers and the parts' own setup do that.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Mapping
from typing import Any

CONTEXT_ATTRIBUTE = "context"
# Built once: json.dumps with any option builds a new encoder on every call.
ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


def context_of(record: logging.LogRecord) -> Mapping[str, Any]:
    """The fields naming what ``record`` is about (empty when it names nothing)."""
    found = getattr(record, CONTEXT_ATTRIBUTE, None)
    return found if isinstance(found, Mapping) else {}


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: a dict message as it is, else level and message; then
    the time, the logger, the context fields and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, dict):
            entry = dict(record.msg)
        else:
            entry = {"level": record.levelname.lower(), "msg": record.getMessage()}
        entry.setdefault("ts", round(record.created, 3))
        entry.setdefault("logger", record.name)
        for key, value in context_of(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return ENCODER.encode(entry)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message key=value...``: the context after the message, before
    any traceback."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = " ".join(f"{key}={value}" for key, value in context_of(record).items())
        return f"{line} {fields}" if fields else line
