"""A sharded controller queues only its own Applications' keys, from the watch events alone.

Two shards see the same watch events; every key lands in exactly one shard's queue. An
Application re-pinned by its label moves, Rollouts and all; one of an unknown type is
nobody's with --unknown-types ignore.
"""

from __future__ import annotations

import copy
from typing import Any

from webhook.controller.loop import EventFeed
from webhook.controller.queue import Key, WorkQueue
from webhook.controller.selection import Selection
from webhook.core.scope import LABEL_SHARD, UNKNOWN_IGNORE, Scope, Shard, shard_of
from webhook.kube.client import APPLICATIONS, DEPLOYMENTS, ROLLOUTS, Resource

NS = "ns"
KNOWN = frozenset({"webservice"}), frozenset({"rollout"})


def app_named(shard: int, count: int = 2) -> str:
    """The first name app-<i> that hashes to ``shard``."""
    return next(f"app-{i}" for i in range(100) if shard_of(NS, f"app-{i}", count) == shard)


def app(name: str, ctype: str = "webservice", labels: dict[str, str] | None = None,
        ) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "labels": labels or {}},
            "spec": {"components": [{"name": f"{name}-web", "type": ctype,
                                     "traits": [{"type": "rollout"}]}]}}


def owned(name: str, owner: str, component: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS,
                         "labels": {"app.oam.dev/component": component},
                         "ownerReferences": [{"kind": "Application", "name": owner,
                                              "controller": True, "uid": "u"}]}}


class Shards:
    """Two shards' event feeds over the same events."""

    def __init__(self, unknown: Any = "deny") -> None:
        self.selections = [Selection(Scope(Shard(i, 2), unknown, *KNOWN)) for i in (0, 1)]
        self.queues = [WorkQueue(), WorkQueue()]

    def event(self, resource: Resource, kind: str, obj: dict[str, Any]) -> None:
        for selection, queue in zip(self.selections, self.queues, strict=True):
            EventFeed(resource, queue, selection=selection).changed(kind, copy.deepcopy(obj))

    def listed(self, apps: list[dict[str, Any]]) -> None:
        for selection, queue in zip(self.selections, self.queues, strict=True):
            EventFeed(APPLICATIONS, queue, selection=selection).listed(copy.deepcopy(apps))

    def drain(self) -> list[list[Key | None]]:
        """Each shard's queued keys, in order, taken and marked done."""
        out: list[list[Key | None]] = []
        for queue in self.queues:
            keys = [queue.get() for _ in range(len(queue))]
            for key in keys:
                assert key is not None
                queue.done(key)
            out.append(keys)
        return out


def test_every_key_lands_in_exactly_one_shard_s_queue() -> None:
    zero, one = app_named(0), app_named(1)
    shards = Shards()
    shards.listed([app(zero), app(one)])
    first = shards.drain()
    for name in (zero, one):
        shards.event(ROLLOUTS, "MODIFIED", owned(f"{name}-web", name, f"{name}-web"))
        shards.event(DEPLOYMENTS, "MODIFIED", owned(f"{name}-web-v1", name, f"{name}-web"))
    assert first == [
        [("app", NS, zero), ("rollout", NS, f"{zero}-web")],
        [("app", NS, one), ("rollout", NS, f"{one}-web")],
    ]
    assert shards.drain() == [
        [("rollout", NS, f"{zero}-web"), ("app", NS, zero)],
        [("rollout", NS, f"{one}-web"), ("app", NS, one)],
    ]


def test_an_object_of_an_application_never_seen_is_nobody_s() -> None:
    shards = Shards()
    shards.event(ROLLOUTS, "ADDED", owned("web", "unlisted", "web"))
    assert shards.drain() == [[], []]


def test_a_pin_moves_an_application_and_its_rollouts_to_the_other_shard() -> None:
    name = app_named(0)
    shards = Shards()
    shards.listed([app(name)])
    shards.drain()
    shards.event(APPLICATIONS, "MODIFIED", app(name, labels={LABEL_SHARD: "1"}))
    moved = shards.drain()
    shards.event(ROLLOUTS, "MODIFIED", owned(f"{name}-web", name, f"{name}-web"))
    assert moved == [[], [("app", NS, name), ("rollout", NS, f"{name}-web")]]
    assert shards.drain() == [[], [("rollout", NS, f"{name}-web"), ("app", NS, name)]]


def test_the_objects_of_a_deleted_application_reach_its_shard_until_the_next_listing() -> None:
    name = app_named(1)
    shards = Shards()
    shards.listed([app(name)])
    shards.event(APPLICATIONS, "DELETED", app(name))
    shards.drain()
    shards.event(ROLLOUTS, "DELETED", owned(f"{name}-web", name, f"{name}-web"))
    before = shards.drain()
    shards.listed([])
    shards.event(ROLLOUTS, "DELETED", owned(f"{name}-web", name, f"{name}-web"))
    assert before == [[], [("rollout", NS, f"{name}-web"), ("app", NS, name)]]
    assert shards.drain() == [[], []]


def test_an_application_of_an_unknown_type_is_nobody_s_when_ignored() -> None:
    zero, one = app_named(0), app_named(1)
    shards = Shards(unknown=UNKNOWN_IGNORE)
    shards.listed([app(zero, ctype="helm"), app(one, ctype="helm")])
    shards.event(ROLLOUTS, "MODIFIED", owned(f"{zero}-web", zero, f"{zero}-web"))
    assert shards.drain() == [[], []]
