"""The rollout state machine, decided on plain values: every row, single decisions, whole runs.

Every row of the transition table is taken in a state of its own. Whole runs use the
in-memory World of tests.fixtures.machine, which carries out decide()'s actions the way
the Deployment / CloneSet controllers would, pessimistically (new pods become ready only
on the next tick, or old pods linger until it), so the replica invariant is checked in
the worst interleaving.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from tests.fixtures.machine import (
    CLONESET,
    DEPLOY,
    World,
    at,
    plan,
    ready,
    settled_progress,
)
from webhook.controller.machine import (
    TRANSITIONS,
    Condition,
    CreateWorkload,
    DeleteWorkload,
    EmitEvent,
    Observed,
    Progress,
    RetemplateWorkload,
    ScaleWorkload,
    SetPartition,
    UpdateStatus,
    Workload,
    decide,
)
from webhook.controller.machine.table import holding
from webhook.core.labels import (
    ABANDONING,
    BATCH_FINALIZING,
    BATCH_IN_ROLLING,
    BATCH_INITIALIZING,
    BATCH_READY,
    BATCH_VERIFYING,
    FINALISING,
    INITIALIZING,
    ROLLING_IN_BATCHES,
    ROLLOUT_FAILED,
    ROLLOUT_SUCCEED,
    VERIFYING_SPEC,
)

# ---- single decisions ----------------------------------------------------------------

SINGLE_CASES = [
    pytest.param(
        Observed(plan("v1", 5, (2, 3)), Progress()),
        ("start", "verified", "prepare-target"),
        [CreateWorkload("v1", 0)],
        id="a first deploy creates the target at zero replicas",
    ),
    pytest.param(
        Observed(plan("v1", 5, (2, 3)),
                 Progress(ROLLING_IN_BATCHES, BATCH_IN_ROLLING, 0, "v1", "", 5, 0),
                 (ready("v1", 0),)),
        ("change-target",),
        [ScaleWorkload("v1", 2)],
        id="the first batch grows the target by its replicas",
    ),
    pytest.param(
        Observed(plan("v2", 5, (2, 3)),
                 Progress(ROLLING_IN_BATCHES, BATCH_IN_ROLLING, 0, "v2", "v1", 5, 5),
                 (ready("v1", 5), ready("v2", 2))),
        ("shrink-others",),
        [ScaleWorkload("v1", 3)],
        id="once the new pods are ready the old deployment shrinks by the batch",
    ),
    pytest.param(
        Observed(plan("v2", 5, (2, 3)),
                 Progress(ROLLING_IN_BATCHES, BATCH_IN_ROLLING, 0, "v2", "v1", 5, 5),
                 (ready("v1", 5), Workload("v2", "v2", 2, current=2, ready=1))),
        (),
        [],
        id="the old deployment is kept while new pods are not ready",
    ),
    pytest.param(
        Observed(plan("v2", 5, (2, 3), partition=0),
                 Progress(ROLLING_IN_BATCHES, BATCH_READY, 0, "v2", "v1", 5, 5),
                 (ready("v1", 3), ready("v2", 2))),
        (),
        [],
        id="a batch partition holds the run after its batch",
    ),
    pytest.param(
        Observed(plan("v2", 5, (2, 3), generation=2),
                 Progress(ROLLING_IN_BATCHES, BATCH_READY, 0, "v2", "v1", 5, 5,
                          observed_generation=1),
                 (ready("v1", 3), ready("v2", 2))),
        ("next-batch", "batch-rolling", "change-target"),
        [ScaleWorkload("v2", 5)],
        id="removing the partition continues with the next batch",
    ),
    pytest.param(
        Observed(plan("v2", 5, (2, 3)),
                 Progress(FINALISING, BATCH_READY, 1, "v2", "v1", 5, 5),
                 (ready("v1", 0), ready("v2", 5))),
        ("succeed",),
        [DeleteWorkload("v1")],
        id="success deletes the old deployment",
    ),
    pytest.param(
        Observed(plan("v2", 5, (2, 2)), settled_progress("v1", 5), (ready("v1", 5),)),
        ("verification-failed",),
        [],
        id="batches that do not add up fail verification and touch nothing",
    ),
    pytest.param(
        Observed(plan("v1", 7, (1, 1)), settled_progress("v1", 5), (ready("v1", 5),)),
        ("start", "verified", "begin-batches", "batch-rolling", "change-target"),
        [ScaleWorkload("v1", 6)],
        id="a scale grows the live workload from the settled size",
    ),
    pytest.param(
        Observed(plan("v2", 5, (2, 3), partition=2), settled_progress("v1", 5),
                 (ready("v1", 5),)),
        ("verification-failed",),
        [],
        id="a partition past the last batch fails verification",
    ),
    pytest.param(
        Observed(plan("v9", 5, (2, 3)), settled_progress("v1", 5), (ready("v1", 5),),
                 target_known=False),
        ("verification-failed",),
        [],
        id="an unknown target revision fails verification",
    ),
    pytest.param(
        Observed(plan("v3", 5, (2, 3)),
                 Progress(ROLLING_IN_BATCHES, BATCH_READY, 0, "v2", "v1", 5, 5),
                 (ready("v1", 3), ready("v2", 2))),
        ("abandon", "restart", "verified", "prepare-target"),
        [CreateWorkload("v3", 0)],
        id="a new target in the middle of a run abandons it and starts from what is live",
    ),
    pytest.param(
        Observed(plan("v2", 5, (2, 3), kind=CLONESET), settled_progress("v1", 5),
                 (ready("server", 5, "v1", partition=0, updated=5, updated_ready=5),)),
        ("start", "verified", "prepare-target"),
        [RetemplateWorkload("server", "v2", 5, 5)],
        id="a cloneset upgrade re-templates in place with every pod held back",
    ),
    pytest.param(
        Observed(plan("v2", 5, (2, 3), kind=CLONESET),
                 Progress(ROLLING_IN_BATCHES, BATCH_IN_ROLLING, 0, "v2", "v1", 5, 5),
                 (ready("server", 5, "v2", partition=5),)),
        ("change-target",),
        [SetPartition("server", 3)],
        id="a cloneset batch is released by lowering the partition",
    ),
]


@pytest.mark.parametrize(("observed", "steps", "workload_actions"), SINGLE_CASES)
def test_single_decisions_take_the_table_rows_and_actions_expected(
    observed: Observed, steps: tuple[str, ...], workload_actions: list[object]
) -> None:
    decision = decide(observed)
    assert decision.steps == steps
    taken = [a for a in decision.actions if not isinstance(a, EmitEvent | UpdateStatus)]
    assert taken == workload_actions


def test_a_failed_verification_is_a_warning_and_a_condition() -> None:
    decision = decide(Observed(plan("v2", 5, (2, 2)), settled_progress("v1", 5),
                               (ready("v1", 5),), now="2026-01-01T00:00:00Z"))
    events = decision.of_type(EmitEvent)
    assert [(e.type, e.reason) for e in events if isinstance(e, EmitEvent)] == [
        ("Warning", "VerificationFailed")]
    assert decision.progress.rolling_state == ROLLOUT_FAILED
    cond = decision.progress.condition("SpecVerified")
    assert cond is not None
    assert (cond.status, cond.reason, cond.last_transition_time) == (
        "False", "VerificationFailed", "2026-01-01T00:00:00Z")
    assert cond.message == (
        "spec.rolloutPlan.rolloutBatches: Invalid value: [2, 2]:"
        " batch replicas add up to 4; they must add up to targetSize 5")
    assert events[0] == EmitEvent("Warning", "VerificationFailed", cond.message)


def test_a_failed_spec_is_not_decided_again_until_it_changes() -> None:
    first = decide(Observed(plan("v2", 5, (2, 2)), settled_progress("v1", 5), (ready("v1", 5),)))
    again = decide(Observed(plan("v2", 5, (2, 2)), first.progress, (ready("v1", 5),)))
    assert again.actions == ()


def test_fixing_a_failed_spec_starts_the_run() -> None:
    failed = decide(Observed(plan("v2", 5, (2, 2)), settled_progress("v1", 5),
                             (ready("v1", 5),))).progress
    fixed = decide(Observed(plan("v2", 5, (2, 3), generation=2), failed, (ready("v1", 5),)))
    assert fixed.steps == ("retry-new-run", "verified", "prepare-target")
    assert fixed.of_type(CreateWorkload) == [CreateWorkload("v2", 0)]


def test_a_finished_run_with_an_unchanged_plan_decides_nothing() -> None:
    done = settled_progress("v1", 5)
    assert decide(Observed(plan("v1", 5, (5,)), done, (ready("v1", 5),))).actions == ()


def test_every_transition_row_has_a_unique_name() -> None:
    names = [t.name for t in TRANSITIONS]
    assert len(names) == len(set(names))


# ---- every row of the table, each in a state where it is the one taken -------------------


def in_run(rolling: str, batch: str, current: int = 0, target: str = "v2", source: str = "v1",
           **more: object) -> Progress:
    """Status of an upgrade to ``target`` at 5 replicas, from ``source`` at 5."""
    return replace(Progress(rolling, batch, current, target, source, 5, 5,
                            observed_generation=1), **more)  # type: ignore[arg-type]


FAILED_ON_V2 = replace(settled_progress("v1", 5), rolling_state=ROLLOUT_FAILED)
HALFWAY = (ready("v1", 3), ready("v2", 2))
ROW_CASES: dict[str, Observed] = {
    "verification-failed": Observed(plan("v2", 5, (2, 2)), settled_progress("v1", 5),
                                    (ready("v1", 5),)),
    "retry-new-run": Observed(plan("v2", 5, (2, 3), generation=2), FAILED_ON_V2,
                              (ready("v1", 5),)),
    "retry-resume": Observed(plan("v2", 5, (2, 3), generation=2),
                             in_run(ROLLOUT_FAILED, BATCH_IN_ROLLING), HALFWAY),
    "retry-restore": Observed(plan("v1", 5, (5,), generation=2), FAILED_ON_V2,
                              (ready("v1", 5),)),
    "start": Observed(plan("v1", 5, (2, 3)), Progress()),
    "abandon": Observed(plan("v3", 5, (2, 3)), in_run(ROLLING_IN_BATCHES, BATCH_READY),
                        HALFWAY),
    "restart": Observed(plan("v3", 5, (2, 3)), in_run(ABANDONING, BATCH_READY), HALFWAY),
    "verified": Observed(plan("v1", 5, (2, 3)),
                         in_run(VERIFYING_SPEC, BATCH_INITIALIZING, target="v1", source="",
                                original_size=0)),
    "prepare-target": Observed(plan("v1", 5, (2, 3)),
                               in_run(INITIALIZING, BATCH_INITIALIZING, target="v1", source="",
                                      original_size=0)),
    "begin-batches": Observed(plan("v1", 5, (2, 3)),
                              in_run(INITIALIZING, BATCH_INITIALIZING, target="v1", source="",
                                     original_size=0), (ready("v1", 0),)),
    "batch-rolling": Observed(plan("v2", 5, (2, 3)),
                              in_run(ROLLING_IN_BATCHES, BATCH_INITIALIZING),
                              (ready("v1", 5), ready("v2", 0))),
    "batch-clock": Observed(plan("v2", 5, (2, 3)), in_run(ROLLING_IN_BATCHES, BATCH_IN_ROLLING),
                            (ready("v1", 5), ready("v2", 0)), now=at(0)),
    "change-target": Observed(plan("v2", 5, (2, 3)), in_run(ROLLING_IN_BATCHES, BATCH_IN_ROLLING),
                              (ready("v1", 5), ready("v2", 0))),
    "shrink-others": Observed(plan("v2", 5, (2, 3)), in_run(ROLLING_IN_BATCHES, BATCH_IN_ROLLING),
                              (ready("v1", 5), ready("v2", 2))),
    "batches-changed": Observed(plan("v2", 5, (3, 2)), in_run(ROLLING_IN_BATCHES, BATCH_READY),
                                HALFWAY),
    "recut-others": Observed(plan("v2", 5, (2, 3)), in_run(ROLLING_IN_BATCHES, BATCH_VERIFYING),
                             (ready("v1", 5), ready("v2", 2))),
    "batch-verified": Observed(plan("v2", 5, (2, 3)),
                               in_run(ROLLING_IN_BATCHES, BATCH_VERIFYING), HALFWAY),
    "progress-deadline": Observed(
        plan("v2", 5, (2, 3)),
        in_run(ROLLING_IN_BATCHES, BATCH_IN_ROLLING, batch_started=at(0), deadline_seconds=60),
        (ready("v1", 5), Workload("v2", "v2", 2, current=2, ready=0)),
        now=at(61), deadline_seconds=60),
    "batch-ready": Observed(plan("v2", 5, (2, 3)), in_run(ROLLING_IN_BATCHES, BATCH_FINALIZING),
                            HALFWAY),
    "next-batch": Observed(plan("v2", 5, (2, 3)), in_run(ROLLING_IN_BATCHES, BATCH_READY),
                           HALFWAY),
    "last-batch-done": Observed(plan("v2", 5, (2, 3)),
                                in_run(ROLLING_IN_BATCHES, BATCH_READY, current=1),
                                (ready("v1", 0), ready("v2", 5))),
    "succeed": Observed(plan("v2", 5, (2, 3)), in_run(FINALISING, BATCH_READY, current=1),
                        (ready("v1", 0), ready("v2", 5))),
    "clean-up": Observed(plan("v2", 5, (2, 3)), settled_progress("v2", 5),
                         (ready("v1", 0), ready("v2", 5))),
    "paused": Observed(plan("v2", 5, (2, 3), paused=True),
                       in_run(ROLLING_IN_BATCHES, BATCH_READY), HALFWAY),
    "resumed": Observed(plan("v2", 5, (2, 3)),
                        in_run(ROLLING_IN_BATCHES, BATCH_READY,
                               conditions=(Condition("Paused", "True", "Paused"),)), HALFWAY),
}
# Rows that only repair status and tell nobody.
SILENT_ROWS = {"batch-clock"}


def test_every_row_of_the_table_has_a_case() -> None:
    assert sorted(ROW_CASES) == sorted(t.name for t in TRANSITIONS)


@pytest.mark.parametrize("row", list(ROW_CASES))
def test_every_transition_is_taken_in_its_state_and_announced_by_an_event(row: str) -> None:
    observed = ROW_CASES[row]
    transition = next(t for t in TRANSITIONS if t.name == row)
    assert holding(observed, observed.progress)[0] is transition
    assert decide(observed).steps[0] == row
    event = transition.effect(observed, observed.progress).event
    assert (event is not None) == (row not in SILENT_ROWS)


# ---- whole runs in an in-memory world --------------------------------------------------


SPEC_SEQUENCE = [
    # (target, size, batches, partition, rollout columns, workloads by ready replicas)
    ("v1", 5, (2, 3), None, (5, 5, 5, BATCH_READY, ROLLOUT_SUCCEED), {"v1": 5}),
    ("v2", 5, (2, 3), 0, (5, 2, 2, BATCH_READY, ROLLING_IN_BATCHES), {"v1": 3, "v2": 2}),
    ("v2", 5, (2, 3), None, (5, 5, 5, BATCH_READY, ROLLOUT_SUCCEED), {"v2": 5}),
    ("v1", 5, (2, 3), None, (5, 5, 5, BATCH_READY, ROLLOUT_SUCCEED), {"v1": 5}),
    ("v1", 7, (1, 1), None, (7, 7, 7, BATCH_READY, ROLLOUT_SUCCEED), {"v1": 7}),
    ("v1", 3, (1, 3), None, (3, 3, 3, BATCH_READY, ROLLOUT_SUCCEED), {"v1": 3}),
]


@pytest.mark.parametrize("slow", ["up", "down"])
def test_the_spec_sequence_ends_each_step_in_the_views_the_spec_prints(slow: str) -> None:
    world = World(DEPLOY, slow=slow)
    for generation, (target, size, batches, part, columns, deploys) in enumerate(
            SPEC_SEQUENCE, start=1):
        world.roll(plan(target, size, batches, part, generation))
        assert world.view() == (columns, deploys), f"step {generation}: {target} {size}"
    assert world.violations == []


def test_the_cloneset_is_created_then_upgraded_in_place_batch_by_batch() -> None:
    world = World(CLONESET)
    world.roll(plan("v1", 5, (2, 3), kind=CLONESET))
    assert world.view() == ((5, 5, 5, BATCH_READY, ROLLOUT_SUCCEED), {"server": 5})
    partitions: list[int | None] = []
    original_apply = world.apply

    def spy(action: object) -> None:
        if isinstance(action, RetemplateWorkload | SetPartition):
            partitions.append(action.partition)
        original_apply(action)

    world.apply = spy  # type: ignore[method-assign]
    world.roll(plan("v2", 5, (2, 3), generation=2, kind=CLONESET))
    assert world.view() == ((5, 5, 5, BATCH_READY, ROLLOUT_SUCCEED), {"server": 5})
    assert world.workloads["server"].revision == "v2"
    assert partitions == [5, 3, 0]


@pytest.mark.parametrize("seed", range(10))
def test_a_controller_dying_mid_decision_still_ends_in_success_with_the_invariant_kept(
    seed: int,
) -> None:
    world = World(DEPLOY, rng=random.Random(seed))
    world.roll(plan("v1", 5, (2, 3)))
    world.crash = 0.3
    world.roll(plan("v2", 5, (1, 1, 1, 2), generation=2), limit=2000)
    world.crash = 0.0
    world.roll(plan("v2", 5, (1, 1, 1, 2), generation=2))
    assert world.view() == ((5, 5, 5, BATCH_READY, ROLLOUT_SUCCEED), {"v2": 5})
    assert world.violations == []


def test_a_run_abandoned_midway_converges_on_the_new_target() -> None:
    world = World(DEPLOY)
    world.roll(plan("v1", 5, (2, 3)))
    world.roll(plan("v2", 5, (2, 3), partition=0, generation=2))
    world.roll(plan("v3", 5, (2, 3), generation=3))
    assert world.view() == ((5, 5, 5, BATCH_READY, ROLLOUT_SUCCEED), {"v3": 5})
    assert any(e.reason == "Abandoning" for e in world.events)
    assert world.violations == []


def test_a_rollback_midway_back_to_the_source_keeps_its_pods() -> None:
    world = World(DEPLOY)
    world.roll(plan("v1", 5, (2, 3)))
    world.roll(plan("v2", 5, (2, 3), partition=0, generation=2))
    world.roll(plan("v1", 5, (2, 3), generation=3))
    assert world.view() == ((5, 5, 5, BATCH_READY, ROLLOUT_SUCCEED), {"v1": 5})
    assert world.violations == []


def test_a_first_deploy_is_announced_step_by_step() -> None:
    world = World(DEPLOY)
    world.roll(plan("v1", 5, (2, 3)))
    reasons = [e.reason for e in world.events]
    assert reasons[:3] == ["VerifyingSpec", "Initializing", "WorkloadCreated"]
    assert reasons.count("BatchReady") == 2
    assert reasons[-1] == "RolloutSucceed"


@pytest.mark.parametrize(
    ("rolling_state", "first_step"),
    [(ROLLING_IN_BATCHES, "abandon"), (FINALISING, "abandon"), (ROLLOUT_SUCCEED, "start")],
)
def test_a_new_target_abandons_only_a_run_in_flight(rolling_state: str, first_step: str) -> None:
    progress = replace(settled_progress("v1", 5), rolling_state=rolling_state)
    decision = decide(Observed(plan("v2", 5, (2, 3)), progress, (ready("v1", 5),)))
    assert decision.steps[0] == first_step
