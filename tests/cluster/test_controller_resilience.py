"""The controller survives SIGKILL mid-upgrade, and only the Lease holder writes.

Both tests use the session controller process (restarted by PID) and the local control
plane; Ready pods are sampled throughout for the targetSize -/+ batch invariant.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fixtures.apps import api_application, manifest
from tests.fixtures.controller import SESSION_LEASE, ControllerProcess, ReadySampler
from tests.fixtures.polling import eventually
from tests.fixtures.views import (
    deploys,
    parse_table,
    rollout_row,
    rollout_state,
    wait_settled,
    without_age,
)
from webhook.controller.reconcile import ANNOTATION_APPLIED_BY
from webhook.kube.client import (
    APPLICATIONS,
    DEPLOYMENTS,
    EVENTS,
    FIELD_MANAGER,
    LEASES,
    ROLLOUTS,
    KubeApi,
    connect,
    writer_identity,
)
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

SIZE = 6  # api_application's replicas


def test_a_controller_killed_at_ten_random_moments_of_an_upgrade_still_finishes_it(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server  # installed: every apply goes through admission
    batches = [1] * SIZE
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, batches)))
    wait_settled(kubectl, namespace, 1)
    rng = random.Random(20261126)
    version, kills_mid_rollout = 1, 0
    with ReadySampler(cluster.kubeconfig, namespace, "api") as sampler:
        sampler.active = True
        while kills_mid_rollout < 10:
            if rollout_state(kubectl, namespace).startswith("rolloutSucceed/"):
                version += 1  # the last upgrade finished between kills: start the next one
                upgrade = manifest(api_application(version, batches))
                kubectl("apply", "-n", namespace, "-f", "-", input=upgrade)
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


# The session controller's lease settings (tests/fixtures/controller.py LEASE_ARGS).
LEASE_SECONDS, RETRY_SECONDS = 3.0, 0.5


def api_of(cluster: LocalCluster) -> KubeApi:
    return connect(str(cluster.kubeconfig))


def our_events(api: KubeApi, namespace: str) -> dict[str, str]:
    """Event name -> reportingInstance, for every Event the controller posted."""
    items = api.list(EVENTS.path(namespace))
    return {e["metadata"]["name"]: str(e.get("reportingInstance", ""))
            for e in items if e.get("reportingComponent") == FIELD_MANAGER}


def writers(obj: Mapping[str, Any]) -> dict[str, datetime]:
    """Replica identity -> time (to the second) of its last plain write, from managedFields."""
    out = {}
    for entry in obj["metadata"].get("managedFields") or []:
        identity = writer_identity(str(entry.get("manager", "")))
        if identity is not None:
            out[identity] = datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=UTC)
    return out


def applied_by(obj: Mapping[str, Any]) -> str | None:
    return (obj["metadata"].get("annotations") or {}).get(ANNOTATION_APPLIED_BY)


def written(api: KubeApi, namespace: str, revision: str) -> dict[str, Mapping[str, Any]]:
    """The objects the controller writes for the app: Application (status), Rollout
    (spec applied, status patched) and the revision's Deployment (applied, scaled)."""
    found = {
        "application": api.get(APPLICATIONS.path(namespace, "resilient")),
        "rollout": api.get(ROLLOUTS.path(namespace, "api")),
        "deployment": api.get(DEPLOYMENTS.path(namespace, revision)),
    }
    missing = [k for k, v in found.items() if v is None]
    assert missing == []
    return {k: v for k, v in found.items() if v is not None}


def lease_holder(api: KubeApi) -> str:
    lease = api.get(LEASES.path("default", SESSION_LEASE)) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_only_the_lease_holder_writes_and_a_killed_leader_hands_over_within_the_lease(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    leader, standby_id = controller_process.identity, "standby"
    api = api_of(cluster)
    standby = ControllerProcess(cluster.kubeconfig, standby_id)
    try:
        standby.spawn()
        kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [3, 3])))
        wait_settled(kubectl, namespace, 1)
        assert lease_holder(api) == leader
        killed_at = time.monotonic()
        killed_wall = datetime.now(UTC)
        controller_process.kill()
        # The leader's tenure is over: everything written so far is on the API.
        first_events = our_events(api, namespace)
        first = written(api, namespace, "api-v1")
        assert first_events and set(first_events.values()) == {leader}
        assert {k: set(writers(o)) for k, o in first.items()} == {
            "application": {leader}, "rollout": {leader}, "deployment": {leader}}
        assert (applied_by(first["rollout"]), applied_by(first["deployment"])) == (leader, leader)
        eventually(lambda: lease_holder(api), equals=standby_id, timeout=30, interval=0.05,
                   what="the standby's hold of the Lease")
        handover = time.monotonic() - killed_at
        # The lease runs out, then the standby's next try (every 0.5 s, +20% jitter) takes it.
        assert handover <= LEASE_SECONDS + 1.2 * RETRY_SECONDS + 1.5, \
            f"hand-over took {handover:.1f}s"
        standby.wait_leading(timeout=15)
        kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(2, [3, 3])))
        wait_settled(kubectl, namespace, 2)
        later_events = {n: i for n, i in our_events(api, namespace).items()
                        if n not in first_events}
        assert later_events and set(later_events.values()) == {standby_id}
        after = written(api, namespace, "api-v2")
        kill_second = killed_wall.replace(microsecond=0)
        for kind, obj in after.items():
            times = writers(obj)
            # The old leader's entries (fields nobody rewrote since) all predate its kill;
            # every write since names the standby.
            assert standby_id in times, kind
            assert set(times) <= {leader, standby_id}, kind
            assert times[standby_id] >= kill_second, kind
            assert times.get(leader, kill_second) <= kill_second, kind
        assert applied_by(after["deployment"]) == standby_id
        assert writers(after["deployment"]).keys() == {standby_id}
    finally:
        standby.cleanup()  # SIGTERM releases the lease: the session controller takes it at once
        controller_process.start()
