"""An Application's objects through its changes, against an in-memory API: what each pass
writes and deletes, in which order, and what it never touches.

The trait removed (the stale Rollout deleted first, the plain workload at the size the
rollout left, the old one deleted only once the new one is Ready), a component removed,
objects another owner controls (never written over: a conflict reported once), a write
the API refuses (the run fails once, not retried hot) and the revision history.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fixtures.apps import parsed
from tests.fixtures.kubeapi import (
    APP_PATH,
    NS,
    ROLLOUT_PATH,
    SPEC_APP,
    FakeApi,
    applied_path,
    flush,
    reconciler,
)
from webhook.controller.reconcile import Reconciler
from webhook.core.errors import ApiError
from webhook.kube.client import DEPLOYMENTS as DEPLOYMENT_RESOURCE

APP = "rollout-trait-test"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
REVISIONS = f"/apis/apps/v1/namespaces/{NS}/controllerrevisions"
EVENTS = f"/api/v1/namespaces/{NS}/events"
V1 = f"{DEPLOYMENTS}/express-server-v1"
V2 = f"{DEPLOYMENTS}/express-server-v2"


class RefusingApi(FakeApi):
    """FakeApi whose applies to the paths in ``refused`` fail with 422."""

    refused: set[str]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        path = applied_path(obj)
        if path in getattr(self, "refused", ()):
            self.writes.append(("APPLY", path, None))
            raise ApiError("PATCH", path, 422,
                           'Deployment.apps "x" is invalid: metadata.labels: Invalid value')
        return super().apply(obj)


def ready_all(api: FakeApi) -> None:
    """Every Deployment's pods as its controller would report them: all updated and Ready."""
    for path, obj in api.objects.items():
        if path.startswith(DEPLOYMENTS + "/"):
            replicas = obj.get("spec", {}).get("replicas", 1)
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1)
            obj["status"] = {"replicas": replicas, "readyReplicas": replicas,
                             "updatedReplicas": replicas,
                             "observedGeneration": obj["metadata"]["generation"]}


def settle(api: FakeApi, rec: Reconciler) -> None:
    """Roll the Rollout to the end, the world answering each decision at once."""
    for _ in range(40):
        rec.rollout(NS, "express-server")
        ready_all(api)
        status = api.objects[ROLLOUT_PATH].get("status") or {}
        if status.get("rollingState") == "rolloutSucceed" and V1 in api.objects:
            return
    raise AssertionError(api.objects[ROLLOUT_PATH].get("status"))


def rolled_out() -> tuple[FakeApi, Reconciler]:
    """The spec's first deploy, rolled to rolloutSucceed: express-server-v1 at 5."""
    api = RefusingApi((APP_PATH, SPEC_APP))
    rec = reconciler(api)
    rec.application(NS, APP)
    settle(api, rec)
    rec.application(NS, APP)
    return api, rec


def change_app(api: FakeApi, edit: Any) -> None:
    app = api.objects[APP_PATH]
    edit(app["spec"]["components"])
    app["metadata"]["generation"] += 1


def without_trait(components: list[dict[str, Any]]) -> None:
    component = components[0]
    component.pop("traits")
    component["externalRevision"] = "express-server-v2"
    component["properties"]["image"] = "stefanprodan/podinfo:5.0.2"


def object_writes(api: FakeApi) -> list[tuple[str, str]]:
    return [(method, path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1])
            for method, path, _ in api.writes if path != EVENTS]


def events(api: FakeApi, type_: str = "Warning") -> list[tuple[str, str]]:
    return [(body["reason"], body["message"]) for method, path, body in api.writes
            if path == EVENTS and body["type"] == type_]


def ready_condition(api: FakeApi) -> dict[str, Any]:
    found: dict[str, Any] = api.objects[APP_PATH]["status"]["conditions"][0]
    return found


def test_a_removed_trait_deletes_the_rollout_first_and_keeps_the_size_it_left() -> None:
    api, rec = rolled_out()
    change_app(api, without_trait)
    api.writes.clear()
    rec.application(NS, APP)
    assert object_writes(api) == [("DELETE", "rollouts/express-server"),
                                  ("POST", "ns/controllerrevisions"),
                                  ("APPLY", "deployments/express-server-v2"),
                                  ("PATCH", f"{APP}/status")]
    assert api.objects[V2]["spec"]["replicas"] == 5  # the size the rollout left
    assert V1 in api.objects  # its replacement is not Ready yet
    # The old one goes once the new one is Ready, with the very UID it was listed with.
    ready_all(api)
    api.writes.clear()
    rec.application(NS, APP)
    assert ("DELETE", V1, {"uid": "uid-express-server-v1"}) in api.writes
    assert sorted(p.rsplit("/", 1)[-1] for p in api.objects if p.startswith(DEPLOYMENTS)) == [
        "express-server-v2"]
    # At rest: the plain workload keeps its size, nothing else is written.
    api.writes.clear()
    rec.application(NS, APP)
    flush(rec)
    assert api.objects[V2]["spec"]["replicas"] == 5
    assert [m for m, _ in object_writes(api)] == ["APPLY"]  # the same apply, a no-op


def test_a_stale_rollout_never_acts_on_the_workloads_of_its_plain_component() -> None:
    api, rec = rolled_out()
    change_app(api, without_trait)
    api.writes.clear()
    assert rec.rollout(NS, "express-server") is None  # before the pass deletes it
    flush(rec)
    assert api.writes == []


def test_a_removed_component_goes_at_once_and_the_others_stay() -> None:
    api, rec = rolled_out()

    def second_component(components: list[dict[str, Any]]) -> None:
        components.append({"name": "worker", "type": "worker",
                           "properties": {"image": "busybox:1"}})

    change_app(api, second_component)
    rec.application(NS, APP)
    assert f"{DEPLOYMENTS}/worker-v1" in api.objects
    change_app(api, lambda components: components.pop(0))
    api.writes.clear()
    rec.application(NS, APP)
    deleted = [path.rsplit("/", 2)[-2:] for method, path, _ in api.writes if method == "DELETE"]
    assert deleted == [["rollouts", "express-server"], ["deployments", "express-server-v1"],
                       ["controllerrevisions", "express-server-v1"]]
    assert f"{DEPLOYMENTS}/worker-v1" in api.objects


def test_an_object_another_application_controls_is_never_written_and_the_conflict_is_said_once(
) -> None:
    theirs = {"apiVersion": "standard.oam.dev/v1alpha1", "kind": "Rollout",
              "metadata": {"name": "express-server", "namespace": NS, "uid": "r-a",
                           "ownerReferences": [{"apiVersion": "core.oam.dev/v1beta1",
                                                "kind": "Application", "name": "a",
                                                "uid": "uid-a", "controller": True}]},
              "spec": {"targetRevisionName": "a-v1"}}
    api = FakeApi((APP_PATH, SPEC_APP), (ROLLOUT_PATH, theirs))
    rec = reconciler(api)
    rec.application(NS, APP)
    rec.application(NS, APP)
    flush(rec)
    assert api.objects[ROLLOUT_PATH]["spec"] == theirs["spec"]
    assert [m for m, p, _ in api.writes if p != EVENTS] == ["PATCH"]  # our status only
    message = ("component express-server: Rollout express-server is controlled by "
               "Application a: not overwritten")
    assert (ready_condition(api)["reason"], ready_condition(api)["message"]) == (
        "OwnershipConflict", message)
    assert events(api) == [("OwnershipConflict", message)]
    assert api.objects[APP_PATH]["status"]["status"] == "failed"


def test_a_workload_write_the_api_refuses_fails_the_rollout_once_not_in_a_hot_loop() -> None:
    api = RefusingApi((APP_PATH, SPEC_APP))
    api.refused = {V1}
    rec = reconciler(api)
    rec.application(NS, APP)
    assert rec.rollout(NS, "express-server") is None  # no exception: the loop does not retry
    status = api.objects[ROLLOUT_PATH]["status"]
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (status["rollingState"], progressing["reason"]) == ("rolloutFailed", "ApiRefused")
    assert "422" in progressing["message"] and "metadata.labels" in progressing["message"]
    before = object_writes(api)
    rec.rollout(NS, "express-server")
    rec.rollout(NS, "express-server")
    assert object_writes(api) == before  # decided already on this spec: nothing tried again
    rec.application(NS, APP)
    flush(rec)
    assert ready_condition(api)["reason"] == "ApiRefused"
    assert events(api) == [("ApiRefused", progressing["message"]),  # said once, and once
                           ("ApiRefused", f"component express-server: {progressing['message']}")]


def test_only_the_newest_revisions_up_to_the_limit_are_kept_never_one_in_use() -> None:
    api, rec = rolled_out()
    rec.revision_history_limit = 3
    for version in range(2, 8):
        def bump(components: list[dict[str, Any]], version: int = version) -> None:
            components[0]["externalRevision"] = f"express-server-v{version}"
            components[0]["properties"]["image"] = f"stefanprodan/podinfo:5.0.{version}"
            components[0]["traits"][0]["properties"]["targetRevision"] = "express-server-v1"
        change_app(api, bump)
        rec.application(NS, APP)
    kept = sorted(p.rsplit("/", 1)[-1] for p in api.objects if p.startswith(REVISIONS + "/"))
    # v1 is rolled (the targetRevision), v7 is the spec's: both kept, and the newest other.
    assert kept == ["express-server-v1", "express-server-v6", "express-server-v7"]


def test_a_foreign_deployment_of_the_same_labels_is_invisible_to_the_rollout() -> None:
    foreign = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "express-server-v0", "namespace": NS,
                            "labels": {"app.oam.dev/component": "express-server",
                                       "app.oam.dev/name": APP}},
               "spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 3}}
    api = FakeApi((APP_PATH, copy.deepcopy(SPEC_APP)),
                  (f"{DEPLOYMENTS}/express-server-v0", foreign))
    rec = reconciler(api)
    rec.application(NS, APP)
    settle(api, rec)
    assert api.objects[f"{DEPLOYMENTS}/express-server-v0"]["spec"] == {"replicas": 3}
    assert api.objects[ROLLOUT_PATH]["status"]["lastSourceRevision"] is None


def test_a_rollouts_delete_rereads_the_application_and_spares_a_component_gone_plain() -> None:
    # A decision made on a read from before the trait was removed reaches its delete only
    # after the Application changed: the workload stays (the Application pass decides).
    api, rec = rolled_out()
    stale_read = parsed(api.objects[APP_PATH])
    change_app(api, without_trait)
    api.writes.clear()
    rec._delete_workload(stale_read, "express-server", DEPLOYMENT_RESOURCE, "express-server-v1")
    assert (api.writes, V1 in api.objects) == ([], True)
    # With the trait still there, the very object read is deleted, by its UID.
    api, rec = rolled_out()
    rec._delete_workload(parsed(api.objects[APP_PATH]), "express-server", DEPLOYMENT_RESOURCE,
                         "express-server-v1")
    assert ("DELETE", V1, {"uid": "uid-express-server-v1"}) in api.writes
