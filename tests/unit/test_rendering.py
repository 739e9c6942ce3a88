"""The rendering pipeline: which objects come out, with which names, labels, owners and replicas."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.apps import SHOP_UID, shop, web_component
from webhook.core.errors import TemplateError
from webhook.core.revisions import ResolvedRevision
from webhook.core.state import ObservedState
from webhook.render.renderer import Renderer, default_templates_dir

UID = SHOP_UID
OWNER = {
    "apiVersion": "core.oam.dev/v1beta1",
    "kind": "Application",
    "name": "shop",
    "uid": UID,
    "controller": True,
    "blockOwnerDeletion": True,
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


REV = ResolvedRevision("web", "web-v3", 3, "0123456789abcdef", True)


def test_component_and_trait_types_come_from_the_template_folders(renderer: Renderer) -> None:
    assert renderer.component_types == {"webservice", "worker", "cloneset"}
    assert renderer.trait_types == {"rollout", "scaler", "labels", "annotations"}
    assert (default_templates_dir() / "components" / "webservice.yaml.j2").is_file()


def test_a_controller_revision_records_the_component_spec(renderer: Renderer) -> None:
    app = shop(web_component())
    assert renderer.render_revision(app, app.components[0], REV) == {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": "web-v3",
            "namespace": "prod",
            "labels": {
                "controller.oam.dev/component": "web",
                "app.oam.dev/component": "web",
                "app.oam.dev/name": "shop",
                "app.oam.dev/component-revision-hash": "0123456789abcdef",
                "app.kubernetes.io/managed-by": "oam-rollout",
            },
            "ownerReferences": [OWNER],
        },
        "revision": 3,
        "data": {
            "name": "web",
            "type": "webservice",
            "properties": {"image": "stefanprodan/podinfo:4.0.3"},
        },
    }


def test_objects_of_an_application_without_uid_or_namespace_carry_neither(
    renderer: Renderer,
) -> None:
    app = shop(web_component(), uid="", namespace="")
    objects = renderer.render_application(app, ObservedState())
    assert [o["metadata"].keys() for o in objects] == [{"name", "labels"}] * len(objects)


@pytest.mark.parametrize(
    ("partition", "target", "plan"),
    [
        (None, "web-v3", {"targetSize": 5, "rolloutBatches": [{"replicas": 2}, {"replicas": 3}]}),
        (
            0,
            "web-v1",
            {
                "targetSize": 5,
                "rolloutBatches": [{"replicas": 2}, {"replicas": 3}],
                "batchPartition": 0,
            },
        ),
    ],
)
def test_a_rollout_is_named_after_its_component_and_aims_at_the_target(
    renderer: Renderer, partition: int | None, target: str, plan: dict[str, Any]
) -> None:
    component = web_component()
    if partition is not None:
        component["traits"][0]["properties"]["batchPartition"] = partition
    app = shop(component)
    assert renderer.render_rollout(app, app.components[0], target) == {
        "apiVersion": "standard.oam.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "web",
            "namespace": "prod",
            "labels": {"app.oam.dev/component": "web", "app.oam.dev/name": "shop",
                       "app.kubernetes.io/managed-by": "oam-rollout"},
            "ownerReferences": [OWNER],
        },
        "spec": {"targetRevisionName": target, "componentName": "web", "rolloutPlan": plan},
    }


@pytest.mark.parametrize(
    ("ctype", "api_version", "kind", "name", "selector"),
    [
        (
            "webservice",
            "apps/v1",
            "Deployment",
            "web-v3",
            {"app.oam.dev/component": "web", "app.oam.dev/revision": "web-v3"},
        ),
        (
            "worker",
            "apps/v1",
            "Deployment",
            "web-v3",
            {"app.oam.dev/component": "web", "app.oam.dev/revision": "web-v3"},
        ),
        (
            "cloneset",
            "apps.kruise.io/v1alpha1",
            "CloneSet",
            "web",
            {"app.oam.dev/component": "web"},
        ),
    ],
)
def test_workloads_are_named_after_the_revision_except_the_in_place_cloneset(
    renderer: Renderer, ctype: str, api_version: str, kind: str, name: str, selector: dict[str, str]
) -> None:
    app = shop(web_component(ctype))
    workload = renderer.render_workload(app, app.components[0].spec(), "web-v3", 4)[0]
    assert (workload["apiVersion"], workload["kind"], workload["metadata"]["name"]) == (
        api_version,
        kind,
        name,
    )
    assert workload["metadata"]["labels"] == {
        "app.oam.dev/component": "web",
        "app.oam.dev/name": "shop",
        "app.oam.dev/revision": "web-v3",
        "workload.oam.dev/type": ctype,
        "app.kubernetes.io/managed-by": "oam-rollout",
    }
    assert workload["metadata"]["ownerReferences"] == [OWNER]
    assert workload["spec"]["replicas"] == 4
    assert workload["spec"]["selector"] == {"matchLabels": selector}
    # Pod labels never change with the product's own metadata: a new one would re-roll pods.
    assert workload["spec"]["template"]["metadata"]["labels"] == {
        "app.oam.dev/component": "web",
        "app.oam.dev/revision": "web-v3",
    }


def test_properties_become_the_container(renderer: Renderer) -> None:
    app = shop(
        web_component(
            cmd=["node", "server.js"],
            args=["--port", "8080"],
            env=[{"name": "MODE", "value": "prod"}, {"name": "EMPTY"}],
            ports=[{"port": 8080, "expose": True}, {"port": 9090, "name": "metrics"}],
            cpu=0.5,
            memory="128Mi",
            imagePullPolicy="IfNotPresent",
        )
    )
    deployment, service = renderer.render_workload(app, app.components[0].spec(), "web-v3", 5)
    assert deployment["spec"]["template"]["spec"]["containers"] == [
        {
            "name": "web",
            "image": "stefanprodan/podinfo:4.0.3",
            "imagePullPolicy": "IfNotPresent",
            "command": ["node", "server.js"],
            "args": ["--port", "8080"],
            "env": [{"name": "MODE", "value": "prod"}, {"name": "EMPTY", "value": ""}],
            "ports": [
                {"containerPort": 8080, "name": "port-8080", "protocol": "TCP"},
                {"containerPort": 9090, "name": "metrics", "protocol": "TCP"},
            ],
            "resources": {
                "requests": {"cpu": "0.5", "memory": "128Mi"},
                "limits": {"cpu": "0.5", "memory": "128Mi"},
            },
        }
    ]
    # Only exposed ports reach the Service, which spans every revision of the component.
    assert service["kind"] == "Service"
    assert service["metadata"]["name"] == "web"
    assert service["spec"]["selector"] == {"app.oam.dev/component": "web"}
    assert service["spec"]["ports"] == [
        {"port": 8080, "targetPort": 8080, "name": "port-8080", "protocol": "TCP"}
    ]


def test_a_worker_gets_no_ports_and_no_service(renderer: Renderer) -> None:
    spec = {
        "name": "web",
        "type": "worker",
        "properties": {"image": "x", "ports": [{"port": 80, "expose": True}]},
    }
    objects = renderer.render_workload(shop(web_component("worker")), spec, "web-v1", 1)
    assert [o["kind"] for o in objects] == ["Deployment"]
    assert "ports" not in objects[0]["spec"]["template"]["spec"]["containers"][0]


def test_no_replicas_leaves_the_field_to_kubernetes(renderer: Renderer) -> None:
    app = shop(web_component())
    workload = renderer.render_workload(app, app.components[0].spec(), "web-v1", None)[0]
    assert "replicas" not in workload["spec"]


@pytest.mark.parametrize(
    "hostile",
    [
        "nginx\nkind: Secret",
        'nginx"}, {"name": "evil',
        "{{ 7 * 7 }}",
        "nginx # comment",
        "- a\n- b",
        "\u2028line\u2029sep'\"\\",
        # Past U+FFFF: JSON escapes these as surrogate pairs, which YAML does not read.
        "nginx\U0001F600",
        "\\ud83d\\ude00 \U0010FFFF\x85",
    ],
)
def test_a_hostile_string_stays_one_value(renderer: Renderer, hostile: str) -> None:
    app = shop(web_component(image=hostile))
    objects = renderer.render_application(app, ObservedState())
    assert [o["kind"] for o in objects] == ["ControllerRevision", "Rollout", "Deployment"]
    assert objects[2]["spec"]["template"]["spec"]["containers"][0]["image"] == hostile
    assert objects[0]["data"]["properties"]["image"] == hostile


# ---------------------------------------------------------------------------
# user templates


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


JOB = """apiVersion: batch/v1
kind: Job
metadata:
  name: {{ revision | tojson }}
  labels: {{ labels.workload | tojson }}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: {{ component | tojson }}
          image: {{ properties.image | tojson }}
"""


def test_dropped_in_templates_add_types_next_to_the_built_in_ones(tmp_path: Path) -> None:
    write(tmp_path, "components/task.yaml.j2", JOB)
    write(tmp_path, "traits/_helper.yaml.j2", "")
    renderer = Renderer(tmp_path)
    assert renderer.component_types == {"webservice", "worker", "cloneset", "task"}
    assert renderer.trait_types == {"rollout", "scaler", "labels", "annotations"}
    app = shop({"name": "job", "type": "task", "properties": {"image": "busybox"}})
    objects = renderer.render_application(app, ObservedState())
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ControllerRevision", "job-v1"),
        ("Job", "job-v1"),
    ]


def test_templates_and_their_helpers_are_compiled_once(tmp_path: Path) -> None:
    write(tmp_path, "_lib/kind.j2", "{% macro kind() %}Job{% endmacro %}")
    write(
        tmp_path,
        "components/task.yaml.j2",
        '{% from "_lib/kind.j2" import kind %}' + JOB.replace("kind: Job", "kind: {{ kind() }}"),
    )
    renderer = Renderer(tmp_path)
    (tmp_path / "components" / "task.yaml.j2").write_text("{{ broken")
    (tmp_path / "_lib" / "kind.j2").write_text("{{ broken")
    app = shop({"name": "job", "type": "task", "properties": {"image": "busybox"}})
    assert (
        renderer.render_workload(app, app.components[0].spec(), "job-v1", None)[0]["kind"] == "Job"
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"components/bad.yaml.j2": "{% if %}"}, "template components/bad.yaml.j2, line 1:"),
        ({"traits/x.yaml.j2": "{{ a b }}"}, "template traits/x.yaml.j2, line 1:"),
    ],
)
def test_a_broken_template_fails_at_construction_naming_it(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(TemplateError, match=re.escape(message)):
        Renderer(tmp_path)


def test_without_the_built_ins_a_controller_revision_template_is_required(tmp_path: Path) -> None:
    write(tmp_path, "components/task.yaml.j2", JOB)
    with pytest.raises(TemplateError, match=r"controllerrevision\.yaml\.j2 not found"):
        Renderer(tmp_path, builtin=False)


def test_a_missing_templates_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="templates directory not found"):
        Renderer(tmp_path / "nope")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (JOB.replace("properties.image", "properties.tag"), "'dict object' has no attribute 'tag'"),
        ("just a string\n", "lacking apiVersion, kind or metadata.name"),
        ("a: [\n", "rendered invalid YAML"),
    ],
)
def test_a_template_that_renders_badly_raises_a_template_error(
    tmp_path: Path, template: str, message: str
) -> None:
    shutil.copytree(default_templates_dir(), tmp_path, dirs_exist_ok=True)
    write(tmp_path, "components/task.yaml.j2", template)
    renderer = Renderer(tmp_path, builtin=False)
    app = shop({"name": "job", "type": "task", "properties": {"image": "busybox"}})
    with pytest.raises(TemplateError, match=r"template components/task\.yaml\.j2") as caught:
        renderer.render_workload(app, app.components[0].spec(), "job-v1", None)
    assert message in str(caught.value)
