"""The client's impersonating views: the headers they send, and the refusals they raise."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from webhook.core.errors import ApiError
from webhook.core.requester import Requester
from webhook.kube.client import Forbidden, KubeApi, Permission, permission_of
from webhook.kube.reader import Credentials

ALICE = Requester("alice", ("developers", "system:authenticated"))
DEPLOYMENTS = "/apis/apps/v1/namespaces/team-a/deployments"


class RecordingServer(http.server.ThreadingHTTPServer):
    """Answers every request with ``status`` and ``body``; keeps each request's headers."""

    status = 200
    body: dict[str, Any]
    seen: list[dict[str, list[str]]]


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    server: RecordingServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append({key: self.headers.get_all(key) or []
                                 for key in ("Impersonate-User", "Impersonate-Group")})
        payload = json.dumps(self.server.body).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    srv = RecordingServer(("127.0.0.1", 0), RecordingHandler)
    srv.seen, srv.body = [], {}
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def client(server: RecordingServer) -> KubeApi:
    return KubeApi(Credentials(server=f"http://127.0.0.1:{server.server_address[1]}"))


def test_a_view_sends_the_user_and_one_header_per_group_and_the_client_stays_itself(
    server: RecordingServer,
) -> None:
    api = client(server)
    api.acting_as(ALICE).create(DEPLOYMENTS, {"metadata": {"name": "web"}})
    api.create(DEPLOYMENTS, {"metadata": {"name": "web"}})
    assert server.seen == [
        {"Impersonate-User": ["alice"],
         "Impersonate-Group": ["developers", "system:authenticated"]},
        {"Impersonate-User": [], "Impersonate-Group": []},
    ]


REFUSAL = ('deployments.apps "web-v1" is forbidden: User "alice" cannot create resource '
           '"deployments" in API group "apps" in the namespace "team-a"')
NO_IMPERSONATION = ('users "alice" is forbidden: User "system:serviceaccount:oam:controller" '
                    'cannot impersonate resource "users" in API group "" at the cluster scope')


@pytest.mark.parametrize(
    ("refusal", "message", "impersonation"),
    [
        (REFUSAL, 'forbidden: user "alice" may not create deployments.apps in namespace '
         '"team-a"', False),
        (NO_IMPERSONATION, "forbidden: the controller may not impersonate user \"alice\" "
         "(grant its ServiceAccount impersonate on users, groups and serviceaccounts): "
         + NO_IMPERSONATION, True),
    ],
    ids=["the user may not write", "the controller may not impersonate"],
)
def test_a_refused_view_request_names_the_missing_permission(
    server: RecordingServer, refusal: str, message: str, impersonation: bool
) -> None:
    server.status, server.body = 403, {"kind": "Status", "message": refusal, "code": 403}
    with pytest.raises(Forbidden) as caught:
        client(server).acting_as(ALICE).merge_patch(f"{DEPLOYMENTS}/web-v1", {})
    assert (str(caught.value), caught.value.impersonation, caught.value.status) == (
        message, impersonation, 403)


def test_the_controllers_own_refusal_stays_a_plain_api_error(server: RecordingServer) -> None:
    server.status, server.body = 403, {"message": REFUSAL}
    with pytest.raises(ApiError) as caught:
        client(server).merge_patch(f"{DEPLOYMENTS}/web-v1", {})
    assert not isinstance(caught.value, Forbidden)


@pytest.mark.parametrize(
    ("method", "path", "refusal", "permission"),
    [
        ("PATCH", f"{DEPLOYMENTS}/web", "", Permission("patch", "deployments.apps", "team-a")),
        ("PATCH", f"{DEPLOYMENTS}/web", REFUSAL,
         Permission("create", "deployments.apps", "team-a")),
        ("POST", "/api/v1/namespaces/team-a/services", "",
         Permission("create", "services", "team-a")),
        ("DELETE", f"{DEPLOYMENTS}/web", "", Permission("delete", "deployments.apps", "team-a")),
        ("GET", DEPLOYMENTS, "", Permission("list", "deployments.apps", "team-a")),
        ("GET", f"{DEPLOYMENTS}/web", "", Permission("get", "deployments.apps", "team-a")),
        ("PATCH", "/apis/standard.oam.dev/v1alpha1/namespaces/t/rollouts/web/status", "",
         Permission("patch", "rollouts/status.standard.oam.dev", "t")),
        ("DELETE", "/api/v1/namespaces/t/services", "",
         Permission("deletecollection", "services", "t")),
        ("GET", "/api/v1/namespaces", "", Permission("list", "namespaces", "")),
        ("POST", "/x", NO_IMPERSONATION, Permission("impersonate", "users", "")),
    ],
    ids=["apply", "apply that creates", "create", "delete", "list", "get", "subresource",
         "collection delete", "cluster scope", "impersonation"],
)
def test_the_missing_permission_is_read_from_the_refusal_else_from_the_request(
    method: str, path: str, refusal: str, permission: Permission
) -> None:
    assert permission_of(method, path, refusal) == permission


@pytest.mark.parametrize(
    ("permission", "text"),
    [
        (Permission("create", "deployments.apps", "team-a"),
         'create deployments.apps in namespace "team-a"'),
        (Permission("impersonate", "users"), "impersonate users cluster-wide"),
    ],
)
def test_a_permission_reads_as_verb_resource_and_namespace(
    permission: Permission, text: str
) -> None:
    assert str(permission) == text
