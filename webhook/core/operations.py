"""The operator verbs (pause, resume, promote, undo) as JSON patches of an Application.

Holds ``verb_patch``: from the Application as read (a plain dict), a verb, an optional
component and, for undo, the component revisions that exist, the RFC 6902 operations that
make the change on the rollout trait's properties, and one line per component saying
what changes. The operations carry ``test`` guards on what the decision read (the
component's name, the trait's type, the value replaced), so a patch sent after someone
else changed the Application fails instead of acting on stale facts. Being a patch of
the Application, the change passes admission like any ``kubectl apply``. ``VerbError``
says, in one line, what cannot be done. It must not do I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.core.errors import OamRolloutError
from webhook.core.labels import ANNOTATION_REVISIONS, ROLLOUT_TRAIT
from webhook.core.state import RevisionRecord

PAUSE = "pause"
RESUME = "resume"
PROMOTE = "promote"
UNDO = "undo"
VERBS = (PAUSE, RESUME, PROMOTE, UNDO)


class VerbError(OamRolloutError):
    """The verb cannot act on this Application (no such component, nothing to go back to)."""


@dataclass(frozen=True)
class ComponentChange:
    """What a verb does to one component: ``summary`` for people, no operations when the
    component is already where the verb would put it."""

    component: str
    summary: str
    operations: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class VerbPatch:
    """The JSON patch for the whole Application (empty when nothing changes)."""

    changes: tuple[ComponentChange, ...] = field(default_factory=tuple)

    @property
    def operations(self) -> list[dict[str, Any]]:
        return [op for change in self.changes for op in change.operations]


@dataclass(frozen=True)
class _Target:
    """A component with a rollout trait, where its properties live in the Application."""

    name: str
    index: int
    trait_index: int
    properties: Mapping[str, Any]

    @property
    def path(self) -> str:
        return f"/spec/components/{self.index}/traits/{self.trait_index}/properties"

    def guards(self) -> tuple[dict[str, Any], ...]:
        return (
            {"op": "test", "path": f"/spec/components/{self.index}/name", "value": self.name},
            {"op": "test", "path": f"/spec/components/{self.index}/traits/{self.trait_index}"
                                   "/type", "value": ROLLOUT_TRAIT},
        )


def verb_patch(
    verb: str,
    app: Mapping[str, Any],
    component: str | None = None,
    revisions: Sequence[RevisionRecord] = (),
    *,
    full: bool = False,
    to_revision: str | None = None,
) -> VerbPatch:
    """The patch ``verb`` makes to ``app``: on ``component``, else on every component with a
    rollout trait. ``full`` (promote) releases every batch at once; ``to_revision`` (undo)
    names the revision to go back to instead of the one before the current."""
    if verb not in VERBS:
        raise VerbError(f"unknown verb {verb!r}: one of {', '.join(VERBS)}")
    targets = _targets(app, component)

    def decide(t: _Target) -> ComponentChange:
        if verb == PAUSE:
            return _pause(t)
        if verb == RESUME:
            return _resume(t)
        if verb == PROMOTE:
            return _promote(t, full)
        return _undo(t, app, revisions, to_revision)

    return VerbPatch(tuple(decide(t) for t in targets))


def _targets(app: Mapping[str, Any], component: str | None) -> list[_Target]:
    spec = app.get("spec")
    raw = spec.get("components") if isinstance(spec, Mapping) else None
    components = raw if isinstance(raw, list) else []
    found: list[_Target] = []
    names: list[str] = []
    for i, comp in enumerate(components):
        if not isinstance(comp, Mapping) or not isinstance(comp.get("name"), str):
            continue
        names.append(comp["name"])
        if component is not None and comp["name"] != component:
            continue
        traits = comp.get("traits")
        for j, trait in enumerate(traits if isinstance(traits, list) else []):
            if isinstance(trait, Mapping) and trait.get("type") == ROLLOUT_TRAIT:
                props = trait.get("properties")
                found.append(_Target(comp["name"], i, j, props if isinstance(props, Mapping)
                                     else {}))
                break
        else:
            if component is not None:
                raise VerbError(f"component {component!r} has no rollout trait")
    if component is not None and component not in names:
        known = ", ".join(repr(n) for n in names) or "none"
        raise VerbError(f"no component {component!r} (components: {known})")
    if not found:
        raise VerbError("no component has a rollout trait")
    return found


def _pause(t: _Target) -> ComponentChange:
    if t.properties.get("paused") is True:
        return ComponentChange(t.name, "already paused")
    ops = ({"op": "add", "path": f"{t.path}/paused", "value": True},)
    return ComponentChange(t.name, "paused: the batch in flight finishes, then the rollout "
                           "holds", (*t.guards(), *ops))


def _resume(t: _Target) -> ComponentChange:
    if t.properties.get("paused") is not True:
        return ComponentChange(t.name, "not paused")
    ops = (
        {"op": "test", "path": f"{t.path}/paused", "value": True},
        {"op": "remove", "path": f"{t.path}/paused"},
    )
    return ComponentChange(t.name, "resumed", (*t.guards(), *ops))


def batch_count(properties: Mapping[str, Any]) -> int:
    """Batches the plan has: one per rolloutBatches entry, one when it lists none."""
    batches = properties.get("rolloutBatches")
    return len(batches) if isinstance(batches, list) and batches else 1


def _promote(t: _Target, full: bool) -> ComponentChange:
    partition = t.properties.get("batchPartition")
    if partition is None:
        return ComponentChange(t.name, "not held by batchPartition: nothing to promote")
    if isinstance(partition, bool) or not isinstance(partition, int):
        raise VerbError(f"component {t.name!r}: batchPartition {partition!r} is not a whole "
                        "number")
    last = batch_count(t.properties) - 1
    guard = {"op": "test", "path": f"{t.path}/batchPartition", "value": partition}
    # A partition on the last batch holds nothing back: past the second-to-last, remove it.
    if full or partition + 1 >= last:
        remove = {"op": "remove", "path": f"{t.path}/batchPartition"}
        return ComponentChange(t.name, f"batchPartition {partition} removed: every batch rolls",
                               (*t.guards(), guard, remove))
    replace = {"op": "replace", "path": f"{t.path}/batchPartition", "value": partition + 1}
    return ComponentChange(t.name, f"batchPartition {partition} -> {partition + 1}",
                           (*t.guards(), guard, replace))


def current_revision(app: Mapping[str, Any], component: str,
                     properties: Mapping[str, Any]) -> str | None:
    """The revision the component rolls to: its targetRevision, else the revision the
    webhook recorded for its spec (annotation rollout.oam.dev/component-revisions)."""
    pinned = properties.get("targetRevision")
    if isinstance(pinned, str) and pinned:
        return pinned
    meta = app.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    recorded = annotations.get(ANNOTATION_REVISIONS) if isinstance(annotations, Mapping) else None
    try:
        named = json.loads(recorded) if isinstance(recorded, str) else {}
    except ValueError:
        named = {}
    value = named.get(component) if isinstance(named, dict) else None
    return value if isinstance(value, str) and value else None


def _undo(t: _Target, app: Mapping[str, Any], revisions: Sequence[RevisionRecord],
          to_revision: str | None) -> ComponentChange:
    meta = app.get("metadata")
    app_name = meta.get("name") if isinstance(meta, Mapping) else None
    mine = sorted((r for r in revisions if r.component == t.name and r.owner in ("", app_name)),
                  key=lambda r: r.number)
    current = current_revision(app, t.name, t.properties)
    if current is None and mine:
        current = mine[-1].name  # not recorded (no webhook): the newest revision runs
    if to_revision is not None:
        if to_revision not in {r.name for r in mine}:
            known = ", ".join(r.name for r in mine) or "none"
            raise VerbError(f"component {t.name!r} has no revision {to_revision!r} "
                            f"(revisions: {known})")
        target = to_revision
    else:
        record = next((r for r in mine if r.name == current), None)
        if record is None:
            raise VerbError(f"component {t.name!r}: its current revision {current!r} is not "
                            "among its ControllerRevisions")
        before = [r for r in mine if r.number < record.number]
        if not before:
            raise VerbError(f"component {t.name!r}: no revision before {current}")
        target = before[-1].name
    if target == current:
        return ComponentChange(t.name, f"already at {target}")
    ops: list[dict[str, Any]] = list(t.guards())
    pinned = t.properties.get("targetRevision")
    if pinned is not None:
        ops.append({"op": "test", "path": f"{t.path}/targetRevision", "value": pinned})
    ops.append({"op": "add", "path": f"{t.path}/targetRevision", "value": target})
    summary = f"targetRevision {current} -> {target}"
    if "batchPartition" in t.properties:
        # A rollback is for going back, all of it: a partition left from the upgrade would
        # hold most of the pods on the revision being left.
        ops.append({"op": "remove", "path": f"{t.path}/batchPartition"})
        summary += f" (batchPartition {t.properties['batchPartition']} removed)"
    return ComponentChange(t.name, summary, tuple(ops))
