"""Admission beside another controller: Applications of types we have no template for.

With the webhook's ``--unknown-types ignore`` (the policy's unknown_types), such an
Application is admitted untouched with one warning saying why; one of known types is
judged as ever; with the default (deny) the unknown type is refused at its field.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.fixtures.apps import application, application_of, component_fields, rollout_trait
from tests.fixtures.webhook import StubRenderer, admission_review
from webhook.admission.judge import judge, mutate, validate
from webhook.admission.reviews import parse_review
from webhook.core.labels import ANNOTATION_REQUESTER
from webhook.core.properties import ComponentPolicy
from webhook.core.state import ObservedState

IGNORE = ComponentPolicy(unknown_types="ignore")
DENY = ComponentPolicy()
BAD_BATCHES = rollout_trait(rolloutBatches=[{"replicas": 1}])  # adds up to 1, not 5


def unreachable(namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
    raise AssertionError("a passed-through Application must not be looked up")


def patch_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    response = answer["response"]
    if "patch" not in response:
        return []
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


CASES: dict[str, tuple[dict[str, Any], ComponentPolicy, bool, list[str], str]] = {
    # (app, policy, allowed, error fields, a warning containing)
    "unknown component type, ignore": (
        application(type="helm", rollout=None), IGNORE, True, [], "spec.components[0].type"),
    "unknown trait type, ignore": (
        application_of(component_fields(traits=[{"type": "gateway"}])), IGNORE, True, [],
        "spec.components[0].traits[0].type"),
    "unknown type with a bad rollout, ignore: not ours to judge": (
        application_of(component_fields(type="helm", traits=[BAD_BATCHES])), IGNORE, True, [],
        "'helm'"),
    "unknown component type, deny": (
        application(type="helm", rollout=None), DENY, False, ["spec.components[0].type"], ""),
    "known type with bad batches, ignore: still judged": (
        application_of(component_fields(traits=[BAD_BATCHES])), IGNORE, False,
        ["spec.components[0].traits[0].properties.rolloutBatches"], ""),
    "known type, good, ignore": (application(), IGNORE, True, [], ""),
}


@pytest.mark.parametrize(("app", "policy", "allowed", "fields", "warning"), CASES.values(),
                         ids=CASES.keys())
def test_unknown_types_pass_through_only_when_ignored_and_known_ones_are_judged(
    app: dict[str, Any], policy: ComponentPolicy, allowed: bool, fields: list[str],
    warning: str,
) -> None:
    verdict = judge(app, ObservedState(), StubRenderer(), policy=policy)
    assert (verdict.allowed, sorted({str(e.path) for e in verdict.errors})) == (allowed, fields)
    passed = [w for w in verdict.warnings if "admitted untouched" in w]
    assert len(passed) == (1 if warning else 0)
    assert all(warning in w for w in passed)


def test_the_validating_webhook_admits_a_passed_through_application_with_the_warning() -> None:
    request = parse_review(admission_review(application(type="helm", rollout=None)))
    answer = validate(request, unreachable, StubRenderer(), policy=IGNORE)
    response = answer["response"]
    assert (response["allowed"], patch_of(answer), len(response.get("warnings", []))) == (
        True, [], 1)
    assert "no template for spec.components[0].type: 'helm'" in response["warnings"][0]


def test_the_mutating_webhook_leaves_a_passed_through_application_untouched() -> None:
    request = parse_review(admission_review(application(type="helm", rollout=None)))
    answer = mutate(request, unreachable, StubRenderer(), record_requester=True, policy=IGNORE)
    assert (answer["response"]["allowed"], patch_of(answer),
            answer["response"].get("warnings")) == (True, [], None)


def test_a_requester_annotation_a_passed_through_application_brings_is_removed() -> None:
    app = application(type="helm", rollout=None)
    app["metadata"]["annotations"] = {ANNOTATION_REQUESTER: '{"username":"admin"}',
                                      "team": "a"}
    answer = mutate(parse_review(admission_review(app)), unreachable, StubRenderer(),
                    record_requester=True, policy=IGNORE)
    assert patch_of(answer) == [
        {"op": "remove", "path": "/metadata/annotations/rollout.oam.dev~1requester"}]


def test_the_mutating_webhook_still_records_revisions_of_known_types_when_ignoring() -> None:
    request = parse_review(admission_review(application()))
    answer = mutate(request, lambda ns, name, *, rollouts=True: ObservedState(),
                    StubRenderer(), policy=IGNORE)
    assert [op["path"] for op in patch_of(answer)] == ["/metadata/annotations"]
