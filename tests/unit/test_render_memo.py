"""The memo of rendered objects: equal to a fresh render, never shared, bounded, no errors kept."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from webhook.core.errors import TemplateError
from webhook.core.model import Application, parse_application
from webhook.core.revisions import resolve_revisions
from webhook.core.state import ObservedState
from webhook.render.renderer import Renderer, RenderMemo, default_templates_dir


def make_app(image: str = "stefanprodan/podinfo:4.0.3", ctype: str = "webservice") -> Application:
    raw = {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "shop", "namespace": "prod", "uid": "uid-1"},
        "spec": {
            "components": [
                {
                    "name": "web",
                    "type": ctype,
                    "properties": {"image": image, "port": 8080, "cpu": "0.5"},
                    "traits": [
                        {
                            "type": "rollout",
                            "properties": {
                                "targetSize": 5,
                                "rolloutBatches": [{"replicas": 2}, {"replicas": 3}],
                            },
                        }
                    ],
                }
            ]
        },
    }
    app, errors = parse_application(raw)
    assert app is not None, errors
    return app


def render_all(renderer: Renderer, app: Application) -> list[dict[str, Any]]:
    return renderer.render_application(app, ObservedState(namespace="prod"))


@pytest.mark.parametrize("ctype", ["webservice", "worker", "cloneset"])
def test_memoized_renders_equal_fresh_ones(ctype: str) -> None:
    memo, fresh = Renderer(), Renderer(cache_size=0)
    app = make_app(ctype=ctype)
    first = render_all(memo, app)
    assert (first, render_all(memo, app)) == (render_all(fresh, app), render_all(fresh, app))
    assert memo._memo.hits > 0


def test_a_remembered_object_is_never_shared_with_a_caller() -> None:
    renderer = Renderer()
    app = make_app()
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
            renderer.render_workload(make_app(image=image), spec, "web-v1", 5)
            for image in ("a:1", "b:2", "a:1")
            for spec in [make_app(image=image).components[0].spec()]
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
    ("context", "docs"),
    [
        ({"when": object()}, [{"a": 1}]),
        ({"n": 1}, [{1: "integer key"}]),
        ({"n": 2}, [{"t": (1, 2)}, {"s": {1, 2}}]),
    ],
    ids=["context-not-json", "integer-key", "set-value"],
)
def test_what_json_cannot_carry_exactly_is_not_memoized(
    context: dict[str, Any], docs: list[dict[str, Any]]
) -> None:
    memo = RenderMemo(8)
    key = memo.key("t", context)
    if key is not None:
        memo.put(key, docs)
    assert len(memo) == 0


def test_a_size_of_zero_turns_the_memo_off() -> None:
    renderer = Renderer(cache_size=0)
    app = make_app()
    render_all(renderer, app)
    render_all(renderer, app)
    assert (len(renderer._memo), renderer._memo.hits) == (0, 0)


def test_a_failing_render_fails_every_time(tmp_path: Path) -> None:
    shutil.copytree(default_templates_dir(), tmp_path / "t")
    (tmp_path / "t" / "components" / "broken.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ properties.missing | tojson }}}\n"
    )
    renderer = Renderer(tmp_path / "t")
    app = make_app()
    spec = {"name": "web", "type": "broken", "properties": {}}
    for _ in range(2):
        with pytest.raises(TemplateError, match="missing"):
            renderer.render_workload(app, spec, "web-v1", 1)
    assert len(renderer._memo) == 0
