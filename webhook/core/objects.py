"""The one reader of API object shapes: plain dicts from the API (or from YAML) in, values out.

Holds the readers every part shares: owner references (which Application controls an
object, which Applications it belongs to), a ControllerRevision as a RevisionRecord, a
Rollout as a ComponentObservation, and the ObservedState built from listed objects or
from documents. Readers never raise on odd shapes: a field of the wrong type reads as
missing, and an object that cannot be one of ours reads as None. It must not do I/O and
must not take decisions (what a revision or a Rollout means for a change is validation's
business, or the controller's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from webhook.core.labels import (
    APP_KIND,
    LABEL_APP_NAME,
    LABEL_CONTROLLER_COMPONENT,
    LABEL_REVISION_HASH,
    ROLLOUT_KIND,
    ROLLOUT_SUCCEED,
)
from webhook.core.shapes import is_int, plain
from webhook.core.state import ComponentObservation, ObservedState, OwnerRef, RevisionRecord

# The Rollout condition the controller sets True when a run finishes (and keeps True
# through a later failed verification of a new spec, until a new run starts).
CONDITION_ROLLOUT_COMPLETE = "RolloutComplete"

REVISION_KIND = "ControllerRevision"


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    # API objects are plain dicts: check that first, the ABC check is many times slower.
    return type(value) is dict or isinstance(value, Mapping)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if _is_mapping(value) else {}


def _sequence(value: object) -> list[Any] | tuple[Any, ...]:
    return value if type(value) is list or isinstance(value, tuple) else []


def _text(value: object) -> str | None:
    """A non-empty string, else None (an empty string means "not set" in status)."""
    return value if isinstance(value, str) and value else None


def _integer(value: object) -> int | None:
    return int(value) if is_int(value) else None


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


def name_of(obj: Mapping[str, Any]) -> str | None:
    """metadata.name, None when it is missing or not a string."""
    name = metadata(obj).get("name")
    return name if isinstance(name, str) else None


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(metadata(obj).get("labels"))


# ---------------------------------------------------------------------------
# owners


def controller_reference(
    obj: Mapping[str, Any], kind: str | None = None
) -> Mapping[str, Any] | None:
    """The ownerReference with ``controller: true`` (of ``kind``, when given), if any.

    An object has at most one controller; other owner references only keep it alive
    (garbage collection), they do not say who manages it.
    """
    for ref in _sequence(metadata(obj).get("ownerReferences")):
        if _is_mapping(ref) and ref.get("controller") and kind in (None, ref.get("kind")):
            return ref
    return None


def controller_of(obj: Mapping[str, Any]) -> OwnerRef | None:
    """Who manages ``obj``: its controller ownerReference, as kind and name."""
    ref = controller_reference(obj)
    if ref is None:
        return None
    return OwnerRef(str(ref.get("kind") or ""), str(ref.get("name") or ""))


def owner_application(obj: Mapping[str, Any]) -> str | None:
    """The Application that controls ``obj``: its controller ownerReference, else the
    app.oam.dev/name label (objects a template labelled but did not own)."""
    ref = controller_reference(obj, APP_KIND)
    if ref is not None:
        name = ref.get("name")
        return str(name) if name else None
    label = labels_of(obj).get(LABEL_APP_NAME)
    return str(label) if label else None


def applications_of(obj: Mapping[str, Any]) -> frozenset[str]:
    """Every Application ``obj`` belongs to: the app.oam.dev/name label and every
    Application ownerReference (controller or not).

    Wider than owner_application on purpose: admission must see a Rollout that names the
    Application in any way, or a batch-sum check would miss it.
    """
    apps: set[str] = set()
    label = labels_of(obj).get(LABEL_APP_NAME)
    if isinstance(label, str) and label:
        apps.add(label)
    for ref in _sequence(metadata(obj).get("ownerReferences")):
        if isinstance(ref, Mapping) and ref.get("kind") == APP_KIND and ref.get("name"):
            apps.add(str(ref["name"]))
    return frozenset(apps)


# ---------------------------------------------------------------------------
# ControllerRevision and Rollout


def revision_record(obj: Mapping[str, Any]) -> RevisionRecord | None:
    """A RevisionRecord from a ControllerRevision; None if it is not a component revision.

    A revision number that is not an integer drops the object: reading it as 0 could
    collide with another revision and let a wrong one be picked as the latest or reused.
    ``data`` is copied, so a record never aliases the object it was read from.
    """
    # Called for every revision of a namespace on an uncached admission read: one pass.
    meta = metadata(obj)
    labels = _mapping(meta.get("labels"))
    name = meta.get("name")
    component = labels.get(LABEL_CONTROLLER_COMPONENT)
    number = obj.get("revision")
    if not isinstance(name, str) or not isinstance(component, str) or not is_int(number):
        return None
    data = obj.get("data")
    owner = controller_reference(obj)
    return RevisionRecord(
        name=name,
        component=component,
        number=number,
        spec_hash=str(labels.get(LABEL_REVISION_HASH, "")),
        data=plain(data) if _is_mapping(data) else {},
        owner=str(owner.get("name", "")) if owner is not None else "",
        owner_kind=str(owner.get("kind", "")) if owner is not None else "",
    )


def component_observation(rollout: Mapping[str, Any]) -> ComponentObservation:
    """What a Rollout says about its component; missing or mistyped fields stay None.

    The size counts only once the rollout has succeeded: a run in flight has not
    settled on any size yet.
    """
    spec = _mapping(rollout.get("spec"))
    status = _mapping(rollout.get("status"))
    rolling_state = _text(status.get("rollingState"))
    settled = rolling_state == ROLLOUT_SUCCEED
    size = _integer(status.get("rolloutTargetSize"))
    complete = any(
        _is_mapping(c) and c.get("type") == CONDITION_ROLLOUT_COMPLETE and c.get("status") == "True"
        for c in _sequence(status.get("conditions"))
    )
    return ComponentObservation(
        current_revision=_text(status.get("lastTargetRevision")),
        current_size=size if settled else None,
        current_batch=_integer(status.get("currentBatch")),
        rolling_state=rolling_state,
        batch_rolling_state=_text(status.get("batchRollingState")),
        rollout_target=_text(spec.get("targetRevisionName")),
        source_revision=_text(status.get("lastSourceRevision")),
        run_size=size,
        original_size=_integer(status.get("rolloutOriginalSize")),
        complete=complete,
    )


# ---------------------------------------------------------------------------
# ObservedState


def _records(objs: Iterable[object]) -> list[RevisionRecord]:
    out: list[RevisionRecord] = []
    for obj in objs:
        record = revision_record(obj) if isinstance(obj, Mapping) else None
        if record is not None:
            out.append(record)
    return out


def observed_state_from(
    namespace: str,
    app_name: str,
    revisions: Iterable[Mapping[str, Any]],
    rollouts: Iterable[Mapping[str, Any]],
) -> ObservedState:
    """Reduce listed ControllerRevisions and Rollouts to the ObservedState of one Application.

    Every labelled revision of the namespace is kept (an externalRevision may collide with
    another Application's); only the Rollouts that belong to ``app_name`` are kept, and
    the controller of every Rollout that has one (whoever it is).
    """
    records = tuple(sorted(_records(revisions), key=lambda r: (r.component, r.number, r.name)))
    listed = list(rollouts)
    components = {
        name: component_observation(ro)
        for ro in listed
        if (name := name_of(ro)) is not None and app_name in applications_of(ro)
    }
    return ObservedState(namespace=namespace, revisions=records, components=components,
                         rollout_owners=rollout_owners(listed))


def rollout_owners(rollouts: Iterable[Mapping[str, Any]]) -> dict[str, OwnerRef]:
    """{Rollout name: its controller} for every Rollout that has one."""
    out: dict[str, OwnerRef] = {}
    for ro in rollouts:
        name, owner = name_of(ro), controller_of(ro)
        if name is not None and owner is not None:
            out[name] = owner
    return out


def observed_state_from_documents(docs: list[object], namespace: str = "default") -> ObservedState:
    """ObservedState from ControllerRevision and Rollout documents; other kinds are ignored.

    This is how `oam-rollout render/validate --revisions FILE` learn what is live
    without a cluster (FILE as printed by `kubectl get controllerrevision,rollout -o yaml`).
    Every Rollout counts, whichever Application it belongs to: the file is the user's
    selection. Revisions keep the file's order.
    """
    objs = [doc for doc in docs if isinstance(doc, Mapping)]
    revisions = _records(doc for doc in objs if doc.get("kind") == REVISION_KIND)
    components: dict[str, ComponentObservation] = {}
    for doc in objs:
        name = name_of(doc)
        if doc.get("kind") == ROLLOUT_KIND and name is not None:
            components[name] = component_observation(doc)
    owners = rollout_owners(doc for doc in objs if doc.get("kind") == ROLLOUT_KIND)
    return ObservedState(namespace=namespace, revisions=tuple(revisions), components=components,
                         rollout_owners=owners)
