"""Acceptance: `oam-rollout controller --namespace NS` acts in NS only.

The session controller steps aside (SIGTERM releases its Lease) while a controller limited
to one namespace runs; an Application in a second namespace must get no ControllerRevision,
no Rollout and no workload from it, while the one in its own namespace rolls out. The
session controller is restarted whatever happens. It must not test rollout behaviour
beyond that scope (test_rollout_spec.py does).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.apps import api_application, manifest
from tests.fixtures.cluster import TEST_LABELS, fresh_namespace, namespace_name
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.views import wait_settled
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster


@pytest.fixture
def other_namespace(request: pytest.FixtureRequest, api_client: Any) -> Iterator[str]:
    """A second fresh namespace, deleted after the test."""
    name = namespace_name(f"other-{request.node.name}")
    with fresh_namespace(api_client, name, TEST_LABELS):
        yield name


def owned_objects(kubectl: Any, namespace: str) -> list[str]:
    listing = json.loads(kubectl("get", "controllerrevision,rollout,deploy", "-n", namespace,
                                 "-o", "json").stdout)
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in listing["items"])


def test_a_controller_limited_to_a_namespace_leaves_other_namespaces_alone(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str, other_namespace: str,
) -> None:
    del webhook_server  # installed: both applies go through admission
    controller_process.stop()
    scoped = ControllerProcess(cluster.kubeconfig, "scoped", lease="acceptance-scoped",
                               extra_args=("--namespace", namespace))
    try:
        scoped.start()
        app = manifest(api_application(1, [3, 3]))
        kubectl("apply", "-n", other_namespace, "-f", "-", input=app)
        kubectl("apply", "-n", namespace, "-f", "-", input=app)
        wait_settled(kubectl, namespace, 1)
        time.sleep(2)  # ample time for a stray reconcile of the other namespace to land
        mine, theirs = owned_objects(kubectl, namespace), owned_objects(kubectl, other_namespace)
    finally:
        scoped.cleanup()
        controller_process.start()
    assert (mine, theirs) == (
        ["ControllerRevision/api-v1", "Deployment/api-v1", "Rollout/api"],
        [],
    )
