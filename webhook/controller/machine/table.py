"""The rollout state machine's transition table and ``decide(observed) -> Decision``.

Holds TRANSITIONS, the one table of (from-state, guard, effect) rows, PRECEDENCE (which
row wins where two can hold at once) and decide(), which takes rows until one changes a
workload. It must not do I/O, read clocks or touch the Kubernetes client: the caller
passes ``now`` in (webhook.controller.machine.values.Observed) and carries the actions out.

Semantics, as in KubeVela's rollout trait:
- a run moves a component from ``source`` (what runs now) to ``target`` (the Rollout's
  spec.targetRevisionName) at ``targetSize`` replicas, one batch at a time;
- first deploy and pure scaling (same revision, new size) change one workload's
  replicas by each batch (sum of batches = |targetSize - original size|);
- a Deployment upgrade grows the target Deployment by the batch, then, once the new
  pods are ready, shrinks the other Deployments of the component by the same amount;
  the others are deleted when the run succeeds;
- a CloneSet upgrade re-templates the CloneSet in place with every pod held back by
  ``updateStrategy.partition`` and releases the batch by lowering the partition;
- ``batchPartition: N`` holds the run at batch N in rollingInBatches/batchReady;
- ``paused: true`` holds the run before its next batch (batchInitializing, or batchReady
  of the batch before; the batch in flight finishes first) and before closing the run,
  touching no workload, with the Paused condition True; ``false`` or removing it goes on;
- a plan that fails verification goes to rolloutFailed and touches no workload;
- a batch whose pods are not Ready within the progress deadline (counted from the moment
  the batch began rolling) goes to rolloutFailed too, and touches no workload: there is
  no automatic rollback, a new spec generation retries the batch;
- a new target or size in the middle of a run abandons it and starts a new run from
  whatever is live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from webhook.controller.machine.effects import (
    Outcome,
    abandon,
    advance_batch,
    begin_batches,
    change_target,
    clean_up,
    fail_deadline,
    fail_refused,
    fail_verification,
    finalise,
    finalize_batch,
    hold,
    mark_batch_ready,
    mark_verified,
    prepare_target,
    release,
    reroll_batch,
    restart_clock,
    restore_success,
    resume,
    roll_batch,
    shrink_others,
    start_run,
    succeed,
)
from webhook.controller.machine.facts import (
    batch_verified,
    clock_missing,
    deadline_passed,
    deadline_wake,
    is_last_batch,
    may_advance,
    needs_verification,
    new_generation,
    others_scale_down,
    pause_recorded,
    plan_changed,
    target_needs_change,
    target_prepared,
    target_ready,
    target_written,
    waiting_on_cluster,
    with_counts,
)
from webhook.controller.machine.values import (
    Action,
    Decision,
    EmitEvent,
    Observed,
    Progress,
    UpdateStatus,
    WorkloadAction,
)
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

# A decision applies instantaneous transitions back to back; this bounds the chain.
MAX_STEPS = 16


Guard = Callable[[Observed, Progress], bool]
Effect = Callable[[Observed, Progress], Outcome]

ANY = frozenset({"", VERIFYING_SPEC, INITIALIZING, ROLLING_IN_BATCHES, FINALISING,
                 ROLLOUT_SUCCEED, ROLLOUT_FAILED, ABANDONING})
IN_FLIGHT = frozenset({VERIFYING_SPEC, INITIALIZING, ROLLING_IN_BATCHES, FINALISING})
# Where a run may wait on the cluster (facts.waiting_on_cluster says when it does).
WAITS = frozenset({INITIALIZING, ROLLING_IN_BATCHES, FINALISING})


@dataclass(frozen=True)
class Transition:
    name: str
    rolling: frozenset[str]
    batch: frozenset[str] | None  # None: any batch state
    guard: Guard
    effect: Effect


def _always(obs: Observed, p: Progress) -> bool:
    return True


def _fresh(obs: Observed, p: Progress) -> bool:
    return plan_changed(obs, p)


TRANSITIONS: tuple[Transition, ...] = (
    # A plan that cannot be rolled stops everything, from any state, touching no workload.
    Transition("verification-failed", ANY, None, needs_verification, fail_verification),
    # paused was switched off: say so, then go on with whatever the run does next.
    Transition("resumed", ANY, None, lambda o, p: not o.plan.paused and pause_recorded(p),
               release),
    # A fixed spec after a failure: start over, resume, or go back to the finished run.
    Transition("retry-new-run", frozenset({ROLLOUT_FAILED}), None,
               lambda o, p: new_generation(o, p) and plan_changed(o, p), start_run),
    Transition("retry-resume", frozenset({ROLLOUT_FAILED}), None,
               lambda o, p: new_generation(o, p) and not p.complete, resume),
    Transition("retry-restore", frozenset({ROLLOUT_FAILED}), None,
               lambda o, p: new_generation(o, p) and p.complete, restore_success),
    # A new run: first deploy, or a new target / size after success.
    Transition("start", frozenset({"", ROLLOUT_SUCCEED}), None, _fresh, start_run),
    # A new target / size in the middle of a run.
    Transition("abandon", IN_FLIGHT, None, _fresh, abandon),
    Transition("restart", frozenset({ABANDONING}), None, _always, start_run),
    Transition("verified", frozenset({VERIFYING_SPEC}), None, _always, mark_verified),
    Transition("prepare-target", frozenset({INITIALIZING}), None,
               lambda o, p: not target_written(o, p), prepare_target),
    Transition("begin-batches", frozenset({INITIALIZING}), None, target_prepared,
               begin_batches),
    # A paused plan holds the run before its next batch (or before closing the run),
    # touching no workload, until paused is off. The batch in flight finishes first.
    Transition("paused", frozenset({ROLLING_IN_BATCHES}),
               frozenset({BATCH_INITIALIZING, BATCH_READY}), lambda o, p: o.plan.paused, hold),
    Transition("batch-rolling", frozenset({ROLLING_IN_BATCHES}),
               frozenset({BATCH_INITIALIZING}), _always, roll_batch),
    # The clock of a wait on the cluster, when a status lacks it (or the deadline in force
    # changed).
    Transition("batch-clock", WAITS, None,
               lambda o, p: waiting_on_cluster(p) and clock_missing(o, p), restart_clock),
    Transition("change-target", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_IN_ROLLING}),
               target_needs_change, change_target),
    Transition("shrink-others", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_IN_ROLLING}),
               target_ready, shrink_others),
    # New batches mid-run moved the current batch's goal: roll the batch again.
    Transition("batches-changed", frozenset({ROLLING_IN_BATCHES, FINALISING}),
               frozenset({BATCH_VERIFYING, BATCH_FINALIZING, BATCH_READY}),
               target_needs_change, reroll_batch),
    Transition("recut-others", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_VERIFYING}),
               lambda o, p: bool(others_scale_down(o, p)), shrink_others),
    Transition("batch-verified", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_VERIFYING}),
               batch_verified, finalize_batch),
    Transition("batch-ready", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_FINALIZING}),
               _always, mark_batch_ready),
    Transition("next-batch", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_READY}),
               may_advance, advance_batch),
    Transition("last-batch-done", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_READY}),
               is_last_batch, finalise),
    Transition("succeed", frozenset({FINALISING}), None, _always, succeed),
    # Deletions lost to a crash after the success was recorded.
    Transition("clean-up", frozenset({ROLLOUT_SUCCEED}), None,
               lambda o, p: bool(o.others(p.target_revision)), clean_up),
    # Nothing left to do but wait on the cluster (the target being prepared, a batch's
    # pods, the run being closed), and the wait took too long: fail the run, touching no
    # workload (no automatic rollback; a new generation retries). Last, so any row that
    # can still act goes first.
    Transition("progress-deadline", WAITS, None,
               lambda o, p: waiting_on_cluster(p) and deadline_passed(o, p), fail_deadline),
)


# Rows are tried in table order and the first that holds is taken, so the order matters
# only where two rows can hold in the same state. These are all such pairs: each row,
# and the rows it wins over. tests/unit/test_machine_table.py checks that the table's
# order agrees, and that no other pair of rows ever holds at once in a reachable state.
_WAITING_ROWS = frozenset({"change-target", "shrink-others", "batches-changed", "recut-others",
                           "batch-verified", "progress-deadline"})
_IN_FLIGHT_ROWS = _WAITING_ROWS | {"verified", "prepare-target", "begin-batches", "paused",
                                   "batch-rolling",
                                   "batch-clock", "batch-ready", "next-batch", "last-batch-done",
                                   "succeed"}
PRECEDENCE: Mapping[str, frozenset[str]] = {
    # A plan that cannot be rolled stops everything.
    "verification-failed": frozenset({t.name for t in TRANSITIONS} - {"verification-failed"}),
    # A fixed spec that asks for a new target or size starts a run; it does not resume.
    "retry-new-run": frozenset({"retry-resume", "retry-restore"}),
    # A new run after success: its own success deletes what is left of the old one.
    "start": frozenset({"clean-up"}),
    # A new target or size ends the run in flight, whatever it was about to do.
    "abandon": _IN_FLIGHT_ROWS,
    # Preparing the target comes before anything about its clock.
    "prepare-target": frozenset({"batch-clock", "progress-deadline"}),
    "begin-batches": frozenset({"batch-clock", "progress-deadline"}),
    # A waiting batch gets its clock before anything is measured against it.
    "batch-clock": _WAITING_ROWS | {"succeed"},
    # Closing the run is work it can still do.
    "succeed": frozenset({"progress-deadline"}),
    # Work the batch can still do comes before failing it for time.
    "change-target": frozenset({"progress-deadline"}),
    "shrink-others": frozenset({"progress-deadline"}),
    "recut-others": frozenset({"progress-deadline"}),
    "batch-verified": frozenset({"progress-deadline"}),
    # New batches move the goal of the batch: roll it again before going on.
    "batches-changed": frozenset({"recut-others", "batch-verified", "progress-deadline",
                                  "batch-ready", "next-batch", "last-batch-done", "succeed"}),
    # Switching paused off is said first; whatever the run does next follows.
    "resumed": frozenset({t.name for t in TRANSITIONS} - {"verification-failed", "resumed"}),
    # A paused plan touches no pod: not the next batch, not the current one again, not
    # the end of the run.
    "paused": frozenset({"batch-rolling", "batches-changed", "next-batch", "last-batch-done"}),
}


def refuse(obs: Observed, reason: str, message: str) -> Decision:
    """The decision once a workload write of ``obs.progress``'s run cannot be made
    (reason REASON_API_REFUSED or REASON_OWNERSHIP): rolloutFailed with the reason and
    message in the Progressing condition, and a Warning event. Like every failure it
    holds until a new spec generation retries."""
    out = fail_refused(obs, obs.progress, reason, message)
    actions: list[Action] = [UpdateStatus(out.progress)]
    if out.event is not None:
        actions.append(out.event)
    return Decision(tuple(actions), out.progress, ("write-refused",))


def _applies(t: Transition, obs: Observed, p: Progress) -> bool:
    if p.rolling_state not in t.rolling:
        return False
    if t.batch is not None and p.batch_state not in t.batch:
        return False
    return t.guard(obs, p)


def holding(obs: Observed, p: Progress) -> list[Transition]:
    """Every row that holds in this state, in table order (decide() takes the first)."""
    return [t for t in TRANSITIONS if _applies(t, obs, p)]


def _matching(obs: Observed, p: Progress) -> Transition | None:
    return next((t for t in TRANSITIONS if _applies(t, obs, p)), None)


def decide(obs: Observed) -> Decision:
    """Take every transition that holds now; stop after one that changes a workload.

    Stopping there lets the next decision see the workload's answer (a fresh read),
    so no decision ever builds on a write it has not observed.
    """
    p = obs.progress
    workload_actions: list[WorkloadAction] = []
    events: list[EmitEvent] = []
    steps: list[str] = []
    for _ in range(MAX_STEPS):
        t = _matching(obs, p)
        if t is None:
            break
        out = t.effect(obs, p)
        steps.append(t.name)
        p = out.progress
        if out.event is not None:
            events.append(out.event)
        if out.actions:
            workload_actions.extend(out.actions)
            break
        if t.name in ("verification-failed", "progress-deadline", "paused"):
            break
    p = with_counts(obs, p)
    # Status first: it records the intent (the batch being rolled) before any workload
    # moves, and its resourceVersion precondition stops a decision made on a stale read.
    # A crash between the two is healed by the next decision: every row is level-based.
    actions: list[Action] = [UpdateStatus(p)] if p != obs.progress else []
    actions.extend(workload_actions)
    actions.extend(events)
    return Decision(tuple(actions), p, tuple(steps), deadline_wake(obs, p))
