"""The rollout rules on plain numbers: ranges and sums, named under the path the caller gives."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.core import rules
from webhook.core.errors import ErrorType
from webhook.core.labels import ROLLING_IN_BATCHES, ROLLOUT_FAILED, ROLLOUT_SUCCEED
from webhook.core.paths import FieldPath
from webhook.core.state import RunRecord

TRAIT = FieldPath.root("spec", "components").index(0).child("traits").index(0).child(
    "properties")
ROLLOUT = FieldPath.root("spec", "rolloutPlan")


@pytest.mark.parametrize("base", [TRAIT, ROLLOUT], ids=["trait", "rollout"])
@pytest.mark.parametrize(
    ("size", "batches", "partition", "minimum", "expected"),
    [
        (5, (2, 3), None, 1, []),
        (5, (2, 3), 1, 1, []),
        (-1, (2, 3), None, 1,
         ["targetSize: Invalid value: -1: must be greater than or equal to 0"]),
        (5, (), None, 1, ["rolloutBatches: Required value: must have at least one batch"]),
        (5, (2, 0), None, 1,
         ["rolloutBatches[1].replicas: Invalid value: 0: must be greater than 0"]),
        (0, (0,), None, 0, []),
        (5, (2, -1), None, 0,
         ["rolloutBatches[1].replicas: Invalid value: -1: must be greater than or equal to 0"]),
        (5, (2, 3), 2, 1,
         ["batchPartition: Invalid value: 2: must be less than or equal to 1"
          " (the index of the last of 2 rolloutBatches)"]),
        (5, (2, 3), -1, 1,
         ["batchPartition: Invalid value: -1: must be greater than or equal to 0"]),
        # A partition is checked against batches only once they are valid.
        (-2, (0, 3), 7, 1,
         ["targetSize: Invalid value: -2: must be greater than or equal to 0",
          "rolloutBatches[0].replicas: Invalid value: 0: must be greater than 0"]),
    ],
    ids=["valid", "valid partition", "negative size", "no batch", "empty trait batch",
         "empty rollout batch", "negative rollout batch", "partition past the end",
         "negative partition", "every range at once"],
)  # fmt: skip
def test_each_range_rule_names_its_field_under_the_callers_path(
    base: FieldPath, size: int, batches: tuple[int, ...], partition: int | None, minimum: int,
    expected: list[str],
) -> None:
    errs = rules.plan_range_errors(size, batches, partition, base, minimum)
    assert [str(e) for e in errs] == [f"{base}.{text}" for text in expected]


FRESH = RunRecord()
SETTLED_V1_5 = RunRecord(ROLLOUT_SUCCEED, "v1", "v0", 5, 5, complete=True)
# Parked mid-upgrade v1 -> v2 at 5 (batchPartition), and mid-scale of v1 from 5 to 9.
UPGRADING = RunRecord(ROLLING_IN_BATCHES, "v2", "v1", 5, 5)
SCALING = RunRecord(ROLLING_IN_BATCHES, "v1", "v1", 9, 5)
FIRST_DEPLOYING = RunRecord(ROLLING_IN_BATCHES, "v1", "", 5, 0)
# A new spec failed verification after the run to v1 at 5 finished: that run still counts.
FAILED_AFTER_SUCCESS = RunRecord(ROLLOUT_FAILED, "v1", "v0", 5, 5, complete=True)


@pytest.mark.parametrize(
    ("target", "size", "last", "origin"),
    [
        ("v1", 5, FRESH, rules.Origin("", 0)),  # first deploy
        ("v2", 5, SETTLED_V1_5, rules.Origin("v1", 5)),  # upgrade
        ("v1", 7, SETTLED_V1_5, rules.Origin("v1", 5)),  # scale
        ("v1", 7, FAILED_AFTER_SUCCESS, rules.Origin("v1", 5)),  # the fix of a failed scale
        ("v2", 5, UPGRADING, rules.Origin("v1", 5)),  # the same run goes on
        ("v2", 7, UPGRADING, rules.Origin("v1", None, UPGRADING)),  # restarted from v1
        ("v3", 5, UPGRADING, rules.Origin("v2", None, UPGRADING)),  # abandoned for v3
        ("v1", 7, SCALING, rules.Origin("v1", None, SCALING)),  # a scale cut short
        ("v1", 9, SCALING, rules.Origin("v1", 5)),
        ("v1", 7, FIRST_DEPLOYING, rules.Origin("", None, FIRST_DEPLOYING)),
    ],
    ids=["first deploy", "upgrade", "scale", "failed scale fixed", "run goes on",
         "size changed mid-upgrade", "target changed mid-upgrade", "size changed mid-scale",
         "scale goes on", "size changed mid-first-deploy"],
)  # fmt: skip
def test_a_run_starts_where_the_last_one_finished_or_from_what_an_unfinished_one_left(
    target: str, size: int, last: RunRecord, origin: rules.Origin
) -> None:
    assert rules.planned_origin(target, size, last) == origin


@pytest.mark.parametrize(
    ("last", "in_place", "held"),
    [
        (UPGRADING, True, 5),  # a CloneSet updated in place keeps the run's size
        (UPGRADING, False, None),  # Deployments: only counting tells
        (SCALING, True, None),
        (FIRST_DEPLOYING, True, None),
    ],
)
def test_only_an_in_place_run_holds_its_workload_at_a_size_known_without_counting(
    last: RunRecord, in_place: bool, held: int | None
) -> None:
    assert rules.held_size(last, in_place) == held


def test_a_plan_that_repeats_the_finished_run_has_nothing_to_roll() -> None:
    assert rules.known_origin("v1", 5, SETTLED_V1_5, updates_in_place=False) is None
    assert rules.known_origin("v1", 7, SETTLED_V1_5, updates_in_place=False) == rules.Origin(
        "v1", 5)
    assert rules.known_origin("v2", 5, UPGRADING, updates_in_place=True) == rules.Origin("v1", 5)
    assert rules.known_origin("v2", 7, UPGRADING, updates_in_place=True) == rules.Origin(
        "v1", 5, UPGRADING)


SIZE_PATH = "spec.rolloutPlan.targetSize"
BATCHES_PATH = "spec.rolloutPlan.rolloutBatches"
FORBIDDEN, INVALID = ErrorType.FORBIDDEN, ErrorType.INVALID
MID_UPGRADE_DETAIL = (
    "batch replicas add up to 2; they must add up to targetSize 7; the rollout to v2 has not"
    " finished, so this change rolls it again from v1")
IN_PLACE_SIZE_DETAIL = (
    "a CloneSet is updated in place, so rolling it to v2 keeps its 5 replicas: roll v2 at 5"
    " first, then change targetSize to 7")
IN_PLACE_OPEN_DETAIL = (
    "a CloneSet is updated in place at the size it runs, and the unfinished rollout to v1"
    " leaves that size open: let it finish before rolling v2")
SCALE_OPEN_DETAIL = (
    "the scale of v1 to 9 replicas has not finished (rollingInBatches), so the size a new"
    " scale would start from is not known: keep targetSize 9 until it has (remove"
    " batchPartition to let it finish)")


@pytest.mark.parametrize(
    ("batches", "target", "size", "origin", "in_place", "expected"),
    [
        ((1, 1), "v1", 7, rules.Origin("v1", 5), False, []),  # the spec's scale 5 -> 7
        ((3, 4), "v2", 7, rules.Origin("v1", None, UPGRADING), False, []),
        ((1, 1), "v2", 7, rules.Origin("v1", None, UPGRADING), False,
         [(INVALID, BATCHES_PATH, MID_UPGRADE_DETAIL)]),
        ((1, 1), "v2", 7, rules.Origin("v1", 5), True,
         [(FORBIDDEN, SIZE_PATH, IN_PLACE_SIZE_DETAIL)]),
        ((2, 3), "v2", 5, rules.Origin("v1", 5), True, []),  # the spec's CloneSet upgrade
        ((1, 1), "v1", 7, rules.Origin("v1", 5), True, []),  # a CloneSet scales like any
        ((2, 3), "v2", 5, rules.Origin("v1", None, FIRST_DEPLOYING), True,
         [(FORBIDDEN, SIZE_PATH, IN_PLACE_OPEN_DETAIL)]),
        ((2,), "v1", 7, rules.Origin("v1", None, SCALING), False,
         [(FORBIDDEN, SIZE_PATH, SCALE_OPEN_DETAIL)]),
        ((2,), "v1", 7, rules.Origin("v1", 5, SCALING), False, []),  # the controller counted 5
        ((7,), "v1", 7, rules.Origin("", None, FIRST_DEPLOYING), False, []),
    ],
    ids=["scale", "size changed mid-upgrade, batches for the whole size",
         "size changed mid-upgrade, batches for the difference", "CloneSet upgrade resized",
         "CloneSet upgrade", "CloneSet scale", "CloneSet upgrade over an unfinished deploy",
         "size changed mid-scale, uncounted", "size changed mid-scale, counted",
         "size changed mid-first-deploy"],
)  # fmt: skip
def test_a_run_is_judged_from_where_it_starts(
    batches: tuple[int, ...], target: str, size: int, origin: rules.Origin, in_place: bool,
    expected: list[tuple[ErrorType, str, str]],
) -> None:
    errs = rules.run_errors(batches, target, size, origin, ROLLOUT, updates_in_place=in_place)
    assert [(e.type, str(e.path), e.detail) for e in errs] == expected


INT32_MAX = 2**31 - 1


@pytest.mark.parametrize(
    ("size", "batches", "partition", "expected"),
    [
        (INT32_MAX, (INT32_MAX,), INT32_MAX - INT32_MAX, []),
        (INT32_MAX + 1, (1,), None, [("targetSize", INT32_MAX + 1)]),
        (5, (2, INT32_MAX + 1), None, [("rolloutBatches[1].replicas", INT32_MAX + 1)]),
        (5, (0,), INT32_MAX + 1, [("rolloutBatches[0].replicas", 0),
                                  ("batchPartition", INT32_MAX + 1)]),
    ],
    ids=["largest", "targetSize", "batch replicas", "batchPartition"],
)  # fmt: skip
def test_every_count_of_a_plan_fits_the_int32_it_is_stored_in(
    size: int, batches: tuple[int, ...], partition: int | None,
    expected: list[tuple[str, int]],
) -> None:
    errs = rules.plan_range_errors(size, batches, partition, TRAIT)
    assert [(str(FieldPath(e.path.parts[len(TRAIT.parts):])), e.value) for e in errs] == expected
    assert all(e.type is ErrorType.INVALID for e in errs)
    assert all(e.detail == f"must be less than or equal to {INT32_MAX}"
               for e in errs if e.value == INT32_MAX + 1)


@pytest.mark.parametrize(
    ("size", "scale_from", "expected"),
    [(7, None, 7), (7, 5, 2), (7, 9, 2), (3, 7, 4), (5, 5, 0), (0, None, 0)],
)
def test_the_expected_batch_sum_is_the_size_change_only_for_a_pure_scale(
    size: int, scale_from: int | None, expected: int
) -> None:
    assert rules.expected_batch_sum(size, scale_from) == expected


@pytest.mark.parametrize(
    ("batches", "size", "scale_from", "detail"),
    [
        ((2, 3), 5, None, None),
        ((2, 2), 5, None, "batch replicas add up to 4; they must add up to targetSize 5"),
        ((1, 3), 7, 5, "batch replicas add up to 4; scaling from 5 to 7 needs them to add up to 2"),
        ((1, 1), 3, 7, "batch replicas add up to 2; scaling from 7 to 3 needs them to add up to 4"),
        ((1, 1), 5, 10, "batch replicas add up to 2; they must add up to targetSize 5"),
    ],
)  # fmt: skip
def test_batches_that_do_not_add_up_are_one_error_at_rollout_batches(
    batches: tuple[int, ...], size: int, scale_from: int | None, detail: str | None
) -> None:
    errs = rules.batch_sum_errors(batches, size, scale_from, ROLLOUT)
    assert [(e.type, str(e.path), e.value, e.detail) for e in errs] == (
        [] if detail is None
        else [(ErrorType.INVALID, "spec.rolloutPlan.rolloutBatches", list(batches), detail)])


def test_an_unknown_revision_lists_the_components_revisions_once_and_sorted() -> None:
    err = rules.unknown_revision_error(
        FieldPath.root("spec", "targetRevisionName"), "web-v9", "web",
        ["web-v2", "web-v1", "web-v2"])
    assert str(err) == (
        'spec.targetRevisionName: Not found: "web-v9": component \'web\' has revisions:'
        " web-v1, web-v2")


@pytest.mark.parametrize(
    ("batches", "partition", "size", "scale_from", "expected"),
    [
        ((2, 3), None, 5, None, 5),
        ((2, 3), 0, 5, None, 2),  # an upgrade held after its first batch
        ((2, 3), 1, 5, None, 5),
        ((1, 1), 0, 7, 5, 6),  # a scale out held after its first batch
        ((1, 3), 0, 3, 7, 6),  # a scale in held after its first batch
        ((1, 3), None, 3, 7, 3),
    ],
)
def test_planned_replicas_stop_at_the_batch_partition(
    batches: tuple[int, ...], partition: int | None, size: int, scale_from: int | None,
    expected: int,
) -> None:
    assert rules.planned_replicas(batches, partition, size, scale_from) == expected


@st.composite
def valid_runs(draw: st.DrawFn) -> tuple[tuple[int, ...], int, int | None]:
    """Batches that add up for a first deploy or upgrade, or for a pure scale."""
    size = draw(st.integers(0, 20))
    scale_from = draw(st.one_of(st.none(), st.integers(0, 20)))
    total = rules.expected_batch_sum(size, scale_from)
    cuts = sorted(draw(st.lists(st.integers(0, total), max_size=4)))
    bounds = [0, *cuts, total]
    batches = tuple(b - a for a, b in itertools.pairwise(bounds))
    return batches, size, scale_from


@given(valid_runs())
def test_batches_that_add_up_move_the_target_monotonically_to_its_size(
    run: tuple[tuple[int, ...], int, int | None],
) -> None:
    batches, size, scale_from = run
    assert rules.batch_sum_errors(batches, size, scale_from, ROLLOUT) == []
    goals = [rules.replicas_after(batches, i, size, scale_from) for i in range(len(batches))]
    assert goals[-1] == size
    start = 0 if scale_from is None else scale_from
    steps = [b - a for a, b in itertools.pairwise([start, *goals])]
    assert all(step * (size - start) >= 0 for step in steps)  # never backwards
    assert [abs(step) for step in steps] == list(batches)
