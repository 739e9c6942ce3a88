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

from tests.cluster.test_controller_resilience import application, wait_settled
from tests.fixtures.cluster import namespace_name, wait_for_default_service_account
from tests.fixtures.controller import ControllerProcess
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster


@pytest.fixture
def other_namespace(request: pytest.FixtureRequest, api_client: Any) -> Iterator[str]:
    """A second fresh namespace, deleted after the test."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    name = namespace_name(f"other-{request.node.name}")
    core.create_namespace({"metadata": {"name": name, "labels": {"oam-rollout.dev/test": "true"}}})
    try:
        wait_for_default_service_account(api_client, name)
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


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
        kubectl("apply", "-n", other_namespace, "-f", "-", input=application(1, [3, 3]))
        kubectl("apply", "-n", namespace, "-f", "-", input=application(1, [3, 3]))
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
