"""Plain JSON-like values: copying them, telling their types, and the errors about their shape.

Holds the small helpers every reader of user input or API objects shares: ``plain`` (a
deep copy in plain dicts and lists), ``is_int`` (an integer that is not a bool),
``is_mapping`` (isinstance of Mapping, quick for a dict), ``type_name`` (JSON type names
for messages) and the two shape errors (a wrong type; an unknown key, with a did-you-mean
hint). It must not know any object's shape and must not hold rules.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from webhook.core import errors as fe
from webhook.core.errors import FieldError
from webhook.core.paths import FieldPath

# The exact types plain() returns as they are (None's type included).
_LEAVES = frozenset({str, int, bool, float, type(None)})


def plain(value: Any) -> Any:
    """A deep copy in plain dicts (string keys) and lists, so values never alias caller data.

    Plain containers, not read-only proxies, on purpose: callers json.dumps and
    deepcopy them; the Mapping type hints already say "do not mutate".
    """
    # Exact JSON types first (one type() lookup each, no isinstance walk): parsed specs
    # are strings and numbers in plain dicts and lists. Subclasses take the slow path.
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    # Leaves of those exact types are kept in place without a call (what plain() of them
    # returns): most of a spec's values are leaves.
    if kind is dict:
        return {
            k if type(k) is str else str(k): v if type(v) in _LEAVES else plain(v)
            for k, v in value.items()
        }
    if kind is list:
        return [v if type(v) in _LEAVES else plain(v) for v in value]
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, dict | Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def is_int(value: object) -> TypeGuard[int]:
    """An integer that is really one: a bool is not, "2" is not."""
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def is_mapping(value: object) -> TypeGuard[Mapping[Any, Any]]:
    """isinstance(value, Mapping), answered without the ABC check for a plain dict (what
    parsed JSON and YAML are made of): every field of every review is asked."""
    return type(value) is dict or isinstance(value, Mapping)


def type_name(value: object) -> str:
    """The JSON type name of a value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def wrong_type(path: FieldPath, value: object, expected: str) -> FieldError:
    return fe.invalid(path, value, f"must be {expected}, not {type_name(value)}")


def unknown_field(path: FieldPath, key: object, allowed: Sequence[str]) -> FieldError:
    """An unsupported key, with a hint when it looks like a typo of an allowed one."""
    error = fe.unsupported(path, str(key), tuple(allowed))
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.75)
    if not close:
        return error
    return fe.FieldError(error.type, path, f'did you mean "{close[0]}"? {error.detail}', str(key))
