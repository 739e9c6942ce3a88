"""The chart's README: its values table is the one scripts/chart-readme.py makes from
values.yaml (so CI fails when someone changes a value and not the table), every value has
a description, and `helm show readme` shows it. Also the generator's reading of the
helm-docs comment conventions, on small values files.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.fixtures import chart as m
from webhook.localcluster.tools import helm_path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "chart-readme.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_readme", SCRIPT)
    if spec is None or spec.loader is None:
        raise AssertionError(f"cannot load {SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up while the class is being made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen: Any = _load_generator()


def _values() -> str:
    return (m.CHART_DIR / "values.yaml").read_text(encoding="utf-8")


def _readme() -> str:
    return (m.CHART_DIR / "README.md").read_text(encoding="utf-8")


def test_committed_readme_holds_the_table_made_from_values_yaml() -> None:
    assert gen.with_table(_readme(), _values()) == _readme(), (
        "charts/oam-rollout/README.md is out of date: run python3 scripts/chart-readme.py"
    )


def test_every_value_has_a_description() -> None:
    assert gen.undocumented(_values()) == [], (
        "give each of these keys a `# -- description` line in values.yaml"
    )


def test_helm_show_readme_shows_a_row_for_every_value() -> None:
    proc = subprocess.run(
        [str(helm_path()), "show", "readme", str(m.CHART_DIR)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    values_table = proc.stdout.partition(gen.BEGIN)[2].partition(gen.END_LINE)[0]
    shown = {
        line.split("`")[1] for line in values_table.splitlines() if line.startswith("| `")
    }
    assert (proc.returncode, shown) == (0, {row.key for row in gen.rows(_values())})


def _run(chart: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--chart", str(chart), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_check_fails_on_a_stale_table_and_a_rewrite_fixes_it(tmp_path: Path) -> None:
    for name in ("values.yaml", "README.md"):
        shutil.copy(m.CHART_DIR / name, tmp_path / name)
    with (tmp_path / "values.yaml").open("a", encoding="utf-8") as values:
        values.write("# -- A value added without regenerating.\nbrandNew: 1\n")
    stale = _run(tmp_path, "--check")
    rewrite = _run(tmp_path)
    fresh = _run(tmp_path, "--check")
    assert (
        stale.returncode,
        "+| `brandNew` | int | `1` | A value added without regenerating. |" in stale.stdout,
        "run python3 scripts/chart-readme.py" in stale.stderr,
        rewrite.returncode,
        fresh.returncode,
    ) == (1, True, True, 0, 0)


def test_a_readme_without_the_markers_is_a_clear_error(tmp_path: Path) -> None:
    shutil.copy(m.CHART_DIR / "values.yaml", tmp_path / "values.yaml")
    (tmp_path / "README.md").write_text("# a chart\n", encoding="utf-8")
    result = _run(tmp_path, "--check")
    assert (result.returncode, "README.md needs the lines" in result.stderr,
            "Traceback" in result.stderr) == (2, True, False)  # fmt: skip


# (values.yaml text, rows as (key, type, default, description))
READING: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = {
    "a description goes on over the comment lines below it": (
        "# -- Pods of\n# the webhook.\nreplicas: 2\n",
        [("replicas", "int", "`2`", "Pods of the webhook.")],
    ),
    "comments above the description line are not part of it": (
        "# A section.\n# -- Pods.\nreplicas: 2\n",
        [("replicas", "int", "`2`", "Pods.")],
    ),
    "a blank line cuts a description off its key": (
        "# -- Lost.\n\nreplicas: 2\n",
        [("replicas", "int", "`2`", "")],
    ),
    "a described map is one row, with rows for its described keys only": (
        "# -- Budget.\npdb:\n  enabled: true\n  # -- Pods kept.\n  minAvailable: 1\n",
        [("pdb", "object", '`{"enabled":true,"minAvailable":1}`', "Budget."),
         ("pdb.minAvailable", "int", "`1`", "Pods kept.")],
    ),
    "a map without a description is its keys": (
        "image:\n  # -- Where.\n  repository: r\n  tag: ''\n",
        [("image.repository", "string", '`"r"`', "Where."),
         ("image.tag", "string", '`""`', "")],
    ),
    "an empty map is a row of its own": (
        "# -- Labels.\nlabels: {}\n",
        [("labels", "object", "`{}`", "Labels.")],
    ),
    "the keys of a block list's items are not values": (
        "# -- Taints.\ntolerations:\n  - key: a\n    operator: Exists\n# -- After.\nafter: x\n",
        [("tolerations", "list", '`[{"key":"a","operator":"Exists"}]`', "Taints."),
         ("after", "string", '`"x"`', "After.")],
    ),
    "a list at its key's own indentation ends where the next key starts": (
        "a:\n  # -- L.\n  list:\n  - x\n  - y\n  # -- B.\n  b: 1\n",
        [("a.list", "list", '`["x","y"]`', "L."), ("a.b", "int", "`1`", "B.")],
    ),
    "the lines of a block scalar are not keys": (
        "# -- Text.\ntext: |\n  not: a key\n  # not a comment\n# -- Next.\nnext: 1\n",
        [("text", "string", '`"not: a key\\n# not a comment\\n"`', "Text."),
         ("next", "int", "`1`", "Next.")],
    ),
    "a flow map over several lines is one value": (
        "# -- Flow.\nsel: {matchLabels:\n    {a: b}}\n# -- Next.\nnext: true\n",
        [("sel", "object", '`{"matchLabels":{"a":"b"}}`', "Flow."),
         ("next", "bool", "`true`", "Next.")],
    ),
    "@default replaces the default shown": (
        "# -- Tag.\n# @default -- the chart's appVersion\ntag: ''\n",
        [("tag", "string", "the chart's appVersion", "Tag.")],
    ),
    "an indented continuation starts a new line of the cell": (
        "# -- Modes:\n#   helm  made at install\n#   external  yours\nmode: helm\n",
        [("mode", "string", '`"helm"`', "Modes:<br>helm  made at install<br>external  yours")],
    ),
    "markup characters are escaped, outside code spans only": (
        "# -- Name <release>-x, a|b, `<kept>`.\nname: 'a|b'\n",
        [("name", "string", '`"a\\|b"`', "Name &lt;release&gt;-x, a\\|b, `<kept>`.")],
    ),
    "a plain scalar may go on over more indented lines": (
        "# -- Long.\nlong: a plain\n  scalar on two lines\n# -- Next.\nnext: 1\n",
        [("long", "string", '`"a plain scalar on two lines"`', "Long."),
         ("next", "int", "`1`", "Next.")],
    ),
    "a (type) hint names the type shown": (
        "# -- (tpl) A template.\nname: '{{ .Release.Name }}'\n",
        [("name", "tpl", '`"{{ .Release.Name }}"`', "A template.")],
    ),
    "@ignored leaves a key and what it holds out": (
        "# @ignored\ninternal:\n  # -- Hidden.\n  a: 1\n# -- Shown.\nshown: 2\n",
        [("shown", "int", "`2`", "Shown.")],
    ),
    "quoted keys and trailing comments": (
        "# -- Q.\n\"my.key\": 1  # note\n# -- Float.\nratio: 0.5\n# -- Nothing.\nnone: null\n",
        [("my.key", "int", "`1`", "Q."), ("ratio", "float", "`0.5`", "Float."),
         ("none", "null", "`null`", "Nothing.")],
    ),
}


@pytest.mark.parametrize(("text", "expected"), READING.values(), ids=READING.keys())
def test_the_generator_reads_helm_docs_comments(
    text: str, expected: list[tuple[str, str, str, str]]
) -> None:
    assert [(r.key, r.type, r.default, r.description) for r in gen.rows(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1,\n", "values.yaml is not valid YAML"),
        ("- 1\n- 2\n", "values.yaml must be a map at the top"),
    ],
    ids=["bad-yaml", "not-a-map"],
)
def test_values_the_generator_cannot_read_are_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(gen.ValuesError, match=message):
        gen.rows(text)
