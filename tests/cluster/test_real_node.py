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
import pprint
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import (
    FIRST_DEPLOY,
    UPGRADE_PARTITION,
    application_of,
    component_fields,
    spec_application,
    spec_text,
)
from tests.fixtures.chart import CHART_DIR
from tests.fixtures.cluster import ToolRunner, make_runner, wait_for_default_service_account
from tests.fixtures.polling import eventually
from tests.fixtures.realnode import FIGURES, kill_containers, pod_logs
from webhook.controller.reconcile import ANNOTATION_APPLIED_BY
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
# The controller's --lease-duration, which the chart leaves at its default: a silent
# leader's lease is free this long after its last renewal.
LEASE_SECONDS = 15.0
# On top of the lease: the stand-by's next look (within a second of the lease running
# out), a few API round trips and a busy 2-core machine.
HANDOVER_MARGIN = 8.0
# A released lease: the pod's SIGTERM reaching the leader and two round trips. Well
# below the lease, so a hand-over that waited for the lease to run out fails.
RELEASED_HANDOVER_SECONDS = 5.0


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


def _rollout(api: Any, component: str = "express-server") -> dict[str, Any]:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        rollout: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
            ROLLOUT_GROUP, ROLLOUT_VERSION, APPS, ROLLOUT_PLURAL, component)
    except ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return rollout


def _rollout_status(api: Any, component: str = "express-server") -> dict[str, Any]:
    return dict(_rollout(api, component).get("status") or {})


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


def _lease(api: Any) -> dict[str, Any]:
    from kubernetes import client

    raw = client.CoordinationV1Api(api).read_namespaced_lease(
        f"{RELEASE}-controller", RELEASE_NAMESPACE, _preload_content=False)
    spec: dict[str, Any] = json.loads(raw.data)["spec"]
    return spec


class HandOver:
    """One leader hand-over, watched: the leader and the stand-by as they were before
    the leader's pod went, and every Lease record seen after, for a failure's message."""

    def __init__(self, release: dict[str, Any]) -> None:
        self.api = release["api"]
        self.nodes = release["nodes"]
        # Both replicas up (a previous hand-over's replacement included) and one leading.
        eventually(lambda: len([p for p in _pods(self.api, "controller") if _ready(p)]),
                   equals=2, timeout=120, what="two ready controller pods")  # fmt: skip
        pods = {p["metadata"]["name"]: p for p in _pods(self.api, "controller")}
        self.leader: str = eventually(lambda: str(_lease(self.api).get("holderIdentity")),
                                      until=lambda h: h in pods, timeout=60,
                                      what="a controller pod holding the lease")  # fmt: skip
        self.leader_pod = pods[self.leader]
        (self.standby,) = set(pods) - {self.leader}
        self.began = time.monotonic()
        self.seen: list[tuple[float, dict[str, Any]]] = []

    def holder(self) -> str:
        spec = _lease(self.api)
        if not self.seen or self.seen[-1][1] != spec:
            self.seen.append((round(time.monotonic() - self.began, 1), spec))
        return str(spec.get("holderIdentity"))

    def diagnosis(self) -> str:
        now = {p["metadata"]["name"] for p in _pods(self.api, "controller")}
        return "\n".join([f"lease records seen (s after the leader went): "
                          f"{pprint.pformat(self.seen)}",
                          pod_logs(RELEASE_NAMESPACE, sorted(now | {self.leader,
                                                                     self.standby})),
                          self.nodes.diagnose()])  # fmt: skip

    def stand_by_leads(self, within: float) -> float:
        """Seconds until the stand-by of before holds the lease; NeverHappened after
        ``within`` (the Deployment's replacement pod holding it instead fails it too)."""
        eventually(self.holder, equals=self.standby, timeout=within, interval=0.1,
                   what=f"the stand-by {self.standby} holding the lease after "
                        f"{self.leader} went", context=self.diagnosis)  # fmt: skip
        return time.monotonic() - self.began

    def report(self, how: str, took: float) -> None:
        FIGURES.append(f"the stand-by led {took:.1f} s after the leader's pod {how}")

    def new_application_rolls_out(self, kube: dict[str, ToolRunner], name: str) -> None:
        """The new leader acts: a new Application's Rollout, applied by it, succeeds."""
        app = application_of(component_fields(name=name, externalRevision=f"{name}-v1"),
                             name=name)  # fmt: skip
        kube["kubectl"]("apply", "-n", APPS, "-f", "-", input=json.dumps(app))
        rollout = eventually(lambda: _rollout(self.api, name),
                             until=lambda r: (r.get("status") or {}).get("rollingState")
                             == ROLLOUT_SUCCEED, timeout=120,
                             what=f"the rollout of {name}", context=self.diagnosis)  # fmt: skip
        assert rollout["metadata"]["annotations"][ANNOTATION_APPLIED_BY] == self.standby


def test_controller_pods_elect_one_leader_and_the_stand_by_takes_over_when_its_pod_is_deleted(
    release: dict[str, Any], kube: dict[str, ToolRunner]
) -> None:
    from kubernetes import client

    handover = HandOver(release)
    client.CoreV1Api(handover.api).delete_namespaced_pod(handover.leader, RELEASE_NAMESPACE)
    # The leader releases the lease on SIGTERM and the stand-by, watching it, takes it at
    # once: long before the lease could run out, and before the replacement pod starts.
    took = handover.stand_by_leads(within=RELEASED_HANDOVER_SECONDS)
    handover.report("was deleted", took)
    handover.new_application_rolls_out(kube, "after-release")
    assert took < RELEASED_HANDOVER_SECONDS


def test_the_stand_by_takes_over_within_the_lease_when_the_leader_crashes(
    release: dict[str, Any], kube: dict[str, ToolRunner]
) -> None:
    from kubernetes import client

    handover = HandOver(release)
    # SIGKILL: no release. The pod goes too, so the kubelet does not restart it (a
    # restarted leader keeps its name and would take its lease back at once).
    kill_containers(handover.nodes, handover.leader_pod)
    client.CoreV1Api(handover.api).delete_namespaced_pod(handover.leader, RELEASE_NAMESPACE,
                                                         grace_period_seconds=0)  # fmt: skip
    took = handover.stand_by_leads(within=LEASE_SECONDS + HANDOVER_MARGIN)
    handover.report("crashed (lease 15 s)", took)
    handover.new_application_rolls_out(kube, "after-crash")
    assert took < LEASE_SECONDS + HANDOVER_MARGIN


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
