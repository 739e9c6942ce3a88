"""Guarded writes: who controls an object is read just before it is written or deleted.

Holds OwnershipConflict (an object the controller would write is controlled by another
owner, so it is not written: no forced apply ever takes an object over),
``check_writable`` (reads each object a set of rendered documents names) and
``delete_checked`` (the re-reads before a delete: the object is still the very one
decided on, still this Application's and labelled managed-by, and the workload replacing
it is Ready, its Rollout finished; then a DELETE with a UID precondition, so a controller
restarted half-way, or an object created again under the name, never loses a serving
workload). It must not decide what goes (webhook.controller.inventory does) and must not
retry: a failure surfaces to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from webhook.controller.inventory import (
    Deletion,
    collectable,
    conflict_message,
    foreign_owner,
    is_ours,
    live_object,
    rollout_settled,
    workload_ready,
)
from webhook.core.errors import ApiError, OamRolloutError
from webhook.core.labels import ROLLOUT_KIND
from webhook.core.objects import metadata
from webhook.kube.client import KNOWN_KINDS, ROLLOUTS, Resource, resource_of

# Where each kind the product renders lives, by kind alone (the kinds are unique).
RESOURCES: dict[str, Resource] = {kind: resource for (_, kind), resource in KNOWN_KINDS.items()}


class Reads(Protocol):
    def get(self, path: str) -> dict[str, Any] | None: ...


class Deletes(Protocol):
    def delete(self, path: str, uid: str | None = None) -> bool: ...


class OwnershipConflict(OamRolloutError):
    """``kind`` ``name`` is controlled by ``owner`` (or by nothing), not this Application."""

    def __init__(self, kind: str, name: str, owner: str) -> None:
        super().__init__(conflict_message(kind, name, owner))
        self.kind, self.name, self.owner = kind, name, owner


def check_writable(api: Reads, docs: Iterable[Mapping[str, Any]], app_uid: str) -> None:
    """Every object the documents name is absent or this Application's; else
    OwnershipConflict for the first that is not (before any of them is written)."""
    for doc in docs:
        meta = metadata(doc)
        name = str(meta.get("name") or "")
        live = api.get(resource_of(doc).path(meta.get("namespace"), name))
        owner = foreign_owner(live, app_uid) if live is not None else None
        if owner is not None:
            raise OwnershipConflict(str(doc.get("kind")), name, owner)


def delete_checked(api: Reads, writer: Deletes, namespace: str, deletion: Deletion,
                   app_uid: str) -> str | None:
    """Delete ``deletion.obj`` if it still may go; None once it is gone, else why it
    stays this time (it is decided again on the next pass)."""
    obj = deletion.obj
    path = RESOURCES[obj.kind].path(namespace, obj.name)
    live = api.get(path)
    if live is None:
        return None
    now = live_object(obj.kind, live)
    if now.uid != obj.uid or not collectable(now, app_uid):
        return f"{obj.kind} {obj.name} changed since it was listed"
    rep = deletion.replacement
    if rep is not None:
        workload = api.get(RESOURCES[rep.kind].path(namespace, rep.name))
        if (workload is None or not is_ours(live_object(rep.kind, workload), app_uid)
                or not workload_ready(workload)):
            return f"waits for {rep.kind} {rep.name} to be Ready"
        if rep.rollout and not rollout_settled(api.get(ROLLOUTS.path(namespace, rep.rollout)),
                                               rep.target):
            return f"waits for {ROLLOUT_KIND} {rep.rollout} to finish at {rep.target}"
    try:
        writer.delete(path, obj.uid)
    except ApiError as exc:
        if exc.status == 409:  # the UID precondition: another object under the name
            return f"{obj.kind} {obj.name} was replaced meanwhile"
        raise
    return None
