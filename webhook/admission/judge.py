"""Admission decisions: an AdmissionReview request in, an AdmissionReview response out.

Holds ``validate`` and ``mutate`` (and ``review``, which parses and dispatches). Both are
pure functions of the request, a state reader and a renderer: the reader is called at
most once, only when a decision needs live state, and its ClusterReadError becomes a
500-coded denial (never an allow). Validation = the core's static rules, the revision
rules, the rules over live state, and rendering every template the change would apply.
Mutation records the resolved revision of every component in one annotation and
nothing else. It must not do I/O itself, must not touch Flask, and must not raise on
bad user input (only BadReview, for a body that is not an AdmissionReview).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping
from typing import Any, Literal, Protocol

import jsonpatch

from webhook.admission.reviews import (
    BadReview,
    ReviewRequest,
    allowed,
    errored,
    parse_review,
    patched,
)
from webhook.admission.reviews import invalid as invalid_review
from webhook.core.errors import ClusterReadError, FieldError, TemplateError, invalid
from webhook.core.labels import ANNOTATION_REVISIONS, APP_KIND
from webhook.core.model import Application, Component, RolloutPlan, parse_application
from webhook.core.paths import FieldPath
from webhook.core.revisions import ResolvedRevision, resolve_revisions, target_revision_name
from webhook.core.state import ObservedState
from webhook.core.validation import validate_against_state, validate_static

Mode = Literal["validate", "mutate"]


class StateReader(Protocol):
    """(namespace, application name) -> what is live; raises ClusterReadError.

    ``rollouts=False``: the caller needs only the revisions (mutation), so the reader may
    skip listing Rollouts and leave ``components`` empty.
    """

    def __call__(self, namespace: str, name: str, *, rollouts: bool = True) -> ObservedState: ...


ADMITTED_OPERATIONS = ("CREATE", "UPDATE")


class Renderer(Protocol):
    """What admission needs of webhook.render.renderer.Renderer (a stub will do in tests)."""

    @property
    def component_types(self) -> Collection[str]: ...

    @property
    def trait_types(self) -> Collection[str]: ...

    def render_revision(
        self, app: Application, component: Component, resolved: ResolvedRevision
    ) -> dict[str, Any]: ...

    def render_rollout(
        self, app: Application, component: Component, target_revision: str
    ) -> dict[str, Any]: ...

    def render_workload(
        self,
        app: Application,
        spec: Mapping[str, Any],
        revision_name: str,
        replicas: int | None,
    ) -> list[dict[str, Any]]: ...


def review(body: object, mode: Mode, read_state: StateReader, renderer: Renderer) -> dict[str, Any]:
    """Answer one AdmissionReview body; BadReview if it is not one."""
    request = parse_review(body)
    if mode == "mutate":
        return mutate(request, read_state, renderer)
    return validate(request, read_state, renderer)


def _is_application_write(request: ReviewRequest) -> bool:
    if request.operation not in ADMITTED_OPERATIONS:
        return False
    # A configuration that sends us other kinds is a setup mistake; they are not ours to judge.
    if request.kind_name and request.kind_name != APP_KIND:
        return False
    if request.object is None:
        raise BadReview(f"request.object is required for {request.operation}")
    return True


def _spec_unchanged(request: ReviewRequest) -> bool:
    """An UPDATE that leaves spec as it was (metadata edits, finalizers, labels)."""
    if request.operation != "UPDATE" or request.old_object is None or request.object is None:
        return False
    return request.object.get("spec") == request.old_object.get("spec")


def _namespace(request: ReviewRequest, app: Application | None) -> str:
    return request.namespace or (app.namespace if app else "") or "default"


def _cluster_error(request: ReviewRequest, exc: ClusterReadError) -> dict[str, Any]:
    return errored(
        request,
        f"cannot check the Application against the cluster, so it is not admitted: {exc}",
    )


def validate(request: ReviewRequest, read_state: StateReader, renderer: Renderer) -> dict[str, Any]:
    """The validating webhook's answer."""
    if not _is_application_write(request):
        return allowed(request)
    result = validate_static(request.object, renderer.component_types, renderer.trait_types)
    warnings = list(result.warnings)
    if not result.ok or result.app is None:
        return invalid_review(request, result.errors, warnings=warnings)
    app = result.app
    if _spec_unchanged(request):
        # State rules judge transitions of the spec; metadata-only updates (the controller's
        # finalizers, a user's labels) must never be blocked by them.
        return allowed(request, warnings)
    try:
        # Static rules passed, so every rollout trait parses: no need to parse plans here.
        observed = read_state(
            _namespace(request, app),
            app.name,
            rollouts=any(c.rollout_trait() is not None for c in app.components),
        )
    except ClusterReadError as exc:
        return _cluster_error(request, exc)
    resolved, errors = resolve_revisions(app, observed)
    if not errors:
        errors = validate_against_state(app, observed, resolved)
    plans = {c.name: c.rollout() for c in app.components}
    if not errors:
        errors = render_errors(app, resolved, renderer, plans)
    if errors:
        return invalid_review(request, errors, warnings=warnings)
    return allowed(request, warnings + suspicious(app, resolved, plans))


def component_path(index: int) -> FieldPath:
    return FieldPath.root("spec", "components").index(index)


def render_errors(
    app: Application,
    resolved: Mapping[str, ResolvedRevision],
    renderer: Renderer,
    plans: Mapping[str, RolloutPlan | None] | None = None,
) -> list[FieldError]:
    """Render every object the change would apply; each template failure is a field error.

    ``plans`` (component name -> parsed rollout plan) saves parsing them again.
    """
    errors: list[FieldError] = []
    for index, component in enumerate(app.components):
        revision = resolved.get(component.name)
        if revision is None:
            continue
        plan = plans[component.name] if plans is not None else component.rollout()
        try:
            _render_component(renderer, app, component, revision, plan)
        except TemplateError as exc:
            errors.append(
                invalid(component_path(index), component.type, f"cannot be rendered: {exc}")
            )
    return errors


def _render_component(
    renderer: Renderer,
    app: Application,
    component: Component,
    revision: ResolvedRevision,
    plan: RolloutPlan | None,
) -> None:
    """Render the component's revision, Rollout (with a plan) and workload; TemplateError if not."""
    target = target_revision_name(component, revision)
    replicas = plan.target_size if plan else None
    check = getattr(renderer, "check_component", None)
    if check is not None:
        # The real Renderer can vouch for inputs it rendered before without decoding the
        # objects again (admission throws them away): the same renders, remembered.
        check(app, component, revision, target, replicas, with_rollout=plan is not None)
        return
    renderer.render_revision(app, component, revision)
    if plan is not None:
        renderer.render_rollout(app, component, target)
    renderer.render_workload(app, component.spec(), revision.name, replicas)


def suspicious(
    app: Application,
    resolved: Mapping[str, ResolvedRevision],
    plans: Mapping[str, RolloutPlan | None] | None = None,
) -> list[str]:
    """Warnings for legal specs that probably do not do what their author wants."""
    out: list[str] = []
    for component in app.components:
        plan = plans[component.name] if plans is not None else component.rollout()
        revision = resolved.get(component.name)
        if plan is None or revision is None:
            continue
        target = plan.target_revision
        if target and revision.is_new and target != revision.name:
            out.append(
                f"{component.name}: new revision {revision.name} is recorded but not rolled out: "
                f"targetRevision pins {target}"
            )
        last = len(plan.rollout_batches) - 1
        if plan.batch_partition is not None and plan.batch_partition == last:
            out.append(
                f"{component.name}: batchPartition {plan.batch_partition} is the last batch; "
                "it holds nothing back"
            )
    return out


def revisions_annotation(resolved: Mapping[str, ResolvedRevision]) -> str:
    """The annotation value: compact, key-sorted JSON {component: revision name}."""
    names = {component: r.name for component, r in resolved.items()}
    return json.dumps(names, sort_keys=True, separators=(",", ":"))


def annotation_patch(obj: Mapping[str, Any], value: str) -> list[dict[str, Any]]:
    """The minimal JSONPatch that sets ANNOTATION_REVISIONS to ``value`` (empty if it is set)."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        annotations = metadata.get("annotations")
        # The common shapes, written out: the same ops jsonpatch.make_patch finds by
        # diffing deep copies, at a tenth of the cost.
        if isinstance(annotations, dict):
            current = annotations.get(ANNOTATION_REVISIONS, _ABSENT)
            if current == value and isinstance(current, str):
                return []
            op = "add" if current is _ABSENT else "replace"
            return [{"op": op, "path": _ANNOTATION_POINTER, "value": value}]
        if "annotations" not in metadata:
            return [
                {
                    "op": "add",
                    "path": "/metadata/annotations",
                    "value": {ANNOTATION_REVISIONS: value},
                }
            ]
    return _diffed_annotation_patch(obj, value)


_ABSENT = object()
_ANNOTATION_POINTER = "/metadata/annotations/" + ANNOTATION_REVISIONS.replace("~", "~0").replace(
    "/", "~1"
)


def _diffed_annotation_patch(obj: Mapping[str, Any], value: str) -> list[dict[str, Any]]:
    """annotation_patch for odd shapes (no metadata object, annotations not an object)."""
    metadata = obj.get("metadata")
    before = {"metadata": metadata if isinstance(metadata, dict) else {}}
    after = copy.deepcopy(before)
    annotations = after["metadata"].get("annotations")
    if not isinstance(annotations, dict):
        annotations = after["metadata"]["annotations"] = {}
    annotations[ANNOTATION_REVISIONS] = value
    ops: list[dict[str, Any]] = jsonpatch.make_patch(before, after).patch
    return ops


def _previous_annotation(request: ReviewRequest) -> str | None:
    old = request.old_object or {}
    metadata = old.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    value = annotations.get(ANNOTATION_REVISIONS) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None


def mutate(request: ReviewRequest, read_state: StateReader, renderer: Renderer) -> dict[str, Any]:
    """The mutating webhook's answer: at most one annotation, set or corrected."""
    if not _is_application_write(request):
        return allowed(request)
    assert request.object is not None  # _is_application_write guarantees it
    previous = _previous_annotation(request)
    if _spec_unchanged(request) and previous is not None:
        # Same spec, same revisions: carry the recorded names over without asking the cluster.
        return patched(request, annotation_patch(request.object, previous))
    app, parse_errors = parse_application(request.object)
    if app is None or parse_errors:
        # Invalid objects are left untouched: the validating webhook denies them with reasons.
        return allowed(request)
    try:
        # Naming revisions needs the revisions only, not the Rollouts.
        observed = read_state(_namespace(request, app), app.name, rollouts=False)
    except ClusterReadError as exc:
        return _cluster_error(request, exc)
    resolved, errors = resolve_revisions(app, observed)
    if errors:
        return allowed(request)
    return patched(request, annotation_patch(request.object, revisions_annotation(resolved)))


__all__ = [
    "BadReview",
    "Mode",
    "Renderer",
    "StateReader",
    "annotation_patch",
    "mutate",
    "render_errors",
    "review",
    "revisions_annotation",
    "suspicious",
    "validate",
]
