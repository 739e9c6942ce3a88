"""The operator verbs' decisions: which JSON patch pause, resume, promote and undo send.

The patches are applied with jsonpatch to the Application they were decided from, so each
row states the properties the rollout trait ends with, not the operations' spelling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonpatch
import pytest

from tests.fixtures.apps import application, application_of, component_fields, plan
from webhook.cli import build_parser
from webhook.core.labels import ANNOTATION_REVISIONS
from webhook.core.operations import VerbError, verb_patch
from webhook.core.state import RevisionRecord

NAME = "express-server"


def with_plan(**properties: Any) -> dict[str, Any]:
    return application(rollout={**plan(5, 2, 3), **properties})


def rollout_properties(app: Mapping[str, Any], component: int = 0) -> dict[str, Any]:
    traits = app["spec"]["components"][component]["traits"]
    return dict(next(t for t in traits if t["type"] == "rollout")["properties"])


def applied(app: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = jsonpatch.apply_patch(app, operations)
    return out


def revision(name: str, number: int, component: str = NAME, owner: str = "") -> RevisionRecord:
    return RevisionRecord(name=name, component=component, number=number, spec_hash=name,
                          owner=owner)


def recorded(app: dict[str, Any], revision_name: str) -> dict[str, Any]:
    """The Application as the mutating webhook leaves it: its revision recorded."""
    app["metadata"]["annotations"] = {ANNOTATION_REVISIONS: json.dumps({NAME: revision_name})}
    return app


@pytest.mark.parametrize(
    ("verb", "before", "after", "summary"),
    [
        ("pause", {}, {"paused": True}, "paused: the batch in flight finishes, then the "
                                        "rollout holds"),
        ("pause", {"paused": False}, {"paused": True}, "paused: the batch in flight finishes, "
                                                       "then the rollout holds"),
        ("resume", {"paused": True}, {}, "resumed"),
        ("promote", {"batchPartition": 0}, {"batchPartition": 1}, "batchPartition 0 -> 1"),
    ],
)
def test_a_verb_changes_only_its_property_of_the_rollout_trait(
    verb: str, before: dict[str, Any], after: dict[str, Any], summary: str,
) -> None:
    app = application(rollout={**plan(8, 2, 2, 2, 2), **before})
    patch = verb_patch(verb, app)
    assert rollout_properties(applied(app, patch.operations)) == {**plan(8, 2, 2, 2, 2), **after}
    assert [(c.component, c.summary) for c in patch.changes] == [(NAME, summary)]


@pytest.mark.parametrize(
    ("batches", "partition", "full", "left"),
    [
        ((2, 2, 2, 2), 0, False, 1),
        ((2, 2, 2, 2), 1, False, 2),
        ((2, 2, 2, 2), 2, False, None),  # 3 would be the last batch, which holds nothing
        ((2, 3), 0, False, None),
        ((2, 2, 2, 2), 0, True, None),
        ((), 0, False, None),  # no batches: one batch, nothing to hold
    ],
)
def test_promote_releases_the_next_batch_and_removes_the_partition_at_the_last(
    batches: tuple[int, ...], partition: int, full: bool, left: int | None,
) -> None:
    app = application(rollout={**plan(sum(batches) or 5, *batches),
                               "batchPartition": partition})
    after = rollout_properties(applied(app, verb_patch("promote", app, full=full).operations))
    assert after.get("batchPartition") == left


@pytest.mark.parametrize(
    ("verb", "properties", "summary"),
    [
        ("pause", {"paused": True}, "already paused"),
        ("resume", {}, "not paused"),
        ("resume", {"paused": False}, "not paused"),
        ("promote", {}, "not held by batchPartition: nothing to promote"),
    ],
)
def test_a_verb_with_nothing_to_do_sends_no_operation(
    verb: str, properties: dict[str, Any], summary: str,
) -> None:
    patch = verb_patch(verb, with_plan(**properties))
    assert patch.operations == []
    assert [c.summary for c in patch.changes] == [summary]


def test_every_patch_is_guarded_by_the_component_and_trait_it_read() -> None:
    app = with_plan(batchPartition=0)
    operations = verb_patch("promote", app).operations
    moved = application_of(component_fields(name="other"), component_fields())
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(moved, operations)
    promoted_meanwhile = with_plan(batchPartition=1)
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(promoted_meanwhile, operations)


def test_without_a_component_every_rollout_component_is_patched_and_with_one_only_it() -> None:
    app = application_of(
        component_fields(name="a", traits=[{"type": "rollout", "properties": plan(2, 1, 1)}]),
        component_fields(name="plain", traits=None),
        component_fields(name="b", traits=[{"type": "labels", "properties": {"x": "y"}},
                                           {"type": "rollout", "properties": plan(2, 1, 1)}]),
    )
    everything = applied(app, verb_patch("pause", app).operations)
    assert [rollout_properties(everything, i).get("paused") for i in (0, 2)] == [True, True]
    only_b = applied(app, verb_patch("pause", app, "b").operations)
    assert [rollout_properties(only_b, i).get("paused") for i in (0, 2)] == [None, True]


@pytest.mark.parametrize(
    ("app", "component", "says"),
    [
        (application(rollout=None), None, "no component has a rollout trait"),
        (application(rollout=None), NAME, f"component {NAME!r} has no rollout trait"),
        (application(), "nope", f"no component 'nope' (components: {NAME!r})"),
        (application(rollout={**plan(5, 2, 3), "batchPartition": "1"}), None,
         "batchPartition '1' is not a whole number"),
    ],
)
def test_a_verb_that_cannot_act_says_why_in_one_line(
    app: dict[str, Any], component: str | None, says: str,
) -> None:
    with pytest.raises(VerbError) as caught:
        verb_patch("promote", app, component)
    assert says in str(caught.value)


HISTORY = (revision("express-server-v1", 1), revision("express-server-v2", 2),
           revision("express-server-v3", 3), revision("other-v1", 1, component="other"),
           revision("express-server-v9", 9, owner="another-app"))


@pytest.mark.parametrize(
    ("properties", "current", "to_revision", "target", "summary"),
    [
        ({}, "express-server-v3", None, "express-server-v2",
         "targetRevision express-server-v3 -> express-server-v2"),
        ({}, "express-server-v2", None, "express-server-v1",
         "targetRevision express-server-v2 -> express-server-v1"),
        # After one undo the pin is the current revision: a second goes one further back.
        ({"targetRevision": "express-server-v2"}, "express-server-v3", None,
         "express-server-v1", "targetRevision express-server-v2 -> express-server-v1"),
        ({"batchPartition": 0}, "express-server-v3", None, "express-server-v2",
         "targetRevision express-server-v3 -> express-server-v2 (batchPartition 0 removed)"),
        ({}, "express-server-v3", "express-server-v1", "express-server-v1",
         "targetRevision express-server-v3 -> express-server-v1"),
        ({}, None, None, "express-server-v2",  # nothing recorded: the newest revision runs
         "targetRevision express-server-v3 -> express-server-v2"),
    ],
)
def test_undo_pins_the_revision_before_the_current_one_and_rolls_all_of_it(
    properties: dict[str, Any], current: str | None, to_revision: str | None, target: str,
    summary: str,
) -> None:
    app = with_plan(**properties)
    if current is not None:
        recorded(app, current)
    patch = verb_patch("undo", app, revisions=HISTORY, to_revision=to_revision)
    after = rollout_properties(applied(app, patch.operations))
    assert after == {**plan(5, 2, 3), "targetRevision": target}
    assert [c.summary for c in patch.changes] == [summary]


@pytest.mark.parametrize(
    ("current", "to_revision", "says"),
    [
        ("express-server-v1", None, "no revision before express-server-v1"),
        ("express-server-v7", None, "its current revision 'express-server-v7' is not among"),
        ("express-server-v3", "express-server-v9", "has no revision 'express-server-v9' "
                                                   "(revisions: express-server-v1, "
                                                   "express-server-v2, express-server-v3)"),
    ],
)
def test_undo_without_a_revision_to_go_back_to_says_so(
    current: str, to_revision: str | None, says: str,
) -> None:
    with pytest.raises(VerbError) as caught:
        verb_patch("undo", recorded(with_plan(), current), revisions=HISTORY,
                   to_revision=to_revision)
    assert says in str(caught.value)


def test_undo_to_the_current_revision_changes_nothing() -> None:
    patch = verb_patch("undo", recorded(with_plan(), "express-server-v2"), revisions=HISTORY,
                       to_revision="express-server-v2")
    assert (patch.operations, [c.summary for c in patch.changes]) == (
        [], ["already at express-server-v2"])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["pause", "app"], {"verb": "pause", "app": "app", "component": None,
                            "namespace": None, "context": None, "dry_run": False}),
        (["promote", "app", "--full", "-c", "web", "-n", "prod", "--context", "ci"],
         {"verb": "promote", "app": "app", "component": "web", "namespace": "prod",
          "context": "ci", "full": True}),
        (["undo", "app", "--to-revision", "web-v1"],
         {"verb": "undo", "to_revision": "web-v1"}),
    ],
)
def test_the_verbs_parse_their_flags(argv: list[str], expected: dict[str, Any]) -> None:
    args = vars(build_parser().parse_args(argv))
    assert {k: args[k] for k in expected} == expected
