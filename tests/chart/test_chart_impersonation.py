"""controller.impersonate in the chart: the controller's flag and the one RBAC rule it needs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures import chart as m
from webhook.cli import build_parser


def impersonation_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rule, in any role of the release, that grants ``impersonate``."""
    return [rule for obj in objects if obj["kind"] in ("ClusterRole", "Role")
            for rule in obj.get("rules") or [] if "impersonate" in rule["verbs"]]


def controller_args(objects: list[dict[str, Any]]) -> Any:
    deployment = m.one(objects, "Deployment", "controller")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return build_parser().parse_args([str(a) for a in container["args"]])


@pytest.mark.parametrize(
    ("values", "impersonate", "rules"),
    [
        ({}, True, [{"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"],
                     "verbs": ["impersonate"]}]),
        ({"controller": {"impersonate": False}}, False, []),
    ],
    ids=["default: on", "off"],
)
def test_impersonation_is_on_by_default_and_grants_users_groups_and_serviceaccounts_only(
    values: dict[str, Any], impersonate: bool, rules: list[dict[str, Any]]
) -> None:
    objects = m.render(values)
    assert (controller_args(objects).impersonate, impersonation_rules(objects)) == (
        impersonate, rules)
    owner = [obj["metadata"]["name"] for obj in objects if obj["kind"] == "ClusterRole"
             and impersonation_rules([obj])]
    assert owner == (["rel-oam-rollout-controller"] if impersonate else [])


def test_the_webhook_records_writers_whatever_the_controller_does() -> None:
    for values in ({}, {"controller": {"impersonate": False}}):
        deployment = m.one(m.render(values), "Deployment", "webhook")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        args = build_parser().parse_args([str(a) for a in container["args"]])
        assert args.record_requester is True


def test_a_value_that_is_not_a_boolean_is_refused_by_the_schema() -> None:
    result = m.run_helm(["template", m.RELEASE, str(m.CHART_DIR)],
                        {"controller": {"impersonate": "yes"}})
    assert (result.returncode != 0, "impersonate" in result.stderr) == (True, True)
