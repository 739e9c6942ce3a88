"""The API calls of the webhook's self-managed TLS: its one Secret and its two configurations.

Holds the reads and guarded writes ``--self-managed-certs`` needs: ``read_secret``,
``create_secret`` (create-if-absent: None when another replica created it first),
``replace_secret`` (an update bound to the resourceVersion it read: None when another
replica wrote first), ``read_configuration``, ``patch_configuration`` (a JSON patch; None
when the configuration changed under it) and ``watch_configuration`` (a ListWatch of one
configuration by name, the only shape of list and watch that RBAC ``resourceNames`` can
allow). Every write is sent as the ``oam-rollout-webhook`` field manager. It must not
decide anything: callers pass complete bodies and patches
(webhook.admission.certplan computes them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from webhook.core.errors import ApiError
from webhook.kube.client import KubeApi, Resource
from webhook.kube.watching import EachObject, ListWatch, WatchPolicy

FIELD_MANAGER = "oam-rollout-webhook"
SECRETS = Resource("", "v1", "secrets")
CONFIGURATIONS = {
    "mutating": Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"),
    "validating": Resource(
        "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"
    ),
}
_WRITE = {"fieldManager": FIELD_MANAGER}


def read_secret(api: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    """The Secret, or None when it does not exist."""
    return api.get(SECRETS.path(namespace, name))


def create_secret(api: KubeApi, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Create the Secret; None when it exists already (409: another replica was first)."""
    namespace = str(body["metadata"]["namespace"])
    try:
        created: dict[str, Any] = api.request("POST", SECRETS.path(namespace), body, _WRITE)
    except ApiError as exc:
        if exc.conflict:
            return None
        raise
    return created


def replace_secret(api: KubeApi, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Replace the Secret; ``body`` carries the resourceVersion it was read at. None when
    that version is no longer current (409: another replica wrote first) or it is gone."""
    meta = body["metadata"]
    path = SECRETS.path(str(meta["namespace"]), str(meta["name"]))
    try:
        replaced: dict[str, Any] = api.request("PUT", path, body, _WRITE)
    except ApiError as exc:
        if exc.conflict or exc.status == 404:
            return None
        raise
    return replaced


def configuration_path(kind: str, name: str | None = None) -> str:
    return CONFIGURATIONS[kind].path(None, name)


def read_configuration(api: KubeApi, kind: str, name: str) -> dict[str, Any] | None:
    """A Mutating (``mutating``) or Validating (``validating``) configuration, or None."""
    return api.get(configuration_path(kind, name))


def patch_configuration(
    api: KubeApi, kind: str, name: str, ops: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Apply a JSON patch. None when the configuration changed since the patch was computed
    (a resourceVersion conflict, a failed ``test``) or is gone: read it again."""
    try:
        patched: dict[str, Any] = api.request(
            "PATCH", configuration_path(kind, name), ops, _WRITE, "application/json-patch+json"
        )
    except ApiError as exc:
        # 409: resourceVersion moved on; 422 or 400 (by version): a `test` op failed.
        if exc.status in (400, 404, 409, 422):
            return None
        raise
    return patched


class _OneObject:
    """The WatchApi of one object by name: every list and watch carries the field selector
    ``metadata.name=NAME``, which is what lets RBAC restrict them with resourceNames."""

    def __init__(self, api: KubeApi, name: str) -> None:
        self._api = api
        self._selector = f"metadata.name={name}"

    def get_json(
        self, path: str, query: Mapping[str, str] | None = None, read_timeout: float | None = None
    ) -> Any:
        return self._api.get_json(path, {**(query or {}), "fieldSelector": self._selector},
                                  read_timeout)  # fmt: skip

    def watch(
        self, path: str, resource_version: str, timeout_seconds: int, selector: str | None = None
    ) -> Iterable[dict[str, Any]]:
        return self._api.watch(path, resource_version, timeout_seconds, selector,
                               field_selector=self._selector)  # fmt: skip


def watch_configuration(
    api: KubeApi,
    kind: str,
    name: str,
    on_event: Callable[[str, dict[str, Any]], None],
    *,
    stop: threading.Event,
    logger: logging.Logger | None = None,
) -> ListWatch:
    """A started ListWatch calling ``on_event(kind, configuration)`` for the listing
    (``SYNC``) and every change of one configuration; ended by setting ``stop``."""
    watcher = ListWatch(
        f"{kind}webhookconfiguration {name}",
        _OneObject(api, name),
        configuration_path(kind),
        EachObject(on_event, isolated=True),
        policy=WatchPolicy(watch_seconds=300, jitter=0.2),
        stop=stop,
        logger=logger,
    )
    watcher.start()
    return watcher
