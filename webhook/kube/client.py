"""The controller's Kubernetes client: JSON reads, writes and watch streams over one pool.

Holds KubeApi (GET / LIST / POST / merge, JSON and apply PATCH / DELETE, raw JSON, no model
layer, thread-safe; watches come from ApiReader), its impersonating views
(``acting_as``: the same pool, every request sent as another user) and the resource
paths the controller uses. Failures raise webhook.core.errors.ApiError with the HTTP
status; a view's 403 raises Forbidden, which names the permission the user lacks. It
must not decide anything: callers pass complete bodies and choose who writes.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3

from webhook.core.errors import ApiConfigError, ApiError, OamRolloutError
from webhook.core.labels import (
    APP_GROUP,
    APP_PLURAL,
    APP_VERSION,
    CLONESET_GROUP,
    CLONESET_PLURAL,
    CLONESET_VERSION,
    ROLLOUT_GROUP,
    ROLLOUT_PLURAL,
    ROLLOUT_VERSION,
)
from webhook.core.requester import Requester
from webhook.kube.reader import ApiReader, load_credentials

# Server-side apply ownership is shared by every replica (a new leader must own what the
# old one applied, or fields it stops rendering would linger); plain writes (create,
# merge patch) are recorded under writer_manager(identity) so managedFields show
# which replica made them.
FIELD_MANAGER = "oam-rollout-controller"
MAX_MANAGER_LENGTH = 128  # the API server's limit on fieldManager
# Writes and reads must answer fast; watches stay open for their server-side timeout.
WRITE_TIMEOUT = urllib3.Timeout(connect=2.0, read=10.0)


def writer_manager(identity: str) -> str:
    """The fieldManager of one replica's plain writes: ``oam-rollout-controller@<identity>``."""
    return f"{FIELD_MANAGER}@{identity}"[:MAX_MANAGER_LENGTH] if identity else FIELD_MANAGER


def writer_identity(manager: str) -> str | None:
    """The replica a writer_manager() name stands for; None for any other manager."""
    prefix = f"{FIELD_MANAGER}@"
    return manager[len(prefix):] if manager.startswith(prefix) else None


@dataclass(frozen=True)
class Resource:
    """Where one kind lives: ``/apis/GROUP/VERSION/namespaces/NS/PLURAL``."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str | None = None, name: str | None = None,
             sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


APPLICATIONS = Resource(APP_GROUP, APP_VERSION, APP_PLURAL)
ROLLOUTS = Resource(ROLLOUT_GROUP, ROLLOUT_VERSION, ROLLOUT_PLURAL)
CLONESETS = Resource(CLONESET_GROUP, CLONESET_VERSION, CLONESET_PLURAL)
DEPLOYMENTS = Resource("apps", "v1", "deployments")
REVISIONS = Resource("apps", "v1", "controllerrevisions")
EVENTS = Resource("", "v1", "events")
LEASES = Resource("coordination.k8s.io", "v1", "leases")

# Kinds the templates may render next to a workload, by (apiVersion, kind).
KNOWN_KINDS = {
    ("apps/v1", "Deployment"): DEPLOYMENTS,
    (f"{CLONESET_GROUP}/{CLONESET_VERSION}", "CloneSet"): CLONESETS,
    ("v1", "Service"): Resource("", "v1", "services"),
    ("v1", "ConfigMap"): Resource("", "v1", "configmaps"),
    ("apps/v1", "ControllerRevision"): REVISIONS,
    (f"{ROLLOUT_GROUP}/{ROLLOUT_VERSION}", "Rollout"): ROLLOUTS,
}


def resource_of(obj: Mapping[str, Any]) -> Resource:
    key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if key not in KNOWN_KINDS:
        raise OamRolloutError(f"cannot apply a {key[1]} ({key[0]}): unknown kind")
    return KNOWN_KINDS[key]


@dataclass(frozen=True)
class Permission:
    """One RBAC permission: ``verb`` on ``resource`` (plural.group) in ``namespace``."""

    verb: str
    resource: str
    namespace: str = ""

    def __str__(self) -> str:
        where = f' in namespace "{self.namespace}"' if self.namespace else " cluster-wide"
        return f"{self.verb} {self.resource}{where}"


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# How the authorizer words a refusal: `User "u" cannot VERB resource "R" in API group
# "G" in the namespace "NS"` (the group part is absent for the core group).
_REFUSAL = re.compile(r'cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]+)"'
                      r'(?: in API group "(?P<group>[^"]*)")?'
                      r'(?: in the namespace "(?P<namespace>[^"]+)")?')


def permission_of(method: str, path: str, refusal: str = "") -> Permission:
    """The permission a request needed: as the API server's refusal words it, else as
    the method and path say (a server-side apply that creates needs ``create`` too,
    which only the refusal tells)."""
    found = _REFUSAL.search(refusal)
    if found is not None:
        group = found["group"] or ""
        resource = f"{found['resource']}.{group}" if group else found["resource"]
        return Permission(found["verb"], resource, found["namespace"] or "")
    parts = path.strip("/").split("/")
    group = "" if parts[:1] == ["api"] else (parts[1] if len(parts) > 1 else "")
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    namespace = ""
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    plural = rest[0] if rest else ""
    named = len(rest) > 1
    verb = _VERBS.get(method, "get" if named else "list")
    if method == "DELETE" and not named:
        verb = "deletecollection"
    if len(rest) > 2:
        plural = f"{plural}/{rest[2]}"
    return Permission(verb, f"{plural}.{group}" if group else plural, namespace)


class Forbidden(ApiError):
    """A request made as ``requester`` was refused (403): ``permission`` is what was
    missing. ``impersonation`` is True when it is the controller that may not act as
    that user (its own RBAC lacks ``impersonate``), not the user who may not write."""

    def __init__(self, method: str, path: str, requester: Requester, refusal: str) -> None:
        super().__init__(method, path, 403, refusal)
        self.requester = requester
        self.impersonation = "cannot impersonate" in refusal
        self.permission = permission_of(method, path, refusal)
        if self.impersonation:
            self.message = (
                f"forbidden: the controller may not impersonate {requester.describe()} "
                "(grant its ServiceAccount impersonate on users, groups and serviceaccounts): "
                f"{refusal}")
        else:
            self.message = f"forbidden: {requester.describe()} may not {self.permission}"

    def __str__(self) -> str:
        return self.message


class KubeApi(ApiReader):
    """ApiReader plus the writes and watches the controller needs.

    ``manager`` is the fieldManager of plain writes (see writer_manager); applies always
    use the shared FIELD_MANAGER. ``requester`` is set on the views ``acting_as`` makes:
    their requests carry Impersonate-User and one Impersonate-Group per group, so the
    API server authorizes them as that user and never with the controller's own rights.
    """

    manager: str = FIELD_MANAGER
    requester: Requester | None = None

    def acting_as(self, requester: Requester) -> KubeApi:
        """This client, sending every request as ``requester`` (the same connection pool)."""
        view = copy.copy(self)
        view.requester = requester
        return view

    def request(self, method: str, path: str, body: Any = None,
                query: Mapping[str, str] | None = None,
                content_type: str = "application/json") -> Any:
        url = self.credentials.server.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode(dict(query))
        headers = urllib3.HTTPHeaderDict(self._headers())
        if self.requester is not None:
            headers["Impersonate-User"] = self.requester.username
            for group in self.requester.groups:  # one header line per group
                headers.add("Impersonate-Group", group)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            response = self._pool.request(method, url, body=data, headers=headers,
                                          timeout=WRITE_TIMEOUT)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(method, path, 0, f"{type(exc).__name__}: {exc}") from exc
        if response.status == 403 and self.requester is not None:
            raise Forbidden(method, path, self.requester, _message(response.data))
        if response.status >= 300:
            raise ApiError(method, path, response.status, _message(response.data))
        try:
            return json.loads(response.data) if response.data else {}
        except ValueError as exc:
            raise ApiError(method, path, response.status, "the answer is not JSON") from exc

    def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            obj = self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return obj if isinstance(obj, dict) else None

    def list(self, path: str, selector: str | None = None) -> list[dict[str, Any]]:
        listing = self.request("GET", path, query={"labelSelector": selector} if selector else None)
        items = listing.get("items") if isinstance(listing, dict) else None
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", path, body, {"fieldManager": self.manager})
        return out

    def merge_patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.request(
            "PATCH", path, body, {"fieldManager": self.manager},
            "application/merge-patch+json")
        return out

    def json_patch(self, path: str, operations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """An RFC 6902 JSON patch: its ``test`` operations make it fail (422) rather than
        change an object that moved since it was read."""
        out: dict[str, Any] = self.request(
            "PATCH", path, operations, {"fieldManager": self.manager},
            "application/json-patch+json")
        return out

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply: fields we stop rendering are removed from the live object."""
        meta = obj.get("metadata") or {}
        path = resource_of(obj).path(meta.get("namespace"), meta.get("name"))
        out: dict[str, Any] = self.request(
            "PATCH", path, obj, {"fieldManager": FIELD_MANAGER, "force": "true"},
            "application/apply-patch+yaml")
        return out

    def delete(self, path: str, uid: str | None = None) -> bool:
        """False when it was already gone. With ``uid``, only that very object goes: one
        created again under the name meanwhile fails the precondition (409)."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", path, body)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True


def _message(data: bytes | None) -> str:
    try:
        status = json.loads(data or b"")
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    except ValueError:
        pass
    return (data or b"")[:200].decode("utf-8", "replace") or "error"


def connect(kubeconfig: str | None = None, pool_size: int = 16,
            context: str | None = None) -> KubeApi:
    """A KubeApi from the usual lookup (webhook.kube.reader.load_credentials: in-cluster,
    or a kubeconfig context, exec and auth-provider plugins included); ApiConfigError when
    none can be used. ``api.credentials.namespace`` is the context's namespace."""
    try:
        return KubeApi(load_credentials(kubeconfig, context), pool_size=pool_size)
    except OSError as exc:
        raise ApiConfigError(f"cannot set up the Kubernetes API client: {exc}") from exc
