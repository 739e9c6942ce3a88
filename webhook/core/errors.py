"""Field errors (apimachinery style) and the package's small exception tree.

Holds FieldError, the error-type vocabulary and exceptions. It must not hold
rules: validators build FieldErrors and return lists of them, never raise on
bad user input.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from webhook.core.paths import FieldPath


class ErrorType(enum.Enum):
    """The apimachinery error types we use; the value is how it prints."""

    REQUIRED = "Required value"
    INVALID = "Invalid value"
    UNSUPPORTED = "Unsupported value"
    DUPLICATE = "Duplicate value"
    FORBIDDEN = "Forbidden"
    NOT_FOUND = "Not found"
    TOO_MANY = "Too many"
    INTERNAL = "Internal error"

    @property
    def reason(self) -> str:
        """The CauseType apimachinery puts in Status.details.causes[].reason."""
        return _REASONS[self]


# Built once, not per error (every cause of every denial asks).
_REASONS = {
    ErrorType.REQUIRED: "FieldValueRequired",
    ErrorType.INVALID: "FieldValueInvalid",
    ErrorType.UNSUPPORTED: "FieldValueNotSupported",
    ErrorType.DUPLICATE: "FieldValueDuplicate",
    ErrorType.FORBIDDEN: "FieldValueForbidden",
    ErrorType.NOT_FOUND: "FieldValueNotFound",
    ErrorType.TOO_MANY: "FieldValueTooMany",
    ErrorType.INTERNAL: "InternalError",
}
# The error types whose message shows the bad value.
_SHOWS_VALUE = (ErrorType.INVALID, ErrorType.UNSUPPORTED, ErrorType.DUPLICATE, ErrorType.NOT_FOUND)

_OMIT = object()

# What json.dumps(value, sort_keys=True, default=str) builds on every call, built once.
_VALUE_JSON = json.JSONEncoder(sort_keys=True, default=str)


def _render_value(value: Any) -> str:
    """Print a bad value compactly: strings quoted, others as JSON, long ones cut."""
    try:
        text = _VALUE_JSON.encode(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class FieldError:
    """One problem at one field: ``<path>: <type>: <value>: <detail>``."""

    type: ErrorType
    path: FieldPath
    detail: str = ""
    value: Any = _OMIT

    def __str__(self) -> str:
        return f"{self.path}: {self.message()}"

    def message(self) -> str:
        """What follows ``<path>: `` in str(): ``<type>[: <value>][: <detail>]``."""
        head = self.type.value
        if self.value is not _OMIT and self.type in _SHOWS_VALUE:
            head += f": {_render_value(self.value)}"
        return f"{head}: {self.detail}" if self.detail else head

    def as_cause(self) -> dict[str, str]:
        """The entry for an apimachinery Status ``details.causes`` list; ``field``, ": "
        and ``message`` make str() of the error."""
        return {"reason": _REASONS[self.type], "message": self.message(),
                "field": str(self.path)}


def required(path: FieldPath, detail: str = "") -> FieldError:
    return FieldError(ErrorType.REQUIRED, path, detail)


def invalid(path: FieldPath, value: Any, detail: str) -> FieldError:
    return FieldError(ErrorType.INVALID, path, detail, value)


def unsupported(path: FieldPath, value: Any, allowed: list[str] | tuple[str, ...]) -> FieldError:
    quoted = ", ".join(f'"{a}"' for a in allowed)
    return FieldError(ErrorType.UNSUPPORTED, path, f"supported values: {quoted}", value)


def duplicate(path: FieldPath, value: Any) -> FieldError:
    return FieldError(ErrorType.DUPLICATE, path, "", value)


def forbidden(path: FieldPath, detail: str) -> FieldError:
    return FieldError(ErrorType.FORBIDDEN, path, detail)


def not_found(path: FieldPath, value: Any, detail: str = "") -> FieldError:
    return FieldError(ErrorType.NOT_FOUND, path, detail, value)


def internal(path: FieldPath, detail: str) -> FieldError:
    return FieldError(ErrorType.INTERNAL, path, detail)


class OamRolloutError(Exception):
    """Base of the exceptions this package raises on purpose."""


class TemplateError(OamRolloutError):
    """A template could not be found, compiled or rendered; message names the template."""


class ApiError(OamRolloutError):
    """The Kubernetes API failed us: ``status`` is the HTTP code, 0 when no usable answer came
    (unreachable, a broken stream, an answer that is not JSON).

    Admission denies with a 500 code on it (never allows); the controller retries the key.
    The message reads ``METHOD PATH: STATUS REASON`` (no status when it is 0).
    """

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        head = f"{method} {path}: " if method or path else ""
        super().__init__(f"{head}{status} {message}" if status else f"{head}{message}")
        self.method = method
        self.path = path
        self.status = status

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410


class ApiConfigError(ApiError):
    """No API client could be set up (kubeconfig or service account unusable); status 0."""

    def __init__(self, message: str) -> None:
        super().__init__("", "", 0, message)


class InputError(OamRolloutError):
    """Input (a file, stdin) could not be read or parsed; the CLI exits 2 with the message."""
