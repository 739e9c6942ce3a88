"""Read, decide, act: one Application or one Rollout per call, always from fresh reads.

Holds Reconciler with ``application(ns, name)`` (one ApplicationPass: ControllerRevisions,
Rollouts or plain workloads, the end of what the spec no longer implies, Application
status; see applications.py) and ``rollout(ns, name)`` (reads the Rollout and its
workloads, asks machine.decide, carries the actions out). A Rollout is driven only while
its controller ownerReference is its Application (by UID) and the Application's component
still has the rollout trait; only workloads the Application controls are seen or written,
and a workload rendered over another owner's object, or a write the API refuses for good
(400/403/404/409 after retries/422), fails the run loudly (machine.refuse) instead of
retrying it hot. With ``impersonate`` it writes workloads, Services and Rollouts as the
Application's recorded writer (writers.py): a refused write is reported (a condition and a
Warning Event) and waits for a change, never retried hot. Every Event about a Rollout goes
to its Application too (naming the component), and each decided Rollout is reported to
metrics (its series go when it does, or when it is no longer driven). It must not keep
state between calls (every call reads what it needs; a 409 surfaces as ApiError for the
loop to retry) and must not hold decisions: those live in machine, views, core and render.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from webhook.controller.applications import DEFAULT_REVISION_HISTORY, ApplicationPass
from webhook.controller.cache import Caches
from webhook.controller.guards import OwnershipConflict, check_writable
from webhook.controller.inventory import (
    ANNOTATION_ROLLED_BY,
    CONFLICT_RETRIES,
    is_ours,
    live_object,
    permanent,
)
from webhook.controller.logs import about
from webhook.controller.machine import (
    REASON_API_REFUSED,
    REASON_OWNERSHIP,
    Action,
    CreateWorkload,
    DeleteWorkload,
    EmitEvent,
    Observed,
    Progress,
    RetemplateWorkload,
    ScaleWorkload,
    SetPartition,
    UpdateStatus,
    WorkloadKind,
    decide,
    refuse,
)
from webhook.controller.metrics import ControllerMetrics, RolloutSeries
from webhook.controller.views import (
    application_reference,
    event_body,
    failure_reason,
    kind_of,
    permitted_conditions,
    plan_from,
    progress_from,
    retemplate_body,
    status_from,
    workload_from,
)
from webhook.controller.writers import BLOCKED, denial, writer_for
from webhook.core.errors import ApiError, OamRolloutError
from webhook.core.labels import (
    APP_KIND,
    LABEL_APP_NAME,
    LABEL_COMPONENT,
    LABEL_CONTROLLER_COMPONENT,
)
from webhook.core.model import Application, parse_application
from webhook.core.objects import controller_reference, revision_record
from webhook.core.scope import EVERYTHING, Scope
from webhook.kube.client import (
    APPLICATIONS,
    CLONESETS,
    DEPLOYMENTS,
    EVENTS,
    REVISIONS,
    ROLLOUTS,
    KubeApi,
    Resource,
)
from webhook.render.renderer import Renderer

log = logging.getLogger("oam_rollout.controller")

__all__ = ["ANNOTATION_APPLIED_BY", "ANNOTATION_ROLLED_BY", "EventRecorder", "Reconciler"]
# On every object the controller applies: the replica (its lease identity) that applied it
# last. Applies share one fieldManager, so managedFields cannot name the replica.
ANNOTATION_APPLIED_BY = "rollout.oam.dev/applied-by"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Posts Events from background threads: a slow Event never delays a batch.

    A thousand Applications created at once make about twelve thousand Events (each
    transition, on the Rollout and on its Application): ``threads`` post side by side,
    each the Events of the Applications that hash to it, in order (so one Application's
    Events and its Rollouts' keep their order), and up to ``limit`` wait, so a burst is
    recorded, not dropped.
    """

    def __init__(self, api: KubeApi, limit: int = 20_000, threads: int = 2) -> None:
        self.api = api
        # Waiting Events are kept as their JSON text: a fifth of the memory of the dicts.
        self._queues: list[queue.Queue[tuple[str, str] | None]] = [
            queue.Queue(max(1, limit // threads)) for _ in range(threads)]
        self._threads = [threading.Thread(target=self._run, args=(q,), name=f"events-{i}",
                                          daemon=True) for i, q in enumerate(self._queues)]
        for thread in self._threads:
            thread.start()

    def __len__(self) -> int:
        """Events waiting to be posted."""
        return sum(q.qsize() for q in self._queues)

    def record(self, namespace: str, body: dict[str, Any], family: str = "") -> None:
        """Post ``body`` soon; Events of one ``family`` (an Application and its Rollouts,
        else the object's name) are posted in the order recorded."""
        involved = body.get("involvedObject") or {}
        lane = self._queues[hash((namespace, family or involved.get("name")))
                            % len(self._queues)]
        try:
            lane.put_nowait((namespace, json.dumps(body)))
        except queue.Full:  # events are best effort; rollouts are not
            log.warning("event dropped (queue full): %s", body.get("reason"))

    def _run(self, lane: queue.Queue[tuple[str, str] | None]) -> None:
        while True:
            item = lane.get()
            if item is None:
                return
            namespace, text = item
            body = json.loads(text)
            involved = body.get("involvedObject") or {}
            try:
                self.api.create(EVENTS.path(namespace), body)
            except ApiError as exc:
                with about(namespace=namespace):
                    log.warning("event %s on %s %s not recorded: %s", body.get("reason"),
                                involved.get("kind"), involved.get("name"), exc)

    def close(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        for lane in self._queues:  # an end mark for each thread
            with contextlib.suppress(queue.Full):
                lane.put(None, timeout=max(0.0, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


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
    # Write workloads, Services and Rollouts as the Application's writer (--impersonate).
    impersonate: bool = False
    # ControllerRevisions kept per component (--revision-history-limit); those in use
    # are always kept.
    revision_history_limit: int = DEFAULT_REVISION_HISTORY
    # The Applications this controller acts on; the loop queues no others, and a fresh read
    # that shows one has left (re-pinned to another shard, say) is not acted on.
    scope: Scope = EVERYTHING
    # The watches' caches (cache.py), read instead of the API when given: a Rollout's
    # decision then reads nothing over the wire, and the Application pass lists nothing.
    # Deletions still re-read from the API.
    caches: Caches | None = None

    def __post_init__(self) -> None:
        if self.events is None:
            self.events = EventRecorder(self.api)

    def wrote(self, resource_version: str) -> bool:
        """The Rollout at this resourceVersion is our own status write."""
        return resource_version in self.own_writes

    # ---- reads: the caches when given, else the API -------------------------------------

    def _get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        if self.caches is not None:
            return self.caches.get(resource, namespace, name)
        return self.api.get(resource.path(namespace, name))

    def _soon(self, read: Callable[..., Any], *args: Any) -> Future[Any]:
        """``read(*args)``: from the caches at once, else on the pool (side by side)."""
        if self.caches is None:
            return self.pool.submit(read, *args)
        done: Future[Any] = Future()
        done.set_result(read(*args))
        return done

    def _kept(self, resource: Resource, obj: Mapping[str, Any] | None) -> None:
        """Our own write's answer into the caches, so the next decision sees it."""
        if self.caches is not None:
            self.caches.wrote(resource, obj)

    def _refresh(self, resource: Resource, namespace: str, name: str) -> None:
        """After a 409 or a 404: the cached object read again (or dropped, when it is
        gone), so the retry decides on what is live."""
        if self.caches is None:
            return
        fresh = self.api.get(resource.path(namespace, name))
        if fresh is not None:
            self.caches.wrote(resource, fresh)
            return
        cached = self.caches.get(resource, namespace, name)
        if cached is not None:
            self.caches.store(resource).apply("DELETED", cached)

    # ---- Application ------------------------------------------------------------------

    def application(self, namespace: str, name: str) -> None:
        """One Application pass (see applications.py)."""
        ApplicationPass(self.api, self.renderer, self.pool, self.now, self._writer,
                        self._signed, self._event, self.revision_history_limit,
                        self._forget_revision, self.scope, self.caches).run(namespace, name)

    def _writer(self, app: Application) -> KubeApi:
        """Who writes the app's workloads, Services and Rollouts (see writers.py)."""
        return writer_for(self.api, app.annotations, self.impersonate)

    def _event(self, involved: Mapping[str, Any], type_: str, reason: str,
               message: str) -> None:
        assert self.events is not None
        meta = involved.get("metadata") or {}
        # One Application's Events (its own and its Rollouts') keep their order.
        family = str((controller_reference(involved, APP_KIND) or {}).get("name")
                     or meta.get("name"))
        self.events.record(str(meta.get("namespace")),
                           event_body(involved, EmitEvent(type_, reason, message),
                                      self.now(), self.identity), family)

    def _forget_revision(self, namespace: str, name: str) -> None:
        self.known_revisions.discard((namespace, name))

    # ---- Rollout ------------------------------------------------------------------------

    def rollout(self, namespace: str, name: str) -> float | None:
        """Decide and act on one Rollout; the seconds after which to decide again even
        if nothing changes (its batch's progress deadline), or None."""
        raw = self._get(ROLLOUTS, namespace, name)
        if raw is None or (raw.get("metadata") or {}).get("deletionTimestamp"):
            self._undriven(namespace, name)
            return None
        owner = controller_reference(raw, APP_KIND) or {}
        app_name = str(owner.get("name") or "")
        if not app_name:
            # Not controlled by an Application: nothing to render workloads from.
            self._undriven(namespace, name)
            return None
        with about(namespace=namespace, app=app_name):
            return self._drive(raw, namespace, name, app_name, owner)

    def _undriven(self, namespace: str, name: str) -> None:
        """A Rollout gone, or one this controller does not drive: no series of it stay."""
        if self.metrics is not None:
            self.metrics.rollout_gone((namespace, name))

    def _drive(self, raw: dict[str, Any], namespace: str, name: str, app_name: str,
               owner: Mapping[str, Any]) -> float | None:
        """The rest of ``rollout``, for a Rollout its Application ``app_name`` controls."""
        spec = raw.get("spec") or {}
        component_name = str(spec.get("componentName") or name)
        target = str(spec.get("targetRevisionName") or "")
        # The other reads depend only on the Rollout: run them side by side.
        app_read = self._soon(self._get, APPLICATIONS, namespace, app_name)
        deploys_read = self._soon(self._workloads, namespace, app_name, component_name,
                                  WorkloadKind.DEPLOYMENT)
        known_read = self._soon(self._revision_exists, namespace, target)
        app_raw = app_read.result()
        if app_raw is not None and not self.scope.ours(app_raw):
            self._undriven(namespace, name)  # another controller's now
            return None
        app = parse_application(app_raw)[0] if app_raw is not None else None
        if app is None or app.uid != owner.get("uid"):
            # Its Application is gone (or is another one by the same name).
            self._undriven(namespace, name)
            return None
        component = app.component(component_name)
        if component is None or component.rollout_trait() is None:
            # Stale: the Application pass deletes it before anything else.
            self._undriven(namespace, name)
            return None
        kind = kind_of(component.type)
        plan = plan_from(raw, kind)
        workloads = deploys_read.result()
        if kind is WorkloadKind.CLONESET:
            workloads = self._workloads(namespace, app.name, plan.component, kind)
        # Only what the Application controls is rolled; anything else is never touched.
        workloads = [w for w in workloads if is_ours(live_object(kind.value, w), app.uid)]
        known = known_read.result()
        observed = Observed(plan, progress_from(raw.get("status") or {}),
                            tuple(workload_from(w) for w in workloads), known,
                            self.now(), self.progress_deadline,
                            () if known else self._revision_names(namespace, plan.component))
        decision = decide(observed)
        try:
            refusal = self._carry_out(raw, app, plan.component, kind, decision.actions)
        except BLOCKED as exc:
            # Permanent until RBAC or the Application changes: recorded, not retried
            # (an event on the Application retries it, see views.blocked_components).
            if self._record_permitted(raw, decision.progress, denial(exc)):
                self._rollout_event(raw, app, plan.component, "Warning", *denial(exc))
            self._report((namespace, name), plan.component, observed.progress, target, (),
                         False, denied=denial(exc)[0])
            return None
        self._record_permitted(raw, decision.progress, None)
        if refusal is not None:
            # For good: the run fails loudly, once; a new spec generation retries it.
            decision = refuse(replace(observed, progress=decision.progress), *refusal)
            for action in decision.actions:
                self._act(raw, app, plan.component, kind, action)
        wrote = any(not isinstance(a, UpdateStatus | EmitEvent) for a in decision.actions)
        self._report((namespace, name), plan.component, decision.progress, target,
                     decision.steps, wrote)
        if decision.steps:
            log.info("rollout %s/%s: %s -> %s/%s batch %d", namespace, name,
                     ",".join(decision.steps), decision.progress.rolling_state,
                     decision.progress.batch_state, decision.progress.current_batch)
        return decision.wake_after

    def _report(self, key: tuple[str, str], component: str, progress: Progress,
                target: str, steps: tuple[str, ...], wrote: bool, denied: str = "") -> None:
        """What /metrics shows of a decided Rollout (``denied``: why a write was refused)."""
        if self.metrics is None:
            return
        series = RolloutSeries(
            component, progress.rolling_state, progress.batch_state,
            progress.target_revision or target, progress.current_batch, progress.upgraded,
            progress.upgraded_ready, denied or failure_reason(progress))
        self.metrics.rollout_seen(key, series, steps, wrote)

    def _rollout_event(self, rollout: Mapping[str, Any], app: Application, component: str,
                       type_: str, reason: str, message: str) -> None:
        """An Event on the Rollout, and the same on its Application (naming the component),
        so that `kubectl describe app` tells it too."""
        self._event(rollout, type_, reason, message)
        self._event(application_reference(app), type_, reason,
                    f"component {component}: {message}")

    def _carry_out(self, rollout: dict[str, Any], app: Application, component: str,
                   kind: WorkloadKind, actions: tuple[Action, ...]) -> tuple[str, str] | None:
        """Carry a decision's actions out, in order; (reason, message) of the first
        workload write that can never be made (the rest are not tried), else None.
        Transient failures and BLOCKED raise."""
        for action in actions:
            for attempt in range(CONFLICT_RETRIES + 1):
                try:
                    self._act(rollout, app, component, kind, action)
                    break
                except BLOCKED:
                    raise
                except OwnershipConflict as exc:
                    return REASON_OWNERSHIP, str(exc)
                except ApiError as exc:
                    if isinstance(action, UpdateStatus | EmitEvent):
                        raise  # our own status write: a 409 is a stale read, decided again
                    name = getattr(action, "name", None)
                    if exc.status == 404 and isinstance(name, str):  # the cache was wrong
                        self._refresh(CLONESETS if kind is WorkloadKind.CLONESET
                                      else DEPLOYMENTS, app.namespace, name)
                    if exc.conflict and attempt < CONFLICT_RETRIES:
                        continue
                    creating = isinstance(action, CreateWorkload)
                    if not permanent(exc.status, naming_existing=not creating):
                        raise
                    return REASON_API_REFUSED, str(exc)
        return None

    def _record_permitted(self, rollout: dict[str, Any], progress: Progress,
                          denied: tuple[str, str] | None) -> bool:
        """Set (``denied``) or clear the Rollout's Permitted condition; False when it
        already said so (nothing written)."""
        conditions = permitted_conditions(progress, denied, self.now())
        if conditions is None:
            return False
        meta = rollout["metadata"]
        body = {"metadata": {"resourceVersion": meta.get("resourceVersion")},
                "status": {"conditions": conditions}}
        updated = self.api.merge_patch(ROLLOUTS.path(meta.get("namespace"), meta["name"],
                                                     "status"), body)
        self._kept(ROLLOUTS, updated)
        rollout["metadata"] = updated.get("metadata", meta)
        self.own_writes.append(str(rollout["metadata"].get("resourceVersion")))
        return True

    def _revision_exists(self, namespace: str, name: str) -> bool:
        """ControllerRevisions are immutable and only go with their Application, so one
        that was seen is remembered (a later render reads it fresh anyway)."""
        if not name:
            return False
        if (namespace, name) in self.known_revisions:
            return True
        found = self._get(REVISIONS, namespace, name) is not None or (
            self.caches is not None and self.api.get(REVISIONS.path(namespace, name)) is not None)
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
            cs = self._get(CLONESETS, namespace, component)
            return [cs] if cs is not None else []
        if self.caches is not None:
            listed = self.caches.store(DEPLOYMENTS).of_app(namespace, app,
                                                           {LABEL_COMPONENT: component})
        else:
            selector = f"{LABEL_COMPONENT}={component},{LABEL_APP_NAME}={app}"
            listed = self.api.list(DEPLOYMENTS.path(namespace), selector)
        return [d for d in listed if not (d.get("metadata") or {}).get("deletionTimestamp")]

    def _act(self, rollout: dict[str, Any], app: Application, component: str,
             kind: WorkloadKind, action: Action) -> None:
        ns = app.namespace
        workloads = CLONESETS if kind is WorkloadKind.CLONESET else DEPLOYMENTS
        if isinstance(action, UpdateStatus):
            meta = rollout["metadata"]
            body = {"metadata": {"resourceVersion": meta.get("resourceVersion")},
                    "status": status_from(action.progress)}
            try:
                updated = self.api.merge_patch(ROLLOUTS.path(ns, meta["name"], "status"), body)
            except ApiError as exc:
                if exc.conflict:
                    self._refresh(ROLLOUTS, ns, meta["name"])
                raise
            self._kept(ROLLOUTS, updated)
            rollout["metadata"] = updated.get("metadata", meta)
            self.own_writes.append(str(rollout["metadata"].get("resourceVersion")))
            return
        if isinstance(action, EmitEvent):
            self._rollout_event(rollout, app, component, action.type, action.reason,
                                action.message)
            return
        writer = self._writer(app)
        if isinstance(action, CreateWorkload):
            docs = self._render(app, action.revision, action.replicas)
            docs[0].setdefault("metadata", {}).setdefault("annotations", {})[
                ANNOTATION_ROLLED_BY] = component
            if action.partition is not None:
                docs[0].setdefault("spec", {})["updateStrategy"] = {
                    **(docs[0]["spec"].get("updateStrategy") or {}),
                    "partition": action.partition}
            # Never over another owner's object: a forced apply would take it over.
            check_writable(self.api, docs, app.uid)
            for doc in docs:  # the workload and what it renders beside it (a Service)
                self._kept(workloads, writer.apply(self._signed(doc)))
        elif isinstance(action, RetemplateWorkload):
            doc = self._render(app, action.revision, action.replicas)[0]
            live = self.api.get(workloads.path(ns, action.name))
            body = retemplate_body(live, doc, action.replicas, action.partition)
            self._kept(workloads, writer.merge_patch(workloads.path(ns, action.name), body))
        elif isinstance(action, ScaleWorkload):
            self._kept(workloads, writer.merge_patch(workloads.path(ns, action.name),
                                                     {"spec": {"replicas": action.replicas}}))
        elif isinstance(action, SetPartition):
            self._kept(workloads, writer.merge_patch(
                workloads.path(ns, action.name),
                {"spec": {"updateStrategy": {"partition": action.partition}}}))
        elif isinstance(action, DeleteWorkload):
            self._delete_workload(app, component, workloads, action.name)

    def _delete_workload(self, app: Application, component: str, workloads: Resource,
                         name: str) -> None:
        """Delete a workload of the run only if, read again now, it is the Application's
        and the component is still rolled by this Rollout: a Rollout gone stale (its
        trait removed) must never delete the plain workload that replaces its own."""
        ns = app.namespace
        live = self.api.get(workloads.path(ns, name))
        if live is None:
            return
        current = self.api.get(APPLICATIONS.path(ns, app.name))
        fresh = parse_application(current)[0] if current is not None else None
        still = fresh.component(component) if fresh is not None else None
        if (fresh is None or fresh.uid != app.uid or still is None
                or still.rollout_trait() is None
                or not is_ours(live_object("", live), app.uid)):
            log.info("%s/%s: %s not deleted: no longer this Rollout's", ns, component, name)
            return
        uid = str((live.get("metadata") or {}).get("uid") or "") or None
        self._writer(app).delete(workloads.path(ns, name), uid)
        if self.caches is not None:
            self.caches.store(workloads).apply("DELETED", live)

    def _signed(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` annotated with this replica's identity (when it has one)."""
        if self.identity:
            doc.setdefault("metadata", {}).setdefault("annotations", {})[
                ANNOTATION_APPLIED_BY] = self.identity
        return doc

    def _render(self, app: Application, revision: str, replicas: int) -> list[dict[str, Any]]:
        """The workload of ``revision`` from its ControllerRevision (it may be a rollback)."""
        # A ControllerRevision never changes: the cached one is the live one.
        record = self._get(REVISIONS, app.namespace, revision)
        if record is None and self.caches is not None:  # not seen on the watch yet
            record = self.api.get(REVISIONS.path(app.namespace, revision))
        if record is None:
            raise OamRolloutError(f"ControllerRevision {revision} is gone")
        return self.renderer.render_workload(app, record.get("data") or {}, revision, replicas)

