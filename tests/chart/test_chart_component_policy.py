"""componentPolicy in the chart: what the webhook lets Applications ask the controller for."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures import chart as m
from webhook.cli import build_parser
from webhook.cli.policy import policy_from
from webhook.core.properties import ComponentPolicy


def webhook_policy(values: dict[str, Any]) -> ComponentPolicy:
    deployment = m.one(m.render(values), "Deployment", "webhook")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return policy_from(build_parser().parse_args([str(a) for a in container["args"]]))


@pytest.mark.parametrize(
    ("values", "policy"),
    [
        ({}, ComponentPolicy(False, frozenset({"ClusterIP"}))),
        ({"componentPolicy": {"allowHostPath": True}},
         ComponentPolicy(True, frozenset({"ClusterIP"}))),
        ({"componentPolicy": {"exposeTypes": ["NodePort", "LoadBalancer"]}},
         ComponentPolicy(False, frozenset({"ClusterIP", "NodePort", "LoadBalancer"}))),
    ],
    ids=["default: ClusterIP only, no hostPath", "hostPath", "node ports and load balancers"],
)
def test_the_webhook_gets_the_policy_the_values_ask_for(
    values: dict[str, Any], policy: ComponentPolicy
) -> None:
    assert webhook_policy(values) == policy


@pytest.mark.parametrize(
    "values",
    [
        {"componentPolicy": {"allowHostPath": "yes"}},
        {"componentPolicy": {"exposeTypes": ["ExternalName"]}},
        {"componentPolicy": {"exposeTypes": "NodePort"}},
        {"componentPolicy": {"allowHostPaths": True}},
    ],
    ids=["not a boolean", "not a gated type", "not a list", "unknown key"],
)
def test_values_the_webhook_cannot_take_are_refused_by_the_schema(values: dict[str, Any]) -> None:
    result = m.template(values)
    assert (result.returncode != 0, "schema" in result.stderr) == (True, True), result.stderr
