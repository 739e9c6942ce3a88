"""The progress deadline: a batch not Ready in time fails the run, touching no workload.

Decisions on plain values with the clock passed in ``Observed.now``, then a whole run in
a world whose new pods never get Ready, and the retry a new spec generation brings.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.machine import split
from webhook.controller.machine import (
    CONDITION_PROGRESSING,
    REASON_DEADLINE,
    Condition,
    CreateWorkload,
    DeleteWorkload,
    EmitEvent,
    Observed,
    Plan,
    Progress,
    ScaleWorkload,
    UpdateStatus,
    Workload,
    WorkloadKind,
    decide,
)
from webhook.core.labels import (
    BATCH_IN_ROLLING,
    BATCH_INITIALIZING,
    BATCH_READY,
    BATCH_VERIFYING,
    ROLLING_IN_BATCHES,
    ROLLOUT_FAILED,
    ROLLOUT_SUCCEED,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
DEADLINE = 60


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan(target: str = "v2", batches: tuple[int, ...] = (2, 3), generation: int = 1,
         kind: WorkloadKind = WorkloadKind.DEPLOYMENT) -> Plan:
    return Plan("server", target, 5, batches, None, generation, kind)


def rolling(batch_state: str = BATCH_IN_ROLLING, batch: int = 0, started: str = at(0),
            deadline: int = DEADLINE) -> Progress:
    return Progress(ROLLING_IN_BATCHES, batch_state, batch, "v2", "v1", 5, 5,
                    observed_generation=1, batch_started=started, deadline_seconds=deadline)


def workload(name: str, replicas: int, ready: int, current: int | None = None,
             **kw: int) -> Workload:
    return Workload(name, name if name != "server" else "v2", replicas,
                    current=replicas if current is None else current, ready=ready, **kw)


STUCK = (workload("v1", 5, 5), workload("v2", 2, 0))


def observe(progress: Progress, seconds: float, workloads: tuple[Workload, ...] = STUCK,
            deadline: int = DEADLINE, p: Plan | None = None) -> Observed:
    return Observed(p or plan(), progress, workloads, now=at(seconds),
                    deadline_seconds=deadline)


def workload_actions(observed: Observed) -> list[object]:
    return [a for a in decide(observed).actions if not isinstance(a, UpdateStatus | EmitEvent)]


HELD = Plan("server", "v2", 5, (2, 3), 0, 1, WorkloadKind.DEPLOYMENT)

DEADLINE_ROWS = [
    pytest.param(observe(rolling(), 30), (), ROLLING_IN_BATCHES, 31.0,
                 id="a batch within its deadline waits and asks to be woken when it falls due"),
    pytest.param(observe(rolling(), 60), (), ROLLING_IN_BATCHES, 1.0,
                 id="a batch exactly at its deadline still waits: whole seconds never fail early"),
    pytest.param(observe(rolling(), 61), ("progress-deadline",), ROLLOUT_FAILED, None,
                 id="a batch past its deadline fails the run"),
    pytest.param(observe(rolling(deadline=0), 3600, deadline=0), (), ROLLING_IN_BATCHES, None,
                 id="a deadline of zero waits forever"),
    pytest.param(observe(rolling(), 61, (workload("v1", 5, 5), workload("v2", 2, 2))),
                 ("shrink-others",), ROLLING_IN_BATCHES, 61.0,
                 id="a batch that got ready late goes on, and the old pods get a deadline anew"),
    pytest.param(observe(rolling(BATCH_VERIFYING), 61,
                         (workload("v1", 3, 3, current=5), workload("v2", 2, 2))),
                 ("progress-deadline",), ROLLOUT_FAILED, None,
                 id="old pods that never go also miss the deadline"),
    pytest.param(observe(rolling(BATCH_READY), 3600, (workload("v1", 3, 3), workload("v2", 2, 2)),
                         p=HELD),
                 (), ROLLING_IN_BATCHES, None,
                 id="a batch held ready by a partition runs no clock"),
]


@pytest.mark.parametrize(("observed", "steps", "state", "wake"), DEADLINE_ROWS)
def test_the_deadline_row_fires_only_past_the_deadline_of_a_waiting_batch(
    observed: Observed, steps: tuple[str, ...], state: str, wake: float | None,
) -> None:
    decision = decide(observed)
    assert (decision.steps, decision.progress.rolling_state, decision.wake_after) == (
        steps, state, wake)


def test_a_missed_deadline_is_a_condition_and_a_warning_naming_batch_and_counts() -> None:
    decision = decide(observe(rolling(), 61))
    assert workload_actions(observe(rolling(), 61)) == []
    cond = decision.progress.condition(CONDITION_PROGRESSING)
    assert cond is not None
    message = ("batch 0 (2 replicas, 1 of 2) not Ready within the progress deadline of 60s: "
               "0/2 pods of v2 Ready")
    assert (cond.status, cond.reason, cond.message, cond.last_transition_time) == (
        "False", REASON_DEADLINE, message, at(61))
    events = [(e.type, e.reason, e.message) for e in decision.of_type(EmitEvent)
              if isinstance(e, EmitEvent)]
    assert events == [("Warning", REASON_DEADLINE, message)]
    # The batch it failed in stays recorded, so a retry resumes there.
    assert (decision.progress.batch_state, decision.progress.current_batch) == (
        BATCH_IN_ROLLING, 0)


@pytest.mark.parametrize(
    ("observed", "message"),
    [
        (observe(rolling(BATCH_VERIFYING), 61,
                 (workload("v1", 3, 3, current=5), workload("v2", 2, 2))),
         "5 pods of v1 still running, 3 allowed"),
        (observe(rolling(), 61, (Workload("server", "v2", 5, current=5, ready=5, updated=2,
                                          updated_ready=1, partition=3),),
                 p=plan(kind=WorkloadKind.CLONESET)),
         "1/2 updated pods of server Ready"),
    ],
    ids=["old pods lingering", "cloneset in place"],
)
def test_the_deadline_message_says_what_the_batch_waits_for(
    observed: Observed, message: str
) -> None:
    cond = decide(observed).progress.condition(CONDITION_PROGRESSING)
    assert cond is not None and cond.message.endswith(message)


def test_a_missed_deadline_is_not_decided_again_until_the_spec_changes() -> None:
    failed = decide(observe(rolling(), 61)).progress
    again = decide(observe(failed, 500))
    assert (again.actions, again.wake_after) == ((), None)


def test_a_new_generation_retries_the_batch_with_a_fresh_clock_and_no_stale_condition() -> None:
    failed = decide(observe(rolling(), 61)).progress
    retry = decide(observe(failed, 100, p=plan(generation=2)))
    assert retry.steps == ("retry-resume", "batch-rolling")
    assert (retry.progress.rolling_state, retry.progress.batch_state,
            retry.progress.current_batch, retry.progress.batch_started) == (
        ROLLING_IN_BATCHES, BATCH_IN_ROLLING, 0, at(100))
    assert retry.progress.condition(CONDITION_PROGRESSING) is None
    assert retry.wake_after == DEADLINE + 1


def test_a_new_target_after_a_missed_deadline_starts_a_new_run() -> None:
    failed = decide(observe(rolling(), 61)).progress
    fixed = decide(observe(failed, 100, p=plan("v3", generation=2)))
    assert fixed.steps[0] == "retry-new-run"
    assert fixed.progress.condition(CONDITION_PROGRESSING) is None


def test_a_batch_starts_its_clock_when_it_begins_rolling() -> None:
    start = Progress(ROLLING_IN_BATCHES, BATCH_INITIALIZING, 1, "v2", "v1", 5, 5,
                     observed_generation=1)
    decision = decide(observe(start, 42, (workload("v1", 3, 3), workload("v2", 2, 2))))
    assert decision.steps == ("batch-rolling", "change-target")
    assert decision.of_type(ScaleWorkload) == [ScaleWorkload("v2", 5)]
    assert (decision.progress.batch_started, decision.progress.deadline_seconds) == (
        at(42), DEADLINE)


@pytest.mark.parametrize(
    ("progress", "started"),
    [(rolling(started="", deadline=0), at(10)), (rolling(deadline=600), at(0))],
    ids=["a status without a clock gets one from now",
         "a changed deadline keeps the batch's start"],
)
def test_the_batch_clock_is_healed_from_what_status_lacks(
    progress: Progress, started: str,
) -> None:
    decision = decide(observe(progress, 10))
    assert decision.steps == ("batch-clock",)
    assert (decision.progress.batch_started, decision.progress.deadline_seconds) == (
        started, DEADLINE)


def test_a_whole_run_whose_new_pods_never_get_ready_fails_and_leaves_the_old_pods_alone() -> None:
    """An upgrade v1 -> v2 where v2's pods never become Ready, one tick a second."""
    workloads = {"v1": workload("v1", 5, 5)}
    progress = Progress(ROLLOUT_SUCCEED, BATCH_READY, 0, "v1", "", 5, 0, 5, 5, 1,
                        (Condition("RolloutComplete", "True", "Succeeded"),))
    p = plan(generation=2)
    for second in range(200):
        decision = decide(Observed(p, progress, tuple(workloads.values()), now=at(second),
                                   deadline_seconds=DEADLINE))
        for action in decision.actions:
            if isinstance(action, UpdateStatus):
                progress = action.progress
            elif isinstance(action, CreateWorkload):
                workloads[action.revision] = workload(action.revision, 0, 0)
            elif isinstance(action, ScaleWorkload):
                w = workloads[action.name]
                workloads[action.name] = replace(w, replicas=action.replicas,
                                                 current=action.replicas)
        if progress.rolling_state == ROLLOUT_FAILED:
            break
    started = datetime.fromisoformat(progress.batch_started.replace("Z", "+00:00"))
    assert (progress.rolling_state, second - (started - T0).seconds) == (
        ROLLOUT_FAILED, DEADLINE + 1)
    assert {n: (w.replicas, w.ready) for n, w in workloads.items()} == {
        "v1": (5, 5), "v2": (2, 0)}


def test_after_a_missed_deadline_the_next_run_cuts_the_pods_that_never_got_ready_first() -> None:
    """v2 never got Ready; the fixed v3 is rolled and its first batch is Ready: v2's
    unready pods go before any Ready pod of v1, so capacity never dips."""
    progress = Progress(ROLLING_IN_BATCHES, BATCH_IN_ROLLING, 0, "v3", "v2", 6, 9,
                        observed_generation=3, batch_started=at(0), deadline_seconds=DEADLINE)
    p = Plan("server", "v3", 6, (3, 3), None, 3, WorkloadKind.DEPLOYMENT)
    live = (workload("v1", 6, 6), workload("v2", 3, 0), workload("v3", 3, 3))
    decision = decide(observe(progress, 5, live, p=p))
    assert decision.steps == ("shrink-others",)
    assert decision.of_type(ScaleWorkload) == [ScaleWorkload("v1", 3), ScaleWorkload("v2", 0)]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 8), parts=st.integers(1, 4), delay=st.integers(0, DEADLINE - 1),
       never=st.booleans())
def test_a_batch_fails_if_and_only_if_its_pods_miss_the_deadline(
    size: int, parts: int, delay: int, never: bool,
) -> None:
    """One decision a second; new pods get Ready ``delay`` seconds after their batch is
    written (or never). Within the deadline every upgrade finishes; otherwise it fails
    exactly one second past it and leaves the old revision's pods as they were."""
    workloads = {"v1": workload("v1", size, size)}
    progress = Progress(ROLLOUT_SUCCEED, BATCH_READY, 0, "v1", "", size, 0, size, size, 1,
                        (Condition("RolloutComplete", "True", "Succeeded"),))
    p = Plan("server", "v2", size, split(size, parts), None, 2, WorkloadKind.DEPLOYMENT)
    ready_at: dict[str, int] = {}
    for second in range(DEADLINE * 20):
        for name, due in list(ready_at.items()):
            if second >= due and not never:
                workloads[name] = replace(workloads[name], ready=workloads[name].replicas)
                del ready_at[name]
        decision = decide(Observed(p, progress, tuple(workloads.values()), now=at(second),
                                   deadline_seconds=DEADLINE))
        for action in decision.actions:
            if isinstance(action, UpdateStatus):
                progress = action.progress
            elif isinstance(action, CreateWorkload):
                workloads[action.revision] = workload(action.revision, 0, 0)
            elif isinstance(action, ScaleWorkload):
                w = workloads[action.name]
                workloads[action.name] = replace(w, replicas=action.replicas,
                                                 current=action.replicas,
                                                 ready=min(w.ready, action.replicas))
                if action.replicas > w.ready:
                    ready_at[action.name] = second + delay
            elif isinstance(action, DeleteWorkload):
                del workloads[action.name]
        if progress.rolling_state in (ROLLOUT_FAILED, ROLLOUT_SUCCEED) and \
                progress.target_revision == "v2":
            break
    if never:
        started = datetime.fromisoformat(progress.batch_started.replace("Z", "+00:00"))
        assert (progress.rolling_state, second - (started - T0).seconds) == (
            ROLLOUT_FAILED, DEADLINE + 1)
        assert workloads["v1"].replicas == size
    else:
        assert (progress.rolling_state, sorted(workloads)) == (ROLLOUT_SUCCEED, ["v2"])
