"""Percentage batches: one rounding rule, the same numbers in admission, render and controller.

A rollout trait's batch may say "20%". rules.resolve_batches turns the batches into
replica counts against the plan's base (targetSize, or the size change of a pure scale),
cumulatively and rounding up; the Rollout carries those counts, so the controller rolls
and ``kubectl get rollout`` / ``oam-rollout status`` show exactly what admission checked.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.apps import application, parsed, plan
from tests.fixtures.machine import World
from tests.fixtures.machine import plan as machine_plan
from webhook.admission.judge import judge
from webhook.controller.machine import (
    CreateWorkload,
    Observed,
    ScaleWorkload,
    Workload,
    decide,
    verification_errors,
)
from webhook.controller.report import batch_lines
from webhook.controller.views import kind_of, plan_from, progress_from
from webhook.core import rules
from webhook.core.labels import ROLLING_IN_BATCHES, ROLLOUT_SUCCEED
from webhook.core.model import parse_rollout_plan
from webhook.core.objects import component_observation, observed_state_from
from webhook.core.paths import FieldPath
from webhook.core.revisions import resolve_revisions
from webhook.core.state import ComponentObservation, ObservedState, RunRecord
from webhook.core.validation import validate_static
from webhook.render.renderer import Renderer

PLAN = FieldPath.root("properties")
ACCEPTANCE = ("20%", "30%", "50%")


@pytest.mark.parametrize(
    ("batches", "base", "resolved"),
    [
        (ACCEPTANCE, 10, (2, 3, 5)),
        (ACCEPTANCE, 7, (2, 2, 3)),  # ceil(1.4)=2, ceil(3.5)=4, 7
        (("33%", "33%", "34%"), 10, (4, 3, 3)),  # cumulative: 4, 7, 10
        (("50%", "50%"), 1, (1, 0)),  # a small base leaves a batch empty
        (("100%",), 0, (0,)),
        ((2, 3), 99, (2, 3)),  # counts are counts, whatever the base
        ((2, "50%"), 10, (2, 5)),  # a percentage is of the base, not of what is left
        (("50%", 1), 4, (2, 1)),
    ],
    ids=["20-30-50 of 10", "of 7", "thirds", "small base", "zero", "counts",
         "count then percent", "percent then count"],
)  # fmt: skip
def test_percentages_resolve_cumulatively_rounding_up(
    batches: tuple[rules.BatchSize, ...], base: int, resolved: tuple[int, ...]
) -> None:
    assert rules.resolve_batches(batches, base) == resolved


@given(
    percents=st.lists(st.integers(1, 100), min_size=1, max_size=6).filter(lambda p: sum(p) <= 100),
    base=st.integers(0, 10_000),
)
def test_percentages_that_total_100_end_exactly_at_the_base(percents: list[int], base: int) -> None:
    batches = [f"{p}%" for p in percents[:-1]] + [f"{100 - sum(percents[:-1])}%"]
    resolved = rules.resolve_batches(batches, base)
    assert sum(resolved) == base
    assert all(r >= 0 for r in resolved)


# The base a plan's percentages count against, from the Rollout's last run.
SETTLED_V1_10 = RunRecord(ROLLOUT_SUCCEED, "v1", "", 10, 0, complete=True)
SCALING_V1_10_TO_20 = RunRecord(ROLLING_IN_BATCHES, "v1", "v1", 20, 10)
SCALED_V1_10_TO_20 = RunRecord(ROLLOUT_SUCCEED, "v1", "v1", 20, 10, complete=True)


@pytest.mark.parametrize(
    ("target", "size", "last", "base"),
    [
        ("v1", 10, RunRecord(), 10),  # first deploy
        ("v2", 10, SETTLED_V1_10, 10),  # upgrade
        ("v1", 20, SETTLED_V1_10, 10),  # scale 10 -> 20: the change
        ("v1", 4, SETTLED_V1_10, 6),  # scale 10 -> 4
        ("v1", 20, SCALING_V1_10_TO_20, 10),  # the same scale, in flight
        ("v1", 20, SCALED_V1_10_TO_20, 10),  # and once finished: no new numbers
        ("v1", 0, SETTLED_V1_10, 10),  # to zero
        (None, 6, SETTLED_V1_10, 6),  # no target known: a first deploy
    ],
    ids=["first deploy", "upgrade", "scale out", "scale in", "scale in flight",
         "scale finished", "to zero", "no target"],
)  # fmt: skip
def test_percentages_count_against_the_size_change_of_a_pure_scale_and_else_target_size(
    target: str | None, size: int, last: RunRecord, base: int
) -> None:
    assert rules.percent_base(target, size, last) == base


BAD_BATCH = 'must be an integer or a percentage from "1%" to "100%"'


@pytest.mark.parametrize(
    ("replicas", "error"),
    [
        ("20%", None),
        ("100%", None),
        ("0%", f'Invalid value: "0%": {BAD_BATCH}'),
        ("101%", f'Invalid value: "101%": {BAD_BATCH}'),
        ("20", f'Invalid value: "20": {BAD_BATCH}'),
        ("2.5%", f'Invalid value: "2.5%": {BAD_BATCH}'),
        (2.5, 'Invalid value: 2.5: must be an integer or a percentage such as "20%", not number'),
    ],
)
def test_a_batch_is_a_count_or_a_percentage_from_1_to_100(replicas: Any, error: str | None) -> None:
    # A valid first batch gets the rest of 100% in a second one.
    rest = [{"replicas": f"{100 - int(replicas[:-1])}%"}] if error is None and replicas != "100%" \
        else []
    props = {"targetSize": 10, "rolloutBatches": [{"replicas": replicas}, *rest]}
    _, errors = parse_rollout_plan(props, PLAN)
    assert [str(e) for e in errors] == (
        [] if error is None else [f"properties.rolloutBatches[0].replicas: {error}"])


def test_batches_that_are_all_percentages_total_100_percent() -> None:
    props = plan(10, 1)
    props["rolloutBatches"] = [{"replicas": "20%"}, {"replicas": "30%"}]
    _, errors = parse_rollout_plan(props, PLAN)
    assert [str(e) for e in errors] == [
        'properties.rolloutBatches: Invalid value: ["20%", "30%"]: percentages add up to 50%;'
        " they must add up to 100%"]


def test_a_mixed_plan_that_misses_the_sum_says_what_the_percentages_resolved_to() -> None:
    errors = rules.batch_sum_errors((2, "50%", "50%"), 10, None, PLAN)
    assert [str(e) for e in errors] == [
        'properties.rolloutBatches: Invalid value: [2, "50%", "50%"]: batch replicas add up to 12'
        " (percentages of 10 resolved to [2, 5, 5]); they must add up to 10"]


def percent_app(size: int, **more: Any) -> dict[str, Any]:
    props = {"targetSize": size, "rolloutBatches": [{"replicas": r} for r in ACCEPTANCE], **more}
    return application(rollout=props)


def rollout_batches(objects: list[dict[str, Any]]) -> list[int]:
    rollout = next(o for o in objects if o["kind"] == "Rollout")
    return [b["replicas"] for b in rollout["spec"]["rolloutPlan"]["rolloutBatches"]]


def test_the_rollout_carries_the_resolved_numbers_of_a_first_deploy() -> None:
    objects = Renderer().render_application(parsed(percent_app(10)), ObservedState())
    assert rollout_batches(objects) == [2, 3, 5]


def test_the_rollout_of_a_scale_carries_the_numbers_of_the_size_change() -> None:
    # express-server-v1 settled at 10; the same revision at 20 is a pure scale by 10.
    app = parsed(percent_app(20))
    live = ObservedState(components={"express-server": ComponentObservation(
        current_revision="express-server-v1", current_size=10, rolling_state=ROLLOUT_SUCCEED,
        run_size=10, original_size=0, complete=True)})
    objects = Renderer().render_application(app, live)
    assert rollout_batches(objects) == [2, 3, 5]
    # While the scale runs, and after it, the numbers stay those of the change.
    for state in (ROLLING_IN_BATCHES, ROLLOUT_SUCCEED):
        running = ObservedState(components={"express-server": ComponentObservation(
            current_revision="express-server-v1", rolling_state=state, run_size=20,
            source_revision="express-server-v1", original_size=10,
            complete=state == ROLLOUT_SUCCEED,
            current_size=20 if state == ROLLOUT_SUCCEED else None)})
        assert rollout_batches(Renderer().render_application(app, running)) == [2, 3, 5]


def test_validation_accepts_percent_batches_and_paused() -> None:
    result = validate_static(percent_app(10, paused=True), {"webservice"}, {"rollout"})
    assert result.errors == ()
    assert result.app is not None
    rollout = result.app.components[0].rollout()
    assert rollout is not None and rollout.paused and rollout.replicas() == (2, 3, 5)


def target_steps(world: World, p: Any, limit: int = 400) -> list[int]:
    """The replicas the target is set to, batch by batch, rolling ``p`` to the end."""
    steps: list[int] = []
    for _ in range(limit):
        decision = decide(world.observe(p))
        for action in decision.actions:
            if isinstance(action, ScaleWorkload | CreateWorkload) and action.replicas:
                steps.append(action.replicas)
            world.apply(action)
        if not decision.actions and world.progress.rolling_state == ROLLOUT_SUCCEED:
            return steps
        world.tick()
    raise AssertionError(f"no convergence: {world.progress}")


def test_20_30_50_percent_of_10_runs_2_then_5_then_10() -> None:
    batches = rules.resolve_batches(ACCEPTANCE, rules.percent_base("v1", 10, RunRecord()))
    world = World(machine_plan("v1", 10, batches).kind)
    assert target_steps(world, machine_plan("v1", 10, batches)) == [2, 5, 10]


def test_the_same_batches_scale_10_to_20_by_12_then_15_then_20() -> None:
    world = World(machine_plan("v1", 10, (10,)).kind)
    world.roll(machine_plan("v1", 10, (10,)))
    last = RunRecord(ROLLOUT_SUCCEED, "v1", "", 10, 0, complete=True)
    batches = rules.resolve_batches(ACCEPTANCE, rules.percent_base("v1", 20, last))
    assert batches == (2, 3, 5)
    scale = machine_plan("v1", 20, batches, generation=2)
    assert target_steps(world, scale) == [12, 15, 20]
    # Each batch was one scale of the one Deployment, by the batch's share of the change.
    assert world.view()[1] == {"v1": 20}


def test_a_first_decision_of_a_percent_scale_moves_only_the_first_batch() -> None:
    world = World(machine_plan("v1", 10, (10,)).kind)
    world.roll(machine_plan("v1", 10, (10,)))
    scale = machine_plan("v1", 20, (2, 3, 5), generation=2)
    scales: list[ScaleWorkload] = []
    for _ in range(6):
        decision = decide(world.observe(scale))
        scales += [a for a in decision.actions if isinstance(a, ScaleWorkload)]
        for action in decision.actions:
            world.apply(action)
        if scales:
            break
    assert scales == [ScaleWorkload("v1", 12)]


def test_admission_render_controller_and_status_agree_on_a_percent_scale() -> None:
    """A scale 10 -> 20 in ["20%", "30%", "50%"]: admitted, rendered into a Rollout of
    2, 3, 5 (from the live Rollout, as the controller renders it), verified by the
    controller, and shown by `oam-rollout status` batch by batch."""
    raw = percent_app(20)
    settled = {
        "apiVersion": "standard.oam.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "express-server", "namespace": "default", "generation": 1,
                     "labels": {"app.oam.dev/name": "rollout-trait-test"}},
        "spec": {"targetRevisionName": "express-server-v1", "componentName": "express-server",
                 "rolloutPlan": {"targetSize": 10, "rolloutBatches": [{"replicas": 10}]}},
        "status": {"rollingState": ROLLOUT_SUCCEED, "batchRollingState": "batchReady",
                   "currentBatch": 0, "lastTargetRevision": "express-server-v1",
                   "rolloutTargetSize": 10, "rolloutOriginalSize": 0, "observedGeneration": 1,
                   "conditions": [{"type": "RolloutComplete", "status": "True",
                                   "reason": "Succeeded"}]},
    }
    app = parsed(raw)
    component = app.components[0]
    revision = Renderer().render_revision(app, component, resolve_revisions(
        app, ObservedState())[0]["express-server"])
    live = observed_state_from("default", app.name, [revision], [settled])
    # Admission.
    verdict = judge(raw, live, Renderer())
    assert (verdict.errors, verdict.app is not None) == ([], True)
    # The controller's render of the Rollout, from the live one's run.
    rollout = Renderer().render_rollout(app, component, "express-server-v1",
                                        component_observation(settled).last_run())
    assert rollout["spec"]["rolloutPlan"]["rolloutBatches"] == [
        {"replicas": 2}, {"replicas": 3}, {"replicas": 5}]
    # The controller's verification of it, against the status it carries.
    rollout["status"] = settled["status"]
    rollout["metadata"]["generation"] = 2
    observed = Observed(plan_from(rollout, kind_of("webservice")),
                        progress_from(rollout["status"]),
                        (Workload("express-server-v1", "express-server-v1", 10, 10, 10),))
    assert verification_errors(observed, observed.progress) == []
    # And status: one line per batch ("batch i [bar] moved/size state"), the resolved sizes.
    sizes = [line.split()[3].split("/")[1] for line in batch_lines(rollout)]
    assert sizes == ["2", "3", "5"]
