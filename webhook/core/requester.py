"""Who wrote an Application: the identity the webhook records and the controller acts as.

Holds Requester (a username and its groups, as an AdmissionReview's userInfo names
them), the reading of a userInfo, and the annotation value both parts share
(ANNOTATION_REQUESTER): compact, key-sorted JSON, so the same writer always gives the
same string and the webhook's patch stays idempotent. It must not do I/O, and must not
decide when the annotation is written (webhook.admission.judge) or used
(webhook.controller.writers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.labels import ANNOTATION_REQUESTER

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Requester:
    """A user as the API server authenticated it: impersonated as exactly this.

    Groups are kept sorted and without repeats (the order carries no meaning, and one
    writer must always give one annotation value).
    """

    username: str
    groups: tuple[str, ...] = ()

    @property
    def service_account(self) -> tuple[str, str] | None:
        """(namespace, name) when the writer is a ServiceAccount (a GitOps tool, a CI job)."""
        if not self.username.startswith(SERVICE_ACCOUNT_PREFIX):
            return None
        namespace, _, name = self.username[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
        return (namespace, name) if namespace and name else None

    def describe(self) -> str:
        """``user "alice"`` or ``service account ci/deployer``, for messages."""
        account = self.service_account
        if account is not None:
            return f"service account {account[0]}/{account[1]}"
        return f'user "{self.username}"'


def requester(username: str, groups: Any = ()) -> Requester:
    """A Requester with its groups in canonical form (strings only, sorted, unique)."""
    kept = groups if isinstance(groups, list | tuple) else ()
    return Requester(username, tuple(sorted({g for g in kept if isinstance(g, str) and g})))


def requester_from_user_info(user_info: Mapping[str, Any]) -> Requester | None:
    """The writer an AdmissionReview names in request.userInfo; None without a username."""
    username = user_info.get("username")
    if not isinstance(username, str) or not username:
        return None
    return requester(username, user_info.get("groups") or ())


def encode_requester(who: Requester) -> str:
    """The annotation value: ``{"groups":[...],"username":"..."}``."""
    body = {"groups": list(who.groups), "username": who.username}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def decode_requester(text: object) -> Requester | None:
    """The Requester an annotation value names; None when it is not one we wrote."""
    if not isinstance(text, str):
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    username, groups = body.get("username"), body.get("groups", [])
    if not isinstance(username, str) or not username or not isinstance(groups, list):
        return None
    if not all(isinstance(g, str) for g in groups):
        return None
    return requester(username, groups)


def requester_of(annotations: Mapping[str, Any]) -> Requester | None:
    """The recorded writer among an object's annotations; None when absent or unreadable."""
    return decode_requester(annotations.get(ANNOTATION_REQUESTER))
