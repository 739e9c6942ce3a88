"""The rollout state machine, decided on plain values: single transitions and whole runs.

Whole runs use a tiny in-memory world that carries out decide()'s actions the way the
Deployment / CloneSet controllers would, pessimistically (new pods become ready only on
the next tick, or old pods linger until it), so the replica invariant is checked in the
worst interleaving.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.controller.machine import (
    CONDITION_COMPLETE,
    TRANSITIONS,
    Condition,
    CreateWorkload,
    DeleteWorkload,
    EmitEvent,
    Observed,
    Plan,
    Progress,
    RetemplateWorkload,
    ScaleWorkload,
    SetPartition,
    UpdateStatus,
    Workload,
    WorkloadKind,
    decide,
    expected_sum,
    prospective_run,
)
from webhook.core.labels import (
    BATCH_IN_ROLLING,
    BATCH_READY,
    FINALISING,
    ROLLING_IN_BATCHES,
    ROLLOUT_FAILED,
    ROLLOUT_SUCCEED,
)

DEPLOY = WorkloadKind.DEPLOYMENT
CLONESET = WorkloadKind.CLONESET


def plan(target: str, size: int, batches: tuple[int, ...], partition: int | None = None,
         generation: int = 1, kind: WorkloadKind = DEPLOY) -> Plan:
    return Plan("server", target, size, batches, partition, generation, kind)


def ready(name: str, replicas: int, revision: str | None = None, **kw: int) -> Workload:
    return Workload(name, revision or name, replicas, current=replicas, ready=replicas, **kw)


def settled_progress(target: str, size: int, generation: int = 1) -> Progress:
    """Status after a finished run, as decide() leaves it."""
    done = Condition(CONDITION_COMPLETE, "True", "Succeeded")
    return Progress(ROLLOUT_SUCCEED, BATCH_READY, 0, target, "", size, 0, size, size,
                    generation, (done,))


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
    assert "add up to 4" in cond.message and "needs 5" in cond.message


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


# ---- whole runs in an in-memory world --------------------------------------------------


@dataclass
class World:
    """Carries out actions like the workload controllers would, one tick late."""

    kind: WorkloadKind
    slow: str = "up"  # "up": new pods get ready on tick; "down": old pods linger until tick
    workloads: dict[str, Workload] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    violations: list[str] = field(default_factory=list)
    events: list[EmitEvent] = field(default_factory=list)
    crash: float = 0.0  # chance the controller dies before each action of a decision
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def observe(self, p: Plan) -> Observed:
        return Observed(p, self.progress, tuple(self.workloads.values()))

    def apply(self, action: object) -> None:
        if isinstance(action, CreateWorkload):
            name = "server" if self.kind is CLONESET else action.revision
            self.workloads[name] = Workload(name, action.revision, action.replicas,
                                            partition=action.partition, settled=False)
        elif isinstance(action, ScaleWorkload):
            w = self.workloads[action.name]
            w = replace(w, replicas=action.replicas, settled=False)
            if self.slow == "up" and action.replicas < w.current:
                w = replace(w, current=action.replicas, ready=min(w.ready, action.replicas))
            self.workloads[action.name] = w
        elif isinstance(action, RetemplateWorkload):
            w = self.workloads[action.name]
            self.workloads[action.name] = replace(
                w, revision=action.revision, replicas=action.replicas,
                partition=action.partition, updated=0, updated_ready=0, settled=False)
        elif isinstance(action, SetPartition):
            w = self.workloads[action.name]
            self.workloads[action.name] = replace(w, partition=action.partition, settled=False)
        elif isinstance(action, DeleteWorkload):
            del self.workloads[action.name]
        elif isinstance(action, UpdateStatus):
            self.progress = action.progress
        elif isinstance(action, EmitEvent):
            self.events.append(action)

    def tick(self) -> None:
        for name, w in list(self.workloads.items()):
            updated = w.replicas - (w.partition or 0)
            self.workloads[name] = replace(w, current=w.replicas, ready=w.replicas,
                                           updated=updated, updated_ready=updated, settled=True)

    def check(self, p: Plan) -> None:
        if self.kind is not DEPLOY or len(self.workloads) < 2:
            return
        batch = p.batches[min(self.progress.current_batch, len(p.batches) - 1)]
        total = sum(w.ready for w in self.workloads.values())
        if not p.target_size - batch <= total <= p.target_size + batch:
            self.violations.append(f"{total} ready at batch {self.progress.current_batch}")

    def roll(self, p: Plan, limit: int = 200) -> None:
        for _ in range(limit):
            decision = decide(self.observe(p))
            for action in decision.actions:
                if self.rng.random() < self.crash:
                    break  # the controller died here; the rest of the decision is lost
                self.apply(action)
                self.check(p)
            if not decision.actions and all(w.settled for w in self.workloads.values()):
                return
            self.tick()
            self.check(p)
        raise AssertionError(f"no convergence: {self.progress}")

    def view(self) -> tuple[tuple[int, int, int, str, str], dict[str, int]]:
        p = self.progress
        return ((p.target_size, p.upgraded, p.upgraded_ready, p.batch_state, p.rolling_state),
                {w.name: w.ready for w in self.workloads.values()})


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


def test_every_transition_is_announced_by_an_event() -> None:
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


# ---- any sequence of valid specs, interrupted runs and crashes converges ----------------

Step = tuple[str, int, int, float, int, int | None]


@st.composite
def spec_changes(draw: st.DrawFn) -> list[Step]:
    """Steps of (target, size, parts to split the batches into, crash chance, decisions
    to run before the next change (0 = until it settles or holds), batchPartition)."""
    steps = draw(st.integers(1, 4))
    return [(draw(st.sampled_from(["v1", "v2", "v3"])), draw(st.integers(1, 8)),
             draw(st.integers(1, 4)), draw(st.sampled_from([0.0, 0.2])),
             draw(st.sampled_from([0, 0, 2, 5])), draw(st.sampled_from([None, None, 0, 1])))
            for _ in range(steps)]


def split(total: int, parts: int) -> tuple[int, ...]:
    """``total`` as up to ``parts`` positive batches (one batch of 0 when total is 0)."""
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    return tuple(base + (1 if i < extra else 0) for i in range(parts))


@settings(max_examples=80, deadline=None)
@given(spec_changes())
def test_any_sequence_of_valid_changes_ends_in_the_last_one(steps: list[Step]) -> None:
    world = World(DEPLOY, rng=random.Random(len(steps)))
    for generation, (target, size, parts, crash, decisions, part) in enumerate(steps, start=1):
        probe = plan(target, size, (size,), generation=generation)
        run = prospective_run(world.observe(probe), world.progress)
        batches = split(expected_sum(run), parts)
        partition = None if part is None else min(part, len(batches) - 1)
        current = plan(target, size, batches, partition, generation)
        world.crash = crash
        if decisions:
            for _ in range(decisions):  # part of the run, then the next change arrives
                for action in decide(world.observe(current)).actions:
                    world.apply(action)
                world.tick()
        else:
            world.roll(current, limit=2000)
    # The last change, without a partition, must finish.
    current = replace(current, partition=None, generation=current.generation + 1)
    world.crash = 0.0
    world.roll(current, limit=2000)
    target, size = steps[-1][0], steps[-1][1]
    assert world.view() == ((size, size, size, BATCH_READY, ROLLOUT_SUCCEED), {target: size})


@settings(max_examples=80, deadline=None)
@given(size=st.integers(1, 9), parts=st.integers(1, 5), crash=st.sampled_from([0.0, 0.1, 0.3]),
       slow=st.sampled_from(["up", "down"]), back=st.booleans())
def test_any_upgrade_or_rollback_keeps_ready_pods_within_the_batch_of_target_size(
    size: int, parts: int, crash: float, slow: str, back: bool,
) -> None:
    world = World(DEPLOY, slow=slow, rng=random.Random(size * 10 + parts))
    world.roll(plan("v1", size, (size,)))
    world.roll(plan("v2", size, (size,), generation=2))
    world.crash = crash
    target = "v1" if back else "v3"
    world.roll(plan(target, size, split(size, parts), generation=3), limit=2000)
    world.crash = 0.0
    world.roll(plan(target, size, split(size, parts), generation=3))
    assert world.view() == ((size, size, size, BATCH_READY, ROLLOUT_SUCCEED), {target: size})
    assert world.violations == []
