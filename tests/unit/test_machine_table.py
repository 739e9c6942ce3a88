"""The transition table's row order: where two rows can hold at once, the declared one wins.

PRECEDENCE names every pair of rows that may hold in the same state. These tests check
that the table's order agrees with it, and, over states reached by runs of generated
specs (valid and invalid, interrupted, crashing, paused, with and without a progress deadline),
that no undeclared pair of rows ever holds at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.machine import CLONESET, DEPLOY, World, plan, split
from webhook.controller.machine import (
    PRECEDENCE,
    TRANSITIONS,
    Observed,
    WorkloadKind,
    expected_sum,
    prospective_run,
)
from webhook.controller.machine.table import MAX_STEPS, holding

ROW_NAMES = [t.name for t in TRANSITIONS]
# Rows after which decide() stops even though no workload changed.
FINAL_ROWS = {"verification-failed", "progress-deadline", "paused"}


def test_precedence_names_only_rows_of_the_table() -> None:
    named = set(PRECEDENCE) | {row for rows in PRECEDENCE.values() for row in rows}
    assert named <= set(ROW_NAMES)


def test_a_row_comes_before_every_row_it_wins_over() -> None:
    misplaced = [(winner, loser) for winner, losers in PRECEDENCE.items() for loser in losers
                 if ROW_NAMES.index(winner) > ROW_NAMES.index(loser)]
    assert misplaced == []


def undeclared_overlaps(observed: Observed) -> set[tuple[str, str]]:
    """Pairs of rows that hold at once without PRECEDENCE saying which wins, in the state
    decide() is asked about and in every state its chain of rows passes through."""
    found: set[tuple[str, str]] = set()
    progress = observed.progress
    for _ in range(MAX_STEPS):
        rows = holding(observed, progress)
        if not rows:
            break
        for i, first in enumerate(rows):
            for later in rows[i + 1:]:
                if later.name not in PRECEDENCE.get(first.name, frozenset()):
                    found.add((first.name, later.name))
        outcome = rows[0].effect(observed, progress)
        progress = outcome.progress
        if outcome.actions or rows[0].name in FINAL_ROWS:
            break
    return found


@dataclass(frozen=True)
class Change:
    """One spec change and how much of its run happens before the next one."""

    target: str
    size: int
    parts: int
    partition: int | None
    flaw: str  # "", "sum", "partition", "unknown target", "negative size"
    crash: float
    decisions: int  # 0: until it settles
    stuck: bool  # the target's pods never get Ready
    deadline: int
    paused: bool  # the plan holds the run before its next batch


FLAWS = ["", "", "", "", "sum", "partition", "unknown target", "negative size"]
changes = st.builds(
    Change,
    target=st.sampled_from(["v1", "v2", "v3"]),
    size=st.integers(0, 6),
    parts=st.integers(1, 4),
    partition=st.sampled_from([None, None, 0, 1]),
    flaw=st.sampled_from(FLAWS),
    crash=st.sampled_from([0.0, 0.2]),
    decisions=st.sampled_from([0, 2, 5, 12]),
    stuck=st.booleans(),
    deadline=st.sampled_from([0, 0, 3, 8]),
    paused=st.sampled_from([False, False, True]),
)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from([DEPLOY, CLONESET]), slow=st.sampled_from(["up", "down"]),
       clock_from=st.sampled_from([None, 0, 2]), steps=st.lists(changes, min_size=1, max_size=5))
def test_no_two_rows_hold_at_once_in_a_reachable_state_unless_declared(
    kind: WorkloadKind, slow: str, clock_from: int | None, steps: list[Change]
) -> None:
    found: set[tuple[str, str]] = set()
    world = World(kind, slow=slow, rng=random.Random(len(steps)),
                  seen=lambda observed: found.update(undeclared_overlaps(observed)))
    for generation, change in enumerate(steps, start=1):
        # A controller restarted with a clock (or another deadline) meets an older status.
        if clock_from is not None and generation > clock_from and world.clock is None:
            world.clock = 0.0
        world.deadline, world.crash = change.deadline, change.crash
        world.stuck = frozenset({change.target}) if change.stuck else frozenset()
        probe = plan(change.target, change.size, (change.size,), generation=generation, kind=kind)
        batches = split(expected_sum(prospective_run(world.observe(probe), world.progress)),
                        change.parts)
        partition = None if change.partition is None else min(change.partition,
                                                               len(batches) - 1)
        size = change.size
        if change.flaw == "sum":
            batches += (1,)
        elif change.flaw == "partition":
            partition = len(batches)
        elif change.flaw == "negative size":
            size = -1
        current = plan(change.target, size, batches, partition, generation, kind,
                       change.paused)
        known = change.flaw != "unknown target"
        for _ in range(change.decisions or 300):
            acted = world.step(current, known)
            if not change.decisions and not acted and all(
                    w.settled for w in world.workloads.values()):
                break
            world.tick()
    assert found == set()
