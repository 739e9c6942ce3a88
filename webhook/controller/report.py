"""The `oam-rollout status` report: an Application and its Rollouts as text, one bar per batch.

Holds pure formatting from plain API dicts (the Application, its Rollouts by component)
to lines of text. It must not do I/O, and must not guess: anything missing prints as "-".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from webhook.controller.machine import (
    CONDITION_COMPLETE,
    CONDITION_PAUSED,
    CONDITION_PROGRESSING,
    REASON_DEADLINE,
    Progress,
    WorkloadKind,
    parse_time,
    waiting_on_batch,
)
from webhook.controller.views import plan_from, progress_from
from webhook.core.labels import BATCH_READY, ROLLOUT_FAILED, ROLLOUT_SUCCEED

BAR_WIDTH = 20


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    if total <= 0:
        return "[" + "#" * width + "]"
    filled = round(width * max(0, min(done, total)) / total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def moved_replicas(rollout: Mapping[str, Any]) -> int:
    """Replicas the run has moved so far, as the batches count them."""
    p = progress_from(rollout.get("status") or {})
    if p.source_revision and p.source_revision == p.target_revision:
        return abs(p.upgraded_ready - p.original_size)
    return p.upgraded_ready


def batch_lines(rollout: Mapping[str, Any]) -> list[str]:
    """One line per batch: bar, moved/replicas, and whether it is done, rolling or held."""
    plan = plan_from(rollout, WorkloadKind.DEPLOYMENT)
    p = progress_from(rollout.get("status") or {})
    moved = moved_replicas(rollout)
    lines = []
    before = 0
    for i, replicas in enumerate(plan.batches):
        done = max(0, min(replicas, moved - before))
        before += max(0, replicas)
        if p.rolling_state == ROLLOUT_SUCCEED or i < p.current_batch or (
                i == p.current_batch and p.batch_state == BATCH_READY):
            state = "ready"
        elif plan.partition is not None and i > plan.partition:
            state = f"held by batchPartition {plan.partition}"
        elif i == p.current_batch and p.rolling_state not in ("", ROLLOUT_FAILED):
            state = p.batch_state or "rolling"
        elif i == p.current_batch and missed_deadline(p):
            state = "failed: not Ready within the progress deadline"
        else:
            state = "pending"
        lines.append(f"    batch {i}  {bar(done, replicas)}  {done}/{replicas}  {state}")
    return lines


def missed_deadline(p: Progress) -> bool:
    cond = p.condition(CONDITION_PROGRESSING)
    return (p.rolling_state == ROLLOUT_FAILED and cond is not None
            and cond.reason == REASON_DEADLINE)


def deadline_line(p: Progress) -> str | None:
    """When the batch being waited on began, and by when it must be Ready."""
    start = parse_time(p.batch_started)
    if not waiting_on_batch(p) or start is None:
        return None
    began = start.strftime("%H:%M:%SZ")
    if p.deadline_seconds <= 0:
        return f"    batch {p.current_batch} rolling since {began}, no progress deadline"
    due = (start + timedelta(seconds=p.deadline_seconds)).strftime("%H:%M:%SZ")
    return (f"    batch {p.current_batch} rolling since {began}, must be Ready by {due} "
            f"(progress deadline {p.deadline_seconds}s)")


def pause_line(paused: bool, p: Progress) -> str | None:
    """Whether a paused plan holds the run, and where (the Paused condition's message)."""
    cond = p.condition(CONDITION_PAUSED)
    held = cond is not None and cond.status == "True"
    if held and paused:
        return f"    {cond.message if cond else 'paused'} (set paused: false to go on)"
    if paused and p.rolling_state not in (ROLLOUT_SUCCEED, ROLLOUT_FAILED):
        return "    paused: the batch in flight finishes, then the rollout holds"
    if held:
        return "    paused is off: the rollout goes on"
    return None


def _cell(value: Any) -> str:
    return "-" if value in (None, "") else str(value)


def format_status(app: Mapping[str, Any], rollouts: Mapping[str, Mapping[str, Any]]) -> str:
    meta = app.get("metadata") or {}
    status = app.get("status") or {}
    services = {s.get("name"): s for s in status.get("services") or [] if isinstance(s, Mapping)}
    out = [
        f"Application {meta.get('name')}  namespace {meta.get('namespace')}  "
        f"phase {_cell(status.get('status'))}  generation {meta.get('generation')} "
        f"(observed {_cell(status.get('observedGeneration'))})",
    ]
    for comp in (app.get("spec") or {}).get("components") or []:
        if not isinstance(comp, Mapping):
            continue
        name = str(comp.get("name"))
        service = services.get(name) or {}
        healthy = service.get("healthy")
        out.append("")
        out.append(f"  {name}  ({comp.get('type')})  healthy {_cell(healthy).lower()}"
                   + (f"  {service['message']}" if service.get("message") else ""))
        rollout = rollouts.get(name)
        if rollout is None:
            out.append("    no rollout trait: workload applied as rendered")
            continue
        p = progress_from(rollout.get("status") or {})
        plan = plan_from(rollout, WorkloadKind.DEPLOYMENT)
        source = p.source_revision or "(nothing)"
        out.append(f"    revision {_cell(p.target_revision)} (from {source})  target "
                   f"{_cell(plan.target_revision)}")
        out.append(f"    {_cell(p.rolling_state)} / {_cell(p.batch_state)}  batch "
                   f"{p.current_batch}  replicas {p.original_size} -> {p.target_size}  "
                   f"upgraded {p.upgraded}  ready {p.upgraded_ready}")
        out.extend(batch_lines(rollout))
        pause = pause_line(plan.paused, p)
        if pause is not None:
            out.append(pause)
        deadline = deadline_line(p)
        if deadline is not None:
            out.append(deadline)
        for cond in p.conditions:
            # RolloutComplete=False is just "in progress"; other False conditions are problems.
            if cond.type != CONDITION_COMPLETE and cond.status == "False" and cond.message:
                out.append(f"    {cond.type}: {cond.reason}: {cond.message}")
    return "\n".join(out)
