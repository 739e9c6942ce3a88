"""pause, resume, promote and undo on the local control plane, through the admission webhook.

Each verb is a JSON patch of the Application: the session webhook reviews it like any
apply (a rollback it finds wrong is refused, and the verb says so), and the change stays in
the Application's spec. The verbs and the controller log in through an exec credential
plugin (tests.fixtures.cli.ExecLogin) and the verbs get no -n: the kubeconfig context's
namespace is the test's.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.apps import api_application, manifest
from tests.fixtures.cli import ExecLogin, exec_controller, oam_rollout
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually
from tests.fixtures.views import rollout_state, wait_settled
from webhook.cli.verbs import STALE, refusal
from webhook.core.errors import ApiError
from webhook.core.operations import verb_patch
from webhook.kube.client import APPLICATIONS, connect
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

PATCHED = "application.core.oam.dev/resilient patched: component api: "
UNCHANGED = "application.core.oam.dev/resilient unchanged: component api: "


@pytest.fixture(scope="module")
def login(cluster: LocalCluster) -> Iterator[ExecLogin]:
    with tempfile.TemporaryDirectory(prefix="oam-rollout-cli-verbs-") as workdir:
        yield ExecLogin(cluster, Path(workdir))


@pytest.fixture(scope="module")
def controller(login: ExecLogin, controller_process: ControllerProcess,
               ) -> Iterator[ControllerProcess]:
    with exec_controller(login, controller_process) as running:
        yield running


class Operator:
    """The verbs as a user runs them in one namespace, and what the API then holds."""

    def __init__(self, login: ExecLogin, kubectl: Any, namespace: str) -> None:
        self.kubeconfig = login.kubeconfig("operator.kubeconfig", namespace)
        self.kubectl = kubectl
        self.namespace = namespace

    def apply(self, app: dict[str, Any]) -> None:
        self.kubectl("apply", "-n", self.namespace, "-f", "-", input=manifest(app))

    def verb(self, *args: str) -> tuple[int, str, str]:
        done = oam_rollout(self.kubeconfig, *args)
        return done.returncode, done.stdout, done.stderr

    def properties(self) -> dict[str, Any]:
        """The rollout trait's properties as `kubectl get app -o yaml` shows them."""
        app = json.loads(self.kubectl("get", "app", "resilient", "-n", self.namespace, "-o",
                                      "json").stdout)
        props: dict[str, Any] = app["spec"]["components"][0]["traits"][0]["properties"]
        return props

    def rollout(self, field: str) -> str:
        return str(self.kubectl("get", "rollout", "api", "-n", self.namespace, "-o",
                                f"jsonpath={{{field}}}").stdout)

    def wait(self) -> None:
        """`status --wait`: until the Application's current spec has rolled out."""
        done = oam_rollout(self.kubeconfig, "status", "resilient", "--wait", "--timeout", "150s")
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def operator(login: ExecLogin, controller: ControllerProcess, webhook_server: Any,
             kubectl: Any, namespace: str) -> Operator:
    del controller, webhook_server  # running: every patch is admitted, then rolled
    return Operator(login, kubectl, namespace)


def test_promote_releases_one_batch_at_a_time_then_the_rest(operator: Operator) -> None:
    operator.apply(api_application(1, [2, 2, 2]))
    wait_settled(operator.kubectl, operator.namespace, 1)
    operator.apply(api_application(2, [2, 2, 2], batchPartition=0))
    eventually(lambda: operator.rollout(".status.upgradedReadyReplicas"), equals="2",
               timeout=60, what="batch 0 of api-v2 Ready")

    assert operator.verb("promote", "resilient") == (
        0, PATCHED + "batchPartition 0 -> 1\n", "")
    assert operator.properties()["batchPartition"] == 1
    eventually(lambda: operator.rollout(".status.upgradedReadyReplicas"), equals="4",
               timeout=60, what="batch 1 of api-v2 Ready")

    assert operator.verb("promote", "resilient") == (
        0, PATCHED + "batchPartition 1 removed: every batch rolls\n", "")
    assert "batchPartition" not in operator.properties()
    wait_settled(operator.kubectl, operator.namespace, 2)
    assert operator.verb("promote", "resilient") == (
        0, UNCHANGED + "not held by batchPartition: nothing to promote\n", "")


def test_pause_holds_a_run_in_flight_at_its_next_batch_and_resume_lets_it_go(
    operator: Operator,
) -> None:
    operator.apply(api_application(1, [3, 3]))
    wait_settled(operator.kubectl, operator.namespace, 1)
    operator.apply(api_application(2, [3, 3], batchPartition=0))
    eventually(lambda: operator.rollout(".status.upgradedReadyReplicas"), equals="3",
               timeout=60, what="batch 0 of api-v2 Ready")
    assert operator.verb("pause", "resilient") == (
        0, PATCHED + "paused: the batch in flight finishes, then the rollout holds\n", "")
    assert operator.properties()["paused"] is True
    assert operator.verb("pause", "resilient") == (0, UNCHANGED + "already paused\n", "")

    # Released by batchPartition, the run still holds: paused wins.
    assert operator.verb("promote", "resilient")[0] == 0
    eventually(lambda: operator.rollout('.status.conditions[?(@.type=="Paused")].status'),
               equals="True", timeout=60, what="the api-v2 run held by paused",
               context=rollout_yaml(operator))
    assert operator.rollout(".status.upgradedReplicas") == "3"
    assert (operator.properties().get("paused"), operator.properties().get("batchPartition")) \
        == (True, None)

    assert operator.verb("resume", "resilient") == (0, PATCHED + "resumed\n", "")
    assert "paused" not in operator.properties()
    wait_settled(operator.kubectl, operator.namespace, 2)
    assert operator.verb("resume", "resilient") == (0, UNCHANGED + "not paused\n", "")


def rollout_yaml(operator: Operator) -> Any:
    return lambda: operator.kubectl("get", "rollout", "api", "-n", operator.namespace, "-o",
                                    "yaml").stdout


def test_undo_rolls_back_to_the_previous_revision_through_target_revision(
    operator: Operator,
) -> None:
    for version in (1, 2):
        operator.apply(api_application(version, [3, 3]))
        wait_settled(operator.kubectl, operator.namespace, version)

    assert operator.verb("undo", "resilient") == (
        0, PATCHED + "targetRevision api-v2 -> api-v1\n", "")
    assert operator.properties()["targetRevision"] == "api-v1"
    wait_settled(operator.kubectl, operator.namespace, 1)
    operator.wait()

    code, out, err = operator.verb("undo", "resilient")
    assert (code, out, err) == (
        2, "", "oam-rollout undo: application 'resilient': component 'api': no revision "
               "before api-v1\n")
    assert operator.verb("undo", "resilient", "--to-revision", "api-v2") == (
        0, PATCHED + "targetRevision api-v1 -> api-v2\n", "")
    wait_settled(operator.kubectl, operator.namespace, 2)


def test_a_verb_the_webhook_refuses_changes_nothing_and_exits_1(operator: Operator) -> None:
    for version in (1, 2):
        operator.apply(api_application(version, [3, 3]))
        wait_settled(operator.kubectl, operator.namespace, version)
    operator.apply(api_application(2, [1, 1], size=8))  # a pure scale: batches of the change
    operator.wait()
    assert rollout_state(operator.kubectl, operator.namespace) == "rolloutSucceed/api-v2"

    # Rolling back to api-v1 at 8 needs batches that add up to 8; these add up to 2.
    code, out, err = operator.verb("undo", "resilient")
    assert (code, out) == (1, "")
    assert err.startswith("oam-rollout undo: application 'resilient' not changed: ")
    assert "denied the request" in err
    assert "spec.components[0].traits[0].properties.rolloutBatches" in err
    assert "targetRevision" not in operator.properties()


def test_a_patch_decided_on_a_stale_read_is_refused_as_such(
    cluster: LocalCluster, operator: Operator,
) -> None:
    operator.apply(api_application(1, [2, 2, 2]))
    wait_settled(operator.kubectl, operator.namespace, 1)
    operator.apply(api_application(2, [2, 2, 2], batchPartition=0))
    api = connect(str(cluster.kubeconfig))
    path = APPLICATIONS.path(operator.namespace, "resilient")
    read = api.get(path)
    assert read is not None
    decided = verb_patch("promote", read)
    operator.apply(api_application(2, [2, 2, 2], batchPartition=1))  # someone else promotes
    with pytest.raises(ApiError) as refused:
        api.json_patch(path, decided.operations)
    assert refusal(refused.value) == STALE
    assert operator.properties()["batchPartition"] == 1  # not 2: nothing jumped a batch
