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
)
from webhook.controller.machine.table import PRECEDENCE, TRANSITIONS, Transition, decide
from webhook.controller.machine.values import (
    CONDITION_COMPLETE,
    CONDITION_PROGRESSING,
    CONDITION_VERIFIED,
    REASON_DEADLINE,
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
    "CONDITION_PROGRESSING",
    "CONDITION_VERIFIED",
    "PLAN_PATH",
    "PRECEDENCE",
    "REASON_DEADLINE",
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
    "verification_errors",
    "waiting_on_batch",
]
