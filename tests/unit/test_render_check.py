"""Admission's render check: the same verdicts as rendering, remembered only for successes.

Each test counts the renders the Renderer really makes (template names, in order), so a
check that renders nothing cannot pass for one that renders everything.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.apps import shop, web_component
from webhook.admission.judge import render_errors
from webhook.core.errors import TemplateError
from webhook.core.model import Application
from webhook.core.revisions import resolve_revisions
from webhook.core.state import ObservedState
from webhook.render.renderer import Renderer, default_templates_dir

REVISION, ROLLOUT = "controllerrevision.yaml.j2", "traits/rollout.yaml.j2"


def check(renderer: Renderer, app: Application) -> None:
    component = app.components[0]
    resolved, _ = resolve_revisions(app, ObservedState(namespace="prod"))
    revision = resolved[component.name]
    renderer.check_component(app, component, revision, revision.name, 5, with_rollout=True)


def rendered_by(renderer: Renderer) -> list[str]:
    """The template of every fresh render ``renderer`` makes from now on, in order."""
    names: list[str] = []
    fresh = renderer._render_fresh

    def counted(name: str, context: Any) -> list[dict[str, Any]]:
        names.append(name)
        return fresh(name, context)

    renderer._render_fresh = counted  # type: ignore[method-assign]
    return names


def with_broken_type(tmp_path: Path) -> Path:
    """The built-in templates plus component type ``broken``, which fails on any input."""
    shutil.copytree(default_templates_dir(), tmp_path / "t")
    (tmp_path / "t" / "components" / "broken.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ properties.missing | tojson }}}\n"
    )
    return tmp_path / "t"


@pytest.mark.parametrize("ctype", ["webservice", "worker", "cloneset"])
def test_a_component_that_rendered_fine_is_not_rendered_again(ctype: str) -> None:
    renderer = Renderer()
    rendered = rendered_by(renderer)
    app = shop(web_component(ctype))
    check(renderer, app)
    first = list(rendered)
    check(renderer, app)
    assert (first, rendered) == (
        [REVISION, ROLLOUT, f"components/{ctype}.yaml.j2"],
        [REVISION, ROLLOUT, f"components/{ctype}.yaml.j2"],
    )


def test_a_changed_spec_is_rendered_afresh() -> None:
    renderer = Renderer()
    rendered = rendered_by(renderer)
    check(renderer, shop(web_component(image="a:1")))
    check(renderer, shop(web_component(image="b:2")))
    assert rendered == [REVISION, ROLLOUT, "components/webservice.yaml.j2"] * 2
    assert renderer._memo.misses == 6


def test_a_failing_component_fails_every_check(tmp_path: Path) -> None:
    renderer = Renderer(with_broken_type(tmp_path))
    rendered = rendered_by(renderer)
    app = shop(web_component("broken"))
    failures = []
    for _ in range(2):
        with pytest.raises(TemplateError, match="missing") as caught:
            check(renderer, app)
        failures.append(str(caught.value))
    # The objects that rendered fine come from the memo; the failure is tried afresh.
    assert rendered == [REVISION, ROLLOUT, "components/broken.yaml.j2",
                        "components/broken.yaml.j2"]
    assert failures[0] == failures[1]


def test_with_the_memo_off_every_check_renders() -> None:
    renderer = Renderer(cache_size=0)
    rendered = rendered_by(renderer)
    app = shop(web_component())
    check(renderer, app)
    check(renderer, app)
    assert rendered == [REVISION, ROLLOUT, "components/webservice.yaml.j2"] * 2
    assert (renderer._memo.hits, renderer._memo.misses, len(renderer._memo._checked)) == (
        0, 0, 0)


@pytest.mark.parametrize("cache_size", [256, 0])
def test_admission_finds_the_same_render_errors_with_and_without_the_memo(
    tmp_path: Path, cache_size: int
) -> None:
    renderer = Renderer(with_broken_type(tmp_path), cache_size=cache_size)
    found = []
    for ctype in ("webservice", "broken", "webservice", "broken"):
        app = shop(web_component(ctype))
        resolved, _ = resolve_revisions(app, ObservedState(namespace="prod"))
        found.append([str(e.path) for e in render_errors(app, resolved, renderer)])
    assert found == [[], ["spec.components[0]"], [], ["spec.components[0]"]]
