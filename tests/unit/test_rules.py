"""The rollout rules on plain numbers: ranges and sums, named under the path the caller gives."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.core import rules
from webhook.core.errors import ErrorType
from webhook.core.paths import FieldPath

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


@pytest.mark.parametrize(
    ("target", "size", "current_revision", "current_size", "origin"),
    [
        ("v1", 7, None, None, None),  # first deploy
        ("v1", 7, "v0", 5, None),  # upgrade
        ("v1", 7, "v1", 5, 5),  # scale out
        ("v1", 7, "v1", 9, 9),  # scale in
        ("v1", 7, "v1", 7, None),  # nothing to scale
        ("v1", 7, "v1", None, None),  # size unknown while rolling
        (None, 7, "v1", 5, None),  # no target: judged as a first deploy
    ],
)
def test_a_pure_scale_keeps_the_settled_revision_and_changes_its_size(
    target: str | None, size: int, current_revision: str | None, current_size: int | None,
    origin: int | None,
) -> None:
    assert rules.scale_origin(target, size, current_revision, current_size) == origin


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
