"""Which Applications one installation acts on: its shard, and the types it has templates for.

Holds the pure decisions the webhook and the controller share about whether an
Application is theirs at all:

- ``shard_of``: a stable hash of ``namespace/name`` (sha256, the same in every process,
  host and Python release; never Python's salted ``hash()``) onto ``0..shards-1``;
- ``pinned_shard``: the ``rollout.oam.dev/shard`` label on an Application, which
  overrides the hash; a value that is not a shard of this installation (not a whole
  number, or ``>= shards``) is ignored, so no Application is ever left to no shard;
- ``Shard``: one controller's share (index of count): which Applications it owns, its
  Lease name and the identity its writes carry;
- ``unknown_types`` / ``pass_through_reason``: the component and trait types of a raw
  Application that no template knows, and, with ``--unknown-types ignore``, the warning
  that says why it is admitted untouched and left to another controller (KubeVela's);
- ``Scope``: all of them together, ``ours(app)``, as the controller's event feed asks it,
  with ``--namespace-selector``: only Applications in namespaces whose labels (as the
  controller's namespace watch last saw them, in ``namespace_labels``) the selector
  matches; a namespace not seen is not matched.

An Application using one unknown type passes through whole: the controller that serves
that type serves the whole Application. It must not do I/O and must not raise on bad
input: an object it cannot read is judged as ours (admission then denies it with reasons).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from webhook.core.selectors import LabelSelector

# On an Application: the shard ("0".."M-1") whose controller acts on it, whatever the hash.
LABEL_SHARD = "rollout.oam.dev/shard"

UnknownTypes = Literal["deny", "ignore"]
UNKNOWN_DENY: UnknownTypes = "deny"  # refused at admission, as KubeVela's would not be ours
UNKNOWN_IGNORE: UnknownTypes = "ignore"  # admitted untouched, left to another controller
UNKNOWN_TYPES_MODES: tuple[UnknownTypes, ...] = (UNKNOWN_DENY, UNKNOWN_IGNORE)

_WHOLE_NUMBER = re.compile(r"0|[1-9][0-9]{0,5}")


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard ``namespace/name`` hashes to, in ``0..shards-1`` (0 when unsharded)."""
    if shards <= 1:
        return 0
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def pinned_shard(labels: Mapping[str, Any], shards: int) -> int | None:
    """The shard the LABEL_SHARD label pins to; None when absent or not one of ``shards``."""
    value = labels.get(LABEL_SHARD)
    if not isinstance(value, str) or _WHOLE_NUMBER.fullmatch(value) is None:
        return None
    shard = int(value)
    return shard if shard < shards else None


def assigned_shard(namespace: str, name: str, labels: Mapping[str, Any], shards: int) -> int:
    """The shard that acts on an Application: its pin, else its hash."""
    pinned = pinned_shard(labels, shards)
    return pinned if pinned is not None else shard_of(namespace, name, shards)


def shard_errors(index: int, count: int) -> list[str]:
    """What is wrong with ``--shard-id index --shards count`` (empty: nothing)."""
    if count < 1:
        return [f"--shards {count}: must be at least 1"]
    if not 0 <= index < count:
        return [f"--shard-id {index}: must be between 0 and {count - 1} (--shards {count})"]
    return []


@dataclass(frozen=True)
class Shard:
    """One controller's share of the Applications: shard ``index`` of ``count``."""

    index: int = 0
    count: int = 1

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def owns(self, namespace: str, name: str, labels: Mapping[str, Any]) -> bool:
        return not self.sharded or assigned_shard(namespace, name, labels,
                                                  self.count) == self.index

    def lease_name(self, base: str) -> str:
        """Each shard elects its leader on a Lease of its own; unsharded keeps ``base``."""
        return f"{base}-shard-{self.index}" if self.sharded else base

    def identity(self, replica: str) -> str:
        """What this replica's writes carry (Lease holder, fieldManager, the applied-by
        annotation, Events' reportingInstance): the shard first, so a truncated
        fieldManager still names it; unsharded keeps ``replica``."""
        return f"shard-{self.index}/{replica}" if self.sharded else replica


def identity_shard(identity: str) -> int | None:
    """The shard a Shard.identity names; None for an unsharded replica's."""
    head, sep, _ = identity.partition("/")
    number = head.removeprefix("shard-")
    if not sep or number == head or _WHOLE_NUMBER.fullmatch(number) is None:
        return None
    return int(number)


# ---- types we have no template for ------------------------------------------------------


def _items(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def unknown_types(
    app: object, component_types: Collection[str], trait_types: Collection[str]
) -> list[tuple[str, str]]:
    """(field path, type) of every component or trait type of ``app`` (a raw object)
    that no template knows. A missing or non-string type is not unknown: admission
    reports it as it is."""
    spec = app.get("spec") if isinstance(app, Mapping) else None
    components = spec.get("components") if isinstance(spec, Mapping) else None
    out: list[tuple[str, str]] = []
    for i, component in enumerate(_items(components)):
        ctype = component.get("type")
        if isinstance(ctype, str) and ctype and ctype not in component_types:
            out.append((f"spec.components[{i}].type", ctype))
        for j, trait in enumerate(_items(component.get("traits"))):
            ttype = trait.get("type")
            if isinstance(ttype, str) and ttype and ttype not in trait_types:
                out.append((f"spec.components[{i}].traits[{j}].type", ttype))
    return out


def pass_through_reason(
    app: object,
    component_types: Collection[str],
    trait_types: Collection[str],
    mode: UnknownTypes,
) -> str | None:
    """Why ``app`` is admitted untouched and left to another controller (the admission
    warning), or None when it is ours to judge: ``mode`` is deny, or every type is known."""
    if mode != UNKNOWN_IGNORE:
        return None
    unknown = unknown_types(app, component_types, trait_types)
    if not unknown:
        return None
    listed = ", ".join(f"{path}: {kind!r}" for path, kind in unknown)
    return (f"oam-rollout has no template for {listed}: admitted untouched and left to the "
            "controller that serves these types (--unknown-types ignore)")


# ---- both --------------------------------------------------------------------------------


def _labels(app: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    meta = app.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    labels = meta.get("labels")
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""),
            labels if isinstance(labels, Mapping) else {})


@dataclass(frozen=True)
class Scope:
    """The Applications one controller acts on: its shard's in the namespaces it selects,
    minus those passed through."""

    shard: Shard = Shard()
    unknown: UnknownTypes = UNKNOWN_DENY
    component_types: frozenset[str] = field(default_factory=frozenset)
    trait_types: frozenset[str] = field(default_factory=frozenset)
    # --namespace-selector (None: every namespace).
    namespace_selector: LabelSelector | None = None
    # The labels of each namespace by name, as last seen: the controller's namespace watch
    # keeps this view current (it changes; the Scope's decisions stay pure of it).
    namespace_labels: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict, compare=False, hash=False)

    @property
    def everything(self) -> bool:
        """Every Application is ours (one shard, unknown types denied, every namespace):
        nothing to filter."""
        return (not self.shard.sharded and self.unknown == UNKNOWN_DENY
                and self.namespace_selector is None)

    def selects_namespace(self, namespace: str) -> bool:
        """``namespace`` is one this controller acts in (always, without a selector)."""
        if self.namespace_selector is None:
            return True
        labels = self.namespace_labels.get(namespace)
        return labels is not None and self.namespace_selector.matches(labels)

    def passes_through(self, app: Mapping[str, Any]) -> bool:
        return pass_through_reason(app, self.component_types, self.trait_types,
                                   self.unknown) is not None

    def ours(self, app: Mapping[str, Any]) -> bool:
        """This controller acts on ``app`` (a raw Application as read or watched)."""
        if self.everything:
            return True
        namespace, name, labels = _labels(app)
        return (self.selects_namespace(namespace) and self.shard.owns(namespace, name, labels)
                and not self.passes_through(app))


EVERYTHING = Scope()
