"""The Kubernetes API seam: building a client and reading the observed state of an Application.

Holds ``load_api_client`` (kubeconfig file, else in-cluster, else ~/.kube/config),
``load_credentials`` (where the API is and how to log in: the pod's service account, a
kubeconfig user with static credentials read here, any other user (exec and auth-provider
plugins, basic auth, several merged files) through the official client's kubeconfig
loader), ``ApiReader`` (a small read-only client the webhook workers use: the official
client's import alone costs ~45 MiB per process; its ``watch`` opens an ``EventStream``
that webhook.kube.watching's ListWatch reads), ``get_json`` (one raw GET through either,
decoded to plain dicts) and ``read_observed_state``, which lists the objects and hands
them to webhook.core.objects (the one reader of object shapes) to reduce.
It must not take decisions and must not write to the cluster on the webhook's behalf:
admission is read-only.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3
import yaml

from webhook.core.errors import ApiConfigError, ApiError
from webhook.core.labels import (
    LABEL_CONTROLLER_COMPONENT,
    ROLLOUT_GROUP,
    ROLLOUT_PLURAL,
    ROLLOUT_VERSION,
)
from webhook.core.objects import observed_state_from
from webhook.core.state import ObservedState

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

# (connect, read) seconds: well inside the apiserver's 5 s webhook timeout, so a slow API
# turns into a clear denial from us rather than an opaque timeout from the apiserver.
REQUEST_TIMEOUT = (2.0, 3.0)
# A watch may stay silent until the server ends it; allow this much more before giving up.
WATCH_SLACK = 30


def load_api_client(kubeconfig: str | None = None) -> ApiClient:
    """An ApiClient from the given kubeconfig, else the pod's service account, else ~/.kube/config.

    Raises ApiConfigError with a one-line reason when no configuration can be loaded.
    """
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig:
            if not Path(kubeconfig).is_file():
                raise ApiConfigError(f"kubeconfig {kubeconfig}: no such file")
            return k8s_config.new_client_from_config(config_file=kubeconfig)
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            configuration = k8s_client.Configuration()
            k8s_config.load_incluster_config(client_configuration=configuration)
            return k8s_client.ApiClient(configuration=configuration)
        return k8s_config.new_client_from_config()
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        where = kubeconfig or "in-cluster or ~/.kube/config"
        raise ApiConfigError(f"cannot load Kubernetes configuration ({where}): {exc}") from exc


def get_json(api: ApiClient | ApiReader, path: str, query: Mapping[str, str] | None = None) -> Any:
    """GET one API path and return the decoded JSON; any failure becomes ApiError."""
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
        raise ApiError("GET", path, int(exc.status or 0), _api_reason(exc)) from exc
    except (OSError, ValueError) as exc:
        # urllib3 errors are OSErrors (timeouts, refused connections); ValueError: bad JSON.
        raise ApiError("GET", path, 0, f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        # urllib3's MaxRetryError and friends are not OSErrors in every version.
        if type(exc).__module__.startswith("urllib3"):
            raise ApiError("GET", path, 0, f"{type(exc).__name__}: {exc}") from exc
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
    """Where the API is and how to authenticate, from a kubeconfig or the pod's account.

    ``namespace`` is the kubeconfig context's namespace (the pod's own in a pod), None
    when it names none. ``authorization`` gives the Authorization header for credentials
    that a plugin hands out and renews (exec, auth-provider): it is asked before every
    request, and runs the plugin again only once its token has expired.
    """

    server: str
    ca_file: str | None = None
    insecure: bool = False
    token: str | None = None
    token_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    namespace: str | None = None
    server_name: str | None = None
    authorization: Callable[[], str | None] | None = field(default=None, compare=False,
                                                          repr=False)


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
        tls_name: dict[str, Any] = (
            {"server_hostname": credentials.server_name} if credentials.server_name else {})
        self._pool = urllib3.PoolManager(
            maxsize=pool_size,
            ssl_context=context,
            **tls_name,
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
        if self.credentials.authorization is not None:
            value = self.credentials.authorization()
            if value:
                headers["Authorization"] = value
        return headers

    def get_json(
        self, path: str, query: Mapping[str, str] | None = None, read_timeout: float | None = None
    ) -> Any:
        """GET one path, decoded; ApiError unless the API answers 200 with JSON."""
        url = self.credentials.server.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode(dict(query))
        timeout = None if read_timeout is None else urllib3.Timeout(
            connect=REQUEST_TIMEOUT[0], read=read_timeout)
        try:
            response = self._pool.request("GET", url, headers=self._headers(), timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError("GET", path, 0, f"{type(exc).__name__}: {exc}") from exc
        if response.status != 200:
            reason = _status_message(response.data, response.reason or "error")
            raise ApiError("GET", path, response.status, reason)
        try:
            return json.loads(response.data)
        except ValueError as exc:
            raise ApiError("GET", path, 0, "the answer is not JSON") from exc

    def watch(
        self, path: str, resource_version: str, timeout_seconds: int, selector: str | None = None,
        field_selector: str | None = None,
    ) -> EventStream:
        """Watch events ({type, object}) from ``resource_version`` until the server ends the
        watch after ``timeout_seconds``; ApiError when it cannot be opened. ``selector`` is
        a label selector; ``field_selector`` e.g. ``metadata.name=NAME`` (one object)."""
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if selector:
            query["labelSelector"] = selector
        if field_selector:
            query["fieldSelector"] = field_selector
        url = f"{self.credentials.server.rstrip('/')}{path}?{urllib.parse.urlencode(query)}"
        # The read timeout bounds a silent stream: the server ends it by timeout_seconds.
        timeout = urllib3.Timeout(connect=REQUEST_TIMEOUT[0], read=timeout_seconds + WATCH_SLACK)
        try:
            response = self._pool.request(
                "GET", url, headers=self._headers(), preload_content=False, timeout=timeout
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError("WATCH", path, 0, f"{type(exc).__name__}: {exc}") from exc
        if response.status != 200:
            try:
                reason = _status_message(response.read(), response.reason or "error")
            finally:
                response.release_conn()
            raise ApiError("WATCH", path, response.status, reason)
        return EventStream(path, response)


class EventStream:
    """The JSON objects of one open watch response, one per line, until the server ends it.

    Iterate it once. ``interrupt()``, from any thread, ends a read waiting for the next
    event (a watcher being stopped); the iteration then simply ends. A stream that breaks
    otherwise raises ApiError (status 0).
    """

    def __init__(self, path: str, response: urllib3.BaseHTTPResponse) -> None:
        self.path = path
        self._response = response
        self._interrupted = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            pending = b""
            for chunk in self._response.stream(65536, decode_content=False):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        event = json.loads(line)
                        if isinstance(event, dict):
                            yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if not self._interrupted:
                raise ApiError("WATCH", self.path, 0, f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._response.release_conn()

    def interrupt(self) -> None:
        self._interrupted = True
        # urllib3 2.x: shutdown() wakes a reader blocked in another thread; close() frees it.
        with contextlib.suppress(Exception):
            self._response.shutdown()
        with contextlib.suppress(Exception):
            self._response.close()


def load_api_reader(kubeconfig: str | None = None, context: str | None = None) -> ApiReader:
    """An ApiReader with the same lookup order as load_api_client; ApiConfigError on failure."""
    try:
        return ApiReader(load_credentials(kubeconfig, context))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ApiConfigError(f"cannot set up the Kubernetes API client: {exc}") from exc


# A kubeconfig user with any of these is read by the official client's loader
# (plugin_credentials); one with only a token, a token file or a client certificate here.
PLUGIN_USER_KEYS = frozenset({"exec", "auth-provider", "username", "password"})


def load_credentials(kubeconfig: str | None = None, context: str | None = None) -> Credentials:
    """Credentials from ``kubeconfig``, else in-cluster, else $KUBECONFIG or ~/.kube/config.

    ``context`` picks a kubeconfig context other than the current one (and so never means
    in-cluster). $KUBECONFIG may list several files, merged as kubectl merges them.
    """
    if kubeconfig:
        return credentials_from_kubeconfig(Path(kubeconfig), context)
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if host and context is None:
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:
            host = f"[{host}]"
        namespace_file = IN_CLUSTER_DIR / "namespace"
        try:
            namespace = namespace_file.read_text().strip() or None
        except OSError:
            namespace = None
        return Credentials(
            server=f"https://{host}:{port}",
            ca_file=str(IN_CLUSTER_DIR / "ca.crt"),
            token_file=str(IN_CLUSTER_DIR / "token"),
            namespace=namespace,
        )
    env = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if len(env) > 1:
        return plugin_credentials(os.pathsep.join(env), context)
    return credentials_from_kubeconfig(Path(env[0]) if env else Path.home() / ".kube" / "config",
                                       context)


def credentials_from_kubeconfig(path: Path, context: str | None = None) -> Credentials:
    """The server and credentials of ``context`` (default: the current context).

    A user with a token, a token file or a client certificate is read here, without the
    official client (its import alone costs the webhook ~45 MiB per worker); any other user
    (an exec or auth-provider plugin, basic auth) through the official client's loader,
    which runs the plugin. ApiConfigError with one line for what cannot be used.
    """
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ApiConfigError(f"kubeconfig {path}: cannot read it: {exc}") from exc
    if not isinstance(doc, dict):
        raise ApiConfigError(f"kubeconfig {path}: not a kubeconfig")

    def named(section: str, name: Any) -> dict[str, Any]:
        for entry in _list(doc.get(section)):
            if isinstance(entry, dict) and entry.get("name") == name:
                inner = entry.get(section[:-1])
                return inner if isinstance(inner, dict) else {}
        raise ApiConfigError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")

    chosen = named("contexts", context if context is not None else doc.get("current-context"))
    cluster = named("clusters", chosen.get("cluster"))
    user = named("users", chosen.get("user")) if chosen.get("user") else {}
    if PLUGIN_USER_KEYS & set(user):
        return plugin_credentials(str(path), context)
    base = path.parent

    def file_or_data(file_key: str, data_key: str, section: Mapping[str, Any]) -> str | None:
        if section.get(data_key):
            return _private_file(base64.b64decode(section[data_key]))
        if section.get(file_key):
            return str(base / str(section[file_key]))
        return None

    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise ApiConfigError(f"kubeconfig {path}: the cluster has no server")
    namespace = chosen.get("namespace")
    server_name = cluster.get("tls-server-name")
    return Credentials(
        server=server,
        ca_file=file_or_data("certificate-authority", "certificate-authority-data", cluster),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=str(user["token"]) if user.get("token") else None,
        token_file=str(base / str(user["tokenFile"])) if user.get("tokenFile") else None,
        client_cert_file=file_or_data("client-certificate", "client-certificate-data", user),
        client_key_file=file_or_data("client-key", "client-key-data", user),
        namespace=str(namespace) if namespace else None,
        server_name=str(server_name) if server_name else None,
    )


def plugin_credentials(config_file: str, context: str | None = None) -> Credentials:
    """Credentials through the official client's kubeconfig loader: exec and auth-provider
    plugins, basic auth, and ``config_file`` as several files joined by os.pathsep.

    The loader runs the plugin now; ``authorization`` asks it again once the token expires
    (the loader's own refresh hook). The kubeconfig is never written back.
    """
    from kubernetes import client as k8s_client
    from kubernetes.config import kube_config
    from kubernetes.config.config_exception import ConfigException

    configuration = k8s_client.Configuration()
    try:
        merged = kube_config.KubeConfigMerger(config_file)
        if merged.config is None:
            raise ConfigException("no configuration found")
        # As load_kube_config builds it: no base path, so each file's relative paths
        # resolve against that file's directory.
        loader = kube_config.KubeConfigLoader(config_dict=merged.config, active_context=context,
                                              config_base_path=None)
        loader.load_and_set(configuration)
        chosen = loader.current_context
    except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        raise ApiConfigError(f"kubeconfig {config_file}: {exc}") from exc
    inner = getattr(chosen.get("context"), "value", chosen.get("context")) or {}
    namespace = inner.get("namespace")
    user: Any = {}
    for entry in merged.config.value.get("users") or []:
        entry = getattr(entry, "value", entry)  # the merger wraps each file's entries
        if isinstance(entry, dict) and entry.get("name") == inner.get("user"):
            user = getattr(entry.get("user"), "value", entry.get("user")) or {}
    has_token = bool(configuration.api_key.get("BearerToken"))
    plugin_user = isinstance(user, dict) and bool(PLUGIN_USER_KEYS & set(user))
    if plugin_user and not has_token and not configuration.cert_file:
        # The loader logs a failing plugin and goes on without credentials; say so here.
        raise ApiConfigError(
            f"kubeconfig {config_file}: the user of context {chosen.get('name')!r} yields no "
            "credentials (its exec or auth-provider plugin failed; see above)")
    lock = threading.Lock()

    def authorization() -> str | None:
        with lock:  # one refresh at a time; the hook re-runs the plugin only when expired
            hook = configuration.refresh_api_key_hook
            if hook is not None:
                hook(configuration)
            value = configuration.api_key.get("BearerToken")
            return str(value) if value else None

    return Credentials(
        server=str(configuration.host),
        ca_file=configuration.ssl_ca_cert or None,
        insecure=not configuration.verify_ssl,
        client_cert_file=configuration.cert_file or None,
        client_key_file=configuration.key_file or None,
        namespace=str(namespace) if namespace else None,
        server_name=getattr(configuration, "tls_server_name", None) or None,
        authorization=authorization if has_token else None,
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
    ApiError when a list cannot be read.
    """
    path = revisions_path(namespace)
    revisions = _items(get_json(api, path, {"labelSelector": LABEL_CONTROLLER_COMPONENT}), path)
    path = rollouts_path(namespace)
    listed = _items(get_json(api, path), path) if rollouts else []
    return observed_state_from(namespace, app_name, revisions, listed)


def _items(listing: Any, path: str) -> list[Mapping[str, Any]]:
    if not isinstance(listing, dict) or not isinstance(listing.get("items"), list):
        raise ApiError("GET", path, 0, "the API answered something that is not a list")
    return [item for item in listing["items"] if isinstance(item, dict)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
