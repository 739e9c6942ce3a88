"""Golden files: `oam-rollout render` output for every step of the spec's walkthrough.

Each folder holds application.yaml (the step's Application exactly as the spec prints it,
comments included: the cluster tests apply this very text), live.yaml (what is live
before the step, when it matters) and expected.yaml (the pinned render). Regenerate after
an intended change with OAM_ROLLOUT_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import WALKTHROUGH
from webhook.cli import main

HERE = Path(__file__).resolve().parent
CASES = sorted(p.name for p in HERE.iterdir() if (p / "application.yaml").is_file())
UPDATE = os.environ.get("OAM_ROLLOUT_UPDATE_GOLDEN") == "1"


def render(case: str, capsys: pytest.CaptureFixture[str]) -> str:
    folder = HERE / case
    argv = ["render", "-f", str(folder / "application.yaml")]
    if (folder / "live.yaml").is_file():
        argv += ["--revisions", str(folder / "live.yaml")]
    code = main(argv)
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return out


def test_every_step_of_the_walkthrough_has_a_golden_case() -> None:
    assert CASES == [
        "01-first-deploy",
        "02-upgrade-partition",
        "03-upgrade-complete",
        "04-rollback",
        "05-scale-out",
        "06-scale-in",
        "07-cloneset-first-deploy",
        "08-cloneset-upgrade",
    ]
    assert list(WALKTHROUGH) == CASES
    assert sorted(p.name for p in HERE.iterdir() if (p / "expected.yaml").is_file()) == CASES


@pytest.mark.parametrize("case", CASES)
def test_render_output_matches_the_golden_file(
    case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = render(case, capsys)
    expected_path = HERE / case / "expected.yaml"
    if UPDATE:
        expected_path.write_text(out)
    expected = expected_path.read_text()
    assert list(yaml.safe_load_all(out)) == list(yaml.safe_load_all(expected))
    assert out == expected


def workloads(objects: list[dict[str, Any]]) -> list[tuple[str, str, int, str]]:
    return [
        (
            o["kind"],
            o["metadata"]["name"],
            o["spec"]["replicas"],
            o["spec"]["template"]["spec"]["containers"][0]["image"],
        )
        for o in objects
        if o["kind"] in ("Deployment", "CloneSet")
    ]


# What the spec's `kubectl get deploy|cloneset -l app.oam.dev/component=...` shows once each
# step has run as far as its plan goes (names, replicas, the image of the revision).
SPEC_VIEWS = {
    "01-first-deploy": [("Deployment", "express-server-v1", 5, "stefanprodan/podinfo:4.0.3")],
    "02-upgrade-partition": [
        ("Deployment", "express-server-v2", 2, "stefanprodan/podinfo:5.0.2"),
        ("Deployment", "express-server-v1", 3, "stefanprodan/podinfo:4.0.3"),
    ],
    "03-upgrade-complete": [("Deployment", "express-server-v2", 5, "stefanprodan/podinfo:5.0.2")],
    "04-rollback": [("Deployment", "express-server-v1", 5, "stefanprodan/podinfo:4.0.3")],
    "05-scale-out": [("Deployment", "express-server-v1", 7, "stefanprodan/podinfo:4.0.3")],
    "06-scale-in": [("Deployment", "express-server-v1", 3, "stefanprodan/podinfo:4.0.3")],
    "07-cloneset-first-deploy": [("CloneSet", "cloneset-server", 5, "stefanprodan/podinfo:4.0.3")],
    "08-cloneset-upgrade": [("CloneSet", "cloneset-server", 5, "stefanprodan/podinfo:5.0.2")],
}

# The spec's `kubectl get controllerRevision` / `kubectl get rollout` facts per step:
# (revision rendered, its number, the Rollout's target, its target size).
SPEC_REVISIONS = {
    "01-first-deploy": ("express-server-v1", 1, "express-server-v1", 5),
    "02-upgrade-partition": ("express-server-v2", 2, "express-server-v2", 5),
    "03-upgrade-complete": ("express-server-v2", 2, "express-server-v2", 5),
    "04-rollback": ("express-server-v2", 2, "express-server-v1", 5),
    "05-scale-out": ("express-server-v2", 2, "express-server-v1", 7),
    "06-scale-in": ("express-server-v2", 2, "express-server-v1", 3),
    "07-cloneset-first-deploy": ("cloneset-server-v1", 1, "cloneset-server-v1", 5),
    "08-cloneset-upgrade": ("cloneset-server-v2", 2, "cloneset-server-v2", 5),
}


@pytest.mark.parametrize("case", CASES)
def test_each_step_renders_the_workloads_the_spec_shows(
    case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    objects = list(yaml.safe_load_all(render(case, capsys)))
    assert workloads(objects) == SPEC_VIEWS[case]
    revision = next(o for o in objects if o["kind"] == "ControllerRevision")
    rollout = next(o for o in objects if o["kind"] == "Rollout")
    assert (
        revision["metadata"]["name"],
        revision["revision"],
        rollout["spec"]["targetRevisionName"],
        rollout["spec"]["rolloutPlan"]["targetSize"],
    ) == SPEC_REVISIONS[case]
