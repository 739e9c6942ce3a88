"""The controller's watch caches and what they change in the loop: a relist queues only
what changed, our own writes are read back at once, an older event never rolls a newer
object back, and a change seen now goes ahead of a listing's backlog."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from webhook.controller.cache import SERVICES, Caches, Store, lagging, slim, wants_resync
from webhook.controller.loop import EventFeed
from webhook.controller.queue import WorkQueue
from webhook.kube.client import APPLICATIONS, DEPLOYMENTS, REVISIONS, ROLLOUTS, Resource

MANAGED = {"app.kubernetes.io/managed-by": "oam-rollout"}


def obj(name: str, version: int, app: str = "shop", uid: str = "",
        **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}",
                         "resourceVersion": str(version),
                         "labels": {"app.oam.dev/name": app, **labels},
                         "managedFields": [{"manager": "x"}]},
            "spec": {"replicas": 1, "template": {"spec": {"containers": []}}}}


def app(name: str, generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    raw: dict[str, Any] = {"metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}",
                                        "generation": generation, "resourceVersion": "1"}}
    if status is not None:
        raw["status"] = status
    return raw


def drained(queue: WorkQueue) -> list[tuple[str, str, str]]:
    """Every queued key in the order the workers get them, each then marked done."""
    keys = [queue.get() for _ in range(len(queue))]
    for key in keys:
        assert key is not None
        queue.done(key)
    return [k for k in keys if k is not None]


def test_a_listing_reports_only_what_changed_since_the_last() -> None:
    store = Store(DEPLOYMENTS)
    assert [(k, o["metadata"]["name"]) for k, o in store.replace(
        [obj("a", 1), obj("b", 1)])] == [("ADDED", "a"), ("ADDED", "b")]
    changed = store.replace([obj("a", 1), obj("b", 2), obj("c", 3)])
    assert [(k, o["metadata"]["name"]) for k, o in changed] == [
        ("MODIFIED", "b"), ("ADDED", "c")]
    assert [(k, o["metadata"]["name"]) for k, o in store.replace([obj("c", 3)])] == [
        ("DELETED", "a"), ("DELETED", "b")]
    assert store.replace([obj("c", 3)]) == []


def test_a_listing_older_than_our_own_write_does_not_roll_it_back() -> None:
    store = Store(DEPLOYMENTS)
    store.replace([obj("a", 3)])
    store.apply("MODIFIED", obj("a", 9))  # written after the next listing's snapshot
    assert store.replace([obj("a", 5)]) == []
    assert store.get("ns", "a")["metadata"]["resourceVersion"] == "9"  # type: ignore[index]


@pytest.mark.parametrize(
    ("events", "kept"),
    [
        ([("MODIFIED", 5), ("MODIFIED", 4)], "5"),
        ([("MODIFIED", 4), ("MODIFIED", 5)], "5"),
        ([("MODIFIED", 5), ("DELETED", 4)], "5"),
        ([("MODIFIED", 5), ("DELETED", 6)], None),
    ],
    ids=["an older event after our write", "in order", "an older deletion",
         "a newer deletion"],
)
def test_a_newer_resource_version_always_wins(
    events: list[tuple[str, int]], kept: str | None
) -> None:
    store = Store(DEPLOYMENTS)
    for kind, version in events:
        store.apply(kind, obj("a", version))
    found = store.get("ns", "a")
    assert (found["metadata"]["resourceVersion"] if found else None) == kept


def test_a_deletion_of_another_object_by_the_same_name_leaves_the_new_one() -> None:
    store = Store(DEPLOYMENTS)
    store.apply("ADDED", obj("a", 7, uid="new"))
    caches = Caches()
    caches.stores[DEPLOYMENTS.plural] = store
    caches.deleted(DEPLOYMENTS, "ns", "a", "old")
    assert store.get("ns", "a") is not None
    caches.deleted(DEPLOYMENTS, "ns", "a", "new")
    assert store.get("ns", "a") is None


@pytest.mark.parametrize(
    ("resource", "template_kept"),
    [(DEPLOYMENTS, False), (ROLLOUTS, True)],
    ids=["a workload", "a rollout"],
)
def test_objects_are_kept_without_managed_fields_and_workloads_without_template(
    resource: Resource, template_kept: bool
) -> None:
    kept = slim(resource, obj("a", 1))
    assert "managedFields" not in kept["metadata"]
    assert ("template" in kept["spec"]) is template_kept
    assert kept["spec"]["replicas"] == 1


def test_the_inventory_reads_one_applications_managed_objects() -> None:
    caches = Caches()
    deployments = caches.store(DEPLOYMENTS)
    deployments.replace([obj("web-v1", 1, **MANAGED), obj("web-v2", 2),
                         obj("other-v1", 3, app="other", **MANAGED)])
    caches.wrote(DEPLOYMENTS, obj("web-v3", 4, **MANAGED))
    owned = caches.owned("ns", "shop", {"Deployment": DEPLOYMENTS})
    assert [(k, o["metadata"]["name"]) for k, o in owned] == [
        ("Deployment", "web-v1"), ("Deployment", "web-v3")]


def test_our_own_writes_are_kept_with_their_own_kind() -> None:
    # A workload's documents are written together: the Service's answer is no Deployment.
    caches = Caches()
    service = {**obj("web", 5, **MANAGED), "apiVersion": "v1", "kind": "Service"}
    caches.wrote(DEPLOYMENTS, service)
    assert caches.get(DEPLOYMENTS, "ns", "web") is None
    assert caches.get(SERVICES, "ns", "web") is not None


def test_revisions_are_read_by_component_whatever_their_owner() -> None:
    store = Store(REVISIONS)
    label = "controller.oam.dev/component"
    store.replace([obj("web-v1", 1, **{label: "web"}),
                   obj("web-v2", 2, app="other", **{label: "web"}),
                   obj("db-v1", 3, **{label: "db"})])
    assert [o["metadata"]["name"] for o in store.in_namespace("ns", label, ["web"])] == [
        "web-v1", "web-v2"]


RUNNING = {"status": "running", "observedGeneration": 2,
           "services": [{"name": "web", "healthy": True}]}


@pytest.mark.parametrize(
    ("status", "resync", "lags"),
    [
        (RUNNING, False, False),
        ({**RUNNING, "observedGeneration": 1}, True, True),
        ({**RUNNING, "services": [{"name": "web", "healthy": False}]}, True, False),
        ({**RUNNING, "status": "failed"}, True, False),
        (None, True, True),
    ],
    ids=["healthy at its generation", "status behind its spec", "a component unhealthy",
         "failed (a write refused, say)", "no status yet"],
)
def test_an_unchanged_application_is_queued_again_only_when_not_settled(
    status: dict[str, Any] | None, resync: bool, lags: bool
) -> None:
    raw = app("shop", 2, status)
    assert wants_resync(APPLICATIONS, raw) is resync
    assert lagging(APPLICATIONS, raw) is lags
    assert wants_resync(DEPLOYMENTS, obj("a", 1)) is False


def test_a_relist_queues_only_what_changed_and_what_is_not_settled() -> None:
    queue = WorkQueue()
    feed = EventFeed(APPLICATIONS, queue, store=Store(APPLICATIONS))
    settled, troubled = app("a", 2, RUNNING), app("b", 2, {**RUNNING, "status": "failed"})
    feed.listed([settled, troubled])
    assert sorted(drained(queue)) == [("app", "ns", "a"), ("app", "ns", "b")]
    moved = copy.deepcopy(settled)
    moved["metadata"]["resourceVersion"] = "2"
    feed.listed([settled, troubled])
    assert drained(queue) == [("app", "ns", "b")]
    feed.listed([moved])
    assert sorted(drained(queue)) == [("app", "ns", "a"), ("app", "ns", "b")]


def test_a_change_seen_now_goes_ahead_of_a_listings_backlog() -> None:
    queue = WorkQueue()
    feed = EventFeed(APPLICATIONS, queue, store=Store(APPLICATIONS))
    backlog = [app(f"app-{i}", 1, {**RUNNING, "observedGeneration": 1}) for i in range(3)]
    changed_offline = app("app-9", 2, {**RUNNING, "observedGeneration": 1})
    feed.listed([*backlog, changed_offline])
    feed.changed("MODIFIED", app("app-1", 2, RUNNING))
    assert drained(queue) == [("app", "ns", "app-9"), ("app", "ns", "app-1"),
                              ("app", "ns", "app-0"), ("app", "ns", "app-2")]


def test_a_key_promoted_ahead_is_still_processed_once() -> None:
    queue = WorkQueue()
    for name in ("a", "b", "c"):
        queue.add(("app", "ns", name))
    queue.add(("app", "ns", "c"), first=True)
    queue.add(("app", "ns", "c"), first=True)
    assert drained(queue) == [("app", "ns", "c"), ("app", "ns", "a"), ("app", "ns", "b")]
    assert len(queue) == 0
