"""The chart's rendered manifests: schema-valid in every TLS mode, and shaped as promised."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import kubernetes_validate
import pytest
from cryptography import x509
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

from tests.fixtures import chart as m

# The oldest schema set kubernetes-validate ships; the chart also targets 1.20 (see the
# PodDisruptionBudget test), whose differences from 1.25 the chart handles explicitly.
SCHEMA_VERSION = "1.25.0"
# Kinds from CRDs of other projects: no Kubernetes schema exists for them.
FOREIGN_KINDS = {"Certificate", "Issuer", "ServiceMonitor"}

CA = m.example_ca_bundle()
MODES: dict[str, dict[str, Any]] = {
    "helm": {"certs": {"mode": "helm"}},
    "cert-manager": {"certs": {"mode": "cert-manager"}},
    "cert-manager with an issuer": {
        "certs": {
            "mode": "cert-manager",
            "certManager": {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}},
        }
    },
    "external": {"certs": {"mode": "external", "secretName": "my-tls", "caBundle": CA}},
    "url (local)": {
        "webhook": {"url": "https://127.0.0.1:9443"},
        "certs": {"mode": "external", "caBundle": CA},
        "controller": {"enabled": False},
    },
    "monitored": {"serviceMonitor": {"enabled": True}},
}


def _webhook_configurations(objects: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
    return m.of_kind(objects, "MutatingWebhookConfiguration") + m.of_kind(
        objects, "ValidatingWebhookConfiguration"
    )


@pytest.mark.parametrize("values", MODES.values(), ids=MODES.keys())
def test_helm_lint_is_clean_in_every_mode(values: dict[str, Any]) -> None:
    result = m.run_helm(["lint", "--strict", str(m.CHART_DIR)], values)
    assert (result.returncode, "[WARNING]" in result.stdout, "[ERROR]" in result.stdout) == (
        0,
        False,
        False,
    ), result.stdout + result.stderr


@pytest.mark.parametrize("values", MODES.values(), ids=MODES.keys())
def test_every_rendered_object_validates_against_the_kubernetes_schemas(
    values: dict[str, Any],
) -> None:
    objects = m.render(values)
    problems = []
    for obj in objects:
        if obj["kind"] in FOREIGN_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
        except (ValidationError, SchemaNotFoundError) as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
    assert problems == []
    assert {"CustomResourceDefinition", "MutatingWebhookConfiguration"} <= m.kinds(objects)


@pytest.mark.parametrize(
    ("values", "present", "absent"),
    [
        (MODES["helm"], {"Secret", "Deployment", "Service"}, {"Certificate", "Issuer"}),
        (MODES["cert-manager"], {"Certificate", "Issuer"}, {"Secret"}),
        (MODES["cert-manager with an issuer"], {"Certificate"}, {"Secret", "Issuer"}),
        (MODES["external"], {"Deployment", "Service"}, {"Secret", "Certificate", "Issuer"}),
        (
            MODES["url (local)"],
            {"MutatingWebhookConfiguration"},
            {"Secret", "Certificate", "Service", "PodDisruptionBudget", "Deployment"}
            # The outside webhook and the local controller bring their own credentials.
            | {"ServiceAccount", "ClusterRole", "Role"},
        ),
        (MODES["monitored"], {"ServiceMonitor"}, set()),
    ],
    ids=["helm", "cert-manager", "cert-manager-issuer", "external", "url", "monitored"],
)
def test_each_tls_mode_renders_only_its_own_certificate_source(
    values: dict[str, Any], present: set[str], absent: set[str]
) -> None:
    rendered = m.kinds(m.render(values))
    assert (present - rendered, absent & rendered) == (set(), set())


def test_helm_mode_ca_signs_a_serving_certificate_for_the_webhook_service() -> None:
    objects = m.render(MODES["helm"])
    secret = m.one(objects, "Secret", "webhook")
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    serving = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    serving.verify_directly_issued_by(ca)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    service = f"{m.RELEASE}-oam-rollout-webhook"
    assert f"{service}.{m.NAMESPACE}.svc" in names.get_values_for_type(x509.DNSName)
    bundles = {
        hook["clientConfig"]["caBundle"]
        for config in _webhook_configurations(objects)
        for hook in config["webhooks"]
    }
    assert bundles == {secret["data"]["ca.crt"]}


@pytest.mark.parametrize(
    ("mode", "expected_bundle", "expected_annotation"),
    [
        ("external", CA, None),
        ("cert-manager", None, f"{m.NAMESPACE}/{m.RELEASE}-oam-rollout-webhook-serving"),
    ],
)
def test_configurations_get_the_ca_from_the_value_or_from_cert_manager(
    mode: str, expected_bundle: str | None, expected_annotation: str | None
) -> None:
    objects = m.render(MODES[mode])
    seen = [
        (
            hook["clientConfig"].get("caBundle"),
            config["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from"),
        )
        for config in _webhook_configurations(objects)
        for hook in config["webhooks"]
    ]
    assert seen == [(expected_bundle, expected_annotation)] * 2


def test_external_mode_mounts_the_named_secret() -> None:
    deployment = m.one(m.render(MODES["external"]), "Deployment", "webhook")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "my-tls"


@pytest.mark.parametrize(
    ("overrides", "failure_policy", "timeout"),
    [
        ({}, "Fail", 5),
        ({"webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 12}}, "Ignore", 12),
    ],
    ids=["defaults", "overridden"],
)
def test_webhook_configurations_follow_the_admission_contract(
    overrides: dict[str, Any], failure_policy: str, timeout: int
) -> None:
    configs = _webhook_configurations(m.render(overrides))
    hooks = [(config["kind"], hook) for config in configs for hook in config["webhooks"]]
    expected_rule = {
        "apiGroups": ["core.oam.dev"],
        "apiVersions": ["v1beta1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["applications"],
        "scope": "Namespaced",
    }
    summary = [
        (
            kind,
            hook["rules"],
            hook["sideEffects"],
            hook["admissionReviewVersions"],
            hook["matchPolicy"],
            hook["failurePolicy"],
            hook["timeoutSeconds"],
            hook["clientConfig"]["service"]["path"],
        )
        for kind, hook in hooks
    ]
    assert summary == [
        ("MutatingWebhookConfiguration", [expected_rule], "None", ["v1"], "Equivalent",
         failure_policy, timeout, "/mutate"),
        ("ValidatingWebhookConfiguration", [expected_rule], "None", ["v1"], "Equivalent",
         failure_policy, timeout, "/validate"),
    ]  # fmt: skip


def test_namespace_selector_excludes_the_release_namespace_and_kube_system() -> None:
    values = {
        "webhook": {
            "excludeNamespaces": ["tenant-a"],
            "namespaceSelector": {"matchLabels": {"rollout.oam.dev/enabled": "true"}},
        }
    }
    selectors = [
        hook["namespaceSelector"]
        for config in _webhook_configurations(m.render(values))
        for hook in config["webhooks"]
    ]
    expected = {
        "matchLabels": {"rollout.oam.dev/enabled": "true"},
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": [m.NAMESPACE, "kube-system", "tenant-a"],
            }
        ],
    }
    assert selectors == [expected, expected]


def test_url_mode_points_both_configurations_at_the_outside_webhook() -> None:
    values = {"webhook": {"url": "https://127.0.0.1:8443/"}, "certs": {"caBundle": CA}}
    configs = _webhook_configurations(m.render(values))
    assert [hook["clientConfig"] for config in configs for hook in config["webhooks"]] == [
        {"url": "https://127.0.0.1:8443/mutate", "caBundle": CA},
        {"url": "https://127.0.0.1:8443/validate", "caBundle": CA},
    ]


@pytest.mark.parametrize(
    ("install", "keep", "expected"),
    [
        (True, True, {"applications.core.oam.dev": "keep", "rollouts.standard.oam.dev": "keep"}),
        (True, False, {"applications.core.oam.dev": None, "rollouts.standard.oam.dev": None}),
        (False, True, {}),
    ],
)
def test_crds_follow_install_and_keep(
    install: bool, keep: bool, expected: dict[str, str | None]
) -> None:
    crds = m.of_kind(
        m.render({"crds": {"install": install, "keep": keep}}), "CustomResourceDefinition"
    )
    policies = {
        crd["metadata"]["name"]: crd["metadata"]
        .get("annotations", {})
        .get("helm.sh/resource-policy")
        for crd in crds
    }
    assert policies == expected


def test_crds_carry_the_chart_labels() -> None:
    crds = m.of_kind(m.render(), "CustomResourceDefinition")
    assert {crd["metadata"]["labels"]["app.kubernetes.io/instance"] for crd in crds} == {m.RELEASE}


def test_pods_run_under_the_restricted_security_context() -> None:
    objects = m.render()
    pods = [d["spec"]["template"]["spec"] for d in m.of_kind(objects, "Deployment")]
    summary = {
        (
            pod["securityContext"]["runAsNonRoot"],
            pod["securityContext"]["seccompProfile"]["type"],
            container["securityContext"]["allowPrivilegeEscalation"],
            tuple(container["securityContext"]["capabilities"]["drop"]),
            container["securityContext"]["readOnlyRootFilesystem"],
            # gunicorn and Python need a writable /tmp on a read-only root.
            any(v["mountPath"] == "/tmp" for v in container["volumeMounts"]),
        )
        for pod in pods
        for container in pod["containers"]
    }
    assert (len(pods), summary) == (2, {(True, "RuntimeDefault", False, ("ALL",), True, True)})


def test_webhook_is_highly_available_and_probed() -> None:
    objects = m.render()
    deployment = m.one(objects, "Deployment", "webhook")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    pdb = m.one(objects, "PodDisruptionBudget", "webhook")
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert (
        deployment["spec"]["replicas"],
        pdb["spec"]["minAvailable"],
        pdb["spec"]["selector"]["matchLabels"],
        anti["podAffinityTerm"]["labelSelector"]["matchLabels"],
        container["livenessProbe"]["httpGet"],
        container["readinessProbe"]["httpGet"],
        [p["name"] for p in container["ports"]],
        sorted(container["resources"]),
    ) == (
        2,
        1,
        deployment["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"],
        {"path": "/healthz", "port": "https", "scheme": "HTTPS"},
        {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
        ["https"],
        ["limits", "requests"],
    )


@pytest.mark.parametrize(
    ("values", "budgets"),
    [
        ({}, 1),
        ({"webhook": {"replicas": 1}}, 0),
        ({"webhook": {"podDisruptionBudget": {"enabled": False}}}, 0),
    ],
    ids=["two-replicas", "one-replica", "disabled"],
)
def test_a_disruption_budget_guards_only_a_replicated_webhook(
    values: dict[str, Any], budgets: int
) -> None:
    webhook_budgets = [
        pdb
        for pdb in m.of_kind(m.render(values), "PodDisruptionBudget")
        if pdb["metadata"]["labels"]["app.kubernetes.io/component"] == "webhook"
    ]
    assert len(webhook_budgets) == budgets


def test_pod_disruption_budget_uses_policy_v1beta1_on_kubernetes_1_20() -> None:
    versions = {
        kube: m.one(m.render(kube_version=kube), "PodDisruptionBudget", "webhook")["apiVersion"]
        for kube in ("1.20.2", "1.25.0")
    }
    assert versions == {"1.20.2": "policy/v1beta1", "1.25.0": "policy/v1"}


def test_scheduling_values_reach_both_deployments() -> None:
    values = {
        "nodeSelector": {"pool": "system"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "system-cluster-critical",
        "affinity": {"nodeAffinity": {}},
        "webhook": {"replicas": 3},
        "controller": {"replicas": 1},
    }
    deployments = m.of_kind(m.render(values), "Deployment")
    summary = {
        d["metadata"]["name"]: (
            d["spec"]["replicas"],
            d["spec"]["template"]["spec"]["nodeSelector"],
            d["spec"]["template"]["spec"]["tolerations"][0]["key"],
            d["spec"]["template"]["spec"]["priorityClassName"],
            d["spec"]["template"]["spec"]["affinity"],
        )
        for d in deployments
    }
    common = ({"pool": "system"}, "dedicated", "system-cluster-critical", {"nodeAffinity": {}})
    assert summary == {
        f"{m.RELEASE}-oam-rollout-webhook": (3, *common),
        f"{m.RELEASE}-oam-rollout-controller": (1, *common),
    }


def _rules_by_role(objects: list[dict[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    return {
        (role["kind"], role["metadata"]["name"]): role["rules"]
        for role in m.of_kind(objects, "ClusterRole") + m.of_kind(objects, "Role")
    }


def test_each_component_runs_under_its_own_service_account() -> None:
    objects = m.render()
    accounts = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["spec"][
            "serviceAccountName"
        ]
        for d in m.of_kind(objects, "Deployment")
    }
    bound = {
        b["subjects"][0]["name"]
        for b in m.of_kind(objects, "ClusterRoleBinding") + m.of_kind(objects, "RoleBinding")
    }
    created = {sa["metadata"]["name"] for sa in m.of_kind(objects, "ServiceAccount")}
    assert (accounts, bound, created) == (
        {"webhook": "rel-oam-rollout-webhook", "controller": "rel-oam-rollout-controller"},
        {"rel-oam-rollout-webhook", "rel-oam-rollout-controller"},
        {"rel-oam-rollout-webhook", "rel-oam-rollout-controller"},
    )


def test_rbac_is_least_privilege() -> None:
    rules = _rules_by_role(m.render())
    webhook_verbs = {
        v for rule in rules[("ClusterRole", "rel-oam-rollout-webhook")] for v in rule["verbs"]
    }
    webhook_resources = {
        r for rule in rules[("ClusterRole", "rel-oam-rollout-webhook")] for r in rule["resources"]
    }
    everything = [
        x
        for role_rules in rules.values()
        for rule in role_rules
        for x in (*rule["verbs"], *rule["resources"], *rule["apiGroups"])
    ]
    leases = [
        rule
        for (kind, _), role_rules in rules.items()
        for rule in role_rules
        if "leases" in rule["resources"]
    ]
    assert (webhook_verbs, webhook_resources, "*" in everything, len(leases)) == (
        {"get", "list", "watch"},
        {"controllerrevisions", "deployments", "rollouts", "clonesets"},
        False,
        1,
    )
    assert ("Role", "rel-oam-rollout-controller") in rules


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"rbac": {"create": False}}, {"ServiceAccount"}),
        (
            {"serviceAccount": {"create": False}},
            {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"},
        ),
    ],
    ids=["rbac-off", "service-accounts-off"],
)
def test_rbac_and_service_accounts_can_be_left_to_the_platform(
    values: dict[str, Any], expected: set[str]
) -> None:
    identity_kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    assert m.kinds(m.render(values)) & identity_kinds == expected


def test_service_monitor_scrapes_the_named_https_port() -> None:
    objects = m.render(MODES["monitored"])
    monitor = m.one(objects, "ServiceMonitor", "webhook")
    service = m.one(objects, "Service", "webhook")
    endpoint = monitor["spec"]["endpoints"][0]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == (
        service["spec"]["ports"][0]["name"],
        "/metrics",
        "https",
    )


def test_controller_is_probed_on_its_named_metrics_port() -> None:
    container = m.one(m.render(), "Deployment", "controller")["spec"]["template"]["spec"][
        "containers"][0]
    assert (
        container["livenessProbe"]["httpGet"],
        container["readinessProbe"]["httpGet"],
        [(p["name"], p["containerPort"]) for p in container["ports"]],
    ) == (
        {"path": "/healthz", "port": "metrics"},
        {"path": "/readyz", "port": "metrics"},
        [("metrics", 8080)],
    )


def test_service_monitor_covers_the_controller_through_its_metrics_service() -> None:
    objects = m.render(MODES["monitored"])
    monitor = m.one(objects, "ServiceMonitor", "controller")
    service = m.one(objects, "Service", "controller")
    pods = m.one(objects, "Deployment", "controller")["spec"]["template"]["metadata"]["labels"]
    endpoint = monitor["spec"]["endpoints"][0]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == (
        service["spec"]["ports"][0]["name"], "/metrics", "http")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    assert service["spec"]["selector"].items() <= pods.items()


def test_no_controller_means_no_controller_monitoring() -> None:
    objects = m.render({**MODES["monitored"], "controller": {"enabled": False}})
    components = {o["metadata"]["labels"]["app.kubernetes.io/component"]
                  for o in objects if o["kind"] in ("ServiceMonitor", "Service")}
    assert components == {"webhook"}
