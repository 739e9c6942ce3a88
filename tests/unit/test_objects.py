"""Reading API objects (plain dicts) into values: revisions, Rollouts, owners, ObservedState."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from webhook.controller.loop import keys_for
from webhook.core.objects import (
    applications_of,
    component_observation,
    controller_of,
    observed_state_from,
    observed_state_from_documents,
    owner_application,
    revision_record,
)
from webhook.core.state import ComponentObservation, OwnerRef, RevisionRecord, RunRecord
from webhook.kube.client import ROLLOUTS

APP_OWNER = {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "name": "app",
             "uid": "u1", "controller": True}


def controller_revision(name: str, component: str, number: Any, **meta: Any) -> dict[str, Any]:
    labels = {
        "controller.oam.dev/component": component,
        "app.oam.dev/component-revision-hash": "h1",
    }
    return {
        "kind": "ControllerRevision",
        "metadata": {"name": name, "labels": labels, **meta},
        "revision": number,
        "data": {"name": component, "type": "webservice"},
    }


def rollout(
    name: str, status: dict[str, Any], *, owner: str = "app", **spec: Any
) -> dict[str, Any]:
    return {
        "kind": "Rollout",
        "metadata": {"name": name, "ownerReferences": [{**APP_OWNER, "name": owner}]},
        "spec": spec,
        "status": status,
    }


# ---- ControllerRevision -----------------------------------------------------------------


def test_a_controller_revision_becomes_a_record_with_its_owner() -> None:
    owned = controller_revision("web-v2", "web", 2, ownerReferences=[APP_OWNER])
    assert revision_record(owned) == RevisionRecord(
        name="web-v2",
        component="web",
        number=2,
        spec_hash="h1",
        data={"name": "web", "type": "webservice"},
        owner="app",
        owner_kind="Application",
    )


@pytest.mark.parametrize(
    "obj",
    [{"metadata": {"name": "x"}}, {"metadata": "nope"}, {}, {"metadata": {"labels": {"a": 1}}},
     {"metadata": {"labels": {"controller.oam.dev/component": "web"}}, "revision": 1}],
    ids=["no labels", "metadata not an object", "empty", "other labels", "no name"],
)
def test_objects_that_are_not_named_component_revisions_are_not_revisions(
    obj: dict[str, Any],
) -> None:
    assert revision_record(obj) is None


@pytest.mark.parametrize("number", ["2", None, True, 2.5])
def test_a_revision_whose_number_is_not_an_integer_is_dropped(number: Any) -> None:
    # Read as 0 it could collide with another revision's number and be picked or reused.
    assert revision_record(controller_revision("web-v2", "web", number)) is None
    listed = [controller_revision("web-v1", "web", 1), controller_revision("web-v2", "web", number)]
    assert [r.name for r in observed_state_from("ns", "app", listed, ()).revisions] == ["web-v1"]
    assert [r.name for r in observed_state_from_documents(listed).revisions] == ["web-v1"]


def test_a_record_does_not_share_the_data_of_the_object_it_was_read_from() -> None:
    obj = controller_revision("web-v1", "web", 1)
    record = revision_record(obj)
    assert record is not None
    obj["data"]["type"] = "worker"
    assert record.data == {"name": "web", "type": "webservice"}


def test_a_revision_owner_is_its_controller_reference_only() -> None:
    keeper = {**APP_OWNER, "name": "keeper", "controller": False}
    obj = controller_revision("web-v1", "web", 1, ownerReferences=[keeper])
    record = revision_record(obj)
    assert record is not None and record.owner == ""


# ---- Rollout ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {"lastTargetRevision": "web-v1", "rolloutTargetSize": 5,
             "rollingState": "rolloutSucceed", "currentBatch": 1,
             "batchRollingState": "batchReady"},
            ComponentObservation("web-v1", 5, 1, "rolloutSucceed", "batchReady", "web-v1",
                                 run_size=5),
        ),
        (
            {"lastTargetRevision": "web-v1", "rolloutTargetSize": 5,
             "rollingState": "rollingInBatches", "currentBatch": 0},
            ComponentObservation("web-v1", None, 0, "rollingInBatches", None, "web-v1",
                                 run_size=5),
        ),
        ({}, ComponentObservation(None, None, None, None, None, "web-v1")),
        (
            {"rolloutTargetSize": "5", "rollingState": "rolloutSucceed", "currentBatch": "1"},
            ComponentObservation(None, None, None, "rolloutSucceed", None, "web-v1"),
        ),
        (
            {"rolloutTargetSize": True, "rollingState": "rolloutSucceed", "currentBatch": False,
             "lastTargetRevision": ""},
            ComponentObservation(None, None, None, "rolloutSucceed", None, "web-v1"),
        ),
    ],
    ids=["settled", "rolling", "no-status", "wrong-types", "booleans-and-empty"],
)  # fmt: skip
def test_the_size_counts_only_once_a_rollout_has_succeeded(
    status: dict[str, Any], expected: ComponentObservation
) -> None:
    assert component_observation(rollout("web", status, targetRevisionName="web-v1")) == expected


COMPLETE = {"type": "RolloutComplete", "status": "True", "reason": "Succeeded"}
ROLLING = {"type": "RolloutComplete", "status": "False", "reason": "Rolling"}


@pytest.mark.parametrize(
    ("status", "run"),
    [
        ({"rollingState": "rolloutSucceed", "lastTargetRevision": "web-v1",
          "rolloutTargetSize": 5, "conditions": [COMPLETE]},
         RunRecord("rolloutSucceed", "web-v1", "", 5, 0, complete=True)),
        ({"rollingState": "rollingInBatches", "lastTargetRevision": "web-v2",
          "lastSourceRevision": "web-v1", "rolloutTargetSize": 5, "rolloutOriginalSize": 5,
          "conditions": [ROLLING]},
         RunRecord("rollingInBatches", "web-v2", "web-v1", 5, 5, complete=False)),
        ({"rollingState": "rolloutFailed", "lastTargetRevision": "web-v1",
          "rolloutTargetSize": 5, "conditions": [COMPLETE]},
         RunRecord("rolloutFailed", "web-v1", "", 5, 0, complete=True)),
        ({"rollingState": "rolloutSucceed", "lastTargetRevision": "web-v1",
          "rolloutTargetSize": 5},
         RunRecord("rolloutSucceed", "web-v1", "", 5, 0, complete=True)),
        ({}, RunRecord()),
    ],
    ids=["finished", "parked mid-upgrade", "failed after it finished",
         "finished without the condition", "no status"],
)  # fmt: skip
def test_the_latest_run_is_read_from_status_finished_or_not(
    status: dict[str, Any], run: RunRecord
) -> None:
    assert component_observation(rollout("web", status)).last_run() == run


# ---- owners -----------------------------------------------------------------------------

LABELLED = {"app.oam.dev/name": "labelled-app"}


def with_meta(**meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "ns", **meta}}


OWNER_CASES = [
    pytest.param(with_meta(ownerReferences=[APP_OWNER]), "app", frozenset({"app"}),
                 id="controller reference"),
    pytest.param(with_meta(ownerReferences=[{**APP_OWNER, "controller": False}]), None,
                 frozenset({"app"}), id="a reference that does not control"),
    pytest.param(with_meta(ownerReferences=[{**APP_OWNER, "kind": "Deployment"}]), None,
                 frozenset(), id="controlled by another kind"),
    pytest.param(with_meta(labels=LABELLED), "labelled-app", frozenset({"labelled-app"}),
                 id="labelled only"),
    pytest.param(with_meta(labels=LABELLED, ownerReferences=[APP_OWNER]), "app",
                 frozenset({"app", "labelled-app"}), id="the controller wins over the label"),
    pytest.param(with_meta(ownerReferences="nope", labels=["x"]), None, frozenset(),
                 id="mistyped"),
]


@pytest.mark.parametrize(("obj", "owner", "belongs"), OWNER_CASES)
def test_an_owner_is_the_application_reference_marked_controller(
    obj: dict[str, Any], owner: str | None, belongs: frozenset[str]
) -> None:
    assert owner_application(obj) == owner
    assert applications_of(obj) == belongs


@pytest.mark.parametrize(("obj", "owner", "belongs"), OWNER_CASES)
def test_the_loop_wakes_the_application_that_owns_a_rollout(
    obj: dict[str, Any], owner: str | None, belongs: frozenset[str]
) -> None:
    expected = [("rollout", "ns", "web")] + ([("app", "ns", owner)] if owner else [])
    assert keys_for(ROLLOUTS, obj) == expected


# ---- ObservedState ----------------------------------------------------------------------


def test_an_observed_state_keeps_every_revision_but_only_the_apps_own_rollouts() -> None:
    revisions = [
        controller_revision("web-v2", "web", 2),
        controller_revision("web-v1", "web", 1),
        controller_revision("other-v1", "other", 1),
        {"metadata": {"name": "unlabelled"}},
    ]
    rollouts = [
        rollout("web", {"rollingState": "rolloutSucceed"}),
        rollout("other", {}, owner="another-app"),
        {"metadata": {"name": "labelled", "labels": {"app.oam.dev/name": "app"}}},
    ]
    state = observed_state_from("ns", "app", revisions, rollouts)
    assert [r.name for r in state.revisions] == ["other-v1", "web-v1", "web-v2"]
    assert sorted(state.components) == ["labelled", "web"]
    assert state.namespace == "ns"


def test_documents_keep_every_rollout_and_the_files_order_and_skip_other_kinds() -> None:
    docs: list[object] = [
        controller_revision("web-v2", "web", 2),
        controller_revision("web-v1", "web", 1),
        rollout("web", {"rollingState": "rolloutSucceed", "rolloutTargetSize": 3}),
        rollout("other", {}, owner="another-app"),
        {"kind": "ConfigMap", "metadata": {"name": "ignored"}},
        "not an object",
    ]
    state = observed_state_from_documents(copy.deepcopy(docs), namespace="ns")
    assert [r.name for r in state.revisions] == ["web-v2", "web-v1"]
    assert sorted(state.components) == ["other", "web"]
    assert state.component("web").current_size == 3
    assert state.namespace == "ns"
    assert state.rollout_owners == {"web": OwnerRef("Application", "app"),
                                    "other": OwnerRef("Application", "another-app")}


def test_every_controlled_rollout_of_the_namespace_is_known_by_its_controller() -> None:
    rollouts = [
        rollout("web", {}),
        rollout("other", {}, owner="another-app"),
        {"metadata": {"name": "vela", "ownerReferences": [
            {"kind": "AppRollout", "name": "r", "controller": True}]}},
        {"metadata": {"name": "adopted", "ownerReferences": [
            {**APP_OWNER, "controller": False}]}},
        {"metadata": {"name": "labelled", "labels": {"app.oam.dev/name": "app"}}},
    ]
    state = observed_state_from("ns", "app", [], rollouts)
    assert state.rollout_owners == {
        "web": OwnerRef("Application", "app"),
        "other": OwnerRef("Application", "another-app"),
        "vela": OwnerRef("AppRollout", "r"),
    }
    assert controller_of(rollouts[3]) is None
