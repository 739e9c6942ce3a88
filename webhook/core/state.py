"""Observed cluster state as plain, frozen values.

Holds what the webhook and the controller read from the cluster, reduced to the
facts decisions need (existing revisions, the live size and progress of each
component). Built by the I/O layer (webhook.kube.reader), consumed by pure functions
(validation, revisions, admission, controller.batches). It must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# A Rollout's rollingState once its run has finished (webhook.core.labels.ROLLOUT_SUCCEED;
# this module imports nothing).
_SUCCEED = "rolloutSucceed"


@dataclass(frozen=True)
class OwnerRef:
    """An object's controller ownerReference: who manages it."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


@dataclass(frozen=True)
class RunRecord:
    """What a Rollout's status records of its latest run; the next run starts from it.

    The controller builds it from its Progress, admission from the Rollout it reads, so
    both decide where a change's run starts with the same function (webhook.core.rules).
    """

    rolling_state: str = ""  # "" before any run
    target: str = ""  # lastTargetRevision
    source: str = ""  # lastSourceRevision ("" for a first deploy)
    size: int = 0  # rolloutTargetSize
    original: int = 0  # rolloutOriginalSize
    complete: bool = False  # the run finished (RolloutComplete=True, or rolloutSucceed)


@dataclass(frozen=True)
class RevisionRecord:
    """An existing ControllerRevision of one component."""

    name: str
    component: str
    number: int
    spec_hash: str
    # The component spec the revision holds (ControllerRevision.data).
    data: Mapping[str, Any] = field(default_factory=dict)
    # The Application that owns it (empty if unknown).
    owner: str = ""
    # The kind of that controller ("" if unknown).
    owner_kind: str = ""


@dataclass(frozen=True)
class ComponentObservation:
    """What is live for one component of one Application."""

    # The revision the workload currently runs (Rollout status.lastTargetRevision), if any.
    current_revision: str | None = None
    # Replicas the component runs now (the last settled rollout target size), if known.
    current_size: int | None = None
    # The Rollout's status.currentBatch and states, if a Rollout exists.
    current_batch: int | None = None
    rolling_state: str | None = None
    batch_rolling_state: str | None = None
    # The target revision the Rollout currently aims at (spec.targetRevisionName).
    rollout_target: str | None = None
    # The rest of the latest run as status records it, settled or not: where it started
    # (lastSourceRevision, rolloutOriginalSize), its size (rolloutTargetSize) and whether
    # it finished (RolloutComplete=True).
    source_revision: str | None = None
    run_size: int | None = None
    original_size: int | None = None
    complete: bool = False

    def last_run(self) -> RunRecord:
        """The latest run. An observation built with a settled size and no state (the
        size is only ever read from a settled Rollout) reads as a finished run."""
        rolling = self.rolling_state or (_SUCCEED if self.current_size is not None else "")
        size = self.run_size if self.run_size is not None else self.current_size
        return RunRecord(
            rolling_state=rolling,
            target=self.current_revision or "",
            source=self.source_revision or "",
            size=size or 0,
            original=self.original_size or 0,
            complete=self.complete or rolling == _SUCCEED,
        )


_NOTHING_OBSERVED = ComponentObservation()


@dataclass(frozen=True)
class ObservedState:
    """Everything live that matters for one Application in one namespace."""

    namespace: str = "default"
    # All ControllerRevisions in the namespace that carry our component label.
    revisions: tuple[RevisionRecord, ...] = ()
    components: Mapping[str, ComponentObservation] = field(default_factory=dict)
    # The controller of each Rollout of the namespace that has one, by Rollout name,
    # whichever Application it belongs to: a component name another owner holds is taken.
    # Only looked up by name (the watch-fed cache answers from its index).
    rollout_owners: Mapping[str, OwnerRef] = field(default_factory=dict)

    def revisions_of(self, component: str) -> tuple[RevisionRecord, ...]:
        return self._by_component.get(component, ())

    def revision_named(self, name: str) -> RevisionRecord | None:
        return self._by_name.get(name)

    # Indexes built on first use: a review asks for several components' revisions, and a
    # namespace may hold many. cached_property is not a field (equality ignores it).
    @cached_property
    def _by_component(self) -> dict[str, tuple[RevisionRecord, ...]]:
        out: dict[str, list[RevisionRecord]] = {}
        for r in self.revisions:
            out.setdefault(r.component, []).append(r)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def _by_name(self) -> dict[str, RevisionRecord]:
        out: dict[str, RevisionRecord] = {}
        for r in self.revisions:
            out.setdefault(r.name, r)  # the first one, as a scan would find it
        return out

    def component(self, name: str) -> ComponentObservation:
        # The shared empty observation (frozen): not one built per call, found or not.
        return self.components.get(name, _NOTHING_OBSERVED)


EMPTY = ObservedState()
