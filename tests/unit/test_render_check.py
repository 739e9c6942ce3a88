"""Admission's render check: the same verdicts as rendering, remembered only for successes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.unit.test_render_memo import make_app
from webhook.admission.judge import render_errors
from webhook.core.errors import TemplateError
from webhook.core.model import Application
from webhook.core.revisions import resolve_revisions
from webhook.core.state import ObservedState
from webhook.render.renderer import Renderer, default_templates_dir


def check(renderer: Renderer, app: Application) -> None:
    component = app.components[0]
    resolved, _ = resolve_revisions(app, ObservedState(namespace="prod"))
    revision = resolved[component.name]
    renderer.check_component(app, component, revision, revision.name, 5, with_rollout=True)


def renders_counted(renderer: Renderer) -> int:
    memo = renderer._memo
    return memo.hits + memo.misses


@pytest.mark.parametrize("ctype", ["webservice", "worker", "cloneset"])
def test_a_component_that_rendered_fine_is_not_rendered_again(ctype: str) -> None:
    renderer = Renderer()
    app = make_app(ctype=ctype)
    check(renderer, app)
    first = renders_counted(renderer)
    check(renderer, app)
    assert (first, renders_counted(renderer)) == (3, 3)


def test_a_changed_spec_is_rendered_afresh() -> None:
    renderer = Renderer()
    check(renderer, make_app(image="a:1"))
    check(renderer, make_app(image="b:2"))
    assert renderer._memo.misses == 6


def test_a_failing_component_fails_every_check(tmp_path: Path) -> None:
    shutil.copytree(default_templates_dir(), tmp_path / "t")
    (tmp_path / "t" / "components" / "broken.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ properties.missing | tojson }}}\n"
    )
    renderer = Renderer(tmp_path / "t")
    app = make_app(ctype="broken")
    for _ in range(2):
        with pytest.raises(TemplateError, match="missing"):
            check(renderer, app)


def test_with_the_memo_off_every_check_renders() -> None:
    renderer = Renderer(cache_size=0)
    app = make_app()
    check(renderer, app)
    check(renderer, app)
    assert renders_counted(renderer) == 0 and len(renderer._memo._checked) == 0


@pytest.mark.parametrize("cache_size", [256, 0])
def test_admission_finds_the_same_render_errors_with_and_without_the_memo(
    tmp_path: Path, cache_size: int
) -> None:
    shutil.copytree(default_templates_dir(), tmp_path / "t")
    (tmp_path / "t" / "components" / "broken.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ properties.missing | tojson }}}\n"
    )
    renderer = Renderer(tmp_path / "t", cache_size=cache_size)
    found = []
    for ctype in ("webservice", "broken", "webservice", "broken"):
        app = make_app(ctype=ctype)
        resolved, _ = resolve_revisions(app, ObservedState(namespace="prod"))
        found.append([str(e.path) for e in render_errors(app, resolved, renderer)])
    assert found == [[], ["spec.components[0]"], [], ["spec.components[0]"]]
