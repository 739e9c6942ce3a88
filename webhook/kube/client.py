"""The controller's Kubernetes client: JSON reads, writes and watch streams over one pool.

Holds KubeApi (GET / LIST / POST / merge and apply PATCH / DELETE, raw JSON, no model
layer, thread-safe; watches come from ApiReader) and the resource paths the controller
uses. Failures raise webhook.core.errors.ApiError with the HTTP status. It must not
decide anything: callers pass complete bodies.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
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


class KubeApi(ApiReader):
    """ApiReader plus the writes and watches the controller needs.

    ``manager`` is the fieldManager of plain writes (see writer_manager); applies always
    use the shared FIELD_MANAGER.
    """

    manager: str = FIELD_MANAGER

    def request(self, method: str, path: str, body: Any = None,
                query: Mapping[str, str] | None = None,
                content_type: str = "application/json") -> Any:
        url = self.credentials.server.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode(dict(query))
        headers = self._headers()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            response = self._pool.request(method, url, body=data, headers=headers,
                                          timeout=WRITE_TIMEOUT)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(method, path, 0, f"{type(exc).__name__}: {exc}") from exc
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

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply: fields we stop rendering are removed from the live object."""
        meta = obj.get("metadata") or {}
        path = resource_of(obj).path(meta.get("namespace"), meta.get("name"))
        out: dict[str, Any] = self.request(
            "PATCH", path, obj, {"fieldManager": FIELD_MANAGER, "force": "true"},
            "application/apply-patch+yaml")
        return out

    def delete(self, path: str) -> bool:
        """False when it was already gone."""
        try:
            self.request("DELETE", path, {"propagationPolicy": "Background"})
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


def connect(kubeconfig: str | None = None, pool_size: int = 16) -> KubeApi:
    """A KubeApi from the usual kubeconfig lookup; ApiConfigError when none can be used."""
    try:
        return KubeApi(load_credentials(kubeconfig), pool_size=pool_size)
    except OSError as exc:
        raise ApiConfigError(f"cannot set up the Kubernetes API client: {exc}") from exc
