"""The spec's whole scenario on the local control plane, webhook and controller running.

Every step applies the spec's YAML with kubectl, exactly as the spec prints it, comments
included (tests/golden/<step>/application.yaml holds that text), and then compares the
spec's kubectl views (rollout, Deployments or CloneSet by label, ControllerRevisions, app)
column by column, AGE aside. During the upgrades a watcher samples Ready pods of old + new
revisions and checks they stay within targetSize -/+ the current batch.
"""

from __future__ import annotations

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
    deploys,
    revisions,
    rollout_row,
    view,
)
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

APP = "rollout-trait-test"
BOTH = revisions(("express-server-v1", 1), ("express-server-v2", 2))

# (golden step, sampled for the invariant, rollout view, deployments view, revisions view)
SPEC_STEPS = [
    pytest.param(apps.FIRST_DEPLOY, False, rollout_row(5, 5, 5, *SUCCEED),
                 deploys(("express-server-v1", 5)), revisions(("express-server-v1", 1)),
                 id="first deploy"),
    pytest.param(apps.UPGRADE_PARTITION, True,
                 rollout_row(5, 2, 2, "batchReady", "rollingInBatches"),
                 deploys(("express-server-v1", 3), ("express-server-v2", 2)), BOTH,
                 id="upgrade the first batch only"),
    pytest.param(apps.UPGRADE_COMPLETE, True, rollout_row(5, 5, 5, *SUCCEED),
                 deploys(("express-server-v2", 5)), BOTH, id="remove the partition"),
    pytest.param(apps.ROLLBACK, True, rollout_row(5, 5, 5, *SUCCEED),
                 deploys(("express-server-v1", 5)), BOTH, id="roll back to v1"),
    pytest.param(apps.SCALE_OUT, False, rollout_row(7, 7, 7, *SUCCEED),
                 deploys(("express-server-v1", 7)), BOTH, id="scale up to 7"),
    pytest.param(apps.SCALE_IN, False, rollout_row(3, 3, 3, *SUCCEED),
                 deploys(("express-server-v1", 3)), BOTH, id="scale down to 3"),
]


def test_the_spec_scenario_reads_as_the_spec_prints_it(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server  # installed: every apply of the scenario goes through admission
    component = "express-server"

    def views() -> dict[str, Table]:
        return {
            "rollout": view(kubectl, namespace, "rollout", component),
            "deploy": view(kubectl, namespace, "deploy", "-l",
                           f"app.oam.dev/component={component}"),
            "revisions": view(kubectl, namespace, "controllerRevision", "-l",
                              f"controller.oam.dev/component={component}"),
            "app": view(kubectl, namespace, "app", APP),
        }

    with ReadySampler(cluster.kubeconfig, namespace, component) as sampler:
        for step in SPEC_STEPS:
            golden, sampled, rollout, deployments, revs = step.values
            sampler.active = bool(sampled)
            kubectl("apply", "-n", namespace, "-f", "-", input=apps.spec_text(str(golden)))
            expected = {"rollout": rollout, "deploy": deployments, "revisions": revs,
                        "app": app_row(APP, component, "webservice")}
            eventually(views, equals=expected, timeout=60, what=f"step {step.id}",
                       context=controller_process.tail)
        sampler.active = False
        assert sampler.samples, "the sampler saw no pod during the upgrades"
        assert sampler.violations() == []


def test_the_spec_cloneset_is_rolled_in_place_under_the_component_name(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    app, component = "rollout-trait-test-cloneset", "cloneset-server"
    owner = f"application.core.oam.dev/{app}"

    def views() -> dict[str, Table]:
        return {
            "app": view(kubectl, namespace, "app", app),
            "revisions": view(kubectl, namespace, "controllerRevision", "-l",
                              f"controller.oam.dev/component={component}"),
            "rollout": view(kubectl, namespace, "rollout", component),
            "cloneset": view(kubectl, namespace, "cloneset", "-l",
                             f"app.oam.dev/component={component}"),
        }

    def image() -> str:
        return str(kubectl("get", "cloneset", component, "-n", namespace,
                           "-o=jsonpath={.spec.template.spec.containers[0].image}").stdout)

    for golden, revs, want_image in [
        (apps.CLONESET_FIRST_DEPLOY, revisions(("cloneset-server-v1", 1), owner=owner),
         apps.V1_IMAGE),
        (apps.CLONESET_UPGRADE, revisions(("cloneset-server-v1", 1), ("cloneset-server-v2", 2),
                                          owner=owner), apps.V2_IMAGE),
    ]:
        kubectl("apply", "-n", namespace, "-f", "-", input=apps.spec_text(golden))
        expected = {"app": app_row(app, component, "cloneset"), "revisions": revs,
                    "rollout": rollout_row(5, 5, 5, *SUCCEED, name=component),
                    "cloneset": cloneset_row(component, 5)}
        eventually(views, equals=expected, timeout=60, what=golden,
                   context=controller_process.tail)
        assert image() == want_image
