"""`oam-rollout status` on the local control plane, logged in through an exec credential plugin.

Every command here, and the controller that rolls the Applications, logs in with a
kubeconfig whose user is an exec plugin (tests.fixtures.cli.ExecLogin); the CLI is given
no -n, so the kubeconfig context's namespace is the one it reads. The controller runs with
a short progress deadline so that a failed rollout comes quickly; the broken release is the
target Deployment created ahead with the simulated kubelet's never-ready pod annotation
(as in test_controller_deadline.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import api_application, manifest, never_ready_deployment
from tests.fixtures.cli import ExecLogin, as_json, exec_controller, oam_rollout
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually
from tests.fixtures.views import rollout_state, wait_settled
from webhook.localcluster.cluster import LocalCluster
from webhook.localcluster.tools import kubectl_path

pytestmark = pytest.mark.cluster

DEADLINE = 5


@pytest.fixture(scope="module")
def login(cluster: LocalCluster) -> Iterator[ExecLogin]:
    with tempfile.TemporaryDirectory(prefix="oam-rollout-cli-status-") as workdir:
        yield ExecLogin(cluster, Path(workdir))


@pytest.fixture(scope="module")
def controller(login: ExecLogin, controller_process: ControllerProcess,
               ) -> Iterator[ControllerProcess]:
    with exec_controller(login, controller_process,
                         ("--progress-deadline", str(DEADLINE))) as running:
        yield running


def test_wait_exits_0_once_rolled_out_reading_the_contexts_namespace_through_the_plugin(
    login: ExecLogin, controller: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    kubeconfig = login.kubeconfig("user.kubeconfig", namespace)
    runs = login.runs
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [3, 3])))
    done = oam_rollout(kubeconfig, "status", "resilient", "--wait", "--timeout", "150s",
                       "-o", "json")
    assert (done.returncode, done.stderr) == (0, "")
    doc = as_json(done)
    assert (doc["name"], doc["namespace"], doc["verdict"]) == ("resilient", namespace,
                                                               "succeeded")
    assert doc["components"] == [{
        "name": "api", "type": "webservice", "healthy": True, "message": None,
        "rollout": {
            "verdict": "succeeded", "targetRevision": "api-v1", "lastTargetRevision": "api-v1",
            "lastSourceRevision": None, "rollingState": "rolloutSucceed",
            "batchRollingState": "batchReady", "currentBatch": 1, "targetSize": 6,
            "originalSize": 0, "upgradedReplicas": 6, "upgradedReadyReplicas": 6,
            "batchPartition": None, "paused": False,
            "batches": [{"replicas": 3, "done": 3}, {"replicas": 3, "done": 3}],
            "conditions": doc["components"][0]["rollout"]["conditions"],
        },
    }]
    assert rollout_state(kubectl, namespace) == "rolloutSucceed/api-v1"
    assert login.runs > runs  # the plugin logged this command in

    table = oam_rollout(kubeconfig, "status", "resilient")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].startswith(f"Application resilient  namespace {namespace}")
    everywhere = oam_rollout(kubeconfig, "status", "-A", "-o", "yaml", "--context",
                             _context_of(kubeconfig))
    assert everywhere.returncode == 0
    assert f"namespace: {namespace}" in everywhere.stdout
    missing = oam_rollout(kubeconfig, "status", "nope")
    assert (missing.returncode, missing.stderr) == (
        4, f"oam-rollout status: application 'nope' not found in namespace {namespace!r}\n")
    # Without the context's namespace (-n elsewhere) it is not found there.
    elsewhere = oam_rollout(kubeconfig, "status", "resilient", "-n", "default")
    assert elsewhere.returncode == 4
    # The same as a kubectl plugin (the console script kubectl-oam_rollout on PATH).
    bin_dir = Path(sys.executable).parent
    plugin = subprocess.run(
        [str(kubectl_path()), "oam-rollout", "status", "resilient", "--wait", "-o", "json",
         "--kubeconfig", str(kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert (plugin.returncode, json.loads(plugin.stdout)["verdict"]) == (0, "succeeded")


def _context_of(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["current-context"])


def test_wait_exits_1_when_the_rollout_fails_at_the_progress_deadline(
    login: ExecLogin, controller: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    kubeconfig = login.kubeconfig("user.kubeconfig", namespace)
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [3, 3])))
    wait_settled(kubectl, namespace, 1)
    kubectl("apply", "-f", "-", input=json.dumps(never_ready_deployment(namespace, "api-v2")))
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(2, [3, 3])))
    began = time.monotonic()
    failed = oam_rollout(kubeconfig, "status", "resilient", "--wait", "--timeout", "150s")
    assert failed.returncode == 1, failed.stderr
    assert DEADLINE < time.monotonic() - began < 150
    last = failed.stdout.split("\n---\n")[-2].splitlines()
    assert "    batch 0  [....................]  0/3  failed: not Ready within the progress " \
           "deadline" in last
    assert rollout_state(kubectl, namespace) == "rolloutFailed/api-v2"
    doc = as_json(oam_rollout(kubeconfig, "status", "resilient", "-o", "json"))
    assert doc["verdict"] == "failed"


def test_wait_exits_3_at_the_timeout_while_batchpartition_holds_the_run(
    login: ExecLogin, controller: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    kubeconfig = login.kubeconfig("user.kubeconfig", namespace)
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(api_application(1, [3, 3])))
    wait_settled(kubectl, namespace, 1)
    held = api_application(2, [3, 3], batchPartition=0)
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(held))
    eventually(lambda: kubectl("get", "rollout", "api", "-n", namespace, "-o",
                               "jsonpath={.status.upgradedReadyReplicas}").stdout,
               equals="3", timeout=60, what="batch 0 of api-v2 Ready",
               context=controller.tail)
    began = time.monotonic()
    waited = oam_rollout(kubeconfig, "status", "resilient", "--wait", "--timeout", "3s",
                         "-o", "json")
    assert (waited.returncode, waited.stderr) == (
        3, "oam-rollout status: timed out after 3s\n")
    assert 3 <= time.monotonic() - began < 30
    doc = as_json(waited)  # the state it gave up in
    assert doc["verdict"] == "progressing"
    rollout = doc["components"][0]["rollout"]
    assert (rollout["batchPartition"], rollout["lastTargetRevision"]) == (0, "api-v2")
