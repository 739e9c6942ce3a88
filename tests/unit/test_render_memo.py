"""The memo of rendered objects: equal to a fresh render, never shared, bounded, no errors kept."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.apps import shop, web_component
from webhook.core.errors import TemplateError
from webhook.core.model import Application
from webhook.core.revisions import resolve_revisions
from webhook.core.state import ObservedState
from webhook.render.memo import RenderMemo
from webhook.render.renderer import Renderer, default_templates_dir

# Properties beyond the image, so the memo sees templates' optional parts too.
SIZED = {"port": 8080, "cpu": "0.5"}


def render_all(renderer: Renderer, app: Application) -> list[dict[str, Any]]:
    return renderer.render_application(app, ObservedState(namespace="prod"))


@pytest.mark.parametrize("ctype", ["webservice", "worker", "cloneset"])
def test_memoized_renders_equal_fresh_ones(ctype: str) -> None:
    memo, fresh = Renderer(), Renderer(cache_size=0)
    app = shop(web_component(ctype, **SIZED))
    first = render_all(memo, app)
    assert (first, render_all(memo, app)) == (render_all(fresh, app), render_all(fresh, app))
    assert memo._memo.hits > 0


def test_a_remembered_object_is_never_shared_with_a_caller() -> None:
    renderer = Renderer()
    app = shop(web_component(**SIZED))
    component = app.components[0]
    resolved, _ = resolve_revisions(app, ObservedState(namespace="prod"))
    first = renderer.render_revision(app, component, resolved["web"])
    first["metadata"]["name"] = "changed by the caller"
    second = renderer.render_revision(app, component, resolved["web"])
    assert second["metadata"]["name"] == "web-v1"
    assert second is not first


def test_different_specs_render_differently() -> None:
    renderer = Renderer()
    images = [
        w[0]["spec"]["template"]["spec"]["containers"][0]["image"]
        for w in (
            renderer.render_workload(shop(web_component(image=image, **SIZED)), spec, "web-v1", 5)
            for image in ("a:1", "b:2", "a:1")
            for spec in [shop(web_component(image=image, **SIZED)).components[0].spec()]
        )
    ]
    assert images == ["a:1", "b:2", "a:1"]


@pytest.mark.parametrize(
    ("context_a", "context_b"),
    [
        ({"replicas": 1}, {"replicas": 1.0}),
        ({"replicas": 1}, {"replicas": True}),
        ({"replicas": 1}, {"replicas": "1"}),
        ({"replicas": None}, {}),
    ],
)
def test_contexts_that_differ_in_type_get_different_keys(
    context_a: dict[str, Any], context_b: dict[str, Any]
) -> None:
    memo = RenderMemo(8)
    assert memo.key("t", context_a) != memo.key("t", context_b)


def test_the_memo_keeps_only_the_most_recent_entries() -> None:
    memo = RenderMemo(2)
    for n in range(5):
        key = memo.key("t", {"n": n})
        assert key is not None
        memo.put(key, [{"n": n}])
    assert len(memo) == 2
    assert [memo.get(str(memo.key("t", {"n": n}))) for n in range(5)] == [
        None,
        None,
        None,
        [{"n": 3}],
        [{"n": 4}],
    ]


@pytest.mark.parametrize(
    ("context", "docs", "keyed"),
    [
        ({"when": object()}, [{"a": 1}], False),
        ({"n": 1}, [{1: "integer key"}], True),
        ({"n": 2}, [{"t": (1, 2)}, {"s": {1, 2}}], True),
    ],
    ids=["context-not-json", "integer-key", "set-value"],
)
def test_what_json_cannot_carry_exactly_is_not_memoized(
    context: dict[str, Any], docs: list[dict[str, Any]], keyed: bool
) -> None:
    memo = RenderMemo(8)
    key = memo.key("t", context)
    # A context JSON cannot carry gets no key; docs it cannot carry are refused by put.
    assert (key is not None) is keyed
    if key is not None:
        memo.put(key, docs)
        assert memo.get(key) is None
    assert len(memo) == 0


def test_a_size_of_zero_turns_the_memo_off() -> None:
    renderer = Renderer(cache_size=0)
    app = shop(web_component(**SIZED))
    first, second = render_all(renderer, app), render_all(renderer, app)
    assert (len(renderer._memo), renderer._memo.hits) == (0, 0)
    # Still rendered every time, and the same objects.
    assert [o["kind"] for o in first] == ["ControllerRevision", "Rollout", "Deployment"]
    assert second == first and second is not first


def test_a_failing_render_fails_every_time(tmp_path: Path) -> None:
    shutil.copytree(default_templates_dir(), tmp_path / "t")
    (tmp_path / "t" / "components" / "broken.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ properties.missing | tojson }}}\n"
    )
    renderer = Renderer(tmp_path / "t")
    app = shop(web_component(**SIZED))
    spec = {"name": "web", "type": "broken", "properties": {}}
    for _ in range(2):
        with pytest.raises(TemplateError, match="missing"):
            renderer.render_workload(app, spec, "web-v1", 1)
    assert len(renderer._memo) == 0
