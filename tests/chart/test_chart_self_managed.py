"""certs.mode=selfManaged renders the same every time, and gives the webhook what it needs.

The GitOps promise: no genCA, no lookup, no caBundle, no Secret in the output, so two
`helm template` runs (what Argo CD does on every sync) are identical. The webhook's
arguments are parsed by the CLI's own parser, and its RBAC names the very Secret and
configurations those arguments name.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

from tests.fixtures import chart as m
from webhook.admission.certplan import parse_configurations
from webhook.cli import build_parser

SELF_MANAGED = {"certs": {"mode": "selfManaged"}}
LOCAL = {
    "webhook": {"url": "https://127.0.0.1:9443"},
    "certs": {"mode": "selfManaged"},
    "controller": {"enabled": False},
}
SECRET = f"{m.RELEASE}-oam-rollout-webhook-self-managed-tls"
CONFIGURATIONS = {
    "MutatingWebhookConfiguration": f"{m.RELEASE}-oam-rollout-mutate",
    "ValidatingWebhookConfiguration": f"{m.RELEASE}-oam-rollout-validate",
}


def _webhook_args(values: dict[str, Any]) -> Any:
    deployment = m.one(m.render(values), "Deployment", "webhook")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return build_parser().parse_args([str(a) for a in container["args"]])


@pytest.mark.parametrize("values", [SELF_MANAGED, LOCAL], ids=["in-cluster", "url (local)"])
def test_two_helm_template_runs_render_identically(values: dict[str, Any]) -> None:
    first, second = m.template(values), m.template(values)
    assert (first.returncode, first.stdout == second.stdout) == (0, True), first.stderr


@pytest.mark.parametrize("values", [SELF_MANAGED, LOCAL], ids=["in-cluster", "url (local)"])
def test_no_secret_and_no_ca_bundle_is_rendered(values: dict[str, Any]) -> None:
    objects = m.render(values)
    bundles = [
        hook["clientConfig"].get("caBundle")
        for kind in CONFIGURATIONS
        for config in m.of_kind(objects, kind)
        for hook in config["webhooks"]
    ]
    assert (m.of_kind(objects, "Secret"), bundles) == ([], [None, None])


@pytest.mark.parametrize("values", [SELF_MANAGED, LOCAL], ids=["in-cluster", "url (local)"])
def test_helm_lint_is_clean_and_every_object_is_schema_valid(values: dict[str, Any]) -> None:
    lint = m.run_helm(["lint", "--strict", str(m.CHART_DIR)], values)
    problems = []
    for obj in m.render(values):
        try:
            kubernetes_validate.validate(obj, "1.25.0", strict=True)
        except (ValidationError, SchemaNotFoundError) as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
    assert (lint.returncode, "[WARNING]" in lint.stdout, problems) == (0, False, []), lint.stdout


def test_the_webhook_runs_self_managed_for_its_own_secret_and_configurations() -> None:
    args = _webhook_args(SELF_MANAGED)
    host = f"{m.RELEASE}-oam-rollout-webhook.{m.NAMESPACE}.svc"
    assert (
        args.self_managed_certs,
        args.tls_cert,
        args.certs_secret,
        args.certs_namespace,
        {str(ref) for ref in parse_configurations(args.webhook_configurations)},
        host in args.cert_hosts.split(","),
        (args.cert_validity, args.rotate_before),
    ) == (
        True, None, SECRET, m.NAMESPACE,
        {f"mutating/{CONFIGURATIONS['MutatingWebhookConfiguration']}",
         f"validating/{CONFIGURATIONS['ValidatingWebhookConfiguration']}"},
        True, ("8760h", "720h"),
    )  # fmt: skip


def test_the_validity_values_reach_the_webhook() -> None:
    values = {"certs": {"mode": "selfManaged",
                        "selfManaged": {"validity": "2160h", "rotateBefore": "360h"}}}  # fmt: skip
    args = _webhook_args(values)
    assert (args.cert_validity, args.rotate_before) == ("2160h", "360h")


def test_the_webhook_pod_mounts_no_tls_secret() -> None:
    spec = m.one(m.render(SELF_MANAGED), "Deployment", "webhook")["spec"]["template"]["spec"]
    assert [v["name"] for v in spec["volumes"]] == ["tmp"]


def _rules(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    role = m.one(objects, kind, "webhook")
    return [dict(rule) for rule in role["rules"]]


def test_rbac_grants_the_secret_and_the_configurations_by_name() -> None:
    objects = m.render(SELF_MANAGED)
    cluster_rules = [r for r in _rules(objects, "ClusterRole")
                     if r["apiGroups"] == ["admissionregistration.k8s.io"]]  # fmt: skip
    assert (_rules(objects, "Role"), cluster_rules) == (
        [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET],
             "verbs": ["get", "update"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        ],
        [
            {"apiGroups": ["admissionregistration.k8s.io"],
             "resources": ["mutatingwebhookconfigurations"],
             "resourceNames": [CONFIGURATIONS["MutatingWebhookConfiguration"]],
             "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["admissionregistration.k8s.io"],
             "resources": ["validatingwebhookconfigurations"],
             "resourceNames": [CONFIGURATIONS["ValidatingWebhookConfiguration"]],
             "verbs": ["get", "list", "watch", "patch"]},
        ],
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["helm", "cert-manager"])
def test_other_modes_grant_no_secret_or_configuration_access(mode: str) -> None:
    objects = m.render({"certs": {"mode": mode}})
    webhook_roles = [o for o in m.of_kind(objects, "Role")
                     if o["metadata"]["labels"]["app.kubernetes.io/component"] == "webhook"]
    cluster_groups = {g for r in _rules(objects, "ClusterRole") for g in r["apiGroups"]}
    assert (webhook_roles, "admissionregistration.k8s.io" in cluster_groups) == ([], False)


def test_the_secret_name_can_be_chosen() -> None:
    values = {"certs": {"mode": "selfManaged", "secretName": "my-webhook-tls"}}
    objects = m.render(values)
    assert (_webhook_args(values).certs_secret, _rules(objects, "Role")[0]["resourceNames"]) == (
        "my-webhook-tls", ["my-webhook-tls"],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"certs": {"mode": "selfManaged", "caBundle": m.example_ca_bundle()}},
         "certs.mode=selfManaged: the webhook injects its own caBundle"),
        ({"certs": {"mode": "selfManaged", "selfManaged": {"validity": "365d"}}}, "validity"),
        ({"certs": {"mode": "selfManaged", "selfManaged": {"renewBefore": "1h"}}},
         "renewBefore"),
    ],
    ids=["ca-bundle-given", "day-unit", "misspelt-key"],
)  # fmt: skip
def test_self_managed_values_that_cannot_work_are_refused(
    values: dict[str, Any], message: str
) -> None:
    result = m.template(values)
    assert (result.returncode != 0, message in result.stderr) == (True, True), result.stderr
