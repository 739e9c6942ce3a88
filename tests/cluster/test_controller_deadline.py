"""A batch whose pods never get Ready fails the rollout at the progress deadline.

The session controller hands its Lease to one started with ``--progress-deadline 3`` for
this test, and takes it back afterwards. The product's pod templates carry no pod
annotations (components only pass image, command, env, ports and resources through), so
the broken release is stood in for by the target revision's Deployment created ahead of
the upgrade with the simulated kubelet's never-ready annotation on its pod template. The
controller creates the target by server-side apply, which adopts the existing object and
leaves fields it does not manage in place: what it rolls is exactly a revision whose pods
start but never get Ready. An operator sees such a failure in the controller's /metrics
(the per-Rollout series), on the Application (`kubectl describe app`) and in its JSON log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.apps import api_application, manifest, never_ready_deployment
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually
from tests.fixtures.views import wait_settled
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

DEADLINE = 6


@pytest.fixture
def deadline_controller(cluster: LocalCluster,
                        controller_process: ControllerProcess) -> Iterator[ControllerProcess]:
    """The session controller swapped for one with a short progress deadline."""
    controller_process.stop()  # SIGTERM: it hands the Lease back at once
    short = ControllerProcess(cluster.kubeconfig, "deadline-controller",
                              extra_args=("--progress-deadline", str(DEADLINE)))
    try:
        short.start()
        yield short
    finally:
        short.cleanup()
        controller_process.start()


def get(kubectl: Any, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def workloads(kubectl: Any, namespace: str) -> dict[str, tuple[int, int]]:
    """Deployment name -> (spec.replicas, metadata.generation): what a write would change."""
    return {d["metadata"]["name"]: (d["spec"]["replicas"], d["metadata"]["generation"])
            for d in get(kubectl, "deploy", "-n", namespace)["items"]}


def test_a_batch_never_ready_fails_at_the_deadline_touches_nothing_and_a_new_spec_recovers(
    cluster: LocalCluster, deadline_controller: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [3, 3])))
    wait_settled(kubectl, namespace, 1)
    kubectl("apply", "-f", "-", input=json.dumps(never_ready_deployment(namespace, "api-v2")))
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(2, [3, 3])))
    began = time.monotonic()
    rollout = eventually(lambda: get(kubectl, "rollout", "api", "-n", namespace),
                         until=lambda r: (r.get("status") or {}).get("rollingState")
                         == "rolloutFailed", timeout=60, what="a failed rollout of api")
    took = time.monotonic() - began
    status = rollout["status"]
    progressing = [c for c in status["conditions"] if c["type"] == "Progressing"]
    message = ("batch 0 (3 replicas, 1 of 2) not Ready within the progress deadline of 6s: "
               "0/3 pods of api-v2 Ready")
    assert [(c["status"], c["reason"], c["message"]) for c in progressing] == [
        ("False", "ProgressDeadlineExceeded", message)]
    assert (status["batchRollingState"], status["currentBatch"],
            status["progressDeadlineSeconds"]) == ("batchInRolling", 0, DEADLINE)
    assert DEADLINE < took < DEADLINE + 15  # never early; late by a reconcile at most
    # No automatic rollback: the old pods keep serving, the new ones stay where they were.
    failed_at = workloads(kubectl, namespace)
    assert {k: v[0] for k, v in failed_at.items()} == {"api-v1": 6, "api-v2": 3}
    events = get(kubectl, "events", "-n", namespace,
                 "--field-selector", "involvedObject.name=api,reason=ProgressDeadlineExceeded")
    assert [(e["type"], e["message"]) for e in events["items"]] == [("Warning", message)]

    # The Application says why, in `kubectl get app` and in its Ready condition.
    row = eventually(
        lambda: kubectl("get", "app", "resilient", "-n", namespace, "--no-headers").stdout.split(),
        # The Application's pass follows the Rollout's (a burst of writes later): until
        # its row carries the failure, not the batch still rolling before it.
        until=lambda cells: "failed" in cells, timeout=30, what="an app row with the failure")
    assert row[:5] == ["resilient", "api", "webservice", "running", "false"]
    assert " ".join(row[5:-1]) == f"rollout failed (ProgressDeadlineExceeded): {message}"
    ready = next(c for c in get(kubectl, "app", "resilient", "-n", namespace)["status"][
        "conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "ProgressDeadlineExceeded", f"rollout of api failed: {message}")

    # `oam-rollout status` shows the failed batch and the reason.
    out = subprocess.run([sys.executable, "-m", "webhook", "status", "resilient", "-n",
                          namespace, "--kubeconfig", str(cluster.kubeconfig)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[5:] == [
        "    batch 0  [....................]  0/3  failed: not Ready within the progress deadline",
        "    batch 1  [....................]  0/3  pending",
        f"    Progressing: ProgressDeadlineExceeded: {message}",
    ]
    time.sleep(1.5)  # the controller stays put: no write to any workload after the failure
    assert workloads(kubectl, namespace) == failed_at

    # A new spec generation (a fixed release) retries and finishes; the stuck pods go.
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(3, [3, 3])))
    wait_settled(kubectl, namespace, 3)
    rollout = get(kubectl, "rollout", "api", "-n", namespace)
    assert [c["type"] for c in rollout["status"]["conditions"]
            if c["type"] == "Progressing"] == []
    assert {k: v[0] for k, v in workloads(kubectl, namespace).items()} == {"api-v3": 6}


def rollout_series(controller: ControllerProcess,
                   namespace: str) -> dict[str, list[dict[str, Any]]]:
    """The per-Rollout samples of ``namespace`` on the controller's /metrics, by name:
    labels (without namespace) and value."""
    with urllib.request.urlopen(f"{controller.health_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found: dict[str, list[dict[str, Any]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name.startswith("oam_rollout_rollout_")
                    and sample.labels.get("namespace") == namespace):
                labels = {k: v for k, v in sample.labels.items() if k != "namespace"}
                found.setdefault(sample.name, []).append({**labels, "value": sample.value})
    return found


def test_a_rollout_failed_at_the_deadline_shows_in_metrics_on_the_application_and_in_the_log(
    deadline_controller: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [3, 3])))
    wait_settled(kubectl, namespace, 1)
    kubectl("apply", "-f", "-", input=json.dumps(never_ready_deployment(namespace, "api-v2")))
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(2, [3, 3])))
    series = eventually(lambda: rollout_series(deadline_controller, namespace),
                        until=lambda found: any(
                            s["rolling_state"] == "rolloutFailed"
                            for s in found.get("oam_rollout_rollout_info", [])),
                        timeout=60, what="a failed rollout on /metrics",
                        context=deadline_controller.tail)
    assert series == {
        "oam_rollout_rollout_info": [
            {"name": "api", "component": "api", "rolling_state": "rolloutFailed",
             "batch_state": "batchInRolling", "target_revision": "api-v2", "value": 1.0}],
        "oam_rollout_rollout_failure_info": [
            {"name": "api", "component": "api", "reason": "ProgressDeadlineExceeded",
             "value": 1.0}],
        "oam_rollout_rollout_current_batch": [{"name": "api", "value": 0.0}],
        "oam_rollout_rollout_upgraded_replicas": [{"name": "api", "value": 3.0}],
        "oam_rollout_rollout_ready_replicas": [{"name": "api", "value": 0.0}],
    }

    # The Warning is on the Application too, naming the component: `kubectl describe app`.
    message = ("batch 0 (3 replicas, 1 of 2) not Ready within the progress deadline of 6s: "
               "0/3 pods of api-v2 Ready")
    on_app = eventually(
        lambda: get(kubectl, "events", "-n", namespace, "--field-selector",
                    "involvedObject.kind=Application,involvedObject.name=resilient,"
                    "reason=ProgressDeadlineExceeded")["items"],
        timeout=10, what="the Warning on the Application")
    assert [(e["type"], e["message"]) for e in on_app] == [
        ("Warning", f"component api: {message}")]
    described = kubectl("describe", "app", "resilient", "-n", namespace).stdout.splitlines()
    assert [line.split()[:2] for line in described
            if line.endswith(f"component api: {message}")] == [
        ["Warning", "ProgressDeadlineExceeded"]]

    # Every line of its log is one JSON object; those about this rollout name it.
    entries = [json.loads(line) for line in deadline_controller.log().splitlines()]
    about = [e for e in entries if e.get("namespace") == namespace]
    assert [e for e in about if not (e.get("app") == "resilient" or e.get("component") == "api")
            or not {"ts", "level", "logger", "msg"} <= set(e)] == []
    failed = [e for e in about if "progress-deadline" in e["msg"]]
    assert [(e["level"], e["app"], e["component"]) for e in failed] == [
        ("info", "resilient", "api")]
