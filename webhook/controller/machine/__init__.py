"""The rollout state machine: ``decide(observed) -> Decision``, every transition in one table.

A package of four layers, each importing only the ones before it (an import-linter
contract): ``values`` (the plain values a decision looks at and the actions it asks for),
``facts`` (predicates and goals over those values, verification included), ``effects``
(what taking a row does) and ``table`` (the transition table, the precedence between its
rows, and decide()). This module re-exports what the controller's other modules use, so
they need not know the split. It must not hold code of its own.
"""

from webhook.controller.machine.facts import (
    PLAN_PATH,
    TARGET_PATH,
    expected_sum,
    parse_time,
    prospective_run,
    verification_errors,
    waiting_on_batch,
    waiting_on_cluster,
)
from webhook.controller.machine.table import PRECEDENCE, TRANSITIONS, Transition, decide, refuse
from webhook.controller.machine.values import (
    CONDITION_COMPLETE,
    CONDITION_PAUSED,
    CONDITION_PROGRESSING,
    CONDITION_VERIFIED,
    REASON_API_REFUSED,
    REASON_DEADLINE,
    REASON_OWNERSHIP,
    Action,
    Condition,
    CreateWorkload,
    Decision,
    DeleteWorkload,
    EmitEvent,
    Observed,
    Plan,
    Progress,
    RetemplateWorkload,
    Run,
    RunMode,
    ScaleWorkload,
    SetPartition,
    UpdateStatus,
    Workload,
    WorkloadAction,
    WorkloadKind,
)

__all__ = [
    "CONDITION_COMPLETE",
    "CONDITION_PAUSED",
    "CONDITION_PROGRESSING",
    "CONDITION_VERIFIED",
    "PLAN_PATH",
    "PRECEDENCE",
    "REASON_API_REFUSED",
    "REASON_DEADLINE",
    "REASON_OWNERSHIP",
    "TARGET_PATH",
    "TRANSITIONS",
    "Action",
    "Condition",
    "CreateWorkload",
    "Decision",
    "DeleteWorkload",
    "EmitEvent",
    "Observed",
    "Plan",
    "Progress",
    "RetemplateWorkload",
    "Run",
    "RunMode",
    "ScaleWorkload",
    "SetPartition",
    "Transition",
    "UpdateStatus",
    "Workload",
    "WorkloadAction",
    "WorkloadKind",
    "decide",
    "expected_sum",
    "parse_time",
    "prospective_run",
    "refuse",
    "verification_errors",
    "waiting_on_batch",
    "waiting_on_cluster",
]
