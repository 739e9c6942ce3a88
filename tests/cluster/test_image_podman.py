"""The image under podman, run exactly as the chart's pods run it.

The containers get what the rendered Deployments say: their arguments, uid 10001 with
fsGroup, a read-only root with /tmp as a tmpfs, the TLS files read-only (laid out as a
Secret volume, readable through the fsGroup only) and in-cluster credentials (the token
of the chart's service account with the chart's RBAC; KUBERNETES_SERVICE_HOST/PORT through
the chart's extraEnv), on the host network, bound to 127.0.0.1. The chart's configurations
(local mode, pointed at the container) admit the test namespace; the controller container
watches only that namespace, so the rollout seen here is its work.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import FIRST_DEPLOY, spec_application, spec_text
from tests.fixtures.chart import render
from tests.fixtures.cluster import ToolRunner, make_runner, wait_for_default_service_account
from tests.fixtures.polling import eventually
from tests.fixtures.realnode import (
    Container,
    container_env,
    podman_argv,
    secret_volume,
    start_container,
    wait_running,
)
from webhook.core.labels import ROLLOUT_GROUP, ROLLOUT_PLURAL, ROLLOUT_SUCCEED, ROLLOUT_VERSION
from webhook.localcluster import tools
from webhook.localcluster.cluster import LocalCluster
from webhook.localcluster.controlplane import free_port

pytestmark = pytest.mark.cluster

RELEASE = "img"
NAMESPACE = "oam-image-test"
LABEL = "oam-rollout.dev/chart-test"  # the session webhook's configurations skip it
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
FSGROUP = 10001


@pytest.fixture(scope="module")
def kubectl_here(scheduled_cluster: LocalCluster) -> ToolRunner:
    return make_runner(tools.kubectl_path(), scheduled_cluster.kubeconfig)


def _token_dir(api: Any, namespace: str, account: str, dest: Path) -> Path:
    """What the kubelet mounts for the account: token, ca.crt, namespace."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    secrets = eventually(lambda: core.read_namespaced_service_account(account, namespace).secrets,
                         timeout=30, what=f"the token Secret of {account}")  # fmt: skip
    data = core.read_namespaced_secret(secrets[0].name, namespace).data
    files = {key: base64.b64decode(data[key]) for key in ("token", "ca.crt", "namespace")}
    return secret_volume(dest, files, FSGROUP)


@pytest.fixture(scope="module")
def containers(
    scheduled_cluster: LocalCluster,
    project_image: str,
    kubectl_here: ToolRunner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """The webhook and controller containers, with the chart's RBAC and configurations."""
    work = tmp_path_factory.mktemp("podman")
    api = scheduled_cluster.api_client()
    api_port = scheduled_cluster.server.rsplit(":", 1)[1]
    ca_bundle = subprocess.run(
        [sys.executable, "-m", "webhook", "certs", "--hosts", "127.0.0.1", "--out",
         str(work / "certs")], capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    webhook_port, health_port = free_port(), free_port()
    repository, tag = project_image.rsplit(":", 1)
    in_cluster = {
        "image": {"repository": repository, "tag": tag},
        "certs": {"mode": "external", "secretName": "unused", "caBundle": ca_bundle},
        "crds": {"install": False},
        "webhook": {"port": webhook_port, "bindAddress": "127.0.0.1"},
        "controller": {"healthPort": health_port, "healthBindAddress": "127.0.0.1",
                       "watchNamespace": NAMESPACE},
        "extraEnv": [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                     {"name": "KUBERNETES_SERVICE_PORT", "value": api_port}],
    }  # fmt: skip
    local_mode = {
        "webhook": {"url": f"https://127.0.0.1:{webhook_port}",
                    "namespaceSelector": {"matchLabels": {LABEL: RELEASE}}},
        "certs": {"mode": "external", "caBundle": ca_bundle},
        "controller": {"enabled": False},
        "crds": {"install": False},
    }  # fmt: skip
    objects = render(in_cluster, release=RELEASE, namespace=NAMESPACE)
    configurations = [o for o in render(local_mode, release=RELEASE, namespace=NAMESPACE)
                      if o["kind"].endswith("WebhookConfiguration")]  # fmt: skip
    applied = [o for o in objects if o["kind"] in RBAC_KINDS] + configurations
    kubectl_here("create", "namespace", NAMESPACE)
    kubectl_here("label", "namespace", NAMESPACE, f"{LABEL}={RELEASE}")
    wait_for_default_service_account(api, NAMESPACE)
    manifest = yaml.safe_dump_all(applied)
    kubectl_here("apply", "-f", "-", input=manifest)
    started: list[Container] = []
    try:
        tls = secret_volume(work / "tls", {name: (work / "certs" / name).read_bytes()
                                           for name in ("tls.crt", "tls.key", "ca.crt")},
                            FSGROUP)  # fmt: skip
        running = {}
        for component in ("webhook", "controller"):
            deployment = next(o for o in objects if o["kind"] == "Deployment"
                              and o["metadata"]["labels"]["app.kubernetes.io/component"]
                              == component)  # fmt: skip
            pod = deployment["spec"]["template"]["spec"]
            container = pod["containers"][0]
            name = f"{RELEASE}-{component}-podman"
            env = container_env(container, {"metadata.namespace": NAMESPACE,
                                            "metadata.name": name, "status.podIP": "127.0.0.1"})
            argv = podman_argv(pod, container, image=project_image, env=env, mounts={"tls": tls},
                               service_account=_token_dir(api, NAMESPACE,
                                                          pod["serviceAccountName"],
                                                          work / f"sa-{component}"))  # fmt: skip
            running[component] = start_container(argv)
            started.append(running[component])
        for container_ in started:
            wait_running(container_)
        yield {"ca": work / "certs" / "ca.crt", "webhook_port": webhook_port,
               "health_port": health_port, "api": api, **running}  # fmt: skip
    finally:
        for container_ in started:
            container_.stop()
        kubectl_here("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=manifest,
                     check=False)  # fmt: skip
        kubectl_here("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def _get(url: str, ca: Path | None = None) -> int:
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


@pytest.mark.parametrize("component", ["webhook", "controller"])
def test_containers_run_as_uid_10001_on_a_read_only_root_with_a_writable_tmp(
    containers: dict[str, Any], component: str
) -> None:
    container: Container = containers[component]
    probe = container.exec("python3", "-c", (
        "import os\n"
        "def writable(p):\n"
        "    try:\n"
        "        open(p, 'w').close(); return True\n"
        "    except OSError:\n"
        "        return False\n"
        "print(os.getuid(), os.getgid(), writable('/probe'), writable('/tmp/probe'))"
    ))  # fmt: skip
    assert probe.stdout.split() == ["10001", "10001", "False", "True"], probe.stderr


def test_webhook_container_serves_healthz_over_tls_with_the_mounted_certificate(
    containers: dict[str, Any],
) -> None:
    url = f"https://127.0.0.1:{containers['webhook_port']}/healthz"
    status = eventually(lambda: _get(url, containers["ca"]), equals=200, timeout=30,
                        what=url, context=containers["webhook"].logs)  # fmt: skip
    assert status == 200


def test_controller_container_is_ready_with_in_cluster_credentials(
    containers: dict[str, Any],
) -> None:
    url = f"http://127.0.0.1:{containers['health_port']}/readyz"
    status = eventually(lambda: _get(url), equals=200, timeout=60, what=url,
                        context=containers["controller"].logs)  # fmt: skip
    assert status == 200


def test_bad_application_is_denied_by_the_webhook_container_with_its_field_path(
    containers: dict[str, Any], kubectl_here: ToolRunner
) -> None:
    bad = spec_application(FIRST_DEPLOY)
    bad["spec"]["components"][0]["traits"][0]["properties"]["rolloutBatches"][1]["replicas"] = 2
    result = eventually(
        lambda: kubectl_here("apply", "-n", NAMESPACE, "--dry-run=server", "-f", "-",
                             input=json.dumps(bad), check=False),
        until=lambda r: r.returncode != 0, timeout=30, what="the webhook container's denial",
    )  # fmt: skip
    # Only the webhook adds batches up: the CRD schema cannot, and no other webhook
    # admits in this cluster.
    assert result.stderr.strip() == (
        'The Application "rollout-trait-test" is invalid: '
        "spec.components[0].traits[0].properties.rolloutBatches: Invalid value: [2, 2]: "
        "batch replicas add up to 4; they must add up to targetSize 5"
    ), containers["webhook"].logs()


def test_first_deploy_is_rolled_out_by_the_controller_container(
    containers: dict[str, Any], kubectl_here: ToolRunner
) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    kubectl_here("apply", "-n", NAMESPACE, "-f", "-", input=spec_text(FIRST_DEPLOY))
    objects = client.CustomObjectsApi(containers["api"])

    def rolling_state() -> str | None:
        try:
            rollout = objects.get_namespaced_custom_object(
                ROLLOUT_GROUP, ROLLOUT_VERSION, NAMESPACE, ROLLOUT_PLURAL, "express-server")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return str((rollout.get("status") or {}).get("rollingState"))

    state = eventually(rolling_state, equals=ROLLOUT_SUCCEED, timeout=120,
                       what="the rollout of express-server",
                       context=containers["controller"].logs)  # fmt: skip
    assert state == ROLLOUT_SUCCEED
