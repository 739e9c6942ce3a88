"""The rollout rules: every range and every sum over a rollout plan, in one place.

Holds one function per rule, over plain numbers (a plan's targetSize, its batches'
replicas, its batchPartition), so the webhook (an Application's rollout trait), the
`validate` CLI (the same functions as the webhook) and the controller (a Rollout's
spec.rolloutPlan) apply the same rule and get the same FieldErrors. The caller passes the
path of the plan (``spec.components[i].traits[j].properties`` or ``spec.rolloutPlan``);
a rule names the field under it. Also the replica arithmetic both sides plan with: how far
the batches have moved a component. It must not read objects, must not know where a plan
came from and must not do I/O: whether a change is a pure scale is the caller's knowledge,
passed in as ``scale_from``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from webhook.core import errors as fe
from webhook.core.errors import FieldError
from webhook.core.paths import FieldPath

# A batch of an Application's rollout trait moves at least one replica. A Rollout's batch
# may move none: the controller plans a run whose size does not change (abandoning a scale
# at the size already live) as batches that add up to 0.
MIN_TRAIT_BATCH = 1
MIN_ROLLOUT_BATCH = 0


# ---------------------------------------------------------------------------
# ranges


def target_size_errors(target_size: int, plan: FieldPath) -> list[FieldError]:
    """targetSize is never negative."""
    if target_size >= 0:
        return []
    return [fe.invalid(plan.child("targetSize"), target_size, "must be greater than or equal to 0")]


def batch_count_errors(count: int, plan: FieldPath) -> list[FieldError]:
    """A plan has at least one batch."""
    if count > 0:
        return []
    return [fe.required(plan.child("rolloutBatches"), "must have at least one batch")]


def batch_replicas_errors(
    replicas: int, index: int, plan: FieldPath, minimum: int = MIN_TRAIT_BATCH
) -> list[FieldError]:
    """One batch moves at least ``minimum`` replicas."""
    if replicas >= minimum:
        return []
    detail = (
        f"must be greater than {minimum - 1}"
        if minimum > 0
        else f"must be greater than or equal to {minimum}"
    )
    path = plan.child("rolloutBatches").index(index).child("replicas")
    return [fe.invalid(path, replicas, detail)]


def partition_errors(partition: int, batch_count: int | None, plan: FieldPath) -> list[FieldError]:
    """batchPartition is the index of a batch. ``batch_count`` None: the batches are not
    known to be valid, so only the lower bound is checked."""
    path = plan.child("batchPartition")
    if partition < 0:
        return [fe.invalid(path, partition, "must be greater than or equal to 0")]
    if batch_count is not None and partition > batch_count - 1:
        return [
            fe.invalid(
                path,
                partition,
                f"must be less than or equal to {batch_count - 1}"
                f" (the index of the last of {batch_count} rolloutBatches)",
            )
        ]
    return []


def plan_range_errors(
    target_size: int,
    batches: Sequence[int],
    partition: int | None,
    plan: FieldPath,
    minimum_batch: int = MIN_TRAIT_BATCH,
) -> list[FieldError]:
    """Every range rule over a plan whose fields have the right types, in the order an
    Application's trait is parsed: targetSize, the batches, batchPartition."""
    errs = target_size_errors(target_size, plan)
    batch_errs = batch_count_errors(len(batches), plan)
    for i, replicas in enumerate(batches):
        batch_errs += batch_replicas_errors(replicas, i, plan, minimum_batch)
    errs += batch_errs
    if partition is not None:
        errs += partition_errors(partition, None if batch_errs else len(batches), plan)
    return errs


def unknown_revision_error(
    field: FieldPath, target: str, component: str, known: Iterable[str]
) -> FieldError:
    """A target revision the component does not have; ``field`` is where the name is set
    (an Application's targetRevision, a Rollout's spec.targetRevisionName)."""
    names = ", ".join(sorted(set(known)))
    return fe.not_found(field, target, f"component {component!r} has revisions: {names}")


# ---------------------------------------------------------------------------
# sums


def cumulative(batches: Sequence[int], index: int) -> int:
    """Replicas moved once batches 0..index have run."""
    return sum(batches[: index + 1])


def scale_origin(
    target_revision: str | None,
    target_size: int,
    current_revision: str | None,
    current_size: int | None,
) -> int | None:
    """The size a pure scale starts from, None when the change is not one.

    A pure scale keeps the revision the component settled on and changes its size; any
    other change (first deploy, upgrade, rollback) rolls targetSize replicas.
    """
    if (
        target_revision is not None
        and current_revision == target_revision
        and current_size is not None
        and current_size != target_size
    ):
        return current_size
    return None


def expected_batch_sum(target_size: int, scale_from: int | None) -> int:
    """What the batches add up to: the size change for a pure scale, else targetSize."""
    return target_size if scale_from is None else abs(target_size - scale_from)


def batch_sum_errors(
    batches: Sequence[int], target_size: int, scale_from: int | None, plan: FieldPath
) -> list[FieldError]:
    """The batches add up to expected_batch_sum."""
    total = sum(batches)
    expected = expected_batch_sum(target_size, scale_from)
    if total == expected:
        return []
    if scale_from is not None and expected != target_size:
        detail = (
            f"batch replicas add up to {total}; scaling from {scale_from}"
            f" to {target_size} needs them to add up to {expected}"
        )
    else:
        detail = f"batch replicas add up to {total}; they must add up to targetSize {target_size}"
    return [fe.invalid(plan.child("rolloutBatches"), list(batches), detail)]


def replicas_after(
    batches: Sequence[int], index: int, target_size: int, scale_from: int | None
) -> int:
    """Replicas of the target revision once batches 0..index have run.

    A pure scale moves from ``scale_from`` towards targetSize; any other run grows the
    target from nothing. Neither goes past targetSize.
    """
    moved = cumulative(batches, index)
    if scale_from is None:
        return min(moved, target_size)
    step = min(moved, abs(target_size - scale_from))
    return scale_from + step if target_size > scale_from else scale_from - step


def planned_replicas(
    batches: Sequence[int], partition: int | None, target_size: int, scale_from: int | None
) -> int:
    """Replicas of the target revision once the plan has run up to its batchPartition."""
    if partition is None:
        return target_size
    return replicas_after(batches, partition, target_size, scale_from)
