"""The rollout state machine: ``decide(observed) -> Decision``, every transition in one table.

Holds the plain values a decision needs (the Rollout's plan and progress, the live
workloads of its component), the actions a decision asks for (create, scale,
re-template, delete a workload; write status; emit an event) and TRANSITIONS, the one
table of (from-state, guard, effect) rows. It must not do I/O, read clocks or touch
the Kubernetes client: the caller passes ``now`` in and carries the actions out.

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
- a plan that fails verification goes to rolloutFailed and touches no workload;
- a batch whose pods are not Ready within the progress deadline (counted from the moment
  the batch began rolling) goes to rolloutFailed too, and touches no workload: there is
  no automatic rollback, a new spec generation retries the batch;
- a new target or size in the middle of a run abandons it and starts a new run from
  whatever is live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum

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

# Condition types the controller keeps in Rollout status.conditions.
CONDITION_VERIFIED = "SpecVerified"
CONDITION_COMPLETE = "RolloutComplete"
# Present only once a batch missed its progress deadline (status False), as in Argo Rollouts.
CONDITION_PROGRESSING = "Progressing"
REASON_DEADLINE = "ProgressDeadlineExceeded"

# A decision applies instantaneous transitions back to back; this bounds the chain.
MAX_STEPS = 16


class WorkloadKind(Enum):
    """How a component's workload is rolled."""

    DEPLOYMENT = "Deployment"  # one Deployment per revision, named after it
    CLONESET = "CloneSet"  # one CloneSet per component, updated in place


class Mode(Enum):
    """What a run does to the workloads."""

    SCALE = "scale"  # first deploy or same revision: change the target's replicas
    UPGRADE = "upgrade"  # Deployments: grow the target, shrink the others
    IN_PLACE = "inPlace"  # CloneSet: re-template, release pods by partition


@dataclass(frozen=True)
class Plan:
    """The Rollout's spec."""

    component: str
    target_revision: str
    target_size: int
    batches: tuple[int, ...]
    partition: int | None = None
    generation: int = 1
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False"
    reason: str
    message: str = ""
    last_transition_time: str = ""


@dataclass(frozen=True)
class Progress:
    """The Rollout's status: the run in flight (or last finished) and where it stands."""

    rolling_state: str = ""
    batch_state: str = ""
    current_batch: int = 0
    target_revision: str = ""  # lastTargetRevision
    source_revision: str = ""  # lastSourceRevision ("" on a first deploy)
    target_size: int = 0  # rolloutTargetSize
    original_size: int = 0  # rolloutOriginalSize
    upgraded: int = 0  # upgradedReplicas
    upgraded_ready: int = 0  # upgradedReadyReplicas
    observed_generation: int = 0
    conditions: tuple[Condition, ...] = ()
    batch_started: str = ""  # batchStartTime: when the current batch began rolling
    deadline_seconds: int = 0  # progressDeadlineSeconds in force for it (0: none)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    @property
    def complete(self) -> bool:
        """True when the recorded run finished (kept across a later verification failure)."""
        cond = self.condition(CONDITION_COMPLETE)
        return cond is not None and cond.status == "True"


@dataclass(frozen=True)
class Workload:
    """One live workload of the component (a Deployment or the CloneSet)."""

    name: str
    revision: str  # its app.oam.dev/revision label
    replicas: int  # spec.replicas
    current: int = 0  # status.replicas
    ready: int = 0  # status.readyReplicas
    updated: int = 0  # status.updatedReplicas
    updated_ready: int = 0  # status.updatedReadyReplicas (CloneSet)
    partition: int | None = None  # spec.updateStrategy.partition (CloneSet)
    settled: bool = True  # status.observedGeneration >= metadata.generation


@dataclass(frozen=True)
class Observed:
    """Everything decide() looks at, read fresh from the API by the caller."""

    plan: Plan
    progress: Progress
    workloads: tuple[Workload, ...] = ()
    # Whether the ControllerRevision named by the plan's target exists.
    target_known: bool = True
    now: str = ""  # RFC 3339 UTC, e.g. 2026-01-01T00:00:00Z
    # Seconds a batch may take to get Ready before the run fails (0: wait forever).
    deadline_seconds: int = 0

    def workload_of(self, revision: str) -> Workload | None:
        """The workload running ``revision``: by name (Deployment), by label (CloneSet)."""
        if self.plan.kind is WorkloadKind.CLONESET:
            w = self.cloneset()
            return w if w is not None and w.revision == revision else None
        return next((w for w in self.workloads if w.name == revision), None)

    def cloneset(self) -> Workload | None:
        return next((w for w in self.workloads if w.name == self.plan.component), None)

    def others(self, target: str) -> tuple[Workload, ...]:
        """Deployments of the component other than the target's."""
        if self.plan.kind is WorkloadKind.CLONESET:
            return ()
        return tuple(w for w in self.workloads if w.name != target)


# ---- actions -------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateWorkload:
    """Render the workload of ``revision`` from its ControllerRevision and create it."""

    revision: str
    replicas: int
    partition: int | None = None


@dataclass(frozen=True)
class RetemplateWorkload:
    """CloneSet only: put ``revision``'s pod template on the CloneSet, pods held by partition."""

    name: str
    revision: str
    replicas: int
    partition: int


@dataclass(frozen=True)
class ScaleWorkload:
    name: str
    replicas: int


@dataclass(frozen=True)
class SetPartition:
    name: str
    partition: int


@dataclass(frozen=True)
class DeleteWorkload:
    name: str


@dataclass(frozen=True)
class UpdateStatus:
    progress: Progress


@dataclass(frozen=True)
class EmitEvent:
    type: str  # "Normal" | "Warning"
    reason: str
    message: str


WorkloadAction = CreateWorkload | RetemplateWorkload | ScaleWorkload | SetPartition | DeleteWorkload
Action = WorkloadAction | UpdateStatus | EmitEvent


@dataclass(frozen=True)
class Decision:
    """At most one status write first, then workload actions, then events."""

    actions: tuple[Action, ...]
    progress: Progress
    steps: tuple[str, ...] = field(default=())  # names of the transitions taken
    # Decide again after this many seconds even if nothing changes (a deadline falls due).
    wake_after: float | None = None

    def of_type(self, cls: type) -> list[Action]:
        return [a for a in self.actions if isinstance(a, cls)]


# ---- derived facts (pure helpers the guards and effects share) -----------------------


@dataclass(frozen=True)
class Run:
    source: str
    target: str
    original: int
    size: int
    mode: Mode


def cumulative(batches: tuple[int, ...], index: int) -> int:
    return sum(batches[: index + 1])


def mode_of(kind: WorkloadKind, source: str, target: str) -> Mode:
    if not source or source == target:
        return Mode.SCALE
    return Mode.IN_PLACE if kind is WorkloadKind.CLONESET else Mode.UPGRADE


def plan_changed(obs: Observed, p: Progress) -> bool:
    """The spec asks for a different run than the one recorded in status."""
    plan = obs.plan
    return (
        not p.rolling_state
        or p.target_revision != plan.target_revision
        or p.target_size != plan.target_size
    )


def new_run(obs: Observed, p: Progress) -> Run:
    """The run the spec asks for, starting from what status says runs now."""
    plan = obs.plan
    if not p.rolling_state:
        source, original = "", 0
    elif p.complete:
        source, original = p.target_revision, p.target_size
    else:
        # Abandoning a run: start over from everything live. A new size for the same
        # target is still a rollout from the old source (batches add up to targetSize,
        # as the webhook expects when nothing is settled), never a pure scale.
        same_target = p.target_revision == plan.target_revision
        source = p.source_revision if same_target else p.target_revision
        original = sum(w.replicas for w in obs.workloads)
    if plan.kind is WorkloadKind.CLONESET and source != plan.target_revision \
            and obs.cloneset() is None:
        # The CloneSet is gone: nothing to update in place, create it afresh.
        source, original = "", 0
    return Run(source, plan.target_revision, original, plan.target_size,
               mode_of(plan.kind, source, plan.target_revision))


def current_run(obs: Observed, p: Progress) -> Run:
    return Run(p.source_revision, p.target_revision, p.original_size, p.target_size,
               mode_of(obs.plan.kind, p.source_revision, p.target_revision))


def prospective_run(obs: Observed, p: Progress) -> Run:
    return new_run(obs, p) if plan_changed(obs, p) else current_run(obs, p)


def expected_sum(run: Run) -> int:
    """Batches add up to the size for a rollout, to the size change for a pure scale."""
    if run.mode is Mode.SCALE and run.source:
        return abs(run.size - run.original)
    return run.size


def verification_error(obs: Observed, p: Progress) -> str | None:
    """Why the plan cannot be rolled, or None. Messages name the spec field."""
    plan = obs.plan
    if not obs.target_known:
        return f"spec.targetRevisionName: revision {plan.target_revision!r} does not exist"
    if plan.target_size < 0:
        return f"spec.rolloutPlan.targetSize: must be >= 0, got {plan.target_size}"
    if not plan.batches:
        return "spec.rolloutPlan.rolloutBatches: at least one batch is required"
    for i, replicas in enumerate(plan.batches):
        if replicas < 0:
            return f"spec.rolloutPlan.rolloutBatches[{i}].replicas: must be >= 0, got {replicas}"
    if plan.partition is not None and not 0 <= plan.partition < len(plan.batches):
        return (f"spec.rolloutPlan.batchPartition: must be between 0 and "
                f"{len(plan.batches) - 1}, got {plan.partition}")
    run = prospective_run(obs, p)
    want = expected_sum(run)
    got = sum(plan.batches)
    if got != want:
        what = (f"the size change {run.original} -> {run.size}"
                if run.mode is Mode.SCALE and run.source else f"targetSize {run.size}")
        return (f"spec.rolloutPlan.rolloutBatches: replicas add up to {got}, "
                f"but {what} needs {want}")
    return None


def target_goal(obs: Observed, p: Progress) -> int:
    """Replicas the target workload must run at the end of the current batch."""
    run = current_run(obs, p)
    done = cumulative(obs.plan.batches, p.current_batch)
    if run.mode is Mode.SCALE and run.source:
        step = done if run.size >= run.original else -done
        return run.original + step
    # Rollouts (and first deploys) only grow the target batch by batch; what an
    # abandoned run left running there counts as done already.
    live = obs.workload_of(run.target)
    if run.mode is Mode.IN_PLACE or live is None:
        return min(run.size, done)
    return min(run.size, max(done, live.replicas))


def partition_goal(obs: Observed, p: Progress) -> int:
    """CloneSet in-place: pods still held on the old template after the current batch."""
    return max(0, p.target_size - cumulative(obs.plan.batches, p.current_batch))


def target_reached(obs: Observed, p: Progress) -> bool:
    run = current_run(obs, p)
    live = obs.workload_of(run.target)
    if live is None or not live.settled:
        return False
    if run.mode is Mode.IN_PLACE:
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
    if run.mode is Mode.IN_PLACE:
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


# ---- the progress deadline -------------------------------------------------------------

# Batch states in which the run only waits for pods: the deadline runs there.
WAITING = frozenset({BATCH_IN_ROLLING, BATCH_VERIFYING})


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


def deadline_passed(obs: Observed, p: Progress) -> bool:
    """The batch has waited longer than the deadline. Times are whole seconds, so only a
    full second past it counts: a batch is never failed early."""
    elapsed = batch_elapsed(obs, p)
    return obs.deadline_seconds > 0 and elapsed is not None and elapsed > obs.deadline_seconds


def deadline_wake(obs: Observed, p: Progress) -> float | None:
    """Seconds until the deadline of the batch being waited on falls due, if it runs."""
    if obs.deadline_seconds <= 0 or not waiting_on_batch(p):
        return None
    elapsed = batch_elapsed(obs, p)
    if elapsed is None:
        return None
    return max(0.05, obs.deadline_seconds + 1 - elapsed)


def stall_message(obs: Observed, p: Progress) -> str:
    """What the batch is waiting for, with counts, for the condition and the event."""
    run = current_run(obs, p)
    plan = obs.plan
    batch = p.current_batch
    size = plan.batches[batch] if batch < len(plan.batches) else 0
    head = (f"batch {batch} ({size} replicas, {batch + 1} of {len(plan.batches)}) not Ready "
            f"within the progress deadline of {obs.deadline_seconds}s")
    live = obs.workload_of(run.target)
    if live is None:
        return f"{head}: the workload of {run.target} is missing"
    if run.mode is Mode.IN_PLACE:
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


# ---- the transition table ------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    progress: Progress
    actions: tuple[WorkloadAction, ...] = ()
    event: EmitEvent | None = None


Guard = Callable[[Observed, Progress], bool]
Effect = Callable[[Observed, Progress], Outcome]

ANY = frozenset({"", VERIFYING_SPEC, INITIALIZING, ROLLING_IN_BATCHES, FINALISING,
                 ROLLOUT_SUCCEED, ROLLOUT_FAILED, ABANDONING})
IN_FLIGHT = frozenset({VERIFYING_SPEC, INITIALIZING, ROLLING_IN_BATCHES, FINALISING})


@dataclass(frozen=True)
class Transition:
    name: str
    rolling: frozenset[str]
    batch: frozenset[str] | None  # None: any batch state
    guard: Guard
    effect: Effect


def _set_condition(p: Progress, cond: Condition, now: str) -> Progress:
    old = p.condition(cond.type)
    stamp = old.last_transition_time if old is not None and old.status == cond.status else now
    kept = tuple(c for c in p.conditions if c.type != cond.type)
    return replace(p, conditions=(*kept, replace(cond, last_transition_time=stamp)))


def _move(obs: Observed, p: Progress, rolling: str, batch: str | None = None,
          message: str = "", **changes: object) -> Progress:
    """Progress with new states; records the generation the move was decided on."""
    out = replace(p, rolling_state=rolling, observed_generation=obs.plan.generation,
                  **changes)  # type: ignore[arg-type]
    if batch is not None:
        out = replace(out, batch_state=batch)
    return out


def _event(reason: str, message: str, type_: str = "Normal") -> EmitEvent:
    return EmitEvent(type_, reason, message)


def _needs_verification(obs: Observed, p: Progress) -> bool:
    if p.rolling_state == ROLLOUT_FAILED and p.observed_generation >= obs.plan.generation:
        return False  # already failed on this very spec
    busy = p.rolling_state != ROLLOUT_SUCCEED or plan_changed(obs, p)
    return busy and verification_error(obs, p) is not None


def _fail_verification(obs: Observed, p: Progress) -> Outcome:
    why = verification_error(obs, p) or "invalid rollout plan"
    q = _move(obs, p, ROLLOUT_FAILED)
    q = _set_condition(q, Condition(CONDITION_VERIFIED, "False", "VerificationFailed", why),
                       obs.now)
    return Outcome(q, event=_event("VerificationFailed", why, "Warning"))


def _start(obs: Observed, p: Progress) -> Outcome:
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


def _verified(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, INITIALIZING)
    q = _set_condition(q, Condition(CONDITION_VERIFIED, "True", "Verified"), obs.now)
    return Outcome(q, event=_event("Initializing", "rollout plan verified"))


def _prepare_target(obs: Observed, p: Progress) -> Outcome:
    run = current_run(obs, p)
    if run.mode is Mode.IN_PLACE:
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


def _target_prepared(obs: Observed, p: Progress) -> bool:
    run = current_run(obs, p)
    live = obs.workload_of(run.target)
    if live is None:
        return False
    if run.mode is Mode.IN_PLACE:
        return live.partition is not None and live.partition >= run.size and live.settled
    return True


def _begin_batches(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, ROLLING_IN_BATCHES, BATCH_INITIALIZING, current_batch=0)
    return Outcome(q, event=_event("RollingInBatches", "rolling batch 0"))


def _batch_rolling(obs: Observed, p: Progress) -> Outcome:
    q = _clock_batch(obs, _move(obs, p, ROLLING_IN_BATCHES, BATCH_IN_ROLLING))
    return Outcome(q, event=_event("BatchInRolling", f"batch {p.current_batch} rolling"))


def _change_target(obs: Observed, p: Progress) -> Outcome:
    run = current_run(obs, p)
    live = obs.workload_of(run.target)
    q = replace(p, observed_generation=obs.plan.generation)
    if run.mode is Mode.IN_PLACE:
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


def _reroll_batch(obs: Observed, p: Progress) -> Outcome:
    batch = min(p.current_batch, len(obs.plan.batches) - 1)
    q = _clock_batch(obs, _move(obs, p, ROLLING_IN_BATCHES, BATCH_IN_ROLLING,
                                current_batch=batch))
    return Outcome(q, event=_event("BatchInRolling",
                                   f"batches changed: batch {batch} rolls again"))


def _target_ready(obs: Observed, p: Progress) -> bool:
    return not target_needs_change(obs, p) and target_reached(obs, p)


def _shrink_others(obs: Observed, p: Progress) -> Outcome:
    # The new pods are Ready: the wait for the old ones to go gets a deadline of its own.
    q = _clock_batch(obs, _move(obs, p, ROLLING_IN_BATCHES, BATCH_VERIFYING))
    cuts = tuple(others_scale_down(obs, p))
    text = ", ".join(f"{a.name} to {a.replicas}" for a in cuts if isinstance(a, ScaleWorkload))
    message = f"batch {p.current_batch} ready" + (f"; scaling {text}" if text else "")
    return Outcome(q, cuts, _event("BatchVerifying", message))


def _batch_verified(obs: Observed, p: Progress) -> bool:
    return target_reached(obs, p) and others_settled(obs, p)


def _finalize_batch(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, ROLLING_IN_BATCHES, BATCH_FINALIZING)
    return Outcome(q, event=_event("BatchFinalizing", f"batch {p.current_batch} verified"))


def _batch_ready(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, ROLLING_IN_BATCHES, BATCH_READY)
    return Outcome(q, event=_event("BatchReady", f"batch {p.current_batch} ready"))


def _next_batch(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, ROLLING_IN_BATCHES, BATCH_INITIALIZING, current_batch=p.current_batch + 1)
    return Outcome(q, event=_event("BatchInitializing", f"batch {p.current_batch + 1} starting"))


def _finalise(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, FINALISING)
    return Outcome(q, event=_event("Finalising", "all batches ready"))


def _succeed(obs: Observed, p: Progress) -> Outcome:
    doomed = tuple(DeleteWorkload(w.name) for w in obs.others(p.target_revision))
    q = _move(obs, p, ROLLOUT_SUCCEED)
    q = _set_condition(q, Condition(CONDITION_COMPLETE, "True", "Succeeded",
                                    f"{p.target_revision} runs {p.target_size} replicas"), obs.now)
    gone = ", ".join(a.name for a in doomed)
    message = f"{p.target_revision} at {p.target_size} replicas" + (
        f"; deleted {gone}" if gone else "")
    return Outcome(q, doomed, _event("RolloutSucceed", message))


def _clean_up(obs: Observed, p: Progress) -> Outcome:
    doomed = tuple(DeleteWorkload(w.name) for w in obs.others(p.target_revision))
    return Outcome(p, doomed, _event("WorkloadDeleted", ", ".join(a.name for a in doomed)))


def _abandon(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, p, ABANDONING)
    return Outcome(q, event=_event(
        "Abandoning", f"spec changed to {obs.plan.target_revision} at {obs.plan.target_size} "
        f"while rolling {p.target_revision}", "Warning"))


def _resume(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, _clear_stall(p), ROLLING_IN_BATCHES, BATCH_INITIALIZING)
    q = _set_condition(q, Condition(CONDITION_VERIFIED, "True", "Verified"), obs.now)
    return Outcome(q, event=_event("RollingInBatches", f"resuming at batch {p.current_batch}"))


def _restore_success(obs: Observed, p: Progress) -> Outcome:
    q = _move(obs, _clear_stall(p), ROLLOUT_SUCCEED, BATCH_READY)
    q = _set_condition(q, Condition(CONDITION_VERIFIED, "True", "Verified"), obs.now)
    return Outcome(q, event=_event("RolloutSucceed", "spec is valid again; nothing to roll"))


def _clock_batch(obs: Observed, p: Progress) -> Progress:
    """The batch starts rolling now, under the deadline in force."""
    return replace(p, batch_started=obs.now, deadline_seconds=obs.deadline_seconds)


def _clock_missing(obs: Observed, p: Progress) -> bool:
    # A status written before the clock existed, or a deadline changed by a restart
    # with another --progress-deadline: the batch's clock is (re)set from now on.
    return (not p.batch_started and bool(obs.now)) or p.deadline_seconds != obs.deadline_seconds


def _restart_clock(obs: Observed, p: Progress) -> Outcome:
    started = p.batch_started or obs.now
    return Outcome(replace(p, batch_started=started, deadline_seconds=obs.deadline_seconds))


def _deadline_exceeded(obs: Observed, p: Progress) -> Outcome:
    why = stall_message(obs, p)
    q = _move(obs, p, ROLLOUT_FAILED)
    q = _set_condition(q, Condition(CONDITION_PROGRESSING, "False", REASON_DEADLINE, why),
                       obs.now)
    return Outcome(q, event=_event(REASON_DEADLINE, why, "Warning"))


def _clear_stall(p: Progress) -> Progress:
    """A retry starts with a clean slate: the missed deadline belongs to the failed try."""
    return replace(p, conditions=tuple(c for c in p.conditions
                                       if c.type != CONDITION_PROGRESSING))


def _fixed(obs: Observed, p: Progress) -> bool:
    return p.observed_generation < obs.plan.generation


def _always(obs: Observed, p: Progress) -> bool:
    return True


def _fresh(obs: Observed, p: Progress) -> bool:
    return plan_changed(obs, p)


TRANSITIONS: tuple[Transition, ...] = (
    # A plan that cannot be rolled stops everything, from any state, touching no workload.
    Transition("verification-failed", ANY, None, _needs_verification, _fail_verification),
    # A fixed spec after a failure: start over, resume, or go back to the finished run.
    Transition("retry-new-run", frozenset({ROLLOUT_FAILED}), None,
               lambda o, p: _fixed(o, p) and plan_changed(o, p), _start),
    Transition("retry-resume", frozenset({ROLLOUT_FAILED}), None,
               lambda o, p: _fixed(o, p) and not p.complete, _resume),
    Transition("retry-restore", frozenset({ROLLOUT_FAILED}), None,
               lambda o, p: _fixed(o, p) and p.complete, _restore_success),
    # A new run: first deploy, or a new target / size after success.
    Transition("start", frozenset({"", ROLLOUT_SUCCEED}), None, _fresh, _start),
    # A new target / size in the middle of a run.
    Transition("abandon", IN_FLIGHT, None, _fresh, _abandon),
    Transition("restart", frozenset({ABANDONING}), None, _always, _start),
    Transition("verified", frozenset({VERIFYING_SPEC}), None, _always, _verified),
    Transition("prepare-target", frozenset({INITIALIZING}), None,
               lambda o, p: not _target_prepared(o, p), _prepare_target),
    Transition("begin-batches", frozenset({INITIALIZING}), None, _target_prepared,
               _begin_batches),
    Transition("batch-rolling", frozenset({ROLLING_IN_BATCHES}),
               frozenset({BATCH_INITIALIZING}), _always, _batch_rolling),
    # The batch's clock, when a status lacks it (or the deadline in force changed).
    Transition("batch-clock", frozenset({ROLLING_IN_BATCHES}), WAITING, _clock_missing,
               _restart_clock),
    Transition("change-target", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_IN_ROLLING}),
               target_needs_change, _change_target),
    Transition("shrink-others", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_IN_ROLLING}),
               _target_ready, _shrink_others),
    # New batches mid-run moved the current batch's goal: roll the batch again.
    Transition("batches-changed", frozenset({ROLLING_IN_BATCHES, FINALISING}),
               frozenset({BATCH_VERIFYING, BATCH_FINALIZING, BATCH_READY}),
               target_needs_change, _reroll_batch),
    Transition("recut-others", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_VERIFYING}),
               lambda o, p: bool(others_scale_down(o, p)), _shrink_others),
    Transition("batch-verified", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_VERIFYING}),
               _batch_verified, _finalize_batch),
    # Nothing left to do but wait for pods, and the batch has waited too long: fail the
    # run, touching no workload (no automatic rollback; a new generation retries).
    Transition("progress-deadline", frozenset({ROLLING_IN_BATCHES}), WAITING, deadline_passed,
               _deadline_exceeded),
    Transition("batch-ready", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_FINALIZING}),
               _always, _batch_ready),
    Transition("next-batch", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_READY}),
               may_advance, _next_batch),
    Transition("last-batch-done", frozenset({ROLLING_IN_BATCHES}), frozenset({BATCH_READY}),
               is_last_batch, _finalise),
    Transition("succeed", frozenset({FINALISING}), None, _always, _succeed),
    # Deletions lost to a crash after the success was recorded.
    Transition("clean-up", frozenset({ROLLOUT_SUCCEED}), None,
               lambda o, p: bool(o.others(p.target_revision)), _clean_up),
)


def _matching(obs: Observed, p: Progress) -> Transition | None:
    for t in TRANSITIONS:
        if p.rolling_state not in t.rolling:
            continue
        if t.batch is not None and p.batch_state not in t.batch:
            continue
        if t.guard(obs, p):
            return t
    return None


def with_counts(obs: Observed, p: Progress) -> Progress:
    """Status counters from the target workload as it is now."""
    if not p.target_revision:
        return p
    live = obs.workload_of(p.target_revision)
    if live is None:
        return replace(p, upgraded=0, upgraded_ready=0)
    if current_run(obs, p).mode is Mode.IN_PLACE and p.rolling_state != ROLLOUT_SUCCEED:
        return replace(p, upgraded=live.updated, upgraded_ready=live.updated_ready)
    return replace(p, upgraded=live.current, upgraded_ready=live.ready)


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
        if t.name in ("verification-failed", "progress-deadline"):
            break
    p = with_counts(obs, p)
    # Status first: it records the intent (the batch being rolled) before any workload
    # moves, and its resourceVersion precondition stops a decision made on a stale read.
    # A crash between the two is healed by the next decision: every row is level-based.
    actions: list[Action] = [UpdateStatus(p)] if p != obs.progress else []
    actions.extend(workload_actions)
    actions.extend(events)
    return Decision(tuple(actions), p, tuple(steps), deadline_wake(obs, p))
