"""The properties of the built-in component types (webservice, worker, cloneset).

Holds BUILTIN_COMPONENT_PROPERTIES, the fields each built-in type's template understands
(KubeVela's names, types and defaults at the release docs/parity.md pins), the rules
across fields (port names and numbers unique), ComponentPolicy (what the chart lets
Applications ask of the controller: hostPath volumes, NodePort / LoadBalancer Services)
and ``property_errors``, which webhook.core.validation calls for every component of a
built-in type. Every error carries its field path and every one is reported. It must not
know about traits or live state and must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core import errors as fe
from webhook.core.checkers import (
    DNS1123_LABEL,
    PORT,
    Fields,
    boolean,
    check_fields,
    duplicates,
    object_list,
    one_of,
    quantity,
    string_list,
)
from webhook.core.errors import FieldError
from webhook.core.paths import FieldPath
from webhook.core.podfields import (
    ENV,
    HOST_ALIASES,
    IMAGE_PULL_SECRETS,
    LIVENESS_PROBE,
    READINESS_PROBE,
    VOLUME_MOUNTS,
    annotations_map,
    labels_map,
)
from webhook.core.scope import UNKNOWN_DENY, UnknownTypes
from webhook.core.shapes import is_mapping, wrong_type

__all__ = [
    "BUILTIN_COMPONENT_PROPERTIES",
    "DEFAULT_POLICY",
    "DNS1123_LABEL",
    "EXPOSE_TYPES",
    "ComponentPolicy",
    "check_fields",
    "property_errors",
]

# Service types exposeType takes. KubeVela's ExternalName is left out: a Service of that
# type needs spec.externalName, which the definition never sets, so the API refuses it.
EXPOSE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
# Types that open the component beyond the cluster: only when the chart allows them.
GATED_EXPOSE_TYPES = ("NodePort", "LoadBalancer")
DEFAULT_EXPOSE_TYPE = "ClusterIP"


@dataclass(frozen=True)
class ComponentPolicy:
    """What Applications may have the controller create with its own rights.

    Anyone who may create an Application would otherwise get a host directory mounted
    or a node port opened. The chart sets these (componentPolicy in values.yaml); the
    webhook receives them as flags, and so do ``validate`` and ``render``.
    """

    allow_host_path: bool = False
    expose_types: frozenset[str] = frozenset({DEFAULT_EXPOSE_TYPE})
    # Applications using a type no template knows: denied, or (ignore) admitted untouched
    # and left to another controller beside us (webhook.core.scope).
    unknown_types: UnknownTypes = UNKNOWN_DENY


DEFAULT_POLICY = ComponentPolicy()


def _image(value: Any, path: FieldPath) -> list[FieldError]:
    if not isinstance(value, str) or not value:
        return [wrong_type(path, value, "a non-empty string")]
    if value != value.strip():
        return [fe.invalid(path, value, "must not have leading or trailing whitespace")]
    return []


def _port_name(value: Any, path: FieldPath) -> list[FieldError]:
    # Kubernetes' IANA_SVC_NAME: a short label with a letter and no "--".
    if (
        isinstance(value, str)
        and len(value) <= 15
        and DNS1123_LABEL.fullmatch(value)
        and any(c.isalpha() for c in value)
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


def port_name(port: Mapping[str, Any]) -> str:
    """The name a port gets: its own, else KubeVela's ``port-<number>``."""
    name = port.get("name")
    return name if isinstance(name, str) else f"port-{port.get('port')}"


def _unique_ports(value: Mapping[str, Any], path: FieldPath) -> list[FieldError]:
    """Port names (given or defaulted) and port/protocol pairs are unique: the container
    and the Service both refuse a second one."""
    ports = value["items"]
    names = duplicates(
        (path.index(i).child("name"), port_name(p)) for i, p in enumerate(ports)
    )
    numbers = duplicates(
        (path.index(i).child("port"), f"{p['port']}/{p.get('protocol') or 'TCP'}")
        for i, p in enumerate(ports)
    )
    return names + numbers


_PORTS = object_list(
    {
        "port": (PORT, True),
        "name": (_port_name, False),
        "protocol": (one_of("TCP", "UDP", "SCTP"), False),
        "expose": (boolean, False),
    },
    _unique_ports,
)

# What every built-in type takes: the container and its pod.
_POD: Fields = {
    "labels": (labels_map, False),
    "annotations": (annotations_map, False),
    "image": (_image, True),
    "imagePullPolicy": (one_of("Always", "IfNotPresent", "Never"), False),
    "imagePullSecrets": (IMAGE_PULL_SECRETS, False),
    "cmd": (string_list, False),
    "args": (string_list, False),
    "env": (ENV, False),
    "cpu": (quantity, False),
    "memory": (quantity, False),
    "volumeMounts": (VOLUME_MOUNTS, False),
    "livenessProbe": (LIVENESS_PROBE, False),
    "readinessProbe": (READINESS_PROBE, False),
    "hostAliases": (HOST_ALIASES, False),
}

# Properties the built-in component templates understand. Replicas are absent on
# purpose: the rollout trait (or the scaler trait) owns them. Types from user templates
# are not checked here. docs/parity.md compares each with KubeVela's definitions.
BUILTIN_COMPONENT_PROPERTIES: dict[str, Fields] = {
    "webservice": {**_POD, "ports": (_PORTS, False), "exposeType": (one_of(*EXPOSE_TYPES), False)},
    "worker": dict(_POD),
    # The Kruise addon's CloneSet renders no Service: ports are the container's only.
    "cloneset": {**_POD, "ports": (_PORTS, False)},
}


def property_errors(
    component_type: str,
    properties: Mapping[str, Any],
    path: FieldPath,
    policy: ComponentPolicy = DEFAULT_POLICY,
) -> list[FieldError]:
    """Every error in a built-in type's properties at ``path``; none for other types."""
    fields = BUILTIN_COMPONENT_PROPERTIES.get(component_type)
    if fields is None:
        return []
    return check_fields(properties, fields, path) + policy_errors(properties, path, policy)


def policy_errors(
    properties: Mapping[str, Any], path: FieldPath, policy: ComponentPolicy
) -> list[FieldError]:
    """hostPath volumes and NodePort / LoadBalancer exposure, unless ``policy`` allows them."""
    errs: list[FieldError] = []
    mounts = properties.get("volumeMounts")
    host_paths = mounts.get("hostPath") if is_mapping(mounts) else None
    if not policy.allow_host_path and isinstance(host_paths, list | tuple):
        hpath = path.child("volumeMounts", "hostPath")
        errs.extend(
            fe.forbidden(
                hpath.index(i),
                "hostPath volumes are not allowed here: the controller would mount a"
                " directory of the node for anyone who may create an Application"
                " (the chart value componentPolicy.allowHostPath enables them)",
            )
            for i in range(len(host_paths))
        )
    expose = properties.get("exposeType")
    if expose in GATED_EXPOSE_TYPES and expose not in policy.expose_types:
        errs.append(
            fe.forbidden(
                path.child("exposeType"),
                f"{expose} Services are not allowed here: they open the component outside"
                " the cluster for anyone who may create an Application (the chart value"
                " componentPolicy.exposeTypes enables them)",
            )
        )
    return errs
