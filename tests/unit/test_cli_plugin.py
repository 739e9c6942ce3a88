"""`kubectl oam-rollout ...`: the kubectl-oam_rollout console script is a kubectl plugin.

kubectl finds plugins as executables named kubectl-* on PATH; the venv's bin directory
(where pip installs the console scripts) is put on PATH as a user's would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from webhook import __version__
from webhook.localcluster.tools import kubectl_path

BIN = Path(sys.executable).parent
PLUGIN = BIN / "kubectl-oam_rollout"


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(kubectl_path()), *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_kubectl_lists_the_console_script_as_its_oam_rollout_plugin() -> None:
    listed = kubectl("plugin", "list", "--name-only")
    assert "kubectl-oam_rollout" in listed.stdout.split(), listed.stdout + listed.stderr


def test_kubectl_oam_rollout_runs_the_cli_and_names_itself_so_in_usage() -> None:
    version = kubectl("oam-rollout", "--version")
    assert (version.returncode, version.stdout) == (0, f"oam-rollout {__version__}\n")
    usage = kubectl("oam-rollout", "status", "--help")
    assert usage.returncode == 0
    assert usage.stdout.startswith("usage: kubectl oam-rollout status ")
    assert "4 Application not found" in " ".join(usage.stdout.split())
