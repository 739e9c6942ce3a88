"""API objects to state-machine values and back, Application health, and the status report."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.kubeapi import ROLLOUT
from webhook.controller.machine import (
    Condition,
    EmitEvent,
    Plan,
    Progress,
    Workload,
    WorkloadKind,
)
from webhook.controller.report import bar, batch_lines, format_status
from webhook.controller.views import (
    application_status,
    event_body,
    plan_from,
    progress_from,
    service_health,
    status_from,
    workload_from,
)


def test_a_rollout_reads_as_its_plan() -> None:
    assert plan_from(ROLLOUT, WorkloadKind.DEPLOYMENT) == Plan(
        "express-server", "express-server-v2", 5, (2, 3), 0, 2, WorkloadKind.DEPLOYMENT)


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ({}, (-1, ())),
        ({"targetSize": "5", "rolloutBatches": [{"replicas": "x"}, {}]}, (-1, (-1, -1))),
        ({"targetSize": True, "rolloutBatches": "2,3"}, (-1, ())),
    ],
    ids=["missing", "strings", "wrong types"],
)
def test_mistyped_plans_read_as_values_verification_rejects(
    plan: dict[str, Any], expected: tuple[int, tuple[int, ...]]
) -> None:
    raw = {"metadata": {"name": "c"}, "spec": {"targetRevisionName": "c-v1", "rolloutPlan": plan}}
    got = plan_from(raw, WorkloadKind.DEPLOYMENT)
    assert (got.target_size, got.batches) == expected


def test_progress_survives_a_round_trip_through_status() -> None:
    progress = progress_from(ROLLOUT["status"])
    body = status_from(progress)
    assert progress_from({k: v for k, v in body.items() if v is not None}) == progress


def test_empty_status_strings_are_cleared_with_null() -> None:
    body = status_from(Progress(rolling_state="initializing", conditions=(
        Condition("SpecVerified", "True", "Verified"),)))
    assert (body["lastSourceRevision"], body["lastTargetRevision"]) == (None, None)
    assert body["conditions"] == [{"type": "SpecVerified", "status": "True",
                                   "reason": "Verified"}]


@pytest.mark.parametrize(
    ("status", "generation", "expected"),
    [
        ({"replicas": 3, "readyReplicas": 2, "observedGeneration": 4}, 4,
         Workload("web-v1", "web-v1", 3, current=3, ready=2, settled=True)),
        ({"observedGeneration": 3}, 4, Workload("web-v1", "web-v1", 3, settled=False)),
    ],
    ids=["settled", "not yet observed"],
)
def test_a_deployment_reads_as_a_workload(
    status: dict[str, Any], generation: int, expected: Workload
) -> None:
    raw = {"metadata": {"name": "web-v1", "generation": generation,
                        "labels": {"app.oam.dev/revision": "web-v1"}},
           "spec": {"replicas": 3}, "status": status}
    assert workload_from(raw) == expected


def test_a_cloneset_reads_with_its_partition_and_updated_counts() -> None:
    raw = {"metadata": {"name": "cs", "generation": 1, "labels": {"app.oam.dev/revision": "v2"}},
           "spec": {"replicas": 5, "updateStrategy": {"partition": 3}},
           "status": {"replicas": 5, "readyReplicas": 5, "updatedReplicas": 2,
                      "updatedReadyReplicas": 2, "observedGeneration": 1}}
    assert workload_from(raw) == Workload("cs", "v2", 5, 5, 5, 2, 2, 3, True)


@pytest.mark.parametrize(
    ("status", "healthy", "message"),
    [
        ({"rollingState": "rolloutSucceed", "batchRollingState": "batchReady"}, True, ""),
        ({"rollingState": "rollingInBatches", "batchRollingState": "batchReady"}, True, ""),
        ({"rollingState": "rollingInBatches", "batchRollingState": "batchInRolling",
          "currentBatch": 1}, False, "rollingInBatches batch 1 batchInRolling"),
        ({"rollingState": "rolloutFailed", "batchRollingState": "batchReady",
          "conditions": [{"type": "SpecVerified", "status": "False", "message": "bad sum"}]},
         False, "rollout failed (RolloutFailed): bad sum"),
        ({}, False, "rollout pending"),
    ],
    ids=["succeeded", "held by a partition", "rolling", "failed", "not started"],
)
def test_a_component_is_healthy_when_its_current_batch_is_ready(
    status: dict[str, Any], healthy: bool, message: str
) -> None:
    assert service_health("web", {"status": status}, None) == {
        "name": "web", "healthy": healthy, "message": message}


def test_a_plain_component_is_healthy_when_its_workload_is_ready() -> None:
    ready = {"metadata": {"name": "db-v1", "generation": 1}, "spec": {"replicas": 2},
             "status": {"replicas": 2, "readyReplicas": 2, "observedGeneration": 1}}
    assert service_health("db", None, ready)["healthy"] is True
    assert service_health("db", None, None)["healthy"] is False


def test_application_status_keeps_the_ready_time_while_nothing_changes() -> None:
    services = [{"name": "web", "healthy": True, "message": ""}]
    first = application_status({}, 3, services, [], "2026-01-01T00:00:00Z")
    again = application_status(first, 3, services, [], "2026-01-02T00:00:00Z")
    assert again == first
    assert first["status"] == "running"
    assert first["services"] == [{"name": "web", "healthy": True}]


def test_application_status_reports_errors_as_failed() -> None:
    status = application_status({}, 1, [], ["spec.components[0].type: Unsupported value"], "t")
    assert status["status"] == "failed"
    assert status["conditions"][0]["message"] == "spec.components[0].type: Unsupported value"


def test_events_name_the_rollout_they_are_about() -> None:
    body = event_body(ROLLOUT, EmitEvent("Warning", "VerificationFailed", "bad"), "t")
    assert body["involvedObject"] == {"apiVersion": "standard.oam.dev/v1alpha1",
                                      "kind": "Rollout", "name": "express-server",
                                      "namespace": "ns", "uid": "u9"}
    assert (body["type"], body["reason"], body["message"]) == ("Warning", "VerificationFailed",
                                                              "bad")


@pytest.mark.parametrize(("done", "total", "expected"),
                         [(0, 4, "[....]"), (2, 4, "[##..]"), (4, 4, "[####]"), (9, 4, "[####]")])
def test_bars_fill_in_proportion(done: int, total: int, expected: str) -> None:
    assert bar(done, total, width=4) == expected


def test_the_report_shows_a_held_batch_under_a_partition() -> None:
    assert batch_lines(ROLLOUT) == [
        "    batch 0  [####################]  2/2  ready",
        "    batch 1  [....................]  0/3  held by batchPartition 0",
    ]


def test_the_report_names_the_application_and_its_component_states() -> None:
    app = {"metadata": {"name": "rollout-trait-test", "namespace": "ns", "generation": 2},
           "spec": {"components": [{"name": "express-server", "type": "webservice"}]},
           "status": {"status": "running", "observedGeneration": 2,
                      "services": [{"name": "express-server", "healthy": True}]}}
    text = format_status(app, {"express-server": ROLLOUT})
    assert text.splitlines()[:5] == [
        "Application rollout-trait-test  namespace ns  phase running  generation 2 (observed 2)",
        "",
        "  express-server  (webservice)  healthy true",
        "    revision express-server-v2 (from express-server-v1)  target express-server-v2",
        "    rollingInBatches / batchReady  batch 0  replicas 5 -> 5  upgraded 2  ready 2",
    ]


# ---- the progress deadline, as users see it ---------------------------------------------

DEADLINE_MESSAGE = ("batch 1 (3 replicas, 2 of 2) not Ready within the progress deadline of "
                    "600s: 0/3 pods of express-server-v2 Ready")
MISSED: dict[str, Any] = {
    **ROLLOUT,
    "spec": {**ROLLOUT["spec"], "rolloutPlan": {
        "targetSize": 5, "rolloutBatches": [{"replicas": 2}, {"replicas": 3}]}},
    "status": {
        **ROLLOUT["status"],
        "rollingState": "rolloutFailed", "batchRollingState": "batchInRolling",
        "currentBatch": 1, "batchStartTime": "2026-01-01T00:10:00Z",
        "progressDeadlineSeconds": 600,
        "conditions": [
            {"type": "RolloutComplete", "status": "False", "reason": "Rolling",
             "message": "upgrade to express-server-v2 at 5"},
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": DEADLINE_MESSAGE},
        ],
    },
}


def test_the_batch_clock_survives_a_round_trip_through_status() -> None:
    progress = progress_from(MISSED["status"])
    body = status_from(progress)
    assert (progress.batch_started, progress.deadline_seconds) == ("2026-01-01T00:10:00Z", 600)
    assert (body["batchStartTime"], body["progressDeadlineSeconds"]) == (
        "2026-01-01T00:10:00Z", 600)
    assert progress_from({k: v for k, v in body.items() if v is not None}) == progress


def test_a_missed_deadline_names_its_reason_not_the_unfinished_run() -> None:
    assert service_health("express-server", MISSED, None) == {
        "name": "express-server", "healthy": False,
        "message": f"rollout failed (ProgressDeadlineExceeded): {DEADLINE_MESSAGE}"}


def test_the_application_ready_condition_says_which_rollout_failed_and_why() -> None:
    services = [service_health("express-server", MISSED, None)]
    status = application_status({}, 2, services, [], "t", [
        ("express-server", "ProgressDeadlineExceeded", DEADLINE_MESSAGE)])
    assert status["status"] == "running"
    assert status["conditions"] == [{
        "type": "Ready", "status": "False", "reason": "ProgressDeadlineExceeded",
        "message": f"rollout of express-server failed: {DEADLINE_MESSAGE}",
        "lastTransitionTime": "t"}]


def test_the_report_shows_the_batch_that_missed_its_deadline_and_why() -> None:
    app = {"metadata": {"name": "rollout-trait-test", "namespace": "ns", "generation": 2},
           "spec": {"components": [{"name": "express-server", "type": "webservice"}]},
           "status": {"status": "running", "observedGeneration": 2, "services": [
               service_health("express-server", MISSED, None)]}}
    lines = format_status(app, {"express-server": MISSED}).splitlines()
    assert lines[4:] == [
        "    rolloutFailed / batchInRolling  batch 1  replicas 5 -> 5  upgraded 2  ready 2",
        "    batch 0  [####################]  2/2  ready",
        "    batch 1  [....................]  0/3  failed: not Ready within the progress deadline",
        f"    Progressing: ProgressDeadlineExceeded: {DEADLINE_MESSAGE}",
    ]


def test_the_report_shows_by_when_a_rolling_batch_must_be_ready() -> None:
    rolling = {**MISSED, "status": {**MISSED["status"], "rollingState": "rollingInBatches",
                                    "conditions": []}}
    app = {"metadata": {"name": "a", "namespace": "ns", "generation": 2},
           "spec": {"components": [{"name": "express-server", "type": "webservice"}]}}
    lines = format_status(app, {"express-server": rolling}).splitlines()
    assert lines[-1] == ("    batch 1 rolling since 00:10:00Z, must be Ready by 00:20:00Z "
                         "(progress deadline 600s)")
