"""Who the controller writes an Application's objects as: itself, or the Application's writer.

Holds ``writer_for`` (the client for an Application's workloads, Services and Rollouts:
the controller's own, or with impersonation on a view acting as the writer the webhook
recorded in ANNOTATION_REQUESTER), RequesterUnknown (impersonation is on and no writer
is recorded), BLOCKED (the failures that stop a write for want of rights) and
``denial`` (their condition reason and message). A blocked write is permanent until
RBAC or the Application changes: it is reported, never retried hot, and never done with
the controller's own rights instead. It must not do I/O itself, and must not be used for
what stays the controller's own: status writes, Events, ControllerRevisions, Leases.
"""

from __future__ import annotations

from collections.abc import Mapping

from webhook.controller.views import REASON_FORBIDDEN, REASON_REQUESTER_UNKNOWN
from webhook.core.errors import OamRolloutError
from webhook.core.labels import ANNOTATION_REQUESTER
from webhook.core.requester import requester_of
from webhook.kube.client import Forbidden, KubeApi


class RequesterUnknown(OamRolloutError):
    """Impersonation is on and the Application names no writer to act as."""

    def __init__(self) -> None:
        super().__init__(
            f"no writer recorded in annotation {ANNOTATION_REQUESTER}, and the controller "
            "writes only as the Application's writer: write its spec again through the "
            "oam-rollout webhook to record one")


BLOCKED = (Forbidden, RequesterUnknown)


def writer_for(api: KubeApi, annotations: Mapping[str, str], impersonate: bool) -> KubeApi:
    """The client to write an Application's objects with; RequesterUnknown when
    ``impersonate`` is on and ``annotations`` name no writer."""
    if not impersonate:
        return api
    who = requester_of(annotations)
    if who is None:
        raise RequesterUnknown()
    return api.acting_as(who)


def denial(exc: Forbidden | RequesterUnknown) -> tuple[str, str]:
    """(condition reason, message) of a blocked write."""
    reason = REASON_FORBIDDEN if isinstance(exc, Forbidden) else REASON_REQUESTER_UNKNOWN
    return reason, str(exc)
