"""The simulated kubelet's pod rules: what a pod needs next, and the status it then reports.

Holds the failure-injection annotations a test sets on a pod (template), ``pod_action``
(the next step for one pod, as a kubelet on a given node sees it) and ``status_patch``
(the status a kubelet reports for a pod starting, running, unready or crashed), with the
small pod readers they share. All pure functions of plain dicts: kubelet.py does the
I/O. It must not name an address outside 127.0.0.0/8.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

# Failure injection, set on the pod (template) by a test.
NEVER_READY = "sim.oam-rollout.dev/never-ready"  # "true": Running but never Ready
CRASH_AFTER = "sim.oam-rollout.dev/crash-after"  # "2s": Ready, then CrashLoopBackOff
READY_DELAY = "sim.oam-rollout.dev/ready-delay"  # "3s": this pod's own start delay
CRASH_REASON = "CrashLoopBackOff"
POD_IP = "127.0.0.1"


class PodAction(Enum):
    """What the simulated kubelet must do next for one pod."""

    IGNORE = "ignore"  # not ours, finished, or already in the wanted state
    FINALIZE = "finalize"  # terminating: delete with grace 0
    BIND = "bind"  # unscheduled: bind to our node
    START = "start"  # containers (re)starting: report not ready, schedule readiness
    AWAIT_READY = "await-ready"  # started, readiness due later (timer may be lost)
    HOLD_UNREADY = "hold-unready"  # never-ready injection: Running, never Ready


def parse_duration(text: str) -> float:
    """'500ms', '2s', '1.5', '1m' -> seconds; ValueError on anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 500ms, 2s, 1m)")
    value = float(match.group(1))
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]


def spec_images(pod: Mapping[str, Any]) -> dict[str, str]:
    return {c["name"]: c.get("image", "") for c in pod.get("spec", {}).get("containers", [])}


def status_images(pod: Mapping[str, Any]) -> dict[str, str]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return {c["name"]: c.get("image", "") for c in statuses}


def condition(pod: Mapping[str, Any], kind: str) -> str | None:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def is_crashed(pod: Mapping[str, Any]) -> bool:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if (status.get("state", {}).get("waiting") or {}).get("reason") == CRASH_REASON:
            return True
    return False


def annotation(pod: Mapping[str, Any], key: str) -> str | None:
    value = (pod.get("metadata", {}).get("annotations") or {}).get(key)
    return None if value is None else str(value)


def pod_action(pod: Mapping[str, Any], node: str) -> PodAction:
    """The next step for a pod as a kubelet on `node` sees it (pure)."""
    meta = pod.get("metadata", {})
    bound_to = pod.get("spec", {}).get("nodeName")
    if bound_to and bound_to != node:
        return PodAction.IGNORE
    if meta.get("deletionTimestamp"):
        return PodAction.FINALIZE
    if not bound_to:
        return PodAction.BIND
    if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") or is_crashed(pod):
        return PodAction.IGNORE
    if status_images(pod) != spec_images(pod):
        return PodAction.START
    if annotation(pod, NEVER_READY) == "true":
        return (
            PodAction.IGNORE
            if condition(pod, "Ready") == "False" and _running(pod)
            else (PodAction.HOLD_UNREADY)
        )
    if condition(pod, "Ready") != "True":
        return PodAction.AWAIT_READY
    return PodAction.IGNORE


def _running(pod: Mapping[str, Any]) -> bool:
    return bool(pod.get("status", {}).get("phase") == "Running")


def _conditions(ready: bool, now: str) -> list[dict[str, str]]:
    flag = "True" if ready else "False"
    return [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
        {"type": "Ready", "status": flag, "lastTransitionTime": now},
    ]


def status_patch(pod: Mapping[str, Any], state: str, now: str) -> dict[str, Any]:
    """The pod status a kubelet would report in `state` (starting, running, unready, crashed)."""
    images = spec_images(pod)
    previous = {c["name"]: c for c in pod.get("status", {}).get("containerStatuses") or []}
    containers = []
    for name, image in images.items():
        restarts = int(previous.get(name, {}).get("restartCount", 0))
        entry: dict[str, Any] = {
            "name": name,
            "image": image,
            "imageID": f"sim://{image}",
            "restartCount": restarts,
            "ready": state == "running",
            "started": state in ("running", "unready"),
        }
        if state == "starting":
            entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif state == "crashed":
            entry["restartCount"] = restarts + 1
            entry["state"] = {"waiting": {"reason": CRASH_REASON, "message": "simulated crash"}}
            entry["lastState"] = {
                "terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now}
            }
        else:
            entry["state"] = {"running": {"startedAt": now}}
        containers.append(entry)
    started = pod.get("status", {}).get("startTime") or now
    phase = "Pending" if state == "starting" and not _running(pod) else "Running"
    return {
        "status": {
            "phase": phase,
            "hostIP": POD_IP,
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": started,
            "conditions": _conditions(state == "running", now),
            "containerStatuses": containers,
        }
    }
