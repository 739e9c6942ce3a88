"""What the demo shows: pure descriptions of live state, and the printer that writes the story.

Holds ``rollout_view`` (the columns of `kubectl get rollout`), ``workload_readiness``,
``is_settled`` (has a step reached its expectation), ``progress_line`` (the live line
while it has not), ``to_yaml`` and ``Printer``. Everything but Printer is a pure
function of API objects. It must not read the cluster (webhook.cli.demo.runner does).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import yaml

from webhook.cli.demo.steps import Expectation, RolloutView


def rollout_view(rollout: Mapping[str, Any] | None) -> RolloutView:
    status = (rollout or {}).get("status") or {}
    return RolloutView(
        status.get("rolloutTargetSize"),
        status.get("upgradedReplicas"),
        status.get("upgradedReadyReplicas"),
        status.get("batchRollingState"),
        status.get("rollingState"),
    )


def workload_readiness(workloads: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """name -> "ready/desired" for Deployments and CloneSets alike (kubectl's READY)."""
    return {
        str(w["metadata"]["name"]): (
            f"{(w.get('status') or {}).get('readyReplicas') or 0}/"
            f"{(w.get('spec') or {}).get('replicas', 0)}"
        )
        for w in workloads
        # A workload being deleted is on its way out; kubectl may still list it briefly.
        if not w["metadata"].get("deletionTimestamp")
    }


def is_settled(
    expect: Expectation,
    rollout: Mapping[str, Any] | None,
    workloads: Sequence[Mapping[str, Any]],
) -> bool:
    status = (rollout or {}).get("status") or {}
    return (
        rollout_view(rollout) == expect.rollout
        and status.get("lastTargetRevision") == expect.target_revision
        and workload_readiness(workloads) == dict(expect.workloads)
    )


def progress_line(component: str, rollout: Mapping[str, Any] | None) -> str:
    """One line describing where a rollout stands, for the live display."""
    if not rollout:
        return f"{component}: waiting for the Rollout"
    spec = rollout.get("spec") or {}
    status = rollout.get("status") or {}
    batches = len((spec.get("rolloutPlan") or {}).get("rolloutBatches") or [])
    batch = status.get("currentBatch")
    shown_batch = f"{batch + 1}/{batches}" if isinstance(batch, int) else f"-/{batches}"
    target = status.get("rolloutTargetSize", (spec.get("rolloutPlan") or {}).get("targetSize"))
    return (
        f"{component} -> {spec.get('targetRevisionName', '?')}: batch {shown_batch}, "
        f"upgraded {status.get('upgradedReplicas', 0)}/{target}, "
        f"ready {status.get('upgradedReadyReplicas', 0)}, "
        f"{status.get('batchRollingState', '-')}, {status.get('rollingState', '-')}"
    )


def to_yaml(obj: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(obj), sort_keys=False, allow_unicode=True)


@dataclass
class Printer:
    """Writes the demo's story; the live progress line rewrites itself on a terminal."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    _live: str = ""

    @property
    def tty(self) -> bool:
        return self.out.isatty()

    def line(self, text: str = "") -> None:
        self.end_live()
        print(text, file=self.out, flush=True)

    def live(self, text: str) -> None:
        if text == self._live:
            return
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            print(f"\r\033[K  ⏳ {text[: width - 5]}", end="", file=self.out, flush=True)
        else:
            print(f"  .. {text}", file=self.out, flush=True)
        self._live = text

    def end_live(self) -> None:
        if self._live and self.tty:
            print(file=self.out, flush=True)
        self._live = ""
