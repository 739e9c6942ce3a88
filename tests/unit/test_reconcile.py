"""Read-decide-act against an in-memory API: the writes each reconcile makes, in order."""

from __future__ import annotations

import pytest

from tests.fixtures.kubeapi import (
    APP_PATH,
    NS,
    ROLLOUT_PATH,
    SPEC_APP,
    FakeApi,
    flush,
    reconciler,
)
from webhook.controller.reconcile import ANNOTATION_ROLLED_BY
from webhook.core.errors import ApiError


def test_an_application_gets_its_revision_its_rollout_then_its_status() -> None:
    api = FakeApi((APP_PATH, SPEC_APP))
    rec = reconciler(api)
    rec.application(NS, "rollout-trait-test")
    flush(rec)
    assert [(m, p.rsplit("/", 2)[-2:]) for m, p, _ in api.writes] == [
        ("POST", ["ns", "controllerrevisions"]),
        ("APPLY", ["rollouts", "express-server"]),
        ("PATCH", ["rollout-trait-test", "status"]),
    ]
    revision = api.writes[0][2]
    assert (revision["metadata"]["name"], revision["revision"]) == ("express-server-v1", 1)
    assert revision["metadata"]["ownerReferences"][0]["uid"] == "app-uid"
    rollout = api.writes[1][2]
    assert rollout["spec"]["targetRevisionName"] == "express-server-v1"
    status = api.writes[2][2]
    assert status["metadata"] == {"resourceVersion": "10"}  # the precondition
    assert status["status"]["services"] == [
        {"name": "express-server", "healthy": False, "message": "rollout pending"}]


def test_an_unchanged_application_is_not_written_again() -> None:
    api = FakeApi((APP_PATH, SPEC_APP))
    rec = reconciler(api)
    rec.application(NS, "rollout-trait-test")
    first = len(api.writes)
    rec.application(NS, "rollout-trait-test")
    flush(rec)
    assert api.writes[first:] == []


def test_a_new_rollout_writes_its_status_first_then_creates_the_target_at_zero() -> None:
    api = FakeApi((APP_PATH, SPEC_APP))
    rec = reconciler(api)
    rec.application(NS, "rollout-trait-test")
    api.writes.clear()
    rec.rollout(NS, "express-server")
    flush(rec)
    methods = [(m, p.rsplit("/", 1)[-1]) for m, p, _ in api.writes]
    assert methods[:2] == [("PATCH", "status"), ("APPLY", "express-server-v1")]
    assert {m for m, _ in methods[2:]} == {"POST"}  # then the Events
    status_patch = api.writes[0][2]
    assert status_patch["metadata"]["resourceVersion"]  # written only over what was read
    assert (status_patch["status"]["rollingState"], status_patch["status"]["currentBatch"]) == (
        "initializing", 0)
    deployment = api.writes[1][2]
    assert deployment["spec"]["replicas"] == 0
    assert deployment["metadata"]["annotations"] == {ANNOTATION_ROLLED_BY: "express-server"}
    reasons = [(body["involvedObject"]["kind"], body["reason"]) for _, _, body in api.writes[2:]]
    # Each on the Rollout, then the same on its Application.
    assert reasons == [(kind, reason) for reason in ("VerifyingSpec", "Initializing",
                                                     "WorkloadCreated")
                       for kind in ("Rollout", "Application")]


def test_a_conflicting_status_write_stops_the_decision_before_any_workload_moves() -> None:
    api = FakeApi((APP_PATH, SPEC_APP))
    rec = reconciler(api)
    rec.application(NS, "rollout-trait-test")
    api.writes.clear()
    api.conflict_on = ROLLOUT_PATH + "/status"
    with pytest.raises(ApiError) as caught:
        rec.rollout(NS, "express-server")
    flush(rec)
    assert caught.value.conflict
    assert [m for m, _, _ in api.writes] == ["PATCH"]


def test_a_rollout_whose_application_is_gone_is_left_alone() -> None:
    api = FakeApi((APP_PATH, SPEC_APP))
    rec = reconciler(api)
    rec.application(NS, "rollout-trait-test")
    del api.objects[APP_PATH]
    api.writes.clear()
    rec.rollout(NS, "express-server")
    flush(rec)
    assert api.writes == []
