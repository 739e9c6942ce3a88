"""Batch readiness is pod readiness as the probes define it, on a real kubelet.

A webservice whose new revision's readinessProbe never passes (an HTTP path that answers
404) stays at its first batch, the old revision serving all along, until the progress
deadline fails the run (Progressing=False, ProgressDeadlineExceeded); a next revision that
fixes the probe rolls forward. The probe must really be what fails, so the pods run on a
real kubelet, from a locally built image that serves HTTP.

This needs the ``real_node_workloads`` fixture: a control plane whose user workloads are
scheduled onto a real kubelet (the image issue's real node, once it runs pods other than
hostNetwork ones), with the webhook and the controller running (a short
``--progress-deadline``). It yields an object with: ``kubectl`` (a ToolRunner for that
cluster), ``namespace``, ``image`` (serves HTTP), ``args`` (the container args that make it
serve on ``port``), ``port``, ``ready_path`` (answers 200), ``missing_path`` (answers 404)
and ``deadline_seconds``. Until that fixture exists the test is skipped, with that reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.apps import application, manifest
from tests.fixtures.polling import eventually
from tests.fixtures.views import deploys, view

pytestmark = pytest.mark.cluster

FIXTURE = "real_node_workloads"


@pytest.fixture
def node(request: pytest.FixtureRequest) -> Any:
    """The real-node workload fixture, or a skip that says what is missing."""
    try:
        return request.getfixturevalue(FIXTURE)
    except pytest.FixtureLookupError:
        pytest.skip(f"needs the {FIXTURE} fixture: user workloads on a real kubelet "
                    "(the image issue's real node); not available yet")


def probed_app(node: Any, version: int, path: str) -> str:
    properties = {
        "args": list(node.args),
        "ports": [{"port": node.port, "expose": True}],
        "readinessProbe": {"httpGet": {"path": path, "port": node.port},
                           "periodSeconds": 1, "failureThreshold": 1},
    }
    raw = application("probed", component="probed", external_revision=f"probed-v{version}",
                      image=node.image, properties=properties,
                      rollout={"targetSize": 4, "rolloutBatches": [{"replicas": 2},
                                                                   {"replicas": 2}]})
    # A new revision of the same image: what changes is the probe (and this env value).
    raw["spec"]["components"][0]["properties"]["env"] = [{"name": "REVISION",
                                                          "value": str(version)}]
    return manifest(raw)


def rollout_status(node: Any) -> dict[str, Any]:
    out = node.kubectl("get", "rollout", "probed", "-n", node.namespace, "-o", "json",
                       check=False)
    if out.returncode != 0:
        return {}
    status: dict[str, Any] = json.loads(out.stdout).get("status") or {}
    return status


def state(node: Any) -> tuple[str, str, int, str]:
    status = rollout_status(node)
    failed = next((c for c in status.get("conditions") or []
                   if c.get("type") == "Progressing" and c.get("status") == "False"), {})
    return (str(status.get("rollingState")), str(status.get("lastTargetRevision")),
            int(status.get("currentBatch") or 0), str(failed.get("reason", "")))


def test_a_probe_that_never_passes_holds_the_first_batch_and_a_fixed_one_rolls_forward(
    node: Any,
) -> None:
    kubectl, ns = node.kubectl, node.namespace
    kubectl("apply", "-n", ns, "-f", "-", input=probed_app(node, 1, node.ready_path))
    eventually(lambda: state(node), equals=("rolloutSucceed", "probed-v1", 1, ""),
               timeout=180, what="v1 ready on the real kubelet")
    kubectl("apply", "-n", ns, "-f", "-", input=probed_app(node, 2, node.missing_path))
    eventually(lambda: state(node),
               equals=("rolloutFailed", "probed-v2", 0, "ProgressDeadlineExceeded"),
               timeout=node.deadline_seconds + 120, what="the progress deadline of batch 0")
    # The old revision served throughout: all of it still Ready, the new pods never were.
    rows = view(kubectl, ns, "deploy", "-l", "app.oam.dev/component=probed")
    assert {r["NAME"]: r["READY"] for r in rows} == {"probed-v1": "4/4", "probed-v2": "0/2"}
    kubectl("apply", "-n", ns, "-f", "-", input=probed_app(node, 3, node.ready_path))
    eventually(lambda: state(node), equals=("rolloutSucceed", "probed-v3", 1, ""),
               timeout=180, what="v3 rolled forward")
    assert view(kubectl, ns, "deploy", "-l", "app.oam.dev/component=probed") == deploys(
        ("probed-v3", 4))
