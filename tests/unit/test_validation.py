"""Validation rules, one table row per rule, each asserting the exact field path and error type."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.apps import application_of as app
from tests.fixtures.apps import component_fields as component
from tests.fixtures.apps import rollout_trait as rollout
from webhook.core.errors import ErrorType
from webhook.core.model import RolloutBatch, RolloutPlan, parse_application
from webhook.core.paths import FieldPath
from webhook.core.revisions import resolve_revisions
from webhook.core.state import ComponentObservation, ObservedState, RevisionRecord
from webhook.core.validation import (
    check_partition,
    check_scale,
    validate_against_state,
    validate_static,
)

COMPONENT_TYPES = ("webservice", "worker", "cloneset", "task")
TRAIT_TYPES = ("rollout", "scaler")
C0 = "spec.components[0]"
T0 = f"{C0}.traits[0]"
P0 = f"{T0}.properties"

REQUIRED = ErrorType.REQUIRED
INVALID = ErrorType.INVALID
UNSUPPORTED = ErrorType.UNSUPPORTED
DUPLICATE = ErrorType.DUPLICATE
FORBIDDEN = ErrorType.FORBIDDEN
NOT_FOUND = ErrorType.NOT_FOUND


def errors_of(raw: object) -> list[tuple[str, ErrorType]]:
    result = validate_static(raw, COMPONENT_TYPES, TRAIT_TYPES)
    return [(str(e.path), e.type) for e in result.errors]


@pytest.mark.parametrize(
    "raw",
    [
        app(),
        app(component(traits=[rollout(batchPartition=1, targetRevision="express-server-v1")])),
        app(
            component(type="worker"),
            component(name="second", type="cloneset", externalRevision=None),
        ),
        app(component(traits=[rollout(targetSize=0, rolloutBatches=[{"replicas": 5}])])),
        app(component(type="task", traits=[{"type": "scaler", "properties": {"replicas": 2}}])),
        app(
            component(
                properties={
                    "image": "x",
                    "cmd": ["node", "server.js"],
                    "args": ["--port", "80"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B"}],
                    "ports": [{"port": 80, "expose": True, "name": "http", "protocol": "TCP"}],
                    "cpu": "500m",
                    "memory": "128Mi",
                    "imagePullPolicy": "IfNotPresent",
                }
            )
        ),
    ],
    ids=[
        "spec-first-deploy",
        "partition-and-target",
        "worker-and-cloneset",
        "size-zero",
        "no-rollout",
        "all-props",
    ],
)
def test_valid_applications_pass_static_validation(raw: dict[str, Any]) -> None:
    result = validate_static(raw, COMPONENT_TYPES, TRAIT_TYPES)
    assert result.errors == ()
    assert result.ok and result.app is not None


@pytest.mark.parametrize(
    ("rule", "raw", "expected"),
    [
        # required fields
        ("component name required", app(component(name=None)), [(f"{C0}.name", REQUIRED)]),
        ("component type required", app(component(type=None)), [(f"{C0}.type", REQUIRED)]),
        (
            "targetSize required",
            app(component(traits=[rollout(targetSize=None)])),
            [(f"{P0}.targetSize", REQUIRED)],
        ),
        (
            "rolloutBatches required",
            app(component(traits=[rollout(rolloutBatches=None)])),
            [(f"{P0}.rolloutBatches", REQUIRED)],
        ),
        (
            "rolloutBatches not empty",
            app(component(traits=[rollout(rolloutBatches=[])])),
            [(f"{P0}.rolloutBatches", REQUIRED)],
        ),
        (
            "batch replicas required",
            app(component(traits=[rollout(rolloutBatches=[{"replicas": 2}, {}])])),
            [(f"{P0}.rolloutBatches[1].replicas", REQUIRED)],
        ),
        ("image required", app(component(properties={})), [(f"{C0}.properties.image", REQUIRED)]),
        # exact types
        (
            "a bool is not an int",
            app(component(traits=[rollout(targetSize=True)])),
            [(f"{P0}.targetSize", INVALID)],
        ),
        (
            "a string is not an int",
            app(component(traits=[rollout(rolloutBatches=[{"replicas": "2"}, {"replicas": 3}])])),
            [(f"{P0}.rolloutBatches[0].replicas", INVALID)],
        ),
        (
            "a float is not an int",
            app(component(traits=[rollout(batchPartition=0.0)])),
            [(f"{P0}.batchPartition", INVALID)],
        ),
        (
            "targetRevision is a string",
            app(component(traits=[rollout(targetRevision=1)])),
            [(f"{P0}.targetRevision", INVALID)],
        ),
        (
            "rolloutBatches is a list",
            app(component(traits=[rollout(rolloutBatches={"replicas": 5})])),
            [(f"{P0}.rolloutBatches", INVALID)],
        ),
        (
            "cmd is a list of strings",
            app(component(properties={"image": "x", "cmd": ["ok", 3]})),
            [(f"{C0}.properties.cmd[1]", INVALID)],
        ),
        # unknown properties
        (
            "typo rolloutBatch",
            app(component(traits=[rollout(rolloutBatch=[{"replicas": 5}], rolloutBatches=None)])),
            [(f"{P0}.rolloutBatch", UNSUPPORTED), (f"{P0}.rolloutBatches", REQUIRED)],
        ),
        (
            "typo in a batch",
            app(
                component(
                    traits=[
                        rollout(rolloutBatches=[{"replica": 2, "replicas": 2}, {"replicas": 3}])
                    ]
                )
            ),
            [(f"{P0}.rolloutBatches[0].replica", UNSUPPORTED)],
        ),
        (
            "replicas belong to the rollout",
            app(component(properties={"image": "x", "replicas": 3})),
            [(f"{C0}.properties.replicas", UNSUPPORTED)],
        ),
        (
            "worker has no ports",
            app(component(type="worker", properties={"image": "x", "ports": [{"port": 80}]})),
            [(f"{C0}.properties.ports", UNSUPPORTED)],
        ),
        # ranges
        (
            "targetSize >= 0",
            app(component(traits=[rollout(targetSize=-1)])),
            [(f"{P0}.targetSize", INVALID)],
        ),
        (
            "replicas >= 1",
            app(component(traits=[rollout(rolloutBatches=[{"replicas": 2}, {"replicas": 0}])])),
            [(f"{P0}.rolloutBatches[1].replicas", INVALID)],
        ),
        (
            "batchPartition >= 0",
            app(component(traits=[rollout(batchPartition=-1)])),
            [(f"{P0}.batchPartition", INVALID)],
        ),
        (
            "batchPartition <= last batch",
            app(component(traits=[rollout(batchPartition=2)])),
            [(f"{P0}.batchPartition", INVALID)],
        ),
        (
            "port in range",
            app(component(properties={"image": "x", "ports": [{"port": 70000}]})),
            [(f"{C0}.properties.ports[0].port", INVALID)],
        ),
        (
            "port names have a letter",
            app(component(properties={"image": "x", "ports": [{"port": 80, "name": "8080"}]})),
            [(f"{C0}.properties.ports[0].name", INVALID)],
        ),
        (
            "env names are identifiers",
            app(component(properties={"image": "x", "env": [{"name": "1=2", "value": "v"}]})),
            [(f"{C0}.properties.env[0].name", INVALID)],
        ),
        (
            "env names are not '.', '..' or '..'-prefixed (the API refuses them)",
            app(component(properties={"image": "x", "env": [
                {"name": "."}, {"name": ".."}, {"name": "..x"}, {"name": ".x"}]})),
            [(f"{C0}.properties.env[{i}].name", INVALID) for i in range(3)],
        ),
        (
            "env names are required",
            app(component(properties={"image": "x", "env": [{"value": "v"}]})),
            [(f"{C0}.properties.env[0].name", REQUIRED)],
        ),
        (
            "image without stray whitespace",
            app(component(properties={"image": "nginx "})),
            [(f"{C0}.properties.image", INVALID)],
        ),
        (
            "quantity",
            app(component(properties={"image": "x", "cpu": "lots"})),
            [(f"{C0}.properties.cpu", INVALID)],
        ),
        # traits
        (
            "one rollout trait per component",
            app(component(traits=[rollout(), rollout()])),
            [(f"{C0}.traits[1].type", DUPLICATE)],
        ),
        (
            "rollout only on webservice, worker, cloneset",
            app(component(type="task")),
            [(f"{T0}.type", FORBIDDEN)],
        ),
        (
            "trait type needs a template",
            app(component(traits=[{"type": "ingress"}])),
            [(f"{T0}.type", UNSUPPORTED)],
        ),
        # components
        (
            "component type needs a template",
            app(component(type="helm")),
            [(f"{C0}.type", UNSUPPORTED)],
        ),
        (
            "component name is DNS-1123",
            app(component(name="Express_Server")),
            [(f"{C0}.name", INVALID)],
        ),
        (
            "a trailing newline is not part of a name",
            app(component(name="express-server\n")),
            [(f"{C0}.name", INVALID)],
        ),
        (
            "component name leaves room for -vN",
            app(component(name="a" * 60, externalRevision=None)),
            [(f"{C0}.name", INVALID)],
        ),
        (
            "component names are unique",
            app(component(), component(externalRevision="express-server-v9")),
            [("spec.components[1].name", DUPLICATE)],
        ),
        (
            "externalRevision is DNS-1123",
            app(component(externalRevision="V1.0")),
            [(f"{C0}.externalRevision", INVALID)],
        ),
        (
            "targetRevision is DNS-1123",
            app(component(traits=[rollout(targetRevision="not a name")])),
            [(f"{P0}.targetRevision", INVALID)],
        ),
        # the document
        ("kind is Application", {**app(), "kind": "Deployment"}, [("kind", UNSUPPORTED)]),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_each_static_rule_reports_its_field(
    rule: str, raw: dict[str, Any], expected: list[tuple[str, ErrorType]]
) -> None:
    assert errors_of(raw) == expected, rule


def test_every_error_is_collected_in_one_pass() -> None:
    raw = app(
        component(name="Bad_Name", traits=[rollout(targetSize=-1, batchPartition=9)]),
        component(name="x", type="helm", traits=[{"type": "ingress"}]),
    )
    assert errors_of(raw) == [
        (f"{C0}.name", INVALID),
        (f"{P0}.targetSize", INVALID),
        (f"{P0}.batchPartition", INVALID),
        ("spec.components[1].type", UNSUPPORTED),
        ("spec.components[1].traits[0].type", UNSUPPORTED),
    ]


def test_the_apimachinery_message_names_path_value_and_reason() -> None:
    raw = app(component(traits=[rollout(rolloutBatches=[{"replicas": 2}, {"replicas": 0}])]))
    result = validate_static(raw, COMPONENT_TYPES, TRAIT_TYPES)
    assert [str(e) for e in result.errors] == [
        "spec.components[0].traits[0].properties.rolloutBatches[1].replicas: "
        "Invalid value: 0: must be greater than 0"
    ]
    assert result.app is None


@pytest.mark.parametrize(
    ("raw", "warning"),
    [
        (
            app(component(traits=[rollout(targetSize=0, rolloutBatches=[{"replicas": 5}])])),
            f"{P0}.targetSize: 0 scales component 'express-server' to zero replicas",
        ),
        (
            app(component(traits=[rollout(targetRevision="express-server-v1")])),
            f"{P0}.targetRevision: equals externalRevision; leaving it out has the same effect",
        ),
    ],
)
def test_legal_but_doubtful_plans_get_warnings_not_errors(
    raw: dict[str, Any], warning: str
) -> None:
    result = validate_static(raw, COMPONENT_TYPES, TRAIT_TYPES)
    assert result.ok
    assert result.warnings == (warning,)


# ---------------------------------------------------------------------------
# rules over observed state (the spec's walkthrough)

V4 = {
    "name": "express-server",
    "type": "webservice",
    "properties": {"image": "stefanprodan/podinfo:4.0.3"},
}
V5 = {
    "name": "express-server",
    "type": "webservice",
    "properties": {"image": "stefanprodan/podinfo:5.0.2"},
}


def live(
    current: str | None = None,
    size: int | None = None,
    rolling: str | None = "rolloutSucceed",
    batch: int | None = None,
    target: str | None = None,
) -> ObservedState:
    from webhook.core.revisions import spec_hash

    revisions = (
        RevisionRecord("express-server-v1", "express-server", 1, spec_hash(V4), V4),
        RevisionRecord("express-server-v2", "express-server", 2, spec_hash(V5), V5),
    )
    observation = ComponentObservation(
        current_revision=current,
        current_size=size if rolling == "rolloutSucceed" else None,
        current_batch=batch,
        rolling_state=rolling if current else None,
        rollout_target=target or current,
    )
    return ObservedState(revisions=revisions, components={"express-server": observation})


def v2(**trait: Any) -> dict[str, Any]:
    return app(
        component(
            externalRevision="express-server-v2",
            properties={"image": "stefanprodan/podinfo:5.0.2"},
            traits=[rollout(**trait)],
        )
    )


def state_errors(raw: dict[str, Any], observed: ObservedState) -> list[str]:
    parsed, shape = parse_application(raw)
    assert parsed is not None and shape == []
    resolved, errors = resolve_revisions(parsed, observed)
    assert errors == []
    return [str(e) for e in validate_against_state(parsed, observed, resolved)]


ONE_ONE = [{"replicas": 1}, {"replicas": 1}]
ONE_THREE = [{"replicas": 1}, {"replicas": 3}]


def v2_cloneset(**trait: Any) -> dict[str, Any]:
    """The spec's upgrade to express-server-v2, of a cloneset component."""
    return app(component(type="cloneset", externalRevision="express-server-v2",
                         properties={"image": "stefanprodan/podinfo:5.0.2"},
                         traits=[rollout(**trait)]))


@pytest.mark.parametrize(
    ("step", "raw", "observed"),
    [
        ("first deploy", app(), ObservedState()),
        ("upgrade to v2, first batch only", v2(batchPartition=0), live("express-server-v1", 5)),
        (
            "partition removed mid-rollout",
            v2(),
            live("express-server-v2", rolling="rollingInBatches", batch=0),
        ),
        ("rollback to v1", v2(targetRevision="express-server-v1"), live("express-server-v2", 5)),
        (
            "scale 5 -> 7",
            v2(targetRevision="express-server-v1", targetSize=7, rolloutBatches=ONE_ONE),
            live("express-server-v1", 5),
        ),
        (
            "scale 7 -> 3",
            v2(targetRevision="express-server-v1", targetSize=3, rolloutBatches=ONE_THREE),
            live("express-server-v1", 7),
        ),
        (
            "the scale re-applied after it settled",
            v2(targetRevision="express-server-v1", targetSize=7, rolloutBatches=ONE_ONE),
            live("express-server-v1", 7),
        ),
    ],
)
def test_the_spec_walkthrough_passes_the_state_rules(
    step: str, raw: dict[str, Any], observed: ObservedState
) -> None:
    assert state_errors(raw, observed) == [], step


@pytest.mark.parametrize(
    ("rule", "raw", "observed", "expected"),
    [
        (
            "first deploy: batches add up to targetSize",
            app(component(traits=[rollout(rolloutBatches=[{"replicas": 2}, {"replicas": 2}])])),
            ObservedState(),
            f"{P0}.rolloutBatches: Invalid value: [2, 2]: batch replicas add up to 4;"
            " they must add up to targetSize 5",
        ),
        (
            "upgrade: batches add up to targetSize",
            v2(rolloutBatches=ONE_ONE),
            live("express-server-v1", 5),
            f"{P0}.rolloutBatches: Invalid value: [1, 1]: batch replicas add up to 2;"
            " they must add up to targetSize 5",
        ),
        (
            "rollback: batches add up to targetSize",
            v2(targetRevision="express-server-v1", rolloutBatches=ONE_THREE),
            live("express-server-v2", 5),
            f"{P0}.rolloutBatches: Invalid value: [1, 3]: batch replicas add up to 4;"
            " they must add up to targetSize 5",
        ),
        (
            "scale out: batches add up to the increase",
            v2(targetRevision="express-server-v1", targetSize=7, rolloutBatches=ONE_THREE),
            live("express-server-v1", 5),
            f"{P0}.rolloutBatches: Invalid value: [1, 3]: batch replicas add up to 4;"
            " scaling from 5 to 7 needs them to add up to 2",
        ),
        (
            "scale in: batches add up to the decrease",
            v2(targetRevision="express-server-v1", targetSize=3, rolloutBatches=ONE_ONE),
            live("express-server-v1", 7),
            f"{P0}.rolloutBatches: Invalid value: [1, 1]: batch replicas add up to 2;"
            " scaling from 7 to 3 needs them to add up to 4",
        ),
        (
            "targetRevision must exist",
            v2(targetRevision="express-server-v0"),
            live("express-server-v2", 5),
            f'{P0}.targetRevision: Not found: "express-server-v0":'
            " component 'express-server' has revisions: express-server-v1, express-server-v2",
        ),
        (
            "targetRevision of another type than the component's",
            app(component(type="cloneset", externalRevision="express-server-v3",
                          properties={"image": "stefanprodan/podinfo:6.0.0"},
                          traits=[rollout(targetRevision="express-server-v1")])),
            live("express-server-v2", 5),
            f'{P0}.targetRevision: Invalid value: "express-server-v1": revision'
            " express-server-v1 is of type webservice and component 'express-server' is of"
            " type cloneset: a rollout does not cross a type change; name a revision of type"
            " cloneset or remove targetRevision",
        ),
        (
            "batchPartition cannot go back below the batch in flight",
            v2(batchPartition=0),
            live("express-server-v2", rolling="rollingInBatches", batch=1),
            f"{P0}.batchPartition: Forbidden: batch 1 of the rollout to express-server-v2"
            " has started; batchPartition cannot go below 1",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v and ":" not in v else "",
)
def test_each_state_rule_reports_its_field(
    rule: str, raw: dict[str, Any], observed: ObservedState, expected: str
) -> None:
    assert state_errors(raw, observed) == [expected], rule


PATH = FieldPath.root("properties")
PLAN_5_7 = RolloutPlan(7, (RolloutBatch(1), RolloutBatch(1)), None, "v1")


def test_check_scale_judges_a_plan_without_target_as_a_first_deploy() -> None:
    plan = RolloutPlan(7, (RolloutBatch(1), RolloutBatch(1)))
    observation = ComponentObservation(current_revision="v1", current_size=5)
    assert [e.type for e in check_scale(plan, observation, PATH)] == [INVALID]
    assert check_scale(PLAN_5_7, observation, PATH) == []


def test_check_scale_judges_a_new_size_for_a_run_in_flight_as_that_run_starting_over() -> None:
    # Before: skipped (the size was unknown while rolling), and the controller then failed
    # the run. An unfinished first deploy of v1 at a new size is a first deploy again.
    observation = ComponentObservation(current_revision="v1", rolling_state="rollingInBatches")
    assert [(str(e.path), e.detail) for e in check_scale(PLAN_5_7, observation, PATH)] == [
        ("properties.rolloutBatches",
         "batch replicas add up to 2; they must add up to targetSize 7; the rollout to v1 has"
         " not finished, so this change rolls it again from nothing")]


# What the controller leaves while a run holds at batchPartition 0: mid-upgrade from v1 to
# v2 at 5 ([2, 3]), mid-scale of v1 from 5 to 9 ([2, 2]), mid-first-deploy of v1 at 5.
def parked(target: str, source: str, size: int, original: int) -> ComponentObservation:
    return ComponentObservation(
        current_revision=target, current_batch=0, rolling_state="rollingInBatches",
        batch_rolling_state="batchReady", rollout_target=target, source_revision=source,
        run_size=size, original_size=original,
    )  # fmt: skip


MID_UPGRADE = parked("express-server-v2", "express-server-v1", 5, 5)
MID_SCALE = parked("express-server-v1", "express-server-v1", 9, 5)
MID_DEPLOY = parked("express-server-v1", "", 5, 0)
SETTLED_V1 = ComponentObservation("express-server-v1", 5, 1, "rolloutSucceed", "batchReady",
                                  "express-server-v1", run_size=5, complete=True)


def in_flight(observation: ComponentObservation, **changes: Any) -> dict[str, Any]:
    """The spec's Application on the revision ``observation`` rolls, with ``changes``."""
    revision = observation.current_revision or "express-server-v1"
    image = V5["properties"]["image"] if revision.endswith("v2") else V4["properties"]["image"]
    return app(component(externalRevision=revision, properties={"image": image},
                         type=changes.pop("type", "webservice"), traits=[rollout(**changes)]))


def state_of(observation: ComponentObservation) -> ObservedState:
    from webhook.core.revisions import spec_hash

    revisions = tuple(
        RevisionRecord(f"express-server-v{n}", "express-server", n, spec_hash(spec), spec)
        for n, spec in ((1, V4), (2, V5))
    )
    return ObservedState(revisions=revisions, components={"express-server": observation})


def cloneset_state(observation: ComponentObservation) -> ObservedState:
    from webhook.core.revisions import spec_hash

    specs = [{**spec, "type": "cloneset"} for spec in (V4, V5)]
    revisions = tuple(
        RevisionRecord(f"express-server-v{n}", "express-server", n, spec_hash(spec), spec)
        for n, spec in enumerate(specs, start=1)
    )
    return ObservedState(revisions=revisions, components={"express-server": observation})


SEVEN_IN_TWO = [{"replicas": 3}, {"replicas": 4}]


@pytest.mark.parametrize(
    ("raw", "observed", "expected"),
    [
        # The case: parked mid-upgrade, 5 -> 7 with batches for the difference.
        (in_flight(MID_UPGRADE, targetSize=7, rolloutBatches=ONE_ONE), state_of(MID_UPGRADE),
         [(f"{P0}.rolloutBatches", INVALID,
           "batch replicas add up to 2; they must add up to targetSize 7; the rollout to"
           " express-server-v2 has not finished, so this change rolls it again from"
           " express-server-v1")]),
        (in_flight(MID_UPGRADE, targetSize=7, rolloutBatches=SEVEN_IN_TWO),
         state_of(MID_UPGRADE), []),
        (in_flight(MID_UPGRADE, rolloutBatches=[*ONE_THREE, {"replicas": 1}]),
         state_of(MID_UPGRADE), []),  # new batches for the same run
        (in_flight(MID_SCALE, targetSize=7, rolloutBatches=[{"replicas": 2}]),
         state_of(MID_SCALE),
         [(f"{P0}.targetSize", FORBIDDEN,
           "the scale of express-server-v1 to 9 replicas has not finished (rollingInBatches),"
           " so the size a new scale would start from is not known: keep targetSize 9 until"
           " it has (remove batchPartition to let it finish)")]),
        (in_flight(MID_SCALE, targetSize=9, rolloutBatches=[{"replicas": 4}]),
         state_of(MID_SCALE), []),  # the same scale, in one batch now
        (in_flight(SETTLED_V1, type="cloneset", targetSize=7, rolloutBatches=ONE_ONE),
         cloneset_state(SETTLED_V1), []),  # a CloneSet scales like any workload
        (v2_cloneset(targetSize=7, rolloutBatches=SEVEN_IN_TWO), cloneset_state(SETTLED_V1),
         [(f"{P0}.targetSize", FORBIDDEN,
           "a CloneSet is updated in place, so rolling it to express-server-v2 keeps its 5"
           " replicas: roll express-server-v2 at 5 first, then change targetSize to 7")]),
        (v2_cloneset(), cloneset_state(SETTLED_V1), []),  # the spec's CloneSet upgrade
        (v2_cloneset(), cloneset_state(MID_DEPLOY),
         [(f"{P0}.targetSize", FORBIDDEN,
           "a CloneSet is updated in place at the size it runs, and the unfinished rollout"
           " to express-server-v1 leaves that size open: let it finish before rolling"
           " express-server-v2")]),
        (v2_cloneset(targetRevision="express-server-v1"),
         cloneset_state(parked("express-server-v2", "express-server-v1", 5, 5)),
         []),  # rolled back mid-upgrade: the CloneSet holds the run's 5 pods
    ],
    ids=["size changed mid-upgrade, batches for the difference",
         "size changed mid-upgrade, batches for the size", "batches changed mid-upgrade",
         "size changed mid-scale", "batches changed mid-scale", "CloneSet scale",
         "CloneSet upgrade with a new size", "CloneSet upgrade",
         "CloneSet upgrade over an unfinished first deploy", "CloneSet rolled back mid-upgrade"],
)  # fmt: skip
def test_a_change_to_a_run_in_flight_is_judged_by_the_run_the_controller_will_start(
    raw: dict[str, Any], observed: ObservedState, expected: list[tuple[str, ErrorType, str]]
) -> None:
    parsed, shape = parse_application(raw)
    assert parsed is not None and shape == []
    resolved, errors = resolve_revisions(parsed, observed)
    assert errors == []
    errs = validate_against_state(parsed, observed, resolved)
    assert [(str(e.path), e.type, e.detail) for e in errs] == expected


@pytest.mark.parametrize(
    ("partition", "observation", "denied"),
    [
        (
            0,
            ComponentObservation(
                rollout_target="v1", rolling_state="rollingInBatches", current_batch=1
            ),
            True,
        ),
        (
            1,
            ComponentObservation(
                rollout_target="v1", rolling_state="rollingInBatches", current_batch=1
            ),
            False,
        ),
        (
            0,
            ComponentObservation(
                rollout_target="v0", rolling_state="rollingInBatches", current_batch=1
            ),
            False,
        ),
        (
            0,
            ComponentObservation(
                rollout_target="v1", rolling_state="rolloutSucceed", current_batch=1
            ),
            False,
        ),
        (
            None,
            ComponentObservation(
                rollout_target="v1", rolling_state="rollingInBatches", current_batch=1
            ),
            False,
        ),
    ],
)
def test_batch_partition_only_moves_forward_within_one_rollout(
    partition: int | None, observation: ComponentObservation, denied: bool
) -> None:
    plan = RolloutPlan(5, (RolloutBatch(2), RolloutBatch(3)), partition, "v1")
    errors = check_partition(plan, observation, PATH)
    assert [str(e.path) for e in errors] == (["properties.batchPartition"] if denied else [])


# ---------------------------------------------------------------------------
# robustness: random values never raise

# What YAML can hand us: JSON values plus dates, and keys that are not strings.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.dates()
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=12) | st.integers() | st.booleans(), children, max_size=4
        )
    ),
    max_leaves=25,
)
KEYS = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "components",
        "name",
        "type",
        "externalRevision",
        "properties",
        "traits",
        "targetSize",
        "rolloutBatches",
        "replicas",
        "batchPartition",
        "targetRevision",
        "image",
        "ports",
        "env",
        "cmd",
    ]
)
# Values shaped like Applications, so the fuzzing reaches the deep rules too.
APPLICATIONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 10)
    | st.sampled_from(["rollout", "webservice", "worker", "x", ""]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=40,
)


def _mutated_spec_app(data: st.DataObject) -> dict[str, Any]:
    raw = copy.deepcopy(app())
    target = raw["spec"]["components"][0]
    key = data.draw(st.sampled_from(["properties", "traits", "name", "externalRevision"]))
    target[key] = data.draw(APPLICATIONISH)
    return raw


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=JSONISH | APPLICATIONISH)
def test_validation_never_raises_on_random_values(raw: object) -> None:
    result = validate_static(raw, COMPONENT_TYPES, TRAIT_TYPES)
    assert result.ok == (result.app is not None)
    assert all(isinstance(str(e), str) for e in result.errors)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validation_and_state_rules_never_raise_on_mangled_applications(
    data: st.DataObject,
) -> None:
    raw = _mutated_spec_app(data)
    parse_application(raw)
    result = validate_static(raw, COMPONENT_TYPES, TRAIT_TYPES)
    if result.app is not None:
        observed = live("express-server-v1", 5)
        resolved, errors = resolve_revisions(result.app, observed)
        found = validate_against_state(result.app, observed, resolved)
        assert all(e.path.parts[:2] == ("spec", "components") for e in [*errors, *found])
