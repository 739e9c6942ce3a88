"""The built wheel works on its own: installed into a fresh venv, run from outside the repo.

Builds the wheel offline (no build isolation: hatchling comes from the dev venv),
installs it with --no-deps --no-index into a new venv whose dependencies are borrowed
from the dev venv through a .pth file (so nothing is downloaded), then runs the
installed console script from a temp dir on the spec's first Application.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
FIRST = REPO / "tests" / "golden" / "01-first-deploy" / "application.yaml"


def sh(*argv: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PIP_NO_INPUT": "1"},
    )
    assert done.returncode == 0, f"{argv}: {done.stderr[-2000:]}"
    return done.stdout


def test_the_installed_wheel_renders_the_spec_application(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    sh(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "-w", dist, REPO, cwd=tmp_path,
    )  # fmt: skip
    wheels = list(dist.glob("oam_rollout-*.whl"))
    assert len(wheels) == 1

    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(
        sh(
            python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path
        ).strip()
    )
    # Borrow the dependencies (jinja2, pyyaml, ...) from the dev venv; the package itself
    # must come from the wheel, which the check on __file__ below proves.
    (site / "borrowed-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    sh(python, "-m", "pip", "install", "--no-deps", "--no-index", wheels[0], cwd=tmp_path)

    where = (
        "import webhook.render.renderer as r; print(r.__file__); "
        "print(r.default_templates_dir())"
    )
    located = sh(python, "-c", where, cwd=tmp_path).split()
    assert [Path(p).is_relative_to(site) for p in located] == [True, True]
    assert located[1].endswith("webhook/_data/templates")

    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(FIRST, work / "app.yaml")
    out = sh(venv / "bin" / "oam-rollout", "render", "-f", "app.yaml", cwd=work)
    objects = list(yaml.safe_load_all(out))
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ControllerRevision", "express-server-v1"),
        ("Rollout", "express-server"),
        ("Deployment", "express-server-v1"),
    ]
    assert (
        objects[2]["spec"]["template"]["spec"]["containers"][0]["image"]
        == "stefanprodan/podinfo:4.0.3"
    )
    assert sh(venv / "bin" / "oam-rollout", "validate", "-f", "app.yaml", cwd=work) == "valid\n"
