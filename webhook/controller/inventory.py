"""Which objects an Application's spec implies, and which of its objects go, and when.

Holds the pure half of the object lifecycle the Application pass carries out:

- LiveObject: one listed object as the lifecycle rules see it (kind, name, UID, component,
  revision, controller, the managed-by label, readiness);
- ownership: ``is_ours`` (the controller ownerReference names this Application by UID),
  ``collectable`` (ours AND labelled managed-by: the only objects ever deleted; the
  app.oam.dev labels alone never select anything, vela-core sets them too),
  ``foreign_owner`` (who else controls an object about to be written; an orphan is
  adopted) and ``taken``
  (components whose Rollout or ControllerRevisions another owner controls);
- ComponentPlan: what one component of the spec implies (its Rollout or not, the workload
  kind, the revision it runs, the objects that revision renders, the revisions in use);
- ``garbage``: the owned objects the spec no longer implies, stale Rollouts first, each
  with the workload that must be Ready before it goes;
- ``surplus_revisions``: ControllerRevisions past the history limit, never one in use;
- ``plain_replicas``: the size a component without a rollout trait is applied at;
- ``permanent``: the API failures no retry can fix.

It must not do I/O, read clocks or render: the caller passes rendered objects in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.core.labels import (
    APP_KIND,
    CLONESET_KIND,
    LABEL_COMPONENT,
    LABEL_CONTROLLER_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_REVISION,
    MANAGED_BY,
    ROLLOUT_KIND,
    ROLLOUT_SUCCEED,
)
from webhook.core.objects import controller_reference, labels_of, metadata
from webhook.core.shapes import is_int

# On workloads the Rollout drives: their changes concern the Rollout, not the Application
# (whose health then follows the Rollout's status), which keeps app reconciles rare. A
# plain apply drops it (the same field manager stops rendering it).
ANNOTATION_ROLLED_BY = "rollout.oam.dev/rolled-by"

DEPLOYMENT_KIND = "Deployment"
REVISION_KIND = "ControllerRevision"
WORKLOAD_KINDS = frozenset({DEPLOYMENT_KIND, CLONESET_KIND})
# The order stale objects go in: the Rollout before what it rolls (so nothing fights over
# the workloads), the workloads' companions, the workloads, their revisions last.
_ORDER = {ROLLOUT_KIND: 0, DEPLOYMENT_KIND: 2, CLONESET_KIND: 2, REVISION_KIND: 3}
# HTTP statuses of a write no retry fixes: the request itself is wrong (400, 422), not
# allowed (403), aimed at a kind or namespace that does not exist (404), or keeps meeting
# a conflicting object (409, once the caller's retries are spent).
PERMANENT_STATUSES = frozenset({400, 403, 404, 409, 422})
# A write meeting 409 Conflict is made again this many times before it counts as refused.
CONFLICT_RETRIES = 3


def _int(value: object, default: int = 0) -> int:
    return value if is_int(value) else default


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class LiveObject:
    """One live object as the lifecycle rules read it."""

    kind: str
    name: str
    uid: str = ""
    component: str = ""  # app.oam.dev/component (controller.oam.dev/component: a revision)
    revision: str = ""  # app.oam.dev/revision of a workload
    number: int = 0  # a ControllerRevision's revision number
    owner_kind: str = ""  # its controller ownerReference ("" when it has none)
    owner_name: str = ""
    owner_uid: str = ""
    managed: bool = False  # labelled app.kubernetes.io/managed-by: oam-rollout
    deleting: bool = False
    rolled: bool = False  # a workload a Rollout created (ANNOTATION_ROLLED_BY)
    replicas: int = 0  # spec.replicas of a workload (1 when unset, as the API defaults it)
    ready: bool = False  # a workload whose every replica is updated and Ready
    rollout_size: int | None = None  # a Rollout's status.rolloutTargetSize


def workload_ready(obj: Mapping[str, Any]) -> bool:
    """Every replica of a Deployment or CloneSet is on its template and Ready, as its
    controller last observed it."""
    meta, spec, status = metadata(obj), _map(obj.get("spec")), _map(obj.get("status"))
    replicas = _int(spec.get("replicas"), 1)
    settled = _int(status.get("observedGeneration")) >= _int(meta.get("generation"), 1)
    return (settled and _int(status.get("readyReplicas")) >= replicas
            and _int(status.get("updatedReplicas")) >= replicas)


def live_object(kind: str, obj: Mapping[str, Any]) -> LiveObject:
    meta = metadata(obj)
    labels = labels_of(obj)
    ref = controller_reference(obj) or {}
    component = labels.get(LABEL_CONTROLLER_COMPONENT if kind == REVISION_KIND
                           else LABEL_COMPONENT) or labels.get(LABEL_COMPONENT)
    size = _map(obj.get("status")).get("rolloutTargetSize")
    return LiveObject(
        kind=kind,
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        component=str(component or ""),
        revision=str(labels.get(LABEL_REVISION) or ""),
        number=_int(obj.get("revision")),
        owner_kind=str(ref.get("kind") or ""),
        owner_name=str(ref.get("name") or ""),
        owner_uid=str(ref.get("uid") or ""),
        managed=labels.get(LABEL_MANAGED_BY) == MANAGED_BY,
        deleting=bool(meta.get("deletionTimestamp")),
        rolled=ANNOTATION_ROLLED_BY in _map(meta.get("annotations")),
        replicas=_int(_map(obj.get("spec")).get("replicas"), 1),
        ready=kind in WORKLOAD_KINDS and workload_ready(obj),
        rollout_size=size if is_int(size) and kind == ROLLOUT_KIND else None,
    )


# ---- ownership ---------------------------------------------------------------------------


def is_ours(obj: LiveObject, app_uid: str) -> bool:
    """Its controller ownerReference is this Application, by UID (not by name: an
    Application deleted and created again under the same name is another owner)."""
    return bool(app_uid) and obj.owner_kind == APP_KIND and obj.owner_uid == app_uid


def collectable(obj: LiveObject, app_uid: str) -> bool:
    """The Application pass may delete it: ours, labelled managed-by, not already going."""
    return is_ours(obj, app_uid) and obj.managed and not obj.deleting


def foreign_owner(obj: Mapping[str, Any], app_uid: str) -> str | None:
    """Who controls ``obj`` if not this Application ("Application b", "ReplicaSet x");
    None when it is this Application's to write: its own, or controlled by nothing (an
    orphan is adopted, as Kubernetes controllers adopt what matches them; the apply
    makes this Application its controller)."""
    live = live_object("", obj)
    if is_ours(live, app_uid) or not live.owner_kind:
        return None
    return f"{live.owner_kind} {live.owner_name}"


def conflict_message(kind: str, name: str, owner: str) -> str:
    return f"{kind} {name} is controlled by {owner}: not overwritten"


def taken(components: Iterable[str], rollouts: Mapping[str, Mapping[str, Any] | None],
          revisions: Iterable[Mapping[str, Any]], app_uid: str) -> dict[str, str]:
    """{component: why} for the components whose name another owner holds: the Rollout
    named after it, or any ControllerRevision labelled with it, is controlled by someone
    else. Nothing of such a component is written (admission denies the name; this holds
    when admission was bypassed)."""
    out: dict[str, str] = {}
    listed = list(revisions)
    for name in components:
        rollout = rollouts.get(name)
        owner = foreign_owner(rollout, app_uid) if rollout is not None else None
        if owner is not None:
            out[name] = conflict_message(ROLLOUT_KIND, name, owner)
            continue
        for rev in listed:
            if labels_of(rev).get(LABEL_CONTROLLER_COMPONENT) != name:
                continue
            owner = foreign_owner(rev, app_uid)
            if owner is not None:
                rev_name = str(metadata(rev).get("name") or "")
                out[name] = conflict_message(REVISION_KIND, rev_name, owner)
                break
    return out


# ---- what the spec implies ---------------------------------------------------------------


@dataclass(frozen=True)
class ComponentPlan:
    """What one component of the spec implies."""

    name: str
    rollout: bool  # it has the rollout trait: a Rollout named after it rolls its workloads
    kind: str = DEPLOYMENT_KIND  # the kind of its workload
    target: str = ""  # the revision it runs once settled
    workload: str = ""  # the name of target's workload
    # (kind, name) of every object target's workload renders: the workload, a Service...
    objects: frozenset[tuple[str, str]] = frozenset()
    # Revisions it still needs: the spec's current one, the target, a targetRevision.
    in_use: frozenset[str] = frozenset()
    # Its objects cannot be told (another owner holds its name, or its target cannot be
    # rendered): nothing of it is deleted.
    held: bool = False


def component_plan(name: str, rollout: bool, target: str, rendered: Sequence[Mapping[str, Any]],
                   in_use: Collection[str]) -> ComponentPlan:
    """The plan of a component from the objects its target revision renders ([0] is the
    workload)."""
    keys = frozenset((str(d.get("kind")), str(metadata(d).get("name"))) for d in rendered)
    head = rendered[0] if rendered else {}
    return ComponentPlan(
        name=name, rollout=rollout, kind=str(head.get("kind") or DEPLOYMENT_KIND),
        target=target, workload=str(metadata(head).get("name") or ""), objects=keys,
        in_use=frozenset(in_use) | {target})


def held_plan(name: str) -> ComponentPlan:
    return ComponentPlan(name=name, rollout=False, held=True)


# ---- garbage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Replacement:
    """The workload that must be Ready before a stale one goes; with ``rollout``, that
    Rollout must also have finished its run at ``target``."""

    kind: str
    name: str
    rollout: str = ""
    target: str = ""


@dataclass(frozen=True)
class Deletion:
    obj: LiveObject
    why: str
    replacement: Replacement | None = field(default=None)


def garbage(app_uid: str, plans: Mapping[str, ComponentPlan],
            live: Iterable[LiveObject]) -> list[Deletion]:
    """The collectable objects the spec no longer implies, in the order they go.

    A component gone from the spec takes everything of it at once. While a component
    stays, a stale Rollout (the trait removed) and objects its revision no longer renders
    (a Service whose expose was removed) go at once; a workload that is not the
    component's any more (an older plain revision, the other kind after a type change)
    goes only once its replacement is Ready. ControllerRevisions of a component that
    stays are surplus_revisions' business. Deployments of a component with the rollout
    trait are its Rollout's: it shrinks and deletes them itself.
    """
    out: list[Deletion] = []
    for obj in live:
        if not collectable(obj, app_uid) or not obj.component:
            continue
        plan = plans.get(obj.component)
        if plan is None:
            out.append(Deletion(obj, f"component {obj.component} is no longer in the spec"))
            continue
        if plan.held or obj.kind == REVISION_KIND:
            continue
        if obj.kind == ROLLOUT_KIND:
            if not plan.rollout and obj.name == plan.name:
                out.append(Deletion(obj, f"component {plan.name} has no rollout trait any more"))
            continue
        if (obj.kind, obj.name) in plan.objects:
            continue
        if obj.kind in WORKLOAD_KINDS:
            if plan.rollout and obj.kind == plan.kind == DEPLOYMENT_KIND:
                continue
            out.append(Deletion(
                obj, f"component {plan.name} now runs {plan.kind} {plan.workload}",
                Replacement(plan.kind, plan.workload, *((plan.name, plan.target)
                                                        if plan.rollout else ()))))
            continue
        out.append(Deletion(obj, f"revision {plan.target} of {plan.name} does not render it"))
    out.sort(key=lambda d: _ORDER.get(d.obj.kind, 1))
    return out


def rollout_settled(rollout: Mapping[str, Any] | None, target: str) -> bool:
    """The Rollout finished its run at ``target`` (and aims at nothing else)."""
    if rollout is None:
        return False
    status, spec = _map(rollout.get("status")), _map(rollout.get("spec"))
    return (status.get("rollingState") == ROLLOUT_SUCCEED
            and status.get("lastTargetRevision") == target
            and spec.get("targetRevisionName") == target)


# ---- revision history --------------------------------------------------------------------


def revisions_in_use(plan: ComponentPlan, rollout: Mapping[str, Any] | None,
                     workloads: Iterable[LiveObject]) -> frozenset[str]:
    """What a component's revisions are still needed for: the plan's, what its Rollout
    aims at and rolled from, and whatever a live workload of it runs."""
    names = set(plan.in_use)
    if rollout is not None:
        spec, status = _map(rollout.get("spec")), _map(rollout.get("status"))
        names.update(str(v) for v in (spec.get("targetRevisionName"),
                                      status.get("lastTargetRevision"),
                                      status.get("lastSourceRevision")) if v)
    names.update(w.revision for w in workloads if w.component == plan.name
                 and w.kind in WORKLOAD_KINDS and w.revision and not w.deleting)
    return frozenset(names)


def surplus_revisions(revisions: Iterable[LiveObject], in_use: Collection[str],
                      limit: int) -> list[LiveObject]:
    """One component's revisions past ``limit``, oldest first. Those in use are always
    kept and count towards the limit; the newest of the others fill what is left."""
    listed = list(revisions)
    used = sum(1 for r in listed if r.name in in_use)
    spare = sorted((r for r in listed if r.name not in in_use),
                   key=lambda r: (r.number, r.name), reverse=True)
    return sorted(spare[max(0, limit - used):], key=lambda r: (r.number, r.name))


# ---- sizes and failures ------------------------------------------------------------------


def plain_replicas(stale_rollout_size: int | None, target: LiveObject | None,
                   workloads: Sequence[LiveObject]) -> int | None:
    """The replicas a component without a rollout trait is applied at, when its spec
    does not set them: never below what runs now.

    The size its stale Rollout left (the trait just removed); else the target workload's
    own, once the plain path applied it; else everything the component's workloads run
    (a workload a Rollout rolled, or the other kind before a type change); None for a
    component with nothing live (the API's default).
    """
    if stale_rollout_size is not None:
        return stale_rollout_size
    if target is not None and not target.rolled:
        return target.replicas
    if workloads:
        return sum(w.replicas for w in workloads)
    return None


def permanent(status: int, *, naming_existing: bool = False) -> bool:
    """No retry fixes a write that failed with ``status``. A 404 on a write to an object
    read just before (``naming_existing``) only says it went meanwhile: the next
    decision sees that."""
    if status == 404 and naming_existing:
        return False
    return status in PERMANENT_STATUSES
