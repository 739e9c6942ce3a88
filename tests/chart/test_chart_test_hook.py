"""The chart's `helm test` Pod: rendered for the endpoints that exist, pointed at the
Services the chart makes, and its check (files/tests/health_check.py, run here exactly as
the Pod runs it) passing on healthy endpoints and failing on unready ones or on a
certificate the CA did not sign.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest

from tests.fixtures import chart as m
from webhook.admission.certs import build

CA = m.example_ca_bundle()
WEBHOOK = f"https://{m.RELEASE}-oam-rollout-webhook.{m.NAMESPACE}.svc"
CONTROLLER = f"http://{m.RELEASE}-oam-rollout-controller-metrics.{m.NAMESPACE}.svc"


def _test_pods(values: dict[str, Any]) -> list[Any]:
    return [p for p in m.of_kind(m.render(values), "Pod")
            if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]  # fmt: skip


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom"))
            for e in pod["spec"]["containers"][0]["env"]}  # fmt: skip


@pytest.mark.parametrize(
    ("values", "checks"),
    [
        ({}, [f"{WEBHOOK}:443/healthz", f"{WEBHOOK}:443/readyz",
              f"{CONTROLLER}:8080/healthz", f"{CONTROLLER}:8080/readyz"]),
        ({"webhook": {"service": {"port": 8443}}, "controller": {"healthPort": 9090}},
         [f"{WEBHOOK}:8443/healthz", f"{WEBHOOK}:8443/readyz",
          f"{CONTROLLER}:9090/healthz", f"{CONTROLLER}:9090/readyz"]),
        ({"controller": {"enabled": False}}, [f"{WEBHOOK}:443/healthz", f"{WEBHOOK}:443/readyz"]),
        ({"webhook": {"url": "https://127.0.0.1:9443"}, "certs": {"caBundle": CA}},
         [f"{CONTROLLER}:8080/healthz", f"{CONTROLLER}:8080/readyz"]),
        ({"webhook": {"url": "https://127.0.0.1:9443"}, "certs": {"caBundle": CA},
          "controller": {"enabled": False}}, None),
        ({"tests": {"enabled": False}}, None),
    ],
    ids=["defaults", "other-ports", "no-controller", "outside-webhook", "nothing-in-cluster",
         "disabled"],
)  # fmt: skip
def test_the_test_pod_checks_the_health_endpoints_that_run_in_the_cluster(
    values: dict[str, Any], checks: list[str] | None
) -> None:
    pods = _test_pods(values)
    rendered = [json.loads(_env(pod)["CHECKS"]) for pod in pods]
    assert rendered == ([] if checks is None else [checks])


def test_each_checked_url_is_a_port_of_a_service_the_chart_makes() -> None:
    objects = m.render({"webhook": {"service": {"port": 8443}}})
    ports = {
        (f"{s['metadata']['name']}.{s['metadata']['namespace']}.svc", p["port"])
        for s in m.of_kind(objects, "Service")
        for p in s["spec"]["ports"]
    }
    (pod,) = _test_pods({"webhook": {"service": {"port": 8443}}})
    checked = {(urlsplit(u).hostname, urlsplit(u).port) for u in json.loads(_env(pod)["CHECKS"])}
    assert checked - ports == set()


def test_the_test_pod_is_a_helm_test_hook_of_the_chart_image_under_the_restricted_context() -> (
    None
):
    objects = m.render({"image": {"digest": "sha256:" + "0" * 64}})
    (pod,) = _test_pods({"image": {"digest": "sha256:" + "0" * 64}})
    container = pod["spec"]["containers"][0]
    deployment = m.one(objects, "Deployment", "webhook")["spec"]["template"]["spec"]
    assert (
        pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"],
        pod["spec"]["restartPolicy"],
        pod["spec"]["automountServiceAccountToken"],
        container["image"],
        container["command"][:2],
        container["command"][2] == (m.CHART_DIR / "files/tests/health_check.py").read_text(),
        pod["spec"]["securityContext"],
        container["securityContext"],
    ) == (
        "before-hook-creation,hook-succeeded",
        "Never",
        False,
        deployment["containers"][0]["image"],
        ["python", "-c"],
        True,
        deployment["securityContext"],
        deployment["containers"][0]["securityContext"],
    )


@pytest.mark.parametrize(
    ("values", "ca_source"),
    [
        ({}, {"secretKeyRef": {"name": f"{m.RELEASE}-oam-rollout-webhook-tls", "key": "ca.crt",
                               "optional": True}}),
        ({"certs": {"mode": "external", "secretName": "mine", "caBundle": CA}},
         base64.b64decode(CA).decode()),
    ],
    ids=["ca-from-the-secret", "ca-from-the-values"],
)  # fmt: skip
def test_the_webhook_certificate_is_checked_against_the_ca_the_api_server_trusts(
    values: dict[str, Any], ca_source: Any
) -> None:
    (pod,) = _test_pods(values)
    assert _env(pod)["CA_BUNDLE"] == ca_source


def test_under_host_network_the_test_pod_runs_on_the_node_network_too() -> None:
    (pod,) = _test_pods({"hostNetwork": True})
    assert (pod["spec"]["hostNetwork"], pod["spec"]["dnsPolicy"]) == (
        True, "ClusterFirstWithHostNet")  # fmt: skip


# --- the check itself, against real servers on 127.0.0.1 ---------------------------------


@dataclass(frozen=True)
class Endpoints:
    https: str
    http: str
    ca_pem: str
    other_ca_pem: str


class _Health(http.server.BaseHTTPRequestHandler):
    STATUSES: ClassVar[dict[str, int]] = {"/healthz": 200, "/readyz": 503}

    def do_GET(self) -> None:
        self.send_response(self.STATUSES.get(self.path, 404))
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: pytest shows the check's own output.
        return


def _serve(server: http.server.ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """An HTTPS server (certificate for 127.0.0.1) and an HTTP one: /healthz answers 200,
    /readyz 503."""
    ca_pem, cert_pem, key_pem = build(["127.0.0.1"])
    other_ca_pem, _, _ = build(["127.0.0.1"])
    folder = tmp_path_factory.mktemp("health")
    (folder / "tls.crt").write_bytes(cert_pem)
    (folder / "tls.key").write_bytes(key_pem)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(folder / "tls.crt", folder / "tls.key")
    https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    https.socket = tls.wrap_socket(https.socket, server_side=True)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threads = [_serve(https), _serve(plain)]
    try:
        yield Endpoints(
            https=f"https://127.0.0.1:{https.server_address[1]}",
            http=f"http://127.0.0.1:{plain.server_address[1]}",
            ca_pem=ca_pem.decode(),
            other_ca_pem=other_ca_pem.decode(),
        )
    finally:
        for server in (https, plain):
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)


def _run_check(checks: list[str], ca_bundle: str | None) -> tuple[int, list[str]]:
    """Run the command of the rendered test Pod, with its CHECKS and CA_BUNDLE."""
    (pod,) = _test_pods({})
    command = pod["spec"]["containers"][0]["command"]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["CHECKS"] = json.dumps(checks)
    if ca_bundle is not None:
        env["CA_BUNDLE"] = ca_bundle
    proc = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    return proc.returncode, proc.stdout.splitlines()


def test_healthy_endpoints_pass_with_the_certificate_verified(endpoints: Endpoints) -> None:
    checks = [f"{endpoints.https}/healthz", f"{endpoints.http}/healthz"]
    assert _run_check(checks, endpoints.ca_pem) == (0, [f"{url}: ok" for url in checks])


def test_an_unready_endpoint_fails_the_test(endpoints: Endpoints) -> None:
    checks = [f"{endpoints.http}/healthz", f"{endpoints.http}/readyz"]
    assert _run_check(checks, None) == (
        1, [f"{checks[0]}: ok", f"{checks[1]}: FAILED: HTTP 503"])  # fmt: skip


def test_a_certificate_the_ca_did_not_sign_fails_the_test(endpoints: Endpoints) -> None:
    code, lines = _run_check([f"{endpoints.https}/healthz"], endpoints.other_ca_pem)
    assert (code, len(lines), "FAILED" in lines[0], "CERTIFICATE_VERIFY_FAILED" in lines[0]) == (
        1, 1, True, True)  # fmt: skip


def test_without_a_ca_the_webhook_is_still_checked_and_the_output_says_unverified(
    endpoints: Endpoints,
) -> None:
    url = f"{endpoints.https}/healthz"
    assert _run_check([url], "") == (0, [f"{url}: ok (certificate not verified: no CA)"])


def test_the_check_script_is_packaged_with_the_chart() -> None:
    ignored = (m.CHART_DIR / ".helmignore").read_text().splitlines()
    script = Path("files/tests/health_check.py")
    assert [p for p in ignored if p and not p.startswith("#") and script.match(p)] == []
