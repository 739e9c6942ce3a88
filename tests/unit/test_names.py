"""The names an Application gives objects: what the API server would refuse, and who owns a name.

One table row per rule, each with the exact field path, error type and detail, through
the static validation (application and component names), through judge (revision names
a change creates, ownership of component names) and the `validate` CLI with --revisions
(the same ownership error from a file of live objects).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import application, application_of, component_fields, parsed, plan
from tests.fixtures.webhook import StubRenderer
from webhook.admission.judge import judge
from webhook.cli import main
from webhook.core.errors import ErrorType
from webhook.core.names import ownership_errors, revision_name_errors
from webhook.core.revisions import resolve_revisions, spec_hash
from webhook.core.state import ObservedState, OwnerRef, RevisionRecord
from webhook.core.validation import validate_static

TYPES = ("webservice", "worker", "cloneset")
INVALID = ErrorType.INVALID
NAME_63 = "a" * 63
SUBDOMAIN_DETAIL = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-'"
    " or '.', and must start and end with an alphanumeric character"
)
APP_NAME_DETAIL = (
    "must be no more than 63 characters: it is the value of label app.oam.dev/name on every"
    " object of the Application"
)
SERVICE_DETAIL = (
    "a port sets expose, so this is the name of a Service, a DNS-1035 label: lower case"
    " alphanumeric characters or '-', starting with a letter and ending with an alphanumeric"
    " character"
)
CLONESET_DETAIL = (
    "must be no more than 52 characters: the CloneSet's pods carry label"
    " controller-revision-hash, <name>-<hash of 10 characters>, which may be at most 63"
)
EXPOSED = {"image": "x", "ports": [{"port": 80, "expose": True}]}


def static_errors(raw: dict[str, Any]) -> list[tuple[str, ErrorType, str]]:
    result = validate_static(raw, TYPES, ("rollout",))
    return [(str(e.path), e.type, e.detail) for e in result.errors]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (application(NAME_63), []),
        (application("a" * 64), [("metadata.name", INVALID, APP_NAME_DETAIL)]),
        (application("my.app"), []),  # an object name may hold dots, so may a label value
        (application("My_App"), [("metadata.name", INVALID, SUBDOMAIN_DETAIL)]),
        (application("web", properties={"ports": [{"port": 80, "expose": True}]}), []),
        (application_of(component_fields(name="9web", properties=EXPOSED)),
         [("spec.components[0].name", INVALID, SERVICE_DETAIL)]),
        (application_of(component_fields(name="9web", properties={"image": "x", "ports": [
            {"port": 80}]})), []),  # not exposed: no Service, a DNS-1123 label will do
        (application_of(component_fields(name="w" * 52, type="cloneset")), []),
        (application_of(component_fields(name="w" * 53, type="cloneset")),
         [("spec.components[0].name", INVALID, CLONESET_DETAIL)]),
        (application_of(component_fields(name="w" * 53)), []),  # a Deployment's pods do not
    ],
    ids=["app name of 63", "app name of 64", "app name with a dot", "app name not a subdomain",
         "exposed", "exposed, not DNS-1035", "not exposed, starts with a digit",
         "CloneSet name of 52", "CloneSet name of 53", "webservice name of 53"],
)  # fmt: skip
def test_a_name_the_api_would_refuse_where_it_ends_up_is_refused_at_its_field(
    raw: dict[str, Any], expected: list[tuple[str, ErrorType, str]]
) -> None:
    assert static_errors(raw) == expected


def test_a_name_that_is_no_label_at_all_is_reported_once() -> None:
    raw = application_of(component_fields(name="9_Web", type="cloneset", properties=EXPOSED))
    assert [(path, kind) for path, kind, _ in static_errors(raw)] == [
        ("spec.components[0].name", INVALID)]


# ---- revision names a change creates ------------------------------------------------------


def records(component: str, *numbers: int, owner: str = "rollout-trait-test",
            kind: str = "Application") -> tuple[RevisionRecord, ...]:
    return tuple(RevisionRecord(f"{component}-v{n}", component, n, f"h{n}", {}, owner, kind)
                 for n in numbers)


@pytest.mark.parametrize(
    ("name", "number", "expected"),
    [("w" * 57, 9998, []),
     ("w" * 57, 9999,
      [("spec.components[0].name", INVALID,
        f"the revision this change creates, '{'w' * 57}-v10000', would be longer than 63"
        " characters (a label value on its workload and pods): set externalRevision")])],
    ids=["-v9999", "-v10000"],
)  # fmt: skip
def test_a_generated_revision_name_past_63_characters_is_refused_at_the_component_name(
    name: str, number: int, expected: list[tuple[str, ErrorType, str]]
) -> None:
    app = parsed(application(component=name, external_revision=None, rollout=None))
    state = ObservedState(revisions=records(name, number))
    resolved, errors = resolve_revisions(app, state)
    assert errors == []
    errs = revision_name_errors(app, resolved)
    assert [(str(e.path), e.type, e.detail) for e in errs] == expected


# ---- ownership of component names ---------------------------------------------------------

OWNED_BY_A = (
    "the name is taken in namespace 'default': Rollout 'express-server', ControllerRevision"
    " 'express-server-v1' controlled by Application 'a'; a component name belongs to one"
    " Application of a namespace"
)


@pytest.mark.parametrize(
    ("state", "detail"),
    [
        (ObservedState(revisions=records("express-server", 1, owner="a"),
                       rollout_owners={"express-server": OwnerRef("Application", "a")}),
         OWNED_BY_A),
        (ObservedState(rollout_owners={"express-server": OwnerRef("AppRollout", "vela")}),
         "the name is taken in namespace 'default': Rollout 'express-server' controlled by"
         " AppRollout 'vela'; a component name belongs to one Application of a namespace"),
        (ObservedState(revisions=records("express-server", 1, 2, owner="a")),
         "the name is taken in namespace 'default': ControllerRevision 'express-server-v1',"
         " ControllerRevision 'express-server-v2' controlled by Application 'a'; a component"
         " name belongs to one Application of a namespace"),
        (ObservedState(revisions=records("express-server", 1),
                       rollout_owners={"express-server": OwnerRef("Application",
                                                                  "rollout-trait-test")}),
         None),
        (ObservedState(revisions=records("express-server", 1, owner="", kind="")), None),
        (ObservedState(rollout_owners={"other": OwnerRef("Application", "a")}), None),
    ],
    ids=["another app's Rollout and revisions", "another controller's Rollout",
         "another app's revisions", "this app's own", "nobody's revision",
         "another component's Rollout"],
)  # fmt: skip
def test_a_component_name_another_owner_controls_is_refused_at_the_name(
    state: ObservedState, detail: str | None
) -> None:
    errs = ownership_errors(parsed(application()), state)
    assert [(str(e.path), e.type, e.value, e.detail) for e in errs] == (
        [] if detail is None else [("spec.components[0].name", INVALID, "express-server", detail)])


def test_judge_refuses_a_taken_name_before_any_rule_over_another_apps_objects() -> None:
    # The other app's revision would also fail this app's externalRevision rule; the
    # name comes first, and alone.
    state = ObservedState(revisions=records("express-server", 1, owner="a"),
                          rollout_owners={"express-server": OwnerRef("Application", "a")})
    verdict = judge(application(), state, StubRenderer())
    assert [(str(e.path), e.detail) for e in verdict.errors] == [
        ("spec.components[0].name", OWNED_BY_A)]


def test_the_validate_cli_gives_the_same_error_when_the_live_file_shows_the_owner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = [{"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "name": "a",
              "uid": "u-a", "controller": True}]
    labels = {"controller.oam.dev/component": "express-server",
              "app.oam.dev/component-revision-hash": spec_hash(
                  {"type": "webservice", "properties": {"image": "other"}})}
    live = [
        {"apiVersion": "apps/v1", "kind": "ControllerRevision", "revision": 1,
         "metadata": {"name": "express-server-v1", "labels": labels, "ownerReferences": owner},
         "data": {"name": "express-server", "type": "webservice",
                  "properties": {"image": "other"}}},
        {"apiVersion": "standard.oam.dev/v1alpha1", "kind": "Rollout",
         "metadata": {"name": "express-server", "ownerReferences": owner},
         "spec": {"targetRevisionName": "express-server-v1",
                  "rolloutPlan": plan(5, 2, 3)}},
    ]
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(application()))
    (tmp_path / "live.yaml").write_text(yaml.safe_dump_all(live))
    code = main(["validate", "-f", str(tmp_path / "app.yaml"), "--revisions",
                 str(tmp_path / "live.yaml")])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.splitlines() == [f'spec.components[0].name: Invalid value: "express-server":'
                                f" {OWNED_BY_A}"]
