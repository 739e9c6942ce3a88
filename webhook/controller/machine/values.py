"""The state machine's plain values: what a decision looks at and what it asks for.

Holds the Rollout's plan and progress, the live workloads of its component, the run a
progress describes, the actions a decision asks for (create, scale, re-template, delete a
workload; write status; emit an event) and the Decision itself. Frozen dataclasses with
lookups only. It must not hold rules (those are facts and the table) and must not do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

# Condition types the controller keeps in Rollout status.conditions.
CONDITION_VERIFIED = "SpecVerified"
CONDITION_COMPLETE = "RolloutComplete"
# Present only once a batch missed its progress deadline (status False), as in Argo Rollouts.
CONDITION_PROGRESSING = "Progressing"
REASON_DEADLINE = "ProgressDeadlineExceeded"
# True while a paused plan holds the run before its next batch; False (reason Resumed)
# once the plan lets it go on.
CONDITION_PAUSED = "Paused"
# Progressing=False also when a workload write cannot be made: the API refused it for good
# (a 400/403/404/409/422 no retry fixes), or the object belongs to another owner.
REASON_API_REFUSED = "ApiRefused"
REASON_OWNERSHIP = "OwnershipConflict"


class WorkloadKind(Enum):
    """How a component's workload is rolled."""

    DEPLOYMENT = "Deployment"  # one Deployment per revision, named after it
    CLONESET = "CloneSet"  # one CloneSet per component, updated in place


class RunMode(Enum):
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
    # rolloutPlan.paused: hold the run before its next batch.
    paused: bool = False


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
    # The names of the component's revisions, read when the target is unknown: the
    # verification failure lists them, as admission does.
    known_revisions: tuple[str, ...] = ()

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


@dataclass(frozen=True)
class Run:
    """One run: from ``source`` at ``original`` replicas to ``target`` at ``size``."""

    source: str
    target: str
    original: int
    size: int
    mode: RunMode


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
