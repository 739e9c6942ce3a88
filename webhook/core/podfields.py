"""The pod-template fields a component sets: env, probes, volumes, host aliases, pull
secrets, and the labels and annotations of pods and workloads.

Holds one checker per field as KubeVela's webservice definition shapes it (pinned
release: see docs/parity.md) and as the API server validates what it becomes: env entries
(value, or valueFrom a Secret or ConfigMap key), health probes (exactly one handler,
KubeVela's defaults), volumeMounts (pvc, configMap, secret, emptyDir, hostPath; names and
mount paths unique across them), hostAliases, imagePullSecrets, and label / annotation
maps that stay off the product's own keys. webhook.core.properties puts them together
per component type; webhook.core.traits uses the label and annotation maps. It must not
decide policy (hostPath is refused or allowed by webhook.core.properties) and must not
do I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from webhook.core import errors as fe
from webhook.core.checkers import (
    FILE_MODE,
    PORT,
    Checker,
    Fields,
    any_string,
    config_key,
    dns_label,
    dns_subdomain,
    duplicates,
    integer,
    ip_address,
    label_value,
    list_of,
    non_empty_string,
    object_list,
    object_of,
    one_of,
    qualified_name,
    relative_path,
    string_list,
    string_map,
)
from webhook.core.errors import FieldError
from webhook.core.labels import RESERVED_KEY_PREFIXES, RESERVED_KEYS
from webhook.core.paths import FieldPath

# The kinds of volumeMounts, in the order KubeVela lists (and renders) them.
VOLUME_KINDS = ("pvc", "configMap", "secret", "emptyDir", "hostPath")
# A probe's numbers and KubeVela's defaults for them, rendered when left out.
PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "successThreshold": 1,
    "failureThreshold": 3,
}
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket")
# Annotations of one object hold at most this much (keys and values), as the API checks.
ANNOTATIONS_MAX_BYTES = 256 * 1024


# ---------------------------------------------------------------------------
# env


def env_name(value: Any, path: FieldPath) -> list[FieldError]:
    # What the Kubernetes API accepts as an environment variable name.
    if isinstance(value, str) and re.fullmatch(r"[-._a-zA-Z][-._a-zA-Z0-9]*", value):
        # apimachinery's IsEnvVarName also refuses what reads as a change of directory.
        if value in (".", "..") or value.startswith(".."):
            return [fe.invalid(path, value, "must not be '.' or '..' and must not start with '..'")]
        return []
    return [
        fe.invalid(
            path,
            value,
            "must consist of letters, digits, '_', '-' or '.', and must not start with a digit",
        )
    ]


_KEY_REF: Fields = {"name": (dns_subdomain, True), "key": (config_key, True)}


def _one_source(value: Mapping[str, Any], path: FieldPath) -> list[FieldError]:
    given = [k for k in ("secretKeyRef", "configMapKeyRef") if value.get(k) is not None]
    if len(given) == 1:
        return []
    if not given:
        return [fe.required(path, "must set secretKeyRef or configMapKeyRef")]
    return [fe.forbidden(path.child(given[1]), "may not be set together with secretKeyRef")]


def _value_or_source(value: Mapping[str, Any], path: FieldPath) -> list[FieldError]:
    if value.get("valueFrom") is not None and value.get("value"):
        return [
            fe.invalid(
                path.child("valueFrom"), "", "may not be specified when `value` is not empty"
            )
        ]
    return []


ENV = list_of(
    object_of(
        {
            "name": (env_name, True),
            "value": (any_string, False),
            "valueFrom": (
                object_of(
                    {
                        "secretKeyRef": (object_of(_KEY_REF), False),
                        "configMapKeyRef": (object_of(_KEY_REF), False),
                    },
                    _one_source,
                ),
                False,
            ),
        },
        _value_or_source,
    )
)


# ---------------------------------------------------------------------------
# probes


def _http_header_name(value: Any, path: FieldPath) -> list[FieldError]:
    if isinstance(value, str) and re.fullmatch(r"[-A-Za-z0-9]+", value):
        return []
    return [fe.invalid(path, value, "must be a valid HTTP header name: letters, digits and '-'")]


_PROBE_FIELDS: Fields = {
    "exec": (object_of({"command": (string_list, True)}), False),
    "httpGet": (
        object_of(
            {
                "path": (any_string, True),
                "port": (PORT, True),
                "httpHeaders": (
                    object_list({"name": (_http_header_name, True), "value": (any_string, True)}),
                    False,
                ),
            }
        ),
        False,
    ),
    "tcpSocket": (object_of({"port": (PORT, True)}), False),
    "initialDelaySeconds": (integer(0), False),
    "periodSeconds": (integer(1), False),
    "timeoutSeconds": (integer(1), False),
    "successThreshold": (integer(1), False),
    "failureThreshold": (integer(1), False),
}


def _one_handler(value: Mapping[str, Any], path: FieldPath) -> list[FieldError]:
    given = [k for k in PROBE_HANDLERS if value.get(k) is not None]
    if len(given) == 1:
        return []
    if not given:
        return [fe.required(path, "must set one of exec, httpGet or tcpSocket")]
    return [fe.forbidden(path.child(given[1]), f"may not be set together with {given[0]}")]


def _liveness_succeeds_once(value: Mapping[str, Any], path: FieldPath) -> list[FieldError]:
    threshold = value.get("successThreshold")
    if threshold is None or threshold == 1:
        return []
    return [fe.invalid(path.child("successThreshold"), threshold, "must be 1 for a liveness probe")]


READINESS_PROBE = object_of(_PROBE_FIELDS, _one_handler)
LIVENESS_PROBE = object_of(_PROBE_FIELDS, _one_handler, _liveness_succeeds_once)


# ---------------------------------------------------------------------------
# volumes


_MOUNT: Fields = {"name": (dns_label, True), "mountPath": (non_empty_string, True)}
_ITEMS = object_list(
    {"key": (config_key, True), "path": (relative_path, True), "mode": (FILE_MODE, False)}
)
_VOLUME_FIELDS: dict[str, Fields] = {
    "pvc": {**_MOUNT, "claimName": (dns_subdomain, True)},
    "configMap": {
        **_MOUNT,
        "defaultMode": (FILE_MODE, False),
        "cmName": (dns_subdomain, True),
        "items": (_ITEMS, False),
    },
    "secret": {
        **_MOUNT,
        "defaultMode": (FILE_MODE, False),
        "secretName": (dns_subdomain, True),
        "items": (_ITEMS, False),
    },
    "emptyDir": {**_MOUNT, "medium": (one_of("", "Memory"), False)},
    "hostPath": {**_MOUNT, "path": (non_empty_string, True)},
}


def _unique_volumes(value: Mapping[str, Any], path: FieldPath) -> list[FieldError]:
    """Volume names and mount paths are unique across every kind (the pod has one list
    of volumes, the container one list of mounts)."""
    entries = [
        (path.child(kind).index(i), mount)
        for kind in VOLUME_KINDS
        for i, mount in enumerate(value.get(kind) or [])
    ]
    return duplicates((p.child("name"), m["name"]) for p, m in entries) + duplicates(
        (p.child("mountPath"), m["mountPath"]) for p, m in entries
    )


VOLUME_MOUNTS = object_of(
    {kind: (object_list(fields), False) for kind, fields in _VOLUME_FIELDS.items()},
    _unique_volumes,
)


# ---------------------------------------------------------------------------
# the pod


HOST_ALIASES = object_list(
    {"ip": (ip_address, True), "hostnames": (list_of(dns_subdomain), True)}
)
IMAGE_PULL_SECRETS = list_of(dns_subdomain)


def _not_reserved(key: Any, path: FieldPath) -> list[FieldError]:
    if isinstance(key, str) and (key.startswith(RESERVED_KEY_PREFIXES) or key in RESERVED_KEYS):
        return [
            fe.forbidden(
                path,
                f"{key!r} is set by oam-rollout itself: keys under "
                + ", ".join(RESERVED_KEY_PREFIXES)
                + " and "
                + ", ".join(RESERVED_KEYS)
                + " are reserved",
            )
        ]
    return []


def _key_checker(*checks: Checker) -> Checker:
    def check(value: Any, path: FieldPath) -> list[FieldError]:
        for one in checks:
            errs = one(value, path)
            if errs:
                return errs
        return []

    return check


_LABEL_MAP = string_map(_key_checker(qualified_name, _not_reserved), label_value)
_ANNOTATION_MAP = string_map(_key_checker(qualified_name, _not_reserved), any_string)


def labels_map(value: Any, path: FieldPath) -> list[FieldError]:
    """Labels for workloads and pods: valid keys and values, none of our own keys."""
    return _LABEL_MAP(value, path)


def annotations_map(value: Any, path: FieldPath) -> list[FieldError]:
    """Annotations for workloads and pods: valid keys, none of our own, 256 KiB in all."""
    errs = _ANNOTATION_MAP(value, path)
    if not errs and isinstance(value, Mapping):
        size = sum(len(str(k)) + len(str(v)) for k, v in value.items())
        if size > ANNOTATIONS_MAX_BYTES:
            errs.append(
                fe.FieldError(
                    fe.ErrorType.TOO_MANY,
                    path,
                    f"may not be more than {ANNOTATIONS_MAX_BYTES} bytes",
                )
            )
    return errs
