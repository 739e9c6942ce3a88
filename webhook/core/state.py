"""Observed cluster state as plain, frozen values.

Holds what the webhook and the controller read from the cluster, reduced to the
facts decisions need (existing revisions, the live size and progress of each
component). Built by the I/O layer (webhook.kube.reader), consumed by pure functions
(validation, revisions, admission, controller.batches). It must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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


@dataclass(frozen=True)
class ObservedState:
    """Everything live that matters for one Application in one namespace."""

    namespace: str = "default"
    # All ControllerRevisions in the namespace that carry our component label.
    revisions: tuple[RevisionRecord, ...] = ()
    components: Mapping[str, ComponentObservation] = field(default_factory=dict)

    def revisions_of(self, component: str) -> tuple[RevisionRecord, ...]:
        return tuple(r for r in self.revisions if r.component == component)

    def revision_named(self, name: str) -> RevisionRecord | None:
        return next((r for r in self.revisions if r.name == name), None)

    def component(self, name: str) -> ComponentObservation:
        return self.components.get(name, ComponentObservation())


EMPTY = ObservedState()
