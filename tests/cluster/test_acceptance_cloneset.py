"""Acceptance: the spec's closing promise for cloneset, rolled on the local control plane.

The spec shows a cloneset first deploy and upgrade, then says scaling and rollback work
"exactly as for webservice/worker". This file holds that promise to account: rollback
through targetRevision, scale out 5->7 in batches 1+1 and scale in 7->3 in batches 1+3,
each read through the spec's kubectl views (Rollout, CloneSet by label, ControllerRevisions,
app, the image), while Ready pods are sampled for the targetSize -/+ batch invariant.
It must not restate the webservice scenario (tests/cluster/test_rollout_spec.py has it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures import apps
from tests.fixtures.controller import ControllerProcess, ReadySampler
from tests.fixtures.polling import eventually
from tests.fixtures.views import (
    SUCCEED,
    Table,
    app_row,
    cloneset_row,
    revisions,
    rollout_row,
    view,
)
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

APP = "rollout-trait-test-cloneset"
COMPONENT = "cloneset-server"
OWNER = f"application.core.oam.dev/{APP}"


def with_plan(size: int, batches: list[int], target: str) -> str:
    """The spec's cloneset upgrade with another plan, pinned to ``target``."""
    app = apps.spec_application(apps.CLONESET_UPGRADE)
    app["spec"]["components"][0]["traits"][0]["properties"] = apps.plan(
        size, *batches, targetRevision=target)
    return json.dumps(app)


BOTH = revisions(("cloneset-server-v1", 1), ("cloneset-server-v2", 2), owner=OWNER)

# (step, YAML, sampled for the invariant, size, image the CloneSet must run)
STEPS = [
    ("first deploy", apps.spec_text(apps.CLONESET_FIRST_DEPLOY), False, 5, apps.V1_IMAGE),
    ("upgrade to v2", apps.spec_text(apps.CLONESET_UPGRADE), True, 5, apps.V2_IMAGE),
    ("roll back to v1", with_plan(5, [2, 3], "cloneset-server-v1"), True, 5, apps.V1_IMAGE),
    ("scale out 5->7", with_plan(7, [1, 1], "cloneset-server-v1"), False, 7, apps.V1_IMAGE),
    ("scale in 7->3", with_plan(3, [1, 3], "cloneset-server-v1"), False, 3, apps.V1_IMAGE),
]


def test_a_cloneset_rolls_back_and_scales_in_batches_like_a_webservice(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server  # installed: every apply goes through admission

    def views() -> dict[str, Table]:
        image = kubectl("get", "cloneset", COMPONENT, "-n", namespace, "--ignore-not-found",
                        "-o=jsonpath={.spec.template.spec.containers[0].image}").stdout
        pod_images = kubectl("get", "pods", "-n", namespace, "-l",
                             f"app.oam.dev/component={COMPONENT}",
                             "-o=jsonpath={.items[*].spec.containers[0].image}").stdout
        return {
            "app": view(kubectl, namespace, "app", APP),
            "revisions": view(kubectl, namespace, "controllerRevision", "-l",
                              f"controller.oam.dev/component={COMPONENT}"),
            "rollout": view(kubectl, namespace, "rollout", COMPONENT),
            "cloneset": view(kubectl, namespace, "cloneset", "-l",
                             f"app.oam.dev/component={COMPONENT}"),
            "image": [{"image": image}],
            "pod images": [{"images": " ".join(sorted(set(pod_images.split())))}],
        }

    with ReadySampler(cluster.kubeconfig, namespace, COMPONENT) as sampler:
        for step, yaml_text, sampled, size, image in STEPS:
            sampler.active = sampled
            kubectl("apply", "-n", namespace, "-f", "-", input=yaml_text)
            expected = {
                "app": app_row(APP, COMPONENT, "cloneset"),
                "revisions": BOTH if step != "first deploy" else revisions(
                    ("cloneset-server-v1", 1), owner=OWNER),
                "rollout": rollout_row(size, size, size, *SUCCEED, name=COMPONENT),
                "cloneset": cloneset_row(COMPONENT, size),
                "image": [{"image": image}],
                "pod images": [{"images": image}],
            }
            eventually(views, equals=expected, timeout=90, what=f"step {step}",
                       context=controller_process.tail)
        sampler.active = False
    assert sampler.samples, "the sampler saw no pod during the upgrade and the rollback"
    assert sampler.violations() == []
