"""The `oam-rollout status` verdict and its machine-readable document.

Holds ``rollout_verdict`` / ``application_verdict`` (succeeded, failed or progressing,
judged only on a status that has caught up with the spec, so a verdict from the run
before a ``kubectl apply`` is never taken for this one's) and ``application_document``
(the plain dict `status -o json|yaml` prints). Pure functions of plain API dicts; it must
not do I/O. Text lives in webhook.controller.report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.controller.machine import WorkloadKind
from webhook.controller.report import moved_replicas
from webhook.controller.views import plan_from, progress_from
from webhook.core.labels import ROLLOUT_FAILED, ROLLOUT_SUCCEED, ROLLOUT_TRAIT

SUCCEEDED = "succeeded"
FAILED = "failed"
PROGRESSING = "progressing"


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def app_caught_up(app: Mapping[str, Any]) -> bool:
    """The controller has acted on the Application's current spec (status.observedGeneration)."""
    meta, status = _map(app.get("metadata")), _map(app.get("status"))
    return _int(status.get("observedGeneration")) >= _int(meta.get("generation"), 1)


def rollout_verdict(rollout: Mapping[str, Any] | None) -> str:
    """A Rollout's run, judged only once its status describes its current spec: the
    generation observed, and the run's target and size those of the spec."""
    if rollout is None:
        return PROGRESSING
    plan = plan_from(rollout, WorkloadKind.DEPLOYMENT)
    p = progress_from(_map(rollout.get("status")))
    current = (p.observed_generation >= plan.generation
               and p.target_revision == plan.target_revision
               and p.target_size == plan.target_size)
    if not current:
        return PROGRESSING
    if p.rolling_state == ROLLOUT_FAILED:
        return FAILED
    if p.rolling_state == ROLLOUT_SUCCEED:
        return SUCCEEDED
    return PROGRESSING


def _rollout_components(app: Mapping[str, Any]) -> list[str]:
    names = []
    for comp in _map(app.get("spec")).get("components") or []:
        comp = _map(comp)
        traits = comp.get("traits")
        if not isinstance(traits, list):
            continue
        if isinstance(comp.get("name"), str) and any(
                _map(t).get("type") == ROLLOUT_TRAIT for t in traits):
            names.append(comp["name"])
    return names


def application_verdict(app: Mapping[str, Any],
                        rollouts: Mapping[str, Mapping[str, Any]]) -> str:
    """failed when a rollout of the current spec failed; succeeded when every rollout
    succeeded and the Application reports every component healthy; else progressing."""
    if not app_caught_up(app):
        return PROGRESSING
    verdicts = [rollout_verdict(rollouts.get(name)) for name in _rollout_components(app)]
    if FAILED in verdicts:
        return FAILED
    if any(v != SUCCEEDED for v in verdicts):
        return PROGRESSING
    # The Application's status follows its Rollouts' one reconcile later: wait for it too,
    # so what --wait prints last agrees everywhere (and plain components count by it).
    healthy = {_map(s).get("name"): _map(s).get("healthy")
               for s in _map(app.get("status")).get("services") or []}
    if any(healthy.get(name) is not True for name in _component_names(app)):
        return PROGRESSING
    return SUCCEEDED


def _component_names(app: Mapping[str, Any]) -> list[str]:
    return [str(_map(c).get("name")) for c in _map(app.get("spec")).get("components") or []]


def rollout_document(rollout: Mapping[str, Any]) -> dict[str, Any]:
    plan = plan_from(rollout, WorkloadKind.DEPLOYMENT)
    p = progress_from(_map(rollout.get("status")))
    moved, before, batches = moved_replicas(rollout), 0, []
    for replicas in plan.batches:
        batches.append({"replicas": replicas, "done": max(0, min(replicas, moved - before))})
        before += max(0, replicas)
    return {
        "verdict": rollout_verdict(rollout),
        "targetRevision": plan.target_revision or None,
        "lastTargetRevision": p.target_revision or None,
        "lastSourceRevision": p.source_revision or None,
        "rollingState": p.rolling_state or None,
        "batchRollingState": p.batch_state or None,
        "currentBatch": p.current_batch,
        "targetSize": plan.target_size,
        "originalSize": p.original_size,
        "upgradedReplicas": p.upgraded,
        "upgradedReadyReplicas": p.upgraded_ready,
        "batchPartition": plan.partition,
        "paused": plan.paused,
        "batches": batches,
        "conditions": [{"type": c.type, "status": c.status, "reason": c.reason,
                        "message": c.message} for c in p.conditions],
    }


def application_document(app: Mapping[str, Any],
                         rollouts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What `status -o json|yaml` prints for one Application."""
    meta, status = _map(app.get("metadata")), _map(app.get("status"))
    services = {_map(s).get("name"): _map(s) for s in status.get("services") or []}
    components = []
    for comp in _map(app.get("spec")).get("components") or []:
        comp = _map(comp)
        name = str(comp.get("name"))
        service = services.get(name, {})
        rollout = rollouts.get(name)
        components.append({
            "name": name,
            "type": comp.get("type"),
            "healthy": service.get("healthy"),
            "message": service.get("message") or None,
            "rollout": rollout_document(rollout) if rollout is not None else None,
        })
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "generation": meta.get("generation"),
        "observedGeneration": status.get("observedGeneration"),
        "phase": status.get("status"),
        "verdict": application_verdict(app, rollouts),
        "components": components,
    }


def worst(verdicts: list[str]) -> str:
    """Several Applications' verdict: failed if one failed, succeeded if all did."""
    if FAILED in verdicts:
        return FAILED
    return SUCCEEDED if all(v == SUCCEEDED for v in verdicts) else PROGRESSING
