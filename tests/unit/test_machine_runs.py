"""The state machine's properties over generated specs: runs converge and keep the invariant.

Whole runs in tests.fixtures.machine.World: any sequence of valid changes, some cut short
mid-run and some with crashes, ends in the last one; any upgrade or rollback keeps the
ready pods within a batch of targetSize.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.machine import DEPLOY, World, plan, split
from webhook.controller.machine import decide, expected_sum, prospective_run
from webhook.core.labels import BATCH_READY, ROLLOUT_SUCCEED

# ---- any sequence of valid specs, interrupted runs and crashes converges ----------------

Step = tuple[str, int, int, float, int, int | None]


@st.composite
def spec_changes(draw: st.DrawFn) -> list[Step]:
    """Steps of (target, size, parts to split the batches into, crash chance, decisions
    to run before the next change (0 = until it settles or holds), batchPartition)."""
    steps = draw(st.integers(1, 4))
    return [(draw(st.sampled_from(["v1", "v2", "v3"])), draw(st.integers(1, 8)),
             draw(st.integers(1, 4)), draw(st.sampled_from([0.0, 0.2])),
             draw(st.sampled_from([0, 0, 2, 5])), draw(st.sampled_from([None, None, 0, 1])))
            for _ in range(steps)]


@settings(max_examples=80, deadline=None)
@given(spec_changes())
def test_any_sequence_of_valid_changes_ends_in_the_last_one(steps: list[Step]) -> None:
    world = World(DEPLOY, rng=random.Random(len(steps)))
    for generation, (target, size, parts, crash, decisions, part) in enumerate(steps, start=1):
        probe = plan(target, size, (size,), generation=generation)
        run = prospective_run(world.observe(probe), world.progress)
        batches = split(expected_sum(run), parts)
        partition = None if part is None else min(part, len(batches) - 1)
        current = plan(target, size, batches, partition, generation)
        world.crash = crash
        if decisions:
            for _ in range(decisions):  # part of the run, then the next change arrives
                for action in decide(world.observe(current)).actions:
                    world.apply(action)
                world.tick()
        else:
            world.roll(current, limit=2000)
    # The last change, without a partition, must finish.
    current = replace(current, partition=None, generation=current.generation + 1)
    world.crash = 0.0
    world.roll(current, limit=2000)
    target, size = steps[-1][0], steps[-1][1]
    assert world.view() == ((size, size, size, BATCH_READY, ROLLOUT_SUCCEED), {target: size})


@settings(max_examples=80, deadline=None)
@given(size=st.integers(1, 9), parts=st.integers(1, 5), crash=st.sampled_from([0.0, 0.1, 0.3]),
       slow=st.sampled_from(["up", "down"]), back=st.booleans())
def test_any_upgrade_or_rollback_keeps_ready_pods_within_the_batch_of_target_size(
    size: int, parts: int, crash: float, slow: str, back: bool,
) -> None:
    world = World(DEPLOY, slow=slow, rng=random.Random(size * 10 + parts))
    world.roll(plan("v1", size, (size,)))
    world.roll(plan("v2", size, (size,), generation=2))
    world.crash = crash
    target = "v1" if back else "v3"
    world.roll(plan(target, size, split(size, parts), generation=3), limit=2000)
    world.crash = 0.0
    world.roll(plan(target, size, split(size, parts), generation=3))
    assert world.view() == ((size, size, size, BATCH_READY, ROLLOUT_SUCCEED), {target: size})
    assert world.violations == []
