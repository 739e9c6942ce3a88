"""The webhook as a process (gunicorn, TLS): certificate rotation, probes, bad input, metrics.

These tests run `oam-rollout webhook` on 127.0.0.1 with a kubeconfig that points at a closed
port: none of them needs the API, and any review that would read it is denied with code 500.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.apps import application
from tests.fixtures.polling import eventually
from tests.fixtures.webhook import (
    WebhookProcess,
    admission_review,
    dummy_kubeconfig,
    start_webhook,
)
from webhook.admission.certs import CERT_FILE, generate


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookProcess]:
    workdir = tmp_path_factory.mktemp("webhook")
    process = start_webhook(workdir, dummy_kubeconfig(workdir / "kubeconfig"), workers=2, threads=2)
    try:
        yield process
    finally:
        process.stop()


def presented_certificate(port: int) -> x509.Certificate:
    """The certificate a fresh TLS connection to 127.0.0.1:port is served (not verified)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def connection(server: WebhookProcess) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=server.ssl_context(), timeout=10
    )


def post(conn: http.client.HTTPSConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def test_a_replaced_certificate_is_served_to_the_next_connection(server: WebhookProcess) -> None:
    before = presented_certificate(server.port)
    assert before == x509.load_pem_x509_certificate((server.cert_dir / CERT_FILE).read_bytes())
    generate(["127.0.0.1", "localhost"], server.cert_dir)
    rotated = x509.load_pem_x509_certificate((server.cert_dir / CERT_FILE).read_bytes())
    assert rotated.serial_number != before.serial_number
    # Two workers: each must have switched, so look at several fresh connections.
    seen = [presented_certificate(server.port) for _ in range(6)]
    assert seen == [rotated] * 6
    status, _ = server.get("/readyz")  # verified against the new CA file
    assert status == 200


def test_probes_answer_over_tls(server: WebhookProcess) -> None:
    status, body = server.get("/readyz")
    assert status == 200
    assert json.loads(body) == {"ready": True, "checks": {"templates": True, "tls": True}}
    assert server.get("/healthz")[0] == 200


def test_plain_http_is_not_served(server: WebhookProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/healthz")
        conn.getresponse().read()


def test_an_unreachable_api_denies_with_500_over_the_wire(server: WebhookProcess) -> None:
    conn = connection(server)
    status, body = post(conn, "/validate", json.dumps(admission_review(application())).encode())
    review = json.loads(body)["response"]
    assert status == 200
    assert (review["allowed"], review["status"]["code"]) == (False, 500)
    assert "cannot check the Application against the cluster" in review["status"]["message"]


def test_metrics_add_up_across_workers(server: WebhookProcess) -> None:
    def count() -> float:
        text = server.get("/metrics")[1].decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('oam_rollout_http_rejections_total{code="415"}')
        )

    before = count()
    for _ in range(8):
        conn = connection(server)  # new connections spread over both workers
        conn.request("POST", "/validate", body=b"{}", headers={"Content-Type": "text/plain"})
        assert conn.getresponse().status == 415
        conn.close()
    assert count() == before + 8


def test_each_worker_shows_its_process_metrics_by_pid_and_no_created_samples(
    server: WebhookProcess,
) -> None:
    def families() -> dict[str, Any]:
        text = server.get("/metrics")[1].decode()
        return {f.name: f for f in text_string_to_metric_families(text)}

    # Each worker loads the app on its own: the second may still be starting at first.
    found = eventually(families, until=lambda f: len(
        f["process_resident_memory_bytes"].samples) == 2, timeout=15,
        what="both workers' process metrics")
    memory = {s.labels["pid"]: s.value for s in found["process_resident_memory_bytes"].samples}
    cpu_pids = {s.labels["pid"] for s in found["process_cpu_seconds"].samples}
    created = [s.name for f in found.values() for s in f.samples if s.name.endswith("_created")]
    assert (set(memory) == cpu_pids, min(memory.values()) > 0, created) == (True, True, [])


VALID = json.dumps(admission_review(application())).encode()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.integers(min_value=0, max_value=len(VALID) - 1).map(lambda n: VALID[:n]),
    ),
    path=st.sampled_from(["/validate", "/mutate"]),
)
def test_random_and_truncated_bodies_never_get_a_5xx_nor_kill_the_server(
    server: WebhookProcess, body: bytes, path: str
) -> None:
    conn = connection(server)
    try:
        status, _ = post(conn, path, body)
    finally:
        conn.close()
    assert status < 500
    assert server.process.poll() is None


def test_the_server_is_alive_and_ready_after_the_fuzzing(server: WebhookProcess) -> None:
    time.sleep(0.2)
    assert server.process.poll() is None
    assert server.get("/readyz")[0] == 200
    assert "Traceback" not in server.log()


def test_a_missing_certificate_is_a_one_line_startup_error(tmp_path: Path) -> None:
    generate(["127.0.0.1"], tmp_path)
    missing = tmp_path / "nope.crt"
    argv = [
        "webhook",
        "webhook",
        "--tls-cert",
        str(missing),
        "--tls-key",
        str(tmp_path / "tls.key"),
    ]
    result = subprocess.run(
        [sys.executable, "-m", *argv], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"oam-rollout webhook: --tls-cert {missing}: no such file"


def test_a_body_over_seven_mib_gets_413_before_it_is_sent(server: WebhookProcess) -> None:
    conn = connection(server)
    try:
        # Announce the size only: the answer comes before the body would be read.
        conn.putrequest("POST", "/validate")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(7 * 1024 * 1024 + 1))
        conn.endheaders()
        response = conn.getresponse()
        status, body = response.status, response.read()
    finally:
        conn.close()
    assert status == 413
    assert json.loads(body)["code"] == 413
