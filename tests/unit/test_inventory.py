"""The object lifecycle's pure rules: ownership, what a spec implies, what goes and when.

Decisions over plain objects, as the Application pass reads them: which objects are the
Application's (its UID as controller AND the managed-by label, never the app.oam.dev
labels alone), what each component implies, which owned objects the spec no longer
implies and which replacement must be Ready first, the revision history, the size a
component keeps when it loses its rollout trait, and which API failures are for good.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.apps import application, parsed
from webhook.controller.inventory import (
    ComponentPlan,
    Deletion,
    LiveObject,
    Replacement,
    collectable,
    component_plan,
    foreign_owner,
    garbage,
    held_plan,
    live_object,
    permanent,
    plain_replicas,
    revisions_in_use,
    rollout_settled,
    surplus_revisions,
    taken,
    workload_ready,
)
from webhook.core.revisions import ResolvedRevision
from webhook.render.renderer import Renderer

UID = "uid-a"


def owner(uid: str = UID, name: str = "a", kind: str = "Application") -> dict[str, Any]:
    return {"apiVersion": "core.oam.dev/v1beta1", "kind": kind, "name": name, "uid": uid,
            "controller": True}


def obj(name: str, *, component: str = "api", owned_by: str | None = UID,
        managed: bool = True, **more: Any) -> dict[str, Any]:
    labels = {"app.oam.dev/component": component, "app.oam.dev/name": "a",
              "controller.oam.dev/component": component}
    if managed:
        labels["app.kubernetes.io/managed-by"] = "oam-rollout"
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "labels": labels}
    if owned_by is not None:
        meta["ownerReferences"] = [owner(owned_by)]
    return {"metadata": meta, **more}


def live(kind: str, name: str, **kw: Any) -> LiveObject:
    defaults: dict[str, Any] = {"uid": f"uid-{name}", "component": "api", "owner_kind":
                                "Application", "owner_name": "a", "owner_uid": UID,
                                "managed": True}
    return LiveObject(kind, name, **{**defaults, **kw})


# ---- ownership ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (obj("api-v1"), True),
        (obj("api-v1", managed=False), False),  # vela-core's, or made before the label
        (obj("api-v1", owned_by="uid-b"), False),  # another Application
        (obj("api-v1", owned_by=None), False),  # the app.oam.dev labels alone never do
        ({**obj("api-v1"), "metadata": {**obj("api-v1")["metadata"],
                                        "deletionTimestamp": "2026-01-01T00:00:00Z"}}, False),
    ],
    ids=["ours", "not labelled managed-by", "another owner", "labels only", "going"],
)
def test_only_objects_the_application_controls_by_uid_and_labels_managed_by_are_collected(
    raw: dict[str, Any], expected: bool
) -> None:
    assert collectable(live_object("Deployment", raw), UID) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (obj("api"), None),
        (obj("api", owned_by="uid-b"), "Application a"),  # same name, another UID
        (obj("api", owned_by=None), None),  # an orphan is adopted
        ({"metadata": {"name": "api", "ownerReferences": [owner("rs", "api-x", "ReplicaSet")]}},
         "ReplicaSet api-x"),
    ],
    ids=["ours", "an Application of the same name created again", "orphan", "other kind"],
)
def test_an_object_is_ours_to_write_only_when_this_application_controls_it(
    raw: dict[str, Any], expected: str | None
) -> None:
    assert foreign_owner(raw, UID) == expected


def test_a_component_whose_rollout_or_revision_another_application_controls_is_taken() -> None:
    rollouts = {"api": obj("api", owned_by="uid-b"), "web": None, "db": obj("db")}
    revisions = [obj("web-v1", component="web", owned_by="uid-b"), obj("db-v1", component="db")]
    assert taken(["api", "web", "db"], rollouts, revisions, UID) == {
        "api": "Rollout api is controlled by Application a: not overwritten",
        "web": "ControllerRevision web-v1 is controlled by Application a: not overwritten",
    }


# ---- what a spec implies -----------------------------------------------------------------


def implied(**kw: Any) -> ComponentPlan:
    """The plan of the spec's component as the Application pass builds it, rendered."""
    app = parsed(application("a", component="api", uid=UID, namespace="ns", **kw))
    component = app.components[0]
    rev = ResolvedRevision("api", "api-v2", 2, "h", False)
    docs = Renderer().render_workload(app, component.spec(), rev.name, None)
    return component_plan("api", component.rollout_trait() is not None, rev.name, docs,
                          {rev.name})


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, (True, "Deployment", "api-v2", {("Deployment", "api-v2")})),
        ({"rollout": None, "type": "worker"}, (False, "Deployment", "api-v2",
                                               {("Deployment", "api-v2")})),
        ({"type": "cloneset"}, (True, "CloneSet", "api", {("CloneSet", "api")})),
        ({"properties": {"ports": [{"port": 80, "expose": True}]}},
         (True, "Deployment", "api-v2", {("Deployment", "api-v2"), ("Service", "api")})),
    ],
    ids=["rolled webservice", "plain worker", "cloneset", "exposed webservice"],
)
def test_what_a_component_implies_is_a_function_of_its_spec(
    kw: dict[str, Any], expected: tuple[bool, str, str, set[tuple[str, str]]]
) -> None:
    got = implied(**kw)
    assert (got.rollout, got.kind, got.workload, set(got.objects)) == expected


# ---- garbage -----------------------------------------------------------------------------

PLAIN = ComponentPlan("api", False, "Deployment", "api-v2", "api-v2",
                      frozenset({("Deployment", "api-v2")}), frozenset({"api-v2"}))
ROLLED = ComponentPlan("api", True, "Deployment", "api-v2", "api-v2",
                       frozenset({("Deployment", "api-v2")}), frozenset({"api-v2"}))
CLONED = ComponentPlan("api", True, "CloneSet", "api-v2", "api",
                       frozenset({("CloneSet", "api")}), frozenset({"api-v2"}))


def decided(plans: dict[str, ComponentPlan], *objects: LiveObject) -> list[tuple[str, str, Any]]:
    return [(d.obj.kind, d.obj.name, d.replacement) for d in garbage(UID, plans, objects)]


def test_a_removed_component_goes_at_once_its_rollout_first() -> None:
    objects = [live("Deployment", "gone-v1", component="gone"),
               live("ControllerRevision", "gone-v1", component="gone"),
               live("Service", "gone", component="gone"),
               live("Rollout", "gone", component="gone"),
               live("Deployment", "api-v2")]
    assert decided({"api": PLAIN}, *objects) == [
        ("Rollout", "gone", None), ("Service", "gone", None), ("Deployment", "gone-v1", None),
        ("ControllerRevision", "gone-v1", None)]


def test_a_removed_trait_takes_its_rollout_at_once_and_the_old_workload_once_replaced() -> None:
    objects = [live("Rollout", "api"), live("Deployment", "api-v1", rolled=True),
               live("Deployment", "api-v2")]
    assert decided({"api": PLAIN}, *objects) == [
        ("Rollout", "api", None),
        ("Deployment", "api-v1", Replacement("Deployment", "api-v2"))]


@pytest.mark.parametrize(
    ("plans", "objects", "expected"),
    [
        # The Rollout shrinks and deletes the Deployments of its own component.
        ({"api": ROLLED}, [live("Rollout", "api"), live("Deployment", "api-v1")], []),
        # webservice -> cloneset: the Deployments go once the Rollout finished on the CloneSet.
        ({"api": CLONED}, [live("Deployment", "api-v1"), live("CloneSet", "api")],
         [("Deployment", "api-v1", Replacement("CloneSet", "api", "api", "api-v2"))]),
        # cloneset -> webservice: the CloneSet goes once the Rollout finished on api-v2.
        ({"api": ROLLED}, [live("CloneSet", "api"), live("Deployment", "api-v2")],
         [("CloneSet", "api", Replacement("Deployment", "api-v2", "api", "api-v2"))]),
        # expose removed: the Service is not rendered any more, and goes at once.
        ({"api": PLAIN}, [live("Service", "api"), live("Deployment", "api-v2")],
         [("Service", "api", None)]),
        # Never what is not ours, or not labelled, or of a component held by another owner.
        ({"api": PLAIN}, [live("Deployment", "api-v1", owner_uid="uid-b"),
                          live("Deployment", "api-v0", managed=False)], []),
        ({"api": held_plan("api")}, [live("Rollout", "api"), live("Deployment", "api-v1")], []),
        # Revisions of a component that stays are the history's business.
        ({"api": PLAIN}, [live("ControllerRevision", "api-v1")], []),
    ],
    ids=["rollout's own", "to cloneset", "to webservice", "expose removed", "not ours",
         "held", "revisions"],
)
def test_what_goes_while_the_component_stays(
    plans: dict[str, ComponentPlan], objects: list[LiveObject], expected: list[Any]
) -> None:
    assert decided(plans, *objects) == expected


def workload(replicas: int, ready: int, updated: int | None = None, observed: int = 2,
             generation: int = 2) -> dict[str, Any]:
    return {"metadata": {"name": "api-v2", "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "readyReplicas": ready,
                       "updatedReplicas": replicas if updated is None else updated}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (workload(3, 3), True),
        (workload(3, 2), False),
        (workload(3, 3, updated=1), False),  # pods still on the old template
        (workload(3, 3, observed=1), False),  # a change its controller has not seen
        (workload(0, 0), True),
    ],
    ids=["all ready", "one not ready", "not updated", "not observed", "scaled to zero"],
)
def test_a_replacement_is_ready_when_every_replica_is_updated_and_ready(
    raw: dict[str, Any], expected: bool
) -> None:
    assert workload_ready(raw) is expected


@pytest.mark.parametrize(
    ("status", "target", "expected"),
    [
        ({"rollingState": "rolloutSucceed", "lastTargetRevision": "api-v2"}, "api-v2", True),
        ({"rollingState": "rollingInBatches", "lastTargetRevision": "api-v2"}, "api-v2", False),
        ({"rollingState": "rolloutSucceed", "lastTargetRevision": "api-v1"}, "api-v2", False),
    ],
    ids=["finished there", "still rolling", "finished elsewhere"],
)
def test_a_rolled_replacement_waits_for_its_rollout_to_finish_at_the_target(
    status: dict[str, Any], target: str, expected: bool
) -> None:
    rollout = {"spec": {"targetRevisionName": "api-v2"}, "status": status}
    assert rollout_settled(rollout, target) is expected


# ---- revision history --------------------------------------------------------------------


def revisions(count: int) -> list[LiveObject]:
    return [live("ControllerRevision", f"api-v{n}", number=n) for n in range(1, count + 1)]


@pytest.mark.parametrize(
    ("count", "in_use", "limit", "kept"),
    [
        (13, {"api-v13"}, 10, [f"api-v{n}" for n in range(4, 14)]),
        # A rollback's target and the run's source are kept however old, within the limit.
        (13, {"api-v13", "api-v1", "api-v2"}, 10, ["api-v1", "api-v2",
                                                   *(f"api-v{n}" for n in range(6, 14))]),
        (5, {"api-v5"}, 10, [f"api-v{n}" for n in range(1, 6)]),
        # More in use than the limit: all of them stay, nothing else.
        (4, {"api-v1", "api-v2", "api-v3"}, 2, ["api-v1", "api-v2", "api-v3"]),
        (3, {"api-v3"}, 0, ["api-v3"]),
    ],
    ids=["13 to 10", "old ones in use", "under the limit", "in use over the limit", "limit 0"],
)
def test_at_most_the_limit_of_revisions_is_kept_and_never_one_in_use(
    count: int, in_use: set[str], limit: int, kept: list[str]
) -> None:
    all_of_them = revisions(count)
    gone = surplus_revisions(all_of_them, in_use, limit)
    assert [r.name for r in all_of_them if r not in gone] == kept
    assert [r.number for r in gone] == sorted(r.number for r in gone)  # oldest first


def test_revisions_in_use_are_the_plans_the_rollouts_and_the_live_workloads() -> None:
    rollout = {"spec": {"targetRevisionName": "api-v5"},
               "status": {"lastTargetRevision": "api-v4", "lastSourceRevision": "api-v3"}}
    running = [live("Deployment", "api-v2", revision="api-v2"),
               live("Deployment", "web-v9", component="web", revision="web-v9")]
    plan_ = ComponentPlan("api", True, in_use=frozenset({"api-v6", "api-v1"}))
    assert revisions_in_use(plan_, rollout, running) == {
        "api-v1", "api-v2", "api-v3", "api-v4", "api-v5", "api-v6"}


# ---- sizes and failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stale", "target", "others", "expected"),
    [
        # The trait just removed: the size its Rollout left, whatever runs.
        (5, None, [live("Deployment", "api-v1", replicas=3, rolled=True)], 5),
        # The plain path applied the target before: its size (a kubectl scale kept).
        (None, live("Deployment", "api-v2", replicas=4), [], 4),
        # Restarted after the Rollout went, mid-run: everything live, never less.
        (None, live("Deployment", "api-v2", replicas=2, rolled=True),
         [live("Deployment", "api-v1", replicas=3, rolled=True)], 5),
        # A new revision, or another kind: what the old workloads run.
        (None, None, [live("Deployment", "api-v1", replicas=3)], 3),
        (None, None, [], None),
    ],
    ids=["trait removed", "plain target", "restart mid-run", "new revision", "nothing live"],
)
def test_a_plain_component_never_drops_below_what_runs(
    stale: int | None, target: LiveObject | None, others: list[LiveObject],
    expected: int | None,
) -> None:
    workloads = [*others, *([target] if target is not None else [])]
    assert plain_replicas(stale, target, workloads) == expected


@pytest.mark.parametrize(
    ("status", "naming_existing", "expected"),
    [
        (422, False, True), (400, False, True), (403, False, True), (409, False, True),
        (404, False, True),  # applying a kind that is not installed, into a namespace gone
        (404, True, False),  # patching what was just read: it went meanwhile
        (0, False, False), (429, False, False), (500, False, False), (503, False, False),
    ],
)
def test_a_write_failure_is_permanent_only_when_no_retry_can_fix_it(
    status: int, naming_existing: bool, expected: bool
) -> None:
    assert permanent(status, naming_existing=naming_existing) is expected


def test_a_deletion_names_why() -> None:
    gone = garbage(UID, {}, [live("Deployment", "old-v1", component="old")])
    assert gone == [Deletion(live("Deployment", "old-v1", component="old"),
                             "component old is no longer in the spec")]
