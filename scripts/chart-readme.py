#!/usr/bin/env python3
"""Makes the values table of the chart's README.md from the comments of its values.yaml.

Holds the values.yaml comment reader (helm-docs conventions), the Markdown table writer
and the command line: `python3 scripts/chart-readme.py` rewrites the table between the
README's markers, `--check` only compares (exit 1 and a diff when they differ), as
tests/chart/test_chart_readme.py does in CI. It must not need anything beyond Python and
PyYAML (a dependency of the project already), and must not touch the README outside the
markers.

The comment conventions, as helm-docs reads them:

    # -- What the key does; the description starts at `# --`,
    # and goes on over the `#` lines that follow it.
    #   An indented continuation line starts a new line in the table.
    # @default -- text shown as the default instead of the value
    key: value

`# -- (type) What...` names the type shown instead of the value's own (e.g. `tpl`), and
a `# @ignored` line above a key leaves it, and whatever it holds, out of the table.
A description must sit directly above its key (a blank line in between cuts it off), and
comment lines above the `# --` line are ordinary comments. Every key with a description
gets a row; so does every key without one that is a scalar, a list or an empty map, unless
an enclosing map has a description (its row then covers the whole map). A map with
entries and no description gets no row of its own: its keys do.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART_DIR = Path(__file__).resolve().parent.parent / "charts" / "oam-rollout"
BEGIN = "<!-- values-table:begin"
BEGIN_LINE = f"{BEGIN} (scripts/chart-readme.py writes this table from values.yaml) -->"
END_LINE = "<!-- values-table:end -->"
REGENERATE = "python3 scripts/chart-readme.py"

# A mapping key line: indentation, key (plain or quoted), colon, then the value (if any).
_KEY = re.compile(
    r"""^(?P<indent>[ ]*)(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\-?:,\[\]{}][^#]*?)"""
    r"""[ ]*:(?:[ ]+(?P<value>.*))?$"""
)
_DESCRIPTION = re.compile(r"^#[ ]?--(?:[ ]+(?P<text>.*))?$")
_DEFAULT = re.compile(r"^#[ ]?@default[ ]+--[ ]+(?P<text>.*)$")
_IGNORED = re.compile(r"^#[ ]?@ignored?$")
_TYPE_HINT = re.compile(r"^\((?P<type>[a-z][a-zA-Z0-9/]*)\)[ ]+")


class ValuesError(ValueError):
    """values.yaml or the README cannot be read as this script expects."""


@dataclass(frozen=True)
class KeyLine:
    """One mapping key of values.yaml, as written: where it sits and what its comment says."""

    path: tuple[str, ...]
    line: int
    description: tuple[str, ...] | None
    default: str | None
    ignored: bool = False


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


def _unquote(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'":
        loaded = yaml.safe_load(key)
        return str(loaded)
    return key


def key_lines(text: str) -> list[KeyLine]:
    """Every mapping key of the document, with the description comment above it.

    Keys inside lists (e.g. the items of `tolerations: [...]` written as a block) and
    inside block scalars are not keys of the values and are skipped.
    """
    found: list[KeyLine] = []
    parents: list[tuple[int, str]] = []
    description: list[str] | None = None
    default: str | None = None
    ignored = False
    # Lines more indented than this (or list items at it, when skip_dash) are skipped.
    skip_indent: int | None = None
    skip_dash = False
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        indent = len(raw) - len(raw.lstrip(" "))
        if skip_indent is not None:
            if not stripped or indent > skip_indent:
                continue
            if skip_dash and indent == skip_indent and stripped.startswith("-"):
                continue
            skip_indent = None
        if not stripped:
            description, default, ignored = None, None, False
            continue
        if stripped.startswith("#"):
            if (match := _DESCRIPTION.match(stripped)) is not None:
                description, default = [match["text"] or ""], None
            elif (match := _DEFAULT.match(stripped)) is not None:
                default = match["text"].strip()
            elif _IGNORED.match(stripped):
                ignored = True
            elif description is not None:
                description.append(stripped[1:])
            continue
        if stripped == "---" or stripped.startswith("--- "):
            parents, description, default, ignored = [], None, None, False
            continue
        if stripped == "-" or stripped.startswith("- "):
            # A block list's items (and whatever they hold) are one value.
            skip_indent, skip_dash = indent, True
            description, default, ignored = None, None, False
            continue
        match = _KEY.match(raw.rstrip())
        if match is None:
            raise ValuesError(f"line {number}: cannot read {stripped!r} as `key: value`")
        while parents and parents[-1][0] >= indent:
            parents.pop()
        key = _unquote(match["key"].strip())
        path = (*(name for _, name in parents), key)
        value = (match["value"] or "").strip()
        found.append(
            KeyLine(path, number, tuple(description) if description else None, default, ignored)
        )
        description, default, ignored = None, None, False
        if not value or value.startswith("#") or value.startswith("&"):
            parents.append((indent, key))
        else:
            # A scalar (plain, quoted or block) or a flow collection: lines indented past
            # the key continue that value.
            skip_indent, skip_dash = indent, False
    return found


def _lookup(values: Any, path: Sequence[str]) -> Any:
    for part in path:
        if not isinstance(values, dict) or part not in values:
            raise ValuesError(f"{'.'.join(path)}: written in values.yaml but not loaded by YAML")
        values = values[part]
    return values


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell (a code span too: GFM splits cells at
    every unescaped `|`)."""
    return text.replace("|", "\\|").replace("\n", " ")


def _prose(text: str) -> str:
    """Comment text as Markdown: outside `code spans`, <release> would be read as an HTML
    tag and vanish, so angle brackets become entities there (inside, they show as typed)."""
    spans = text.split("`")
    for index in range(0, len(spans), 2):
        spans[index] = spans[index].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _cell("`".join(spans))


def _description(lines: Sequence[str]) -> str:
    """The comment lines as one cell: lines are joined with spaces, except that a line
    indented past the comment's own margin starts a new line (<br>), as in a list."""
    parts: list[str] = []
    for index, line in enumerate(lines):
        text = _prose(line.strip())
        if not text:
            continue
        if index and line.startswith("  ") and parts:
            parts.append("<br>" + text)
        else:
            parts.append((" " if parts else "") + text)
    return "".join(parts)


def _default(value: Any, override: str | None) -> str:
    if override is not None:
        return _prose(override)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return f"`{_cell(text)}`"


def rows(text: str) -> list[Row]:
    """The table's rows, in the order of values.yaml."""
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValuesError(f"values.yaml is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise ValuesError("values.yaml must be a map at the top")
    documented: set[tuple[str, ...]] = set()
    ignored: set[tuple[str, ...]] = set()
    table: list[Row] = []
    for key in key_lines(text):
        if key.ignored or any(key.path[:i] in ignored for i in range(1, len(key.path))):
            ignored.add(key.path)
            continue
        value = _lookup(values, key.path)
        covered = any(key.path[:i] in documented for i in range(1, len(key.path)))
        if key.description is not None:
            documented.add(key.path)
        elif covered or (isinstance(value, dict) and value):
            continue
        lines = list(key.description or ())
        hint = _TYPE_HINT.match(lines[0]) if lines else None
        if hint is not None:
            lines[0] = lines[0][hint.end() :]
        table.append(
            Row(
                key=".".join(key.path),
                type=hint["type"] if hint is not None else _type(value),
                default=_default(value, key.default),
                description=_description(lines),
            )
        )
    return table


def table(text: str) -> str:
    lines = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    lines += [f"| `{r.key}` | {r.type} | {r.default} | {r.description} |" for r in rows(text)]
    return "\n".join(lines)


def with_table(readme: str, values_text: str) -> str:
    """The README with the text between its markers replaced by the values table."""
    begin = readme.find(BEGIN)
    end = readme.find(END_LINE)
    if begin < 0 or end < 0 or end < begin:
        raise ValuesError(f"README.md needs the lines {BEGIN_LINE!r} and {END_LINE!r}, in order")
    return f"{readme[:begin]}{BEGIN_LINE}\n{table(values_text)}\n{readme[end:]}"


def undocumented(text: str) -> list[str]:
    """Keys that get a row without a description."""
    return [row.key for row in rows(text) if not row.description]


def _diff(old: str, new: str, name: str) -> Iterator[str]:
    return difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), name, f"{name} (generated)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write (or --check) the values table of the chart's README.md."
    )
    parser.add_argument("--chart", type=Path, default=CHART_DIR, help="chart directory")
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 (with a diff) if out of date"
    )
    args = parser.parse_args(argv)
    readme_path = args.chart / "README.md"
    try:
        values_text = (args.chart / "values.yaml").read_text(encoding="utf-8")
        readme = readme_path.read_text(encoding="utf-8")
        generated = with_table(readme, values_text)
    except (OSError, ValuesError) as exc:
        print(f"chart-readme: {exc}", file=sys.stderr)
        return 2
    for key in undocumented(values_text):
        print(f"chart-readme: {key} has no `# --` description in values.yaml", file=sys.stderr)
    if generated == readme:
        return 0
    if args.check:
        sys.stdout.writelines(_diff(readme, generated, str(readme_path)))
        print(f"chart-readme: {readme_path} is out of date: run {REGENERATE}", file=sys.stderr)
        return 1
    readme_path.write_text(generated, encoding="utf-8")
    print(f"chart-readme: wrote {readme_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
