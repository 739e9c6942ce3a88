"""The rollout rules: every range and every sum over a rollout plan, in one place.

Holds one function per rule, over plain numbers (a plan's targetSize, its batches'
replicas, its batchPartition), so the webhook (an Application's rollout trait), the
`validate` CLI (the same functions as the webhook) and the controller (a Rollout's
spec.rolloutPlan) apply the same rule and get the same FieldErrors. The caller passes the
path of the plan (``spec.components[i].traits[j].properties`` or ``spec.rolloutPlan``);
a rule names the field under it. Also where the run a change asks for starts
(``planned_origin``, from the RunRecord of the Rollout's latest run: both sides call it,
so "admitted" means "the controller can roll it"), the rules over a run from its origin
(``run_errors``), and the replica arithmetic both sides plan with: how far the batches
have moved a component. It must not read objects, must not know where a plan came from
and must not do I/O: what runs live is the caller's knowledge, passed in.

Percentages. A batch's ``replicas`` may be a percentage ("20%", as the Rollout API's
IntOrString allows). It counts against the plan's base (``percent_base``): targetSize, or
for a pure scale the size change. Rounding is cumulative and up: once batch i has run,
the batches have moved the integer batches so far plus ceil(base x (percentages so far)
/ 100) replicas, and batch i is what that adds to the batches before it. So percentages
that total 100% always end exactly at the base: ["20%", "30%", "50%"] of 10 is 2, 3, 5,
of 7 is 2, 2, 3, and a small base may leave a percentage batch at 0 replicas.
``resolve_batches`` is the one implementation: admission checks, ``render`` prints and the
controller writes into the Rollout spec (which ``status`` and kubectl show) its numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from webhook.core import errors as fe
from webhook.core.checkers import INT32_MAX
from webhook.core.errors import FieldError
from webhook.core.labels import ROLLOUT_SUCCEED
from webhook.core.paths import FieldPath
from webhook.core.state import RunRecord

# A batch of an Application's rollout trait moves at least one replica. A Rollout's batch
# may move none: the controller plans a run whose size does not change (abandoning a scale
# at the size already live) as batches that add up to 0.
MIN_TRAIT_BATCH = 1
MIN_ROLLOUT_BATCH = 0
_PERCENT = re.compile(r"^([0-9]{1,3})%$")

# A batch as the trait states it: a replica count or a percentage string.
BatchSize = int | str


# ---------------------------------------------------------------------------
# ranges


def _int32_errors(value: int, path: FieldPath) -> list[FieldError]:
    # Every count of a plan ends up in an int32 field (a Rollout's, a workload's replicas).
    if value <= INT32_MAX:
        return []
    return [fe.invalid(path, value, f"must be less than or equal to {INT32_MAX}")]


def target_size_errors(target_size: int, plan: FieldPath) -> list[FieldError]:
    """targetSize is never negative and fits an int32."""
    # Paths are built only for an error: every admitted plan passes through here.
    if 0 <= target_size <= INT32_MAX:
        return []
    path = plan.child("targetSize")
    if target_size >= 0:
        return _int32_errors(target_size, path)
    return [fe.invalid(path, target_size, "must be greater than or equal to 0")]


def batch_count_errors(count: int, plan: FieldPath) -> list[FieldError]:
    """A plan has at least one batch."""
    if count > 0:
        return []
    return [fe.required(plan.child("rolloutBatches"), "must have at least one batch")]


def batch_replicas_errors(
    replicas: int, index: int, plan: FieldPath, minimum: int = MIN_TRAIT_BATCH
) -> list[FieldError]:
    """One batch moves at least ``minimum`` replicas, and no more than an int32 holds."""
    if minimum <= replicas <= INT32_MAX:
        return []
    path = plan.child("rolloutBatches").index(index).child("replicas")
    if replicas >= minimum:
        return _int32_errors(replicas, path)
    detail = (
        f"must be greater than {minimum - 1}"
        if minimum > 0
        else f"must be greater than or equal to {minimum}"
    )
    return [fe.invalid(path, replicas, detail)]


def batch_percent(value: object) -> int | None:
    """N of a ``"N%"`` batch (any N), None when ``value`` is not a percentage string."""
    if not isinstance(value, str):
        return None
    match = _PERCENT.fullmatch(value)
    return int(match.group(1)) if match else None


def batch_percent_errors(value: str, index: int, plan: FieldPath) -> list[FieldError]:
    """A percentage batch is between 1% and 100%."""
    percent = batch_percent(value)
    if percent is not None and 1 <= percent <= 100:
        return []
    path = plan.child("rolloutBatches").index(index).child("replicas")
    return [fe.invalid(path, value, 'must be an integer or a percentage from "1%" to "100%"')]


def percent_total_errors(batches: Sequence[BatchSize], plan: FieldPath) -> list[FieldError]:
    """Batches that are all percentages total 100% (mixed plans meet the batch sum)."""
    percents = [batch_percent(b) for b in batches]
    if not batches or any(p is None for p in percents):
        return []
    total = sum(p for p in percents if p is not None)
    if total == 100:
        return []
    return [
        fe.invalid(
            plan.child("rolloutBatches"),
            list(batches),
            f"percentages add up to {total}%; they must add up to 100%",
        )
    ]


def resolve_batches(batches: Sequence[BatchSize], base: int) -> tuple[int, ...]:
    """Each batch as a replica count: integers as they are, percentages of ``base``
    rounded cumulatively and up (see the module docstring)."""
    out: list[int] = []
    counted = percent = before = 0
    for batch in batches:
        share = batch_percent(batch)
        if share is None:
            counted += int(batch)
        else:
            percent += share
        # Ceiling division in integers: no float rounding at any size.
        total = counted + -(-max(0, base) * percent // 100)
        out.append(total - before)
        before = total
    return tuple(out)


def percent_base(target_revision: str | None, target_size: int, last: RunRecord) -> int:
    """What a plan's percentages count against: the number its batches add up to for the
    run it asks for (planned_origin: the size change of a pure scale, else targetSize).
    A run in flight, and once finished, keeps the base it started with, so the resolved
    numbers never move under it. ``target_revision`` None: a first deploy."""
    if target_revision is None:
        return max(0, target_size)
    origin = planned_origin(target_revision, target_size, last)
    scale = origin.source == target_revision and origin.original is not None
    return expected_batch_sum(target_size, origin.original if scale else None)


def partition_errors(partition: int, batch_count: int | None, plan: FieldPath) -> list[FieldError]:
    """batchPartition is the index of a batch. ``batch_count`` None: the batches are not
    known to be valid, so only the lower bound is checked."""
    if 0 <= partition <= INT32_MAX and (batch_count is None or partition <= batch_count - 1):
        return []
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
    return _int32_errors(partition, path)


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


@dataclass(frozen=True)
class Origin:
    """Where a run starts: from revision ``source`` ("" for nothing) at ``original`` replicas.

    ``original`` None: at whatever the workloads run when the run starts, which only the
    controller counts (it abandons an unfinished run and starts over from what is live).
    ``unfinished`` is that abandoned run, if any: error details name it.
    """

    source: str
    original: int | None
    unfinished: RunRecord | None = None


def next_run_origin(target_revision: str, last: RunRecord) -> Origin:
    """Where a new run to ``target_revision`` starts, after the Rollout's ``last`` run.

    No run yet: a first deploy, from nothing. A finished run: from its target at its
    size. An unfinished one (rolling, or failed before it finished) is abandoned and the
    new run starts from what is live: from its source when the target stays, else from
    the revision it was rolling to.
    """
    if not last.rolling_state:
        return Origin("", 0)
    if last.complete:
        return Origin(last.target, last.size)
    source = last.source if last.target == target_revision else last.target
    return Origin(source, None, last)


def planned_origin(target_revision: str, target_size: int, last: RunRecord) -> Origin:
    """Where the run a plan (target revision, targetSize) asks for starts: the last run
    itself when the plan keeps its target and size (it goes on, or resumes), else a new
    run (next_run_origin)."""
    if last.rolling_state and last.target == target_revision and last.size == target_size:
        return Origin(last.source, last.original)
    return next_run_origin(target_revision, last)


def held_size(last: RunRecord, updates_in_place: bool) -> int | None:
    """The replicas an unfinished run keeps its workload at, where its kind guarantees
    one without counting: a CloneSet updated in place keeps the run's size (run_errors
    refuses a size change there). None when only the live workloads can tell."""
    if updates_in_place and last.source and last.source != last.target:
        return last.size
    return None


def known_origin(
    target_revision: str, target_size: int, last: RunRecord, *, updates_in_place: bool
) -> Origin | None:
    """planned_origin as seen from the Rollout alone, without counting live workloads
    (admission, and `render --revisions`): None when the plan rolls nothing (the finished
    run's revision and size); for an unfinished run the held_size where the kind keeps one.
    """
    if last.rolling_state == ROLLOUT_SUCCEED and (last.target, last.size) == (
        target_revision,
        target_size,
    ):
        return None
    origin = planned_origin(target_revision, target_size, last)
    if origin.original is None:
        return replace(origin, original=held_size(last, updates_in_place))
    return origin


def run_errors(
    batches: Sequence[BatchSize],
    target_revision: str,
    target_size: int,
    origin: Origin,
    plan: FieldPath,
    *,
    updates_in_place: bool,
) -> list[FieldError]:
    """The rules a plan meets given where its run starts, for the webhook and the
    controller alike (``updates_in_place``: the workload is a CloneSet).

    A CloneSet upgrade (or rollback) re-templates the pods it has, so it keeps the size it
    starts from; a pure scale's batches add up to the size change; any other run's add up
    to targetSize. A rule that needs a starting size ``origin`` does not know (an
    unfinished run abandoned: only the controller counts what is live) refuses the change
    at targetSize: it could not be checked, so it cannot be admitted.
    """
    scale = bool(origin.source) and origin.source == target_revision
    unfinished = origin.unfinished
    if updates_in_place and origin.source and not scale:
        if origin.original is None:
            rolling = unfinished.target if unfinished is not None else origin.source
            return [fe.forbidden(
                plan.child("targetSize"),
                f"a CloneSet is updated in place at the size it runs, and the unfinished"
                f" rollout to {rolling} leaves that size open: let it finish before rolling"
                f" {target_revision}",
            )]
        if origin.original != target_size:
            return [fe.forbidden(
                plan.child("targetSize"),
                f"a CloneSet is updated in place, so rolling it to {target_revision} keeps"
                f" its {origin.original} replicas: roll {target_revision} at"
                f" {origin.original} first, then change targetSize to {target_size}",
            )]
    if scale and origin.original is None:
        size = unfinished.size if unfinished is not None else target_size
        state = unfinished.rolling_state if unfinished is not None else "unfinished"
        return [fe.forbidden(
            plan.child("targetSize"),
            f"the scale of {target_revision} to {size} replicas has not finished ({state}),"
            f" so the size a new scale would start from is not known: keep targetSize {size}"
            f" until it has (remove batchPartition to let it finish)",
        )]
    scale_from = origin.original if scale else None
    errs = batch_sum_errors(batches, target_size, scale_from, plan)
    if errs and unfinished is not None and unfinished.target == target_revision and not scale:
        # A new size for the revision being rolled looks like a scale to its author; say
        # why it is a whole rollout again.
        why = (f"; the rollout to {target_revision} has not finished, so this change"
               f" rolls it again from {origin.source or 'nothing'}")
        errs = [fe.invalid(e.path, e.value, e.detail + why) for e in errs]
    return errs


def expected_batch_sum(target_size: int, scale_from: int | None) -> int:
    """What the batches add up to: the size change for a pure scale, else targetSize."""
    return target_size if scale_from is None else abs(target_size - scale_from)


def batch_sum_errors(
    batches: Sequence[BatchSize], target_size: int, scale_from: int | None, plan: FieldPath
) -> list[FieldError]:
    """The batches, percentages resolved, add up to expected_batch_sum."""
    expected = expected_batch_sum(target_size, scale_from)
    resolved = resolve_batches(batches, expected)
    total = sum(resolved)
    if total == expected:
        return []
    if list(resolved) != list(batches):
        detail = (
            f"batch replicas add up to {total} (percentages of {expected} resolved to"
            f" {list(resolved)}); they must add up to {expected}"
        )
    elif scale_from is not None and expected != target_size:
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
