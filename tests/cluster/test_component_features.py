"""Percent batches, paused, scale to zero and back, scaler and the labels / annotations
traits on the local control plane, with the webhook and the controller running.

Each test applies Applications with kubectl (so admission judges them) and reads what the
controller made: the Rollout's spec and status, the Deployments' replicas as they changed
(tests.fixtures.recording), the pods the Deployment controller created from the template.
The upgrade that is paused half-way samples Ready pods throughout for the targetSize -/+
batch invariant.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.fixtures.apps import application, manifest
from tests.fixtures.controller import ControllerProcess, ReadySampler
from tests.fixtures.polling import eventually
from tests.fixtures.recording import ReplicaRecorder
from tests.fixtures.views import deploys, rollout_row, view
from webhook.cli.status import snapshot
from webhook.kube.client import connect
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

PERCENT = [{"replicas": "20%"}, {"replicas": "30%"}, {"replicas": "50%"}]


def app(name: str, component: str, version: int, rollout: dict[str, Any] | None,
        traits: list[dict[str, Any]] | None = None, **properties: Any) -> str:
    """Application ``name``: ``component`` at revision <component>-v<version> (image
    5.0.<version>), the rollout trait's ``rollout`` properties (None: none), more traits."""
    raw = application(name, component=component, external_revision=f"{component}-v{version}",
                      image=f"stefanprodan/podinfo:5.0.{version}", rollout=rollout,
                      properties=properties or None)
    comp = raw["spec"]["components"][0]
    comp["traits"] = [*comp.get("traits", []), *(traits or [])]
    return manifest(raw)


def rollout_of(kubectl: Any, namespace: str, component: str) -> dict[str, Any]:
    out = kubectl("get", "rollout", component, "-n", namespace, "-o", "json", check=False)
    loaded: dict[str, Any] = json.loads(out.stdout) if out.returncode == 0 else {}
    return loaded


def settled(kubectl: Any, namespace: str, component: str, revision: str, size: int) -> bool:
    status = rollout_of(kubectl, namespace, component).get("status") or {}
    return (status.get("rollingState"), status.get("lastTargetRevision"),
            status.get("rolloutTargetSize"), status.get("upgradedReadyReplicas")) == (
        "rolloutSucceed", revision, size, size)


def spec_batches(kubectl: Any, namespace: str, component: str) -> list[int]:
    plan = rollout_of(kubectl, namespace, component)["spec"]["rolloutPlan"]
    return [b["replicas"] for b in plan["rolloutBatches"]]


def test_percent_batches_roll_2_5_10_and_scale_10_to_20_by_12_15_20(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    with ReplicaRecorder(cluster.kubeconfig, namespace) as recorder:
        kubectl("apply", "-n", namespace, "-f", "-",
                input=app("percent", "pct", 1, {"targetSize": 10, "rolloutBatches": PERCENT}))
        eventually(lambda: settled(kubectl, namespace, "pct", "pct-v1", 10), timeout=90,
                   what="the first deploy at 10", context=controller_process.tail)
        assert spec_batches(kubectl, namespace, "pct") == [2, 3, 5]
        assert recorder.steps("pct-v1") == [0, 2, 5, 10]
        recorder.forget()
        kubectl("apply", "-n", namespace, "-f", "-",
                input=app("percent", "pct", 1, {"targetSize": 20, "rolloutBatches": PERCENT}))
        eventually(lambda: settled(kubectl, namespace, "pct", "pct-v1", 20), timeout=90,
                   what="the scale to 20", context=controller_process.tail)
        # Percentages of the size change (10), as the Rollout carries them.
        assert spec_batches(kubectl, namespace, "pct") == [2, 3, 5]
        assert recorder.steps("pct-v1") == [10, 12, 15, 20]
    assert view(kubectl, namespace, "rollout", "pct") == rollout_row(
        20, 20, 20, "batchReady", "rolloutSucceed", name="pct")


def test_paused_holds_an_upgrade_mid_way_and_releases_it_with_the_ready_pods_in_bounds(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    batches = [{"replicas": 2}, {"replicas": 2}, {"replicas": 2}]

    def rollout(**more: Any) -> dict[str, Any]:
        return {"targetSize": 6, "rolloutBatches": batches, **more}

    kubectl("apply", "-n", namespace, "-f", "-", input=app("hold", "held", 1, rollout()))
    eventually(lambda: settled(kubectl, namespace, "held", "held-v1", 6), timeout=90,
               what="v1 at 6", context=controller_process.tail)
    with ReadySampler(cluster.kubeconfig, namespace, "held") as sampler, \
            ReplicaRecorder(cluster.kubeconfig, namespace) as recorder:
        sampler.active = True
        # The upgrade stops after its first batch, then is paused and the partition lifted.
        kubectl("apply", "-n", namespace, "-f", "-",
                input=app("hold", "held", 2, rollout(batchPartition=0)))
        eventually(lambda: view(kubectl, namespace, "rollout", "held"),
                   equals=rollout_row(6, 2, 2, "batchReady", "rollingInBatches", name="held"),
                   timeout=60, what="batch 0 of v2", context=controller_process.tail)
        kubectl("apply", "-n", namespace, "-f", "-",
                input=app("hold", "held", 2, rollout(paused=True)))

        def paused() -> tuple[str, str]:
            conds = (rollout_of(kubectl, namespace, "held").get("status") or {}).get(
                "conditions") or []
            cond = next((c for c in conds if c.get("type") == "Paused"), {})
            return cond.get("status", ""), cond.get("message", "")

        eventually(paused, equals=("True", "paused: holding before batch 1"), timeout=30,
                   what="the Paused condition", context=controller_process.tail)
        report = snapshot(connect(str(cluster.kubeconfig)), namespace, "hold") or ""
        assert "    paused: holding before batch 1 (set paused: false to go on)" in \
            report.splitlines()
        held = {"held-v1": recorder.steps("held-v1"), "held-v2": recorder.steps("held-v2")}
        time.sleep(3)  # decisions go on while paused: none of them touches a workload
        assert {"held-v1": recorder.steps("held-v1"),
                "held-v2": recorder.steps("held-v2")} == held
        assert view(kubectl, namespace, "deploy", "-l", "app.oam.dev/component=held") == \
            deploys(("held-v1", 4), ("held-v2", 2))
        kubectl("apply", "-n", namespace, "-f", "-",
                input=app("hold", "held", 2, rollout(paused=False)))
        eventually(lambda: settled(kubectl, namespace, "held", "held-v2", 6), timeout=90,
                   what="v2 at 6 once released", context=controller_process.tail)
        assert paused()[0] == "False"
        sampler.active = False
    assert sampler.samples
    assert sampler.violations() == []


def test_target_size_zero_scales_to_zero_and_back(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    # A first deploy at 0 (batches of counts >= 1 cannot add up to 0: a percentage can),
    # then up, down to zero, and back.
    for size, batches in [(0, [{"replicas": "100%"}]),
                          (3, [{"replicas": 1}, {"replicas": 2}]),
                          (0, [{"replicas": 3}]),
                          (3, [{"replicas": "100%"}])]:
        kubectl("apply", "-n", namespace, "-f", "-",
                input=app("zero", "zero", 1, {"targetSize": size, "rolloutBatches": batches}))

        def at_size(size: int = size) -> bool:
            return settled(kubectl, namespace, "zero", "zero-v1", size)

        eventually(at_size, timeout=90, what=f"zero-v1 at {size}",
                   context=controller_process.tail)
        assert view(kubectl, namespace, "deploy", "-l", "app.oam.dev/component=zero") == \
            deploys(("zero-v1", size))


def test_scaler_sizes_a_plain_webservice_and_labels_and_annotations_reach_its_pods(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    traits = [{"type": "scaler", "properties": {"replicas": 3}},
              {"type": "labels", "properties": {"team": "shop"}},
              {"type": "annotations", "properties": {"example.com/owner": "shop-team"}}]
    kubectl("apply", "-n", namespace, "-f", "-",
            input=app("plain", "web", 1, None, traits, labels={"tier": "front"}))
    eventually(lambda: view(kubectl, namespace, "deploy", "-l", "app.oam.dev/component=web"),
               equals=deploys(("web-v1", 3)), timeout=60, what="web-v1 at 3",
               context=controller_process.tail)
    deployment = json.loads(kubectl("get", "deploy", "web-v1", "-n", namespace, "-o",
                                    "json").stdout)
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l",
                              "app.oam.dev/component=web", "-o", "json").stdout)["items"]
    meta = deployment["metadata"]
    assert (meta["labels"]["team"], meta["annotations"]["example.com/owner"]) == (
        "shop", "shop-team")
    assert len(pods) == 3
    assert {(p["metadata"]["labels"]["team"], p["metadata"]["labels"]["tier"],
             p["metadata"]["annotations"]["example.com/owner"]) for p in pods} == {
        ("shop", "front", "shop-team")}
    # A new label is a new revision of the pods: rolled like any change of the template.
    traits[1] = {"type": "labels", "properties": {"team": "checkout"}}
    kubectl("apply", "-n", namespace, "-f", "-",
            input=app("plain", "web", 2, None, traits, labels={"tier": "front"}))
    eventually(lambda: view(kubectl, namespace, "deploy", "-l", "app.oam.dev/component=web"),
               equals=deploys(("web-v2", 3)), timeout=60, what="web-v2 at 3",
               context=controller_process.tail)
