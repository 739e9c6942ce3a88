"""The properties of the built-in component types (webservice, worker, cloneset).

Holds one checker per property kind (image, ports, env, quantities...) and
BUILTIN_COMPONENT_PROPERTIES, the fields each built-in type's template understands, with
``check_fields`` to apply them; webhook.core.validation calls it for every component of
a built-in type. It must not know about traits or live state and must not do I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from webhook.core import errors as fe
from webhook.core.errors import FieldError
from webhook.core.paths import FieldPath
from webhook.core.shapes import is_int, unknown_field, wrong_type

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

Checker = Callable[[Any, FieldPath], list[FieldError]]


def _image(value: Any, path: FieldPath) -> list[FieldError]:
    if not isinstance(value, str) or not value:
        return [wrong_type(path, value, "a non-empty string")]
    if value != value.strip():
        return [fe.invalid(path, value, "must not have leading or trailing whitespace")]
    return []


def _string_list(value: Any, path: FieldPath) -> list[FieldError]:
    if not isinstance(value, list | tuple):
        return [wrong_type(path, value, "an array of strings")]
    return [
        wrong_type(path.index(i), v, "a string")
        for i, v in enumerate(value)
        if not isinstance(v, str)
    ]


def _quantity(value: Any, path: FieldPath) -> list[FieldError]:
    # Kubernetes quantities: "500m", "0.5", "128Mi"; a plain number is accepted too.
    if (is_int(value) or isinstance(value, float)) and value > 0:
        return []
    if isinstance(value, str) and re.fullmatch(r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?", value):
        return []
    return [fe.invalid(path, value, 'must be a quantity such as "500m", "0.5" or "128Mi"')]


def _object_list(fields: Mapping[str, tuple[Checker, bool]]) -> Checker:
    """A list of objects with the given fields (checker, required)."""

    def check(value: Any, path: FieldPath) -> list[FieldError]:
        if not isinstance(value, list | tuple):
            return [wrong_type(path, value, "an array")]
        errs: list[FieldError] = []
        for i, item in enumerate(value):
            ipath = path.index(i)
            if not isinstance(item, Mapping):
                errs.append(wrong_type(ipath, item, "an object"))
                continue
            errs.extend(check_fields(item, fields, ipath))
        return errs

    return check


def check_fields(
    obj: Mapping[str, Any], fields: Mapping[str, tuple[Checker, bool]], path: FieldPath
) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in obj:
        if key not in fields:
            errs.append(unknown_field(path.child(str(key)), key, tuple(fields)))
    for key, (checker, is_required) in fields.items():
        if obj.get(key) is None:
            if is_required:
                errs.append(fe.required(path.child(key)))
            continue
        errs.extend(checker(obj[key], path.child(key)))
    return errs


def _port(value: Any, path: FieldPath) -> list[FieldError]:
    if not is_int(value):
        return [wrong_type(path, value, "an integer")]
    return [] if 1 <= value <= 65535 else [fe.invalid(path, value, "must be between 1 and 65535")]


def _bool(value: Any, path: FieldPath) -> list[FieldError]:
    return [] if isinstance(value, bool) else [wrong_type(path, value, "a boolean")]


def _one_of(*allowed: str) -> Checker:
    def check(value: Any, path: FieldPath) -> list[FieldError]:
        return [] if value in allowed else [fe.unsupported(path, value, allowed)]

    return check


def _port_name(value: Any, path: FieldPath) -> list[FieldError]:
    # Kubernetes' IANA_SVC_NAME: a short label with a letter and no "--".
    if (
        isinstance(value, str)
        and len(value) <= 15
        and DNS1123_LABEL.fullmatch(value)
        and re.search("[a-z]", value)
        and "--" not in value
    ):
        return []
    return [
        fe.invalid(
            path,
            value,
            "must be at most 15 lower case letters, digits and '-',"
            " with at least one letter and no '--'",
        )
    ]


def _any_string(value: Any, path: FieldPath) -> list[FieldError]:
    return [] if isinstance(value, str) else [wrong_type(path, value, "a string")]


def _env_name(value: Any, path: FieldPath) -> list[FieldError]:
    # What the Kubernetes API accepts as an environment variable name.
    if isinstance(value, str) and re.fullmatch(r"[-._a-zA-Z][-._a-zA-Z0-9]*", value):
        return []
    return [
        fe.invalid(
            path,
            value,
            "must consist of letters, digits, '_', '-' or '.', and must not start with a digit",
        )
    ]


_ENV = _object_list({"name": (_env_name, True), "value": (_any_string, False)})
_PORTS = _object_list(
    {
        "port": (_port, True),
        "name": (_port_name, False),
        "protocol": (_one_of("TCP", "UDP", "SCTP"), False),
        "expose": (_bool, False),
    }
)
_COMMON: dict[str, tuple[Checker, bool]] = {
    "image": (_image, True),
    "imagePullPolicy": (_one_of("Always", "IfNotPresent", "Never"), False),
    "cmd": (_string_list, False),
    "args": (_string_list, False),
    "env": (_ENV, False),
    "cpu": (_quantity, False),
    "memory": (_quantity, False),
}

# Properties the built-in component templates understand. Replicas are absent on
# purpose: the rollout trait owns them. Types from user templates are not checked here.
BUILTIN_COMPONENT_PROPERTIES: dict[str, dict[str, tuple[Checker, bool]]] = {
    "webservice": {**_COMMON, "ports": (_PORTS, False)},
    "worker": dict(_COMMON),
    "cloneset": {**_COMMON, "ports": (_PORTS, False)},
}
