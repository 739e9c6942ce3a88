"""The chart's optional PrometheusRule: off by default, valid for the API server and for
Prometheus (`promtool check rules`), and each alert fires exactly when it should
(`promtool test rules` over made-up series of the real metric names).

kubernetes-validate ships schemas of built-in kinds only; a PrometheusRule is checked
against the Prometheus Operator's CRD schema (tests/fixtures/crds/), made strict (an
unknown field is an error, where the API server would silently prune it), and its
metadata against kubernetes-validate's strict ObjectMeta schema.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, schema_contents
from referencing import Registry, Resource

from tests.fixtures import chart as m

SCHEMA_VERSION = "1.25.0"
CRD_FILE = (Path(__file__).resolve().parents[1] / "fixtures" / "crds"
            / "prometheusrules.monitoring.coreos.com.yaml")
ON = {"prometheusRule": {"enabled": True}}
URL_MODE = {"webhook": {"url": "https://127.0.0.1:9443"},
            "certs": {"mode": "external", "caBundle": m.example_ca_bundle()}}
ALERTS = ["OamRolloutFailed", "OamRolloutProgressDeadlineExceeded", "OamRolloutWebhookErrors",
          "OamRolloutWebhookSlow"]


def merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Values layered left to right, maps merged key by key."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


def rule_values(**rules: Mapping[str, Any]) -> dict[str, Any]:
    return merged(ON, {"prometheusRule": {"rules": rules}})


def prometheus_rules(values: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return m.of_kind(m.render(values), "PrometheusRule")


def the_rule(values: Mapping[str, Any]) -> Mapping[str, Any]:
    (found,) = prometheus_rules(values)
    return found


def alerts(rule: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


# ---- what renders ------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "names"), [
    pytest.param({}, None, id="off by default"),
    pytest.param(ON, ALERTS, id="on: every alert"),
    pytest.param(merged(ON, {"controller": {"enabled": False}}), ALERTS[2:],
                 id="no controller installed: the webhook's alerts only"),
    pytest.param(merged(ON, URL_MODE), ALERTS[:2],
                 id="a webhook outside the cluster: the controller's alerts only"),
    pytest.param(rule_values(webhookErrors={"enabled": False}, webhookLatency={"enabled": False}),
                 ALERTS[:2], id="alerts turned off one by one"),
    pytest.param(rule_values(**{key: {"enabled": False} for key in (
        "rolloutFailed", "progressDeadlineExceeded", "webhookErrors", "webhookLatency")}),
        None, id="no alert left: no PrometheusRule"),
])
def test_the_rule_holds_the_alerts_of_what_the_release_installs(
    values: dict[str, Any], names: list[str] | None,
) -> None:
    found = prometheus_rules(values)
    assert [sorted(alerts(r)) for r in found] == ([] if names is None else [sorted(names)])


def test_the_rule_carries_the_chart_labels_and_the_extra_ones() -> None:
    rule = the_rule(merged(ON, {"prometheusRule": {"labels": {"release": "kube-prometheus"}}}))
    labels = rule["metadata"]["labels"]
    assert (labels["release"], labels["app.kubernetes.io/instance"],
            rule["metadata"]["namespace"]) == ("kube-prometheus", m.RELEASE, m.NAMESPACE)


@pytest.mark.parametrize(("rules", "alert", "for_", "severity", "in_expr"), [
    pytest.param({"rolloutFailed": {"for": "5m", "severity": "critical"}}, "OamRolloutFailed",
                 "5m", "critical", '{reason!="ProgressDeadlineExceeded"}) == 1',
                 id="a failed rollout: for and severity"),
    pytest.param({"progressDeadlineExceeded": {"enabled": False}}, "OamRolloutFailed",
                 "1m", "warning", "(oam_rollout_rollout_failure_info) == 1",
                 id="without the deadline alert, a failed rollout covers deadlines too"),
    pytest.param({"webhookErrors": {"ratio": 0.2, "for": "15m"}}, "OamRolloutWebhookErrors",
                 "15m", "critical", "[5m])) > 0.2", id="the webhook's error share"),
    pytest.param({"webhookLatency": {"quantile": 0.9, "seconds": 2.5}}, "OamRolloutWebhookSlow",
                 "10m", "warning", "histogram_quantile(0.9,", id="the webhook's latency quantile"),
    pytest.param({"webhookLatency": {"quantile": 0.9, "seconds": 2.5}}, "OamRolloutWebhookSlow",
                 "10m", "warning", "[5m]))) > 2.5", id="the webhook's latency threshold"),
])
def test_each_alert_takes_its_settings_from_the_values(
    rules: dict[str, Any], alert: str, for_: str, severity: str, in_expr: str,
) -> None:
    found = alerts(the_rule(rule_values(**rules)))[alert]
    expr = " ".join(found["expr"].split())
    assert (found["for"], found["labels"]["severity"], expr.count(in_expr)) == (
        for_, severity, 1), expr


@pytest.mark.parametrize("values", [
    pytest.param({"prometheusRule": {"enabled": "yes"}}, id="enabled is a boolean"),
    pytest.param({"prometheusRule": {"rule": {}}}, id="an unknown key"),
    pytest.param(rule_values(rolloutFailed={"for": "5 minutes"}),
                 id="a duration Prometheus cannot read"),
    pytest.param(rule_values(webhookErrors={"ratio": 5}), id="an error share above 1"),
    pytest.param(rule_values(webhookLatency={"quantile": 1}), id="a quantile of 1"),
    pytest.param(rule_values(webhookLatency={"seconds": 0}), id="a latency of nothing"),
    pytest.param(rule_values(webhookLatency={"treshold": 2}), id="a misspelt setting"),
    pytest.param(merged(ON, {"prometheusRule": {"labels": {"team": 7}}}),
                 id="a label not a string"),
])
def test_a_bad_setting_is_refused_by_the_values_schema(values: dict[str, Any]) -> None:
    result = m.template(values)
    assert (result.returncode, "values don't meet the specifications of the schema" in
            result.stderr) == (1, True), result.stderr


def test_helm_lint_is_clean_with_the_rule() -> None:
    result = m.run_helm(["lint", "--strict", str(m.CHART_DIR)], merged(ON, {
        "serviceMonitor": {"enabled": True}}))
    assert (result.returncode, "[WARNING]" in result.stdout, "[ERROR]" in result.stdout) == (
        0, False, False), result.stdout + result.stderr


def test_the_controller_is_scraped_with_its_own_namespace_label() -> None:
    monitors = m.of_kind(m.render({"serviceMonitor": {"enabled": True}}), "ServiceMonitor")
    honored = {mon["metadata"]["labels"]["app.kubernetes.io/component"]:
               [e.get("honorLabels", False) for e in mon["spec"]["endpoints"]]
               for mon in monitors}
    # The per-Rollout series' namespace is the Rollout's; the webhook's have none.
    assert honored == {"controller": [True], "webhook": [False]}


# ---- valid for the API server --------------------------------------------------------------


def strict(schema: Any) -> Any:
    """``schema`` with unknown fields refused wherever it lists the known ones."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_schema() -> dict[str, Any]:
    crd = next(d for d in yaml.safe_load_all(CRD_FILE.read_text()) if d)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return dict(strict(version["schema"]["openAPIV3Schema"]))


def object_meta_errors(metadata: Mapping[str, Any]) -> list[str]:
    """What kubernetes-validate's strict ObjectMeta schema says of ``metadata``."""
    folder = f"kubernetes-json-schema/v{SCHEMA_VERSION}-local-strict"
    definitions = Resource.from_contents(schema_contents(f"{folder}/_definitions.json",
                                                         SCHEMA_VERSION))
    schema = schema_contents(f"{folder}/objectmeta-meta-v1.json", SCHEMA_VERSION)
    validator = jsonschema.Draft202012Validator(schema, registry=definitions @ Registry())
    return [e.message for e in validator.iter_errors(dict(metadata))]


def validation_errors(obj: Mapping[str, Any]) -> list[str]:
    """The errors the API server would find: kubernetes-validate's, where it knows the kind,
    else those of the CRD's schema and of ObjectMeta."""
    try:
        kubernetes_validate.validate(dict(obj), SCHEMA_VERSION, strict=True)
        return []
    except SchemaNotFoundError:
        pass
    validator = jsonschema.Draft202012Validator(crd_schema())
    return [*(e.message for e in validator.iter_errors(dict(obj))),
            *object_meta_errors(obj["metadata"])]


@pytest.mark.parametrize("values", [
    pytest.param(ON, id="the defaults"),
    pytest.param(merged(ON, {"prometheusRule": {"labels": {"release": "prom"}}},
                        {"prometheusRule": {"rules": {"progressDeadlineExceeded": {
                            "enabled": False}}}}),
                 id="extra labels, one alert off"),
])
def test_the_rendered_rule_is_valid_for_the_api_server(values: dict[str, Any]) -> None:
    rule = the_rule(values)
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert validation_errors(rule) == []


@pytest.mark.parametrize(("broken", "error"), [
    pytest.param({"spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up",
                                                               "fro": "1m"}]}]}},
                 "Additional properties are not allowed ('fro' was unexpected)",
                 id="a misspelt field of a rule"),
    pytest.param({"spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up",
                                                               "for": "1 minute"}]}]}},
                 "'1 minute' does not match", id="a duration the operator refuses"),
    pytest.param({"metadata": {"name": "r", "labels": {"a": 1}}}, "1 is not of type 'string'",
                 id="metadata that is not ObjectMeta"),
])
def test_the_crd_check_finds_what_the_api_server_would_refuse(
    broken: dict[str, Any], error: str,
) -> None:
    obj = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
           "metadata": {"name": "r"}, "spec": {"groups": []}, **broken}
    found = validation_errors(obj)
    assert [error in e for e in found] == [True], found  # that error, and no other


# ---- valid for Prometheus, and firing when it should -----------------------------------------


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: ./dev setup installs Debian's prometheus package"
    return found


def rules_file(tmp_path: Path, values: Mapping[str, Any], annotations: bool = True) -> Path:
    """The rule's spec as a Prometheus rules file (annotations left out when not wanted)."""
    groups = the_rule(values)["spec"]["groups"]
    if not annotations:
        groups = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"}
                                  for r in g["rules"]]} for g in groups]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


@pytest.mark.parametrize(("values", "count"), [
    pytest.param(ON, 4, id="the defaults"),
    pytest.param(rule_values(progressDeadlineExceeded={"enabled": False},
                             webhookLatency={"quantile": 0.5, "seconds": 0.25, "for": "1h"}),
                 3, id="other settings"),
])
def test_promtool_accepts_the_rendered_rules(
    tmp_path: Path, values: dict[str, Any], count: int,
) -> None:
    """`promtool check rules` parses every expression and annotation template."""
    result = subprocess.run([promtool(), "check", "rules", str(rules_file(tmp_path, values))],
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout.rstrip().splitlines()[-1:]) == (
        0, [f"  SUCCESS: {count} rules found"]), result.stdout + result.stderr


ROLLOUT = 'namespace="shop",name="web",component="web"'
WEBHOOK = 'namespace="oam-system",job="rel-oam-rollout-webhook"'
WEBHOOK_LABELS = {"namespace": "oam-system", "job": "rel-oam-rollout-webhook"}


def failed(reason: str, instance: str = "10.0.0.1:8080") -> dict[str, str]:
    return {"series": f'oam_rollout_rollout_failure_info{{{ROLLOUT},reason="{reason}",'
                      f'instance="{instance}"}}', "values": "1x20"}


def reviews(code: str, per_minute: int) -> dict[str, str]:
    return {"series": f'oam_rollout_admission_reviews_total{{{WEBHOOK},webhook="validate",'
                      f'operation="CREATE",allowed="false",code="{code}"}}',
            "values": f"0+{per_minute}x40"}


def durations(slowest_bucket: str) -> list[dict[str, str]]:
    """Ten reviews a minute, every one of them in ``slowest_bucket`` and above."""
    return [{"series": f'oam_rollout_admission_duration_seconds_bucket{{{WEBHOOK},'
                       f'webhook="validate",le="{le}"}}',
             "values": f"0+{10 if float(le) >= float(slowest_bucket) else 0}x40"}
            for le in ("0.01", "0.5", "1.0", "2.5", "+Inf")]


def fired(alert: str, **labels: str) -> dict[str, Any]:
    severity = "critical" if alert == "OamRolloutWebhookErrors" else "warning"
    return {"exp_labels": {"severity": severity, **labels}}


FAILED_WEB = {"namespace": "shop", "name": "web", "component": "web"}

FIRING_ROWS = [
    pytest.param(ON, [failed("VerificationFailed")], "30s", "OamRolloutFailed", [],
                 id="a failure is pending for its first minute"),
    pytest.param(ON, [failed("VerificationFailed")], "2m", "OamRolloutFailed",
                 [fired("OamRolloutFailed", **FAILED_WEB, reason="VerificationFailed")],
                 id="a failure that stands fires with its reason"),
    pytest.param(ON, [failed("Forbidden"), failed("Forbidden", "10.0.0.2:8080")], "2m",
                 "OamRolloutFailed",
                 [fired("OamRolloutFailed", **FAILED_WEB, reason="Forbidden")],
                 id="two controller replicas reporting it make one alert"),
    pytest.param(ON, [failed("ProgressDeadlineExceeded")], "2m", "OamRolloutFailed", [],
                 id="a missed deadline is not also a plain failure"),
    pytest.param(ON, [failed("ProgressDeadlineExceeded")], "2m",
                 "OamRolloutProgressDeadlineExceeded",
                 [fired("OamRolloutProgressDeadlineExceeded", **FAILED_WEB)],
                 id="a missed deadline has its own alert"),
    pytest.param(rule_values(progressDeadlineExceeded={"enabled": False}),
                 [failed("ProgressDeadlineExceeded")], "2m", "OamRolloutFailed",
                 [fired("OamRolloutFailed", **FAILED_WEB, reason="ProgressDeadlineExceeded")],
                 id="without the deadline alert a missed deadline is a failure"),
    pytest.param(ON, [reviews("200", 100), reviews("500", 10)], "12m",
                 "OamRolloutWebhookErrors", [fired("OamRolloutWebhookErrors", **WEBHOOK_LABELS)],
                 id="one review in eleven failing fires after five minutes"),
    pytest.param(ON, [reviews("200", 100), reviews("500", 1)], "12m",
                 "OamRolloutWebhookErrors", [], id="one in a hundred does not"),
    pytest.param(ON, [reviews("200", 100), reviews("422", 50)], "12m",
                 "OamRolloutWebhookErrors", [], id="denials are answers, not errors"),
    pytest.param(ON, durations("2.5"), "20m", "OamRolloutWebhookSlow",
                 [fired("OamRolloutWebhookSlow", **WEBHOOK_LABELS, webhook="validate")],
                 id="reviews over a second for ten minutes fire"),
    pytest.param(ON, durations("0.01"), "20m", "OamRolloutWebhookSlow", [],
                 id="fast reviews do not"),
]


@pytest.mark.parametrize(("values", "series", "at", "alert", "expected"), FIRING_ROWS)
def test_each_alert_fires_exactly_when_it_should(
    tmp_path: Path, values: dict[str, Any], series: list[dict[str, str]], at: str, alert: str,
    expected: list[dict[str, Any]],
) -> None:
    rules = rules_file(tmp_path, values, annotations=False)
    case = {"rule_files": [rules.name], "evaluation_interval": "30s", "tests": [{
        "interval": "1m", "input_series": series,
        "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": expected}]}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", "test.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout.rstrip().splitlines()[-1:]) == (0, ["  SUCCESS"]), (
        result.stdout + result.stderr)
