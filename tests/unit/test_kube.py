"""Finding credentials and reading the API, without a cluster (objects: see test_objects)."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webhook.core.errors import ApiConfigError, ApiError
from webhook.kube.reader import (
    IN_CLUSTER_DIR,
    ApiReader,
    Credentials,
    credentials_from_kubeconfig,
    get_json,
    load_credentials,
)


def kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
            }
        )
    )
    return path


def test_a_token_kubeconfig_with_a_relative_ca_file(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config",
        {"server": "https://127.0.0.1:6443", "certificate-authority": "ca.crt"},
        {"token": "abc"},
    )
    assert credentials_from_kubeconfig(path) == Credentials(
        server="https://127.0.0.1:6443", ca_file=str(tmp_path / "ca.crt"), token="abc"
    )


def test_inline_certificate_data_is_written_to_private_files(tmp_path: Path) -> None:
    data = base64.b64encode(b"PEM").decode()
    path = kubeconfig(
        tmp_path / "config",
        {"server": "https://127.0.0.1:6443", "certificate-authority-data": data},
        {"client-certificate-data": data, "client-key-data": data},
    )
    creds = credentials_from_kubeconfig(path)
    for name in (creds.ca_file, creds.client_cert_file, creds.client_key_file):
        assert name is not None
        assert Path(name).read_bytes() == b"PEM"
        assert Path(name).stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not: [yaml", "cannot read it"),
        ("[]", "not a kubeconfig"),
        (json.dumps({"current-context": "missing"}), "no context named 'missing'"),
    ],
)
def test_unusable_kubeconfigs_are_one_line_errors(tmp_path: Path, content: str, says: str) -> None:
    (tmp_path / "config").write_text(content)
    with pytest.raises(ApiConfigError, match=says):
        credentials_from_kubeconfig(tmp_path / "config")


@pytest.mark.parametrize(
    ("user", "says"),
    [
        # A plugin that cannot run is one line (working plugins: test_cli_credentials.py).
        ({"exec": {"command": "/nonexistent/aws",
                   "apiVersion": "client.authentication.k8s.io/v1beta1"}},
         "yields no credentials"),
        ({}, None),
    ],
)
def test_a_plugin_that_cannot_run_is_an_error_and_anonymous_is_allowed(
    tmp_path: Path, user: dict[str, Any], says: str | None
) -> None:
    path = kubeconfig(tmp_path / "config", {"server": "https://127.0.0.1:6443"}, user)
    if says:
        with pytest.raises(ApiConfigError, match=says):
            credentials_from_kubeconfig(path)
    else:
        assert credentials_from_kubeconfig(path).token is None


def test_in_cluster_credentials_use_the_service_account_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.1.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert load_credentials(None) == Credentials(
        server="https://127.1.0.1:443",
        ca_file=str(IN_CLUSTER_DIR / "ca.crt"),
        token_file=str(IN_CLUSTER_DIR / "token"),
    )


def test_a_closed_port_is_an_api_error_without_status_naming_the_path() -> None:
    reader = ApiReader(Credentials(server="https://127.0.0.1:9"))
    with pytest.raises(
        ApiError, match=r"^GET /apis/apps/v1/namespaces/x/controllerrevisions: [A-Za-z]"
    ) as caught:
        get_json(reader, "/apis/apps/v1/namespaces/x/controllerrevisions")
    assert caught.value.status == 0


@pytest.mark.parametrize(
    ("error", "message", "status", "conflict"),
    [
        (ApiError("PUT", "/x", 409, "modified"), "PUT /x: 409 modified", 409, True),
        (ApiError("GET", "/x", 0, "ConnectionRefusedError"), "GET /x: ConnectionRefusedError",
         0, False),
        (ApiConfigError("kubeconfig k: no such file"), "kubeconfig k: no such file", 0, False),
    ],
    ids=["refused", "unreachable", "no client"],
)
def test_every_api_failure_is_one_error_type_with_its_status(
    error: ApiError, message: str, status: int, conflict: bool
) -> None:
    assert (str(error), error.status, error.conflict) == (message, status, conflict)


class WatchServer(http.server.ThreadingHTTPServer):
    """Answers every GET on 127.0.0.1 with ``body``, then keeps the stream open (or, with
    ``close``, ends it) until the test is done."""

    body = b""
    close = False
    done = threading.Event()


class WatchHandler(http.server.BaseHTTPRequestHandler):
    """Streams as the API server does: HTTP/1.1, one chunk per event."""

    server: WatchServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        body = self.server.body
        self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
        self.wfile.flush()
        if not self.server.close:
            self.server.done.wait(10)
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def watch_server() -> Iterator[WatchServer]:
    server = WatchServer(("127.0.0.1", 0), WatchHandler)
    server.done = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.done.set()
        server.shutdown()
        server.server_close()


def reader_of(server: WatchServer) -> ApiReader:
    return ApiReader(Credentials(server=f"http://127.0.0.1:{server.server_address[1]}"))


def test_an_interrupted_watch_ends_at_once_without_an_error(watch_server: WatchServer) -> None:
    watch_server.body = b'{"type": "ADDED", "object": {"metadata": {"name": "a"}}}\n'
    stream = reader_of(watch_server).watch("/api/v1/pods", "1", 60)
    events = iter(stream)
    assert next(events)["object"] == {"metadata": {"name": "a"}}
    threading.Timer(0.2, stream.interrupt).start()
    began = time.monotonic()
    assert list(events) == []
    assert time.monotonic() - began < 5


def test_a_watch_stream_that_is_not_json_is_an_api_error(watch_server: WatchServer) -> None:
    watch_server.body, watch_server.close = b"{not json\n", True
    stream = reader_of(watch_server).watch("/api/v1/pods", "1", 60)
    with pytest.raises(ApiError, match=r"^WATCH /api/v1/pods: JSONDecodeError") as caught:
        list(stream)
    assert caught.value.status == 0
