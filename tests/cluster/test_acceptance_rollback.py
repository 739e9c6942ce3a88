"""Acceptance: a rollback runs the OLD revision's spec, rebuilt from its ControllerRevision.

The spec's rollback keeps `externalRevision: express-server-v2` and image 5.0.2 in the
Application and only points `targetRevision` at express-server-v1, whose Deployment was
deleted when v2 finished. The spec scenario test compares kubectl's columns, which cannot
tell which image the recreated Deployment runs; this file checks the Deployment's and the
pods' images after each step, through the scale steps that follow. It must not re-check
the columns (tests/cluster/test_rollout_spec.py does).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures import apps
from tests.fixtures.apps import V1_IMAGE, V2_IMAGE
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually

pytestmark = pytest.mark.cluster

Running = tuple[list[tuple[str, str, int]], list[tuple[str, int]], str]

# (step, golden step, what runs once it settles: ([(Deployment, image, replicas)], [(pod image,
# count)], rollingState/lastTargetRevision of the Rollout))
STEPS: list[tuple[str, str, Running]] = [
    ("first deploy", apps.FIRST_DEPLOY,
     ([("express-server-v1", V1_IMAGE, 5)], [(V1_IMAGE, 5)], "rolloutSucceed/express-server-v1")),
    ("upgrade to v2", apps.UPGRADE_COMPLETE,
     ([("express-server-v2", V2_IMAGE, 5)], [(V2_IMAGE, 5)], "rolloutSucceed/express-server-v2")),
    ("roll back to v1", apps.ROLLBACK,
     ([("express-server-v1", V1_IMAGE, 5)], [(V1_IMAGE, 5)], "rolloutSucceed/express-server-v1")),
    ("scale up to 7", apps.SCALE_OUT,
     ([("express-server-v1", V1_IMAGE, 7)], [(V1_IMAGE, 7)], "rolloutSucceed/express-server-v1")),
    ("scale down to 3", apps.SCALE_IN,
     ([("express-server-v1", V1_IMAGE, 3)], [(V1_IMAGE, 3)], "rolloutSucceed/express-server-v1")),
]  # fmt: skip


def running(kubectl: Any, namespace: str) -> Running:
    """Deployments (name, image, ready), Ready pods per image, and the Rollout's state."""
    selector = "app.oam.dev/component=express-server"

    def listing(kind: str) -> list[dict[str, Any]]:
        out = kubectl("get", kind, "-n", namespace, "-l", selector, "-o", "json").stdout
        return list(json.loads(out)["items"])

    deployments = sorted(
        (d["metadata"]["name"], d["spec"]["template"]["spec"]["containers"][0]["image"],
         (d.get("status") or {}).get("readyReplicas", 0))
        for d in listing("deploy")
    )
    ready: dict[str, int] = {}
    for pod in listing("pods"):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            image = pod["spec"]["containers"][0]["image"]
            ready[image] = ready.get(image, 0) + 1
    state = kubectl("get", "rollout", "express-server", "-n", namespace, "--ignore-not-found",
                    "-o", "jsonpath={.status.rollingState}/{.status.lastTargetRevision}").stdout
    return deployments, sorted(ready.items()), str(state)


def test_a_rollback_recreates_the_old_revisions_deployment_with_its_old_image(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server  # installed: every apply goes through admission
    for step, golden, expected in STEPS:
        kubectl("apply", "-n", namespace, "-f", "-", input=apps.spec_text(golden))
        eventually(lambda: running(kubectl, namespace), equals=expected, timeout=60,
                   what=f"step {step}", context=controller_process.tail)
