"""Revision naming: externalRevision or <component>-v<N>, with reuse decided by the spec hash."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.apps import application_of, parsed
from webhook.core.model import Component, RolloutBatch, RolloutPlan, Trait
from webhook.core.paths import FieldPath
from webhook.core.revisions import (
    ResolvedRevision,
    resolve_revision,
    resolve_revisions,
    spec_hash,
    target_revision_name,
)
from webhook.core.state import ObservedState, RevisionRecord

PATH = FieldPath.root("spec", "components").index(0)
V4 = {"image": "stefanprodan/podinfo:4.0.3"}
V5 = {"image": "stefanprodan/podinfo:5.0.2"}


def component(
    properties: dict[str, Any] = V4,
    external: str | None = None,
    name: str = "express-server",
    traits: tuple[Trait, ...] = (),
) -> Component:
    return Component(name, "webservice", external, properties, traits)


def record(
    name: str, number: int, properties: dict[str, Any] = V4, owner: str = "express-server"
) -> RevisionRecord:
    data = {"name": owner, "type": "webservice", "properties": properties}
    return RevisionRecord(name, owner, number, spec_hash(data), data)


def test_the_hash_ignores_key_order_name_external_revision_and_traits() -> None:
    a = {"name": "a", "type": "webservice", "properties": {"image": "x", "cmd": ["run"]}}
    b = {
        "properties": {"cmd": ["run"], "image": "x"},
        "type": "webservice",
        "name": "b",
        "externalRevision": "b-v9",
    }
    assert spec_hash(a) == spec_hash(b)
    assert len(spec_hash(a)) == 16 and int(spec_hash(a), 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"type": "worker"},
        {"properties": {"image": "y"}},
        {"properties": {"image": "x", "cmd": ["run"]}},
    ],
)
def test_the_hash_changes_with_type_or_properties(change: dict[str, Any]) -> None:
    base = {"name": "a", "type": "webservice", "properties": {"image": "x"}}
    assert spec_hash(base) != spec_hash({**base, **change})


@pytest.mark.parametrize(
    ("comp", "existing", "expected"),
    [
        # first deploy, no name given
        (component(), [], ResolvedRevision("express-server", "express-server-v1", 1, "", True)),
        # same spec again: the revision is reused
        (
            component(),
            [record("express-server-v1", 1)],
            ResolvedRevision("express-server", "express-server-v1", 1, "", False),
        ),
        # new spec: N = 1 + highest, even with gaps
        (
            component(V5),
            [record("express-server-v1", 1), record("express-server-v7", 7, {"image": "z"})],
            ResolvedRevision("express-server", "express-server-v8", 8, "", True),
        ),
        # back to an old spec: the old revision is reused (no new number)
        (
            component(V4),
            [record("express-server-v1", 1), record("express-server-v2", 2, V5)],
            ResolvedRevision("express-server", "express-server-v1", 1, "", False),
        ),
        # externalRevision, new
        (
            component(V5, "express-server-v2"),
            [record("express-server-v1", 1)],
            ResolvedRevision("express-server", "express-server-v2", 2, "", True),
        ),
        # externalRevision, existing with the same spec (the spec's rollback step)
        (
            component(V5, "express-server-v2"),
            [record("express-server-v1", 1), record("express-server-v2", 2, V5)],
            ResolvedRevision("express-server", "express-server-v2", 2, "", False),
        ),
        # the next free name is taken by another component: skip past it
        (
            component(V5, name="a"),
            [record("a-v1", 1, owner="a"), record("a-v2", 2, owner="a-x")],
            ResolvedRevision("a", "a-v3", 3, "", True),
        ),
    ],
)
def test_revisions_are_named_and_reused(
    comp: Component, existing: list[RevisionRecord], expected: ResolvedRevision
) -> None:
    resolved, errors = resolve_revision(comp, existing, PATH)
    assert errors == []
    assert resolved == ResolvedRevision(
        expected.component, expected.name, expected.number, spec_hash(comp.spec()), expected.is_new
    )


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        (
            [record("express-server-v1", 1)],
            'spec.components[0].externalRevision: Invalid value: "express-server-v1": '
            "revision already exists with a different spec;"
            " set a new externalRevision to publish a change",
        ),
        (
            [record("express-server-v1", 1, V5, owner="other")],
            'spec.components[0].externalRevision: Invalid value: "express-server-v1": '
            "revision already belongs to component 'other'",
        ),
    ],
)
def test_an_external_revision_cannot_be_rewritten_or_taken_from_another_component(
    existing: list[RevisionRecord], message: str
) -> None:
    resolved, errors = resolve_revision(component(V5, "express-server-v1"), existing, PATH)
    assert resolved is None
    assert [str(e) for e in errors] == [message]


def test_two_components_cannot_claim_one_revision_name() -> None:
    app = parsed(application_of(
        *({"name": name, "type": "worker", "externalRevision": "shared",
           "properties": {"image": "x"}} for name in ("one", "two")),
        name="a",
    ))
    resolved, errors = resolve_revisions(app, ObservedState())
    assert set(resolved) == {"one", "two"}
    assert [str(e.path) for e in errors] == ["spec.components[1].externalRevision"]


def test_resolution_counts_only_the_components_own_revisions() -> None:
    app = parsed(application_of(
        {"name": "web", "type": "webservice", "properties": {"image": "x"}}, name="a"))
    state = ObservedState(revisions=(record("api-v4", 4, owner="api"),))
    resolved, errors = resolve_revisions(app, state)
    assert errors == []
    assert (resolved["web"].name, resolved["web"].number) == ("web-v1", 1)


@pytest.mark.parametrize(
    ("target", "expected"),
    [(None, "express-server-v2"), ("express-server-v1", "express-server-v1")],
)
def test_the_rollout_target_is_the_pinned_revision_else_the_latest(
    target: str | None, expected: str
) -> None:
    properties: dict[str, Any] = {"targetSize": 5, "rolloutBatches": [{"replicas": 5}]}
    if target:
        properties["targetRevision"] = target
    comp = component(V5, "express-server-v2", traits=(Trait("rollout", properties),))
    assert comp.rollout() == RolloutPlan(5, (RolloutBatch(5),), None, target)
    resolved = ResolvedRevision("express-server", "express-server-v2", 2, "h", True)
    assert target_revision_name(comp, resolved) == expected


def owned(name: str, number: int, properties: dict[str, Any], app: str) -> RevisionRecord:
    data = {"name": "web", "type": "webservice", "properties": properties}
    return RevisionRecord(name, "web", number, spec_hash(data), data, owner=app)


def test_revisions_of_another_application_are_avoided_not_reused() -> None:
    comp = component(V4, name="web")
    other = [owned("web-v1", 1, V4, "other-app"), owned("web-v2", 2, V5, "other-app")]
    resolved, errors = resolve_revision(comp, other, PATH, app_name="shop")
    assert errors == []
    assert resolved is not None and (resolved.name, resolved.number, resolved.is_new) == (
        "web-v3",
        3,
        True,
    )
    # Without an application name every revision of the component counts as ours.
    reused, _ = resolve_revision(comp, other, PATH)
    assert reused is not None and (reused.name, reused.is_new) == ("web-v1", False)


def test_an_external_revision_of_another_application_is_an_error() -> None:
    comp = component(V4, "web-v1", name="web")
    resolved, errors = resolve_revision(
        comp, [owned("web-v1", 1, V4, "other-app")], PATH, app_name="shop"
    )
    assert resolved is None
    assert [str(e) for e in errors] == [
        'spec.components[0].externalRevision: Invalid value: "web-v1": '
        "revision already belongs to Application 'other-app'"
    ]


@pytest.mark.parametrize(
    "built",
    [
        component(),
        component(V5, external="express-server-v2"),
        component({"image": "x", "env": [{"name": "A", "value": "1"}]}, name="worker"),
    ],
    ids=["plain", "external", "nested"],
)
def test_a_resolved_revision_carries_the_hash_of_the_full_component_spec(
    built: Component,
) -> None:
    resolved, errors = resolve_revision(built, [], PATH)
    assert errors == []
    assert resolved is not None and resolved.spec_hash == spec_hash(built.spec())
