"""The local control plane behaves like a real cluster for what the project relies on.

Real kube-apiserver + kube-controller-manager, the simulated kubelet and CloneSet
controller, webhooks on 127.0.0.1, the CRD printer columns the spec's kubectl
views need, and `oam-rollout cluster up/down` leaving nothing behind.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import FIRST_DEPLOY, spec_text
from tests.fixtures.cluster import ToolFailed, ToolRunner
from tests.fixtures.polling import eventually
from webhook.localcluster import cluster as cluster_module
from webhook.localcluster.cluster import LocalCluster
from webhook.localcluster.controlplane import ClusterStartError, ClusterState
from webhook.localcluster.pods import CRASH_AFTER, NEVER_READY
from webhook.localcluster.processes import process_alive

pytestmark = pytest.mark.cluster

def deployment(name: str, replicas: int, annotations: dict[str, str] | None = None) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                    "spec": {"containers": [{"name": "main", "image": "podinfo:4.0.3"}]},
                },
            },
        }
    )


def columns(kubectl: ToolRunner, *args: str) -> list[list[str]]:
    """`kubectl get ...` as rows of whitespace-separated cells, header first."""
    out = kubectl("get", *args).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def names(kubectl: ToolRunner, namespace: str, kind: str, selector: str) -> list[str]:
    out = kubectl(
        "-n", namespace, "get", kind, "-l", selector, "-o", "jsonpath={.items[*].metadata.name}"
    ).stdout
    return sorted(out.split())


def test_a_deployment_becomes_ready_scales_down_and_is_garbage_collected(
    kubectl: ToolRunner, namespace: str
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", input=deployment("web", 3))

    def ready() -> str:
        rows = columns(kubectl, "-n", namespace, "deploy", "web")
        return rows[1][1]

    eventually(ready, equals="3/3", what="3 replicas ready")

    kubectl("-n", namespace, "scale", "deploy/web", "--replicas=1")
    eventually(lambda: len(names(kubectl, namespace, "pods", "app=web")), equals=1,
               what="one pod left")
    eventually(ready, equals="1/1", what="1 replica ready")

    kubectl("-n", namespace, "delete", "deploy/web")
    eventually(
        lambda: (
            names(kubectl, namespace, "rs", "app=web"),
            names(kubectl, namespace, "pods", "app=web"),
        ),
        equals=([], []), what="ReplicaSets and pods garbage-collected",
    )


def pod_states(kubectl: ToolRunner, namespace: str, app: str) -> list[tuple[str, str, int]]:
    """(phase, Ready condition, restarts) of every pod of an app."""
    out = kubectl("-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "json").stdout
    states = []
    for pod in json.loads(out)["items"]:
        status = pod.get("status", {})
        ready = next(
            (c["status"] for c in status.get("conditions", []) if c["type"] == "Ready"), "None"
        )
        restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses", []))
        states.append((status.get("phase", ""), ready, restarts))
    return sorted(states)


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, [("Running", "True", 0)] * 2),
        ({NEVER_READY: "true"}, [("Running", "False", 0)] * 2),
        ({CRASH_AFTER: "1s"}, [("Running", "False", 1)] * 2),
    ],
    ids=["healthy", "never-ready", "crash-after"],
)
def test_the_simulated_kubelet_honours_failure_injection_annotations(
    kubectl: ToolRunner,
    namespace: str,
    annotations: dict[str, str],
    expected: list[tuple[str, str, int]],
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", input=deployment("sim", 2, annotations))
    eventually(lambda: pod_states(kubectl, namespace, "sim"), equals=expected, what="pod states")
    # A settled state stays settled: never-ready pods do not turn ready later.
    time.sleep(1.0)
    assert pod_states(kubectl, namespace, "sim") == expected


def cloneset(image: str, replicas: int, partition: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps.kruise.io/v1alpha1",
            "kind": "CloneSet",
            "metadata": {"name": "cloneset-server", "labels": {"app.oam.dev/component": "cs"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "cs"}},
                "updateStrategy": {"type": "InPlaceIfPossible", "partition": partition},
                "template": {
                    "metadata": {"labels": {"app": "cs"}},
                    "spec": {"containers": [{"name": "main", "image": image}]},
                },
            },
        }
    )


def test_the_simulated_cloneset_controller_updates_in_place_up_to_the_partition(
    kubectl: ToolRunner, namespace: str
) -> None:
    header = ["NAME", "DESIRED", "UPDATED", "UPDATED_READY", "READY", "TOTAL", "AGE"]

    def view() -> list[list[str]]:
        rows = columns(kubectl, "-n", namespace, "cloneset", "-l", "app.oam.dev/component=cs")
        return [row[:6] for row in rows]

    kubectl("-n", namespace, "apply", "-f", "-", input=cloneset("podinfo:4.0.3", 5, 0))
    done = [header[:6], ["cloneset-server", "5", "5", "5", "5", "5"]]
    eventually(view, equals=done, what="five pods updated")
    before = names(kubectl, namespace, "pods", "app=cs")

    kubectl("-n", namespace, "apply", "-f", "-", input=cloneset("podinfo:5.0.2", 5, 3))
    partial = [header[:6], ["cloneset-server", "5", "2", "2", "5", "5"]]
    eventually(view, equals=partial, what="two pods updated, up to the partition")

    kubectl("-n", namespace, "apply", "-f", "-", input=cloneset("podinfo:5.0.2", 5, 0))
    eventually(view, equals=done, what="every pod updated")
    images = kubectl(
        "-n",
        namespace,
        "get",
        "pods",
        "-l",
        "app=cs",
        "-o",
        "jsonpath={.items[*].status.containerStatuses[0].image}",
    ).stdout.split()
    # In place: the same five pods, all now reporting the new image.
    assert (names(kubectl, namespace, "pods", "app=cs"), images) == (before, ["podinfo:5.0.2"] * 5)


# The spec's first Application, as the golden folder holds it.
APPLICATION = spec_text(FIRST_DEPLOY)

ROLLOUT = """
apiVersion: standard.oam.dev/v1alpha1
kind: Rollout
metadata:
  name: express-server
spec:
  targetRevisionName: express-server-v1
  componentName: express-server
  rolloutPlan:
    targetSize: 5
    rolloutBatches: [{replicas: 2}, {replicas: 3}]
"""


def table(api_client: Any, path: str) -> dict[str, Any]:
    """The server-side Table kubectl prints, with the object it was printed from."""
    resp = api_client.call_api(
        path,
        "GET",
        query_params=[("includeObject", "Object")],
        header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        auth_settings=["BearerToken"],
        _return_http_data_only=True,
        _preload_content=False,
    )
    result: dict[str, Any] = json.loads(resp.data)
    return result


def first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


@pytest.mark.parametrize(
    ("manifest", "path", "status", "header", "cells"),
    [
        (
            APPLICATION,
            "/apis/core.oam.dev/v1beta1/namespaces/{ns}/applications/rollout-trait-test",
            {"status": "running", "services": [{"name": "express-server", "healthy": True}]},
            ["NAME", "COMPONENT", "TYPE", "PHASE", "HEALTHY", "STATUS", "AGE"],
            lambda o: [
                o["metadata"]["name"],
                o["spec"]["components"][0]["name"],
                o["spec"]["components"][0]["type"],
                o["status"]["status"],
                o["status"]["services"][0]["healthy"],
                o["status"]["services"][0].get("message"),
            ],
        ),
        (
            ROLLOUT,
            "/apis/standard.oam.dev/v1alpha1/namespaces/{ns}/rollouts/express-server",
            {
                "rolloutTargetSize": 5,
                "upgradedReplicas": 2,
                "upgradedReadyReplicas": 2,
                "batchRollingState": "batchReady",
                "rollingState": "rollingInBatches",
            },
            ["NAME", "TARGET", "UPGRADED", "READY", "BATCH-STATE", "ROLLING-STATE", "AGE"],
            lambda o: [
                o["metadata"]["name"],
                o["status"]["rolloutTargetSize"],
                o["status"]["upgradedReplicas"],
                o["status"]["upgradedReadyReplicas"],
                o["status"]["batchRollingState"],
                o["status"]["rollingState"],
            ],
        ),
    ],
    ids=["application", "rollout"],
)
def test_the_crds_print_the_columns_of_the_spec_views(
    kubectl: ToolRunner,
    api_client: Any,
    namespace: str,
    manifest: str,
    path: str,
    status: dict[str, Any],
    header: list[str],
    cells: Callable[[dict[str, Any]], list[Any]],
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", input=manifest)
    kubectl(
        "-n",
        namespace,
        "patch",
        path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1],
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    printed = table(api_client, path.format(ns=namespace))
    row = printed["rows"][0]
    # A running controller may rewrite the status at any time: compare the printed
    # cells with the very object they were printed from (AGE, the last cell, aside).
    names = [c["name"].upper() for c in printed["columnDefinitions"]]
    assert (names, [first(c) for c in row["cells"][:-1]]) == (header, cells(row["object"]))
    assert columns(kubectl, "-n", namespace, path.rsplit("/", 2)[-2])[0] == header


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\n"
            "metadata: {name: bad}\nspec: {components: not-a-list}\n",
            "spec.components",
        ),
        (ROLLOUT.replace("targetSize: 5", "targetSize: five"), "spec.rolloutPlan.targetSize"),
    ],
    ids=["application", "rollout"],
)
def test_the_crd_schemas_reject_fields_of_the_wrong_type(
    kubectl: ToolRunner, namespace: str, manifest: str, message: str
) -> None:
    result = kubectl("-n", namespace, "apply", "-f", "-", input=manifest, check=False)
    assert (result.returncode, message in result.stderr) == (1, True), result.stderr


# -- a webhook on 127.0.0.1 -----------------------------------------------------------


def self_signed_tls(directory: Path) -> tuple[Path, Path, str]:
    """A CA-flagged self-signed cert for 127.0.0.1: (cert, key, base64 caBundle)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-webhook")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, base64.b64encode(pem).decode()


DENIAL = "configmaps labelled deny-me are not welcome here"


class DenyingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every AdmissionReview with a denial carrying DENIAL."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": review["request"]["uid"],
                    "allowed": False,
                    "status": {"code": 403, "message": DENIAL},
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def denying_webhook(tmp_path: Path, kubectl: ToolRunner) -> Iterator[str]:
    """A TLS server on 127.0.0.1 registered as a ValidatingWebhookConfiguration (url mode)."""
    cert, key, bundle = self_signed_tls(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DenyingHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    name = f"test-deny-{secrets.token_hex(3)}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "deny.test.oam-rollout.dev",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{server.server_address[1]}/validate",
                    "caBundle": bundle,
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["configmaps"],
                    }
                ],
                # Only labelled objects: the rest of the session is never affected.
                "objectSelector": {"matchLabels": {"deny-me": name}},
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
            }
        ],
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    try:
        yield name
    finally:
        kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")
        server.shutdown()
        server.server_close()


def configmap(name: str, labels: dict[str, str]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}
    )


def test_a_url_webhook_on_loopback_denies_kubectl_apply_with_its_message(
    kubectl: ToolRunner, namespace: str, denying_webhook: str
) -> None:
    labelled = configmap("unwelcome", {"deny-me": denying_webhook})
    # The configuration takes effect within a moment of its creation.
    eventually(
        lambda: (
            kubectl("-n", namespace, "apply", "-f", "-", input=labelled, check=False).returncode
        ),
        equals=1, timeout=10, what="the first denial",
    )
    denied = kubectl("-n", namespace, "apply", "-f", "-", input=labelled, check=False)
    allowed = kubectl("-n", namespace, "apply", "-f", "-", input=configmap("welcome", {}))
    assert (denied.returncode, DENIAL in denied.stderr) == (1, True), denied.stderr
    assert allowed.stdout.strip() == "configmap/welcome created"


# -- `oam-rollout cluster up/down` ----------------------------------------------------------


def oam_rollout(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhook", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


def test_cluster_up_then_down_twice_leaves_no_process_and_no_temp_dir(tmp_path: Path) -> None:
    # A cluster name of its own, so a developer's `default` cluster is never touched.
    name = f"test-{secrets.token_hex(3)}"
    env = dict(os.environ)
    from webhook.localcluster.background import state_path

    leftovers = []
    try:
        for _ in range(2):
            up = oam_rollout("cluster", "up", "--name", name, env=env)
            assert up.returncode == 0, up.stderr
            state = ClusterState.load(state_path(name))
            env_line = oam_rollout("cluster", "env", "--name", name, env=env).stdout.strip()
            down = oam_rollout("cluster", "down", "--name", name, env=env)
            assert (up.stdout.strip(), env_line, down.returncode) == (
                f"export KUBECONFIG={state.kubeconfig}",
                f"export KUBECONFIG={state.kubeconfig}",
                0,
            ), down.stderr
            leftovers.append(
                (
                    sorted(n for n, pid in state.pids.items() if process_alive(pid)),
                    processes_mentioning(state.workdir),
                    Path(state.workdir).exists(),
                    state_path(name).exists(),
                )
            )
    finally:
        # Whatever failed above, no control plane outlives the test.
        oam_rollout("cluster", "down", "--name", name, env=env)
    assert sorted(state.pids) == [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "simulators",
    ]
    assert leftovers == [([], [], False, False)] * 2
    after = oam_rollout("cluster", "env", "--name", name, env=env)
    assert (after.returncode, "no local control plane" in after.stderr) == (1, True)


@pytest.mark.parametrize("how", ["sigterm", "sigkill-then-down"])
def test_a_cluster_up_stopped_halfway_leaves_nothing_behind(how: str) -> None:
    from webhook.localcluster.background import state_path

    name = f"test-{secrets.token_hex(3)}"
    path = state_path(name)
    proc = subprocess.Popen(
        [sys.executable, "-m", "webhook", "cluster", "up", "--name", name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Halfway: etcd and kube-apiserver started, the API not necessarily ready.
        pids = eventually(lambda: ClusterState.load(path).pids,
                          until=lambda started: "kube-apiserver" in started, timeout=60,
                          interval=0.05, ignoring=(OSError, ValueError, TypeError),
                          what="kube-apiserver started")
        workdir = ClusterState.load(path).workdir
        proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        proc.wait(timeout=60)
        if how == "sigkill-then-down":
            subprocess.run(
                [sys.executable, "-m", "webhook", "cluster", "down", "--name", name],
                capture_output=True,
                timeout=60,
                check=False,
            )
        eventually(
            lambda: (processes_mentioning(workdir), Path(workdir).exists(), path.exists()),
            equals=([], False, False), timeout=15, what="no process, no workdir, no state",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run(
            [sys.executable, "-m", "webhook", "cluster", "down", "--name", name],
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert sorted(pids)[:2] == ["etcd", "kube-apiserver"]


def test_kubectl_failures_show_the_command_and_its_stderr(kubectl: ToolRunner) -> None:
    with pytest.raises(ToolFailed, match=r"(?s)`kubectl get nosuchkind` exited 1:.*nosuchkind"):
        kubectl("get", "nosuchkind")


def test_a_control_plane_that_cannot_start_says_why_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    for name, body in [
        ("kube-apiserver", "echo 'Error: invalid flag --nope' >&2; exit 3"),
        ("kube-controller-manager", "exit 0"),
    ]:
        (assets / name).write_text(f"#!/bin/sh\n{body}\n")
        (assets / name).chmod(0o755)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    local = LocalCluster(tmp_path / "work")
    with pytest.raises(ClusterStartError) as caught:
        local.start()
    message = str(caught.value)
    assert (
        "kube-apiserver exited with code 3" in message,
        "Error: invalid flag --nope" in message,
        (tmp_path / "work").exists(),
        processes_mentioning(str(tmp_path / "work")),
    ) == (True, True, False, [])


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains text (e.g. a workdir: etcd's --data-dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def test_a_port_taken_between_pick_and_bind_is_retried_on_fresh_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    assets = tmp_path / "assets"
    assets.mkdir()
    # The apiserver stand-in fails on purpose (reaching it on fresh ports proves the
    # retry); next to the taken etcd port it idles, so etcd's bind error is seen first.
    for name in ("kube-apiserver", "kube-controller-manager"):
        (assets / name).write_text(
            "#!/bin/sh\n"
            f'case "$*" in *127.0.0.1:{busy}*) for i in $(seq 300); do sleep 0.1; done;; esac\n'
            "echo 'stand-in stops here' >&2; exit 3\n"
        )
        (assets / name).chmod(0o755)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    with taken:
        picks: list[int] = []
        real_free_port = cluster_module.free_port

        def racy_free_port() -> int:
            # The very first pick (etcd's client port) is already someone else's.
            picks.append(busy if not picks else real_free_port())
            return picks[-1]

        monkeypatch.setattr(cluster_module, "free_port", racy_free_port)
        with pytest.raises(ClusterStartError) as caught:
            LocalCluster(tmp_path / "work").start()
    assert (len(picks), "stand-in stops here" in str(caught.value)) == (8, True)
