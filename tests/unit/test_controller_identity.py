"""Every controller write names the replica that made it.

Plain writes carry the replica in their fieldManager, applied objects in an annotation,
Events in reportingInstance; with no identity the shared names are used unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.kubeapi import APP_PATH, NS, ROLLOUT, SPEC_APP, FakeApi, flush
from webhook.controller.machine import EmitEvent
from webhook.controller.reconcile import ANNOTATION_APPLIED_BY, Reconciler
from webhook.controller.views import event_body
from webhook.kube.client import FIELD_MANAGER, writer_identity, writer_manager
from webhook.render.renderer import Renderer


@pytest.mark.parametrize(("identity", "manager"), [
    ("replica-0", "oam-rollout-controller@replica-0"),
    ("node-a_4242", "oam-rollout-controller@node-a_4242"),
    ("", FIELD_MANAGER),
    ("x" * 200, ("oam-rollout-controller@" + "x" * 200)[:128]),
])
def test_a_replica_writes_under_a_field_manager_that_names_it(identity: str,
                                                              manager: str) -> None:
    assert writer_manager(identity) == manager


@pytest.mark.parametrize(("manager", "identity"), [
    ("oam-rollout-controller@replica-0", "replica-0"),
    (FIELD_MANAGER, None),  # the shared server-side apply manager names no replica
    ("kubectl-client-side-apply", None),
])
def test_the_replica_is_read_back_from_a_field_manager(manager: str,
                                                       identity: str | None) -> None:
    assert writer_identity(manager) == identity


@pytest.mark.parametrize(("instance", "reporting"), [("replica-1", {"reportingInstance":
                                                                    "replica-1"}), ("", {})])
def test_events_name_the_reporting_replica(instance: str, reporting: dict[str, str]) -> None:
    body = event_body(ROLLOUT, EmitEvent("Normal", "BatchReady", "ok"), "t", instance)
    assert {k: v for k, v in body.items() if k == "reportingInstance"} == reporting
    assert body["reportingComponent"] == FIELD_MANAGER


def test_a_reconciler_signs_what_it_applies_and_the_events_it_posts() -> None:
    api = FakeApi((APP_PATH, SPEC_APP))
    rec = Reconciler(api, Renderer(), now=lambda: "2026-11-26T00:00:00Z",  # type: ignore[arg-type]
                     identity="replica-7")
    rec.application(NS, "rollout-trait-test")
    rec.rollout(NS, "express-server")
    flush(rec)
    applied = [body for method, _, body in api.writes if method == "APPLY"]
    events = [body for method, path, body in api.writes
              if method == "POST" and path.endswith("/events")]
    assert [(b["kind"], b["metadata"]["annotations"][ANNOTATION_APPLIED_BY]) for b in applied] \
        == [("Rollout", "replica-7"), ("Deployment", "replica-7")]
    assert events
    assert {e["reportingInstance"] for e in events} == {"replica-7"}


def test_a_reconciler_without_an_identity_adds_no_annotation() -> None:
    api = FakeApi((APP_PATH, SPEC_APP))
    rec = Reconciler(api, Renderer(), now=lambda: "2026-11-26T00:00:00Z")  # type: ignore[arg-type]
    rec.application(NS, "rollout-trait-test")
    flush(rec)
    rollout: dict[str, Any] = next(b for m, _, b in api.writes if m == "APPLY")
    assert ANNOTATION_APPLIED_BY not in (rollout["metadata"].get("annotations") or {})
