"""What the controller shows users: a refused plan as rolloutFailed + Warning, and `status`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.fixtures.apps import api_application, manifest
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually
from tests.fixtures.views import wait_settled
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster


def test_a_plan_that_does_not_add_up_fails_with_a_warning_and_touches_no_workload(
    controller_process: ControllerProcess, kubectl: Any, bypassed_namespace: str,
) -> None:
    namespace = bypassed_namespace
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [3, 3])))
    wait_settled(kubectl, namespace, 1)
    before = json.loads(kubectl("get", "deploy", "-n", namespace, "-o", "json").stdout)
    # Scaling 6 -> 3 in batches adding up to 1: the webhook would deny it; here nothing
    # admits the Application, so the controller's verification is the guard.
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [1], size=3)))
    status = eventually(
        lambda: json.loads(kubectl("get", "rollout", "api", "-n", namespace, "-o",
                                   "json").stdout).get("status") or {},
        until=lambda seen: seen.get("rollingState") == "rolloutFailed", timeout=30,
        what="a failed rollout of api", context=controller_process.tail)
    verified = [c for c in status["conditions"] if c["type"] == "SpecVerified"]
    assert [(c["status"], c["reason"]) for c in verified] == [("False", "VerificationFailed")]
    assert "add up to 1" in verified[0]["message"]
    events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json",
                                "--field-selector",
                                "involvedObject.name=api,reason=VerificationFailed").stdout)
    assert [e["type"] for e in events["items"]] == ["Warning"]
    after = json.loads(kubectl("get", "deploy", "-n", namespace, "-o", "json").stdout)

    def shape(listing: dict[str, Any]) -> list[tuple[str, int, str]]:
        return [(d["metadata"]["name"], d["spec"]["replicas"], d["metadata"]["resourceVersion"])
                for d in listing["items"]]

    assert shape(after) == shape(before)
    spec = json.loads(kubectl("get", "rollout", "api", "-n", namespace, "-o",
                              "json").stdout)["spec"]
    assert spec["rolloutPlan"] == {"targetSize": 3, "rolloutBatches": [{"replicas": 1}]}


def test_status_prints_each_batch_of_a_held_rollout(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [3, 3])))
    wait_settled(kubectl, namespace, 1)
    held = api_application(2, [2, 4], batchPartition=0)
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(held))
    argv = [sys.executable, "-m", "webhook", "status", "resilient", "-n", namespace,
            "--kubeconfig", str(cluster.kubeconfig)]
    expected = [
        "  api  (webservice)  healthy true",
        "    revision api-v2 (from api-v1)  target api-v2",
        "    rollingInBatches / batchReady  batch 0  replicas 6 -> 6  upgraded 2  ready 2",
        "    batch 0  [####################]  2/2  ready",
        "    batch 1  [....................]  0/4  held by batchPartition 0",
    ]
    eventually(lambda: subprocess.run(argv, capture_output=True, text=True,
                                      check=True).stdout.splitlines()[2:],
               equals=expected, timeout=30, interval=0.3, what="oam-rollout status")


def test_status_of_a_missing_application_is_one_clear_line(
    cluster: LocalCluster, namespace: str,
) -> None:
    argv = [sys.executable, "-m", "webhook", "status", "nope", "-n", namespace,
            "--kubeconfig", str(cluster.kubeconfig)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    # 4: not found (0 succeeded, 1 failed, 2 usage or API error, 3 timed out).
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == (f"oam-rollout status: application 'nope' not found in "
                             f"namespace '{namespace}'\n")


def test_status_watch_redraws_as_the_upgrade_moves_and_stops_on_ctrl_c(
    cluster: LocalCluster, webhook_server: Any, controller_process: ControllerProcess,
    kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [3, 3])))
    wait_settled(kubectl, namespace, 1)
    argv = [sys.executable, "-m", "webhook", "status", "resilient", "-n", namespace,
            "--kubeconfig", str(cluster.kubeconfig), "--watch"]
    watcher = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # its first frame and its watches
        kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(2, [2, 2, 2])))
        wait_settled(kubectl, namespace, 2)
        time.sleep(1.0)
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=10)
    frames = [f.strip() for f in out.split("---") if f.strip()]
    states = [next(line.split(" / ")[0].strip() for line in frame.splitlines()
                   if " / " in line) for frame in frames]
    assert watcher.returncode == 0, err
    assert states[0] == "rolloutSucceed" and states[-1] == "rolloutSucceed"
    assert "rollingInBatches" in states  # it drew the upgrade while it ran
    assert "revision api-v2 (from api-v1)" in frames[-1]
