"""--namespace-selector: a controller acts only on Applications in the namespaces it selects.

The Scope judges by the namespace labels the namespace watch keeps (NamespaceIndex); the
NamespaceFeed tells which namespaces entered or left the selection; the Selection then
queues nothing of a namespace that is not selected, or no longer is. The loop's listing
of a namespace that enters is tested on the local control plane
(tests/cluster/test_controller_namespace_selector.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from webhook.cli import main
from webhook.controller.loop import EventFeed
from webhook.controller.namespaces import NamespaceFeed, NamespaceIndex
from webhook.controller.queue import Key, WorkQueue
from webhook.controller.selection import Selection
from webhook.core.scope import Scope, Shard
from webhook.core.selectors import parse_selector
from webhook.kube.client import APPLICATIONS, DEPLOYMENTS

ENABLED = {"rollout.oam.dev/enabled": "true"}


def scope(selector: str | None, namespaces: dict[str, dict[str, str]]) -> Scope:
    index = NamespaceIndex()
    for name, labels in namespaces.items():
        index.put(name, labels)
    return Scope(namespace_selector=parse_selector(selector) if selector else None,
                 namespace_labels=index)


def app(namespace: str, name: str = "web") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"components": [{"name": "web", "type": "webservice"}]}}


def namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


@pytest.mark.parametrize(
    ("selector", "namespaces", "ours"),
    [
        (None, {}, True),
        ("rollout.oam.dev/enabled=true", {"team-a": ENABLED}, True),
        ("rollout.oam.dev/enabled=true", {"team-a": {}}, False),
        ("rollout.oam.dev/enabled=true", {}, False),
        ("!legacy", {"team-a": {}}, True),
        ("!legacy", {}, False),
    ],
    ids=["no selector: every namespace", "labelled", "not labelled", "not seen",
         "a negative selector still needs the namespace seen", "unseen, negative"],
)
def test_an_application_is_ours_only_in_a_namespace_the_selector_matches(
    selector: str | None, namespaces: dict[str, dict[str, str]], ours: bool
) -> None:
    judged = scope(selector, namespaces)
    assert judged.ours(app("team-a")) is ours
    assert judged.everything is (selector is None)


def test_the_selector_is_anded_with_the_shard() -> None:
    index = NamespaceIndex()
    index.put("team-a", ENABLED)
    apps = [app("team-a", f"app-{i}") for i in range(20)]
    both = [Scope(Shard(i, 2), namespace_selector=parse_selector("rollout.oam.dev/enabled"),
                  namespace_labels=index) for i in (0, 1)]
    assert [sum(s.ours(a) for s in both) for a in apps] == [1] * len(apps)
    index.drop("team-a")
    assert [sum(s.ours(a) for s in both) for a in apps] == [0] * len(apps)


class Told:
    """A NamespaceFeed over a fresh index, recording what it tells."""

    def __init__(self, selector: str = "rollout.oam.dev/enabled=true",
                 fail_entering: bool = False) -> None:
        self.index = NamespaceIndex()
        self.scope = Scope(namespace_selector=parse_selector(selector),
                           namespace_labels=self.index)
        self.told: list[tuple[str, str]] = []
        self.fail_entering = fail_entering
        self.feed = NamespaceFeed(self.scope, self.index, self.entered,
                                  lambda ns: self.told.append(("left", ns)))

    def entered(self, ns: str) -> None:
        self.told.append(("entered", ns))
        if self.fail_entering:
            raise RuntimeError("the API is down")


def test_the_first_listing_tells_nothing_and_fills_the_index() -> None:
    told = Told()
    told.feed.listed([namespace("team-a", ENABLED), namespace("team-b", ENABLED)])
    assert (told.told, sorted(told.index)) == ([], ["team-a", "team-b"])


def test_a_namespace_labelled_later_enters_and_one_that_loses_the_label_leaves() -> None:
    told = Told()
    told.feed.listed([namespace("team-a", ENABLED)])
    told.feed.changed("ADDED", namespace("team-b", ENABLED))      # labelled: now matched
    told.feed.changed("MODIFIED", namespace("team-b", ENABLED))   # no change: nothing told
    told.feed.changed("DELETED", namespace("team-a", ENABLED))    # label removed
    told.feed.changed("MODIFIED", namespace("team-b", {}))        # an unfiltered change
    assert told.told == [("entered", "team-b"), ("left", "team-a"), ("left", "team-b")]
    assert told.scope.ours(app("team-a")) is told.scope.ours(app("team-b")) is False


def test_a_relist_tells_what_changed_while_the_watch_was_down() -> None:
    told = Told()
    told.feed.listed([namespace("team-a", ENABLED)])
    told.feed.listed([namespace("team-b", ENABLED)])
    assert told.told == [("left", "team-a"), ("entered", "team-b")]


def test_a_namespace_whose_applications_could_not_be_listed_enters_again_at_the_relist(
) -> None:
    told = Told(fail_entering=True)
    told.feed.listed([])
    with pytest.raises(RuntimeError):
        told.feed.changed("ADDED", namespace("team-b", ENABLED))
    assert "team-b" not in told.index  # so the relist after the failed watch retries
    told.fail_entering = False
    told.feed.listed([namespace("team-b", ENABLED)])
    assert told.told == [("entered", "team-b"), ("entered", "team-b")]


def owned_deployment(ns: str) -> dict[str, Any]:
    return {"metadata": {"name": "web-v1", "namespace": ns,
                         "labels": {"app.oam.dev/component": "web"},
                         "ownerReferences": [{"kind": "Application", "name": "web",
                                              "controller": True, "uid": "u"}]}}


def drain(queue: WorkQueue) -> list[Key]:
    keys: list[Key] = []
    while len(queue):
        key = queue.get()
        assert key is not None
        keys.append(key)
        queue.done(key)
    return keys


def test_nothing_of_an_unselected_namespace_is_queued_and_a_namespace_that_leaves_stops(
) -> None:
    judged = scope("rollout.oam.dev/enabled=true", {"team-a": ENABLED, "team-b": {}})
    selection, queue = Selection(judged), WorkQueue()
    apps = EventFeed(APPLICATIONS, queue, selection=selection)
    deployments = EventFeed(DEPLOYMENTS, queue, selection=selection)
    apps.listed([app("team-a"), app("team-b")])
    deployments.changed("MODIFIED", owned_deployment("team-b"))
    assert drain(queue) == [("app", "team-a", "web"), ("rollout", "team-a", "web")]
    assert isinstance(judged.namespace_labels, NamespaceIndex)
    judged.namespace_labels.drop("team-a")
    selection.left_namespace("team-a")
    deployments.changed("MODIFIED", owned_deployment("team-a"))
    apps.changed("MODIFIED", app("team-a"))
    assert drain(queue) == []


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("team in (a", "invalid label selector 'team in (a': expected ',' or ')' in the "
                       "values of 'team in' (at the end)"),
        ("a > 1", "invalid label selector 'a > 1': the operator '>' is not supported "
                  "(at position 3)"),
    ],
)
def test_a_bad_namespace_selector_is_refused_in_one_line(
    selector: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["controller", "--namespace-selector", selector]) == 2
    assert capsys.readouterr().err == (
        f"oam-rollout controller: --namespace-selector: {message}\n")
