"""The Application pass: an Application's revisions, Rollouts, plain workloads and status,
and the end of every object its spec no longer implies.

Holds ApplicationPass, built by reconcile.Reconciler for each reconcile of an Application
key. A pass reads fresh, side by side: the ControllerRevisions of the spec's component
names (of any owner: names must not collide), the Rollout named after each component, and
every object labelled managed-by for this Application (kept only when its controller
ownerReference is this Application by UID). Then, in this order:

1. components whose Rollout or revisions another owner controls are left alone and
   reported (a Warning Event, the Ready condition): nothing of theirs is written;
2. stale Rollouts (trait removed, component removed) are deleted first, so nothing
   fights over the workloads they rolled; the size each left is carried on;
3. each component: a new ControllerRevision, then its Rollout, or for a plain component
   its workload at the size it runs now (never below what a removed Rollout left), each
   object read first and never written over another owner's;
4. the other objects the spec no longer implies: at once for a removed component or a
   Service no longer rendered, a superseded workload only once its replacement is Ready
   (each delete re-reads, see guards.delete_checked);
5. ControllerRevisions past the history limit, never one in use;
6. status, and a Warning Event per problem when it is new.

A pass over an Application that is not in the controller's scope (re-pinned to another
shard since it was queued, say) writes nothing.

A write the API refuses for good (400/403/404/409/422) fails the component loudly (its
Ready condition, a Warning Event) and is not retried until the Application changes;
transient failures raise for the loop to retry. It must not hold decisions: ownership,
garbage, history and sizes are webhook.controller.inventory's, the status rule views'.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from webhook.controller.cache import Caches
from webhook.controller.guards import RESOURCES, OwnershipConflict, check_writable, delete_checked
from webhook.controller.inventory import (
    CONFLICT_RETRIES,
    REVISION_KIND,
    WORKLOAD_KINDS,
    ComponentPlan,
    Deletion,
    LiveObject,
    collectable,
    component_plan,
    garbage,
    held_plan,
    is_ours,
    live_object,
    permanent,
    plain_replicas,
    revisions_in_use,
    surplus_revisions,
    taken,
)
from webhook.controller.logs import about
from webhook.controller.machine import REASON_API_REFUSED, REASON_OWNERSHIP
from webhook.controller.views import application_status, rollout_failure, service_health
from webhook.controller.writers import BLOCKED, denial
from webhook.core.errors import ApiError, OamRolloutError
from webhook.core.labels import (
    ANNOTATION_REVISIONS,
    APP_KIND,
    CLONESET_KIND,
    LABEL_APP_NAME,
    LABEL_CONTROLLER_COMPONENT,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    ROLLOUT_KIND,
)
from webhook.core.model import COMPONENTS_PATH, Application, Component, parse_application
from webhook.core.objects import component_observation, metadata, observed_state_from
from webhook.core.revisions import (
    ResolvedRevision,
    cross_type_detail,
    resolve_revisions,
    target_revision_name,
)
from webhook.core.scope import EVERYTHING, Scope
from webhook.core.state import ObservedState
from webhook.kube.client import APPLICATIONS, REVISIONS, ROLLOUTS, KubeApi, Resource
from webhook.render.renderer import Renderer

log = logging.getLogger("oam_rollout.controller")

# How many ControllerRevisions of one component are kept by default (--revision-history-limit).
DEFAULT_REVISION_HISTORY = 10
# The reason (condition, event) of a targetRevision that holds another component type.
REASON_TYPE_CHANGE = "TargetRevisionOfAnotherType"
Problem = tuple[str, str, str]  # (component, reason, message)


@dataclass
class Reads:
    """What one pass reads before it decides."""

    revisions: list[dict[str, Any]]  # of the spec's component names, any owner
    rollouts: dict[str, dict[str, Any] | None]  # by component name
    owned: list[tuple[str, dict[str, Any]]]  # (kind, object) labelled managed-by for the app

    def live(self) -> list[LiveObject]:
        return [live_object(kind, obj) for kind, obj in self.owned]


@dataclass
class Outcome:
    services: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failures: list[Problem] = field(default_factory=list)  # failed Rollouts
    problems: list[Problem] = field(default_factory=list)  # conflicts, refused writes
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (reason, message)
    created: list[LiveObject] = field(default_factory=list)  # revisions made this pass


@dataclass
class ApplicationPass:
    api: KubeApi
    renderer: Renderer
    pool: ThreadPoolExecutor
    now: Callable[[], str]
    # The client writing an Application's workloads, Services and Rollouts (writers.py).
    writer: Callable[[Application], KubeApi]
    sign: Callable[[dict[str, Any]], dict[str, Any]]
    # Records an Event on an object: (involved, type, reason, message).
    event: Callable[[Mapping[str, Any], str, str, str], None]
    history_limit: int = DEFAULT_REVISION_HISTORY
    # Told each ControllerRevision deleted: (namespace, name).
    forget_revision: Callable[[str, str], None] = lambda namespace, name: None
    # The Applications this controller acts on (webhook.core.scope).
    scope: Scope = EVERYTHING
    # The watches' caches (cache.py): when given, the pass reads them and lists nothing.
    caches: Caches | None = None

    def run(self, namespace: str, name: str) -> None:
        raw = (self.caches.get(APPLICATIONS, namespace, name) if self.caches is not None
               else self.api.get(APPLICATIONS.path(namespace, name)))
        if raw is None or metadata(raw).get("deletionTimestamp"):
            return  # owned objects go with it (ownerReferences)
        if not self.scope.ours(raw):
            log.info("%s/%s: not ours (another shard's, or a type we have no template "
                     "for): left alone", namespace, name)
            return
        app, errs = parse_application(raw)
        if app is None or errs:
            outcome = Outcome(errors=[str(e) for e in errs] or ["not an Application"])
        else:
            outcome = self._carry_out(raw, app)
        if self._write_status(raw, outcome):
            for reason, message in outcome.warnings:  # once per new problem
                self.event(raw, "Warning", reason, message)

    # ---- the pass ---------------------------------------------------------------------

    def _carry_out(self, raw: Mapping[str, Any], app: Application) -> Outcome:
        reads = self._read(app)
        held = taken([c.name for c in app.components], reads.rollouts, reads.revisions, app.uid)
        observed = observed_state_from(app.namespace, app.name, reads.revisions, ())
        resolved, errs = resolve_revisions(app, observed)
        # A held component's name is another owner's: its revisions' errors are not ours.
        held_paths = {str(COMPONENTS_PATH.index(i)) for i, c in enumerate(app.components)
                      if c.name in held}
        errs = [e for e in errs if ".".join(str(e.path).split(".")[:2]) not in held_paths]
        if errs:
            return Outcome(errors=[str(e) for e in errs])
        resolved = prefer_annotated_names(app, resolved, observed)
        live = reads.live()
        plans = {c.name: held_plan(c.name) if c.name in held
                 else self._plan(app, c, resolved[c.name], observed) for c in app.components}
        doomed = garbage(app.uid, plans, live)
        out = Outcome()
        # Stale Rollouts first: nothing may fight over the workloads they rolled.
        carried: dict[str, int | None] = {}
        for d in doomed:
            if d.obj.kind == ROLLOUT_KIND:
                carried[d.obj.component] = d.obj.rollout_size
                self._delete(raw, app, d, out)
        for component in app.components:
            if component.name in held:
                out.services.append({"name": component.name, "healthy": False,
                                     "message": held[component.name]})
                self._problem(out, component.name, REASON_OWNERSHIP, held[component.name])
                continue
            with about(component=component.name):  # on its log lines
                self._component(app, component, resolved[component.name], observed, reads,
                                carried.get(component.name), live, out)
        for d in doomed:
            if d.obj.kind != ROLLOUT_KIND:
                self._delete(raw, app, d, out)
        self._prune_revisions(raw, app, plans, reads, live, out)
        return out

    def _read(self, app: Application) -> Reads:
        """Everything the pass decides on, read side by side."""
        ns = app.namespace
        names = sorted({c.name for c in app.components})
        if self.caches is not None:
            return self._cached_reads(app, names)
        revisions = self.pool.submit(
            lambda: self.api.list(REVISIONS.path(ns), f"{LABEL_CONTROLLER_COMPONENT} in "
                                  f"({','.join(names)})") if names else [])
        rollouts = {n: self.pool.submit(self.api.get, ROLLOUTS.path(ns, n)) for n in names}
        selector = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_APP_NAME}={app.name}"
        owned = {kind: self.pool.submit(self._list_kind, resource.path(ns), selector)
                 for kind, resource in RESOURCES.items()}
        return Reads(
            revisions=revisions.result(),
            rollouts={n: f.result() for n, f in rollouts.items()},
            owned=[(kind, obj) for kind, f in owned.items() for obj in f.result()
                   if is_ours(live_object(kind, obj), app.uid)])

    def _cached_reads(self, app: Application, names: list[str]) -> Reads:
        """The same reads, from the watches' caches (no request)."""
        assert self.caches is not None
        ns = app.namespace
        return Reads(
            revisions=self.caches.store(REVISIONS).in_namespace(
                ns, LABEL_CONTROLLER_COMPONENT, names),
            rollouts={n: self.caches.get(ROLLOUTS, ns, n) for n in names},
            owned=[(kind, obj) for kind, obj in self.caches.owned(ns, app.name, RESOURCES)
                   if is_ours(live_object(kind, obj), app.uid)])

    def _list_kind(self, path: str, selector: str) -> list[dict[str, Any]]:
        try:
            return self.api.list(path, selector)
        except ApiError as exc:
            if exc.status == 404:  # the kind is not installed (no CloneSet CRD): none
                return []
            raise

    def _plan(self, app: Application, component: Component, rev: ResolvedRevision,
              observed: ObservedState) -> ComponentPlan:
        """What ``component`` implies; held (nothing of it deleted) when its target
        cannot be rendered here."""
        rollout = component.rollout_trait() is not None
        target = target_revision_name(component, rev) if rollout else rev.name
        if target == rev.name:
            spec: Mapping[str, Any] = component.spec()
        else:
            record = observed.revision_named(target)
            if (record is None or record.component != component.name
                    or cross_type_detail(component, record) is not None):
                return held_plan(component.name)
            spec = {**record.data, "name": component.name}
        try:
            docs = self.renderer.render_workload(app, spec, target, None)
        except OamRolloutError:
            return held_plan(component.name)
        plan = component.rollout()
        named = {plan.target_revision} if plan is not None and plan.target_revision else set()
        return component_plan(component.name, rollout, target, docs, {rev.name, *named})

    def _component(self, app: Application, component: Component, rev: ResolvedRevision,
                   observed: ObservedState, reads: Reads, carried: int | None,
                   live: list[LiveObject], out: Outcome) -> None:
        """Carry one component out; what went wrong goes to ``out``."""
        name = component.name
        try:
            if rev.is_new or observed.revision_named(rev.name) is None:
                self._create_revision(app, component, rev)
                out.created.append(LiveObject(
                    REVISION_KIND, rev.name, component=name, number=rev.number,
                    owner_kind=APP_KIND, owner_name=app.name, owner_uid=app.uid,
                    managed=True))
            crossing = self._crossing(component, rev, observed)
            if crossing is not None:
                # Admission refuses this spec; one that got past it (admission bypassed,
                # or stored before it ran) fails loudly and changes nothing.
                self._problem(out, name, REASON_TYPE_CHANGE, crossing)
                out.services.append({"name": name, "healthy": False, "message": crossing})
                return
            if component.rollout_trait() is not None:
                rollout = self._apply_rollout(app, component, rev, reads.rollouts.get(name))
                out.services.append(service_health(name, rollout, None))
                failure = rollout_failure(rollout)
                if failure is not None:
                    out.failures.append((name, *failure))
            else:
                out.services.append(self._apply_plain(app, component, rev, carried, live))
            return
        except OwnershipConflict as exc:
            self._problem(out, name, REASON_OWNERSHIP, str(exc))
        except BLOCKED as exc:  # the Application's writer may not write it (impersonation)
            out.errors.append(str(exc))
            out.warnings.append(denial(exc))
        except ApiError as exc:
            if not permanent(exc.status):
                raise  # transient: retried by the loop
            self._problem(out, name, REASON_API_REFUSED, str(exc))
        except OamRolloutError as exc:  # a template that cannot render, say
            out.errors.append(str(exc))
        out.services.append({"name": name, "healthy": False, "message": "not applied"})

    @staticmethod
    def _crossing(component: Component, rev: ResolvedRevision,
                  observed: ObservedState) -> str | None:
        """Why the rollout's targetRevision cannot be rolled to (another component type),
        or None."""
        if component.rollout_trait() is None:
            return None
        target = target_revision_name(component, rev)
        record = observed.revision_named(target) if target != rev.name else None
        if record is None or record.component != component.name:
            return None
        return cross_type_detail(component, record)

    @staticmethod
    def _problem(out: Outcome, component: str, reason: str, message: str) -> None:
        out.problems.append((component, reason, message))
        out.warnings.append((reason, f"component {component}: {message}"))

    def _create_revision(self, app: Application, component: Component,
                         rev: ResolvedRevision) -> None:
        body = self.renderer.render_revision(app, component, rev)
        try:
            self._kept(REVISIONS, self.api.create(REVISIONS.path(app.namespace), body))
            log.info("created ControllerRevision %s/%s", app.namespace, rev.name)
        except ApiError as exc:
            if exc.status != 409:  # already there: created by an earlier pass
                raise

    def _apply_rollout(self, app: Application, component: Component, rev: ResolvedRevision,
                       live: dict[str, Any] | None) -> dict[str, Any]:
        """The component's Rollout, applied when it differs from the rendered one (``live``
        was read this pass, and is this Application's: taken() held it otherwise)."""
        # The run live status records: percent batches resolve as they did when it began.
        last = component_observation(live).last_run() if live is not None else None
        wanted = self.renderer.render_rollout(app, component,
                                              target_revision_name(component, rev), last)
        if live is None or live.get("spec") != wanted.get("spec") or not _owned(live, wanted):
            live = _applied(self.writer(app), self.sign(wanted))
            self._kept(ROLLOUTS, live)
        return live

    def _apply_plain(self, app: Application, component: Component, rev: ResolvedRevision,
                     carried: int | None, live: list[LiveObject]) -> dict[str, Any]:
        """A component without a rollout trait: its workload, applied as rendered, at the
        replicas the spec sets or else the size it runs now (inventory.plain_replicas).
        The workloads it supersedes go once it is Ready (garbage)."""
        docs = self.renderer.render_workload(app, component.spec(), rev.name,
                                             component.scaled_replicas())
        head = docs[0]
        spec = head.setdefault("spec", {})
        if spec.get("replicas") is None:
            kind, name = str(head.get("kind")), str(metadata(head).get("name"))
            mine = [o for o in live if o.component == component.name and o.kind in WORKLOAD_KINDS
                    and not o.deleting]
            target = next((o for o in mine if (o.kind, o.name) == (kind, name)), None)
            replicas = plain_replicas(carried, target, mine)
            if replicas is not None:
                spec["replicas"] = replicas
        if head.get("kind") == CLONESET_KIND:
            # Every pod on the template: a partition a removed Rollout left would hold
            # some back on an old one for good.
            spec.setdefault("updateStrategy", {})["partition"] = 0
        check_writable(self.api, docs, app.uid)
        writer = self.writer(app)
        applied = [_applied(writer, self.sign(doc)) for doc in docs]
        return service_health(component.name, None, applied[0])

    def _delete(self, raw: Mapping[str, Any], app: Application, d: Deletion,
                out: Outcome) -> None:
        """One deletion, re-checked just before it is made (guards.delete_checked)."""
        try:
            # ControllerRevisions are the controller's own; the rest is written as the
            # Application's writer.
            writer = self.api if d.obj.kind == REVISION_KIND else self.writer(app)
            kept = delete_checked(self.api, writer, app.namespace, d, app.uid)
        except BLOCKED as exc:
            out.errors.append(str(exc))
            out.warnings.append(denial(exc))
            return
        except ApiError as exc:
            if not permanent(exc.status, naming_existing=True):
                raise
            self._problem(out, d.obj.component, REASON_API_REFUSED,
                          f"deleting {d.obj.kind} {d.obj.name}: {exc}")
            return
        if kept is not None:
            log.info("%s/%s %s %s stays: %s", app.namespace, app.name, d.obj.kind, d.obj.name,
                     kept)
            return
        if self.caches is not None:
            self.caches.deleted(RESOURCES[d.obj.kind], app.namespace, d.obj.name, d.obj.uid)
        if d.obj.kind == REVISION_KIND:
            self.forget_revision(app.namespace, d.obj.name)
        log.info("%s/%s deleted %s %s: %s", app.namespace, app.name, d.obj.kind, d.obj.name,
                 d.why)
        self.event(raw, "Normal", "Deleted", f"{d.obj.kind} {d.obj.name}: {d.why}")

    def _prune_revisions(self, raw: Mapping[str, Any], app: Application,
                         plans: Mapping[str, ComponentPlan], reads: Reads,
                         live: list[LiveObject], out: Outcome) -> None:
        for name, plan in plans.items():
            if plan.held:
                continue
            # The one created this pass counts too, though it was not listed.
            revisions = [o for o in [*live, *out.created] if o.kind == REVISION_KIND
                         and o.component == name and collectable(o, app.uid)]
            if len(revisions) <= self.history_limit:
                continue
            in_use = revisions_in_use(plan, reads.rollouts.get(name), live)
            for revision in surplus_revisions(revisions, in_use, self.history_limit):
                self._delete(raw, app, Deletion(
                    revision, f"past the revision history limit of {self.history_limit}"), out)

    def _write_status(self, raw: Mapping[str, Any], out: Outcome) -> bool:
        """False when the status already said this (nothing written)."""
        meta = metadata(raw)
        old = raw.get("status") or {}
        new = application_status(old, int(meta.get("generation") or 1), out.services,
                                 out.errors, self.now(), out.failures, out.problems)
        if new == old:
            return False
        body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": new}
        try:
            self._kept(APPLICATIONS, self.api.merge_patch(APPLICATIONS.path(
                meta.get("namespace"), meta.get("name"), "status"), body))
        except ApiError as exc:
            if exc.conflict and self.caches is not None:  # decided on a stale read
                self._kept(APPLICATIONS, self.api.get(APPLICATIONS.path(
                    meta.get("namespace"), meta.get("name"))))
            raise
        return True

    def _kept(self, resource: Resource, obj: Mapping[str, Any] | None) -> None:
        """Our own write's answer into the caches, so the next pass sees it."""
        if self.caches is not None:
            self.caches.wrote(resource, obj)


def prefer_annotated_names(app: Application, resolved: dict[str, ResolvedRevision],
                           observed: ObservedState) -> dict[str, ResolvedRevision]:
    """The webhook's names win for revisions still to create, so both agree on them."""
    try:
        named = json.loads(app.annotations.get(ANNOTATION_REVISIONS, "{}"))
    except ValueError:
        return resolved
    if not isinstance(named, dict):
        return resolved
    existing = {r.name for r in observed.revisions}
    out = dict(resolved)
    for comp, rev in resolved.items():
        wanted = named.get(comp)
        if rev.is_new and isinstance(wanted, str) and wanted and wanted not in existing:
            out[comp] = replace(rev, name=wanted)
    return out


def _applied(writer: KubeApi, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` server-side applied; a 409 is tried again CONFLICT_RETRIES times before it
    counts as refused (inventory.permanent)."""
    for _ in range(CONFLICT_RETRIES):
        try:
            return writer.apply(doc)
        except ApiError as exc:
            if not exc.conflict:
                raise
    return writer.apply(doc)


def _owned(live: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """The live object carries the owner references and labels we render."""
    lm, wm = live.get("metadata") or {}, wanted.get("metadata") or {}
    labels = lm.get("labels") or {}
    return all(labels.get(k) == v for k, v in (wm.get("labels") or {}).items()) and all(
        any(r.get("uid") == w.get("uid") for r in lm.get("ownerReferences") or [])
        for w in wm.get("ownerReferences") or [])
