"""The demo's scenario data and its pure judgements of live state (no cluster needed)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.fixtures import chart as m
from webhook.cli import demo
from webhook.core.labels import ROLLOUT_SUCCEED
from webhook.core.model import parse_application
from webhook.core.paths import FieldPath
from webhook.core.state import ComponentObservation
from webhook.core.validation import check_scale, validate_static
from webhook.render.renderer import Renderer

STEPS = demo.scenario(include_cloneset=True)


def _rollout(target: int, upgraded: int, ready: int, batch: str, rolling: str, rev: str) -> Any:
    return {
        "spec": {"targetRevisionName": rev, "rolloutPlan": {"rolloutBatches": [{}, {}]}},
        "status": {
            "rolloutTargetSize": target,
            "upgradedReplicas": upgraded,
            "upgradedReadyReplicas": ready,
            "batchRollingState": batch,
            "rollingState": rolling,
            "lastTargetRevision": rev,
            "currentBatch": 1,
        },
    }


def _deployment(name: str, ready: int, desired: int, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"replicas": desired}, "status": {"readyReplicas": ready}}


def test_every_scenario_application_passes_the_static_rules() -> None:
    renderer = Renderer()
    results = [
        validate_static(step.application, renderer.component_types, renderer.trait_types)
        for step in STEPS
    ]
    # Nine steps: the spec's six, the refused change, the CloneSet's two.
    assert [[str(e) for e in r.errors] for r in results] == [[]] * 9


def test_only_the_step_meant_to_be_refused_breaks_the_batch_rules() -> None:
    """Each step is judged against the state the step before it settles in."""
    refused: list[str] = []
    previous: dict[str, demo.Expectation] = {}
    for step in STEPS:
        app, errors = parse_application(step.application)
        assert app is not None, errors
        component = app.components[0]
        plan = component.rollout()
        assert plan is not None
        resolved = dataclasses.replace(
            plan, target_revision=plan.target_revision or component.external_revision
        )
        before = previous.get(component.name)
        observation = ComponentObservation(
            current_revision=before.target_revision if before else None,
            current_size=(
                before.rollout.target
                if before and before.rollout.rolling_state == ROLLOUT_SUCCEED
                else None
            ),
        )
        if check_scale(resolved, observation, FieldPath.root("properties")):
            refused.append(step.title)
        if step.expect is not None:
            previous[component.name] = step.expect
    denied = [s.title for s in STEPS if s.denied]
    assert refused == denied == ["拒绝 · a change the webhook refuses"]


@pytest.mark.parametrize(
    ("rollout", "workloads", "settled"),
    [
        (
            _rollout(5, 5, 5, "batchReady", "rolloutSucceed", "express-server-v1"),
            [_deployment("express-server-v1", 5, 5)],
            True,
        ),
        # The old Deployment is still there: the rollout has not finished cleaning up.
        (
            _rollout(5, 5, 5, "batchReady", "rolloutSucceed", "express-server-v1"),
            [_deployment("express-server-v1", 5, 5), _deployment("express-server-v2", 0, 0)],
            False,
        ),
        # One being deleted no longer counts.
        (
            _rollout(5, 5, 5, "batchReady", "rolloutSucceed", "express-server-v1"),
            [_deployment("express-server-v1", 5, 5), _deployment("old", 0, 0, deleting=True)],
            True,
        ),
        # The same columns, but for the revision the step moved away from.
        (
            _rollout(5, 5, 5, "batchReady", "rolloutSucceed", "express-server-v2"),
            [_deployment("express-server-v1", 5, 5)],
            False,
        ),
        (
            _rollout(5, 5, 3, "batchInRolling", "rollingInBatches", "express-server-v1"),
            [_deployment("express-server-v1", 3, 5)],
            False,
        ),
        (None, [], False),
    ],
    ids=["done", "old-workload-left", "deleting-ignored", "other-revision", "rolling", "none"],
)
def test_a_step_is_settled_only_when_rollout_and_workloads_match(
    rollout: Any, workloads: list[dict[str, Any]], settled: bool
) -> None:
    expect = STEPS[0].expect
    assert expect is not None
    assert demo.is_settled(expect, rollout, workloads) is settled


@pytest.mark.parametrize(
    ("rollout", "line"),
    [
        (None, "express-server: waiting for the Rollout"),
        (
            _rollout(5, 2, 2, "batchReady", "rollingInBatches", "express-server-v2"),
            "express-server -> express-server-v2: batch 2/2, upgraded 2/5, ready 2, "
            "batchReady, rollingInBatches",
        ),
        (
            {"spec": {"targetRevisionName": "v9", "rolloutPlan": {"targetSize": 3}}},
            "express-server -> v9: batch -/0, upgraded 0/3, ready 0, -, -",
        ),
    ],
    ids=["no-rollout", "rolling", "no-status-yet"],
)
def test_progress_line_says_where_the_rollout_stands(rollout: Any, line: str) -> None:
    assert demo.progress_line("express-server", rollout) == line


def test_demo_installs_the_chart_with_values_the_chart_accepts() -> None:
    args = demo.helm_install_args(m.CHART_DIR, "https://127.0.0.1:9443", m.example_ca_bundle())
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    values: dict[str, Any] = {}
    for assignment in sets:
        key, value = assignment.split("=", 1)
        *parents, leaf = key.split(".")
        node = values
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = {"false": False, "true": True}.get(value, value)
    objects = m.render(values)
    urls = [
        hook["clientConfig"]["url"]
        for o in objects
        if o["kind"].endswith("WebhookConfiguration")
        for hook in o["webhooks"]
    ]
    assert (urls, m.kinds(objects) & {"Deployment", "Secret", "Service"}) == (
        ["https://127.0.0.1:9443/mutate", "https://127.0.0.1:9443/validate"],
        set(),
    )


def test_chart_dir_finds_the_chart_in_the_source_tree() -> None:
    assert (demo.chart_dir() / "Chart.yaml").is_file()
