"""Facts about the state machine's values: the run, the goals of a batch, verification, time.

Holds pure predicates and derived numbers over Observed and Progress (which run the spec
asks for, how many replicas the target must run after the current batch, whether the
plan can be rolled at all, whether the batch's deadline has passed); the transition
table's guards and effects are built from them. The arithmetic and ranges themselves are
webhook.core.rules, shared with admission. It must not choose transitions (that is the
table's job), read clocks (``now`` is in Observed) or do I/O.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from webhook.controller.machine.values import (
    CONDITION_PAUSED,
    Observed,
    Progress,
    Run,
    RunMode,
    ScaleWorkload,
    WorkloadAction,
    WorkloadKind,
)
from webhook.core import rules
from webhook.core.errors import FieldError
from webhook.core.labels import (
    BATCH_IN_ROLLING,
    BATCH_READY,
    BATCH_VERIFYING,
    FINALISING,
    INITIALIZING,
    ROLLING_IN_BATCHES,
    ROLLOUT_FAILED,
    ROLLOUT_SUCCEED,
)
from webhook.core.paths import FieldPath
from webhook.core.state import RunRecord

# Where a Rollout keeps what verification checks: its errors name these fields.
PLAN_PATH = FieldPath.root("spec", "rolloutPlan")
TARGET_PATH = FieldPath.root("spec", "targetRevisionName")


# ---- the run ---------------------------------------------------------------------------


def mode_of(kind: WorkloadKind, source: str, target: str) -> RunMode:
    if not source or source == target:
        return RunMode.SCALE
    return RunMode.IN_PLACE if kind is WorkloadKind.CLONESET else RunMode.UPGRADE


def plan_changed(obs: Observed, p: Progress) -> bool:
    """The spec asks for a different run than the one recorded in status."""
    plan = obs.plan
    return (
        not p.rolling_state
        or p.target_revision != plan.target_revision
        or p.target_size != plan.target_size
    )


def last_run(p: Progress) -> RunRecord:
    """The run status records, as the rules shared with admission read it. A status that
    says rolloutSucceed finished its run, with or without the condition saying so."""
    return RunRecord(p.rolling_state, p.target_revision, p.source_revision, p.target_size,
                     p.original_size, p.complete or p.rolling_state == ROLLOUT_SUCCEED)


def new_run(obs: Observed, p: Progress) -> Run:
    """The run the spec asks for, starting from what status says runs now: where it
    starts is rules.next_run_origin, the function admission judges the change with."""
    plan = obs.plan
    origin = rules.next_run_origin(plan.target_revision, last_run(p))
    source = origin.source
    # Abandoning an unfinished run starts over from everything live.
    original = (origin.original if origin.original is not None
                else sum(w.replicas for w in obs.workloads))
    if not p.rolling_state:
        source, original = adopted(obs, source, original)
    if plan.kind is WorkloadKind.CLONESET and source != plan.target_revision \
            and obs.cloneset() is None:
        # The CloneSet is gone: nothing to update in place, create it afresh.
        source, original = "", 0
    return Run(source, plan.target_revision, original, plan.target_size,
               mode_of(plan.kind, source, plan.target_revision))


def adopted(obs: Observed, source: str, original: int) -> tuple[str, int]:
    """Where a Rollout's first run starts when the component already runs (a plain
    component that got the trait, or a Rollout deleted and created again): from the live
    workload of another revision, at everything live, so no pod goes before its
    replacement is Ready. A first deploy otherwise (``source``, ``original``)."""
    target = obs.plan.target_revision
    if obs.plan.kind is WorkloadKind.CLONESET:
        live = obs.cloneset()
        if live is None or not live.revision or live.revision == target:
            return source, original
        return live.revision, live.replicas
    others = obs.others(target)
    if not others:
        return source, original
    biggest = max(others, key=lambda w: (w.replicas, w.name))
    return biggest.name, sum(w.replicas for w in obs.workloads)


def current_run(obs: Observed, p: Progress) -> Run:
    return Run(p.source_revision, p.target_revision, p.original_size, p.target_size,
               mode_of(obs.plan.kind, p.source_revision, p.target_revision))


def prospective_run(obs: Observed, p: Progress) -> Run:
    return new_run(obs, p) if plan_changed(obs, p) else current_run(obs, p)


def scale_from(run: Run) -> int | None:
    """The size a pure scale starts from; None for any other run (first deploy, upgrade)."""
    return run.original if run.mode is RunMode.SCALE and run.source else None


def expected_sum(run: Run) -> int:
    """Batches add up to the size for a rollout, to the size change for a pure scale."""
    return rules.expected_batch_sum(run.size, scale_from(run))


def verification_errors(obs: Observed, p: Progress) -> list[FieldError]:
    """Why the plan cannot be rolled: the rules admission applies to the same plan, at the
    Rollout's own fields. The ranges first; then the target revision; then the batch sum,
    which only means something for a plan whose ranges hold and whose target exists."""
    plan = obs.plan
    errs = rules.plan_range_errors(
        plan.target_size, plan.batches, plan.partition, PLAN_PATH, rules.MIN_ROLLOUT_BATCH
    )
    if errs:
        return errs
    if not obs.target_known:
        return [rules.unknown_revision_error(
            TARGET_PATH, plan.target_revision, plan.component, obs.known_revisions)]
    run = prospective_run(obs, p)
    # Admission's origin for the same plan and status, with what only the controller
    # knows filled in: the replicas live, a CloneSet that is gone.
    shared = rules.planned_origin(plan.target_revision, plan.target_size, last_run(p))
    origin = replace(shared, source=run.source, original=run.original)
    return rules.run_errors(plan.batches, plan.target_revision, run.size, origin, PLAN_PATH,
                            updates_in_place=plan.kind is WorkloadKind.CLONESET)


def needs_verification(obs: Observed, p: Progress) -> bool:
    """The plan fails verification and this spec has not been failed yet."""
    if p.rolling_state == ROLLOUT_FAILED and p.observed_generation >= obs.plan.generation:
        return False  # already failed on this very spec
    busy = p.rolling_state != ROLLOUT_SUCCEED or plan_changed(obs, p)
    return busy and bool(verification_errors(obs, p))


def new_generation(obs: Observed, p: Progress) -> bool:
    """The spec changed since status was last decided on (a fix after a failure)."""
    return p.observed_generation < obs.plan.generation


# ---- the goals of the current batch -----------------------------------------------------


def target_goal(obs: Observed, p: Progress) -> int:
    """Replicas the target workload must run at the end of the current batch."""
    run = current_run(obs, p)
    goal = rules.replicas_after(obs.plan.batches, p.current_batch, run.size, scale_from(run))
    if scale_from(run) is not None:
        return goal
    # Rollouts (and first deploys) only grow the target batch by batch; what an
    # abandoned run left running there counts as done already.
    live = obs.workload_of(run.target)
    if run.mode is RunMode.IN_PLACE or live is None:
        return goal
    return max(goal, min(run.size, live.replicas))


def partition_goal(obs: Observed, p: Progress) -> int:
    """CloneSet in-place: pods still held on the old template after the current batch."""
    return max(0, p.target_size - rules.cumulative(obs.plan.batches, p.current_batch))


def target_reached(obs: Observed, p: Progress) -> bool:
    run = current_run(obs, p)
    live = obs.workload_of(run.target)
    if live is None or not live.settled:
        return False
    if run.mode is RunMode.IN_PLACE:
        released = run.size - partition_goal(obs, p)
        return (live.partition == partition_goal(obs, p)
                and live.updated_ready >= released and live.ready >= min(live.replicas, run.size))
    goal = target_goal(obs, p)
    return live.replicas == goal and live.current == goal and live.ready >= goal


def target_needs_change(obs: Observed, p: Progress) -> bool:
    run = current_run(obs, p)
    live = obs.workload_of(run.target)
    if live is None:
        return True
    if run.mode is RunMode.IN_PLACE:
        return live.partition != partition_goal(obs, p)
    return live.replicas != target_goal(obs, p)


def others_goal(obs: Observed, p: Progress) -> int:
    """Replicas all non-target Deployments may keep once the batch's new pods are ready."""
    return max(0, p.target_size - target_goal(obs, p))


def others_scale_down(obs: Observed, p: Progress) -> list[WorkloadAction]:
    """Shrink the others to others_goal. Pods that are not Ready go first (cutting them
    costs no capacity, e.g. those of a release that never got Ready), then leftovers of
    abandoned runs, the source last."""
    run = current_run(obs, p)
    others = sorted(obs.others(run.target), key=lambda w: (w.name == run.source, w.name))
    excess = sum(w.replicas for w in others) - others_goal(obs, p)
    cuts = dict.fromkeys((w.name for w in others), 0)
    for w in others:
        take = min(max(0, excess), max(0, w.replicas - w.ready))
        cuts[w.name] += take
        excess -= take
    for w in others:
        take = min(max(0, excess), w.replicas - cuts[w.name])
        cuts[w.name] += take
        excess -= take
    return [ScaleWorkload(w.name, w.replicas - cuts[w.name]) for w in others if cuts[w.name] > 0]


def others_settled(obs: Observed, p: Progress) -> bool:
    others = obs.others(p.target_revision)
    return (sum(w.replicas for w in others) <= others_goal(obs, p)
            and all(w.settled and w.current <= w.replicas for w in others))


def is_last_batch(obs: Observed, p: Progress) -> bool:
    return p.current_batch >= len(obs.plan.batches) - 1


def may_advance(obs: Observed, p: Progress) -> bool:
    part = obs.plan.partition
    return not is_last_batch(obs, p) and (part is None or p.current_batch < part)


def pause_recorded(p: Progress) -> bool:
    """Status says a paused plan holds the run (Paused=True)."""
    cond = p.condition(CONDITION_PAUSED)
    return cond is not None and cond.status == "True"


def next_step(obs: Observed, p: Progress) -> str:
    """What the run does next from where it stands: the batch it starts, or its end."""
    if p.batch_state == BATCH_READY and is_last_batch(obs, p):
        return "finishing the run"
    upcoming = p.current_batch + (1 if p.batch_state == BATCH_READY else 0)
    return f"batch {upcoming}"


# ---- guards the table names -----------------------------------------------------------


def target_written(obs: Observed, p: Progress) -> bool:
    """The target workload is there (in place: re-templated, every pod held back by the
    partition); its controller may not have observed it yet."""
    run = current_run(obs, p)
    live = obs.workload_of(run.target)
    if live is None:
        return False
    if run.mode is RunMode.IN_PLACE:
        return live.partition is not None and live.partition >= run.size
    return True


def target_prepared(obs: Observed, p: Progress) -> bool:
    """The target is written and, in place, observed by its controller: batches may begin.
    In between the run waits on the cluster (under the progress deadline)."""
    if not target_written(obs, p):
        return False
    run = current_run(obs, p)
    live = obs.workload_of(run.target)
    return run.mode is not RunMode.IN_PLACE or (live is not None and live.settled)


def target_ready(obs: Observed, p: Progress) -> bool:
    return not target_needs_change(obs, p) and target_reached(obs, p)


def batch_verified(obs: Observed, p: Progress) -> bool:
    return target_reached(obs, p) and others_settled(obs, p)


def clock_missing(obs: Observed, p: Progress) -> bool:
    """A status written before the clock existed, or a deadline changed by a restart
    with another --progress-deadline: the batch's clock is (re)set from now on."""
    return (not p.batch_started and bool(obs.now)) or p.deadline_seconds != obs.deadline_seconds


def with_counts(obs: Observed, p: Progress) -> Progress:
    """Status counters from the target workload as it is now."""
    if not p.target_revision:
        return p
    live = obs.workload_of(p.target_revision)
    if live is None:
        return replace(p, upgraded=0, upgraded_ready=0)
    if current_run(obs, p).mode is RunMode.IN_PLACE and p.rolling_state != ROLLOUT_SUCCEED:
        return replace(p, upgraded=live.updated, upgraded_ready=live.updated_ready)
    return replace(p, upgraded=live.current, upgraded_ready=live.ready)


# ---- the progress deadline -------------------------------------------------------------

# Batch states in which the run only waits for pods: the deadline runs there.
WAITING = frozenset({BATCH_IN_ROLLING, BATCH_VERIFYING})
# Rolling states that wait on the cluster whatever the batch state: the target workload
# being created or re-templated, the run being closed. A batchPartition hold
# (rollingInBatches / batchReady) is deliberate and never waits against the clock.
WAITING_RUN = frozenset({INITIALIZING, FINALISING})


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 UTC time as the API writes it; None when missing or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def batch_elapsed(obs: Observed, p: Progress) -> float | None:
    """Seconds since the current batch began rolling, by the clock passed in ``obs.now``."""
    start, now = parse_time(p.batch_started), parse_time(obs.now)
    if start is None or now is None:
        return None
    return (now - start).total_seconds()


def waiting_on_batch(p: Progress) -> bool:
    return p.rolling_state == ROLLING_IN_BATCHES and p.batch_state in WAITING


def waiting_on_cluster(p: Progress) -> bool:
    """The run waits on the cluster, not on a deliberate hold: the deadline runs."""
    return p.rolling_state in WAITING_RUN or waiting_on_batch(p)


def deadline_passed(obs: Observed, p: Progress) -> bool:
    """The batch has waited longer than the deadline. Times are whole seconds, so only a
    full second past it counts: a batch is never failed early."""
    elapsed = batch_elapsed(obs, p)
    return obs.deadline_seconds > 0 and elapsed is not None and elapsed > obs.deadline_seconds


def deadline_wake(obs: Observed, p: Progress) -> float | None:
    """Seconds until the deadline of the wait in progress falls due, if it runs."""
    if obs.deadline_seconds <= 0 or not waiting_on_cluster(p):
        return None
    elapsed = batch_elapsed(obs, p)
    if elapsed is None:
        return None
    return max(0.05, obs.deadline_seconds + 1 - elapsed)


def stall_message(obs: Observed, p: Progress) -> str:
    """What the batch is waiting for, with counts, for the condition and the event."""
    run = current_run(obs, p)
    plan = obs.plan
    if p.rolling_state in WAITING_RUN:
        what = "prepared" if p.rolling_state == INITIALIZING else "finished"
        head = (f"the rollout to {run.target} was not {what} within the progress deadline "
                f"of {obs.deadline_seconds}s ({p.rolling_state})")
        live = obs.workload_of(run.target)
        if live is None:
            return f"{head}: the workload of {run.target} is missing"
        return (f"{head}: {live.name} at {live.replicas} replicas, "
                f"{'settled' if live.settled else 'not yet observed by its controller'}")
    batch = p.current_batch
    size = plan.batches[batch] if batch < len(plan.batches) else 0
    head = (f"batch {batch} ({size} replicas, {batch + 1} of {len(plan.batches)}) not Ready "
            f"within the progress deadline of {obs.deadline_seconds}s")
    live = obs.workload_of(run.target)
    if live is None:
        return f"{head}: the workload of {run.target} is missing"
    if run.mode is RunMode.IN_PLACE:
        released = max(0, run.size - partition_goal(obs, p))
        return f"{head}: {live.updated_ready}/{released} updated pods of {live.name} Ready"
    goal = target_goal(obs, p)
    if p.batch_state == BATCH_VERIFYING and live.ready >= goal:
        others = obs.others(run.target)
        running = sum(w.current for w in others)
        names = ", ".join(w.name for w in others)
        return (f"{head}: {running} pods of {names} still running, "
                f"{others_goal(obs, p)} allowed")
    return f"{head}: {min(live.ready, goal)}/{goal} pods of {live.name} Ready"
