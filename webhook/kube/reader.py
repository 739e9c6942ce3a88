"""The Kubernetes API seam: building a client and reading the observed state of an Application.

Holds ``load_api_client`` (kubeconfig file, else in-cluster, else ~/.kube/config),
``ApiReader`` (a small read-only client the webhook workers use: the official client's
import alone costs ~35 MiB per process), ``get_json`` (one raw GET through either, decoded
to plain dicts) and ``read_observed_state``, plus the pure ``observed_state_from`` that
turns the listed objects into an ObservedState (the controller can feed it from caches).
It must not take decisions and must not write to the cluster on the webhook's behalf:
admission is read-only.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import ssl
import tempfile
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3
import yaml

from webhook.core.errors import ClusterReadError
from webhook.core.labels import (
    APP_KIND,
    LABEL_APP_NAME,
    LABEL_CONTROLLER_COMPONENT,
    LABEL_REVISION_HASH,
    ROLLOUT_GROUP,
    ROLLOUT_PLURAL,
    ROLLOUT_SUCCEED,
    ROLLOUT_VERSION,
)
from webhook.core.state import ComponentObservation, ObservedState, RevisionRecord

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

# (connect, read) seconds: well inside the apiserver's 5 s webhook timeout, so a slow API
# turns into a clear denial from us rather than an opaque timeout from the apiserver.
REQUEST_TIMEOUT = (2.0, 3.0)


def load_api_client(kubeconfig: str | None = None) -> ApiClient:
    """An ApiClient from the given kubeconfig, else the pod's service account, else ~/.kube/config.

    Raises ClusterReadError with a one-line reason when no configuration can be loaded.
    """
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig:
            if not Path(kubeconfig).is_file():
                raise ClusterReadError(f"kubeconfig {kubeconfig}: no such file")
            return k8s_config.new_client_from_config(config_file=kubeconfig)
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            configuration = k8s_client.Configuration()
            k8s_config.load_incluster_config(client_configuration=configuration)
            return k8s_client.ApiClient(configuration=configuration)
        return k8s_config.new_client_from_config()
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        where = kubeconfig or "in-cluster or ~/.kube/config"
        raise ClusterReadError(f"cannot load Kubernetes configuration ({where}): {exc}") from exc


def get_json(api: ApiClient | ApiReader, path: str, query: Mapping[str, str] | None = None) -> Any:
    """GET one API path and return the decoded JSON; any failure becomes ClusterReadError."""
    if isinstance(api, ApiReader):
        return api.get_json(path, query)
    from kubernetes.client.exceptions import ApiException

    try:
        response = api.call_api(
            path,
            "GET",
            query_params=list((query or {}).items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
        return json.loads(response.data)
    except ApiException as exc:
        reason = _api_reason(exc)
        raise ClusterReadError(f"GET {path}: {exc.status} {reason}") from exc
    except (OSError, ValueError) as exc:
        # urllib3 errors are OSErrors (timeouts, refused connections); ValueError: bad JSON.
        raise ClusterReadError(f"GET {path}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        # urllib3's MaxRetryError and friends are not OSErrors in every version.
        if type(exc).__module__.startswith("urllib3"):
            raise ClusterReadError(f"GET {path}: {type(exc).__name__}: {exc}") from exc
        raise


def _api_reason(exc: Any) -> str:
    """The Status message of an API error, else its HTTP reason."""
    return _status_message(exc.body, str(exc.reason or "error"))


def _status_message(body: Any, fallback: str) -> str:
    try:
        status = json.loads(body or "")
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    except (TypeError, ValueError):
        pass
    return fallback


IN_CLUSTER_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Credentials:
    """Where the API is and how to authenticate, from a kubeconfig or the pod's account."""

    server: str
    ca_file: str | None = None
    insecure: bool = False
    token: str | None = None
    token_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None


class ApiReader:
    """A small, thread-safe, read-only JSON client over one pooled urllib3 connection pool."""

    def __init__(self, credentials: Credentials, pool_size: int = 8) -> None:
        self.credentials = credentials
        context = ssl.create_default_context(cafile=credentials.ca_file)
        if credentials.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if credentials.client_cert_file:
            context.load_cert_chain(credentials.client_cert_file, credentials.client_key_file)
        self._pool = urllib3.PoolManager(
            maxsize=pool_size,
            ssl_context=context,
            timeout=urllib3.Timeout(connect=REQUEST_TIMEOUT[0], read=REQUEST_TIMEOUT[1]),
            retries=False,
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "oam-rollout-webhook"}
        token = self.credentials.token
        if self.credentials.token_file:
            # Projected service-account tokens rotate: read the file each time (it is tiny).
            token = Path(self.credentials.token_file).read_text().strip()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def get_json(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        url = self.credentials.server.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode(dict(query))
        try:
            response = self._pool.request("GET", url, headers=self._headers())
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterReadError(f"GET {path}: {type(exc).__name__}: {exc}") from exc
        if response.status != 200:
            reason = _status_message(response.data, response.reason or "error")
            raise ClusterReadError(f"GET {path}: {response.status} {reason}")
        try:
            return json.loads(response.data)
        except ValueError as exc:
            raise ClusterReadError(f"GET {path}: the answer is not JSON") from exc

    def stream_events(
        self, path: str, query: Mapping[str, str], read_timeout: float
    ) -> Iterator[dict[str, Any]]:
        """The JSON objects of a watch stream, one per line, until the server ends it.

        Raises ClusterReadError when the stream cannot be opened or breaks.
        """
        url = f"{self.credentials.server.rstrip('/')}{path}?{urllib.parse.urlencode(dict(query))}"
        timeout = urllib3.Timeout(connect=REQUEST_TIMEOUT[0], read=read_timeout)
        try:
            response = self._pool.request(
                "GET", url, headers=self._headers(), preload_content=False, timeout=timeout
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterReadError(f"WATCH {path}: {type(exc).__name__}: {exc}") from exc
        try:
            if response.status != 200:
                reason = _status_message(response.read(), response.reason or "error")
                raise ClusterReadError(f"WATCH {path}: {response.status} {reason}")
            pending = b""
            for chunk in response.stream(65536, decode_content=False):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        event = json.loads(line)
                        if isinstance(event, dict):
                            yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise ClusterReadError(f"WATCH {path}: {type(exc).__name__}: {exc}") from exc
        finally:
            response.release_conn()


def load_api_reader(kubeconfig: str | None = None) -> ApiReader:
    """An ApiReader with the same lookup order as load_api_client; ClusterReadError on failure."""
    try:
        return ApiReader(load_credentials(kubeconfig))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ClusterReadError(f"cannot set up the Kubernetes API client: {exc}") from exc


def load_credentials(kubeconfig: str | None = None) -> Credentials:
    """Credentials from ``kubeconfig``, else in-cluster, else $KUBECONFIG or ~/.kube/config."""
    if kubeconfig:
        return credentials_from_kubeconfig(Path(kubeconfig))
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if host:
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:
            host = f"[{host}]"
        return Credentials(
            server=f"https://{host}:{port}",
            ca_file=str(IN_CLUSTER_DIR / "ca.crt"),
            token_file=str(IN_CLUSTER_DIR / "token"),
        )
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return credentials_from_kubeconfig(Path(env) if env else Path.home() / ".kube" / "config")


def credentials_from_kubeconfig(path: Path) -> Credentials:
    """The current context's server and credentials; ClusterReadError for what we cannot use."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ClusterReadError(f"kubeconfig {path}: cannot read it: {exc}") from exc
    if not isinstance(doc, dict):
        raise ClusterReadError(f"kubeconfig {path}: not a kubeconfig")

    def named(section: str, name: Any) -> dict[str, Any]:
        for entry in _list(doc.get(section)):
            if isinstance(entry, dict) and entry.get("name") == name:
                inner = entry.get(section[:-1])
                return inner if isinstance(inner, dict) else {}
        raise ClusterReadError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")

    context = named("contexts", doc.get("current-context"))
    cluster = named("clusters", context.get("cluster"))
    user = named("users", context.get("user")) if context.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise ClusterReadError(
            f"kubeconfig {path}: exec and auth-provider credentials are not supported; "
            "use a token or a client certificate"
        )
    base = path.parent

    def file_or_data(file_key: str, data_key: str, section: Mapping[str, Any]) -> str | None:
        if section.get(data_key):
            return _private_file(base64.b64decode(section[data_key]))
        if section.get(file_key):
            return str(base / str(section[file_key]))
        return None

    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise ClusterReadError(f"kubeconfig {path}: the cluster has no server")
    return Credentials(
        server=server,
        ca_file=file_or_data("certificate-authority", "certificate-authority-data", cluster),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=str(user["token"]) if user.get("token") else None,
        token_file=str(base / str(user["tokenFile"])) if user.get("tokenFile") else None,
        client_cert_file=file_or_data("client-certificate", "client-certificate-data", user),
        client_key_file=file_or_data("client-key", "client-key-data", user),
    )


def _private_file(data: bytes) -> str:
    """Inline kubeconfig material as a 0600 temp file (ssl only loads files), removed at exit."""
    fd, name = tempfile.mkstemp(prefix="oam-rollout-kube-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    atexit.register(Path(name).unlink, missing_ok=True)
    return name


def revisions_path(namespace: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions"


def rollouts_path(namespace: str) -> str:
    return f"/apis/{ROLLOUT_GROUP}/{ROLLOUT_VERSION}/namespaces/{namespace}/{ROLLOUT_PLURAL}"


def read_observed_state(
    api: ApiClient | ApiReader, namespace: str, app_name: str, *, rollouts: bool = True
) -> ObservedState:
    """What is live for one Application: its namespace's component revisions and its Rollouts.

    ``rollouts=False`` skips listing Rollouts (``components`` stays empty). Raises
    ClusterReadError when a list cannot be read.
    """
    revisions = get_json(
        api, revisions_path(namespace), {"labelSelector": LABEL_CONTROLLER_COMPONENT}
    )
    listed = get_json(api, rollouts_path(namespace)) if rollouts else {"items": []}
    return observed_state_from(
        namespace, app_name, _items(revisions, "controllerrevisions"), _items(listed, "rollouts")
    )


def _items(listing: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(listing, dict) or not isinstance(listing.get("items"), list):
        raise ClusterReadError(f"listing {what}: the API answered something that is not a list")
    return [item for item in listing["items"] if isinstance(item, dict)]


def observed_state_from(
    namespace: str,
    app_name: str,
    revisions: Iterable[Mapping[str, Any]],
    rollouts: Iterable[Mapping[str, Any]],
) -> ObservedState:
    """Reduce listed ControllerRevisions and Rollouts (plain dicts) to an ObservedState.

    Every labelled revision of the namespace is kept (an externalRevision may collide with
    another Application's); only the Rollouts that belong to ``app_name`` are kept.
    """
    records = tuple(
        sorted(
            (r for r in map(revision_record, revisions) if r is not None),
            key=lambda r: (r.component, r.number, r.name),
        )
    )
    components = {
        str(_meta(ro).get("name")): component_observation(ro)
        for ro in rollouts
        if _belongs_to(ro, app_name)
    }
    return ObservedState(namespace=namespace, revisions=records, components=components)


def revision_record(obj: Mapping[str, Any]) -> RevisionRecord | None:
    """A RevisionRecord from a ControllerRevision dict; None if it is not a component revision."""
    meta = _meta(obj)
    labels = _mapping(meta.get("labels"))
    component = labels.get(LABEL_CONTROLLER_COMPONENT)
    name = meta.get("name")
    if not isinstance(component, str) or not isinstance(name, str):
        return None
    number = obj.get("revision")
    data = obj.get("data")
    owner = next(
        (
            str(ref.get("name", ""))
            for ref in _list(meta.get("ownerReferences"))
            if isinstance(ref, dict) and ref.get("controller")
        ),
        "",
    )
    return RevisionRecord(
        name=name,
        component=component,
        number=number if isinstance(number, int) and not isinstance(number, bool) else 0,
        spec_hash=str(labels.get(LABEL_REVISION_HASH, "")),
        data=data if isinstance(data, dict) else {},
        owner=owner,
    )


def component_observation(rollout: Mapping[str, Any]) -> ComponentObservation:
    """A ComponentObservation from a Rollout dict (missing fields stay None)."""
    spec = _mapping(rollout.get("spec"))
    status = _mapping(rollout.get("status"))
    rolling_state = _str_or_none(status.get("rollingState"))
    size = status.get("rolloutTargetSize")
    settled = rolling_state == ROLLOUT_SUCCEED and isinstance(size, int)
    batch = status.get("currentBatch")
    return ComponentObservation(
        current_revision=_str_or_none(status.get("lastTargetRevision")),
        current_size=size if settled and not isinstance(size, bool) else None,
        current_batch=batch if isinstance(batch, int) and not isinstance(batch, bool) else None,
        rolling_state=rolling_state,
        batch_rolling_state=_str_or_none(status.get("batchRollingState")),
        rollout_target=_str_or_none(spec.get("targetRevisionName")),
    )


def _belongs_to(obj: Mapping[str, Any], app_name: str) -> bool:
    """Owned (ownerReference) by the Application, or labelled with its name."""
    meta = _meta(obj)
    if _mapping(meta.get("labels")).get(LABEL_APP_NAME) == app_name:
        return True
    return any(
        isinstance(ref, dict) and ref.get("kind") == APP_KIND and ref.get("name") == app_name
        for ref in _list(meta.get("ownerReferences"))
    )


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
