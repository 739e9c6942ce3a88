"""Every chart knob at once, as the real API server reads it: the objects the knobs shape
(both Deployments, both PodDisruptionBudgets, the `helm test` Pod) rendered by helm and
applied as a strict server-side dry run, so a field the server would drop or refuse fails
here, not at a user's install.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

import pytest
import yaml

from tests.fixtures.chart import CHART_DIR, EVERY_KNOB, RELEASE
from webhook.localcluster.tools import K8S_VERSION

pytestmark = pytest.mark.cluster

SHAPED_KINDS = {"Deployment", "PodDisruptionBudget", "Pod"}


def test_the_api_server_accepts_every_knob_as_written(
    helm: Any, kubectl: Any, namespace: str
) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as values:
        yaml.safe_dump(EVERY_KNOB, values)
        values.flush()
        # The local control plane's version: its API server serves policy/v1beta1 only.
        rendered = helm("template", RELEASE, str(CHART_DIR), "--namespace", namespace,
                        "--values", values.name, "--kube-version", K8S_VERSION).stdout  # fmt: skip
    objects = [o for o in yaml.safe_load_all(rendered) if o and o["kind"] in SHAPED_KINDS]
    applied = kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-o", "json", "-f", "-",
        input=yaml.safe_dump_all(objects), check=False,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    stored = json.loads(applied.stdout)
    items = stored["items"] if stored.get("kind") == "List" else [stored]
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"] if o["kind"] == "Deployment"
        else o["spec"]
        for o in items if o["kind"] in ("Deployment", "Pod")
    }  # fmt: skip
    controller = pods[f"{RELEASE}-oam-rollout-controller"]
    # What the server kept of the knobs, on the controller (the webhook's are the same).
    assert (
        sorted(o["kind"] for o in items),
        [v["name"] for v in controller["volumes"]],
        controller["containers"][0]["args"][-2:],
        controller["containers"][0]["env"][-1]["name"],
        controller["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"][
            "app.kubernetes.io/component"],
        controller["hostNetwork"],
    ) == (
        ["Deployment", "Deployment", "Pod", "PodDisruptionBudget", "PodDisruptionBudget"],
        ["tmp", "templates"],
        ["--templates-dir", "/templates"],
        "OWN",
        "controller",
        True,
    )  # fmt: skip
