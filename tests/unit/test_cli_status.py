"""`oam-rollout status`: the verdict --wait exits on, the -o json|yaml document, the flags."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import application, application_of, component_fields
from webhook.cli import build_parser
from webhook.cli.status import duration, render
from webhook.controller.summary import (
    FAILED,
    PROGRESSING,
    SUCCEEDED,
    application_document,
    application_verdict,
    rollout_verdict,
)

NAME = "express-server"


def rollout(state: str = "rolloutSucceed", *, generation: int = 2, observed: int = 2,
            spec_target: str = "express-server-v2", run_target: str = "express-server-v2",
            spec_size: int = 5, run_size: int = 5, batch: int = 1,
            partition: int | None = None) -> dict[str, Any]:
    """A Rollout whose spec asks for ``spec_*`` and whose status reports a run of ``run_*``."""
    plan: dict[str, Any] = {"targetSize": spec_size,
                            "rolloutBatches": [{"replicas": 2}, {"replicas": 3}]}
    if partition is not None:
        plan["batchPartition"] = partition
    return {
        "metadata": {"name": NAME, "generation": generation},
        "spec": {"componentName": NAME, "targetRevisionName": spec_target, "rolloutPlan": plan},
        "status": {"rollingState": state, "batchRollingState": "batchReady",
                   "currentBatch": batch, "lastTargetRevision": run_target,
                   "lastSourceRevision": "express-server-v1", "rolloutTargetSize": run_size,
                   "rolloutOriginalSize": 5, "upgradedReplicas": 5, "upgradedReadyReplicas": 5,
                   "observedGeneration": observed},
    }


def app(generation: int = 3, observed: int = 3, **overrides: Any) -> dict[str, Any]:
    out = application(**overrides)
    out["metadata"].update(namespace="default", generation=generation)
    out["status"] = {"observedGeneration": observed, "status": "running",
                     "services": [{"name": NAME, "healthy": True}]}
    return out


@pytest.mark.parametrize(
    ("live", "verdict"),
    [
        (rollout(), SUCCEEDED),
        (rollout("rolloutFailed"), FAILED),
        (rollout("rollingInBatches"), PROGRESSING),
        (rollout("rollingInBatches", batch=0, partition=0), PROGRESSING),  # held: keeps waiting
        # The status still describes the run before the spec changed: not this run's verdict.
        (rollout(generation=3, observed=2), PROGRESSING),
        (rollout("rolloutFailed", generation=3, observed=2), PROGRESSING),
        (rollout(run_target="express-server-v1"), PROGRESSING),
        (rollout(run_size=3), PROGRESSING),
        (None, PROGRESSING),  # no Rollout yet
    ],
)
def test_a_rollout_is_judged_only_on_a_status_of_its_current_spec(
    live: dict[str, Any] | None, verdict: str,
) -> None:
    assert rollout_verdict(live) == verdict


@pytest.mark.parametrize(
    ("generation", "observed", "live", "verdict"),
    [
        (3, 3, {NAME: rollout()}, SUCCEEDED),
        (3, 3, {NAME: rollout("rolloutFailed")}, FAILED),
        # Applied but not yet acted on: the Rollout's succeed is the previous run's.
        (4, 3, {NAME: rollout()}, PROGRESSING),
        (3, 3, {}, PROGRESSING),
    ],
)
def test_an_application_succeeds_once_the_controller_acted_on_its_spec_and_every_rollout_did(
    generation: int, observed: int, live: dict[str, dict[str, Any]], verdict: str,
) -> None:
    assert application_verdict(app(generation, observed), live) == verdict


def test_a_failed_rollout_fails_the_application_whatever_the_others_do() -> None:
    two = application_of(component_fields(name="a"), component_fields(name="b"))
    two["metadata"].update(generation=1)
    two["status"] = {"observedGeneration": 1}
    failed, rolling = rollout("rolloutFailed"), rollout("rollingInBatches")
    assert application_verdict(two, {"a": rolling, "b": failed}) == FAILED
    assert application_verdict(two, {"a": rollout(), "b": rolling}) == PROGRESSING


@pytest.mark.parametrize(("healthy", "verdict"), [(True, SUCCEEDED), (False, PROGRESSING)])
def test_components_without_a_rollout_count_by_their_health(healthy: bool, verdict: str) -> None:
    plain = app(rollout=None)
    plain["status"]["services"] = [{"name": NAME, "healthy": healthy}]
    assert application_verdict(plain, {}) == verdict


@pytest.mark.parametrize(
    ("services", "verdict"),
    [
        ([{"name": NAME, "healthy": True}], SUCCEEDED),
        # The Rollout finished; the Application's status has not caught up yet.
        ([{"name": NAME, "healthy": False, "message": "rollingInBatches batch 1"}], PROGRESSING),
        ([], PROGRESSING),
    ],
)
def test_a_finished_rollout_succeeds_once_the_application_reports_it_healthy(
    services: list[dict[str, Any]], verdict: str,
) -> None:
    caught_up = app()
    caught_up["status"]["services"] = services
    assert application_verdict(caught_up, {NAME: rollout()}) == verdict


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_the_document_parses_and_carries_the_verdict_and_each_batch(output: str) -> None:
    text = render([(app(), {NAME: rollout()})], output, single=True)
    doc = json.loads(text) if output == "json" else yaml.safe_load(text)
    assert doc == application_document(app(), {NAME: rollout()})
    assert (doc["name"], doc["verdict"]) == ("rollout-trait-test", SUCCEEDED)
    assert doc["components"][0]["rollout"]["batches"] == [{"replicas": 2, "done": 2},
                                                          {"replicas": 3, "done": 3}]
    listed = json.loads(render([(app(), {})], "json", single=False))
    assert [(d["name"], d["components"][0]["rollout"]) for d in listed["items"]] == [
        ("rollout-trait-test", None)]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("1.5s", 1.5), ("0", 0.0)],
)
def test_a_timeout_reads_as_kubectl_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "-1s", "m"])
def test_a_timeout_that_is_no_duration_is_a_usage_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a duration"):
        duration(text)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status", "app"], {"app": "app", "namespace": None, "wait": False, "timeout": 0.0,
                             "output": "table", "all_namespaces": False}),
        (["status", "app", "--wait", "--timeout", "2m", "-o", "json", "-n", "prod"],
         {"wait": True, "timeout": 120.0, "output": "json", "namespace": "prod"}),
        (["status", "-A", "--context", "ci"], {"app": None, "all_namespaces": True,
                                               "context": "ci"}),
    ],
)
def test_status_parses_its_flags(argv: list[str], expected: dict[str, Any]) -> None:
    args = vars(build_parser().parse_args(argv))
    assert {k: args[k] for k in expected} == expected


def test_watch_and_wait_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["status", "app", "--watch", "--wait"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
