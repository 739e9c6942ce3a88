"""Kitchen sinks: one Application per built-in component type that sets every property.

tests/golden/kitchen-sink/<type>/ holds application.yaml (every property of the type, and
the traits beside it) and expected.yaml, the pinned `oam-rollout render` output. Each
rendered object must pass Kubernetes' own schemas offline and the local control plane's
`kubectl apply --dry-run=server` (the CloneSet's pod template wrapped as a PodTemplate, so
the API server validates it as it validates any pod). hostPath and NodePort are used, so
the render runs with the flags the chart's componentPolicy values pass to the webhook.
Regenerate with OAM_ROLLOUT_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.fixtures.cluster import ToolRunner
from webhook.cli import main
from webhook.core.properties import BUILTIN_COMPONENT_PROPERTIES
from webhook.core.traits import PATCH_TRAITS

HERE = Path(__file__).resolve().parent / "kitchen-sink"
TYPES = ["webservice", "worker", "cloneset"]
POLICY_FLAGS = ["--allow-host-path", "--allow-expose-type", "NodePort"]
UPDATE = os.environ.get("OAM_ROLLOUT_UPDATE_GOLDEN") == "1"
K8S_VERSION = "1.25.0"
REPO = Path(__file__).resolve().parents[2]


def render(ctype: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["render", "-f", str(HERE / ctype / "application.yaml"), *POLICY_FLAGS])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return out


def application(ctype: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((HERE / ctype / "application.yaml").read_text())
    return loaded


def expected(ctype: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((HERE / ctype / "expected.yaml").read_text()))


@pytest.mark.parametrize("ctype", TYPES)
def test_each_kitchen_sink_sets_every_property_of_its_type(ctype: str) -> None:
    component = application(ctype)["spec"]["components"][0]
    assert component["type"] == ctype
    assert set(component["properties"]) == set(BUILTIN_COMPONENT_PROPERTIES[ctype])
    mounts = component["properties"]["volumeMounts"]
    assert set(mounts) == {"pvc", "configMap", "secret", "emptyDir", "hostPath"}


def test_the_kitchen_sinks_use_every_probe_handler_and_every_trait() -> None:
    handlers = set()
    traits = set()
    for ctype in TYPES:
        component = application(ctype)["spec"]["components"][0]
        for probe in ("livenessProbe", "readinessProbe"):
            handlers |= {"exec", "httpGet", "tcpSocket"} & set(component["properties"][probe])
        traits |= {t["type"] for t in component["traits"]}
    assert handlers == {"exec", "httpGet", "tcpSocket"}
    assert traits == {"rollout", *PATCH_TRAITS}


@pytest.mark.parametrize("ctype", TYPES)
def test_the_kitchen_sink_renders_as_pinned(ctype: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = render(ctype, capsys)
    path = HERE / ctype / "expected.yaml"
    if UPDATE:
        path.write_text(out)
    assert out == path.read_text()


def test_without_the_policy_flags_host_paths_and_node_ports_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["validate", "-f", str(HERE / "webservice" / "application.yaml")])
    _, err = capsys.readouterr()
    assert code == 1
    assert [line.split(": ")[0:2] for line in err.splitlines()] == [
        ["spec.components[0].properties.volumeMounts.hostPath[0]", "Forbidden"],
        ["spec.components[0].properties.exposeType", "Forbidden"],
    ]


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    files = [*sorted((REPO / "charts" / "oam-rollout" / "files" / "crds").glob("*.yaml")),
             *sorted((REPO / "webhook" / "localcluster").rglob("*.yaml"))]
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                spec = doc["spec"]
                for version in spec["versions"]:
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def pod_template_of(cloneset: dict[str, Any]) -> dict[str, Any]:
    """The CloneSet's pod template as a v1 PodTemplate, which the API server validates like
    a pod (the CloneSet CRD keeps its template schemaless)."""
    return {"apiVersion": "v1", "kind": "PodTemplate",
            "metadata": {"name": cloneset["metadata"]["name"],
                         "namespace": cloneset["metadata"].get("namespace")},
            "template": cloneset["spec"]["template"]}


def checked_objects(ctype: str) -> list[dict[str, Any]]:
    docs = expected(ctype)
    return docs + [pod_template_of(d) for d in docs if d["kind"] == "CloneSet"]


@pytest.mark.parametrize("ctype", TYPES)
def test_every_kitchen_sink_object_matches_its_kubernetes_schema(ctype: str) -> None:
    schemas = crd_schemas()
    for obj in checked_objects(ctype):
        key = (obj["apiVersion"], obj["kind"])
        if key in schemas:
            jsonschema.validate(obj, schemas[key])
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.cluster
def test_every_kitchen_sink_object_is_accepted_by_the_api_server(
    kubectl: ToolRunner, namespace: str
) -> None:
    accepted: dict[str, list[str]] = {}
    wanted: dict[str, list[str]] = {}
    for ctype in TYPES:
        objects = checked_objects(ctype)
        for obj in objects:
            obj["metadata"]["namespace"] = namespace
            # No Application of that uid lives here: the owner is the dry run's business.
            obj["metadata"].pop("ownerReferences", None)
        done = kubectl("apply", "--dry-run=server", "-o", "name", "-f", "-",
                       input="\n---\n".join(json.dumps(o) for o in objects))
        accepted[ctype] = done.stdout.split()
        wanted[ctype] = [
            (f"{o['kind'].lower()}.{o['apiVersion'].split('/')[0]}/{o['metadata']['name']}"
             if "/" in o["apiVersion"] else f"{o['kind'].lower()}/{o['metadata']['name']}")
            for o in objects
        ]
    assert accepted == wanted
