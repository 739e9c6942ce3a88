"""The controller loop's parts without a cluster: work queue, event-to-key mapping, the Lease."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from webhook.controller.lease import LeaderElector
from webhook.controller.loop import EventFeed, keys_for
from webhook.controller.queue import WorkQueue
from webhook.controller.reconcile import ANNOTATION_ROLLED_BY
from webhook.core.errors import ApiError
from webhook.kube.client import (
    APPLICATIONS,
    CLONESETS,
    DEPLOYMENTS,
    REVISIONS,
    ROLLOUTS,
    Resource,
)

OWNER = [{"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "name": "shop",
          "uid": "u1", "controller": True}]


def obj(name: str, labels: dict[str, str] | None = None, owned: bool = True,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": labels or {},
                            "annotations": annotations or {}}
    if owned:
        meta["ownerReferences"] = OWNER
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("resource", "watched", "keys"),
    [
        (APPLICATIONS, obj("shop", owned=False), [("app", "ns", "shop")]),
        (ROLLOUTS, obj("web"), [("rollout", "ns", "web"), ("app", "ns", "shop")]),
        (REVISIONS, obj("web-v2", {"controller.oam.dev/component": "web"}),
         [("rollout", "ns", "web")]),
        (DEPLOYMENTS, obj("web-v2", {"app.oam.dev/component": "web"},
                          annotations={ANNOTATION_ROLLED_BY: "web"}),
         [("rollout", "ns", "web")]),
        (DEPLOYMENTS, obj("db-v1", {"app.oam.dev/component": "db"}),
         [("rollout", "ns", "db"), ("app", "ns", "shop")]),
        (CLONESETS, obj("cs", {"app.oam.dev/component": "cs"},
                        annotations={ANNOTATION_ROLLED_BY: "cs"}), [("rollout", "ns", "cs")]),
        (DEPLOYMENTS, obj("unrelated", owned=False), []),
    ],
    ids=["application", "rollout and its app", "revision", "rolled deployment",
         "plain deployment and its app", "cloneset", "unlabelled deployment"],
)
def test_watch_events_map_to_the_reconciles_they_concern(
    resource: Resource, watched: dict[str, Any], keys: list[tuple[str, str, str]]
) -> None:
    assert keys_for(resource, watched) == keys


def test_a_rolled_workload_deleted_concerns_its_application_too() -> None:
    # The run that deleted it ended: revisions it ran may now be trimmed from the history.
    rolled = obj("web-v1", {"app.oam.dev/component": "web"},
                 annotations={ANNOTATION_ROLLED_BY: "web"})
    feed = EventFeed(DEPLOYMENTS, WorkQueue())
    feed.changed("DELETED", rolled)
    assert [feed.queue.get() for _ in range(len(feed.queue))] == [
        ("rollout", "ns", "web"), ("app", "ns", "shop")]


@pytest.mark.parametrize(
    ("kind", "own", "keys"),
    [
        ("MODIFIED", True, []),  # its Application follows a moment later
        ("MODIFIED", False, [("rollout", "ns", "web"), ("app", "ns", "shop")]),
        ("SYNC", True, [("rollout", "ns", "web"), ("app", "ns", "shop")]),
    ],
    ids=["our own status write", "someone else's write", "a listing"],
)
def test_only_our_own_rollout_status_writes_are_not_reconciled_again(
    kind: str, own: bool, keys: list[tuple[str, str, str]]
) -> None:
    queue = WorkQueue()
    seen: list[tuple[str, str]] = []
    feed = EventFeed(ROLLOUTS, queue, lambda resource, k, o: seen.append((resource.plural, k)),
                     lambda version: own and version == "7")
    watched = obj("web")
    watched["metadata"]["resourceVersion"] = "7"
    feed.changed(kind, watched)
    assert [queue.get() for _ in range(len(queue))] == keys
    assert queue.pending_delays() == (1 if own and kind == "MODIFIED" else 0)
    assert seen == [("rollouts", kind)]


def test_a_key_added_twice_while_queued_is_processed_once() -> None:
    queue = WorkQueue()
    queue.add(("app", "ns", "a"))
    queue.add(("app", "ns", "a"))
    queue.add(("rollout", "ns", "a"))
    assert len(queue) == 2
    assert queue.get() == ("app", "ns", "a")
    assert queue.get() == ("rollout", "ns", "a")


def test_a_key_added_while_processed_runs_again_after_and_never_in_parallel() -> None:
    queue = WorkQueue()
    key = ("rollout", "ns", "web")
    queue.add(key)
    assert queue.get() == key
    queue.add(key)  # a change arrives mid-reconcile
    assert len(queue) == 1  # only the active one: not handed to a second worker
    queue.done(key)
    assert queue.get() == key


def test_a_retried_key_comes_back_after_its_backoff() -> None:
    queue = WorkQueue()
    key = ("app", "ns", "a")
    queue.add(key)
    assert queue.get() == key
    queue.retry(key)
    queue.done(key)
    assert (len(queue), queue.pending_delays()) == (0, 1)
    assert queue.get() == key  # blocks for the 10 ms backoff only
    assert queue.pending_delays() == 0


def test_a_closed_queue_releases_its_workers() -> None:
    queue = WorkQueue()
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    queue.close()
    worker.join(2)
    assert got == [None]


class FakeLeases:
    """Leases in memory with the API's compare-and-swap on resourceVersion."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.version = 0

    def get(self, path: str) -> dict[str, Any] | None:
        lease = self.leases.get(path)
        return copy.deepcopy(lease) if lease else None

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        full = f"{path}/{body['metadata']['name']}"
        if full in self.leases:
            raise ApiError("POST", path, 409, "exists")
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.leases[full] = stored
        return stored

    def request(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert method == "PUT"
        live = self.leases[path]
        if body["metadata"]["resourceVersion"] != live["metadata"]["resourceVersion"]:
            raise ApiError(method, path, 409, "conflict")
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.leases[path] = stored
        return stored


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def elector(api: FakeLeases, clock: Clock, identity: str) -> LeaderElector:
    return LeaderElector(api, "default", "lease", identity=identity,  # type: ignore[arg-type]
                         lease_seconds=3.0, clock=clock)


def test_only_one_of_two_replicas_holds_the_lease_until_it_goes_silent() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    assert a.try_acquire_or_renew() is True
    assert b.try_acquire_or_renew() is False
    clock.now += 2.0
    assert a.try_acquire_or_renew() is True  # renewed
    assert b.try_acquire_or_renew() is False
    clock.now += 2.5  # b saw the renewal 2.5 s ago: not expired yet
    assert b.try_acquire_or_renew() is False
    clock.now += 1.0  # a silent for 3.5 s > 3 s lease
    assert b.try_acquire_or_renew() is True
    lease = api.get("/apis/coordination.k8s.io/v1/namespaces/default/leases/lease")
    assert lease is not None
    assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("b", 1)
    assert a.try_acquire_or_renew() is False  # the old leader cannot take it back


def test_a_restarted_replica_with_the_same_identity_takes_its_lease_back_at_once() -> None:
    api, clock = FakeLeases(), Clock()
    assert elector(api, clock, "a").try_acquire_or_renew() is True
    assert elector(api, clock, "a").try_acquire_or_renew() is True


def test_a_released_lease_is_taken_over_without_waiting() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    assert a.try_acquire_or_renew() is True
    a.release()
    assert b.try_acquire_or_renew() is True
