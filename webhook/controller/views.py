"""Translations between API objects (plain dicts) and the state machine's values.

Holds the pure readers (a Rollout into Plan and Progress, a Deployment or CloneSet into
a Workload), the writers (Progress into a status body, an Event body), the Application
status rule (phase and services[] from the components' Rollouts and workloads) and the
record of a blocked write (a Rollout's Permitted condition, the Applications whose
Rollouts wait for rights). It must not do I/O or read clocks: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webhook.controller.machine import (
    CONDITION_COMPLETE,
    Condition,
    EmitEvent,
    Plan,
    Progress,
    Workload,
    WorkloadKind,
)
from webhook.core.labels import (
    APP_API_VERSION,
    APP_KIND,
    BATCH_READY,
    LABEL_REVISION,
    ROLLOUT_FAILED,
)
from webhook.core.model import Application

PHASE_RUNNING = "running"
PHASE_FAILED = "failed"

# With impersonation, a Rollout whose workload write the Application's writer may not
# make carries Permitted=False until a write succeeds (see webhook.controller.writers).
CONDITION_PERMITTED = "Permitted"
REASON_FORBIDDEN = "Forbidden"
REASON_REQUESTER_UNKNOWN = "RequesterUnknown"
BLOCKED_REASONS = frozenset({REASON_FORBIDDEN, REASON_REQUESTER_UNKNOWN})


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def kind_of(component_type: str) -> WorkloadKind:
    return WorkloadKind.CLONESET if component_type == "cloneset" else WorkloadKind.DEPLOYMENT


def plan_from(rollout: Mapping[str, Any], kind: WorkloadKind) -> Plan:
    """The Rollout's spec; missing or mistyped fields read as values verification rejects."""
    spec = _map(rollout.get("spec"))
    plan = _map(spec.get("rolloutPlan"))
    raw_batches = plan.get("rolloutBatches")
    batches = tuple(
        _int(_map(b).get("replicas"), -1)
        for b in (raw_batches if isinstance(raw_batches, list) else [])
    )
    partition = plan.get("batchPartition")
    name = _str(_map(rollout.get("metadata")).get("name"))
    return Plan(
        component=_str(spec.get("componentName")) or name,
        target_revision=_str(spec.get("targetRevisionName")),
        target_size=_int(plan.get("targetSize"), -1),
        batches=batches,
        partition=_int(partition) if partition is not None else None,
        generation=_int(_map(rollout.get("metadata")).get("generation"), 1),
        kind=kind,
        paused=plan.get("paused") is True,
    )


def progress_from(status: Mapping[str, Any]) -> Progress:
    conditions = tuple(
        Condition(_str(c.get("type")), _str(c.get("status")), _str(c.get("reason")),
                  _str(c.get("message")), _str(c.get("lastTransitionTime")))
        for c in (status.get("conditions") or []) if isinstance(c, Mapping)
    )
    return Progress(
        rolling_state=_str(status.get("rollingState")),
        batch_state=_str(status.get("batchRollingState")),
        current_batch=_int(status.get("currentBatch")),
        target_revision=_str(status.get("lastTargetRevision")),
        source_revision=_str(status.get("lastSourceRevision")),
        target_size=_int(status.get("rolloutTargetSize")),
        original_size=_int(status.get("rolloutOriginalSize")),
        upgraded=_int(status.get("upgradedReplicas")),
        upgraded_ready=_int(status.get("upgradedReadyReplicas")),
        observed_generation=_int(status.get("observedGeneration")),
        conditions=conditions,
        batch_started=_str(status.get("batchStartTime")),
        deadline_seconds=_int(status.get("progressDeadlineSeconds")),
    )


def _none_if_empty(text: str) -> str | None:
    """Merge-patch null removes a field; an empty string is refused by this apiserver."""
    return text or None


def _drop_empty(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if v != ""}


def replacing(old: Any, new: Any) -> Any:
    """A merge-patch value that turns ``old`` into ``new``: what ``new`` holds, plus null for
    every key of ``old`` that ``new`` lacks, at any depth (a merge patch keeps keys it does
    not name, so a label, annotation or probe a new template drops would linger)."""
    if not isinstance(new, Mapping):
        return new
    before = old if isinstance(old, Mapping) else {}
    out = {k: replacing(before.get(k), v) for k, v in new.items()}
    out.update({k: None for k in before if k not in new})
    return out


def retemplate_body(live: Mapping[str, Any] | None, doc: Mapping[str, Any], replicas: int,
                    partition: int) -> dict[str, Any]:
    """The merge patch that puts the rendered workload ``doc``'s labels, annotations and pod
    template on the ``live`` CloneSet, at ``replicas``, pods held by ``partition``. The pod
    template is replaced whole (replacing); the workload's own labels and annotations are
    merged, as others (kubectl label) may have added some."""
    live_spec = _map(_map(live).get("spec"))
    meta, spec = _map(doc.get("metadata")), _map(doc.get("spec"))
    metadata: dict[str, Any] = {"labels": dict(_map(meta.get("labels")))}
    if meta.get("annotations"):
        metadata["annotations"] = dict(_map(meta.get("annotations")))
    return {"metadata": metadata,
            "spec": {"replicas": replicas,
                     "template": replacing(live_spec.get("template"), spec.get("template")),
                     "updateStrategy": {**_map(spec.get("updateStrategy")),
                                        "partition": partition}}}


def status_from(p: Progress) -> dict[str, Any]:
    """A merge-patch body for Rollout status (null clears a field)."""
    return {
        "rollingState": _none_if_empty(p.rolling_state),
        "batchRollingState": _none_if_empty(p.batch_state),
        "currentBatch": p.current_batch,
        "lastTargetRevision": _none_if_empty(p.target_revision),
        "lastSourceRevision": _none_if_empty(p.source_revision),
        "rolloutTargetSize": p.target_size,
        "rolloutOriginalSize": p.original_size,
        "upgradedReplicas": p.upgraded,
        "upgradedReadyReplicas": p.upgraded_ready,
        "observedGeneration": p.observed_generation,
        "conditions": [
            _drop_empty({"type": c.type, "status": c.status, "reason": c.reason,
                         "message": c.message, "lastTransitionTime": c.last_transition_time})
            for c in p.conditions
        ],
        "batchStartTime": _none_if_empty(p.batch_started),
        "progressDeadlineSeconds": p.deadline_seconds or None,
    }


def workload_from(obj: Mapping[str, Any]) -> Workload:
    meta = _map(obj.get("metadata"))
    spec = _map(obj.get("spec"))
    status = _map(obj.get("status"))
    strategy = _map(spec.get("updateStrategy"))
    partition = strategy.get("partition")
    generation = _int(meta.get("generation"), 1)
    return Workload(
        name=_str(meta.get("name")),
        revision=_str(_map(meta.get("labels")).get(LABEL_REVISION)),
        replicas=_int(spec.get("replicas"), 1),
        current=_int(status.get("replicas")),
        ready=_int(status.get("readyReplicas")),
        updated=_int(status.get("updatedReplicas")),
        updated_ready=_int(status.get("updatedReadyReplicas")),
        partition=_int(partition) if partition is not None else None,
        settled=_int(status.get("observedGeneration")) >= generation,
    )


def event_body(involved: Mapping[str, Any], event: EmitEvent, now: str,
               instance: str = "") -> dict[str, Any]:
    """A core/v1 Event about ``involved``, reported by the replica ``instance``."""
    meta = _map(involved.get("metadata"))
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name')}.", "namespace": meta.get("namespace")},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "source": {"component": "oam-rollout-controller"},
        "reportingComponent": "oam-rollout-controller",
        **({"reportingInstance": instance} if instance else {}),
    }


def application_reference(app: Application) -> dict[str, Any]:
    """As much of ``app`` as an Event about it needs (event_body's ``involved``)."""
    return {"apiVersion": APP_API_VERSION, "kind": APP_KIND,
            "metadata": {"name": app.name, "namespace": app.namespace, "uid": app.uid}}


def rollout_failure(rollout: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of a failed Rollout: the condition that failed it, not the
    RolloutComplete=False every unfinished run carries."""
    status = _map(rollout.get("status"))
    for cond in map(_map, status.get("conditions") or []):
        # A write it was refused stops a run in any state (it resumes once permitted).
        if cond.get("type") == CONDITION_PERMITTED and cond.get("status") == "False":
            return _str(cond.get("reason")) or REASON_FORBIDDEN, _str(cond.get("message"))
    if _str(status.get("rollingState")) != ROLLOUT_FAILED:
        return None
    failed = [_map(c) for c in status.get("conditions") or []
              if _map(c).get("status") == "False"]
    failed.sort(key=lambda c: c.get("type") == CONDITION_COMPLETE)
    cond = failed[0] if failed else {}
    return _str(cond.get("reason")) or "RolloutFailed", _str(cond.get("message"))


def failure_reason(progress: Progress) -> str:
    """The reason a decided run stands failed, by rollout_failure's rule ("" while it does
    not); a write it was refused (Permitted) is for the caller that saw it to report."""
    status = status_from(progress)
    status["conditions"] = [c for c in status["conditions"]
                            if c.get("type") != CONDITION_PERMITTED]
    found = rollout_failure({"status": status})
    return found[0] if found is not None else ""


def service_health(component: str, rollout: Mapping[str, Any] | None,
                   workload: Mapping[str, Any] | None) -> dict[str, Any]:
    """One entry of Application status.services: healthy when the current batch is ready."""
    if rollout is not None:
        status = _map(rollout.get("status"))
        state = _str(status.get("rollingState"))
        batch = _str(status.get("batchRollingState"))
        failure = rollout_failure(rollout)
        if failure is not None:
            reason, why = failure
            message = f"rollout failed ({reason}): {why}" if why else f"rollout failed ({reason})"
            return {"name": component, "healthy": False, "message": message}
        if batch == BATCH_READY:
            return {"name": component, "healthy": True, "message": ""}
        if not state:
            return {"name": component, "healthy": False, "message": "rollout pending"}
        where = f"batch {_int(status.get('currentBatch'))}"
        return {"name": component, "healthy": False,
                "message": f"{state} {where} {batch}".strip()}
    if workload is None:
        return {"name": component, "healthy": False, "message": "workload not created yet"}
    w = workload_from(workload)
    if w.settled and w.ready >= w.replicas and w.current == w.replicas:
        return {"name": component, "healthy": True, "message": ""}
    return {"name": component, "healthy": False, "message": f"{w.ready}/{w.replicas} ready"}


def application_status(old: Mapping[str, Any], generation: int,
                       services: Sequence[Mapping[str, Any]], errors: Sequence[str],
                       now: str,
                       failures: Sequence[tuple[str, str, str]] = (),
                       problems: Sequence[tuple[str, str, str]] = ()) -> dict[str, Any]:
    """Application status: phase, services and one Ready condition (its time kept if unchanged).

    ``failures`` are (component, reason, message) of failed Rollouts: the Ready condition
    then carries the first one's reason (e.g. ProgressDeadlineExceeded) and names every
    one, so ``kubectl get app -o yaml`` says why the app is not ready. ``problems`` are
    (component, reason, message) of components the controller could not carry out (an
    object another owner controls, a write the API refused for good): like ``errors``
    they fail the phase, with the first one's reason.
    """
    ok = not errors and not problems
    reason = "Reconciled" if ok else "ReconcileFailed" if errors else problems[0][1]
    message = "; ".join([*errors, *(f"component {comp}: {why}" for comp, _, why in problems)])
    if ok and failures:
        reason = failures[0][1]
        message = "; ".join(f"rollout of {comp} failed: {why}" if why
                            else f"rollout of {comp} failed ({why_reason})"
                            for comp, why_reason, why in failures)
    cond_status = "True" if ok and all(s.get("healthy") for s in services) else "False"
    old_cond = next((c for c in old.get("conditions") or []
                     if isinstance(c, Mapping) and c.get("type") == "Ready"), None)
    stamp = now
    if old_cond is not None and old_cond.get("status") == cond_status:
        stamp = _str(old_cond.get("lastTransitionTime")) or now
    status = dict(old)
    status.update({
        "status": PHASE_RUNNING if ok else PHASE_FAILED,
        "services": [_drop_empty(s) for s in services],
        "observedGeneration": generation,
        "conditions": [_drop_empty({"type": "Ready", "status": cond_status, "reason": reason,
                                    "message": message, "lastTransitionTime": stamp})],
    })
    return status


def permitted_conditions(p: Progress, denied: tuple[str, str] | None,
                         now: str) -> list[dict[str, Any]] | None:
    """The Rollout's conditions with Permitted=False (``denied``: reason, message), or
    without Permitted (None); None when that is what they are already (so a refusal
    seen again writes nothing and re-announces nothing)."""
    current = p.condition(CONDITION_PERMITTED)
    if denied is None and current is None:
        return None
    if (denied is not None and current is not None and current.status == "False"
            and (current.reason, current.message) == denied):
        return None
    kept = [c for c in status_from(p)["conditions"] if c.get("type") != CONDITION_PERMITTED]
    if denied is not None:
        reason, message = denied
        kept.append({"type": CONDITION_PERMITTED, "status": "False", "reason": reason,
                     "message": message, "lastTransitionTime": now})
    return kept


def blocked_components(app: Mapping[str, Any]) -> list[str]:
    """The components of an Application whose Ready condition says a write of a Rollout
    was refused: an event on it (a touch after a grant) retries their Rollouts."""
    status = _map(app.get("status"))
    ready = next((_map(c) for c in status.get("conditions") or []
                  if _map(c).get("type") == "Ready"), {})
    if ready.get("status") != "False" or ready.get("reason") not in BLOCKED_REASONS:
        return []
    components = _map(app.get("spec")).get("components")
    names = (_str(_map(c).get("name")) for c in components) if isinstance(components, list) else ()
    return [name for name in names if name]
