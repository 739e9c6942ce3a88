"""Acceptance: two controller shards, each a leader and a stand-by on a Lease of its own.

The session controller steps aside (SIGTERM releases its Lease) while four
`oam-rollout controller --shards 2` processes run: shard 0 and shard 1, each a leader and
a stand-by. Several Applications (hashed to either shard, one pinned by its label against
its hash) are rolled out; every object written for an Application (its status, its
Rollout, its workloads, its Events) names one shard's leader only. Then shard 0's leader
is killed: its stand-by takes shard 0's Lease, shard 1's Lease does not move, and an
upgrade of every Application is written by shard 0's stand-by for shard 0's Applications
and by shard 1's leader for the others. The session controller is restarted whatever
happens.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.fixtures.apps import application, manifest, plan
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually
from webhook.controller.reconcile import ANNOTATION_APPLIED_BY
from webhook.core.labels import LABEL_APP_NAME
from webhook.core.scope import LABEL_SHARD, shard_of
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

LEASE = "shards-test"
SHARDS = 2


def shard_app(name: str, version: int, pin: int | None = None) -> dict[str, Any]:
    """App ``name`` with one component ``<name>-c`` at revision v<version>, 2 replicas in
    batches of 1 + 1; ``pin`` sets the shard label."""
    app = application(name, component=f"{name}-c", external_revision=f"{name}-c-v{version}",
                      image=f"stefanprodan/podinfo:5.0.{version}", rollout=plan(2, 1, 1))
    if pin is not None:
        app["metadata"]["labels"] = {LABEL_SHARD: str(pin)}
    return app


def pick_apps(namespace: str) -> dict[str, tuple[int, int | None]]:
    """name -> (the shard that must act on it, its pin): two hashed to each shard, and one
    hashed to shard 0 but pinned to shard 1."""
    by_shard: dict[int, list[str]] = {0: [], 1: []}
    for i in range(200):
        name = f"app-{i}"
        by_shard[shard_of(namespace, name, SHARDS)].append(name)
    picked: dict[str, tuple[int, int | None]] = {n: (s, None) for s in (0, 1)
                                                  for n in by_shard[s][:2]}
    picked[by_shard[0][2]] = (1, 1)
    return picked


def identities_of(obj: Mapping[str, Any]) -> set[str]:
    """The replicas that wrote ``obj``: plain writes' fieldManagers and the applied-by mark."""
    meta = obj.get("metadata") or {}
    found = {writer_identity(str(e.get("manager", ""))) for e in meta.get("managedFields") or []}
    found.add((meta.get("annotations") or {}).get(ANNOTATION_APPLIED_BY))
    return {i for i in found if i}


def writers(api: KubeApi, namespace: str, name: str) -> set[str]:
    """Every replica identity on what the controller wrote for Application ``name``."""
    objects = [api.get(APPLICATIONS.path(namespace, name)) or {},
               api.get(ROLLOUTS.path(namespace, f"{name}-c")) or {},
               *api.list(DEPLOYMENTS.path(namespace), f"{LABEL_APP_NAME}={name}")]
    found = set().union(*(identities_of(o) for o in objects))
    for event in api.list(EVENTS.path(namespace)):
        involved = str((event.get("involvedObject") or {}).get("name", ""))
        if event.get("reportingComponent") == FIELD_MANAGER and involved in (name,
                                                                             f"{name}-c"):
            found.add(str(event.get("reportingInstance", "")))
    return found


def rolled_out(api: KubeApi, namespace: str, names: list[str], version: int) -> dict[str, str]:
    """name -> rollingState/lastTargetRevision of its Rollout."""
    out = {}
    for name in names:
        status = (api.get(ROLLOUTS.path(namespace, f"{name}-c")) or {}).get("status") or {}
        out[name] = f"{status.get('rollingState')}/{status.get('lastTargetRevision')}"
    return out


def settle(api: KubeApi, namespace: str, names: list[str], version: int,
           context: Any) -> None:
    wanted = {n: f"rolloutSucceed/{n}-c-v{version}" for n in names}
    eventually(lambda: rolled_out(api, namespace, names, version), equals=wanted,
               timeout=120, interval=0.3, what=f"every Application at v{version}",
               context=context)


def holder(api: KubeApi, shard: int) -> str:
    lease = api.get(LEASES.path("default", f"{LEASE}-shard-{shard}")) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


@pytest.fixture
def shards(cluster: LocalCluster, controller_process: ControllerProcess,
           ) -> Iterator[dict[str, ControllerProcess]]:
    """s0a, s0b, s1a, s1b: shard N's would-be leader (a) and stand-by (b), not started."""
    controller_process.stop()
    made = {f"s{n}{r}": ControllerProcess(
        cluster.kubeconfig, f"s{n}{r}", lease=LEASE,
        extra_args=("--shards", str(SHARDS), "--shard-id", str(n))) for n in (0, 1)
        for r in "ab"}
    try:
        yield made
    finally:
        for process in made.values():
            process.cleanup()
        controller_process.start()


def test_each_application_is_rolled_by_one_shard_and_a_killed_leader_hands_over_in_its_shard(
    cluster: LocalCluster, webhook_server: Any, kubectl: Any, namespace: str,
    shards: dict[str, ControllerProcess],
) -> None:
    del webhook_server  # installed: every apply goes through admission
    api = connect(str(cluster.kubeconfig))
    for name in ("s0a", "s1a"):
        shards[name].start()
    for name in ("s0b", "s1b"):
        shards[name].spawn()
    apps = pick_apps(namespace)
    names = sorted(apps)

    def logs() -> str:
        return "\n".join(f"--- {n}\n{p.tail(8)}" for n, p in shards.items())

    kubectl("apply", "-n", namespace, "-f", "-",
            input=manifest(*(shard_app(n, 1, apps[n][1]) for n in names)))
    settle(api, namespace, names, 1, logs)
    first = {n: writers(api, namespace, n) for n in names}
    assert (holder(api, 0), holder(api, 1)) == ("shard-0/s0a", "shard-1/s1a")
    assert first == {n: {f"shard-{apps[n][0]}/s{apps[n][0]}a"} for n in names}

    shards["s0a"].kill()
    eventually(lambda: holder(api, 0), equals="shard-0/s0b", timeout=30, interval=0.1,
               what="shard 0's stand-by holding shard 0's Lease", context=logs)
    shards["s0b"].wait_leading(timeout=30)
    kubectl("apply", "-n", namespace, "-f", "-",
            input=manifest(*(shard_app(n, 2, apps[n][1]) for n in names)))
    settle(api, namespace, names, 2, logs)
    later = {n: writers(api, namespace, n) for n in names}
    assert holder(api, 1) == "shard-1/s1a"
    # Shard 0's Applications: the old leader's earlier writes may remain beside the
    # stand-by's; no other replica's ever.
    allowed = {0: {"shard-0/s0a", "shard-0/s0b"}, 1: {"shard-1/s1a"}}
    leader = {0: "shard-0/s0b", 1: "shard-1/s1a"}
    assert {n: later[n] - allowed[apps[n][0]] for n in names} == {n: set() for n in names}
    assert [n for n in names if leader[apps[n][0]] not in later[n]] == []
    # The upgrade's own Deployments were written after the kill: by the stand-by alone.
    upgraded = {n: identities_of(api.get(DEPLOYMENTS.path(namespace, f"{n}-c-v2")) or {})
                for n in names if apps[n][0] == 0}
    assert upgraded == {n: {"shard-0/s0b"} for n in upgraded}
