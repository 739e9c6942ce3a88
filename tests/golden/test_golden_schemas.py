"""Rendered objects are valid for the API server: Kubernetes schemas and our CRDs' schemas.

Built-in kinds are checked strictly (unknown fields are errors) against the oldest
Kubernetes schemas kubernetes-validate ships; the APIs used (apps/v1, v1) have not
changed since 1.16, so what passes there passes on the 1.20 test control plane.
Custom kinds are checked against the openAPIV3Schema of the CRDs the chart installs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.fixtures.apps import application, parsed, plan
from webhook.core.state import ObservedState
from webhook.render.renderer import Renderer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# The chart's CRDs, and the local control plane's (CloneSet: the chart does not install it).
CRD_FILES = [
    *sorted((REPO / "charts" / "oam-rollout" / "files" / "crds").glob("*.yaml")),
    *sorted((REPO / "webhook" / "localcluster").rglob("*.yaml")),
]
K8S_VERSION = "1.25.0"
CASES = sorted(p.name for p in HERE.iterdir() if (p / "expected.yaml").is_file())


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in CRD_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


SCHEMAS = crd_schemas()


def check(obj: dict[str, Any]) -> None:
    key = (obj["apiVersion"], obj["kind"])
    if key in SCHEMAS:
        jsonschema.validate(obj, SCHEMAS[key])
    else:
        assert obj["apiVersion"] in ("v1", "apps/v1"), f"no schema known for {key}"
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_the_crds_of_every_rendered_custom_kind_are_found() -> None:
    assert {
        ("core.oam.dev/v1beta1", "Application"),
        ("standard.oam.dev/v1alpha1", "Rollout"),
        ("apps.kruise.io/v1alpha1", "CloneSet"),
    } <= set(SCHEMAS)


@pytest.mark.parametrize("case", CASES)
def test_every_golden_object_and_application_matches_its_schema(case: str) -> None:
    docs = [
        *yaml.safe_load_all((HERE / case / "expected.yaml").read_text()),
        yaml.safe_load((HERE / case / "application.yaml").read_text()),
    ]
    for doc in docs:
        check(doc)


@pytest.mark.parametrize("ctype", ["webservice", "worker", "cloneset"])
def test_every_built_in_property_renders_to_valid_objects(ctype: str) -> None:
    properties: dict[str, Any] = {
        "image": "stefanprodan/podinfo:4.0.3",
        "imagePullPolicy": "IfNotPresent",
        "cmd": ["./podinfo"],
        "args": ["--port", "9898"],
        "env": [{"name": "PODINFO_UI_COLOR", "value": "#34577c"}, {"name": "EMPTY"}],
        "cpu": 0.25,
        "memory": "64Mi",
    }
    if ctype != "worker":
        properties["ports"] = [
            {"port": 9898, "expose": True},
            {"port": 9797, "name": "metrics", "protocol": "TCP"},
        ]
    raw = application("podinfo", component="podinfo", type=ctype, external_revision=None,
                      properties=properties, rollout=plan(3, 1, 2, batchPartition=0),
                      namespace="demo", uid="8a3f0e4c-1111-4c1e-9c53-0a0a0a0a0a0a")
    app = parsed(raw)
    objects = Renderer().render_application(app, ObservedState())
    expected_kinds = {"webservice": 4, "worker": 3, "cloneset": 3}[ctype]
    assert len(objects) == expected_kinds
    check(raw)
    for obj in objects:
        check(obj)
