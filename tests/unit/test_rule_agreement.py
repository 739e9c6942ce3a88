"""One corpus, three judges: the webhook, the `validate` CLI and the controller's re-verification.

Every case is an Application and what is live (ControllerRevisions and Rollouts, rendered
by the product's own templates). The webhook judges the Application (webhook.admission
.judge, and the AdmissionReview answer built from it), the CLI judges the same files, and
the controller verifies the Rollout it would apply for each component, against the status
the live Rollout carries. For the rollout rules they share (batch sums, the batchPartition
range, targetSize and its int32 bound, an unknown target revision, where a run starts when
a change meets a run in flight, a CloneSet upgrade that keeps its size) all three give the
same FieldErrors: the same type and detail at the same field under their own base path
(the trait's properties, the Rollout's spec.rolloutPlan); the webhook and the CLI also give
the same warnings.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import V2_IMAGE, application, application_of, component_fields, parsed
from tests.fixtures.apps import plan as trait_plan
from tests.fixtures.webhook import admission_review
from webhook.admission.judge import judge, review
from webhook.cli import main
from webhook.controller.machine import (
    CONDITION_VERIFIED,
    PLAN_PATH,
    TARGET_PATH,
    Observed,
    Workload,
    decide,
    verification_errors,
)
from webhook.controller.views import kind_of, plan_from, progress_from
from webhook.core.errors import ErrorType, FieldError
from webhook.core.labels import ROLLOUT_FAILED, ROLLOUT_KIND
from webhook.core.objects import name_of, observed_state_from
from webhook.core.paths import FieldPath
from webhook.core.revisions import resolve_revisions, target_revision_name
from webhook.core.state import ObservedState
from webhook.render.renderer import Renderer

NAMESPACE = "default"
UID = "5f0c2a8e-0000-4000-8000-000000000001"
RENDERER = Renderer()
V2 = {"external_revision": "express-server-v2", "image": V2_IMAGE}


def app(**overrides: Any) -> dict[str, Any]:
    """The spec's first Application (component express-server, external revision v1)."""
    return application(namespace=NAMESPACE, uid=UID, **overrides)


def live(*history: Mapping[str, Any], size: int) -> list[dict[str, Any]]:
    """What the controller leaves once each Application of ``history`` was rolled in turn,
    the last one settled at ``size`` replicas: every revision, and each component's Rollout."""
    docs: list[dict[str, Any]] = []
    state = ObservedState(namespace=NAMESPACE)
    rollouts: dict[str, dict[str, Any]] = {}
    for raw in history:
        model = parsed(raw)
        resolved, errors = resolve_revisions(model, state)
        assert errors == []
        for component in model.components:
            rev = resolved[component.name]
            if state.revision_named(rev.name) is None:
                docs.append(RENDERER.render_revision(model, component, rev))
            rollout = RENDERER.render_rollout(model, component, rev.name)
            rollout["status"] = {
                "rollingState": "rolloutSucceed", "batchRollingState": "batchReady",
                "currentBatch": 0, "lastTargetRevision": rev.name, "rolloutTargetSize": size,
                "rolloutOriginalSize": 0, "observedGeneration": 1,
                "conditions": [{"type": "RolloutComplete", "status": "True",
                                "reason": "Succeeded"}],
            }
            rollouts[component.name] = rollout
        state = observed(docs, model.name)
    return docs + list(rollouts.values())


def parked(docs: Sequence[Mapping[str, Any]], *, source: str, size: int,
           original: int) -> list[dict[str, Any]]:
    """``docs`` with the Rollout held after batch 0 of a run from ``source`` to the revision
    it aims at (batchPartition 0), as the controller leaves it."""
    out = [copy.deepcopy(dict(d)) for d in docs]
    for doc in out:
        if doc.get("kind") == ROLLOUT_KIND:
            doc["status"] = {
                "rollingState": "rollingInBatches", "batchRollingState": "batchReady",
                "currentBatch": 0, "lastTargetRevision": doc["spec"]["targetRevisionName"],
                "lastSourceRevision": source, "rolloutTargetSize": size,
                "rolloutOriginalSize": original, "observedGeneration": 2,
                "conditions": [{"type": "RolloutComplete", "status": "False",
                                "reason": "Rolling"}],
            }
    return out


def observed(docs: Sequence[Mapping[str, Any]], app_name: str) -> ObservedState:
    """What the webhook reads for ``app_name`` (a list of each kind, reduced)."""
    revisions = [d for d in docs if d.get("kind") == "ControllerRevision"]
    rollouts = [d for d in docs if d.get("kind") == ROLLOUT_KIND]
    return observed_state_from(NAMESPACE, app_name, revisions, rollouts)


@dataclass(frozen=True)
class Case:
    application: dict[str, Any]
    live: list[dict[str, Any]]
    # The shared rules' verdict, per component: (field under the base path, type, detail).
    errors: list[tuple[str, ErrorType, str]]
    warnings: list[str] = field(default_factory=list)
    # What runs live, for the controller (the webhook never sees workloads).
    workloads: tuple[Workload, ...] = ()


P = "spec.components[0].traits[0].properties"
INVALID, REQUIRED, NOT_FOUND = ErrorType.INVALID, ErrorType.REQUIRED, ErrorType.NOT_FOUND
FORBIDDEN = ErrorType.FORBIDDEN
V1_AT_5 = live(app(), size=5)
V1_AT_7 = live(app(rollout=trait_plan(7, 2, 5)), size=7)
ON_V2 = live(app(), app(**V2), size=5)
# The spec's upgrade held after its first batch (batchPartition 0).
MID_UPGRADE = parked(live(app(), app(**V2), size=5), source="express-server-v1", size=5,
                     original=5)
MID_UPGRADE_WORKLOADS = (Workload("express-server-v1", "express-server-v1", 3, 3, 3),
                         Workload("express-server-v2", "express-server-v2", 2, 2, 2))
CLONESET = {"type": "cloneset"}
CLONESET_V1_AT_5 = live(app(**CLONESET), size=5)
CLONESET_AT_5 = (Workload("express-server", "express-server-v1", 5, 5, 5, 5, 5, 0),)
INT32_MAX = 2**31 - 1
PARTITION_DETAIL = ("must be less than or equal to 1 (the index of the last of 2"
                    " rolloutBatches)")
CORPUS = {
    "a first deploy whose batches add up": Case(app(), [], []),
    "a first deploy whose batches do not add up": Case(
        app(rollout=trait_plan(5, 2, 2)), [],
        [("rolloutBatches", INVALID,
          "batch replicas add up to 4; they must add up to targetSize 5")]),
    "an upgrade whose batches do not add up": Case(
        app(rollout=trait_plan(5, 1, 1), **V2), V1_AT_5,
        [("rolloutBatches", INVALID,
          "batch replicas add up to 2; they must add up to targetSize 5")]),
    "a scale out whose batches add up to the increase": Case(
        app(rollout=trait_plan(7, 1, 1)), V1_AT_5, []),
    "a scale out whose batches add up to the new size": Case(
        app(rollout=trait_plan(7, 4, 3)), V1_AT_5,
        [("rolloutBatches", INVALID,
          "batch replicas add up to 7; scaling from 5 to 7 needs them to add up to 2")]),
    "a scale in whose batches do not add up to the decrease": Case(
        app(rollout=trait_plan(3, 1, 1)), V1_AT_7,
        [("rolloutBatches", INVALID,
          "batch replicas add up to 2; scaling from 7 to 3 needs them to add up to 4")]),
    "a rollback whose batches do not add up": Case(
        app(rollout=trait_plan(5, 1, 1, targetRevision="express-server-v1"), **V2), ON_V2,
        [("rolloutBatches", INVALID,
          "batch replicas add up to 2; they must add up to targetSize 5")]),
    "a rollback whose batches add up": Case(
        app(rollout=trait_plan(5, 2, 3, targetRevision="express-server-v1"), **V2), ON_V2, []),
    "an unknown target revision": Case(
        app(rollout=trait_plan(5, 2, 3, targetRevision="express-server-v9")), V1_AT_5,
        [("targetRevision", NOT_FOUND,
          "component 'express-server' has revisions: express-server-v1")]),
    "a partition past the last batch": Case(
        app(rollout=trait_plan(5, 2, 3, batchPartition=2)), [],
        [("batchPartition", INVALID, PARTITION_DETAIL)]),
    "a negative partition": Case(
        app(rollout=trait_plan(5, 2, 3, batchPartition=-1)), [],
        [("batchPartition", INVALID, "must be greater than or equal to 0")]),
    "a negative target size and a negative partition": Case(
        app(rollout=trait_plan(-1, 2, 3, batchPartition=-1)), V1_AT_5,
        [("targetSize", INVALID, "must be greater than or equal to 0"),
         ("batchPartition", INVALID, "must be greater than or equal to 0")]),
    "no batches": Case(
        app(rollout={"targetSize": 5, "rolloutBatches": []}), [],
        [("rolloutBatches", REQUIRED, "must have at least one batch")]),
    "a target size of zero": Case(
        app(rollout=trait_plan(0, 1)), [],
        [("rolloutBatches", INVALID,
          "batch replicas add up to 1; they must add up to targetSize 0")],
        [f"{P}.targetSize: 0 scales component 'express-server' to zero replicas"]),
    "a new size mid-upgrade whose batches add up to the difference": Case(
        app(rollout=trait_plan(7, 1, 1), **V2), MID_UPGRADE,
        [("rolloutBatches", INVALID,
          "batch replicas add up to 2; they must add up to targetSize 7; the rollout to"
          " express-server-v2 has not finished, so this change rolls it again from"
          " express-server-v1")], workloads=MID_UPGRADE_WORKLOADS),
    "a new size mid-upgrade whose batches add up to the size": Case(
        app(rollout=trait_plan(7, 3, 4), **V2), MID_UPGRADE, [],
        workloads=MID_UPGRADE_WORKLOADS),
    "new batches for the upgrade in flight": Case(
        app(rollout=trait_plan(5, 1, 4), **V2), MID_UPGRADE, [],
        workloads=MID_UPGRADE_WORKLOADS),
    "new batches for the upgrade in flight that do not add up": Case(
        app(rollout=trait_plan(5, 1, 1), **V2), MID_UPGRADE,
        [("rolloutBatches", INVALID,
          "batch replicas add up to 2; they must add up to targetSize 5")],
        workloads=MID_UPGRADE_WORKLOADS),
    "a CloneSet upgrade": Case(app(**CLONESET, **V2), CLONESET_V1_AT_5, [],
                               workloads=CLONESET_AT_5),
    "a CloneSet upgrade with a new size": Case(
        app(**CLONESET, rollout=trait_plan(7, 3, 4), **V2), CLONESET_V1_AT_5,
        [("targetSize", FORBIDDEN,
          "a CloneSet is updated in place, so rolling it to express-server-v2 keeps its 5"
          " replicas: roll express-server-v2 at 5 first, then change targetSize to 7")],
        workloads=CLONESET_AT_5),
    "a CloneSet scale": Case(
        app(**CLONESET, rollout=trait_plan(7, 1, 1)), CLONESET_V1_AT_5, [],
        workloads=CLONESET_AT_5),
    "a target size past int32": Case(
        app(rollout=trait_plan(INT32_MAX + 1, INT32_MAX, 1)), [],
        [("targetSize", INVALID, f"must be less than or equal to {INT32_MAX}")]),
    "a batch past int32": Case(
        app(rollout=trait_plan(5, INT32_MAX + 1)), [],
        [("rolloutBatches[0].replicas", INVALID, f"must be less than or equal to {INT32_MAX}")]),
    "a target revision that repeats externalRevision": Case(
        app(rollout=trait_plan(5, 2, 3, targetRevision="express-server-v1")), V1_AT_5, [],
        [f"{P}.targetRevision: equals externalRevision; leaving it out has the same effect"]),
}


def relative(error: FieldError, base: FieldPath) -> tuple[str, ErrorType, str]:
    """The error as (field under ``base``, type, detail); a target revision's field is
    named targetRevision on both sides (a Rollout calls it spec.targetRevisionName)."""
    if error.path == TARGET_PATH:
        return "targetRevision", error.type, error.detail
    assert error.path.parts[: len(base.parts)] == base.parts, error
    return str(FieldPath(error.path.parts[len(base.parts):])), error.type, error.detail


def trait_path(index: int) -> FieldPath:
    return FieldPath.root("spec", "components").index(index).child("traits").index(0).child(
        "properties")


def webhook_verdict(case: Case) -> tuple[list[FieldError], list[str]]:
    """The validating webhook's judge; its AdmissionReview answer must say the same."""
    model_name = case.application["metadata"]["name"]

    def read_state(namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
        assert (namespace, name) == (NAMESPACE, model_name)
        return observed(case.live, name)

    verdict = judge(case.application, lambda a, rollouts: read_state(NAMESPACE, a.name),
                    RENDERER)
    answer = review(admission_review(case.application, namespace=NAMESPACE), "validate",
                    read_state, RENDERER)["response"]
    causes = ((answer.get("status") or {}).get("details") or {}).get("causes", [])
    assert causes == [e.as_cause() for e in verdict.errors]
    assert answer.get("warnings", []) == verdict.warnings
    return verdict.errors, verdict.warnings


def cli_lines(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What `oam-rollout validate -f APP --revisions LIVE` prints on stderr."""
    app_file = tmp_path / "app.yaml"
    app_file.write_text(yaml.safe_dump(case.application))
    argv = ["validate", "-f", str(app_file)]
    if case.live:
        live_file = tmp_path / "live.yaml"
        live_file.write_text(yaml.safe_dump_all(case.live))
        argv += ["--revisions", str(live_file)]
    code = main(argv)
    out, err = capsys.readouterr()
    assert (code, out) == ((1, "") if case.errors else (0, "valid\n"))
    return err.splitlines()


def controller_verdicts(case: Case) -> list[list[FieldError]]:
    """For each component, the verification of the Rollout the controller would apply,
    against the status its live Rollout carries; the condition a failure writes quotes it."""
    model = parsed(case.application)
    state = observed(case.live, model.name)
    resolved, errors = resolve_revisions(model, state)
    assert errors == []
    verdicts = []
    for component in model.components:
        rev = resolved[component.name]
        rollout = RENDERER.render_rollout(model, component, target_revision_name(component, rev))
        status = next((d.get("status") or {} for d in case.live
                       if d.get("kind") == ROLLOUT_KIND and name_of(d) == component.name), {})
        plan = plan_from(rollout, kind_of(component.type))
        # The Application's reconcile creates its revision before it applies the Rollout.
        names = tuple(sorted({r.name for r in state.revisions_of(component.name)} | {rev.name}))
        known = plan.target_revision in names
        progress = progress_from(status)
        obs = Observed(plan, progress, case.workloads, target_known=known,
                       known_revisions=() if known else names)
        found = verification_errors(obs, progress)
        decision = decide(obs)
        if found:
            condition = decision.progress.condition(CONDITION_VERIFIED)
            assert decision.progress.rolling_state == ROLLOUT_FAILED
            assert condition is not None
            assert condition.message == "; ".join(str(e) for e in found)
        else:
            assert decision.progress.rolling_state != ROLLOUT_FAILED
        verdicts.append(found)
    return verdicts


@pytest.mark.parametrize("name", list(CORPUS))
def test_the_webhook_the_cli_and_the_controller_agree_on_the_rollout_rules(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CORPUS[name]
    errors, warnings = webhook_verdict(case)
    assert [relative(e, trait_path(0)) for e in errors] == case.errors
    assert warnings == case.warnings
    assert cli_lines(case, tmp_path, capsys) == (
        [f"Warning: {w}" for w in warnings] + [str(e) for e in errors])
    (verdict,) = controller_verdicts(case)
    assert [relative(e, PLAN_PATH) for e in verdict] == case.errors


def test_each_component_is_judged_on_its_own_by_all_three(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = component_fields(name="web", externalRevision=None)
    short = component_fields(name="api", externalRevision=None,
                             traits=[{"type": "rollout", "properties": trait_plan(4, 1, 1)}])
    case = Case(application_of(good, short, namespace=NAMESPACE, uid=UID), [], [])
    errors, _ = webhook_verdict(case)
    expected = [("rolloutBatches", INVALID,
                 "batch replicas add up to 2; they must add up to targetSize 4")]
    assert [relative(e, trait_path(1)) for e in errors] == expected
    assert cli_lines(Case(case.application, [], expected), tmp_path, capsys) == [
        str(e) for e in errors]
    assert [[relative(e, PLAN_PATH) for e in v] for v in controller_verdicts(case)] == [
        [], expected]


def test_a_batch_of_no_replicas_is_refused_in_an_application_and_accepted_in_a_rollout() -> None:
    # The one range the two sides apply differently, on purpose: the controller plans a
    # run that moves nothing (abandoning a scale at the size already live) as a batch of 0.
    case = Case(app(rollout=trait_plan(5, 0, 5)), [], [])
    errors, _ = webhook_verdict(case)
    assert [relative(e, trait_path(0)) for e in errors] == [
        ("rolloutBatches[0].replicas", INVALID, "must be greater than 0")]
    assert controller_verdicts(case) == [[]]


def test_a_new_size_for_a_scale_in_flight_is_refused_by_the_webhook_the_controller_counts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Held mid-scale of v1 from 5 to 9 ([2, 2]); the change asks for 8. The controller
    # would start a scale from the 7 pods it counts; the webhook cannot count them, so it
    # refuses rather than admit a plan it cannot check (and says how to go on).
    scaling = parked(live(app(rollout=trait_plan(9, 2, 2)), size=9), source="express-server-v1",
                     size=9, original=5)
    detail = ("the scale of express-server-v1 to 9 replicas has not finished"
              " (rollingInBatches), so the size a new scale would start from is not known:"
              " keep targetSize 9 until it has (remove batchPartition to let it finish)")
    case = Case(app(rollout=trait_plan(8, 1)), scaling, [("targetSize", FORBIDDEN, detail)],
                workloads=(Workload("express-server-v1", "express-server-v1", 7, 7, 7),))
    errors, _ = webhook_verdict(case)
    assert [relative(e, trait_path(0)) for e in errors] == case.errors
    assert cli_lines(case, tmp_path, capsys) == [str(e) for e in errors]
    assert controller_verdicts(case) == [[]]
    counted_wrong = Case(case.application, scaling, [], workloads=(
        Workload("express-server-v1", "express-server-v1", 5, 5, 5),))
    assert [[relative(e, PLAN_PATH) for e in v] for v in controller_verdicts(counted_wrong)] == [
        [("rolloutBatches", INVALID,
          "batch replicas add up to 1; scaling from 5 to 8 needs them to add up to 3")]]
