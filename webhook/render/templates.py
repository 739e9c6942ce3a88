"""The template set: discovering component and trait types and compiling them once.

Holds the directory layout (components/, traits/, controllerrevision.yaml.j2, helpers
such as _lib/pod.j2), the ``tojson`` filter every value goes through, and TemplateSet,
which compiles every template up front with StrictUndefined and never re-reads one.
It must not build render contexts (the Renderer does) and must not read anything but
template files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from webhook.core.errors import TemplateError
from webhook.core.shapes import plain

TEMPLATE_SUFFIX = ".yaml.j2"
COMPONENTS_DIR = "components"
TRAITS_DIR = "traits"
REVISION_TEMPLATE = "controllerrevision" + TEMPLATE_SUFFIX


def default_templates_dir() -> Path:
    """The built-in templates: the installed copy, else the source tree's templates/."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "_data" / "templates"
    if installed.is_dir():
        return installed
    return package.parent / "templates"


# A character outside the Basic Multilingual Plane, as JSON escapes it: a surrogate pair
# (after an even number of backslashes, so the first backslash is an escape).
_SURROGATE_PAIR = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _yaml_escape(match: re.Match[str]) -> str:
    # YAML reads no surrogate escapes; it reads the code point as \UXXXXXXXX.
    high, low = int(match.group(2), 16), int(match.group(3), 16)
    code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
    return f"{match.group(1)}\\U{code:08x}"


def _tojson(value: Any) -> str:
    # JSON is a subset of YAML flow syntax; ensure_ascii keeps odd characters escaped (a
    # raw NEL or line separator would be read by YAML as a line break), and characters
    # past U+FFFF are escaped the way YAML reads them.
    if isinstance(value, jinja2.Undefined):
        # StrictUndefined raises its own clear "has no attribute" error when printed.
        value = str(value)
    try:
        text = json.dumps(plain(value), ensure_ascii=True)
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"value cannot be written as JSON: {exc}") from None
    return _SURROGATE_PAIR.sub(_yaml_escape, text) if "\\ud" in text else text


def _discover(dirs: list[Path], sub: str) -> frozenset[str]:
    names: set[str] = set()
    for base in dirs:
        folder = base / sub
        if folder.is_dir():
            names.update(
                p.name[: -len(TEMPLATE_SUFFIX)]
                for p in folder.iterdir()
                if p.is_file() and p.name.endswith(TEMPLATE_SUFFIX) and not p.name.startswith("_")
            )
    return frozenset(names)


def _helpers(dirs: list[Path]) -> set[str]:
    """Every other .j2 file under the template dirs, as loader names."""
    return {
        p.relative_to(base).as_posix() for base in dirs for p in base.rglob("*.j2") if p.is_file()
    }


@dataclass(frozen=True)
class TemplateSet:
    """Every template of some directories, compiled; earlier directories override later."""

    component_types: frozenset[str]
    trait_types: frozenset[str]
    templates: dict[str, jinja2.Template]

    @classmethod
    def compile(cls, dirs: list[Path]) -> TemplateSet:
        component_types = _discover(dirs, COMPONENTS_DIR)
        trait_types = _discover(dirs, TRAITS_DIR)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Compiled once: never stat or re-read a template (or an imported helper) later.
            auto_reload=False,
        )
        env.filters["tojson"] = _tojson
        names = [REVISION_TEMPLATE]
        names += [f"{COMPONENTS_DIR}/{t}{TEMPLATE_SUFFIX}" for t in sorted(component_types)]
        names += [f"{TRAITS_DIR}/{t}{TEMPLATE_SUFFIX}" for t in sorted(trait_types)]
        # Helpers that templates import (e.g. _lib/pod.j2) are compiled up front too.
        names += sorted(_helpers(dirs) - set(names))
        templates: dict[str, jinja2.Template] = {}
        for name in names:
            try:
                templates[name] = env.get_template(name)
            except jinja2.TemplateNotFound:
                raise TemplateError(
                    f"template {name} not found in {', '.join(map(str, dirs))}"
                ) from None
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"template {name}, line {exc.lineno}: {exc.message}") from None
        return cls(component_types, trait_types, templates)
