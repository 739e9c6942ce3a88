"""What admission lets through, the API server accepts; what the API server would refuse,
admission refuses first, at the field it comes from.

Every object rendered from the golden corpus and from generated Applications the webhook's
judge admits goes through `kubectl apply --dry-run=server` on the local control plane (a
CloneSet's pod template also as a PodTemplate: the test CloneSet CRD does not validate it).
Conversely each spec of a table of API-refused ones is shown to be refused by the API
server when rendered without admission, and denied by the real webhook with its path.
A dry run stores nothing, so no controller acts on these objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings

from tests.fixtures.apps import (
    GOLDEN,
    WALKTHROUGH,
    application,
    application_of,
    manifest,
    parsed,
)
from tests.fixtures.apps import component_fields as component
from tests.fixtures.cluster import ToolRunner
from tests.fixtures.generated import INT32_MAX, valid_applications
from webhook.admission.judge import judge
from webhook.core.documents import load_documents
from webhook.core.labels import CLONESET_KIND
from webhook.core.model import parse_application
from webhook.core.objects import observed_state_from_documents
from webhook.core.state import ObservedState
from webhook.render.renderer import Renderer

pytestmark = pytest.mark.cluster

RENDERER = Renderer()


def with_pod_templates(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``objects``, each CloneSet followed by its pod template as a PodTemplate."""
    out: list[dict[str, Any]] = []
    for obj in objects:
        out.append(obj)
        if obj.get("kind") == CLONESET_KIND:
            out.append({"apiVersion": "v1", "kind": "PodTemplate",
                        "metadata": {"name": obj["metadata"]["name"]},
                        "template": obj["spec"]["template"]})
    return out


def dry_run(kubectl: ToolRunner, namespace: str, objects: list[dict[str, Any]]) -> Any:
    # One JSON List, so kubectl reads it as JSON: a stream of documents is read as YAML,
    # which does not take JSON's escapes of characters past U+FFFF.
    listed = {"apiVersion": "v1", "kind": "List", "items": with_pod_templates(objects)}
    return kubectl("apply", "--dry-run=server", "-n", namespace, "-o", "name", "-f", "-",
                   input=json.dumps(listed), check=False)


def rendered(raw: dict[str, Any], observed: ObservedState) -> list[dict[str, Any]]:
    app, errors = parse_application(raw)
    assert app is not None, errors
    return RENDERER.render_application(app, observed)


@pytest.mark.parametrize("step", WALKTHROUGH)
def test_every_object_of_the_golden_corpus_is_accepted_by_the_api_server(
    step: str, kubectl: ToolRunner, namespace: str
) -> None:
    folder = GOLDEN / step
    raw = yaml.safe_load((folder / "application.yaml").read_text())
    live = folder / "live.yaml"
    observed = (observed_state_from_documents(load_documents(live.read_text()))
                if live.is_file() else ObservedState())
    objects = rendered(raw, observed)
    done = dry_run(kubectl, namespace, objects)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split()) == len(with_pod_templates(objects))


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=valid_applications())
def test_every_object_of_an_admitted_generated_application_is_accepted_by_the_api_server(
    raw: dict[str, Any], kubectl: ToolRunner, namespace: str
) -> None:
    # The claim is about what admission lets through (tests/unit/test_generated_applications
    # .py checks that the generator makes nothing else).
    assume(judge(raw, ObservedState(), RENDERER).allowed)
    done = dry_run(kubectl, namespace, rendered(raw, ObservedState()))
    assert done.returncode == 0, f"{done.stderr}\n{json.dumps(raw)}"


# ---- specs the API server refuses ---------------------------------------------------------

EXPOSED = {"image": "nginx", "ports": [{"port": 80, "expose": True}]}
P0 = "spec.components[0].traits[0].properties"
BEYOND_INT32 = application(rollout={"targetSize": 2**31, "rolloutBatches": [
    {"replicas": INT32_MAX}, {"replicas": 1}]})


def scaled_to_target_size(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The workload the controller writes once the last batch of ``raw``'s plan has run
    (the plan does not parse, so render_application would leave replicas out)."""
    app = parsed(raw)
    size = raw["spec"]["components"][0]["traits"][0]["properties"]["targetSize"]
    return RENDERER.render_workload(app, app.components[0].spec(), "express-server-v1", size)


REFUSED = [
    pytest.param(application("a" * 64), None, "metadata.name", id="64-character app name"),
    pytest.param(application_of(component(name="9web", properties=EXPOSED)), None,
                 "spec.components[0].name", id="exposed component not DNS-1035"),
    pytest.param(BEYOND_INT32, scaled_to_target_size, f"{P0}.targetSize",
                 id="targetSize 2^31"),
    pytest.param(application(external_revision="v" * 64), None,
                 "spec.components[0].externalRevision", id="revision name of 64"),
]


@pytest.mark.parametrize(("raw", "objects", "path"), REFUSED)
def test_a_spec_the_api_server_refuses_is_denied_by_the_webhook_with_its_path(
    raw: dict[str, Any], objects: Callable[[dict[str, Any]], list[dict[str, Any]]] | None,
    path: str, webhook_server: Any, kubectl: ToolRunner, namespace: str,
) -> None:
    del webhook_server  # installed: the Application's dry run goes through admission
    # Without admission, the API server refuses what the controller would write...
    written = objects(raw) if objects is not None else rendered(raw, ObservedState())
    refused = dry_run(kubectl, namespace, written)
    assert refused.returncode != 0
    # ("is invalid": a field error; "Error from server": a value that does not decode)
    assert " is invalid: " in refused.stderr or "Error from server" in refused.stderr, (
        refused.stderr)
    # ...so the webhook denies the Application, at the field the value comes from.
    denied = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                     input=manifest(raw), check=False)
    assert denied.returncode != 0
    assert "denied the request" in denied.stderr or " is invalid: " in denied.stderr
    assert f"{path}: " in denied.stderr, denied.stderr
    errors = judge(raw, ObservedState(), RENDERER).errors
    assert [str(e.path) for e in errors] == [path]


def test_each_refused_spec_one_step_inside_the_limit_is_admitted_and_accepted(
    kubectl: ToolRunner, namespace: str
) -> None:
    # The table's specs one step inside each limit: admitted, and accepted by the API
    # server, so each rule refuses exactly what the API server would.
    within = [
        application("a" * 63),
        application_of(component(name="web9", properties=EXPOSED)),
        application(rollout={"targetSize": INT32_MAX,
                             "rolloutBatches": [{"replicas": INT32_MAX - 1}, {"replicas": 1}]}),
        application(external_revision="v" * 63),
    ]
    for raw in within:
        assert judge(raw, ObservedState(), RENDERER).allowed
        done = dry_run(kubectl, namespace, rendered(raw, ObservedState()))
        assert done.returncode == 0, done.stderr
