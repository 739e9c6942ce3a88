"""AdmissionReview wire shapes: what parses, and what each response builder puts on the wire."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.fixtures.apps import application
from tests.fixtures.webhook import admission_review
from webhook.admission.reviews import (
    MAX_WARNING_CHARS,
    BadReview,
    allowed,
    denied,
    errored,
    parse_review,
    patched,
)
from webhook.admission.reviews import invalid as invalid_review
from webhook.core.errors import invalid, required
from webhook.core.paths import FieldPath

V1 = "admission.k8s.io/v1"
V1BETA1 = "admission.k8s.io/v1beta1"


def _with(body: dict[str, Any], **request_changes: Any) -> dict[str, Any]:
    body["request"].update(request_changes)
    return body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "not a JSON object"),
        ("AdmissionReview", "not a JSON object"),
        ({"apiVersion": V1, "kind": "Pod", "request": {}}, "kind must be AdmissionReview"),
        ({"apiVersion": "v1", "kind": "AdmissionReview"}, "apiVersion must be one of"),
        ({"apiVersion": V1, "kind": "AdmissionReview"}, "request is missing"),
        ({"apiVersion": V1, "kind": "AdmissionReview", "request": []}, "request is missing"),
        (_with(admission_review(application()), uid=""), "request.uid"),
        (_with(admission_review(application()), uid=7), "request.uid"),
        (_with(admission_review(application()), operation=None), "request.operation"),
        (_with(admission_review(application()), object="x"), "request.object is not an object"),
        (_with(admission_review(application()), oldObject=[1]), "request.oldObject"),
        (_with(admission_review(application()), namespace=3), "request.namespace"),
        (_with(admission_review(application()), kind="Application"), "request.kind"),
    ],
)
def test_bodies_that_are_not_admission_reviews_are_refused_with_a_reason(
    body: Any, reason: str
) -> None:
    with pytest.raises(BadReview, match=reason):
        parse_review(body)


def test_a_review_request_keeps_what_admission_needs() -> None:
    app = application(namespace="team-a")
    body = admission_review(
        app, operation="UPDATE", old=app, dry_run=True, namespace="team-a", uid="u-1"
    )
    request = parse_review(body)
    assert (request.uid, request.operation, request.namespace, request.dry_run) == (
        "u-1",
        "UPDATE",
        "team-a",
        True,
    )
    assert request.kind_name == "Application"
    assert request.object_name == "rollout-trait-test"
    assert request.object == app
    assert request.old_object == app


@pytest.mark.parametrize("version", [V1, V1BETA1])
def test_every_response_is_answered_in_the_request_version(version: str) -> None:
    request = parse_review(admission_review(application(), api_version=version, uid="abc"))
    error = required(FieldPath.root("spec"))
    for review in (
        allowed(request),
        patched(request, [{"op": "add", "path": "/a", "value": 1}]),
        denied(request, "no"),
        invalid_review(request, [error]),
        errored(request, "boom"),
    ):
        assert review["apiVersion"] == version
        assert review["kind"] == "AdmissionReview"
        assert review["response"]["uid"] == "abc"


def test_a_patch_travels_as_base64_json_patch() -> None:
    request = parse_review(admission_review(application()))
    ops = [{"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}]
    response = patched(request, ops)["response"]
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == ops


def test_an_empty_patch_is_a_plain_allow() -> None:
    request = parse_review(admission_review(application()))
    assert patched(request, [])["response"] == {"allowed": True, "uid": request.uid}


def test_invalid_lists_every_field_error_with_code_422_and_causes() -> None:
    request = parse_review(admission_review(application()))
    base = FieldPath.root("spec", "components").index(0)
    errors = [
        invalid(base.child("traits").index(0).child("properties", "targetSize"), "5", "bad"),
        required(base.child("name")),
    ]
    status = invalid_review(request, errors)["response"]["status"]
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    assert status["message"].startswith('Application.core.oam.dev "rollout-trait-test" is invalid')
    for error in errors:
        assert str(error) in status["message"]
    assert [c["field"] for c in status["details"]["causes"]] == [
        "spec.components[0].traits[0].properties.targetSize",
        "spec.components[0].name",
    ]
    assert status["details"]["kind"] == "Application"
    assert status["details"]["group"] == "core.oam.dev"


def test_errored_denies_with_code_500() -> None:
    request = parse_review(admission_review(application()))
    response = errored(request, "cannot read the cluster")["response"]
    assert response["allowed"] is False
    assert response["status"] == {
        "status": "Failure",
        "message": "cannot read the cluster",
        "reason": "InternalError",
        "code": 500,
    }


def test_warnings_are_cut_to_the_apiserver_limit_and_deduplicated() -> None:
    request = parse_review(admission_review(application()))
    long = "x" * 300
    warnings = allowed(request, [long, "same", "same", "  spaced\n  out  "])["response"]["warnings"]
    assert [len(w) for w in warnings] == [MAX_WARNING_CHARS, 4, 10]
    assert warnings[1:] == ["same", "spaced out"]
