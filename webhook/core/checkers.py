"""Value checkers: the small rules every property and trait check is built from.

Holds ``Checker`` (a value and its path in, every FieldError about it out), the
combinators that build checkers for objects, lists and maps (``check_fields``,
``object_of``, ``list_of``, ``string_map``), and the checkers of Kubernetes value
syntaxes the API server applies to what we render (DNS labels and subdomains, label keys
and values, quantities, IP addresses, bounded integers). They mirror apimachinery's
validation, so an input we accept is not refused later by the API server when the
controller applies it. It must not know any component type or trait (see
webhook.core.properties, webhook.core.traits) and must not do I/O.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from webhook.core import errors as fe
from webhook.core.errors import FieldError
from webhook.core.paths import FieldPath
from webhook.core.shapes import is_int, is_mapping, unknown_field, wrong_type

Checker = Callable[[Any, FieldPath], list[FieldError]]
# A field's checker and whether the field is required.
Fields = Mapping[str, tuple[Checker, bool]]
# A rule over a whole object whose fields each passed their own checks.
ObjectRule = Callable[[Mapping[str, Any], FieldPath], list[FieldError]]

INT32_MAX = 2**31 - 1
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# resource.Quantity's grammar, without a sign: a number, then a binary or decimal SI
# suffix or a decimal exponent ("500m", "0.5", "128Mi", "1e3").
_QUANTITY = re.compile(
    r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)?$"
)


# ---------------------------------------------------------------------------
# combinators


def check_fields(obj: Mapping[str, Any], fields: Fields, path: FieldPath) -> list[FieldError]:
    """Unknown keys, missing required fields, then each field's own checker."""
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


def object_of(fields: Fields, *rules: ObjectRule) -> Checker:
    """An object with ``fields``; the ``rules`` run only when every field passed."""

    def check(value: Any, path: FieldPath) -> list[FieldError]:
        if not is_mapping(value):
            return [wrong_type(path, value, "an object")]
        errs = check_fields(value, fields, path)
        if not errs:
            for rule in rules:
                errs.extend(rule(value, path))
        return errs

    return check


def list_of(item: Checker, *rules: ObjectRule) -> Checker:
    """An array whose items each pass ``item``; ``rules`` see {"items": the list} when
    every item passed (for rules across items, such as duplicates)."""

    def check(value: Any, path: FieldPath) -> list[FieldError]:
        if not isinstance(value, list | tuple):
            return [wrong_type(path, value, "an array")]
        errs: list[FieldError] = []
        for i, entry in enumerate(value):
            errs.extend(item(entry, path.index(i)))
        if not errs:
            for rule in rules:
                errs.extend(rule({"items": value}, path))
        return errs

    return check


def object_list(fields: Fields, *rules: ObjectRule) -> Checker:
    """An array of objects with ``fields``."""
    return list_of(object_of(fields), *rules)


def string_map(key: Checker, value: Checker) -> Checker:
    """An object of string keys and values, each key and value checked (at ``path[key]``)."""

    def check(raw: Any, path: FieldPath) -> list[FieldError]:
        if not is_mapping(raw):
            return [wrong_type(path, raw, "an object")]
        errs: list[FieldError] = []
        for k, v in raw.items():
            kpath = path.key(str(k))
            if not isinstance(k, str):
                errs.append(wrong_type(kpath, k, "a string key"))
                continue
            errs.extend(key(k, kpath))
            errs.extend(value(v, kpath))
        return errs

    return check


def duplicates(values: Iterable[tuple[FieldPath, object]]) -> list[FieldError]:
    """A Duplicate error at every later occurrence of a value already seen."""
    seen: set[object] = set()
    errs: list[FieldError] = []
    for path, value in values:
        if value in seen:
            errs.append(fe.duplicate(path, value))
        seen.add(value)
    return errs


# ---------------------------------------------------------------------------
# scalars


def any_string(value: Any, path: FieldPath) -> list[FieldError]:
    return [] if isinstance(value, str) else [wrong_type(path, value, "a string")]


def non_empty_string(value: Any, path: FieldPath) -> list[FieldError]:
    if not isinstance(value, str):
        return [wrong_type(path, value, "a string")]
    return [] if value else [fe.required(path, "must not be empty")]


def string_list(value: Any, path: FieldPath) -> list[FieldError]:
    if not isinstance(value, list | tuple):
        return [wrong_type(path, value, "an array of strings")]
    return [
        wrong_type(path.index(i), v, "a string")
        for i, v in enumerate(value)
        if not isinstance(v, str)
    ]


def boolean(value: Any, path: FieldPath) -> list[FieldError]:
    return [] if isinstance(value, bool) else [wrong_type(path, value, "a boolean")]


def one_of(*allowed: str) -> Checker:
    def check(value: Any, path: FieldPath) -> list[FieldError]:
        return [] if value in allowed else [fe.unsupported(path, value, allowed)]

    return check


def integer(minimum: int, maximum: int = INT32_MAX) -> Checker:
    """An integer (not a bool, not "2") within [minimum, maximum]; int32 by default, as the
    API's fields are."""

    def check(value: Any, path: FieldPath) -> list[FieldError]:
        if not is_int(value):
            return [wrong_type(path, value, "an integer")]
        if value < minimum:
            return [fe.invalid(path, value, f"must be greater than or equal to {minimum}")]
        if value > maximum:
            return [fe.invalid(path, value, f"must be less than or equal to {maximum}")]
        return []

    return check


PORT = integer(1, 65535)
# File modes of Secret and ConfigMap volumes: 0 to 0777.
FILE_MODE = integer(0, 0o777)


def quantity(value: Any, path: FieldPath) -> list[FieldError]:
    """A resource quantity: a string in resource.Quantity's syntax ("500m", "0.5",
    "128Mi"), or a positive finite number (YAML's .inf and .nan are not quantities)."""
    if isinstance(value, bool):
        return [wrong_type(path, value, 'a quantity such as "500m", "0.5" or "128Mi"')]
    if is_int(value) or isinstance(value, float):
        if math.isfinite(value) and value > 0 and _QUANTITY.fullmatch(str(value)):
            return []
        return [fe.invalid(path, value, "must be a positive, finite number or a quantity string")]
    if isinstance(value, str) and _QUANTITY.fullmatch(value):
        return []
    return [fe.invalid(path, value, 'must be a quantity such as "500m", "0.5" or "128Mi"')]


def dns_label(value: Any, path: FieldPath) -> list[FieldError]:
    """An RFC 1123 label: what Kubernetes requires of volume and port names."""
    if isinstance(value, str) and len(value) <= 63 and DNS1123_LABEL.fullmatch(value):
        return []
    return [
        fe.invalid(
            path,
            value,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters"
            " or '-', start and end with an alphanumeric character, and be at most 63"
            " characters",
        )
    ]


def dns_subdomain(value: Any, path: FieldPath) -> list[FieldError]:
    """An RFC 1123 subdomain: the name of a Secret, ConfigMap or claim, a host name."""
    if isinstance(value, str) and len(value) <= 253 and DNS1123_SUBDOMAIN.fullmatch(value):
        return []
    return [
        fe.invalid(
            path,
            value,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric"
            " characters, '-' or '.', and must start and end with an alphanumeric character",
        )
    ]


def qualified_name(value: Any, path: FieldPath) -> list[FieldError]:
    """A label or annotation key: [prefix/]name, prefix a DNS subdomain, name at most 63
    alphanumerics, '-', '_' or '.' (alphanumeric at both ends)."""
    if not isinstance(value, str):
        return [wrong_type(path, value, "a string")]
    prefix, slash, name = value.rpartition("/")
    ok = (
        len(name) <= 63
        and _QUALIFIED_NAME.fullmatch(name) is not None
        and (not slash or (0 < len(prefix) <= 253 and DNS1123_SUBDOMAIN.fullmatch(prefix)))
    )
    if ok:
        return []
    return [
        fe.invalid(
            path,
            value,
            "must be a qualified name: an optional DNS subdomain prefix and '/', then at most"
            " 63 alphanumeric characters, '-', '_' or '.', starting and ending with an"
            " alphanumeric character",
        )
    ]


def label_value(value: Any, path: FieldPath) -> list[FieldError]:
    if not isinstance(value, str):
        return [wrong_type(path, value, "a string")]
    if len(value) <= 63 and _LABEL_VALUE.fullmatch(value):
        return []
    return [
        fe.invalid(
            path,
            value,
            "a label value must be empty or at most 63 alphanumeric characters, '-', '_' or"
            " '.', starting and ending with an alphanumeric character",
        )
    ]


def config_key(value: Any, path: FieldPath) -> list[FieldError]:
    """A key of a Secret or ConfigMap."""
    if isinstance(value, str) and len(value) <= 253 and _CONFIG_KEY.fullmatch(value):
        return []
    return [
        fe.invalid(
            path,
            value,
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        )
    ]


def ip_address(value: Any, path: FieldPath) -> list[FieldError]:
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
            return []
        except ValueError:
            pass
    return [fe.invalid(path, value, "must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::1)")]


def relative_path(value: Any, path: FieldPath) -> list[FieldError]:
    """A path inside a volume: relative, without '..' elements."""
    if not isinstance(value, str):
        return [wrong_type(path, value, "a string")]
    if not value:
        return [fe.required(path, "must not be empty")]
    if value.startswith("/"):
        return [fe.invalid(path, value, "must be a relative path")]
    if ".." in value.split("/"):
        return [fe.invalid(path, value, "must not contain '..'")]
    return []
