"""Who wrote an Application: the identity the mutating webhook records, and how it is read.

The annotation must be unforgeable: a value the request brings is never trusted; a write
that leaves spec alone keeps what is stored; any other write names its sender.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import pytest

from tests.fixtures.apps import application
from tests.fixtures.webhook import StubRenderer, admission_review
from webhook.admission.judge import annotations_patch, mutate
from webhook.admission.reviews import BadReview, parse_review
from webhook.cli import build_parser
from webhook.core.labels import ANNOTATION_REQUESTER, ANNOTATION_REVISIONS
from webhook.core.requester import (
    Requester,
    decode_requester,
    encode_requester,
    requester_from_user_info,
)
from webhook.core.state import ObservedState

ALICE = {"username": "alice", "groups": ["developers", "system:authenticated"]}
MALLORY = {"username": "mallory", "groups": ["system:authenticated"]}
ALICE_VALUE = '{"groups":["developers","system:authenticated"],"username":"alice"}'
MALLORY_VALUE = '{"groups":["system:authenticated"],"username":"mallory"}'
V1_APP = application()


class Reader:
    """The mutating webhook's state reader: nothing is live yet."""

    def __call__(self, namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
        return ObservedState(namespace=namespace)


# ---------------------------------------------------------------------------
# the value


@pytest.mark.parametrize(
    ("user_info", "expected"),
    [
        (ALICE, Requester("alice", ("developers", "system:authenticated"))),
        ({"username": "bob", "groups": ["b", "a", "b", 3, ""]}, Requester("bob", ("a", "b"))),
        ({"username": "carol"}, Requester("carol")),
        ({"username": ""}, None),
        ({"groups": ["developers"]}, None),
        ({}, None),
    ],
    ids=["user and groups", "groups made canonical", "no groups", "empty name", "no name",
         "nothing"],
)
def test_the_requester_is_the_username_and_groups_of_the_user_info(
    user_info: dict[str, Any], expected: Requester | None
) -> None:
    assert requester_from_user_info(user_info) == expected


def test_the_annotation_value_is_compact_key_sorted_json_and_reads_back() -> None:
    alice = Requester("alice", ("developers", "system:authenticated"))
    assert (encode_requester(alice), decode_requester(encode_requester(alice))) == (
        ALICE_VALUE, alice)


@pytest.mark.parametrize(
    "value",
    [None, 7, "", "alice", "[]", '{"groups":[]}', '{"username":""}',
     '{"username":"a","groups":"g"}', '{"username":"a","groups":[1]}'],
)
def test_a_value_the_webhook_did_not_write_names_nobody(value: object) -> None:
    assert decode_requester(value) is None


@pytest.mark.parametrize(
    ("username", "account", "described"),
    [
        ("alice", None, 'user "alice"'),
        ("system:serviceaccount:ci:deployer", ("ci", "deployer"),
         "service account ci/deployer"),
        ("system:serviceaccount:ci", None, 'user "system:serviceaccount:ci"'),
    ],
)
def test_a_service_account_writer_is_named_as_one(
    username: str, account: tuple[str, str] | None, described: str
) -> None:
    who = Requester(username)
    assert (who.service_account, who.describe()) == (account, described)


# ---------------------------------------------------------------------------
# the mutating webhook


def with_annotations(obj: dict[str, Any], **annotations: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["annotations"] = {**(out["metadata"].get("annotations") or {}),
                                      **annotations}
    return out


def review(obj: dict[str, Any], user: dict[str, Any], *, operation: str = "CREATE",
           old: dict[str, Any] | None = None) -> dict[str, Any]:
    body = admission_review(obj, operation=operation, old=old)
    body["request"]["userInfo"] = user
    return body


def mutated(body: dict[str, Any], record: bool = True) -> dict[str, Any]:
    """The object as the API server stores it after our patch."""
    answer = mutate(parse_review(body), Reader(), StubRenderer(), record_requester=record)
    assert answer["response"]["allowed"] is True
    obj = body["request"]["object"]
    patch = answer["response"].get("patch")
    if patch is None:
        return dict(obj)
    result: dict[str, Any] = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(patch)))
    return result


def recorded(obj: dict[str, Any]) -> str | None:
    value = (obj["metadata"].get("annotations") or {}).get(ANNOTATION_REQUESTER)
    return value if value is None else str(value)


STORED_BY_ALICE = with_annotations(V1_APP, **{ANNOTATION_REQUESTER: ALICE_VALUE})
NEW_SPEC = application(image="stefanprodan/podinfo:5.0.2", external_revision="express-server-v2")


@pytest.mark.parametrize(
    ("obj", "user", "operation", "old", "expected"),
    [
        (V1_APP, ALICE, "CREATE", None, ALICE_VALUE),
        (with_annotations(V1_APP, **{ANNOTATION_REQUESTER: ALICE_VALUE}), MALLORY, "CREATE",
         None, MALLORY_VALUE),
        (with_annotations(NEW_SPEC, **{ANNOTATION_REQUESTER: ALICE_VALUE}), MALLORY, "UPDATE",
         STORED_BY_ALICE, MALLORY_VALUE),
        (with_annotations(V1_APP, **{ANNOTATION_REQUESTER: MALLORY_VALUE}), MALLORY, "UPDATE",
         STORED_BY_ALICE, ALICE_VALUE),
        (V1_APP, MALLORY, "UPDATE", STORED_BY_ALICE, ALICE_VALUE),
        (with_annotations(V1_APP, **{ANNOTATION_REQUESTER: MALLORY_VALUE}), MALLORY, "UPDATE",
         V1_APP, None),
        (with_annotations(V1_APP, **{ANNOTATION_REQUESTER: "garbage"}), {}, "CREATE", None,
         None),
    ],
    ids=["create names its sender", "a forged value on create is overwritten",
         "a new spec names its sender, whatever it claims",
         "a metadata-only update cannot change the writer",
         "a metadata-only update cannot drop the writer",
         "a metadata-only update cannot add a writer",
         "a sender without a name leaves no writer"],
)
def test_the_recorded_writer_is_whoever_last_wrote_the_spec_never_what_the_request_claims(
    obj: dict[str, Any], user: dict[str, Any], operation: str, old: dict[str, Any] | None,
    expected: str | None,
) -> None:
    assert recorded(mutated(review(obj, user, operation=operation, old=old))) == expected


@pytest.mark.parametrize(
    ("obj", "old", "expected"),
    [
        (V1_APP, None, None),
        (with_annotations(V1_APP, **{ANNOTATION_REQUESTER: ALICE_VALUE}), None, None),
        (with_annotations(V1_APP, **{ANNOTATION_REQUESTER: MALLORY_VALUE}), STORED_BY_ALICE,
         ALICE_VALUE),
    ],
    ids=["nothing recorded", "a forged value is removed", "metadata-only keeps what is stored"],
)
def test_with_recording_off_no_writer_is_recorded_and_none_can_be_forged(
    obj: dict[str, Any], old: dict[str, Any] | None, expected: str | None
) -> None:
    operation = "UPDATE" if old is not None else "CREATE"
    result = mutated(review(obj, MALLORY, operation=operation, old=old), record=False)
    assert recorded(result) == expected


def test_the_writer_is_recorded_beside_the_revisions_in_one_idempotent_patch() -> None:
    once = mutated(review(V1_APP, ALICE))
    assert once["metadata"]["annotations"] == {
        ANNOTATION_REVISIONS: '{"express-server":"express-server-v1"}',
        ANNOTATION_REQUESTER: ALICE_VALUE,
    }
    again = mutate(parse_review(review(once, ALICE)), Reader(), StubRenderer(),
                   record_requester=True)
    assert "patch" not in again["response"]


def test_an_application_validation_will_deny_still_cannot_carry_a_forged_writer() -> None:
    broken = with_annotations({**V1_APP, "spec": {"components": "x"}},
                              **{ANNOTATION_REQUESTER: ALICE_VALUE})
    assert recorded(mutated(review(broken, MALLORY))) == MALLORY_VALUE


REQ = ANNOTATION_REQUESTER
REV = ANNOTATION_REVISIONS


@pytest.mark.parametrize(
    ("obj", "wanted"),
    [
        ({}, {REQ: "a", REV: "r"}),
        ({"metadata": {}}, {REQ: None, REV: "r"}),
        ({"metadata": {}}, {REQ: None}),
        ({"metadata": {"annotations": None}}, {REQ: None}),
        ({"metadata": {"annotations": "x"}}, {REQ: "a"}),
        ({"metadata": {"annotations": {REQ: "a", "team": "t"}}}, {REQ: None, REV: "r"}),
        ({"metadata": {"annotations": {REQ: "b", REV: "r"}}}, {REQ: "a", REV: "r"}),
        ({"metadata": {"annotations": {REQ: 1}}}, {REQ: "a"}),
        ({"metadata": {"annotations": {REQ: "a", REV: "r"}}}, {REQ: "a", REV: "r"}),
    ],
    ids=["no metadata", "no annotations", "nothing to do", "annotations null",
         "annotations string", "remove one, add one", "replace one, keep one", "not a string",
         "already right"],
)
def test_the_annotations_patch_is_the_one_a_full_diff_finds(
    obj: dict[str, Any], wanted: dict[str, str | None]
) -> None:
    metadata = obj.get("metadata")
    before = {"metadata": metadata if isinstance(metadata, dict) else {}}
    after = copy.deepcopy(before)
    annotations = after["metadata"].get("annotations")
    if not isinstance(annotations, dict) and any(v is not None for v in wanted.values()):
        annotations = after["metadata"]["annotations"] = {}
    for key, value in wanted.items():
        if isinstance(annotations, dict):
            if value is None:
                annotations.pop(key, None)
            else:
                annotations[key] = value
    ops = annotations_patch(obj, wanted)
    assert jsonpatch.apply_patch(before, ops) == after
    assert len(ops) == len(jsonpatch.make_patch(before, after).patch)


def test_a_user_info_that_is_not_an_object_is_not_an_admission_review() -> None:
    body = admission_review(V1_APP)
    body["request"]["userInfo"] = "alice"
    with pytest.raises(BadReview, match="userInfo"):
        parse_review(body)


@pytest.mark.parametrize(("flags", "record"), [([], True), (["--no-record-requester"], False)])
def test_the_webhook_server_records_writers_unless_told_not_to(
    flags: list[str], record: bool
) -> None:
    args = build_parser().parse_args(["webhook", "--tls-cert", "c", "--tls-key", "k", *flags])
    assert args.record_requester is record
