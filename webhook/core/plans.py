"""The rollout trait's plan: its properties parsed and range-checked, percentages kept.

Holds RolloutBatch and RolloutPlan (the trait's targetSize, batches as stated, counts or
percentages, batchPartition, targetRevision and paused) and ``parse_rollout_plan``, which
builds a plan from raw properties and collects every FieldError at its path: a plan of the
usual shape in one pass (``well_formed_plan``), anything else field by field
(``parse_rollout_plan_fully``), with the same result. The ranges
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
from webhook.core.checkers import INT32_MAX
from webhook.core.errors import FieldError
from webhook.core.paths import FieldPath
from webhook.core.shapes import is_int, is_mapping, unknown_field, wrong_type

# The rollout trait's properties, as the spec's parameter table lists them, and paused
# (the Rollout API's rolloutPlan.paused: hold before the next batch).
ROLLOUT_PROPERTIES = ("targetRevision", "targetSize", "rolloutBatches", "batchPartition", "paused")
ROLLOUT_BATCH_PROPERTIES = ("replicas",)
_ROLLOUT_KEYS = frozenset(ROLLOUT_PROPERTIES)


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
    plan = well_formed_plan(properties)
    if plan is not None:
        return plan, []
    return parse_rollout_plan_fully(properties, path)


def well_formed_plan(properties: object) -> RolloutPlan | None:
    """The plan of rollout trait properties in the shape nearly every one has, or None.

    That shape: a dict of known keys, plain JSON types, batches of integer replicas, every
    value within the rules' ranges (webhook.core.rules: targetSize and replicas int32,
    targetSize >= 0, replicas >= MIN_TRAIT_BATCH, batchPartition the index of a batch).
    Read in one pass without a field path or an error list, as the webhook reads a plan
    on every review. Anything else (percentages, a wrong type, a value out of range) is
    None, and parse_rollout_plan_fully reads it: where this gives a plan, that one gives
    the same plan and no error (tests/unit/test_fast_paths.py checks it).
    """
    if type(properties) is not dict or not _ROLLOUT_KEYS.issuperset(properties):
        return None
    target_size = properties.get("targetSize")
    raw_batches = properties.get("rolloutBatches")
    if (
        type(target_size) is not int
        or not 0 <= target_size <= INT32_MAX
        or type(raw_batches) is not list
        or not raw_batches
    ):
        return None
    target_revision = properties.get("targetRevision")
    if target_revision is not None and (type(target_revision) is not str or not target_revision):
        return None
    paused = properties.get("paused")
    if paused is not None and type(paused) is not bool:
        return None
    batches: list[RolloutBatch] = []
    for raw in raw_batches:
        if type(raw) is not dict or len(raw) != 1:
            return None
        replicas = raw.get("replicas")
        if type(replicas) is not int or not rules.MIN_TRAIT_BATCH <= replicas <= INT32_MAX:
            return None
        batches.append(RolloutBatch(replicas=replicas))
    partition = properties.get("batchPartition")
    if partition is not None and (type(partition) is not int or not 0 <= partition < len(batches)):
        return None
    return RolloutPlan(
        target_size=target_size,
        rollout_batches=tuple(batches),
        batch_partition=partition,
        target_revision=target_revision,
        paused=paused is True,
    )


def parse_rollout_plan_fully(
    properties: Mapping[str, Any], path: FieldPath
) -> tuple[RolloutPlan | None, list[FieldError]]:
    """parse_rollout_plan without the one-pass read of a well-formed plan: every check in
    turn, every error at its path."""
    errs: list[FieldError] = []
    if not is_mapping(properties):
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
    # Paths are built only for an error: a plan is parsed on every review.
    if raw_batches is None:
        errs.append(fe.required(path.child("rolloutBatches")))
    elif not isinstance(raw_batches, list | tuple):
        errs.append(wrong_type(path.child("rolloutBatches"), raw_batches, "an array"))
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
    if partition is not None:
        if not is_int(partition):
            errs.append(wrong_type(path.child("batchPartition"), partition, "an integer"))
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
    # The batch's path is built only for an error (see _batch_path).
    if not is_mapping(raw):
        errs.append(wrong_type(_batch_path(plan, index), raw, "an object"))
        return None
    for key in raw:
        if key not in ROLLOUT_BATCH_PROPERTIES:
            errs.append(
                unknown_field(_batch_path(plan, index).child(str(key)), key,
                              ROLLOUT_BATCH_PROPERTIES)
            )
    replicas = raw.get("replicas")
    if replicas is None:
        errs.append(fe.required(_batch_path(plan, index).child("replicas")))
        return None
    if isinstance(replicas, str):
        percent_errs = rules.batch_percent_errors(replicas, index, plan)
        errs.extend(percent_errs)
        return None if percent_errs else RolloutBatch(replicas=replicas)
    if not is_int(replicas):
        errs.append(wrong_type(_batch_path(plan, index).child("replicas"), replicas,
                               'an integer or a percentage such as "20%"'))
        return None
    range_errs = rules.batch_replicas_errors(replicas, index, plan)
    errs.extend(range_errs)
    return None if range_errs else RolloutBatch(replicas=replicas)


def _batch_path(plan: FieldPath, index: int) -> FieldPath:
    return plan.child("rolloutBatches").index(index)
