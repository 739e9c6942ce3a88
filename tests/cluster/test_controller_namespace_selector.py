"""Acceptance: `oam-rollout controller --namespace-selector` acts only in labelled namespaces.

The supported split beside KubeVela: one release whose webhook and controller select the
same namespace label. Here the session controller steps aside (it watches every
namespace) and a controller of our own runs with `--namespace-selector
<label>=<this test's value>` on a Lease of its own; its two namespaces are ones no
admission webhook of the session reviews, so only the controller acts on what is stored.
An Application in the labelled namespace is rolled out; the same Application in the
unlabelled namespace is untouched (no revision, Rollout, workload or status); labelling
that namespace gets it rolled out; a namespace that loses the label is left alone from
then on (a new revision is not acted on, and nothing is deleted). The session controller
is restarted whatever happens.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.fixtures.apps import api_application, manifest
from tests.fixtures.cluster import BYPASS_LABELS, fresh_namespace, namespace_name
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.views import rollout_state, wait_settled
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

SELECT_LABEL = "oam-rollout.dev/namespace-selector-test"
LEASE = "namespace-selector-test"
# Ample time for a stray reconcile to land, were the controller to act where it must not.
QUIET_SECONDS = 3.0


def objects_in(kubectl: Any, namespace: str) -> list[str]:
    listing = json.loads(kubectl("get", "controllerrevision,rollout,deploy,cloneset", "-n",
                                 namespace, "-o", "json").stdout)
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in listing["items"])


def app_status(kubectl: Any, namespace: str) -> Any:
    stored = json.loads(kubectl("get", "app", "resilient", "-n", namespace, "-o",
                                "json").stdout)
    return stored.get("status")


@pytest.fixture
def selected(cluster: LocalCluster, api_client: Any, kubectl: Any,
             controller_process: Any) -> Iterator[tuple[str, str, str, ControllerProcess]]:
    """(labelled namespace, unlabelled namespace, the label's value, our own controller,
    which selects ``SELECT_LABEL=value``); everything removed and the session controller
    back afterwards."""
    value = secrets.token_hex(4)
    controller = ControllerProcess(cluster.kubeconfig, "namespace-selector", lease=LEASE,
                                   extra_args=("--namespace-selector",
                                               f"{SELECT_LABEL}={value}"))
    controller_process.stop()
    try:
        with ExitStack() as stack:
            labelled = stack.enter_context(fresh_namespace(
                api_client, namespace_name("ns-selector-on"),
                {**BYPASS_LABELS, SELECT_LABEL: value}))
            unlabelled = stack.enter_context(fresh_namespace(
                api_client, namespace_name("ns-selector-off"), dict(BYPASS_LABELS)))
            controller.start()
            yield labelled, unlabelled, value, controller
    finally:
        controller.cleanup()
        controller_process.start()


def test_only_applications_in_selected_namespaces_are_rolled_out(
    kubectl: Any, selected: tuple[str, str, str, ControllerProcess],
) -> None:
    labelled, unlabelled, value, controller = selected
    for ns in (labelled, unlabelled):
        kubectl("apply", "-n", ns, "-f", "-", input=manifest(api_application(1, [3, 3])))
    wait_settled(kubectl, labelled, 1)
    time.sleep(QUIET_SECONDS)
    assert objects_in(kubectl, labelled) == ["ControllerRevision/api-v1",
                                             "Deployment/api-v1", "Rollout/api"]
    assert (objects_in(kubectl, unlabelled), app_status(kubectl, unlabelled)) == ([], None)

    # Labelled later: picked up, and rolled out like the first.
    kubectl("label", "namespace", unlabelled, f"{SELECT_LABEL}={value}")
    wait_settled(kubectl, unlabelled, 1)
    assert objects_in(kubectl, unlabelled) == ["ControllerRevision/api-v1",
                                               "Deployment/api-v1", "Rollout/api"]

    # The label removed: left alone from then on, and nothing deleted.
    kubectl("label", "namespace", labelled, f"{SELECT_LABEL}-")
    time.sleep(QUIET_SECONDS)  # the namespace watch's DELETED reaches the controller
    kubectl("apply", "-n", labelled, "-f", "-", input=manifest(api_application(2, [3, 3])))
    time.sleep(QUIET_SECONDS)
    assert (objects_in(kubectl, labelled), rollout_state(kubectl, labelled)) == (
        ["ControllerRevision/api-v1", "Deployment/api-v1", "Rollout/api"],
        "rolloutSucceed/api-v1")
    log = controller.log()
    assert ("Traceback" in log, '"level": "error"' in log, '"level":"error"' in log) == (
        False, False, False), controller.tail()
