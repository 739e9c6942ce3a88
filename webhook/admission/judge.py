"""Admission decisions: one Application judged, and AdmissionReviews answered with it.

Holds ``judge`` (the verdict on one Application object: field errors and warnings),
which both the validating webhook and the ``validate`` CLI use, and the review
functions around it: ``validate`` and ``mutate`` (and ``review``, which parses and
dispatches). All are pure functions of their inputs, live state and a renderer: live
state is looked up at most once, only when a decision needs it, and only the part the
Application can look at (``ReadScope``) when the reader can narrow it; an ApiError
while reading it becomes a 500-coded denial (never an allow). Judging = the core's
static rules, the revision rules, the rules over live state, and rendering every
template the change would apply. Mutation records the resolved revision of every
component in one annotation, and who wrote the spec in another (never trusting a value
the request brings), and nothing else. With the policy's ``unknown_types`` "ignore", an
Application using a type no template knows passes through (webhook.core.scope): judged
no further, admitted with a warning saying why, and not patched (only a requester
annotation it brings is removed: nobody vouched for it). It must not do I/O itself, must not
touch Flask, and must not raise on bad user input (only BadReview, for a body that is
not an AdmissionReview).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from webhook.admission.patches import annotation_patch, annotations_patch
from webhook.admission.reviews import (
    BadReview,
    ReviewRequest,
    allowed,
    errored,
    parse_review,
    patched,
)
from webhook.admission.reviews import invalid as invalid_review
from webhook.core.errors import ApiError, FieldError, TemplateError, invalid
from webhook.core.labels import ANNOTATION_REQUESTER, ANNOTATION_REVISIONS, APP_KIND
from webhook.core.model import (
    COMPONENTS_PATH,
    Application,
    Component,
    RolloutPlan,
    parse_application,
)
from webhook.core.names import ownership_errors, revision_name_errors
from webhook.core.properties import DEFAULT_POLICY, ComponentPolicy
from webhook.core.requester import encode_requester, requester_from_user_info
from webhook.core.revisions import ResolvedRevision, resolve_revisions, target_revision_name
from webhook.core.scope import pass_through_reason
from webhook.core.state import ObservedState
from webhook.core.validation import validate_against_state, validate_static

Mode = Literal["validate", "mutate"]


class StateReader(Protocol):
    """(namespace, application name) -> what is live; raises ApiError.

    ``rollouts=False``: the caller needs only the revisions (mutation), so the reader may
    skip listing Rollouts and leave ``components`` empty.
    """

    def __call__(self, namespace: str, name: str, *, rollouts: bool = True) -> ObservedState: ...


@dataclass(frozen=True)
class ReadScope:
    """The part of a namespace's live state a review of one Application can look at.

    The revisions of its ``components`` (whoever controls them: a foreign one takes the
    name), the revisions named ``<component>-v<N>`` (the names a new revision must
    avoid), the ``revisions`` it names itself (``externalRevision``, ``targetRevision``),
    and its own Rollouts and the controllers of those named like its components. The
    rules read live state by these keys only (webhook.core.revisions, names,
    validation), so a state holding just these objects gets the same verdicts as one
    holding the whole namespace; a reader may always answer with more.
    """

    components: frozenset[str]
    revisions: frozenset[str]


def read_scope(app: Application, *, targets: bool = True) -> ReadScope:
    """What a review of ``app`` can look at (see ReadScope). ``targets=False``: leave the
    rollout plans' targetRevisions out, for a mutation, which judges no plan and so need
    not parse one."""
    named: set[str] = set()
    for component in app.components:
        if component.external_revision:
            named.add(component.external_revision)
        plan = component.rollout() if targets else None
        if plan is not None and plan.target_revision:
            named.add(plan.target_revision)
    return ReadScope(frozenset(c.name for c in app.components), frozenset(named))


class ScopedStateReader(ABC):
    """A StateReader that can also read just what one review looks at (``read_scoped``).

    The watch-fed cache answers that from its indexes, so a review costs the same in a
    namespace of 20,000 revisions as in an empty one. Admission asks for the scope
    whenever the reader it is given is one of these.
    """

    @abstractmethod
    def __call__(self, namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
        """Everything live for the Application (as StateReader)."""

    @abstractmethod
    def read_scoped(
        self, namespace: str, name: str, scope: ReadScope, *, rollouts: bool = True
    ) -> ObservedState:
        """At least what ``scope`` names; raises ApiError."""


def read_for(
    read_state: StateReader | ScopedStateReader, namespace: str, app: Application,
    *, rollouts: bool,
) -> ObservedState:
    """What is live for ``app``: only its scope when the reader can narrow it. Without the
    Rollouts (``rollouts=False``) no rule over a run is judged, and no target is looked up."""
    if isinstance(read_state, ScopedStateReader):
        scope = read_scope(app, targets=rollouts)
        return read_state.read_scoped(namespace, app.name, scope, rollouts=rollouts)
    return read_state(namespace, app.name, rollouts=rollouts)


ADMITTED_OPERATIONS = ("CREATE", "UPDATE")


class Renderer(Protocol):
    """What admission needs of webhook.render.renderer.Renderer (a stub will do in tests)."""

    @property
    def component_types(self) -> Collection[str]: ...

    @property
    def trait_types(self) -> Collection[str]: ...

    def check_component(
        self,
        app: Application,
        component: Component,
        resolved: ResolvedRevision,
        target_revision: str,
        replicas: int | None,
        *,
        with_rollout: bool,
    ) -> None:
        """Render the revision, the Rollout (``with_rollout``) and the workload; TemplateError.

        The real Renderer vouches for inputs it rendered fine before without rendering
        them again (admission throws the objects away): the same verdicts, remembered.
        """
        ...


class StateLookup(Protocol):
    """An Application -> what is live for it; raises ApiError.

    ``rollouts=False``: only the revisions are needed, ``components`` may be left empty.
    """

    def __call__(self, app: Application, *, rollouts: bool) -> ObservedState: ...


@dataclass(frozen=True)
class Verdict:
    """What ``judge`` concludes about one Application object.

    ``errors`` empty means it may be admitted; ``warnings`` are shown either way.
    ``app`` is the parsed Application when it passed every rule (None otherwise).
    """

    errors: list[FieldError]
    warnings: list[str]
    app: Application | None = None

    @property
    def allowed(self) -> bool:
        return not self.errors


def judge(
    app_object: object,
    observed: ObservedState | StateLookup,
    renderer: Renderer,
    old_object: Mapping[str, Any] | None = None,
    *,
    policy: ComponentPolicy = DEFAULT_POLICY,
) -> Verdict:
    """The verdict on one Application object: every field error and every warning.

    The one admission pipeline: the validating webhook answers with it, the
    ``validate`` CLI prints it. In order, each stage only when the one before found
    no error: the core's static rules (shape, names, types, trait properties), the
    ownership of the component names (webhook.core.names), the revision rules (the
    names a change creates among them), the rules over live state (batch sums, scale,
    rollback, the run in flight), and
    rendering every object the change would apply (a template failure is an Invalid
    error at ``spec.components[i]``). Warnings: the static rules' always; the
    "probably not what you meant" ones (``suspicious``) only when admitted.

    ``observed`` is what is live (the CLI's ``--revisions``), or a lookup called at
    most once, and only when a rule needs live state; an ApiError it raises
    propagates (the webhook turns it into a 500 denial). ``old_object`` is the stored
    object of an UPDATE: when the spec is unchanged (metadata edits, finalizers) the
    state rules are skipped, since they judge transitions of the spec.

    With ``policy.unknown_types`` "ignore", an Application using a type no template
    knows is another controller's: no error, one warning saying why, ``app`` None.
    """
    passing = pass_through_reason(app_object, renderer.component_types, renderer.trait_types,
                                  policy.unknown_types)
    if passing is not None:
        return Verdict([], [passing])
    result = validate_static(
        app_object, renderer.component_types, renderer.trait_types, policy
    )
    warnings = list(result.warnings)
    app = result.app
    if not result.ok or app is None:
        return Verdict(list(result.errors), warnings)
    if _same_spec(app_object, old_object):
        return Verdict([], warnings, app)
    if isinstance(observed, ObservedState):
        state = observed
    else:
        # Static rules passed, so every rollout trait parses: no need to parse plans here.
        wants_rollouts = any(c.rollout_trait() is not None for c in app.components)
        state = observed(app, rollouts=wants_rollouts)
    # A component name another owner holds is refused before anything is judged against
    # objects that are not this Application's.
    errors = ownership_errors(app, state)
    if errors:
        return Verdict(errors, warnings)
    resolved, errors = resolve_revisions(app, state)
    if not errors:
        errors = revision_name_errors(app, resolved) + validate_against_state(app, state, resolved)
    plans = {c.name: c.rollout() for c in app.components}
    if not errors:
        errors = render_errors(app, resolved, renderer, plans)
    if errors:
        return Verdict(errors, warnings)
    return Verdict([], warnings + suspicious(app, resolved, plans), app)


def _same_spec(app_object: object, old_object: Mapping[str, Any] | None) -> bool:
    if old_object is None or not isinstance(app_object, Mapping):
        return False
    return app_object.get("spec") == old_object.get("spec")


def review(
    body: object,
    mode: Mode,
    read_state: StateReader,
    renderer: Renderer,
    *,
    record_requester: bool = False,
    policy: ComponentPolicy = DEFAULT_POLICY,
) -> dict[str, Any]:
    """Answer one AdmissionReview body; BadReview if it is not one."""
    request = parse_review(body)
    if mode == "mutate":
        return mutate(request, read_state, renderer, record_requester=record_requester,
                      policy=policy)
    return validate(request, read_state, renderer, policy=policy)


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
    return request.operation == "UPDATE" and _same_spec(request.object, request.old_object)


def _namespace(request: ReviewRequest, app: Application | None) -> str:
    return request.namespace or (app.namespace if app else "") or "default"


def _cluster_error(request: ReviewRequest, exc: ApiError) -> dict[str, Any]:
    return errored(
        request,
        f"cannot check the Application against the cluster, so it is not admitted: {exc}",
    )


def validate(
    request: ReviewRequest,
    read_state: StateReader,
    renderer: Renderer,
    *,
    policy: ComponentPolicy = DEFAULT_POLICY,
) -> dict[str, Any]:
    """The validating webhook's answer: ``judge`` wrapped into an AdmissionReview response;
    ``policy`` is the server's (--allow-host-path, --allow-expose-type)."""
    if not _is_application_write(request):
        return allowed(request)

    def lookup(app: Application, *, rollouts: bool) -> ObservedState:
        return read_for(read_state, _namespace(request, app), app, rollouts=rollouts)

    old = request.old_object if request.operation == "UPDATE" else None
    try:
        verdict = judge(request.object, lookup, renderer, old, policy=policy)
    except ApiError as exc:
        return _cluster_error(request, exc)
    if verdict.errors:
        return invalid_review(request, verdict.errors, warnings=verdict.warnings)
    return allowed(request, verdict.warnings)


def render_errors(
    app: Application,
    resolved: Mapping[str, ResolvedRevision],
    renderer: Renderer,
    plans: Mapping[str, RolloutPlan | None] | None = None,
) -> list[FieldError]:
    """Render every object the change would apply; each template failure is a field error.

    Per component: its revision, its Rollout (with a plan) and its workload at the plan's
    target size. The error is at ``spec.components[i]``: the template belongs to the
    component's type, but what broke it may be any of its properties or traits.
    ``plans`` (component name -> parsed rollout plan) saves parsing them again.
    """
    errors: list[FieldError] = []
    for index, component in enumerate(app.components):
        revision = resolved.get(component.name)
        if revision is None:
            continue
        plan = plans[component.name] if plans is not None else component.rollout()
        target = target_revision_name(component, revision)
        replicas = plan.target_size if plan else component.scaled_replicas()
        try:
            renderer.check_component(
                app, component, revision, target, replicas, with_rollout=plan is not None
            )
        except TemplateError as exc:
            path = COMPONENTS_PATH.index(index)
            errors.append(invalid(path, component.type, f"cannot be rendered: {exc}"))
    return errors


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


def _previous_annotation(request: ReviewRequest, key: str = ANNOTATION_REVISIONS) -> str | None:
    old = request.old_object or {}
    metadata = old.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    value = annotations.get(key) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None


def requester_value(request: ReviewRequest, record: bool) -> str | None:
    """What ANNOTATION_REQUESTER must hold after this write (None: absent).

    The value in the request is never looked at, so it cannot be forged: an UPDATE that
    leaves spec alone (labels, annotations, finalizers, the controller's own writes)
    keeps what the stored object holds; any other write names its sender when
    ``record`` is on, and clears the annotation when it is off (so turning
    impersonation on later never trusts a value nobody vouched for).
    """
    if _spec_unchanged(request):
        return _previous_annotation(request, ANNOTATION_REQUESTER)
    who = requester_from_user_info(request.user_info) if record else None
    return encode_requester(who) if who is not None else None


def mutate(
    request: ReviewRequest,
    read_state: StateReader,
    renderer: Renderer,
    *,
    record_requester: bool = False,
    policy: ComponentPolicy = DEFAULT_POLICY,
) -> dict[str, Any]:
    """The mutating webhook's answer: the revisions annotation set or corrected, and the
    requester annotation made what ``requester_value`` says (``record_requester``: the
    server's --record-requester, on unless turned off). An Application that passes
    through (``policy.unknown_types``) is left as it is, but for a requester annotation
    it brings: the controller would trust it should the type become ours."""
    if not _is_application_write(request):
        return allowed(request)
    assert request.object is not None  # _is_application_write guarantees it
    if pass_through_reason(request.object, renderer.component_types, renderer.trait_types,
                           policy.unknown_types) is not None:
        # The validating webhook gives the warning: once, not once per webhook.
        return patched(request, annotations_patch(request.object, {ANNOTATION_REQUESTER: None}))
    requester = {ANNOTATION_REQUESTER: requester_value(request, record_requester)}
    previous = _previous_annotation(request)
    if _spec_unchanged(request) and previous is not None:
        # Same spec, same revisions: carry the recorded names over without asking the cluster.
        wanted = {ANNOTATION_REVISIONS: previous, **requester}
        return patched(request, annotations_patch(request.object, wanted))
    app, parse_errors = parse_application(request.object)
    if app is None or parse_errors:
        # Invalid objects get no revisions: the validating webhook denies them with reasons.
        return patched(request, annotations_patch(request.object, requester))
    try:
        # Naming revisions needs the revisions only, not the Rollouts.
        observed = read_for(read_state, _namespace(request, app), app, rollouts=False)
    except ApiError as exc:
        return _cluster_error(request, exc)
    resolved, errors = resolve_revisions(app, observed)
    if errors:
        return patched(request, annotations_patch(request.object, requester))
    wanted = {ANNOTATION_REVISIONS: revisions_annotation(resolved), **requester}
    return patched(request, annotations_patch(request.object, wanted))


__all__ = [
    "BadReview",
    "Mode",
    "ReadScope",
    "Renderer",
    "ScopedStateReader",
    "StateLookup",
    "StateReader",
    "Verdict",
    "annotation_patch",
    "annotations_patch",
    "judge",
    "mutate",
    "read_for",
    "read_scope",
    "render_errors",
    "requester_value",
    "review",
    "revisions_annotation",
    "suspicious",
    "validate",
]
