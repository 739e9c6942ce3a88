"""Batch readiness is pod readiness as the probes define it, on a real kubelet.

A webservice whose new revision's readinessProbe never passes (an HTTP path
that answers 404) stays at its first batch, the old revision serving all along, until the
progress deadline fails the run (Progressing=False, ProgressDeadlineExceeded); a next
revision that fixes the probe rolls forward. The probe must really be what fails, so the
pods run on the real kubelets (containerd) from the project's own image, which serves HTTP
with Python's http.server: ``/`` answers 200, ``/missing`` 404.

The real nodes have no pod network, so the webservice template is the test's own
(``real_node_workloads``: webservice's Deployment with hostNetwork and the real nodes'
nodeSelector and toleration, through ``--templates-dir``). Two pods of one revision
cannot share a node's port, so each revision serves on a port of its own and a revision
has one pod per node.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.apps import application, manifest
from tests.fixtures.polling import eventually
from tests.fixtures.realnode import RealNodeWorkloads
from tests.fixtures.views import deploys, view

pytestmark = pytest.mark.cluster

READY_PATH = "/"
MISSING_PATH = "/missing"


def probed_app(node: RealNodeWorkloads, version: int, path: str) -> str:
    port = 18080 + version
    properties = {
        **node.server(port),
        "readinessProbe": {"httpGet": {"path": path, "port": port},
                           "periodSeconds": 1, "failureThreshold": 1},
    }  # fmt: skip
    size = node.node_count
    raw = application("probed", component="probed", type=node.component_type,
                      external_revision=f"probed-v{version}", image=node.image,
                      properties=properties,
                      rollout={"targetSize": size,
                               "rolloutBatches": [{"replicas": 1}, {"replicas": size - 1}]})
    return manifest(raw)


def rollout_status(node: RealNodeWorkloads) -> dict[str, Any]:
    out = node.kubectl("get", "rollout", "probed", "-n", node.namespace, "-o", "json",
                       check=False)
    if out.returncode != 0:
        return {}
    status: dict[str, Any] = json.loads(out.stdout).get("status") or {}
    return status


def state(node: RealNodeWorkloads) -> tuple[str, str, int, str]:
    status = rollout_status(node)
    failed = next((c for c in status.get("conditions") or []
                   if c.get("type") == "Progressing" and c.get("status") == "False"), {})
    return (str(status.get("rollingState")), str(status.get("lastTargetRevision")),
            int(status.get("currentBatch") or 0), str(failed.get("reason", "")))


def probe_events(node: RealNodeWorkloads) -> list[str]:
    """The kubelet's readiness-probe failure events in the namespace."""
    out = node.kubectl("get", "events", "-n", node.namespace, "-o", "json")
    return [e["message"] for e in json.loads(out.stdout)["items"]
            if e.get("reason") == "Unhealthy" and "Readiness probe failed" in e["message"]]


def test_a_probe_that_never_passes_holds_the_first_batch_and_a_fixed_one_rolls_forward(
    real_node_workloads: RealNodeWorkloads,
) -> None:
    node = real_node_workloads
    kubectl, ns, size = node.kubectl, node.namespace, node.node_count
    assert size >= 2, "a first batch and an old revision beside it need two nodes"
    kubectl("apply", "-n", ns, "-f", "-", input=probed_app(node, 1, READY_PATH))
    eventually(lambda: state(node), equals=("rolloutSucceed", "probed-v1", 1, ""),
               timeout=180, what="v1 ready on the real kubelets")
    kubectl("apply", "-n", ns, "-f", "-", input=probed_app(node, 2, MISSING_PATH))
    eventually(lambda: state(node),
               equals=("rolloutFailed", "probed-v2", 0, "ProgressDeadlineExceeded"),
               timeout=node.deadline_seconds + 120, what="the progress deadline of batch 0")
    # The old revision served throughout: all of it still Ready, the new pod never was,
    # and the kubelet says why: the probe's HTTP answer.
    rows = view(kubectl, ns, "deploy", "-l", "app.oam.dev/component=probed")
    assert {r["NAME"]: r["READY"] for r in rows} == {"probed-v1": f"{size}/{size}",
                                                     "probed-v2": "0/1"}
    assert any("statuscode: 404" in m for m in probe_events(node)), probe_events(node)
    kubectl("apply", "-n", ns, "-f", "-", input=probed_app(node, 3, READY_PATH))
    eventually(lambda: state(node), equals=("rolloutSucceed", "probed-v3", 1, ""),
               timeout=180, what="v3 rolled forward")
    eventually(lambda: view(kubectl, ns, "deploy", "-l", "app.oam.dev/component=probed"),
               equals=deploys(("probed-v3", size)), timeout=60,
               what="only v3 left, all of it Ready")
