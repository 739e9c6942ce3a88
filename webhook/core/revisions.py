"""Component revisions: the content hash of a component spec and revision naming.

Holds pure functions that decide which ControllerRevision a component change
maps to: ``externalRevision`` if set, else ``<component>-v<N>``, reusing an
existing revision whose spec hash is the same; and whether a kept revision can be
rolled back to (``cross_type_detail``). It must not do I/O and must not render objects
(see webhook.render.renderer).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.core import errors as fe
from webhook.core.errors import FieldError
from webhook.core.model import COMPONENTS_PATH, Application, Component
from webhook.core.paths import FieldPath
from webhook.core.shapes import plain
from webhook.core.state import ObservedState, RevisionRecord

# Built once: json.dumps with options builds a new encoder on every call.
_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)


def spec_hash(spec: Mapping[str, Any]) -> str:
    """16 hex chars of sha256 over canonical JSON of the spec's type and properties, and
    its pod traits (labels, annotations) when it has any.

    Name, externalRevision and the other traits are left out on purpose: renaming a
    revision or changing only the rollout plan is not a new version of the code. A spec
    without pod traits hashes as it always did, so no existing revision changes.
    """
    content = {
        "type": plain(spec.get("type", "")),
        "properties": plain(spec.get("properties") or {}),
    }
    if spec.get("traits"):
        content["traits"] = plain(spec["traits"])
    canonical = _CANONICAL_JSON.encode(content)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class ResolvedRevision:
    """The revision one component's current spec maps to."""

    component: str
    name: str
    number: int
    spec_hash: str
    # True when the ControllerRevision does not exist yet and must be created.
    is_new: bool


def resolve_revision(
    component: Component,
    existing: Sequence[RevisionRecord],
    path: FieldPath,
    app_name: str | None = None,
) -> tuple[ResolvedRevision | None, list[FieldError]]:
    """Name the revision for ``component`` given every existing revision in the namespace.

    ``path`` is the component's path; errors point at its ``externalRevision``. With
    ``app_name``, revisions another Application owns are never reused, only avoided.
    """
    # Only type, properties and pod traits are hashed: no need for spec()'s full copy.
    digest = spec_hash(component.revision_content())

    def ours(r: RevisionRecord) -> bool:
        return app_name is None or r.owner in ("", app_name)

    mine = [r for r in existing if r.component == component.name and ours(r)]
    taken = {r.name for r in existing}
    next_number = 1 + max((r.number for r in mine), default=0)

    if component.external_revision is not None:
        name = component.external_revision
        record = next((r for r in existing if r.name == name), None)
        if record is None:
            return ResolvedRevision(component.name, name, next_number, digest, True), []
        epath = path.child("externalRevision")
        if not ours(record):
            return None, [
                fe.invalid(epath, name, f"revision already belongs to Application {record.owner!r}")
            ]
        if record.component != component.name:
            return None, [
                fe.invalid(
                    epath, name, f"revision already belongs to component {record.component!r}"
                )
            ]
        if record.spec_hash != digest:
            return None, [
                fe.invalid(
                    epath,
                    name,
                    "revision already exists with a different spec; "
                    "set a new externalRevision to publish a change",
                )
            ]
        return ResolvedRevision(component.name, name, record.number, digest, False), []

    same = [r for r in mine if r.spec_hash == digest]
    if same:
        # Several revisions can share a spec (e.g. external names); the newest wins.
        record = max(same, key=lambda r: r.number)
        return ResolvedRevision(component.name, record.name, record.number, digest, False), []
    number = next_number
    # Another component may own a name like ours (`a` v12 versus `a-v1` v2); skip past it.
    while f"{component.name}-v{number}" in taken:
        number += 1
    return ResolvedRevision(component.name, f"{component.name}-v{number}", number, digest, True), []


def resolve_revisions(
    app: Application, observed: ObservedState
) -> tuple[dict[str, ResolvedRevision], list[FieldError]]:
    """Resolve every component of ``app``; errors carry ``spec.components[i]`` paths."""
    resolved: dict[str, ResolvedRevision] = {}
    errs: list[FieldError] = []
    for i, component in enumerate(app.components):
        rev, rev_errs = resolve_revision(
            component, observed.revisions, COMPONENTS_PATH.index(i), app.name or None
        )
        errs.extend(rev_errs)
        if rev is not None:
            resolved[component.name] = rev
    # Two components of one change cannot both create the same revision name.
    owners: dict[str, str] = {}
    for i, component in enumerate(app.components):
        rev = resolved.get(component.name)
        if rev is None:
            continue
        if rev.name in owners and owners[rev.name] != component.name:
            errs.append(
                fe.invalid(
                    COMPONENTS_PATH.index(i).child("externalRevision"),
                    rev.name,
                    f"revision is also used by component {owners[rev.name]!r}",
                )
            )
        owners.setdefault(rev.name, component.name)
    return resolved, errs


def target_revision_name(component: Component, resolved: ResolvedRevision) -> str:
    """The revision the rollout aims at: the trait's targetRevision, else the latest."""
    plan = component.rollout()
    if plan is not None and plan.target_revision:
        return plan.target_revision
    return resolved.name


def cross_type_detail(component: Component, record: RevisionRecord) -> str | None:
    """Why ``component`` cannot be rolled to its kept revision ``record``: the revision
    holds another component type (kept from before a type change), and a run goes from
    one workload to another of the same kind. None when it can. Admission refuses such
    a targetRevision with this text; the controller fails a spec that got past it."""
    kept = record.data.get("type")
    if not isinstance(kept, str) or not kept or kept == component.type:
        return None
    return (f"revision {record.name} is of type {kept} and component {component.name!r} is of"
            f" type {component.type}: a rollout does not cross a type change; name a revision"
            f" of type {component.type} or remove targetRevision")
