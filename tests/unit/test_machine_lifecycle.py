"""The state machine at the edges of a component's life: adopting what already runs, the
progress deadline of every wait on the cluster, and a write that can never be made.

A Rollout created while its component already runs (a plain component that got the
trait back) rolls from the live workload, never from zero; the deadline runs while the
target is prepared as well as while a batch rolls, and never during a batchPartition
hold; a refused write fails the run once, and a new generation retries it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.fixtures.machine import CLONESET, DEPLOY, World, at, plan, ready
from webhook.controller.machine import (
    CONDITION_PROGRESSING,
    REASON_API_REFUSED,
    REASON_DEADLINE,
    CreateWorkload,
    EmitEvent,
    Observed,
    Progress,
    UpdateStatus,
    Workload,
    decide,
    refuse,
)
from webhook.core.labels import (
    BATCH_INITIALIZING,
    BATCH_READY,
    INITIALIZING,
    ROLLING_IN_BATCHES,
    ROLLOUT_FAILED,
    ROLLOUT_SUCCEED,
)


def ready_total(world: World) -> int:
    return sum(w.ready for w in world.workloads.values())


@pytest.mark.parametrize(
    ("kind", "live", "size", "batches"),
    [
        (DEPLOY, {"v1": ready("v1", 3)}, 3, (1, 2)),
        (DEPLOY, {"v1": ready("v1", 3)}, 5, (2, 3)),
        (CLONESET, {"server": ready("server", 3, "v1", updated=3, updated_ready=3)}, 3, (1, 2)),
    ],
    ids=["deployment, same size", "deployment, larger", "cloneset in place"],
)
def test_a_first_rollout_over_a_running_plain_workload_rolls_from_it_never_from_zero(
    kind: object, live: dict[str, Workload], size: int, batches: tuple[int, ...]
) -> None:
    lowest: list[int] = []
    world = World(kind, workloads=dict(live))  # type: ignore[arg-type]
    world.seen = lambda observed: lowest.append(sum(w.ready for w in observed.workloads))
    p = plan("v2", size, batches, kind=kind)  # type: ignore[arg-type]
    world.roll(p)
    assert (world.progress.rolling_state, world.progress.source_revision,
            world.progress.original_size) == (ROLLOUT_SUCCEED, "v1", 3)
    assert {w.revision: w.ready for w in world.workloads.values()} == {"v2": size}
    assert min(lowest) >= 3 - batches[0]  # never below the size less one batch
    assert world.violations == []


def test_a_first_rollout_of_the_revision_already_running_keeps_its_pods() -> None:
    world = World(DEPLOY, workloads={"v2": ready("v2", 3)})
    world.roll(plan("v2", 3, (1, 2)))
    assert (world.progress.rolling_state, world.progress.source_revision) == (ROLLOUT_SUCCEED, "")
    assert [(w.name, w.replicas, w.ready) for w in world.workloads.values()] == [("v2", 3, 3)]


def initializing(started: str) -> Progress:
    return Progress(INITIALIZING, BATCH_INITIALIZING, 0, "v2", "v1", 3, 3,
                    observed_generation=1, batch_started=started, deadline_seconds=60)


# Re-templated in place, every pod held back, but never observed by its controller.
UNOBSERVED = Workload("server", "v2", 3, current=3, ready=3, partition=3, settled=False)


@pytest.mark.parametrize(("seconds", "fails"), [(61, True), (60, False), (5, False)])
def test_the_deadline_covers_a_target_its_controller_never_prepares(
    seconds: int, fails: bool
) -> None:
    observed = Observed(plan("v2", 3, (1, 2), kind=CLONESET), initializing(at(0)),
                        (UNOBSERVED,), now=at(seconds), deadline_seconds=60)
    decision = decide(observed)
    condition = decision.progress.condition(CONDITION_PROGRESSING)
    if fails:
        assert (decision.progress.rolling_state, condition and condition.reason) == (
            ROLLOUT_FAILED, REASON_DEADLINE)
        assert condition is not None and condition.message == (
            "the rollout to v2 was not prepared within the progress deadline of 60s "
            "(initializing): server at 3 replicas, not yet observed by its controller")
    else:
        # Nothing to write again while it waits: only the wake-up when the deadline falls due.
        assert (decision.actions, decision.wake_after) == ((), 61.0 - seconds)


def test_a_batch_partition_hold_never_runs_against_the_clock() -> None:
    held = Progress(ROLLING_IN_BATCHES, BATCH_READY, 0, "v2", "v1", 3, 3, upgraded=1,
                    upgraded_ready=1, observed_generation=1, batch_started=at(0),
                    deadline_seconds=60)
    live = (ready("v2", 1), ready("v1", 2))
    observed = Observed(plan("v2", 3, (1, 2), partition=0), held, live, now=at(6000),
                        deadline_seconds=60)
    decision = decide(observed)
    assert (decision.actions, decision.wake_after) == ((), None)


def test_a_run_that_starts_preparing_starts_its_clock() -> None:
    observed = Observed(plan("v2", 3, (1, 2)), Progress(), (), now=at(5), deadline_seconds=60)
    decision = decide(observed)
    assert (decision.progress.rolling_state, decision.progress.batch_started,
            decision.wake_after) == (INITIALIZING, at(5), 61.0)


def test_a_refused_write_fails_the_run_once_and_a_new_generation_prepares_it_again() -> None:
    p = plan("v2", 3, (1, 2))
    first = decide(Observed(p, Progress(), (), now=at(0)))
    assert first.of_type(CreateWorkload) == [CreateWorkload("v2", 0)]
    refused = refuse(Observed(p, first.progress, (), now=at(1)), REASON_API_REFUSED,
                     "PATCH /apis/apps/v1/...: 422 metadata.labels: Invalid value")
    assert [type(a) for a in refused.actions] == [UpdateStatus, EmitEvent]
    failed = refused.progress
    condition = failed.condition(CONDITION_PROGRESSING)
    assert (failed.rolling_state, condition and condition.reason) == (
        ROLLOUT_FAILED, REASON_API_REFUSED)
    assert refused.actions[1] == EmitEvent("Warning", REASON_API_REFUSED,
                                           "PATCH /apis/apps/v1/...: 422 metadata.labels: "
                                           "Invalid value")
    # Not decided again on the same spec: no hot loop.
    assert decide(Observed(p, failed, (), now=at(2))).actions == ()
    # A new generation resumes by preparing the target it never got.
    retry = decide(Observed(replace(p, generation=2), failed, (), now=at(3)))
    assert retry.of_type(CreateWorkload) == [CreateWorkload("v2", 0)]
    assert retry.progress.condition(CONDITION_PROGRESSING) is None
