"""The chart's controller shards and pass-through setting, rendered: each value as documented.

controller.shards M > 1 renders M controller Deployments, each shard N with its own
selector, pods labelled with N, and `--shards M --shard-id N` (its Lease is the
controller's lease name suffixed -shard-N by the controller itself); 1 renders the one
Deployment as before. unknownTypes=ignore gives the webhook and the controller
`--unknown-types ignore`; the default adds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kubernetes_validate
import pytest

from tests.fixtures import chart as m

SHARD_LABEL = "rollout.oam.dev/shard"
CONTROLLER = f"{m.RELEASE}-oam-rollout-controller"
WEBHOOK = f"{m.RELEASE}-oam-rollout-webhook"


def controllers(values: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [d for d in m.of_kind(m.render(values), "Deployment")
            if d["metadata"]["labels"].get("app.kubernetes.io/component") == "controller"]


def args_of(deployment: Mapping[str, Any]) -> list[str]:
    return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])


def option(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


@pytest.mark.parametrize(("shards", "names"), [
    (None, [CONTROLLER]),
    (1, [CONTROLLER]),
    (3, [f"{CONTROLLER}-shard-{n}" for n in range(3)]),
])
def test_each_shard_is_a_deployment_of_its_own(shards: int | None, names: list[str]) -> None:
    values = {} if shards is None else {"controller": {"shards": shards}}
    assert [d["metadata"]["name"] for d in controllers(values)] == names


def test_a_shard_s_deployment_selects_its_own_pods_and_runs_its_shard() -> None:
    seen = []
    for deployment in controllers({"controller": {"shards": 2, "replicas": 2}}):
        args = args_of(deployment)
        spec = deployment["spec"]
        seen.append((spec["replicas"], spec["selector"]["matchLabels"].get(SHARD_LABEL),
                     spec["template"]["metadata"]["labels"].get(SHARD_LABEL),
                     option(args, "--shards"), option(args, "--shard-id"),
                     option(args, "--lease-name")))
    assert seen == [(2, "0", "0", "2", "0", CONTROLLER), (2, "1", "1", "2", "1", CONTROLLER)]


def test_one_shard_renders_no_shard_options_nor_labels() -> None:
    (deployment,) = controllers({})
    args = args_of(deployment)
    assert ("--shards" in args, "--shard-id" in args, SHARD_LABEL in str(deployment)) == (
        False, False, False)


def test_sharded_controllers_validate_against_the_kubernetes_schemas() -> None:
    for deployment in controllers({"controller": {"shards": 2}}):
        kubernetes_validate.validate(dict(deployment), "1.25.0", strict=True)


@pytest.mark.parametrize(("unknown", "flag"), [(None, None), ("deny", None),
                                               ("ignore", "ignore")])
def test_unknown_types_reach_the_webhook_and_the_controller(
    unknown: str | None, flag: str | None,
) -> None:
    values = {} if unknown is None else {"unknownTypes": unknown}
    seen = {name: option(list(c.get("args") or []), "--unknown-types")
            for name, c in m.containers(m.render(values))}
    assert seen == {WEBHOOK: flag, CONTROLLER: flag}


@pytest.mark.parametrize("values", [
    {"controller": {"shards": 0}},
    {"controller": {"shards": "2"}},
    {"unknownTypes": "allow"},
], ids=["no shards", "shards as a string", "an unknown setting"])
def test_bad_values_are_refused_by_the_schema(values: dict[str, Any]) -> None:
    result = m.template(values)
    assert result.returncode != 0 and "values don't meet the specifications" in result.stderr
