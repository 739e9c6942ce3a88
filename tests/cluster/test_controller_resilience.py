"""The controller survives SIGKILL mid-upgrade, and only the Lease holder acts.

Both tests use the session controller process (restarted by PID) and the local control
plane; Ready pods are sampled throughout for the targetSize -/+ batch invariant.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from tests.cluster.test_rollout_spec import deploys, parse_table, rollout_row, without_age
from tests.fixtures.controller import ControllerProcess, ReadySampler
from webhook.testing.cluster import LocalCluster

pytestmark = pytest.mark.cluster

SIZE = 6


def application(version: int, batches: list[int]) -> str:
    lines = "\n".join(f"              - replicas: {n}" for n in batches)
    return f"""\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: resilient
spec:
  components:
    - name: api
      type: webservice
      externalRevision: api-v{version}
      properties:
        image: stefanprodan/podinfo:5.0.{version}
      traits:
        - type: rollout
          properties:
            targetSize: {SIZE}
            rolloutBatches:
{lines}
"""


def rollout_state(kubectl: Any, namespace: str) -> str:
    out = kubectl("get", "rollout", "api", "-n", namespace, "-o",
                  "jsonpath={.status.rollingState}/{.status.lastTargetRevision}", check=False)
    return str(out.stdout)


def wait_settled(kubectl: Any, namespace: str, version: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rollout_state(kubectl, namespace) == f"rolloutSucceed/api-v{version}":
            return
        time.sleep(0.2)
    raise TimeoutError(f"api-v{version} not rolled out: {rollout_state(kubectl, namespace)}")


def test_a_controller_killed_at_ten_random_moments_of_an_upgrade_still_finishes_it(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server  # installed: every apply goes through admission
    batches = [1] * SIZE
    kubectl("apply", "-n", namespace, "-f", "-", input=application(1, batches))
    wait_settled(kubectl, namespace, 1)
    rng = random.Random(20261126)
    version, kills_mid_rollout = 1, 0
    with ReadySampler(cluster.kubeconfig, namespace, "api") as sampler:
        sampler.active = True
        while kills_mid_rollout < 10:
            if rollout_state(kubectl, namespace).startswith("rolloutSucceed/"):
                version += 1  # the last upgrade finished between kills: start the next one
                kubectl("apply", "-n", namespace, "-f", "-", input=application(version, batches))
            time.sleep(rng.uniform(0.05, 0.5))
            rolling = not rollout_state(kubectl, namespace).startswith("rolloutSucceed/")
            controller_process.kill()
            kills_mid_rollout += rolling
            controller_process.start()
        wait_settled(kubectl, namespace, version)
        time.sleep(0.5)  # let the last deletions land before reading the views
        sampler.active = False
    seen_deploys = without_age(parse_table(kubectl(
        "get", "deploy", "-n", namespace, "-l", "app.oam.dev/component=api").stdout))
    seen_rollout = without_age(parse_table(kubectl("get", "rollout", "api", "-n",
                                                   namespace).stdout))
    assert seen_deploys == deploys((f"api-v{version}", SIZE))
    assert seen_rollout == rollout_row(SIZE, SIZE, SIZE, "batchReady", "rolloutSucceed",
                                       name="api")
    assert version >= 2
    assert sampler.samples
    assert sampler.violations() == []


def test_only_the_lease_holder_acts_and_a_killed_leader_hands_over_within_the_lease(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    standby = ControllerProcess(cluster.kubeconfig, "standby")
    try:
        standby.spawn()
        kubectl("apply", "-n", namespace, "-f", "-", input=application(1, [3, 3]))
        wait_settled(kubectl, namespace, 1)
        assert not standby.leading()
        marker = f"rollout {namespace}/api:"  # the log line of a rollout reconcile
        assert marker not in standby.log()  # it never reconciled anything
        killed_at = time.monotonic()
        controller_process.kill()
        standby.wait_leading(timeout=15)
        handover = time.monotonic() - killed_at
        # Lease 3 s, retries every 0.5 s (+20% jitter), and the standby's own clock start.
        assert handover <= 3.0 + 0.6 + 1.5, f"hand-over took {handover:.1f}s"
        kubectl("apply", "-n", namespace, "-f", "-", input=application(2, [3, 3]))
        wait_settled(kubectl, namespace, 2)
        assert marker in standby.log()
    finally:
        standby.cleanup()  # SIGTERM releases the lease: the session controller takes it at once
        controller_process.start()
