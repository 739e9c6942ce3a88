"""The controller process serves /healthz, /readyz and /metrics on loopback: the leader
is ready once its watches synced and counts its reconciles; a follower waiting for the
Lease is a ready stand-by that reports it does not lead."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.apps import api_application, manifest
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually
from tests.fixtures.views import wait_settled
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_the_leader_is_live_ready_and_counts_what_it_reconciles(
    controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [3, 3])))
    wait_settled(kubectl, namespace, 1)
    base = controller_process.health_url
    assert fetch(f"{base}/healthz") == (200, "ok (leader)\n")
    assert fetch(f"{base}/readyz") == (200, "ok (leader)\n")
    status, text = fetch(f"{base}/metrics")
    values = metric_values(text)
    assert status == 200
    assert values[("oam_rollout_controller_leader", ())] == 1.0
    assert values[("oam_rollout_controller_reconcile_total",
                   (("kind", "rollout"), ("result", "success")))] > 0
    assert values[("oam_rollout_controller_rollouts", (("rolling_state", "rolloutSucceed"),))] >= 1
    assert values[("oam_rollout_controller_batch_handoff_seconds_count", ())] >= 1
    assert ("oam_rollout_controller_workqueue_depth", ()) in values


def test_a_follower_waiting_for_the_lease_is_ready_and_does_not_lead(
    cluster: LocalCluster, controller_process: ControllerProcess,
) -> None:
    del controller_process  # leads the session Lease, so the second replica must wait
    follower = ControllerProcess(cluster.kubeconfig, "health-follower")
    try:
        follower.spawn()
        # The first 200 answer: the process may not listen yet, or still be starting.
        ready = eventually(lambda: fetch(f"{follower.health_url}/readyz"),
                           until=lambda answer: answer[0] == 200, timeout=20, interval=0.1,
                           ignoring=(urllib.error.URLError, ConnectionError),
                           what="the follower's /readyz")
        assert ready == (200, "ok (follower)\n")
        assert fetch(f"{follower.health_url}/healthz") == (200, "ok (follower)\n")
        values = metric_values(fetch(f"{follower.health_url}/metrics")[1])
        assert values[("oam_rollout_controller_leader", ())] == 0.0
        assert not follower.leading()
    finally:
        follower.cleanup()
