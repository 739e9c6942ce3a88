"""The built-in types' properties and the traits beside rollout: checked at their paths, all
at once, and rendered onto the workload and its pods.

The kitchen sinks (tests/golden/kitchen-sink/) pin what every property renders to; these
tests hold the rules: which values are refused and where the error points, the component
policy (hostPath, NodePort / LoadBalancer), the reserved label keys, the scaler / labels /
annotations traits and their place in the revision.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.fixtures.apps import application, application_of, parsed, shop, web_component
from tests.fixtures.webhook import StubRenderer, admission_review
from webhook.admission.server.handler import ReviewHandler
from webhook.admission.server.metrics import Metrics
from webhook.controller.views import replacing, retemplate_body
from webhook.core.errors import ErrorType
from webhook.core.properties import ComponentPolicy
from webhook.core.revisions import spec_hash
from webhook.core.state import ObservedState
from webhook.core.validation import validate_static
from webhook.render.renderer import Renderer

COMPONENT_TYPES = {"webservice", "worker", "cloneset"}
TRAIT_TYPES = {"rollout", "scaler", "labels", "annotations"}
P = "spec.components[0].properties"
T = "spec.components[0].traits"
OPEN = ComponentPolicy(allow_host_path=True,
                       expose_types=frozenset({"ClusterIP", "NodePort", "LoadBalancer"}))


def errors_of(raw: object, policy: ComponentPolicy = OPEN) -> list[tuple[str, ErrorType]]:
    result = validate_static(raw, COMPONENT_TYPES, TRAIT_TYPES, policy)
    return [(str(e.path), e.type) for e in result.errors]


def with_props(ctype: str = "webservice", traits: list[dict[str, Any]] | None = None,
               **properties: Any) -> dict[str, Any]:
    raw = application(type=ctype, properties=properties)
    if traits is not None:
        raw["spec"]["components"][0]["traits"] = traits
    return raw


INV, REQ, UNS = ErrorType.INVALID, ErrorType.REQUIRED, ErrorType.UNSUPPORTED
DUP, FORB = ErrorType.DUPLICATE, ErrorType.FORBIDDEN


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        # quantities
        ({"cpu": float("inf")}, [(f"{P}.cpu", INV)]),
        ({"cpu": float("nan")}, [(f"{P}.cpu", INV)]),
        ({"cpu": ".inf"}, [(f"{P}.cpu", INV)]),
        ({"memory": "-1Gi"}, [(f"{P}.memory", INV)]),
        ({"memory": "12 Mi"}, [(f"{P}.memory", INV)]),
        ({"memory": True}, [(f"{P}.memory", INV)]),
        ({"cpu": 0}, [(f"{P}.cpu", INV)]),
        # ports
        ({"ports": [{"port": 80}, {"port": 80}]}, [(f"{P}.ports[1].name", DUP),
                                                 (f"{P}.ports[1].port", DUP)]),
        ({"ports": [{"port": 80, "name": "web"}, {"port": 81, "name": "web"}]},
         [(f"{P}.ports[1].name", DUP)]),
        ({"ports": [{"port": 80}, {"port": 8080, "name": "port-80"}]},
         [(f"{P}.ports[1].name", DUP)]),
        ({"ports": [{"port": 53, "name": "dns"}, {"port": 53, "name": "dns-tcp",
                                                  "protocol": "UDP"}]}, []),
        ({"exposeType": "ExternalName"}, [(f"{P}.exposeType", UNS)]),
        # env
        ({"env": [{"name": "A", "valueFrom": {}}]}, [(f"{P}.env[0].valueFrom", REQ)]),
        ({"env": [{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {
            "name": "s", "key": "k"}}}]}, [(f"{P}.env[0].valueFrom", INV)]),
        ({"env": [{"name": "A", "valueFrom": {
            "secretKeyRef": {"name": "s", "key": "k"},
            "configMapKeyRef": {"name": "c", "key": "k"}}}]},
         [(f"{P}.env[0].valueFrom.configMapKeyRef", FORB)]),
        ({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "S!", "key": "k/1"}}}]},
         [(f"{P}.env[0].valueFrom.secretKeyRef.name", INV),
          (f"{P}.env[0].valueFrom.secretKeyRef.key", INV)]),
        ({"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]},
         [(f"{P}.env[0].valueFrom.fieldRef", UNS)]),
        # probes
        ({"readinessProbe": {}}, [(f"{P}.readinessProbe", REQ)]),
        ({"readinessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}},
         [(f"{P}.readinessProbe.tcpSocket", FORB)]),
        ({"livenessProbe": {"tcpSocket": {"port": 80}, "successThreshold": 2}},
         [(f"{P}.livenessProbe.successThreshold", INV)]),
        ({"readinessProbe": {"httpGet": {"port": 0}, "periodSeconds": 0}},
         [(f"{P}.readinessProbe.httpGet.path", REQ), (f"{P}.readinessProbe.httpGet.port", INV),
          (f"{P}.readinessProbe.periodSeconds", INV)]),
        ({"readinessProbe": {"grpc": {"port": 80}}},
         [(f"{P}.readinessProbe.grpc", UNS)]),
        # volumes
        ({"volumeMounts": {"emptyDir": [{"name": "a", "mountPath": "/a"}],
                           "secret": [{"name": "a", "mountPath": "/a", "secretName": "s"}]}},
         [(f"{P}.volumeMounts.emptyDir[0].name", DUP),
          (f"{P}.volumeMounts.emptyDir[0].mountPath", DUP)]),
        ({"volumeMounts": {"configMap": [{"name": "Conf", "mountPath": "/c", "cmName": "c",
                                          "defaultMode": 1000,
                                          "items": [{"key": "k", "path": "../x"}]}]}},
         [(f"{P}.volumeMounts.configMap[0].name", INV),
          (f"{P}.volumeMounts.configMap[0].defaultMode", INV),
          (f"{P}.volumeMounts.configMap[0].items[0].path", INV)]),
        ({"volumeMounts": {"emptyDir": [{"name": "t", "mountPath": "/t", "medium": "Disk"}]}},
         [(f"{P}.volumeMounts.emptyDir[0].medium", UNS)]),
        ({"volumeMounts": {"nfs": []}}, [(f"{P}.volumeMounts.nfs", UNS)]),
        # the pod
        ({"hostAliases": [{"ip": "10.0.0.300", "hostnames": ["Bad_Host"]}]},
         [(f"{P}.hostAliases[0].ip", INV), (f"{P}.hostAliases[0].hostnames[0]", INV)]),
        ({"imagePullSecrets": ["ok", ""]}, [(f"{P}.imagePullSecrets[1]", INV)]),
        ({"labels": {"app.oam.dev/revision": "x", "tier": "web"}},
         [(f"{P}.labels[app.oam.dev/revision]", FORB)]),
        ({"labels": {"workload.oam.dev/type": "x", "tier": "not a value"}},
         [(f"{P}.labels[workload.oam.dev/type]", FORB), (f"{P}.labels[tier]", INV)]),
        ({"annotations": {"rollout.oam.dev/requester": "{}", "-bad": "x", "ok": 1}},
         [(f"{P}.annotations[rollout.oam.dev/requester]", FORB),
          (f"{P}.annotations[-bad]", INV), (f"{P}.annotations[ok]", INV)]),
        # KubeVela properties refused here (docs/parity.md says why)
        ({"port": 80}, [(f"{P}.port", UNS)]),
        ({"volumes": []}, [(f"{P}.volumes", UNS)]),
        ({"addRevisionLabel": True}, [(f"{P}.addRevisionLabel", UNS)]),
    ],
)  # fmt: skip
def test_each_property_rule_reports_its_field(
    properties: dict[str, Any], expected: list[tuple[str, ErrorType]]
) -> None:
    assert errors_of(with_props(**properties)) == expected


def test_every_bad_property_is_reported_at_once() -> None:
    raw = with_props(cpu=".inf", ports=[{"port": 80}, {"port": 80, "name": "port-80"}],
                     readinessProbe={}, hostAliases=[{"ip": "x", "hostnames": []}])
    assert errors_of(raw) == [
        (f"{P}.cpu", INV), (f"{P}.readinessProbe", REQ), (f"{P}.hostAliases[0].ip", INV),
        (f"{P}.ports[1].name", DUP), (f"{P}.ports[1].port", DUP)]


@pytest.mark.parametrize(
    ("ctype", "properties"),
    [
        ("worker", {"ports": [{"port": 80}]}),
        ("worker", {"exposeType": "ClusterIP"}),
        ("cloneset", {"exposeType": "ClusterIP"}),
        ("cloneset", {"updateStrategyType": "ReCreate"}),
        ("cloneset", {"postStart": ["true"]}),
    ],
)
def test_properties_a_type_does_not_take_are_unsupported(
    ctype: str, properties: dict[str, Any]
) -> None:
    assert errors_of(with_props(ctype, **properties)) == [(f"{P}.{next(iter(properties))}", UNS)]


HOST_PATH = {"volumeMounts": {"hostPath": [{"name": "a", "mountPath": "/a", "path": "/a"},
                                           {"name": "b", "mountPath": "/b", "path": "/b"}]}}


@pytest.mark.parametrize(
    ("properties", "policy", "expected"),
    [
        (HOST_PATH, ComponentPolicy(), [(f"{P}.volumeMounts.hostPath[0]", FORB),
                                        (f"{P}.volumeMounts.hostPath[1]", FORB)]),
        (HOST_PATH, ComponentPolicy(allow_host_path=True), []),
        ({"exposeType": "NodePort"}, ComponentPolicy(), [(f"{P}.exposeType", FORB)]),
        ({"exposeType": "LoadBalancer"}, ComponentPolicy(expose_types=frozenset(
            {"ClusterIP", "NodePort"})), [(f"{P}.exposeType", FORB)]),
        ({"exposeType": "LoadBalancer"}, OPEN, []),
        ({"exposeType": "ClusterIP"}, ComponentPolicy(), []),
    ],
    ids=["hostPath refused", "hostPath allowed", "NodePort refused",
         "LoadBalancer not listed", "LoadBalancer allowed", "ClusterIP always"],
)  # fmt: skip
def test_host_paths_and_node_ports_need_the_policy_to_allow_them(
    properties: dict[str, Any], policy: ComponentPolicy, expected: list[tuple[str, ErrorType]]
) -> None:
    assert errors_of(with_props(**properties), policy) == expected


SCALER = {"type": "scaler", "properties": {"replicas": 3}}
LABELS = {"type": "labels", "properties": {"team": "shop"}}
ANNOTATIONS = {"type": "annotations", "properties": {"example.com/owner": "shop"}}
ROLLOUT = {"type": "rollout", "properties": {"targetSize": 2, "rolloutBatches": [{"replicas": 2}]}}


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        ([SCALER, LABELS, ANNOTATIONS], []),
        ([{"type": "scaler", "properties": {}}], []),
        ([{"type": "scaler", "properties": {"replicas": -1}}], [(f"{T}[0].properties.replicas",
                                                                INV)]),
        ([{"type": "scaler", "properties": {"replica": 2}}], [(f"{T}[0].properties.replica",
                                                               UNS)]),
        ([ROLLOUT, SCALER], [(f"{T}[1].type", FORB)]),
        ([SCALER, ROLLOUT], [(f"{T}[0].type", FORB)]),
        ([LABELS, LABELS], [(f"{T}[1].type", DUP)]),
        ([{"type": "labels", "properties": {"app.oam.dev/component": "x"}}],
         [(f"{T}[0].properties[app.oam.dev/component]", FORB)]),
        ([{"type": "labels", "properties": {"app.kubernetes.io/managed-by": "me"}}],
         [(f"{T}[0].properties[app.kubernetes.io/managed-by]", FORB)]),
        ([{"type": "annotations", "properties": {"note": None}}],
         [(f"{T}[0].properties[note]", INV)]),
    ],
    ids=["all three", "scaler default", "negative replicas", "unknown scaler property",
         "scaler after rollout", "scaler before rollout", "labels twice", "selector key",
         "managed-by", "null annotation"],
)  # fmt: skip
def test_the_traits_beside_rollout_are_checked_at_their_paths(
    traits: list[dict[str, Any]], expected: list[tuple[str, ErrorType]]
) -> None:
    assert errors_of(with_props(traits=traits)) == expected


# ---- the revision ----------------------------------------------------------------------


def test_a_component_without_pod_traits_keeps_its_revision_spec_and_hash() -> None:
    component = parsed(application()).components[0]
    assert component.spec() == {"name": "express-server", "type": "webservice",
                                "properties": {"image": "stefanprodan/podinfo:4.0.3"},
                                "externalRevision": "express-server-v1"}
    # The same digest as a spec of type and properties only, as every revision had.
    assert spec_hash(component.revision_content()) == spec_hash(
        {"type": "webservice", "properties": {"image": "stefanprodan/podinfo:4.0.3"}})


def test_labels_and_annotations_traits_are_part_of_the_revision_and_scaler_is_not() -> None:
    base = parsed(with_props(traits=[ROLLOUT])).components[0]
    labelled = parsed(with_props(traits=[ROLLOUT, LABELS])).components[0]
    relabelled = parsed(with_props(traits=[ROLLOUT, {"type": "labels", "properties": {
        "team": "checkout"}}])).components[0]
    scaled = parsed(with_props(traits=[SCALER])).components[0]
    digests = {spec_hash(c.revision_content()) for c in (base, labelled, relabelled)}
    assert len(digests) == 3
    assert spec_hash(scaled.revision_content()) == spec_hash(base.revision_content())
    assert labelled.spec()["traits"] == [{"type": "labels", "properties": {"team": "shop"}}]


# ---- what lands on the workload ---------------------------------------------------------


def workload(app: Any) -> dict[str, Any]:
    objects = Renderer().render_application(app, ObservedState())
    found: dict[str, Any] = next(o for o in objects if o["kind"] in ("Deployment", "CloneSet"))
    return found


@pytest.mark.parametrize("ctype", ["webservice", "worker", "cloneset"])
def test_labels_and_annotations_land_on_the_workload_and_its_pods(ctype: str) -> None:
    component = web_component(ctype, labels={"tier": "web"}, annotations={"a": "1"})
    component["traits"] = [*component["traits"], LABELS, ANNOTATIONS]
    w = workload(shop(component))
    template = w["spec"]["template"]["metadata"]
    assert (w["metadata"]["labels"]["team"], w["metadata"]["annotations"]) == (
        "shop", {"example.com/owner": "shop"})
    assert {k: template["labels"][k] for k in ("tier", "team")} == {"tier": "web", "team": "shop"}
    assert template["annotations"] == {"a": "1", "example.com/owner": "shop"}
    # The selector never grows: it is immutable, and it picks the revision's pods.
    assert "team" not in w["spec"]["selector"]["matchLabels"]
    assert "tier" not in w["spec"]["selector"]["matchLabels"]


def test_scaler_sets_the_replicas_of_a_plain_webservice() -> None:
    component = web_component()
    component["traits"] = [SCALER]
    assert workload(shop(component))["spec"]["replicas"] == 3
    component["traits"] = [{"type": "scaler", "properties": {}}]
    assert workload(shop(component))["spec"]["replicas"] == 1
    component["traits"] = []
    assert "replicas" not in workload(shop(component))["spec"]


def test_a_probe_renders_with_kubevelas_defaults_and_env_with_its_source() -> None:
    w = workload(shop(web_component(
        readinessProbe={"httpGet": {"path": "/ready", "port": 9898}, "periodSeconds": 2},
        env=[{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
             {"name": "B"}])))
    container = w["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/ready", "port": 9898}, "initialDelaySeconds": 0,
        "periodSeconds": 2, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    assert container["env"] == [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
        {"name": "B", "value": ""}]


def test_a_webservice_service_takes_its_expose_type() -> None:
    raw = application_of(web_component(ports=[{"port": 80, "expose": True}],
                                       exposeType="LoadBalancer"), name="shop")
    objects = Renderer().render_application(parsed(raw), ObservedState())
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["spec"]["type"] == "LoadBalancer"


# ---- re-templating a CloneSet in place ----------------------------------------------------


def test_a_retemplated_cloneset_loses_what_the_new_template_drops() -> None:
    old_template = {"metadata": {"labels": {"a": "1", "team": "x"}},
                    "spec": {"containers": [{"name": "c"}],
                             "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["h"]}]}}
    new_template = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c"}]}}
    assert replacing(old_template, new_template) == {
        "metadata": {"labels": {"a": "1", "team": None}},
        "spec": {"containers": [{"name": "c"}], "hostAliases": None}}
    live = {"metadata": {"labels": {"x": "y"}}, "spec": {"template": copy.deepcopy(old_template)}}
    doc = {"metadata": {"labels": {"a": "1"}, "annotations": {"n": "1"}},
           "spec": {"template": new_template, "updateStrategy": {"type": "InPlaceIfPossible"}}}
    assert retemplate_body(live, doc, 5, 5) == {
        "metadata": {"labels": {"a": "1"}, "annotations": {"n": "1"}},
        "spec": {"replicas": 5, "template": replacing(old_template, new_template),
                 "updateStrategy": {"type": "InPlaceIfPossible", "partition": 5}}}


# ---- the policy through the webhook's own path ----------------------------------------------


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [(ComponentPolicy(), False), (OPEN, True)],
    ids=["default policy: denied", "the chart allows them: admitted"],
)
def test_the_validating_webhook_judges_host_paths_and_node_ports_by_its_policy(
    policy: ComponentPolicy, allowed: bool
) -> None:
    raw = with_props(exposeType="NodePort", **HOST_PATH)
    handler = ReviewHandler(lambda *a, **k: ObservedState(), StubRenderer(), Metrics(),
                            policy=policy)
    status, body = handler.answer("validate", json.dumps(admission_review(raw)).encode(), 0.0)
    response = json.loads(body)["response"]
    causes = [c["field"] for c in response.get("status", {}).get("details", {}).get(
        "causes", [])]
    assert (status, response["allowed"], causes) == (200, allowed, [] if allowed else [
        f"{P}.volumeMounts.hostPath[0]", f"{P}.volumeMounts.hostPath[1]", f"{P}.exposeType"])
