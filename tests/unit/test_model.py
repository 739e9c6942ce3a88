"""The Application model: raw objects into values, text into documents, live objects into state."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.apps import application_of, component_fields
from webhook.core.documents import load_documents
from webhook.core.errors import InputError
from webhook.core.model import (
    Application,
    RolloutBatch,
    RolloutPlan,
    Trait,
    parse_application,
    parse_rollout_plan,
)
from webhook.core.objects import observed_state_from_documents
from webhook.core.paths import FieldPath
from webhook.core.state import ComponentObservation


def application(**component: Any) -> dict[str, Any]:
    """The spec's first Application, with the first component's fields overridden (a None
    stays, as null)."""
    return application_of({**component_fields(), **component}, namespace="demo", uid="u-1")


def test_the_spec_application_parses_into_plain_values() -> None:
    app, errors = parse_application(application())
    assert errors == []
    assert app is not None
    assert (app.name, app.namespace, app.uid) == ("rollout-trait-test", "demo", "u-1")
    component = app.component("express-server")
    assert component is not None
    assert component.external_revision == "express-server-v1"
    assert component.rollout() == RolloutPlan(
        target_size=5, rollout_batches=(RolloutBatch(2), RolloutBatch(3))
    )


def test_component_spec_is_the_revision_data_without_traits() -> None:
    app, _ = parse_application(application())
    assert app is not None
    assert app.components[0].spec() == {
        "name": "express-server",
        "type": "webservice",
        "properties": {"image": "stefanprodan/podinfo:4.0.3"},
        "externalRevision": "express-server-v1",
    }


def test_parsed_values_do_not_alias_the_input_and_stay_json_friendly() -> None:
    raw = application(properties={"image": "a", "env": [{"name": "X", "value": "1"}]})
    app, _ = parse_application(raw)
    assert app is not None
    raw["spec"]["components"][0]["properties"]["image"] = "changed"
    assert app.components[0].properties["image"] == "a"
    assert json.loads(json.dumps(app.components[0].properties)) == {
        "image": "a",
        "env": [{"name": "X", "value": "1"}],
    }
    assert copy.deepcopy(app) == app


def test_a_component_without_a_rollout_trait_has_no_plan() -> None:
    app, _ = parse_application(application(traits=[]))
    assert app is not None and app.components[0].rollout() is None


def test_an_invalid_rollout_trait_gives_no_plan() -> None:
    trait = {"type": "rollout", "properties": {"targetSize": "5", "rolloutBatches": []}}
    app, errors = parse_application(application(traits=[trait]))
    assert errors == []  # shape is fine; the values are validation's business
    assert app is not None and app.components[0].rollout() is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("not an object", [": Invalid value"]),
        (
            {},
            [
                "apiVersion: Required value",
                "kind: Required value",
                "metadata: Required value",
                "spec: Required value",
            ],
        ),
        (
            {**application(), "apiVersion": "core.oam.dev/v1alpha2"},
            ['apiVersion: Unsupported value: "core.oam.dev/v1alpha2"'],
        ),
        ({**application(), "kind": "Deployment"}, ['kind: Unsupported value: "Deployment"']),
        ({**application(), "metadata": {"namespace": "x"}}, ["metadata.name: Required value"]),
        ({**application(), "metadata": {}}, ["metadata.name: Required value"]),
        ({**application(), "metadata": {"name": ""}}, ["metadata.name: Required value"]),
        ({**application(), "metadata": {"name": 3}}, ["metadata.name: Invalid value: 3"]),
        ({**application(), "spec": {}}, ["spec.components: Required value"]),
        ({**application(), "spec": {"components": {}}}, ["spec.components: Invalid value: {}"]),
        (
            {**application(), "spec": {"components": ["x"]}},
            ['spec.components[0]: Invalid value: "x"'],
        ),
        (application(name=None), ["spec.components[0].name: Required value"]),
        (application(type=7), ["spec.components[0].type: Invalid value: 7"]),
        (
            application(externalRevision=1),
            ["spec.components[0].externalRevision: Invalid value: 1"],
        ),
        (application(properties=[1]), ["spec.components[0].properties: Invalid value: [1]"]),
        (application(traits={"type": "rollout"}), ["spec.components[0].traits: Invalid value"]),
        (application(traits=[{}]), ["spec.components[0].traits[0].type: Required value"]),
        (
            application(traits=[{"type": "rollout", "properties": "x"}]),
            ['spec.components[0].traits[0].properties: Invalid value: "x"'],
        ),
        (
            {**application(), "metadata": {"name": "a", "labels": {"k": 1}}},
            ["metadata.labels[k]: Invalid value: 1"],
        ),
    ],
)
def test_shape_errors_name_their_field_and_yield_no_application(
    raw: object, expected: list[str]
) -> None:
    app, errors = parse_application(raw)
    assert app is None
    printed = [str(e) for e in errors]
    assert len(printed) == len(expected), printed
    for line, prefix in zip(printed, expected, strict=True):
        assert line.startswith(prefix), (line, prefix)


ROLLOUT_PATH = FieldPath.root("properties")


@pytest.mark.parametrize(
    ("properties", "plan"),
    [
        (
            {"targetSize": 5, "rolloutBatches": [{"replicas": 2}, {"replicas": 3}]},
            RolloutPlan(5, (RolloutBatch(2), RolloutBatch(3))),
        ),
        (
            {
                "targetRevision": "express-server-v1",
                "targetSize": 7,
                "rolloutBatches": [{"replicas": 1}, {"replicas": 1}],
                "batchPartition": 1,
            },
            RolloutPlan(7, (RolloutBatch(1), RolloutBatch(1)), 1, "express-server-v1"),
        ),
        (
            {"targetSize": 0, "rolloutBatches": [{"replicas": 4}]},
            RolloutPlan(0, (RolloutBatch(4),)),
        ),
    ],
)
def test_valid_rollout_properties_become_a_plan(
    properties: dict[str, Any], plan: RolloutPlan
) -> None:
    assert parse_rollout_plan(properties, ROLLOUT_PATH) == (plan, [])


def test_a_plan_adds_up_its_batches() -> None:
    assert RolloutPlan(7, (RolloutBatch(1), RolloutBatch(3))).batch_sum() == 4


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("a: 1\n", 1),
        ("---\na: 1\n---\n---\nb: 2\n", 2),
        ('{"a": 1}', 1),
        ("apiVersion: v1\nkind: List\nitems:\n- a: 1\n- b: 2\n", 2),
        ("", 0),
    ],
)
def test_documents_are_read_from_yaml_or_json_streams(text: str, count: int) -> None:
    assert len(load_documents(text)) == count


@pytest.mark.parametrize("text", ["a: [1, 2\n", "key: value\n  bad: indent\n", "\t- x: : :\n"])
def test_text_that_is_not_yaml_raises_a_one_line_input_error(text: str) -> None:
    with pytest.raises(InputError) as caught:
        load_documents(text)
    message = str(caught.value)
    assert message.startswith("not valid YAML")
    assert "\n" not in message


LIVE = [
    {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": "express-server-v1",
            "labels": {
                "controller.oam.dev/component": "express-server",
                "app.oam.dev/component-revision-hash": "abc",
            },
            "ownerReferences": [
                {"kind": "Application", "name": "rollout-trait-test", "controller": True}
            ],
        },
        "revision": 1,
        "data": {"name": "express-server", "type": "webservice", "properties": {"image": "x"}},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "unlabelled"},
        "revision": 1,
    },
    {
        "apiVersion": "standard.oam.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "express-server"},
        "spec": {"targetRevisionName": "express-server-v1"},
        "status": {
            "rolloutTargetSize": 5,
            "currentBatch": 1,
            "rollingState": "rolloutSucceed",
            "batchRollingState": "batchReady",
            "lastTargetRevision": "express-server-v1",
        },
    },
    {"kind": "ConfigMap", "metadata": {"name": "ignored"}},
]


def test_live_objects_become_observed_state() -> None:
    state = observed_state_from_documents(LIVE)
    assert [(r.name, r.component, r.number, r.spec_hash, r.owner) for r in state.revisions] == [
        ("express-server-v1", "express-server", 1, "abc", "rollout-trait-test")
    ]
    assert state.revisions[0].data["properties"] == {"image": "x"}
    assert state.component("express-server") == ComponentObservation(
        current_revision="express-server-v1",
        current_size=5,
        current_batch=1,
        rolling_state="rolloutSucceed",
        batch_rolling_state="batchReady",
        rollout_target="express-server-v1",
        run_size=5,
    )


def test_a_rollout_still_rolling_has_no_settled_size() -> None:
    rolling = copy.deepcopy(LIVE[2])
    rolling["status"]["rollingState"] = "rollingInBatches"
    assert observed_state_from_documents([rolling]).component("express-server").current_size is None


def test_a_components_plan_is_parsed_once_and_a_replaced_component_parses_its_own() -> None:
    app, _ = parse_application(application())
    assert app is not None
    component = app.components[0]
    first = component.rollout()
    assert first is not None and component.rollout() is first
    resized = Trait("rollout", {"targetSize": 3, "rolloutBatches": [{"replicas": 3}]})
    replaced = dataclasses.replace(component, traits=(resized,))
    assert replaced.rollout() == RolloutPlan(3, (RolloutBatch(3),))
    assert replaced == dataclasses.replace(component, traits=(resized,))
    assert component.rollout() == RolloutPlan(5, (RolloutBatch(2), RolloutBatch(3)))


def test_an_application_value_is_immutable() -> None:
    app, _ = parse_application(application())
    assert isinstance(app, Application)
    with pytest.raises(AttributeError):
        app.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("rolloutBatch", 'did you mean "rolloutBatches"? '),
        ("targetsize", 'did you mean "targetSize"? '),
        ("zzz", ""),
    ],
)
def test_an_unknown_rollout_property_is_named_with_a_hint_for_typos(key: str, hint: str) -> None:
    properties = {"targetSize": 1, "rolloutBatches": [{"replicas": 1}], key: 1}
    plan, errors = parse_rollout_plan(properties, ROLLOUT_PATH)
    assert plan is None
    assert [str(e) for e in errors] == [
        f'properties.{key}: Unsupported value: "{key}": {hint}supported values: '
        '"targetRevision", "targetSize", "rolloutBatches", "batchPartition", "paused"'
    ]


# Characters that carry meaning in YAML, plus NUL, which YAML forbids.
YAML_CHARACTERS = [*"ab:-[]{},'\"&*!|>#\n\t ?%@`0.", "\x00"]
YAMLISH_TEXT = st.text(alphabet=st.sampled_from(YAML_CHARACTERS), max_size=60)


@settings(max_examples=300, deadline=None)
@given(text=YAMLISH_TEXT | st.text(max_size=60))
def test_any_text_either_loads_or_raises_a_one_line_input_error(text: str) -> None:
    try:
        docs = load_documents(text)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    for doc in docs:
        parse_application(doc)
