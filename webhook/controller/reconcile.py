"""Read, decide, act: one Application or one Rollout per call, always from fresh reads.

Holds Reconciler with ``application(ns, name)`` (ControllerRevisions, Rollouts or plain
workloads, Application status) and ``rollout(ns, name)`` (reads the Rollout and its
workloads, asks machine.decide, carries the actions out). It must not keep state between
calls (every call reads what it needs; a 409 surfaces as ApiError for the loop to retry)
and must not hold decisions: those live in machine, views, core and render.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from webhook.controller.machine import (
    Action,
    CreateWorkload,
    DeleteWorkload,
    EmitEvent,
    Observed,
    RetemplateWorkload,
    ScaleWorkload,
    SetPartition,
    UpdateStatus,
    WorkloadKind,
    decide,
)
from webhook.controller.metrics import ControllerMetrics
from webhook.controller.views import (
    application_status,
    event_body,
    kind_of,
    plan_from,
    progress_from,
    rollout_failure,
    service_health,
    status_from,
    workload_from,
)
from webhook.core.errors import ApiError, OamRolloutError
from webhook.core.labels import (
    ANNOTATION_REVISIONS,
    LABEL_APP_NAME,
    LABEL_COMPONENT,
    LABEL_CONTROLLER_COMPONENT,
)
from webhook.core.model import Application, Component, parse_application
from webhook.core.objects import observed_state_from, owner_application, revision_record
from webhook.core.revisions import ResolvedRevision, resolve_revisions, target_revision_name
from webhook.core.state import ObservedState
from webhook.kube.client import (
    APPLICATIONS,
    CLONESETS,
    DEPLOYMENTS,
    EVENTS,
    REVISIONS,
    ROLLOUTS,
    KubeApi,
)
from webhook.render.renderer import Renderer

log = logging.getLogger("oam_rollout.controller")

# On workloads the Rollout drives: their changes concern the Rollout, not the Application
# (whose health then follows the Rollout's status), which keeps app reconciles rare.
ANNOTATION_ROLLED_BY = "rollout.oam.dev/rolled-by"
# On every object the controller applies: the replica (its lease identity) that applied it
# last. Applies share one fieldManager, so managedFields cannot name the replica.
ANNOTATION_APPLIED_BY = "rollout.oam.dev/applied-by"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Posts Events from a background thread: a slow Event never delays a batch."""

    def __init__(self, api: KubeApi, limit: int = 1000) -> None:
        self.api = api
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(limit)
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def record(self, namespace: str, body: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((namespace, body))
        except queue.Full:  # events are best effort; rollouts are not
            log.warning("event dropped (queue full): %s", body.get("reason"))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            namespace, body = item
            try:
                self.api.create(EVENTS.path(namespace), body)
            except ApiError as exc:
                log.warning("event %s not recorded: %s", body.get("reason"), exc)

    def close(self, timeout: float = 2.0) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)


@dataclass
class Reconciler:
    api: KubeApi
    renderer: Renderer
    now: Callable[[], str] = utc_now
    events: EventRecorder | None = None
    # Seconds a batch may take to get Ready (0: no deadline); see batches.deadline_passed.
    progress_deadline: int = 0
    metrics: ControllerMetrics | None = None
    # resourceVersions of our own Rollout status writes: their watch events need no reconcile.
    own_writes: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=4096))

    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(8, thread_name_prefix="read"))
    known_revisions: set[tuple[str, str]] = field(default_factory=set)
    # This replica's identity: on Events (reportingInstance), applied objects
    # (ANNOTATION_APPLIED_BY) and, through api.manager, in managedFields of plain writes.
    identity: str = ""

    def __post_init__(self) -> None:
        if self.events is None:
            self.events = EventRecorder(self.api)

    def wrote(self, resource_version: str) -> bool:
        """The Rollout at this resourceVersion is our own status write."""
        return resource_version in self.own_writes

    # ---- Application ------------------------------------------------------------------

    def application(self, namespace: str, name: str) -> None:
        raw = self.api.get(APPLICATIONS.path(namespace, name))
        if raw is None or (raw.get("metadata") or {}).get("deletionTimestamp"):
            return  # owned objects go with it (ownerReferences)
        app, errs = parse_application(raw)
        errors = [str(e) for e in errs]
        services: list[dict[str, Any]] = []
        failures: list[tuple[str, str, str]] = []
        if app is not None and not errors:
            try:
                services, failures = self._apply_components(app)
            except OamRolloutError as exc:
                if isinstance(exc, ApiError) and exc.status in (0, 409, 429, 500, 503):
                    raise  # transient: retried by the loop
                errors.append(str(exc))
        self._write_app_status(raw, services, errors, failures)

    def _apply_components(self, app: Application
                          ) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
        """Apply every component; its service entry, and (component, reason, message)
        for each whose Rollout failed."""
        observed = self._revisions_of(app)
        resolved, errs = resolve_revisions(app, observed)
        if errs:
            raise OamRolloutError("; ".join(str(e) for e in errs))
        resolved = self._prefer_annotated_names(app, resolved, observed.revisions)
        services = []
        failures = []
        for component in app.components:
            rev = resolved[component.name]
            if rev.is_new or observed.revision_named(rev.name) is None:
                self._create_revision(app, component, rev)
            if component.rollout_trait() is not None:
                live = self._apply_rollout(app, component, rev)
                services.append(service_health(component.name, live, None))
                failure = rollout_failure(live)
                if failure is not None:
                    failures.append((component.name, *failure))
            else:
                services.append(self._apply_plain(app, component, rev))
        return services, failures

    def _revisions_of(self, app: Application) -> ObservedState:
        """The ControllerRevisions of the app's components (not the whole namespace's:
        listing every revision on every reconcile grows with the square of the apps)."""
        names = sorted({c.name for c in app.components})
        if not names:
            return ObservedState(namespace=app.namespace)
        selector = f"{LABEL_CONTROLLER_COMPONENT} in ({','.join(names)})"
        items = self.api.list(REVISIONS.path(app.namespace), selector)
        return observed_state_from(app.namespace, app.name, items, ())

    @staticmethod
    def _prefer_annotated_names(app: Application, resolved: dict[str, ResolvedRevision],
                                existing: Any) -> dict[str, ResolvedRevision]:
        """The webhook's names win for revisions still to create, so both agree on them."""
        try:
            named = json.loads(app.annotations.get(ANNOTATION_REVISIONS, "{}"))
        except ValueError:
            return resolved
        if not isinstance(named, dict):
            return resolved
        taken = {r.name for r in existing}
        out = dict(resolved)
        for comp, rev in resolved.items():
            wanted = named.get(comp)
            if rev.is_new and isinstance(wanted, str) and wanted and wanted not in taken:
                out[comp] = ResolvedRevision(comp, wanted, rev.number, rev.spec_hash, True)
        return out

    def _create_revision(self, app: Application, component: Component,
                         rev: ResolvedRevision) -> None:
        body = self.renderer.render_revision(app, component, rev)
        try:
            self.api.create(REVISIONS.path(app.namespace), body)
            log.info("created ControllerRevision %s/%s", app.namespace, rev.name)
        except ApiError as exc:
            if exc.status != 409:  # already there: created by an earlier pass
                raise

    def _apply_rollout(self, app: Application, component: Component,
                       rev: ResolvedRevision) -> dict[str, Any]:
        """The component's Rollout, applied when it differs from the rendered one."""
        wanted = self.renderer.render_rollout(app, component,
                                              target_revision_name(component, rev))
        live = self.api.get(ROLLOUTS.path(app.namespace, component.name))
        if live is None or live.get("spec") != wanted.get("spec") or not _owned(live, wanted):
            live = self.api.apply(self._signed(wanted))
        return live

    def _apply_plain(self, app: Application, component: Component,
                     rev: ResolvedRevision) -> dict[str, Any]:
        """A component without a rollout trait: its workload is applied as rendered."""
        docs = self.renderer.render_workload(app, component.spec(), rev.name, None)
        applied = [self.api.apply(self._signed(doc)) for doc in docs]
        workload = applied[0]
        if docs[0].get("kind") == "Deployment":
            keep = (workload.get("metadata") or {}).get("name")
            selector = f"{LABEL_COMPONENT}={component.name},{LABEL_APP_NAME}={app.name}"
            for old in self.api.list(DEPLOYMENTS.path(app.namespace), selector):
                old_name = (old.get("metadata") or {}).get("name")
                if old_name != keep:
                    self.api.delete(DEPLOYMENTS.path(app.namespace, old_name))
        return service_health(component.name, None, workload)

    def _write_app_status(self, raw: Mapping[str, Any], services: list[dict[str, Any]],
                          errors: list[str], failures: list[tuple[str, str, str]]) -> None:
        meta = raw.get("metadata") or {}
        old = raw.get("status") or {}
        new = application_status(old, int(meta.get("generation") or 1), services, errors,
                                 self.now(), failures)
        if new == old:
            return
        body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": new}
        self.api.merge_patch(APPLICATIONS.path(meta.get("namespace"), meta.get("name"),
                                               "status"), body)

    # ---- Rollout ------------------------------------------------------------------------

    def rollout(self, namespace: str, name: str) -> float | None:
        """Decide and act on one Rollout; the seconds after which to decide again even
        if nothing changes (its batch's progress deadline), or None."""
        raw = self.api.get(ROLLOUTS.path(namespace, name))
        if raw is None or (raw.get("metadata") or {}).get("deletionTimestamp"):
            if self.metrics is not None:
                self.metrics.rollout_gone((namespace, name))
            return None
        app_name = owner_application(raw)
        if not app_name:
            return None  # an orphan: nothing to render workloads from
        spec = raw.get("spec") or {}
        component_name = str(spec.get("componentName") or name)
        target = str(spec.get("targetRevisionName") or "")
        # The other reads depend only on the Rollout: run them side by side.
        app_read = self.pool.submit(self.api.get, APPLICATIONS.path(namespace, app_name))
        deploys_read = self.pool.submit(self._workloads, namespace, app_name, component_name,
                                        WorkloadKind.DEPLOYMENT)
        known_read = self.pool.submit(self._revision_exists, namespace, target)
        app_raw = app_read.result()
        app = parse_application(app_raw)[0] if app_raw is not None else None
        if app is None:
            return None
        component = app.component(component_name)
        kind = kind_of(component.type if component else "")
        plan = plan_from(raw, kind)
        workloads = deploys_read.result()
        if kind is WorkloadKind.CLONESET:
            workloads = self._workloads(namespace, app.name, plan.component, kind)
        known = known_read.result()
        observed = Observed(plan, progress_from(raw.get("status") or {}),
                            tuple(workload_from(w) for w in workloads), known,
                            self.now(), self.progress_deadline,
                            () if known else self._revision_names(namespace, plan.component))
        decision = decide(observed)
        for action in decision.actions:
            self._act(raw, app, plan.component, kind, action)
        if self.metrics is not None:
            wrote = any(not isinstance(a, UpdateStatus | EmitEvent) for a in decision.actions)
            self.metrics.rollout_seen((namespace, name), decision.progress.rolling_state,
                                      decision.steps, wrote)
        if decision.steps:
            log.info("rollout %s/%s: %s -> %s/%s batch %d", namespace, name,
                     ",".join(decision.steps), decision.progress.rolling_state,
                     decision.progress.batch_state, decision.progress.current_batch)
        return decision.wake_after

    def _revision_exists(self, namespace: str, name: str) -> bool:
        """ControllerRevisions are immutable and only go with their Application, so one
        that was seen is remembered (a later render reads it fresh anyway)."""
        if not name:
            return False
        if (namespace, name) in self.known_revisions:
            return True
        found = self.api.get(REVISIONS.path(namespace, name)) is not None
        if found:
            if len(self.known_revisions) > 100_000:
                self.known_revisions.clear()
            self.known_revisions.add((namespace, name))
        return found

    def _revision_names(self, namespace: str, component: str) -> tuple[str, ...]:
        """The names of a component's revisions, for a target that does not exist: its
        verification failure lists them, as admission does."""
        selector = f"{LABEL_CONTROLLER_COMPONENT}={component}"
        listed = self.api.list(REVISIONS.path(namespace), selector)
        return tuple(r.name for r in map(revision_record, listed) if r is not None)

    def _workloads(self, namespace: str, app: str, component: str,
                   kind: WorkloadKind) -> list[dict[str, Any]]:
        if kind is WorkloadKind.CLONESET:
            cs = self.api.get(CLONESETS.path(namespace, component))
            return [cs] if cs is not None else []
        selector = f"{LABEL_COMPONENT}={component},{LABEL_APP_NAME}={app}"
        return [d for d in self.api.list(DEPLOYMENTS.path(namespace), selector)
                if not (d.get("metadata") or {}).get("deletionTimestamp")]

    def _act(self, rollout: dict[str, Any], app: Application, component: str,
             kind: WorkloadKind, action: Action) -> None:
        ns = app.namespace
        workloads = CLONESETS if kind is WorkloadKind.CLONESET else DEPLOYMENTS
        if isinstance(action, UpdateStatus):
            meta = rollout["metadata"]
            body = {"metadata": {"resourceVersion": meta.get("resourceVersion")},
                    "status": status_from(action.progress)}
            updated = self.api.merge_patch(ROLLOUTS.path(ns, meta["name"], "status"), body)
            rollout["metadata"] = updated.get("metadata", meta)
            self.own_writes.append(str(rollout["metadata"].get("resourceVersion")))
            return
        if isinstance(action, EmitEvent):
            assert self.events is not None
            self.events.record(ns, event_body(rollout, action, self.now(), self.identity))
            return
        if isinstance(action, CreateWorkload):
            docs = self._render(app, action.revision, action.replicas)
            docs[0].setdefault("metadata", {}).setdefault("annotations", {})[
                ANNOTATION_ROLLED_BY] = component
            if action.partition is not None:
                docs[0].setdefault("spec", {})["updateStrategy"] = {
                    **(docs[0]["spec"].get("updateStrategy") or {}),
                    "partition": action.partition}
            for doc in docs:
                self.api.apply(self._signed(doc))
        elif isinstance(action, RetemplateWorkload):
            doc = self._render(app, action.revision, action.replicas)[0]
            spec = doc["spec"]
            body = {"metadata": {"labels": doc["metadata"].get("labels", {})},
                    "spec": {"replicas": action.replicas, "template": spec["template"],
                             "updateStrategy": {**(spec.get("updateStrategy") or {}),
                                                "partition": action.partition}}}
            self.api.merge_patch(workloads.path(ns, action.name), body)
        elif isinstance(action, ScaleWorkload):
            self.api.merge_patch(workloads.path(ns, action.name),
                                 {"spec": {"replicas": action.replicas}})
        elif isinstance(action, SetPartition):
            self.api.merge_patch(workloads.path(ns, action.name),
                                 {"spec": {"updateStrategy": {"partition": action.partition}}})
        elif isinstance(action, DeleteWorkload):
            self.api.delete(workloads.path(ns, action.name))

    def _signed(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` annotated with this replica's identity (when it has one)."""
        if self.identity:
            doc.setdefault("metadata", {}).setdefault("annotations", {})[
                ANNOTATION_APPLIED_BY] = self.identity
        return doc

    def _render(self, app: Application, revision: str, replicas: int) -> list[dict[str, Any]]:
        """The workload of ``revision`` from its ControllerRevision (it may be a rollback)."""
        record = self.api.get(REVISIONS.path(app.namespace, revision))
        if record is None:
            raise OamRolloutError(f"ControllerRevision {revision} is gone")
        return self.renderer.render_workload(app, record.get("data") or {}, revision, replicas)


def _owned(live: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """The live object carries the owner references and labels we render."""
    lm, wm = live.get("metadata") or {}, wanted.get("metadata") or {}
    labels = lm.get("labels") or {}
    return all(labels.get(k) == v for k, v in (wm.get("labels") or {}).items()) and all(
        any(r.get("uid") == w.get("uid") for r in lm.get("ownerReferences") or [])
        for w in wm.get("ownerReferences") or [])
