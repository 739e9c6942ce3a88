"""The layer contracts in pyproject.toml hold on the tree and break when a layer reaches up.

Each breach is made in a copy of the package (one import appended to a subpackage's
``__init__``), then ``lint-imports`` runs with the project's own configuration against
that copy, found first on the path. The real tree is checked the same way. The tests
have a layer rule of their own: shared helpers live in tests/fixtures/, and no test
module imports from another.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "pyproject.toml"
LAYERS = "webhook layers: core <- render <- kube <- admission | controller <- cli"
LOCALCLUSTER_BELOW = "localcluster uses core and kube only"
LOCALCLUSTER_USERS = "only cli imports localcluster"
CONTRACTS = (LAYERS, LOCALCLUSTER_BELOW, LOCALCLUSTER_USERS)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's contracts, the package imported from ``root``."""
    script = Path(sys.executable).parent / "lint-imports"
    command = str(script) if script.exists() else shutil.which("lint-imports")
    assert command, "lint-imports is not installed (pip install -e '.[dev]')"
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [command, "--no-logo", "--no-cache", str(CONFIG)],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def verdicts(output: str) -> dict[str, str]:
    """Contract name -> KEPT / BROKEN, from the summary lines."""
    found = {}
    for line in output.splitlines():
        name, _, verdict = line.rstrip().rpartition(" ")
        if name and verdict in ("KEPT", "BROKEN") and not name.startswith("Contracts:"):
            found[name] = verdict
    return found


def test_the_tree_keeps_every_layer_contract() -> None:
    result = lint_imports(REPO)
    seen = verdicts(result.stdout)
    assert (result.returncode, set(seen.values()), set(CONTRACTS) <= set(seen)) == (
        0, {"KEPT"}, True), result.stdout + result.stderr


# (the subpackage that reaches out, what it imports, the contract that must break)
BREACHES = [
    pytest.param("core", "webhook.cli", LAYERS, id="core imports cli"),
    pytest.param("core", "webhook.render", LAYERS, id="core imports render"),
    pytest.param("render", "webhook.kube", LAYERS, id="render imports kube"),
    pytest.param("kube", "webhook.admission", LAYERS, id="kube imports admission"),
    pytest.param("admission", "webhook.controller", LAYERS, id="admission imports controller"),
    pytest.param("controller", "webhook.admission", LAYERS, id="controller imports admission"),
    pytest.param("controller", "webhook.cli", LAYERS, id="controller imports cli"),
    pytest.param("localcluster", "webhook.controller", LOCALCLUSTER_BELOW,
                 id="localcluster imports controller"),
    pytest.param("kube", "webhook.localcluster", LOCALCLUSTER_USERS,
                 id="kube imports localcluster"),
]


@pytest.mark.parametrize(("package", "target", "contract"), BREACHES)
def test_a_layer_that_imports_upwards_breaks_its_contract(
    tmp_path: Path, package: str, target: str, contract: str
) -> None:
    shutil.copytree(REPO / "webhook", tmp_path / "webhook",
                    ignore=shutil.ignore_patterns("__pycache__", "_data"))
    init = tmp_path / "webhook" / package / "__init__.py"
    init.write_text(init.read_text() + f"\nimport {target}  # the breach under test\n")
    result = lint_imports(tmp_path)
    shown = result.stdout + result.stderr
    assert (result.returncode, verdicts(result.stdout)[contract]) == (1, "BROKEN"), shown
    # The report names the offending import.
    assert f"webhook.{package} -> {target}" in result.stdout, shown
    assert [name for name, verdict in verdicts(result.stdout).items() if verdict == "BROKEN"] \
        == [contract], shown


def imported_test_modules(path: Path) -> list[str]:
    """The modules under tests/ that ``path`` imports, other than tests.fixtures."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found += [n for n in names if n.startswith("tests.")
                  and not n.startswith("tests.fixtures")]
    return found


def test_test_modules_import_shared_helpers_from_fixtures_only() -> None:
    modules = sorted((REPO / "tests").rglob("*.py"))
    offending = {str(p.relative_to(REPO)): imported_test_modules(p) for p in modules
                 if "fixtures" not in p.parts and imported_test_modules(p)}
    assert len(modules) > 40  # the whole suite was looked at
    assert offending == {}
