"""The Helm chart on the local control plane: installed the way a platform team would.

One release in local mode (webhook.url on 127.0.0.1, certs.mode=external) admits the
Applications of namespaces labelled ``oam-rollout.dev/chart-test=<release>``; the session
webhook fixture's own configurations skip namespaces carrying that label, so every
admission seen here went through the configurations the chart installed. The tests run
in file order on one release: install, deny, roll out, upgrade, uninstall (last).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import application, manifest
from tests.fixtures.chart import CHART_DIR
from tests.fixtures.cluster import fresh_namespace, namespace_name
from tests.fixtures.polling import eventually
from webhook.core.labels import (
    ANNOTATION_REVISIONS,
    APP_GROUP,
    APP_PLURAL,
    APP_VERSION,
    ROLLOUT_GROUP,
    ROLLOUT_PLURAL,
    ROLLOUT_SUCCEED,
    ROLLOUT_VERSION,
)

pytestmark = pytest.mark.cluster

RELEASE = "chart-local"
RELEASE_NAMESPACE = "oam-chart-system"
SELECTOR_LABEL = "oam-rollout.dev/chart-test"
FULLNAME = f"{RELEASE}-oam-rollout"
VALIDATE_HOOK = f"validate.{FULLNAME}.rollout.oam.dev"


def _configuration(kubectl: Any, kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kubectl("get", kind, name, "-o", "json").stdout)
    return found


def _ca_bundles(kubectl: Any, release: str) -> set[str]:
    bundles = set()
    for kind, suffix in (
        ("mutatingwebhookconfiguration", "mutate"),
        ("validatingwebhookconfiguration", "validate"),
    ):
        config = _configuration(kubectl, kind, f"{release}-oam-rollout-{suffix}")
        bundles |= {hook["clientConfig"].get("caBundle", "") for hook in config["webhooks"]}
    return bundles


def _create_app(api_client: Any, namespace: str, body: dict[str, Any]) -> tuple[int, str]:
    """(HTTP status, Status message) of a create; (201, "") when it was stored."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            APP_GROUP, APP_VERSION, namespace, APP_PLURAL, body
        )
    except ApiException as exc:
        return int(exc.status), str(json.loads(exc.body).get("message", exc.body))
    return 201, ""


def _create_until(
    api_client: Any, namespace: str, body: dict[str, Any], stored: bool
) -> tuple[int, str]:
    """Retry a create until it is stored (or refused): configurations apply asynchronously."""

    return eventually(lambda: _create_app(api_client, namespace, body),
                      until=lambda result: (result[0] == 201) == stored, timeout=30,
                      what=f"{body['metadata']['name']} stored={stored}")


@pytest.fixture(scope="module")
def chart_namespace(api_client: Any) -> Iterator[str]:
    """A namespace only the chart's configurations admit in."""
    with fresh_namespace(api_client, namespace_name("chart"), {SELECTOR_LABEL: RELEASE}) as name:
        yield name


@pytest.fixture(scope="module")
def local_release(
    helm: Any,
    kubectl: Any,
    webhook_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """The chart installed in local mode, pointed at the session webhook on 127.0.0.1."""
    values = {
        "webhook": {
            "url": webhook_server.url,
            "namespaceSelector": {"matchLabels": {SELECTOR_LABEL: RELEASE}},
        },
        "certs": {"mode": "external", "caBundle": webhook_server.ca_bundle},
        "controller": {"enabled": False},
        "crds": {"install": True, "keep": True},
    }
    values_file = tmp_path_factory.mktemp("chart") / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    helm(
        "install", RELEASE, str(CHART_DIR), "--namespace", RELEASE_NAMESPACE,
        "--create-namespace", "--values", str(values_file),
        # The session cluster installed the CRDs at start: the release adopts them.
        "--take-ownership", "--wait", "--timeout", "60s",
    )  # fmt: skip
    try:
        yield {"values": values, "values_file": values_file}
    finally:
        helm("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--ignore-not-found",
             check=False)  # fmt: skip
        kubectl("delete", "namespace", RELEASE_NAMESPACE, "--wait=false", "--ignore-not-found",
                check=False)  # fmt: skip


def test_chart_points_both_configurations_at_the_local_webhook(
    local_release: dict[str, Any], kubectl: Any, webhook_server: Any
) -> None:
    seen = {
        kind: [hook["clientConfig"] for hook in _configuration(kubectl, kind, name)["webhooks"]]
        for kind, name in (
            ("mutatingwebhookconfiguration", f"{FULLNAME}-mutate"),
            ("validatingwebhookconfiguration", f"{FULLNAME}-validate"),
        )
    }
    assert seen == {
        "mutatingwebhookconfiguration": [
            {"url": f"{webhook_server.url}/mutate", "caBundle": webhook_server.ca_bundle}
        ],
        "validatingwebhookconfiguration": [
            {"url": f"{webhook_server.url}/validate", "caBundle": webhook_server.ca_bundle}
        ],
    }


def test_bad_application_is_denied_by_the_chart_installed_webhook(
    local_release: dict[str, Any], api_client: Any, chart_namespace: str
) -> None:
    bad = application(
        "batches-do-not-add-up",
        rollout={"targetSize": 5, "rolloutBatches": [{"replicas": 2}, {"replicas": 2}]},
    )
    status, message = _create_until(api_client, chart_namespace, bad, stored=False)
    assert (status, f'admission webhook "{VALIDATE_HOOK}" denied the request' in message) == (
        422,
        True,
    ), message


def test_good_application_rolls_out_through_the_chart_installed_webhook(
    local_release: dict[str, Any],
    controller_process: Any,
    api_client: Any,
    kubectl: Any,
    chart_namespace: str,
) -> None:
    from kubernetes import client

    kubectl("apply", "-n", chart_namespace, "-f", "-", input=manifest(application()))
    objects = client.CustomObjectsApi(api_client)

    def succeeded() -> Any:
        from kubernetes.client.rest import ApiException

        try:
            rollout = objects.get_namespaced_custom_object(
                ROLLOUT_GROUP, ROLLOUT_VERSION, chart_namespace, ROLLOUT_PLURAL, "express-server"
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        status = rollout.get("status") or {}
        return status if status.get("rollingState") == ROLLOUT_SUCCEED else None

    status = eventually(succeeded, timeout=90, what="the rollout of express-server")
    app = objects.get_namespaced_custom_object(
        APP_GROUP, APP_VERSION, chart_namespace, APP_PLURAL, "rollout-trait-test"
    )
    deploy = client.AppsV1Api(api_client).read_namespaced_deployment(
        "express-server-v1", chart_namespace
    )
    assert (
        json.loads(app["metadata"]["annotations"][ANNOTATION_REVISIONS]),
        status["rolloutTargetSize"],
        status["upgradedReadyReplicas"],
        deploy.status.ready_replicas,
    ) == ({"express-server": "express-server-v1"}, 5, 5, 5)


def test_helm_upgrade_keeps_the_ca_bundle_in_local_mode(
    local_release: dict[str, Any], helm: Any, kubectl: Any, webhook_server: Any
) -> None:
    before = _ca_bundles(kubectl, RELEASE)
    helm(
        "upgrade", RELEASE, str(CHART_DIR), "--namespace", RELEASE_NAMESPACE,
        "--values", str(local_release["values_file"]), "--set", "webhook.timeoutSeconds=7",
    )  # fmt: skip
    after = _ca_bundles(kubectl, RELEASE)
    validate = _configuration(kubectl, "validatingwebhookconfiguration", f"{FULLNAME}-validate")
    assert (before, after, validate["webhooks"][0]["timeoutSeconds"]) == (
        {webhook_server.ca_bundle},
        {webhook_server.ca_bundle},
        7,
    )


def test_helm_mode_reuses_the_ca_of_the_installed_secret(
    helm: Any, kubectl: Any, namespace: str
) -> None:
    # Rendered against the cluster (lookup works) but never applied: a helm-mode release
    # would register `service:` webhooks, which local tests must not do. Only the Secret a
    # first install would create is applied, then a second render (an upgrade) must reuse it.
    def render() -> list[dict[str, Any]]:
        out = helm(
            "template", "chart-helm", str(CHART_DIR), "--namespace", namespace,
            "--dry-run=server", "--set", "certs.mode=helm", "--set", "crds.install=false",
        ).stdout  # fmt: skip
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def ca_bundles(objects: list[dict[str, Any]]) -> set[str]:
        return {
            hook["clientConfig"]["caBundle"]
            for obj in objects
            if obj["kind"].endswith("WebhookConfiguration")
            for hook in obj["webhooks"]
        }

    def secret(objects: list[dict[str, Any]]) -> dict[str, Any]:
        return next(o for o in objects if o["kind"] == "Secret")

    first, unrelated = render(), render()
    installed = secret(first)
    # What `helm install` would have written: the Secret, owned by the release.
    installed["metadata"]["annotations"] = {
        "meta.helm.sh/release-name": "chart-helm",
        "meta.helm.sh/release-namespace": namespace,
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(installed))
    upgrade = render()
    pem = base64.b64decode(secret(first)["data"]["ca.crt"]).decode()
    assert (
        ca_bundles(first) == ca_bundles(unrelated),
        ca_bundles(upgrade),
        secret(upgrade)["data"],
        pem.startswith("-----BEGIN CERTIFICATE-----"),
    ) == (False, ca_bundles(first), secret(first)["data"], True)


def test_helm_uninstall_leaves_no_configuration_and_keeps_crds_and_applications(
    local_release: dict[str, Any],
    helm: Any,
    kubectl: Any,
    api_client: Any,
    chart_namespace: str,
) -> None:
    helm("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait", "--timeout", "60s")
    left = kubectl(
        "get", "mutatingwebhookconfiguration,validatingwebhookconfiguration",
        "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name",
    ).stdout.split()  # fmt: skip
    crds = kubectl(
        "get", "crd", "applications.core.oam.dev", "rollouts.standard.oam.dev", "-o", "name"
    ).stdout.split()
    survivor = kubectl("get", "app", "rollout-trait-test", "-n", chart_namespace, "-o", "name")
    # Nothing admits in this namespace any more, so a later apply is not blocked.
    later = application(
        "after-uninstall",
        rollout={"targetSize": 5, "rolloutBatches": [{"replicas": 2}, {"replicas": 2}]},
    )
    status, message = _create_until(api_client, chart_namespace, later, stored=True)
    assert (left, crds, survivor.stdout.strip(), status) == (
        [],
        [
            "customresourcedefinition.apiextensions.k8s.io/applications.core.oam.dev",
            "customresourcedefinition.apiextensions.k8s.io/rollouts.standard.oam.dev",
        ],
        "application.core.oam.dev/rollout-trait-test",
        201,
    ), message
