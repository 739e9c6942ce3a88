"""controller.namespaceSelector, rendered: the controller's `--namespace-selector` and its
right to list and watch namespaces, both only when set.

The map (matchLabels / matchExpressions, as webhook.namespaceSelector) is written as the
label selector string the controller parses; the string must select exactly what the map
says, so it is parsed back here with the controller's own parser. The schema refuses
terms the API would refuse (In without values, Exists with values, unknown keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.fixtures import chart as m
from webhook.core.selectors import LabelSelector, Requirement, parse_selector

CONTROLLER = f"{m.RELEASE}-oam-rollout-controller"
ENABLED = {"matchLabels": {"rollout.oam.dev/enabled": "true"}}


def controller_args(values: Mapping[str, Any]) -> list[str]:
    deployment = m.one(m.render(values), "Deployment", "controller")
    return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])


def namespace_rules(values: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    roles = [r for r in m.of_kind(m.render(values), "ClusterRole")
             if r["metadata"]["name"] == CONTROLLER]
    assert len(roles) == 1
    return [rule for rule in roles[0]["rules"] if "namespaces" in rule["resources"]]


def selector_flag(values: Mapping[str, Any]) -> str | None:
    args = controller_args(values)
    flag = "--namespace-selector"
    return args[args.index(flag) + 1] if flag in args else None


@pytest.mark.parametrize(
    ("selector", "parsed"),
    [
        (ENABLED, (Requirement("rollout.oam.dev/enabled", "=", ("true",)),)),
        ({"matchLabels": {"b": "2", "a": "1"}},
         (Requirement("a", "=", ("1",)), Requirement("b", "=", ("2",)))),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["b", "a"]},
                               {"key": "tier", "operator": "NotIn", "values": ["x"]},
                               {"key": "owner", "operator": "Exists"},
                               {"key": "legacy", "operator": "DoesNotExist"}]},
         (Requirement("team", "in", ("a", "b")), Requirement("tier", "notin", ("x",)),
          Requirement("owner", "exists"), Requirement("legacy", "!"))),
        ({"matchLabels": {"env": "prod"},
          "matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]},
         (Requirement("env", "=", ("prod",)), Requirement("team", "in", ("a",)))),
    ],
    ids=["one label", "labels, sorted", "every operator", "labels and expressions"],
)
def test_the_selector_map_is_passed_as_the_selector_string_it_means(
    selector: Mapping[str, Any], parsed: tuple[Requirement, ...]
) -> None:
    flag = selector_flag({"controller": {"namespaceSelector": selector}})
    assert flag is not None
    assert parse_selector(flag) == LabelSelector(parsed)


@pytest.mark.parametrize("selector", [None, {}, {"matchLabels": {}, "matchExpressions": []}],
                         ids=["default", "empty", "empty parts"])
def test_without_a_selector_the_controller_acts_everywhere_and_cannot_read_namespaces(
    selector: Mapping[str, Any] | None,
) -> None:
    values = {} if selector is None else {"controller": {"namespaceSelector": selector}}
    assert (selector_flag(values), namespace_rules(values)) == (None, [])


def test_with_a_selector_the_controller_may_list_and_watch_namespaces_only() -> None:
    rules = namespace_rules({"controller": {"namespaceSelector": ENABLED}})
    assert rules == [{"apiGroups": [""], "resources": ["namespaces"],
                      "verbs": ["list", "watch"]}]


def test_the_selector_goes_with_the_watched_namespace_and_to_every_shard() -> None:
    values = {"controller": {"namespaceSelector": ENABLED, "watchNamespace": "team-a",
                             "shards": 2}}
    deployments = [d for d in m.of_kind(m.render(values), "Deployment")
                   if d["metadata"]["labels"].get("app.kubernetes.io/component")
                   == "controller"]
    seen = []
    for deployment in deployments:
        args = list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])
        seen.append((args[args.index("--namespace") + 1],
                     args[args.index("--namespace-selector") + 1]))
    assert seen == [("team-a", "rollout.oam.dev/enabled=true")] * 2


@pytest.mark.parametrize(
    ("selector", "complaint"),
    [
        ({"matchExpressions": [{"key": "team", "operator": "In"}]}, "missing property 'values'"),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": []}]},
         "minItems"),
        ({"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]},
         "maxItems"),
        ({"matchExpressions": [{"key": "team", "operator": "Gt", "values": ["1"]}]},
         "operator"),
        ({"matchLabels": {"enabled": True}}, "enabled"),
        ({"matchNames": ["a"]}, "matchNames"),
        ("rollout.oam.dev/enabled=true", "namespaceSelector"),
    ],
    ids=["In without values", "NotIn with no values", "Exists with values", "Gt",
         "a label value that is not a string", "an unknown key", "a string"],
)
def test_the_schema_refuses_a_selector_the_api_would_refuse(
    selector: Any, complaint: str
) -> None:
    result = m.run_helm(["template", m.RELEASE, str(m.CHART_DIR)],
                        {"controller": {"namespaceSelector": selector}})
    assert result.returncode != 0
    assert complaint in result.stderr
