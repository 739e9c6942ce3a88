"""The effects of the transition table's rows: what taking a row does to status and workloads.

Holds Outcome (a new Progress, the workload actions and at most one event) and one
function per effect, each a pure function of Observed and Progress built on the facts.
It must not choose rows (webhook.controller.machine.table does), read clocks or do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from webhook.controller.machine.facts import (
    current_run,
    new_run,
    next_step,
    others_scale_down,
    partition_goal,
    stall_message,
    target_goal,
    verification_errors,
)
from webhook.controller.machine.values import (
    CONDITION_COMPLETE,
    CONDITION_PAUSED,
    CONDITION_PROGRESSING,
    CONDITION_VERIFIED,
    REASON_DEADLINE,
    Condition,
    CreateWorkload,
    DeleteWorkload,
    EmitEvent,
    Observed,
    Progress,
    RetemplateWorkload,
    RunMode,
    ScaleWorkload,
    SetPartition,
    WorkloadAction,
    WorkloadKind,
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


@dataclass(frozen=True)
class Outcome:
    progress: Progress
    actions: tuple[WorkloadAction, ...] = ()
    event: EmitEvent | None = None



def _set_condition(p: Progress, cond: Condition, now: str) -> Progress:
    old = p.condition(cond.type)
    stamp = old.last_transition_time if old is not None and old.status == cond.status else now
    kept = tuple(c for c in p.conditions if c.type != cond.type)
    return replace(p, conditions=(*kept, replace(cond, last_transition_time=stamp)))


def _move(obs: Observed, p: Progress, rolling: str, batch: str | None = None,
          **changes: object) -> Progress:
    """Progress with new states; records the generation the move was decided on."""
    out = replace(p, rolling_state=rolling, observed_generation=obs.plan.generation,
                  **changes)  # type: ignore[arg-type]
    if batch is not None:
        out = replace(out, batch_state=batch)
    return out


def _event(reason: str, message: str, type_: str = "Normal") -> EmitEvent:
    return EmitEvent(type_, reason, message)


def fail_verification(obs: Observed, p: Progress) -> Outcome:
    why = "; ".join(str(e) for e in verification_errors(obs, p)) or "invalid rollout plan"
    q = _move(obs, p, ROLLOUT_FAILED)
    q = _set_condition(q, Condition(CONDITION_VERIFIED, "False", "VerificationFailed", why),
                       obs.now)
    return Outcome(q, event=_event("VerificationFailed", why, "Warning"))


def start_run(obs: Observed, p: Progress) -> Outcome:
    run = new_run(obs, p)
    q = _move(obs, _clear_stall(p), VERIFYING_SPEC, BATCH_INITIALIZING, current_batch=0,
              source_revision=run.source, target_revision=run.target,
              original_size=run.original, target_size=run.size)
    q = _set_condition(q, Condition(CONDITION_COMPLETE, "False", "Rolling",
                                    f"{run.mode.value} to {run.target} at {run.size}"), obs.now)
    src = run.source or "nothing"
    return Outcome(q, event=_event("VerifyingSpec",
                                   f"rollout {src} -> {run.target} ({run.mode.value}), "
                                   f"{run.original} -> {run.size} replicas"))


def mark_verified(obs: Observed, p: Progress) -> Outcome:
    # Preparing the target waits on the cluster too: the deadline's clock starts here.
    q = _clock_batch(obs, _move(obs, p, INITIALIZING))
    q = _set_condition(q, Condition(CONDITION_VERIFIED, "True", "Verified"), obs.now)
    return Outcome(q, event=_event("Initializing", "rollout plan verified"))


def prepare_target(obs: Observed, p: Progress) -> Outcome:
    run = current_run(obs, p)
    if run.mode is RunMode.IN_PLACE:
        cs = obs.cloneset()
        replicas = cs.replicas if cs is not None else 0
        action: WorkloadAction = RetemplateWorkload(obs.plan.component, run.target,
                                                    max(replicas, run.size), run.size)
        return Outcome(replace(p, observed_generation=obs.plan.generation), (action,),
                       _event("TemplateUpdated",
                              f"{obs.plan.component} now templated from {run.target}, "
                              f"all pods held by partition {run.size}"))
    partition = 0 if obs.plan.kind is WorkloadKind.CLONESET else None
    return Outcome(replace(p, observed_generation=obs.plan.generation),
                   (CreateWorkload(run.target, 0, partition),),
                   _event("WorkloadCreated", f"workload for {run.target} created at 0 replicas"))


def begin_batches(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, ROLLING_IN_BATCHES, BATCH_INITIALIZING, current_batch=0)
    return Outcome(q, event=_event("RollingInBatches", "rolling batch 0"))


def roll_batch(obs: Observed, p: Progress) -> Outcome:
    q = _clock_batch(obs, _move(obs, p, ROLLING_IN_BATCHES, BATCH_IN_ROLLING))
    return Outcome(q, event=_event("BatchInRolling", f"batch {p.current_batch} rolling"))


def change_target(obs: Observed, p: Progress) -> Outcome:
    run = current_run(obs, p)
    live = obs.workload_of(run.target)
    q = replace(p, observed_generation=obs.plan.generation)
    if run.mode is RunMode.IN_PLACE:
        goal = partition_goal(obs, p)
        return Outcome(q, (SetPartition(obs.plan.component, goal),),
                       _event("BatchReleased", f"batch {p.current_batch}: partition {goal}"))
    goal = target_goal(obs, p)
    if live is None:
        partition = 0 if obs.plan.kind is WorkloadKind.CLONESET else None
        return Outcome(q, (CreateWorkload(run.target, goal, partition),),
                       _event("WorkloadCreated", f"workload for {run.target} recreated"))
    name = live.name
    return Outcome(q, (ScaleWorkload(name, goal),),
                   _event("BatchScaled", f"batch {p.current_batch}: {name} to {goal} replicas"))


def reroll_batch(obs: Observed, p: Progress) -> Outcome:
    batch = min(p.current_batch, len(obs.plan.batches) - 1)
    q = _clock_batch(obs, _move(obs, p, ROLLING_IN_BATCHES, BATCH_IN_ROLLING,
                                current_batch=batch))
    return Outcome(q, event=_event("BatchInRolling",
                                   f"batches changed: batch {batch} rolls again"))


def shrink_others(obs: Observed, p: Progress) -> Outcome:
    # The new pods are Ready: the wait for the old ones to go gets a deadline of its own.
    q = _clock_batch(obs, _move(obs, p, ROLLING_IN_BATCHES, BATCH_VERIFYING))
    cuts = tuple(others_scale_down(obs, p))
    text = ", ".join(f"{a.name} to {a.replicas}" for a in cuts if isinstance(a, ScaleWorkload))
    message = f"batch {p.current_batch} ready" + (f"; scaling {text}" if text else "")
    return Outcome(q, cuts, _event("BatchVerifying", message))


def finalize_batch(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, ROLLING_IN_BATCHES, BATCH_FINALIZING)
    return Outcome(q, event=_event("BatchFinalizing", f"batch {p.current_batch} verified"))


def mark_batch_ready(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, ROLLING_IN_BATCHES, BATCH_READY)
    return Outcome(q, event=_event("BatchReady", f"batch {p.current_batch} ready"))


def advance_batch(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, ROLLING_IN_BATCHES, BATCH_INITIALIZING, current_batch=p.current_batch + 1)
    return Outcome(q, event=_event("BatchInitializing", f"batch {p.current_batch + 1} starting"))


def finalise(obs: Observed, p: Progress) -> Outcome:
    q = _clock_batch(obs, _move(obs, p, FINALISING))
    return Outcome(q, event=_event("Finalising", "all batches ready"))


def succeed(obs: Observed, p: Progress) -> Outcome:
    doomed = tuple(DeleteWorkload(w.name) for w in obs.others(p.target_revision))
    q = _move(obs, p, ROLLOUT_SUCCEED)
    q = _set_condition(q, Condition(CONDITION_COMPLETE, "True", "Succeeded",
                                    f"{p.target_revision} runs {p.target_size} replicas"), obs.now)
    gone = ", ".join(a.name for a in doomed)
    message = f"{p.target_revision} at {p.target_size} replicas" + (
        f"; deleted {gone}" if gone else "")
    return Outcome(q, doomed, _event("RolloutSucceed", message))


def clean_up(obs: Observed, p: Progress) -> Outcome:
    doomed = tuple(DeleteWorkload(w.name) for w in obs.others(p.target_revision))
    return Outcome(p, doomed, _event("WorkloadDeleted", ", ".join(a.name for a in doomed)))


def abandon(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, ABANDONING)
    return Outcome(q, event=_event(
        "Abandoning", f"spec changed to {obs.plan.target_revision} at {obs.plan.target_size} "
        f"while rolling {p.target_revision}", "Warning"))


def resume(obs: Observed, p: Progress) -> Outcome:
    if obs.workload_of(p.target_revision) is None:
        # Failed before its target existed (a refused create, say): prepare it first.
        q = _clock_batch(obs, _move(obs, _clear_stall(p), INITIALIZING, BATCH_INITIALIZING,
                                    current_batch=0))
        q = _set_condition(q, Condition(CONDITION_VERIFIED, "True", "Verified"), obs.now)
        return Outcome(q, event=_event("Initializing", f"resuming: preparing {p.target_revision}"))
    q = _move(obs, _clear_stall(p), ROLLING_IN_BATCHES, BATCH_INITIALIZING)
    q = _set_condition(q, Condition(CONDITION_VERIFIED, "True", "Verified"), obs.now)
    return Outcome(q, event=_event("RollingInBatches", f"resuming at batch {p.current_batch}"))


def restore_success(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, _clear_stall(p), ROLLOUT_SUCCEED, BATCH_READY)
    q = _set_condition(q, Condition(CONDITION_VERIFIED, "True", "Verified"), obs.now)
    return Outcome(q, event=_event("RolloutSucceed", "spec is valid again; nothing to roll"))


def _clock_batch(obs: Observed, p: Progress) -> Progress:
    """The batch starts rolling now, under the deadline in force."""
    return replace(p, batch_started=obs.now, deadline_seconds=obs.deadline_seconds)


def restart_clock(obs: Observed, p: Progress) -> Outcome:
    started = p.batch_started or obs.now
    return Outcome(replace(p, batch_started=started, deadline_seconds=obs.deadline_seconds))


def fail_deadline(obs: Observed, p: Progress) -> Outcome:
    why = stall_message(obs, p)
    q = _move(obs, p, ROLLOUT_FAILED)
    q = _set_condition(q, Condition(CONDITION_PROGRESSING, "False", REASON_DEADLINE, why),
                       obs.now)
    return Outcome(q, event=_event(REASON_DEADLINE, why, "Warning"))


def hold(obs: Observed, p: Progress) -> Outcome:
    """A paused plan: the run stays where it is, before its next batch, touching nothing;
    the Paused condition says so (and an event, the first time)."""
    message = f"paused: holding before {next_step(obs, p)}"
    held = _set_condition(replace(p, observed_generation=obs.plan.generation),
                          Condition(CONDITION_PAUSED, "True", "Paused", message), obs.now)
    if p.condition(CONDITION_PAUSED) == held.condition(CONDITION_PAUSED):
        return Outcome(held)  # held already: nothing new to say
    return Outcome(held, event=_event("Paused", message))


def release(obs: Observed, p: Progress) -> Outcome:
    """The plan is no longer paused: the run goes on from where it was held."""
    q = _set_condition(p, Condition(CONDITION_PAUSED, "False", "Resumed"), obs.now)
    return Outcome(q, event=_event("Resumed", "paused is off: the rollout goes on"))


def fail_refused(obs: Observed, p: Progress, reason: str, message: str) -> Outcome:
    """A workload write no retry can make (``reason``: REASON_API_REFUSED or
    REASON_OWNERSHIP): the run fails where it stands, as for a missed deadline."""
    q = _move(obs, p, ROLLOUT_FAILED)
    q = _set_condition(q, Condition(CONDITION_PROGRESSING, "False", reason, message), obs.now)
    return Outcome(q, event=_event(reason, message, "Warning"))


def _clear_stall(p: Progress) -> Progress:
    """A retry starts with a clean slate: the missed deadline belongs to the failed try."""
    return replace(p, conditions=tuple(c for c in p.conditions
                                       if c.type != CONDITION_PROGRESSING))
