"""The chart for real: `helm install` with the default certs.mode=helm, pods on real kubelets.

Two real nodes (kubelet v1.20 on containerd, hostNetwork pods only, each on its own
loopback address) run the chart's pods from the image built here; kube-scheduler places
them by the chart's nodeSelector and tolerations, and user workloads on the simulated
node. The values are the ones any cluster without a pod network would use: hostNetwork,
the webhook bound to its Service's fixed ClusterIP on the Service's port (the API server
dials the ClusterIP itself: no kube-proxy here), the controllers' probes on $(POD_IP),
and extraEnv pointing in-cluster clients at the API server's real address. The tests
run in file order on one release: pods, admission, rollouts, leader hand-over, RBAC,
upgrade, uninstall (last).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import FIRST_DEPLOY, UPGRADE_PARTITION, spec_application, spec_text
from tests.fixtures.chart import CHART_DIR
from tests.fixtures.cluster import ToolRunner, make_runner, wait_for_default_service_account
from tests.fixtures.polling import eventually
from webhook.core.labels import ROLLOUT_GROUP, ROLLOUT_PLURAL, ROLLOUT_SUCCEED, ROLLOUT_VERSION
from webhook.localcluster import tools
from webhook.localcluster.cluster import LocalCluster
from webhook.localcluster.controlplane import free_port
from webhook.localcluster.nodeconfig import NODE_LABEL, TAINT_KEY
from webhook.localcluster.realnode import RealNodes

pytestmark = pytest.mark.cluster

RELEASE = "oam-rollout"
RELEASE_NAMESPACE = "oam-system"
APPS = "apps-on-real-nodes"
INSTANCE = {"app.kubernetes.io/instance": RELEASE}


def _free_cluster_ip(api: Any, cidr_prefix: str = "127.1.0.") -> str:
    from kubernetes import client

    services = client.CoreV1Api(api).list_service_for_all_namespaces().items
    taken = {s.spec.cluster_ip for s in services}
    return next(ip for ip in (f"{cidr_prefix}{n}" for n in range(250, 100, -1)) if ip not in taken)


def _pods(api: Any, component: str) -> list[dict[str, Any]]:
    from kubernetes import client

    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
    raw = client.CoreV1Api(api).list_namespaced_pod(
        RELEASE_NAMESPACE, label_selector=selector, _preload_content=False)
    pods: list[dict[str, Any]] = json.loads(raw.data)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions") or [])  # fmt: skip


@pytest.fixture(scope="module")
def kube(scheduled_cluster: LocalCluster) -> dict[str, ToolRunner]:
    return {"kubectl": make_runner(tools.kubectl_path(), scheduled_cluster.kubeconfig),
            "helm": make_runner(tools.helm_path(), scheduled_cluster.kubeconfig)}  # fmt: skip


@pytest.fixture(scope="module")
def release(
    scheduled_cluster: LocalCluster,
    real_nodes: RealNodes,
    project_image: str,
    kube: dict[str, ToolRunner],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """The chart installed with default certificates (helm mode) on the real nodes."""
    api = scheduled_cluster.api_client()
    repository, tag = project_image.rsplit(":", 1)
    cluster_ip = _free_cluster_ip(api)
    webhook_port = free_port()
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "hostNetwork": True,
        "nodeSelector": {NODE_LABEL: "true"},
        "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "extraEnv": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": scheduled_cluster.server.rsplit(":")[-1]},
        ],
        # One webhook pod: it holds the ClusterIP's port on the shared host.
        "webhook": {"replicas": 1, "port": webhook_port, "bindAddress": cluster_ip,
                    "service": {"port": webhook_port, "clusterIP": cluster_ip}},
        # One controller pod per node, each on its node's address.
        "controller": {"replicas": len(real_nodes.plans), "healthPort": free_port(),
                       "healthBindAddress": "$(POD_IP)"},
    }  # fmt: skip
    values_file = tmp_path_factory.mktemp("real-node") / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    kube["helm"]("install", RELEASE, str(CHART_DIR), "--namespace", RELEASE_NAMESPACE,
                 "--create-namespace", "--values", str(values_file), "--take-ownership",
                 "--wait", "--timeout", "180s", timeout=240)  # fmt: skip
    kube["kubectl"]("create", "namespace", APPS)
    wait_for_default_service_account(api, APPS)
    try:
        yield {"api": api, "values_file": values_file, "nodes": real_nodes}
    finally:
        kube["helm"]("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--ignore-not-found",
                     "--wait", "--timeout", "60s", check=False, timeout=90)  # fmt: skip
        kube["kubectl"]("delete", "namespace", APPS, RELEASE_NAMESPACE, "--wait=false",
                        "--ignore-not-found", check=False)  # fmt: skip


def test_chart_pods_run_on_the_real_nodes_in_containerd_and_pass_their_probes(
    release: dict[str, Any],
) -> None:
    pods = _pods(release["api"], "webhook") + _pods(release["api"], "controller")
    seen = sorted(
        (p["metadata"]["labels"]["app.kubernetes.io/component"],
         p["spec"]["nodeName"] in release["nodes"].names,
         p["status"]["containerStatuses"][0]["containerID"].startswith("containerd://"),
         _ready(p))
        for p in pods
    )  # fmt: skip
    assert seen == [("controller", True, True, True)] * 2 + [("webhook", True, True, True)]


def test_bad_application_is_denied_by_the_pods_webhook_with_its_field_path(
    release: dict[str, Any], kube: dict[str, ToolRunner]
) -> None:
    bad = spec_application(FIRST_DEPLOY)
    bad["spec"]["components"][0]["traits"][0]["properties"]["rolloutBatches"][1]["replicas"] = 2
    result = kube["kubectl"]("apply", "-n", APPS, "-f", "-", input=json.dumps(bad), check=False)
    assert result.stderr.strip() == (
        'The Application "rollout-trait-test" is invalid: '
        "spec.components[0].traits[0].properties.rolloutBatches: Invalid value: [2, 2]: "
        "batch replicas add up to 4; they must add up to targetSize 5"
    )


def _rollout_status(api: Any) -> dict[str, Any]:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        rollout = client.CustomObjectsApi(api).get_namespaced_custom_object(
            ROLLOUT_GROUP, ROLLOUT_VERSION, APPS, ROLLOUT_PLURAL, "express-server")
    except ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return dict(rollout.get("status") or {})


def _ready_replicas(api: Any, name: str) -> tuple[int, int] | None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        deploy = client.AppsV1Api(api).read_namespaced_deployment(name, APPS)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return int(deploy.spec.replicas or 0), int(deploy.status.ready_replicas or 0)


def test_first_deploy_then_a_partitioned_upgrade_roll_out_through_the_pods(
    release: dict[str, Any], kube: dict[str, ToolRunner]
) -> None:
    api = release["api"]
    kube["kubectl"]("apply", "-n", APPS, "-f", "-", input=spec_text(FIRST_DEPLOY))
    eventually(lambda: _rollout_status(api).get("rollingState"), equals=ROLLOUT_SUCCEED,
               timeout=120, what="the first deploy")  # fmt: skip
    kube["kubectl"]("apply", "-n", APPS, "-f", "-", input=spec_text(UPGRADE_PARTITION))
    # batchPartition 0: the first batch (2 of 5) moves to v2, and there it stops.
    eventually(lambda: (_ready_replicas(api, "express-server-v2"),
                        _ready_replicas(api, "express-server-v1")),
               equals=((2, 2), (3, 3)), timeout=120, what="the partitioned upgrade")  # fmt: skip


def test_controller_pods_elect_one_leader_and_the_other_takes_over_when_it_dies(
    release: dict[str, Any],
) -> None:
    from kubernetes import client

    api = release["api"]
    leases = client.CoordinationV1Api(api)
    name = f"{RELEASE}-controller"
    names = {p["metadata"]["name"] for p in _pods(api, "controller")}
    leader = eventually(lambda: leases.read_namespaced_lease(name, RELEASE_NAMESPACE)
                        .spec.holder_identity, until=lambda h: h in names, timeout=60,
                        what="a controller pod holding the lease")  # fmt: skip
    client.CoreV1Api(api).delete_namespaced_pod(leader, RELEASE_NAMESPACE, grace_period_seconds=0)
    # The lease lasts 15 s (the controller's default); after that a live controller pod
    # takes it: the stand-by, or the replacement the Deployment starts meanwhile.
    def holder_alive() -> tuple[str, bool]:
        holder = leases.read_namespaced_lease(name, RELEASE_NAMESPACE).spec.holder_identity
        alive = {p["metadata"]["name"] for p in _pods(api, "controller") if _ready(p)}
        return str(holder), holder in alive and holder != leader

    successor = eventually(holder_alive, until=lambda seen: seen[1], timeout=45,
                           what="another controller pod taking the lease",
                           context=release["nodes"].diagnose)  # fmt: skip
    assert successor[0] != leader


def test_the_pods_service_account_is_refused_what_the_chart_does_not_grant(
    release: dict[str, Any], scheduled_cluster: LocalCluster
) -> None:
    import ssl
    import urllib.error
    import urllib.request

    from kubernetes import client

    core = client.CoreV1Api(release["api"])
    account = core.read_namespaced_service_account(f"{RELEASE}-controller", RELEASE_NAMESPACE)
    secret = core.read_namespaced_secret(account.secrets[0].name, RELEASE_NAMESPACE)
    token = base64.b64decode(secret.data["token"]).decode()
    context = ssl.create_default_context(
        cafile=str(Path(scheduled_cluster.workdir) / "certs" / "apiserver.crt"))

    def status(method: str, path: str) -> int:
        request = urllib.request.Request(scheduled_cluster.server + path, method=method,
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert (
        status("GET", f"/apis/core.oam.dev/v1beta1/namespaces/{APPS}/applications"),
        status("DELETE", "/api/v1/nodes/" + release["nodes"].names[0]),
        status("GET", f"/api/v1/namespaces/{RELEASE_NAMESPACE}/secrets"),
    ) == (200, 403, 403)


def _webhook_tls(kube: dict[str, ToolRunner]) -> tuple[set[str], str]:
    bundles = set()
    for kind, suffix in (("mutatingwebhookconfiguration", "mutate"),
                         ("validatingwebhookconfiguration", "validate")):
        config = json.loads(kube["kubectl"]("get", kind, f"{RELEASE}-{suffix}", "-o",
                                            "json").stdout)
        bundles |= {hook["clientConfig"]["caBundle"] for hook in config["webhooks"]}
    secret = json.loads(kube["kubectl"]("get", "secret", "-n", RELEASE_NAMESPACE,
                                        f"{RELEASE}-webhook-tls", "-o", "json").stdout)
    return bundles, secret["data"]["tls.crt"]  # fmt: skip


def test_helm_upgrade_keeps_the_ca_bundle_and_the_serving_certificate(
    release: dict[str, Any], kube: dict[str, ToolRunner]
) -> None:
    before = _webhook_tls(kube)
    kube["helm"]("upgrade", RELEASE, str(CHART_DIR), "--namespace", RELEASE_NAMESPACE,
                 "--values", str(release["values_file"]), "--set", "webhook.timeoutSeconds=7",
                 "--wait", "--timeout", "120s", timeout=180)  # fmt: skip
    assert (len(before[0]), _webhook_tls(kube)) == (1, before)


def test_helm_uninstall_leaves_no_webhook_configuration_behind(
    release: dict[str, Any], kube: dict[str, ToolRunner]
) -> None:
    kube["helm"]("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait",
                 "--timeout", "60s", timeout=90)  # fmt: skip
    left = [
        kube["kubectl"]("get", kind, "-l", f"app.kubernetes.io/instance={RELEASE}", "-o",
                        "name").stdout.split()
        for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")
    ]  # fmt: skip
    assert left == [[], []]
