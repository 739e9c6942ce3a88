"""certs.mode=selfManaged on the local control plane: the webhook keeps its own TLS.

One release in local mode (webhook.url on 127.0.0.1, certs.mode=selfManaged: no caBundle
rendered) admits the Applications of a namespace labelled
``oam-rollout.dev/chart-test=<release>``; its webhook runs as a local process with
``--self-managed-certs`` and short-lived certificates (20 s, replaced 10 s before they
end), so a CA is staged, switched to and pruned every few seconds during every test here.
Besides: two replicas racing for the Secret, the guarded API writes the race relies on,
a Secret that is not ours, and the chart's RBAC being enough for the mode.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.fixtures.apps import application, manifest
from tests.fixtures.chart import CHART_DIR
from tests.fixtures.cluster import fresh_namespace, namespace_name
from tests.fixtures.polling import eventually
from tests.fixtures.selfmanaged import (
    SelfManagedWebhook,
    ca_bundles_of,
    launch,
    secret_material,
    start_self_managed,
    wait_ready,
)
from webhook.core.labels import APP_GROUP, APP_PLURAL, APP_VERSION
from webhook.kube.client import connect
from webhook.kube.webhookcerts import (
    create_secret,
    patch_configuration,
    read_configuration,
    replace_secret,
)

pytestmark = pytest.mark.cluster

RELEASE = "chart-selfmanaged"
FULLNAME = f"{RELEASE}-oam-rollout"
CONFIGS = {"mutating": f"{FULLNAME}-mutate", "validating": f"{FULLNAME}-validate"}
CONFIG_FLAG = f"mutating/{CONFIGS['mutating']},validating/{CONFIGS['validating']}"
SECRET = f"{FULLNAME}-webhook-self-managed-tls"
SELECTOR_LABEL = "oam-rollout.dev/chart-test"
VALIDATE_HOOK = f"validate.{FULLNAME}.rollout.oam.dev"
BAD_FIELD = "spec.components[0].traits[0].properties.rolloutBatches"


def _admit(api_client: Any, namespace: str, body: dict[str, Any]) -> tuple[int, str]:
    """(HTTP status, message) of a server-side dry-run create: both webhooks are called,
    nothing is stored. (201, "") when admitted."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            APP_GROUP, APP_VERSION, namespace, APP_PLURAL, body, dry_run="All"
        )
    except ApiException as exc:
        try:
            return int(exc.status), str(json.loads(exc.body).get("message", exc.body))
        except (TypeError, ValueError):
            return int(exc.status or 0), str(exc.reason)
    return 201, ""


def _bad_application() -> dict[str, Any]:
    return application(
        "batches-do-not-add-up",
        rollout={"targetSize": 5, "rolloutBatches": [{"replicas": 2}, {"replicas": 2}]},
    )


@pytest.fixture(scope="module")
def release_namespace(api_client: Any) -> Iterator[str]:
    with fresh_namespace(api_client, namespace_name("selfmanaged-system")) as name:
        yield name


@pytest.fixture(scope="module")
def app_namespace(api_client: Any) -> Iterator[str]:
    """A namespace only this release's configurations admit in."""
    with fresh_namespace(api_client, namespace_name("selfmanaged"), {SELECTOR_LABEL: RELEASE}) \
            as name:  # fmt: skip
        yield name


@pytest.fixture(scope="module")
def self_managed(
    cluster: Any,
    helm: Any,
    release_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """The webhook (self-managed, 20 s certificates) started first, then the chart in local
    selfManaged mode pointed at it: the configurations arrive without a caBundle."""
    workdir = tmp_path_factory.mktemp("selfmanaged")
    server = start_self_managed(
        workdir, Path(cluster.kubeconfig), secret=SECRET, namespace=release_namespace,
        configurations=CONFIG_FLAG, validity="20s", rotate_before="10s",
    )  # fmt: skip
    values = {
        "webhook": {
            "url": server.url,
            "namespaceSelector": {"matchLabels": {SELECTOR_LABEL: RELEASE}},
        },
        "certs": {"mode": "selfManaged"},
        "controller": {"enabled": False},
        "crds": {"install": False},
    }
    values_file = workdir / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    try:
        helm("install", RELEASE, str(CHART_DIR), "--namespace", release_namespace,
             "--values", str(values_file), "--wait", "--timeout", "60s")  # fmt: skip
        yield {"server": server, "values_file": values_file, "namespace": release_namespace}
    finally:
        helm("uninstall", RELEASE, "--namespace", release_namespace, "--ignore-not-found",
             check=False)  # fmt: skip
        server.stop()


def test_the_webhook_puts_its_secrets_ca_into_both_rendered_configurations(
    self_managed: dict[str, Any], kubectl: Any
) -> None:
    def bundles() -> tuple[set[str], str]:
        material = secret_material(kubectl, self_managed["namespace"], SECRET)
        return ca_bundles_of(kubectl, CONFIGS), material.ca_bundle_b64 if material else ""

    # A rotation may land between the two reads: ask until they agree.
    found, expected = eventually(bundles, until=lambda b: b[0] == {b[1]}, timeout=20,
                                 what="the Secret's CA in both configurations")  # fmt: skip
    pem = base64.b64decode(expected).decode()
    assert (len(found), pem.startswith("-----BEGIN CERTIFICATE-----")) == (1, True)


def test_a_bad_application_is_denied_with_its_path_and_a_good_one_is_admitted(
    self_managed: dict[str, Any], api_client: Any, app_namespace: str
) -> None:
    denied = eventually(lambda: _admit(api_client, app_namespace, _bad_application()),
                        until=lambda r: r[0] == 422, timeout=30,
                        what="the bad Application denied by the chart's webhook")  # fmt: skip
    admitted = _admit(api_client, app_namespace, application("good"))
    assert (
        f'admission webhook "{VALIDATE_HOOK}" denied the request' in denied[1],
        BAD_FIELD in denied[1],
        admitted,
    ) == (True, True, (201, "")), denied


def test_short_lived_certificates_rotate_without_a_failed_admission(
    self_managed: dict[str, Any], api_client: Any, kubectl: Any, app_namespace: str
) -> None:
    server: SelfManagedWebhook = self_managed["server"]
    eventually(lambda: _admit(api_client, app_namespace, application("warm-up"))[0] == 201,
               timeout=30, what="admission working before the count starts")  # fmt: skip
    served: set[bytes] = set()
    bundles: set[bytes] = set()
    failures: list[str] = []
    admitted = 0
    began = time.monotonic()
    while time.monotonic() - began < 32:  # the 20 s CAs turn over more than once
        status, message = _admit(api_client, app_namespace, application(f"app-{admitted}"))
        if status == 201:
            admitted += 1
        else:
            failures.append(f"{time.monotonic() - began:.1f}s: {status} {message}")
        served.add(server.served_certificate())
        material = secret_material(kubectl, self_managed["namespace"], SECRET)
        if material is not None:
            bundles.add(material.ca_bundle)
    assert (failures, admitted >= 20, len(served) >= 3, len(bundles) >= 3) == (
        [], True, True, True,
    ), f"{admitted} admitted, {len(served)} certificates, {len(bundles)} bundles"


def test_a_sync_that_wipes_the_ca_bundle_is_healed_within_10_seconds(
    self_managed: dict[str, Any], helm: Any, kubectl: Any, api_client: Any, app_namespace: str
) -> None:
    namespace = self_managed["namespace"]
    rendered = helm(
        "template", RELEASE, str(CHART_DIR), "--namespace", namespace,
        "--values", str(self_managed["values_file"]),
        "--show-only", "templates/webhook-admission.yaml",
    ).stdout  # fmt: skip
    def replace(obj: dict[str, Any]) -> Any:
        """What a GitOps replace-sync sends: the rendered object as a whole, at the live
        version (read again when the webhook's rotation moved it on meanwhile)."""
        live = json.loads(kubectl("get", obj["kind"].lower(), obj["metadata"]["name"],
                                  "-o", "json").stdout)  # fmt: skip
        obj["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        result = kubectl("replace", "-o", "json", "-f", "-", input=json.dumps(obj), check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    stored = []
    began = time.monotonic()
    for obj in (doc for doc in yaml.safe_load_all(rendered) if doc):
        replaced = eventually(lambda obj=obj: replace(obj), timeout=10, interval=0,
                              what=f"{obj['kind']} replaced")  # fmt: skip
        stored += [hook["clientConfig"].get("caBundle") for hook in replaced["webhooks"]]
    eventually(lambda: _admit(api_client, app_namespace, application("after-sync")),
               equals=(201, ""), timeout=10, interval=0.1,
               what="admission working again after the sync")  # fmt: skip
    healed_after = time.monotonic() - began
    material = secret_material(kubectl, namespace, SECRET)
    assert material is not None
    assert (stored, healed_after < 10) == ([None, None], True), healed_after
    eventually(lambda: ca_bundles_of(kubectl, CONFIGS) <= {
        m.ca_bundle_b64 for m in [secret_material(kubectl, namespace, SECRET)] if m
    }, timeout=10, what="both configurations holding the Secret's bundle")  # fmt: skip


def test_two_replicas_started_together_end_with_one_ca(
    cluster: Any, kubectl: Any, release_namespace: str, tmp_path: Path
) -> None:
    secret = f"race-{secrets.token_hex(3)}"
    replicas = [
        launch(tmp_path, Path(cluster.kubeconfig), secret=secret, namespace=release_namespace,
               configurations="mutating/race-absent,validating/race-absent", name=f"r{i}")
        for i in range(2)
    ]  # fmt: skip
    try:
        for replica in replicas:
            wait_ready(replica)
        material = secret_material(kubectl, release_namespace, secret)
        assert material is not None
        cas = x509.load_pem_x509_certificates(material.ca_bundle)
        serving = x509.load_pem_x509_certificate(material.tls_crt).public_bytes(Encoding.DER)
        served = [replica.served_certificate() for replica in replicas]
        assert (len(cas), served == [serving, serving]) == (1, True)
    finally:
        for replica in replicas:
            replica.stop()


def test_a_secret_that_is_not_the_webhooks_is_never_overwritten(
    cluster: Any, kubectl: Any, release_namespace: str, tmp_path: Path
) -> None:
    name = f"foreign-{secrets.token_hex(3)}"
    kubectl("create", "secret", "generic", name, "-n", release_namespace,
            "--from-literal=ca.crt=mine")  # fmt: skip
    server = launch(tmp_path, Path(cluster.kubeconfig), secret=name,
                    namespace=release_namespace, configurations="mutating/absent")  # fmt: skip
    code = server.process.wait(timeout=60)
    data = json.loads(kubectl("get", "secret", name, "-n", release_namespace, "-o",
                              "json").stdout)["data"]  # fmt: skip
    lines = [line for line in server.log().splitlines() if "not made by a self-managed" in line]
    assert (code, data, len(lines)) == (2, {"ca.crt": base64.b64encode(b"mine").decode()}, 1)


def test_guarded_writes_lose_cleanly_to_a_writer_that_was_first(
    cluster: Any, kubectl: Any, release_namespace: str
) -> None:
    api = connect(cluster.kubeconfig)
    name = f"guarded-{secrets.token_hex(3)}"
    body = {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": release_namespace},
            "data": {"a": "MQ=="}}  # fmt: skip
    first = create_secret(api, body)
    second = create_secret(api, body)
    assert first is not None
    stale = {**first, "data": {"a": "Mg=="}}
    newer = replace_secret(api, {**first, "data": {"a": "Mw=="}})
    late = replace_secret(api, stale)
    config_name = f"guarded-{secrets.token_hex(3)}"
    kubectl("create", "-f", "-", input=manifest({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": config_name},
        "webhooks": [{"name": "guarded.oam-rollout.dev", "sideEffects": "None",
                      "admissionReviewVersions": ["v1"],
                      "clientConfig": {"url": "https://127.0.0.1:9/none"},
                      "rules": [{"apiGroups": ["nothing.example"], "apiVersions": ["v1"],
                                 "operations": ["CREATE"], "resources": ["nothings"]}]}],
    }))  # fmt: skip
    try:
        config = read_configuration(api, "validating", config_name)
        assert config is not None
        version = config["metadata"]["resourceVersion"]
        patch = [{"op": "replace", "path": "/metadata/resourceVersion", "value": version},
                 {"op": "test", "path": "/webhooks/0/name", "value": "guarded.oam-rollout.dev"},
                 {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "QQ=="}]
        wrong_name = [{"op": "test", "path": "/webhooks/0/name", "value": "other"},
                      {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "Qg=="}]
        applied = patch_configuration(api, "validating", config_name, patch)
        stale_patch = patch_configuration(api, "validating", config_name, patch)
        refused = patch_configuration(api, "validating", config_name, wrong_name)
        final = read_configuration(api, "validating", config_name)
    finally:
        kubectl("delete", "validatingwebhookconfiguration", config_name, check=False)
        kubectl("delete", "secret", name, "-n", release_namespace, check=False)
    assert final is not None and newer is not None
    assert (
        second, newer["data"], late, applied is not None, stale_patch, refused,
        final["webhooks"][0]["clientConfig"]["caBundle"],
    ) == (None, {"a": "Mw=="}, None, True, None, None, "QQ==")  # fmt: skip


def _account_kubeconfig(kubectl: Any, cluster: Any, namespace: str, account: str,
                        path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount (its token Secret)."""
    tokens = eventually(
        lambda: json.loads(kubectl("get", "serviceaccount", account, "-n", namespace, "-o",
                                   "json").stdout).get("secrets") or [],
        timeout=30, what=f"the token Secret of {account}")  # fmt: skip
    token_b64 = json.loads(kubectl("get", "secret", tokens[0]["name"], "-n", namespace, "-o",
                                   "json").stdout)["data"]["token"]  # fmt: skip
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    for user in config["users"]:
        user["user"] = {"token": base64.b64decode(token_b64).decode()}
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_charts_rbac_is_all_the_self_managed_webhook_needs(
    cluster: Any, helm: Any, kubectl: Any, api_client: Any, tmp_path: Path
) -> None:
    release = f"smrbac-{secrets.token_hex(3)}"
    fullname = f"{release}-oam-rollout"
    with fresh_namespace(api_client, namespace_name("selfmanaged-rbac")) as namespace:
        identities = helm(
            "template", release, str(CHART_DIR), "--namespace", namespace,
            "--set", "certs.mode=selfManaged",
            "--show-only", "templates/serviceaccounts.yaml", "--show-only", "templates/rbac.yaml",
        ).stdout  # fmt: skip
        kubectl("apply", "-n", namespace, "-f", "-", input=identities)
        server = None
        try:
            kubeconfig = _account_kubeconfig(
                kubectl, cluster, namespace, f"{fullname}-webhook", tmp_path / "account"
            )
            server = launch(
                tmp_path, kubeconfig, secret=f"{fullname}-webhook-self-managed-tls",
                namespace=namespace,
                configurations=f"mutating/{fullname}-mutate,validating/{fullname}-validate",
            )  # fmt: skip
            wait_ready(server)
            # The configurations, pointed at the process, admitting in no namespace at all.
            configurations = helm(
                "template", release, str(CHART_DIR), "--namespace", namespace,
                "--set", "certs.mode=selfManaged", "--set", f"webhook.url={server.url}",
                "--set", "controller.enabled=false",
                "--set-json", f'webhook.namespaceSelector={{"matchLabels":{{"{SELECTOR_LABEL}":'
                f'"{release}"}}}}',
                "--show-only", "templates/webhook-admission.yaml",
            ).stdout  # fmt: skip
            kubectl("apply", "-f", "-", input=configurations)
            material = eventually(
                lambda: secret_material(kubectl, namespace, f"{fullname}-webhook-self-managed-tls"),
                timeout=20, what="the Secret made with the account's rights")  # fmt: skip
            names = {"mutating": f"{fullname}-mutate", "validating": f"{fullname}-validate"}
            injected = eventually(lambda: ca_bundles_of(kubectl, names),
                                  until=lambda found: "" not in found, timeout=20,
                                  what="caBundles injected with the account's rights")  # fmt: skip
            assert (injected, "forbidden" in server.log().lower()) == (
                {material.ca_bundle_b64}, False
            ), server.log()
        finally:
            if server is not None:
                server.stop()
            kubectl("delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration",
                    f"{fullname}-mutate", f"{fullname}-validate", "--ignore-not-found",
                    check=False)  # fmt: skip
            kubectl("delete", "-n", namespace, "-f", "-", "--ignore-not-found", "--wait=false",
                    input=identities, check=False)  # fmt: skip
