"""Impersonation in the controller: who each write is made as, and how a refusal is reported.

With ``impersonate`` on, an Application's Rollouts and workloads are written as the writer
the webhook recorded; ControllerRevisions, statuses and Events stay the controller's own.
A refused write is a permanent failure: a condition and one Warning Event, no exception
(so no hot retry), never the controller's own rights instead.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.fixtures.kubeapi import APP_PATH, NS, ROLLOUT_PATH, SPEC_APP, FakeApi, flush
from webhook.cli import build_parser
from webhook.controller.loop import keys_for
from webhook.controller.machine import Progress
from webhook.controller.machine.values import Condition
from webhook.controller.reconcile import Reconciler
from webhook.controller.views import blocked_components, permitted_conditions, rollout_failure
from webhook.core.labels import ANNOTATION_REQUESTER
from webhook.kube.client import APPLICATIONS
from webhook.render.renderer import Renderer

ALICE = '{"groups":["developers","system:authenticated"],"username":"alice"}'
DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/express-server-v1"
EVENTS_PATH = f"/api/v1/namespaces/{NS}/events"
NOW = "2026-11-26T00:00:00Z"


def app_written_by(value: str | None) -> dict[str, Any]:
    app = copy.deepcopy(SPEC_APP)
    if value is not None:
        app["metadata"].setdefault("annotations", {})[ANNOTATION_REQUESTER] = value
    return app


def impersonating(api: FakeApi, on: bool = True) -> Reconciler:
    return Reconciler(api, Renderer(), now=lambda: NOW, impersonate=on)  # type: ignore[arg-type]


def warnings(api: FakeApi) -> list[tuple[str, str]]:
    return [(body["reason"], body["message"]) for method, path, body in api.writes
            if method == "POST" and path == EVENTS_PATH and body["type"] == "Warning"]


def own_writes(api: FakeApi) -> set[str]:
    """What the controller wrote with its own rights, by kind (applies: see writes_as)."""
    kinds = set()
    for method, path, _ in api.writes:
        if path.endswith("/status"):
            kinds.add("status")
        elif method == "POST":
            kinds.add(path.rsplit("/", 1)[-1])
        elif method != "APPLY":
            kinds.add(path.rsplit("/", 2)[-2])
    return kinds


def object_writes(api: FakeApi) -> list[tuple[str, str]]:
    """Every write but the Events (posted from a background thread, in their own time)."""
    return [(method, path) for method, path, _ in api.writes if path != EVENTS_PATH]


def ready(api: FakeApi) -> dict[str, Any]:
    conditions = api.objects[APP_PATH]["status"]["conditions"]
    found: dict[str, Any] = next(c for c in conditions if c["type"] == "Ready")
    return found


def test_rollouts_and_workloads_are_written_as_the_recorded_writer_and_the_rest_as_ourselves(
) -> None:
    api = FakeApi((APP_PATH, app_written_by(ALICE)))
    rec = impersonating(api)
    rec.application(NS, "rollout-trait-test")
    rec.rollout(NS, "express-server")
    flush(rec)
    assert api.writes_as == [("alice", "PATCH", ROLLOUT_PATH), ("alice", "PATCH", DEPLOYMENT_PATH)]
    assert [path for method, path, _ in api.writes if method == "APPLY"] == [
        ROLLOUT_PATH, DEPLOYMENT_PATH]  # the applies made as alice, and no other
    assert own_writes(api) == {"controllerrevisions", "status", "events"}


def test_without_impersonation_every_write_is_the_controllers_own_whatever_is_recorded() -> None:
    api = FakeApi((APP_PATH, app_written_by(ALICE)))
    rec = impersonating(api, on=False)
    rec.application(NS, "rollout-trait-test")
    rec.rollout(NS, "express-server")
    flush(rec)
    assert (api.writes_as, DEPLOYMENT_PATH in api.objects) == ([], True)


def test_an_application_with_no_recorded_writer_is_not_applied_with_our_own_rights() -> None:
    api = FakeApi((APP_PATH, app_written_by(None)))
    rec = impersonating(api)
    rec.application(NS, "rollout-trait-test")
    flush(rec)
    assert ROLLOUT_PATH not in api.objects
    assert (ready(api)["status"], ready(api)["reason"]) == ("False", "ReconcileFailed")
    assert "no writer recorded in annotation rollout.oam.dev/requester" in ready(api)["message"]
    assert [reason for reason, _ in warnings(api)] == ["RequesterUnknown"]


def test_a_refused_rollout_write_fails_the_application_loudly_once_and_is_not_retried() -> None:
    api = FakeApi((APP_PATH, app_written_by(ALICE)))
    api.forbidden.add(("alice", "patch", "rollouts"))
    rec = impersonating(api)
    rec.application(NS, "rollout-trait-test")  # no exception: the loop does not retry it
    rec.application(NS, "rollout-trait-test")  # seen again: nothing new to say
    flush(rec)
    refusal = 'forbidden: user "alice" may not patch rollouts.standard.oam.dev in namespace "ns"'
    assert (ROLLOUT_PATH in api.objects, ready(api)["message"]) == (False, refusal)
    assert warnings(api) == [("Forbidden", refusal)]


def test_a_refused_workload_write_marks_the_rollout_waits_and_resumes_once_permitted() -> None:
    api = FakeApi((APP_PATH, app_written_by(ALICE)))
    api.forbidden.add(("alice", "patch", "deployments"))
    rec = impersonating(api)
    rec.application(NS, "rollout-trait-test")
    assert rec.rollout(NS, "express-server") is None  # no exception, no wake-up: it waits
    written = object_writes(api)
    rec.rollout(NS, "express-server")  # refused again: nothing new is written
    assert object_writes(api) == written
    refusal = 'forbidden: user "alice" may not patch deployments.apps in namespace "ns"'
    permitted = [c for c in api.objects[ROLLOUT_PATH]["status"]["conditions"]
                 if c["type"] == "Permitted"]
    assert [(c["status"], c["reason"], c["message"]) for c in permitted] == [
        ("False", "Forbidden", refusal)]
    rec.application(NS, "rollout-trait-test")
    assert (ready(api)["reason"], DEPLOYMENT_PATH in api.objects) == ("Forbidden", False)
    # The Application says so, so its next event (a touch after a grant) retries the Rollout.
    assert ("rollout", NS, "express-server") in keys_for(APPLICATIONS, api.objects[APP_PATH])
    api.forbidden.clear()
    rec.rollout(NS, "express-server")
    flush(rec)
    conditions = {c["type"] for c in api.objects[ROLLOUT_PATH]["status"]["conditions"]}
    assert (DEPLOYMENT_PATH in api.objects, "Permitted" in conditions) == (True, False)
    # Said once, on the Rollout and on its Application.
    assert [reason for reason, _ in warnings(api)] == ["Forbidden", "Forbidden"]


STAMPED = Condition("Permitted", "False", "Forbidden", "no", "2026-01-01T00:00:00Z")
OTHER = Condition("RolloutComplete", "False", "Rolling", "", "2026-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("conditions", "denied", "expected"),
    [
        ((OTHER,), None, None),
        ((OTHER, STAMPED), ("Forbidden", "no"), None),
        ((OTHER,), ("Forbidden", "no"),
         [{"type": "RolloutComplete", "status": "False", "reason": "Rolling",
           "lastTransitionTime": "2026-01-01T00:00:00Z"},
          {"type": "Permitted", "status": "False", "reason": "Forbidden", "message": "no",
           "lastTransitionTime": NOW}]),
        ((STAMPED, OTHER), ("Forbidden", "other"),
         [{"type": "RolloutComplete", "status": "False", "reason": "Rolling",
           "lastTransitionTime": "2026-01-01T00:00:00Z"},
          {"type": "Permitted", "status": "False", "reason": "Forbidden", "message": "other",
           "lastTransitionTime": NOW}]),
        ((STAMPED, OTHER), None,
         [{"type": "RolloutComplete", "status": "False", "reason": "Rolling",
           "lastTransitionTime": "2026-01-01T00:00:00Z"}]),
    ],
    ids=["never refused", "refused again alike", "newly refused", "refused differently",
         "permitted again"],
)
def test_the_permitted_condition_is_written_only_when_it_changes(
    conditions: tuple[Condition, ...], denied: tuple[str, str] | None,
    expected: list[dict[str, Any]] | None,
) -> None:
    assert permitted_conditions(Progress(conditions=conditions), denied, NOW) == expected


def test_a_rollout_refused_a_write_reads_as_failed_in_any_state() -> None:
    rollout = {"status": {"rollingState": "initializing", "conditions": [
        {"type": "Permitted", "status": "False", "reason": "Forbidden", "message": "no"}]}}
    assert rollout_failure(rollout) == ("Forbidden", "no")


@pytest.mark.parametrize(
    ("reason", "status", "blocked"),
    [("Forbidden", "False", ["web", "db"]), ("RequesterUnknown", "False", ["web", "db"]),
     ("ProgressDeadlineExceeded", "False", []), ("Reconciled", "True", [])],
)
def test_only_an_application_waiting_for_rights_retries_its_rollouts_on_every_event(
    reason: str, status: str, blocked: list[str]
) -> None:
    app = {"metadata": {"name": "shop", "namespace": "ns"},
           "spec": {"components": [{"name": "web"}, {"name": "db"}]},
           "status": {"conditions": [{"type": "Ready", "status": status, "reason": reason}]}}
    assert blocked_components(app) == blocked
    assert keys_for(APPLICATIONS, app) == [
        ("app", "ns", "shop"), *(("rollout", "ns", name) for name in blocked)]


@pytest.mark.parametrize(
    ("flags", "impersonate"),
    [([], False), (["--impersonate"], True), (["--impersonate", "--no-impersonate"], False)],
)
def test_the_controller_impersonates_only_when_told_to(
    flags: list[str], impersonate: bool
) -> None:
    assert build_parser().parse_args(["controller", *flags]).impersonate is impersonate
