"""Read-decide-act against an in-memory API: the writes each reconcile makes, in order."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.controller.reconcile import ANNOTATION_ROLLED_BY, Reconciler
from webhook.kube.client import ApiError
from webhook.render.renderer import Renderer

NS = "ns"
APP_PATH = f"/apis/core.oam.dev/v1beta1/namespaces/{NS}/applications/rollout-trait-test"
ROLLOUT_PATH = f"/apis/standard.oam.dev/v1alpha1/namespaces/{NS}/rollouts/express-server"
# The spec's first Application (the golden folder's), as the API would return it.
SPEC_APP = yaml.safe_load(
    (Path(__file__).parents[1] / "golden" / "01-first-deploy" / "application.yaml").read_text()
)
SPEC_APP["metadata"].update(namespace=NS, uid="app-uid", generation=1, resourceVersion="10")


def terms(selector: str | None) -> list[str]:
    """Split a label selector at the commas outside parentheses."""
    out, depth, current = [], 0, ""
    for ch in selector or "":
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    return [*out, current] if current else out


def matches(obj: dict[str, Any], selector: str | None) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in terms(selector):
        if " in (" in term:
            key, values = term.split(" in (")
            if labels.get(key) not in values.rstrip(")").split(","):
                return False
        elif "=" in term:
            key, value = term.split("=")
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


class FakeApi:
    """Objects by path; every write is recorded as (method, path, body)."""

    def __init__(self, *objects: tuple[str, dict[str, Any]]) -> None:
        self.objects = {path: copy.deepcopy(obj) for path, obj in objects}
        self.writes: list[tuple[str, str, Any]] = []
        self.version = 100
        self.conflict_on: str | None = None

    def _store(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.objects[path] = obj
        return copy.deepcopy(obj)

    def get(self, path: str) -> dict[str, Any] | None:
        obj = self.objects.get(path)
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, path: str, selector: str | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for p, o in self.objects.items()
                if p.rsplit("/", 1)[0] == path and matches(o, selector)]

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("POST", path, copy.deepcopy(body)))
        name = body["metadata"].get("name") or f"generated-{len(self.writes)}"
        return self._store(f"{path}/{name}", copy.deepcopy(body))

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("PATCH", path, copy.deepcopy(body)))
        if self.conflict_on == path:
            raise ApiError("PATCH", path, 409, "the object has been modified")
        base = path.removesuffix("/status")
        obj = copy.deepcopy(self.objects[base])
        for key, value in body.items():
            if key == "metadata":
                continue
            obj[key] = {**(obj.get(key) or {}), **value}
        return self._store(base, obj)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        kind = {"Rollout": "/apis/standard.oam.dev/v1alpha1/namespaces/{}/rollouts",
                "Deployment": "/apis/apps/v1/namespaces/{}/deployments",
                "Service": "/api/v1/namespaces/{}/services"}[obj["kind"]]
        path = f"{kind.format(meta['namespace'])}/{meta['name']}"
        self.writes.append(("APPLY", path, copy.deepcopy(obj)))
        return self._store(path, copy.deepcopy(obj))

    def delete(self, path: str) -> bool:
        self.writes.append(("DELETE", path, None))
        return self.objects.pop(path, None) is not None


def reconciler(api: FakeApi) -> Reconciler:
    return Reconciler(api, Renderer(), now=lambda: "2026-11-26T00:00:00Z")  # type: ignore[arg-type]


def flush(rec: Reconciler) -> None:
    assert rec.events is not None
    rec.events.close()


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
    reasons = [body["reason"] for _, _, body in api.writes[2:]]
    assert reasons == ["VerifyingSpec", "Initializing", "WorkloadCreated"]


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
