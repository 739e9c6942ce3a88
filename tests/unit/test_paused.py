"""paused: the run holds before its next batch, touching no workload, and goes on when released.

Whole runs in the in-memory World of tests.fixtures.machine: a paused plan stops at the
next batch boundary (batchInitializing of batch 0 on a first deploy, batchReady of the
batch in flight otherwise), the Paused condition says so, nothing is scaled, created,
re-templated or deleted however long it holds, and paused false picks up where it stopped.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.fixtures.machine import CLONESET, DEPLOY, World, plan
from webhook.controller.machine import Observed, Plan, ScaleWorkload, WorkloadKind, decide
from webhook.controller.machine.values import CONDITION_PAUSED, UpdateStatus, WorkloadAction
from webhook.controller.report import format_status
from webhook.controller.views import plan_from, status_from
from webhook.core.labels import (
    BATCH_INITIALIZING,
    BATCH_READY,
    ROLLING_IN_BATCHES,
    ROLLOUT_SUCCEED,
)


def workload_actions(world: World, p: Plan, decisions: int) -> list[object]:
    """What ``decisions`` decisions (a tick after each) ask of the workloads."""
    asked: list[object] = []
    for _ in range(decisions):
        decision = decide(world.observe(p))
        for action in decision.actions:
            if isinstance(action, WorkloadAction):
                asked.append(action)
            world.apply(action)
        world.tick()
    return asked


def held_at(world: World) -> tuple[str, str, int, str, str]:
    p = world.progress
    cond = p.condition(CONDITION_PAUSED)
    return (p.rolling_state, p.batch_state, p.current_batch,
            cond.status if cond else "", cond.message if cond else "")


@pytest.mark.parametrize("kind", [DEPLOY, CLONESET])
def test_an_upgrade_paused_at_a_batch_holds_there_and_touches_nothing(kind: WorkloadKind) -> None:
    world = World(kind)
    world.roll(plan("v1", 5, (5,), kind=kind))
    # batchPartition 0 parks the upgrade after batch 0; then it is paused and released.
    world.roll(plan("v2", 5, (2, 3), 0, generation=2, kind=kind))
    parked = dict(world.workloads)
    paused = plan("v2", 5, (2, 3), None, generation=3, kind=kind, paused=True)
    assert workload_actions(world, paused, 30) == []
    assert world.workloads == parked
    assert held_at(world) == (ROLLING_IN_BATCHES, BATCH_READY, 0, "True",
                              "paused: holding before batch 1")
    world.roll(plan("v2", 5, (2, 3), None, generation=4, kind=kind))
    assert world.view()[0] == (5, 5, 5, BATCH_READY, ROLLOUT_SUCCEED)
    cond = world.progress.condition(CONDITION_PAUSED)
    assert cond is not None and (cond.status, cond.reason) == ("False", "Resumed")


def test_a_first_deploy_that_starts_paused_holds_before_its_first_batch() -> None:
    world = World(DEPLOY)
    paused = plan("v1", 5, (2, 3), paused=True)
    asked = workload_actions(world, paused, 20)
    # The target is prepared at 0 replicas (no pod), then nothing more.
    assert [(type(a).__name__, getattr(a, "replicas", None)) for a in asked] == [
        ("CreateWorkload", 0)]
    assert held_at(world) == (ROLLING_IN_BATCHES, BATCH_INITIALIZING, 0, "True",
                              "paused: holding before batch 0")
    world.roll(replace(paused, paused=False, generation=2))
    assert world.view() == ((5, 5, 5, BATCH_READY, ROLLOUT_SUCCEED), {"v1": 5})


def test_pausing_mid_batch_lets_the_batch_finish_then_holds_before_the_next() -> None:
    world = World(DEPLOY)
    world.roll(plan("v1", 6, (6,)))
    running = plan("v2", 6, (2, 2, 2), generation=2)
    for _ in range(3):  # into batch 0: v2 scaled up, not yet ready
        for action in decide(world.observe(running)).actions:
            world.apply(action)
    assert world.progress.current_batch == 0
    paused = replace(running, paused=True, generation=3)
    workload_actions(world, paused, 30)
    assert held_at(world)[:3] == (ROLLING_IN_BATCHES, BATCH_READY, 0)
    assert {n: w.replicas for n, w in world.workloads.items()} == {"v1": 4, "v2": 2}


def test_a_paused_last_batch_holds_before_the_run_is_closed() -> None:
    world = World(DEPLOY)
    world.roll(plan("v1", 4, (4,)))
    running = plan("v2", 4, (2, 2), generation=2)
    while world.progress.current_batch < 1:  # into the last batch
        for action in decide(world.observe(running)).actions:
            world.apply(action)
        world.tick()
    paused = replace(running, generation=3, paused=True)
    # The last batch finishes (v1 down to 0); closing the run (deleting v1) waits.
    assert workload_actions(world, paused, 10) == [ScaleWorkload("v1", 0)]
    assert held_at(world) == (ROLLING_IN_BATCHES, BATCH_READY, 1, "True",
                              "paused: holding before finishing the run")
    assert set(world.workloads) == {"v1", "v2"}


def test_a_hold_is_announced_once_and_then_decides_nothing_new() -> None:
    world = World(DEPLOY)
    paused = plan("v1", 4, (2, 2), paused=True)
    workload_actions(world, paused, 10)
    again = decide(world.observe(paused))
    assert (again.steps, again.actions) == (("paused",), ())
    events = [e.reason for e in world.events]
    assert events.count("Paused") == 1


def test_a_rollout_spec_with_paused_reads_as_a_paused_plan_and_status_shows_the_hold() -> None:
    world = World(DEPLOY)
    paused = plan("v1", 4, (2, 2), paused=True)
    workload_actions(world, paused, 10)
    rollout = {
        "metadata": {"name": "server", "generation": 1},
        "spec": {"componentName": "server", "targetRevisionName": "v1",
                 "rolloutPlan": {"targetSize": 4, "paused": True,
                                 "rolloutBatches": [{"replicas": 2}, {"replicas": 2}]}},
        "status": status_from(world.progress),
    }
    assert plan_from(rollout, DEPLOY).paused is True
    app = {"metadata": {"name": "a", "namespace": "ns", "generation": 1},
           "spec": {"components": [{"name": "server", "type": "webservice"}]}}
    text = format_status(app, {"server": rollout})
    assert "    paused: holding before batch 0 (set paused: false to go on)" in text.splitlines()


def test_a_status_write_records_the_hold_before_anything_else() -> None:
    world = World(DEPLOY)
    decision = decide(Observed(plan("v1", 4, (2, 2), paused=True), world.progress))
    assert isinstance(decision.actions[0], UpdateStatus)
