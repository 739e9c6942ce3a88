"""The rollout trait's plan: its properties parsed and range-checked, percentages kept.

Holds RolloutBatch and RolloutPlan (the trait's targetSize, batches as stated, counts or
percentages, batchPartition, targetRevision and paused) and ``parse_rollout_plan``, which
builds a plan from raw properties and collects every FieldError at its path. The ranges
and the percentage rules are webhook.core.rules'. webhook.core.model parses components
with it (and re-exports the names); webhook.core.validation reports its errors. It must
not decide anything that needs live state (the batch sum: validation) and must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core import errors as fe
from webhook.core import rules
from webhook.core.errors import FieldError
from webhook.core.paths import FieldPath
from webhook.core.shapes import is_int, unknown_field, wrong_type

# The rollout trait's properties, as the spec's parameter table lists them, and paused
# (the Rollout API's rolloutPlan.paused: hold before the next batch).
ROLLOUT_PROPERTIES = ("targetRevision", "targetSize", "rolloutBatches", "batchPartition", "paused")
ROLLOUT_BATCH_PROPERTIES = ("replicas",)


@dataclass(frozen=True)
class RolloutBatch:
    """One batch of a rollout plan: how many replicas it moves, as a count or as a
    percentage string ("20%", resolved by webhook.core.rules.resolve_batches)."""

    replicas: rules.BatchSize


@dataclass(frozen=True)
class RolloutPlan:
    """The rollout trait's properties, parsed and range-checked."""

    target_size: int
    rollout_batches: tuple[RolloutBatch, ...]
    batch_partition: int | None = None
    target_revision: str | None = None
    paused: bool = False

    def stated(self) -> tuple[rules.BatchSize, ...]:
        """Each batch's replicas as the trait states them (counts or percentages)."""
        return tuple(b.replicas for b in self.rollout_batches)

    def replicas(self, base: int | None = None) -> tuple[int, ...]:
        """Each batch's replicas, in order, percentages resolved against ``base`` (by
        default targetSize; a pure scale's is the size change: rules.percent_base)."""
        return rules.resolve_batches(self.stated(), self.target_size if base is None else base)

    def batch_sum(self) -> int:
        return sum(self.replicas())



def parse_rollout_plan(
    properties: Mapping[str, Any], path: FieldPath
) -> tuple[RolloutPlan | None, list[FieldError]]:
    """Parse and range-check the rollout trait's properties found at ``path``.

    Checks everything that needs no live state: required fields, exact types and
    unknown keys here, then the ranges of webhook.core.rules (targetSize >= 0, every
    batch >= 1, batchPartition in range). The batch-sum rule needs live state: it is
    applied by webhook.core.validation.
    """
    errs: list[FieldError] = []
    if not isinstance(properties, Mapping):
        return None, [wrong_type(path, properties, "an object")]
    for key in properties:
        if key not in ROLLOUT_PROPERTIES:
            errs.append(unknown_field(path.child(str(key)), key, ROLLOUT_PROPERTIES))

    target_revision = properties.get("targetRevision")
    if target_revision is not None and (
        not isinstance(target_revision, str) or not target_revision
    ):
        errs.append(wrong_type(path.child("targetRevision"), target_revision, "a non-empty string"))
        target_revision = None

    target_size = properties.get("targetSize")
    size_ok = False
    if target_size is None:
        errs.append(fe.required(path.child("targetSize")))
    elif not is_int(target_size):
        errs.append(wrong_type(path.child("targetSize"), target_size, "an integer"))
    else:
        size_errs = rules.target_size_errors(target_size, path)
        errs.extend(size_errs)
        size_ok = not size_errs

    batches: list[RolloutBatch] = []
    batches_ok = False
    raw_batches = properties.get("rolloutBatches")
    bpath = path.child("rolloutBatches")
    if raw_batches is None:
        errs.append(fe.required(bpath))
    elif not isinstance(raw_batches, list | tuple):
        errs.append(wrong_type(bpath, raw_batches, "an array"))
    elif not raw_batches:
        errs.extend(rules.batch_count_errors(0, path))
    else:
        before = len(errs)
        for i, raw_batch in enumerate(raw_batches):
            batch = _parse_batch(raw_batch, path, i, errs)
            if batch is not None:
                batches.append(batch)
        batches_ok = len(errs) == before

    partition = properties.get("batchPartition")
    ppath = path.child("batchPartition")
    if partition is not None:
        if not is_int(partition):
            errs.append(wrong_type(ppath, partition, "an integer"))
        else:
            count = len(batches) if batches_ok else None
            errs.extend(rules.partition_errors(partition, count, path))

    paused = properties.get("paused")
    if paused is not None and not isinstance(paused, bool):
        errs.append(wrong_type(path.child("paused"), paused, "a boolean"))
    if batches_ok:
        errs.extend(rules.percent_total_errors([b.replicas for b in batches], path))

    if errs or not size_ok or not batches_ok:
        return None, errs
    assert is_int(target_size)
    return (
        RolloutPlan(
            target_size=int(target_size),
            rollout_batches=tuple(batches),
            batch_partition=partition if is_int(partition) else None,
            target_revision=target_revision,
            paused=paused is True,
        ),
        [],
    )


def _parse_batch(
    raw: object, plan: FieldPath, index: int, errs: list[FieldError]
) -> RolloutBatch | None:
    path = plan.child("rolloutBatches").index(index)
    if not isinstance(raw, Mapping):
        errs.append(wrong_type(path, raw, "an object"))
        return None
    for key in raw:
        if key not in ROLLOUT_BATCH_PROPERTIES:
            errs.append(unknown_field(path.child(str(key)), key, ROLLOUT_BATCH_PROPERTIES))
    replicas = raw.get("replicas")
    rpath = path.child("replicas")
    if replicas is None:
        errs.append(fe.required(rpath))
        return None
    if isinstance(replicas, str):
        percent_errs = rules.batch_percent_errors(replicas, index, plan)
        errs.extend(percent_errs)
        return None if percent_errs else RolloutBatch(replicas=replicas)
    if not is_int(replicas):
        errs.append(wrong_type(rpath, replicas, 'an integer or a percentage such as "20%"'))
        return None
    range_errs = rules.batch_replicas_errors(replicas, index, plan)
    errs.extend(range_errs)
    return None if range_errs else RolloutBatch(replicas=replicas)
