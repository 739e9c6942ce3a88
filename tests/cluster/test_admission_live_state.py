"""Admission against what is live, on the local control plane with the webhook and the
controller running: a component name another Application holds, and changes to a rollout
in flight. Whatever the webhook admits here, the controller carries out; what it could not
carry out (or could not roll as planned) is denied at its field, and the live rollout is
left as it was.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures import apps
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually
from tests.fixtures.views import SUCCEED, deploys, rollout_row, view

pytestmark = pytest.mark.cluster

APP = "rollout-trait-test"
COMPONENT = "express-server"
CLONESET = "cloneset-server"
P0 = "spec.components[0].traits[0].properties"


def apply(kubectl: Any, namespace: str, raw: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(raw), check=False)
    return result


def with_plan(step: str, **properties: Any) -> dict[str, Any]:
    """A walkthrough step's Application with its rollout trait's properties replaced."""
    raw = apps.spec_application(step)
    raw["spec"]["components"][0]["traits"][0]["properties"] = properties
    return raw


def rollout_json(kubectl: Any, namespace: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        kubectl("get", "rollout", name, "-n", namespace, "-o", "json").stdout)
    return loaded


def settle(kubectl: Any, namespace: str, name: str, row: list[dict[str, str]],
           controller: ControllerProcess, what: str) -> None:
    eventually(lambda: view(kubectl, namespace, "rollout", name), equals=row, timeout=90,
               what=what, context=controller.tail)


def test_a_component_name_another_application_holds_is_denied_and_the_first_is_untouched(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server  # installed: every apply goes through admission
    first = apps.spec_application(apps.FIRST_DEPLOY)
    assert apply(kubectl, namespace, first).returncode == 0
    settle(kubectl, namespace, COMPONENT, rollout_row(5, 5, 5, *SUCCEED), controller_process,
           "the first app's rollout")
    before = rollout_json(kubectl, namespace, COMPONENT)

    second = copy.deepcopy(first)
    second["metadata"]["name"] = "another-app"
    denied = apply(kubectl, namespace, second)
    assert denied.returncode != 0
    assert (
        f'spec.components[0].name: Invalid value: "{COMPONENT}": the name is taken in namespace'
        f" '{namespace}': Rollout '{COMPONENT}', ControllerRevision 'express-server-v1'"
        f" controlled by Application '{APP}'"
    ) in denied.stderr.replace("\n", " "), denied.stderr
    assert kubectl("get", "app", "another-app", "-n", namespace,
                   "--ignore-not-found").stdout == ""
    after = rollout_json(kubectl, namespace, COMPONENT)
    assert after["metadata"]["ownerReferences"] == before["metadata"]["ownerReferences"]
    assert (after["spec"], after["status"]["rollingState"]) == (before["spec"], "rolloutSucceed")


def test_a_new_size_while_parked_mid_upgrade_is_denied_unless_its_batches_roll_the_new_size(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    assert apply(kubectl, namespace, apps.spec_application(apps.FIRST_DEPLOY)).returncode == 0
    settle(kubectl, namespace, COMPONENT, rollout_row(5, 5, 5, *SUCCEED), controller_process,
           "first deploy")
    assert apply(kubectl, namespace,
                 apps.spec_application(apps.UPGRADE_PARTITION)).returncode == 0
    parked = rollout_row(5, 2, 2, "batchReady", "rollingInBatches")
    settle(kubectl, namespace, COMPONENT, parked, controller_process, "parked after batch 0")

    # The change: 5 -> 7 in batches of 1 + 1, as if it were a scale. The upgrade
    # has not finished, so the controller would roll v2 again at 7 from v1: denied.
    resized = with_plan(apps.UPGRADE_PARTITION, targetSize=7, batchPartition=0,
                        rolloutBatches=[{"replicas": 1}, {"replicas": 1}])
    denied = apply(kubectl, namespace, resized)
    assert denied.returncode != 0
    assert (
        f"{P0}.rolloutBatches: Invalid value: [1, 1]: batch replicas add up to 2; they must"
        " add up to targetSize 7; the rollout to express-server-v2 has not finished, so this"
        " change rolls it again from express-server-v1"
    ) in denied.stderr.replace("\n", " "), denied.stderr
    assert view(kubectl, namespace, "rollout", COMPONENT) == parked

    # Batches for the whole new size are admitted, and the controller carries them out.
    whole = with_plan(apps.UPGRADE_PARTITION, targetSize=7,
                      rolloutBatches=[{"replicas": 3}, {"replicas": 4}])
    admitted = apply(kubectl, namespace, whole)
    assert admitted.returncode == 0, admitted.stderr
    settle(kubectl, namespace, COMPONENT, rollout_row(7, 7, 7, *SUCCEED), controller_process,
           "the upgrade rolled again at 7")
    eventually(lambda: view(kubectl, namespace, "deploy", "-l",
                            f"app.oam.dev/component={COMPONENT}"),
               equals=deploys(("express-server-v2", 7)), timeout=60, what="v2 at 7 only",
               context=controller_process.tail)


def cloneset_numbers(doc: dict[str, Any]) -> tuple[int, int]:
    spec = doc["spec"]
    return spec["replicas"], (spec.get("updateStrategy") or {}).get("partition", 0)


def test_a_cloneset_upgrade_keeps_its_size_and_render_reproduces_a_parked_cloneset(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
    tmp_path: Path,
) -> None:
    del webhook_server
    first = apps.spec_application(apps.CLONESET_FIRST_DEPLOY)
    assert apply(kubectl, namespace, first).returncode == 0
    settle(kubectl, namespace, CLONESET, rollout_row(5, 5, 5, *SUCCEED, name=CLONESET),
           controller_process, "cloneset first deploy")

    # An upgrade in place re-templates the pods the CloneSet has: it cannot change the size.
    resized = with_plan(apps.CLONESET_UPGRADE, targetSize=7,
                        rolloutBatches=[{"replicas": 3}, {"replicas": 4}])
    denied = apply(kubectl, namespace, resized)
    assert denied.returncode != 0
    assert (
        f"{P0}.targetSize: Forbidden: a CloneSet is updated in place, so rolling it to"
        " cloneset-server-v2 keeps its 5 replicas: roll cloneset-server-v2 at 5 first, then"
        " change targetSize to 7"
    ) in denied.stderr.replace("\n", " "), denied.stderr
    assert view(kubectl, namespace, "rollout", CLONESET) == rollout_row(
        5, 5, 5, *SUCCEED, name=CLONESET)

    # Parked after the first batch: 2 pods released, 3 held by the partition.
    parked_app = with_plan(apps.CLONESET_UPGRADE, targetSize=5, batchPartition=0,
                           rolloutBatches=[{"replicas": 2}, {"replicas": 3}])
    assert apply(kubectl, namespace, parked_app).returncode == 0
    settle(kubectl, namespace, CLONESET,
           rollout_row(5, 2, 2, "batchReady", "rollingInBatches", name=CLONESET),
           controller_process, "cloneset parked after batch 0")
    live_cloneset = json.loads(kubectl("get", "cloneset", CLONESET, "-n", namespace,
                                       "-o", "json").stdout)
    assert cloneset_numbers(live_cloneset) == (5, 3)

    # `render --revisions` of the same Application against what is live prints the
    # CloneSet as it runs: applying it would change nothing.
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(parked_app))
    (tmp_path / "live.yaml").write_text(kubectl(
        "get", "controllerrevision,rollout", "-n", namespace, "-o", "yaml").stdout)
    done = subprocess.run(
        [sys.executable, "-m", "webhook", "render", "-f", str(tmp_path / "app.yaml"),
         "--revisions", str(tmp_path / "live.yaml")],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    (cloneset,) = [d for d in yaml.safe_load_all(done.stdout) if d["kind"] == "CloneSet"]
    assert cloneset_numbers(cloneset) == cloneset_numbers(live_cloneset)
