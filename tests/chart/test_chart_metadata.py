"""What the chart says about itself: Artifact Hub annotations that match the chart (image,
CRDs, license, an example that validates), CRD short names that collide with no other
project's, and the chart working as a dependency of another chart (Helm's `global`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures import chart as m
from webhook.localcluster.tools import helm_path

ROOT = Path(__file__).resolve().parents[2]
CRD_DIRS = [m.CHART_DIR / "files" / "crds", ROOT / "webhook" / "localcluster" / "crds"]
# Short names other projects' CRDs take, which kubectl would resolve to either:
# Argo Rollouts (rollouts.argoproj.io: ro), Argo CD (applications.argoproj.io: app, apps
# is theirs; `app` is also KubeVela's for this very Application CRD, so it stays).
TAKEN_SHORT_NAMES = {"ro", "apps"}


def _chart() -> dict[str, Any]:
    chart: dict[str, Any] = yaml.safe_load((m.CHART_DIR / "Chart.yaml").read_text())
    return chart


def _artifacthub(name: str) -> Any:
    """One artifacthub.io/ annotation; list-valued ones are YAML text."""
    return yaml.safe_load(_chart()["annotations"][f"artifacthub.io/{name}"])


def _crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for d in CRD_DIRS for path in sorted(d.glob("*.yaml"))]


def test_artifact_hub_image_is_the_default_image_of_the_chart() -> None:
    values = yaml.safe_load((m.CHART_DIR / "values.yaml").read_text())
    expected = f"{values['image']['repository']}:{_chart()['appVersion']}"
    deployed = {c["image"] for _, c in m.containers(m.render())}
    assert (_artifacthub("images"), deployed) == (
        [{"name": "oam-rollout", "image": expected}],
        {expected},
    )


def test_artifact_hub_lists_the_crds_the_chart_installs() -> None:
    listed = {(c["name"], c["kind"], c["version"]) for c in _artifacthub("crds")}
    installed = {
        (crd["metadata"]["name"], crd["spec"]["names"]["kind"], version["name"])
        for crd in m.of_kind(m.render(), "CustomResourceDefinition")
        for version in crd["spec"]["versions"]
        if version.get("storage")
    }
    assert listed == installed


def test_artifact_hub_license_is_the_projects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _artifacthub("license") == project["license"]


@pytest.mark.parametrize("index", range(len(_artifacthub("crdsExamples"))))
def test_artifact_hub_examples_are_valid_applications(index: int, tmp_path: Path) -> None:
    example = _artifacthub("crdsExamples")[index]
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump(example))
    proc = subprocess.run(
        [sys.executable, "-m", "webhook", "validate", "-f", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (example["kind"], proc.returncode, proc.stdout.strip()) == (
        "Application", 0, "valid"), proc.stderr  # fmt: skip


def test_no_crd_takes_a_short_name_of_another_project() -> None:
    short_names = {
        crd["metadata"]["name"]: set(crd["spec"]["names"].get("shortNames", []))
        for crd in _crds()
    }
    taken = {name: names & TAKEN_SHORT_NAMES for name, names in short_names.items()}
    assert (taken, short_names["rollouts.standard.oam.dev"]) == (
        {name: set() for name in short_names},
        set(),
    )


def _parent_chart(tmp_path: Path, values: dict[str, Any]) -> Path:
    parent = tmp_path / "parent"
    shutil.copytree(m.CHART_DIR, parent / "charts" / "oam-rollout")
    (parent / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "parent", "version": "0.1.0",
        "dependencies": [{"name": "oam-rollout", "version": _chart()["version"]}],
    }))  # fmt: skip
    (parent / "values.yaml").write_text(yaml.safe_dump(values))
    return parent


@pytest.mark.parametrize(
    "values",
    [
        {},
        {
            "global": {"imageRegistry": "registry.example"},
            "oam-rollout": {"webhook": {"replicas": 3}},
        },
    ],
    ids=["no-globals", "globals-and-overrides"],
)
def test_the_chart_renders_as_a_dependency_of_another_chart(
    values: dict[str, Any], tmp_path: Path
) -> None:
    # Helm hands every subchart the parent's `global` map (an empty one at least): a
    # values schema without `global` would refuse the chart here.
    parent = _parent_chart(tmp_path, values)
    proc = subprocess.run(
        [str(helm_path()), "template", "rel", str(parent), "--namespace", m.NAMESPACE],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    webhook_replicas = [
        doc["spec"]["replicas"]
        for doc in yaml.safe_load_all(proc.stdout)
        if doc and doc["kind"] == "Deployment" and doc["metadata"]["name"].endswith("-webhook")
    ]
    expected = values.get("oam-rollout", {}).get("webhook", {}).get("replicas", 2)
    assert (proc.returncode, webhook_replicas) == (0, [expected]), proc.stderr
