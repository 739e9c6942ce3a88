"""Validation rules for Applications: static ones, and ones over observed live state.

Holds pure functions that return every FieldError they find (apimachinery style,
exact paths) plus warnings; the webhook and the `validate` CLI share them. The rollout
trait's ranges and sums are webhook.core.rules (the controller applies them too), the
built-in component types' properties webhook.core.properties. It must not do I/O, must
not raise on bad input and must not render objects.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from webhook.core import errors as fe
from webhook.core import rules
from webhook.core.errors import FieldError
from webhook.core.labels import (
    IN_PLACE_TYPES,
    ROLLING_IN_BATCHES,
    ROLLOUT_TRAIT,
    ROLLOUT_WORKLOAD_TYPES,
)
from webhook.core.model import (
    COMPONENTS_PATH,
    Application,
    Component,
    RolloutPlan,
    parse_application_lenient,
    parse_rollout_plan,
)
from webhook.core.names import application_name_errors, component_name_errors
from webhook.core.paths import FieldPath
from webhook.core.properties import (
    DEFAULT_POLICY,
    DNS1123_LABEL,
    ComponentPolicy,
    property_errors,
)
from webhook.core.revisions import ResolvedRevision, cross_type_detail
from webhook.core.shapes import unknown_field
from webhook.core.state import ComponentObservation, ObservedState
from webhook.core.traits import conflict_errors, trait_errors

DNS1123_LABEL_MAX = 63
# Room for "-v<N>" up to N = 9999, so generated revision names stay valid label values.
REVISION_SUFFIX_ROOM = len("-v9999")


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validation; ``app`` is set only when there are no errors."""

    app: Application | None
    errors: tuple[FieldError, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


# ---------------------------------------------------------------------------
# static validation


def validate_static(
    raw: object,
    component_types: Collection[str],
    trait_types: Collection[str],
    policy: ComponentPolicy = DEFAULT_POLICY,
) -> ValidationResult:
    """Every rule that needs no live state, over a raw Application object.

    The batch-sum rule is not here: whether batches must add up to targetSize or
    to a size delta depends on what is live (see validate_against_state). ``policy``
    says which hostPath volumes and Service types the built-in types may ask for.
    """
    app, errs = parse_application_lenient(raw)
    warnings: list[str] = []
    if app is None:
        return ValidationResult(None, tuple(errs), ())
    errs.extend(application_name_errors(app.name))
    seen: dict[str, int] = {}
    for i, component in enumerate(app.components):
        cpath = COMPONENTS_PATH.index(i)
        errs.extend(_check_component_names(component, cpath, seen, i))
        errs.extend(component_name_errors(component, cpath))
        if component.type and component.type not in component_types:
            errs.append(unknown_field(cpath.child("type"), component.type, sorted(component_types)))
        if component.type in component_types:
            errs.extend(
                property_errors(
                    component.type, component.properties, cpath.child("properties"), policy
                )
            )
        trait_errs, trait_warnings = _check_traits(component, cpath, trait_types, component_types)
        errs.extend(trait_errs)
        warnings.extend(trait_warnings)
    return ValidationResult(app if not errs else None, tuple(errs), tuple(warnings))


def _check_component_names(
    component: Component, cpath: FieldPath, seen: dict[str, int], index: int
) -> list[FieldError]:
    errs: list[FieldError] = []
    name = component.name
    if name:
        if not _is_label(name):
            errs.append(fe.invalid(cpath.child("name"), name, _label_detail()))
        elif (
            component.external_revision is None
            and len(name) > DNS1123_LABEL_MAX - REVISION_SUFFIX_ROOM
        ):
            errs.append(
                fe.invalid(
                    cpath.child("name"),
                    name,
                    f"must be no more than {DNS1123_LABEL_MAX - REVISION_SUFFIX_ROOM} characters"
                    " so that <name>-v<N> revision names stay valid (or set externalRevision)",
                )
            )
        if name in seen:
            errs.append(fe.duplicate(cpath.child("name"), name))
        else:
            seen[name] = index
    external = component.external_revision
    if external is not None and not _is_label(external):
        errs.append(fe.invalid(cpath.child("externalRevision"), external, _label_detail()))
    return errs


def _check_traits(
    component: Component,
    cpath: FieldPath,
    trait_types: Collection[str],
    component_types: Collection[str],
) -> tuple[list[FieldError], list[str]]:
    errs: list[FieldError] = []
    warnings: list[str] = []
    rollout_seen = False
    traits_path = cpath.child("traits")
    for j, trait in enumerate(component.traits):
        if not trait.type:
            continue
        # The trait's paths are built where they are used: for the rollout trait, only
        # to report an error or a warning (most reviews have neither).
        if trait.type not in trait_types:
            errs.append(
                unknown_field(traits_path.index(j).child("type"), trait.type, sorted(trait_types))
            )
            continue
        if trait.type != ROLLOUT_TRAIT:
            errs.extend(
                trait_errors(trait.type, trait.properties, traits_path.index(j).child("properties"))
            )
            continue
        if rollout_seen:
            errs.append(fe.duplicate(traits_path.index(j).child("type"), trait.type))
            continue
        rollout_seen = True
        # An unknown component type is reported once, at its own field.
        if component.type in component_types and component.type not in ROLLOUT_WORKLOAD_TYPES:
            allowed = ", ".join(ROLLOUT_WORKLOAD_TYPES)
            errs.append(
                fe.forbidden(
                    traits_path.index(j).child("type"),
                    f"the rollout trait works only on component types {allowed},"
                    f" not {component.type!r}",
                )
            )
        # This is the component's first rollout trait, the one rollout() parses (once, cached).
        # Whether a plan has errors does not depend on its path: re-parse at the real path
        # only to report them.
        plan = component.rollout()
        if plan is None:
            ppath = traits_path.index(j).child("properties")
            errs.extend(parse_rollout_plan(trait.properties, ppath)[1])
        target = trait.properties.get("targetRevision")
        if isinstance(target, str) and target and not _is_label(target):
            errs.append(
                fe.invalid(
                    traits_path.index(j).child("properties", "targetRevision"), target,
                    _label_detail(),
                )
            )
        if plan is not None:
            warnings.extend(_plan_warnings(component, plan, traits_path, j))
    # Unknown types were reported above; they take part in no rule between traits.
    known = [t.type if t.type in trait_types else "" for t in component.traits]
    errs.extend(conflict_errors(known, traits_path))
    return errs, warnings


def _plan_warnings(
    component: Component, plan: RolloutPlan, traits_path: FieldPath, index: int
) -> list[str]:
    """Warnings about the plan of the rollout trait at ``traits_path[index]``."""
    out: list[str] = []
    if plan.target_size == 0:
        ppath = traits_path.index(index).child("properties")
        out.append(
            f"{ppath.child('targetSize')}: 0 scales component {component.name!r} to zero replicas"
        )
    if plan.target_revision is not None and plan.target_revision == component.external_revision:
        ppath = traits_path.index(index).child("properties")
        out.append(
            f"{ppath.child('targetRevision')}: equals externalRevision;"
            " leaving it out has the same effect"
        )
    return out


def _is_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX and DNS1123_LABEL.fullmatch(value) is not None


def _label_detail() -> str:
    return (
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-',"
        " start and end with an alphanumeric character, and be at most 63 characters"
    )


# ---------------------------------------------------------------------------
# rules over observed state


def check_scale(
    plan: RolloutPlan,
    observation: ComponentObservation,
    path: FieldPath,
    *,
    updates_in_place: bool = False,
) -> list[FieldError]:
    """The rules over the run ``plan`` asks for (its target_revision already resolved), at
    ``path``, the rollout trait's properties: where the run starts is decided from the
    Rollout's latest run by the function the controller uses (rules.planned_origin), and
    the batches are judged by rules.run_errors, so what passes here the controller rolls.

    A plan without target_revision is judged as a first deploy: batches add up to
    targetSize. Nothing is checked when the plan rolls nothing (the finished run's
    revision and size). ``updates_in_place``: the component's workload is a CloneSet,
    whose upgrades keep its size.
    """
    return _scale_errors(plan, plan.target_revision, observation, path, updates_in_place)


def _scale_errors(
    plan: RolloutPlan,
    target: str | None,
    observation: ComponentObservation,
    path: FieldPath,
    updates_in_place: bool,
) -> list[FieldError]:
    """check_scale of ``plan`` with ``target`` for its target_revision (no copy of the plan
    made for it: validate_against_state resolves the target of every plan it judges)."""
    if target is None:
        return rules.batch_sum_errors(plan.stated(), plan.target_size, None, path)
    origin = rules.known_origin(
        target, plan.target_size, observation.last_run(), updates_in_place=updates_in_place
    )
    if origin is None:
        return []
    return rules.run_errors(
        plan.stated(), target, plan.target_size, origin, path, updates_in_place=updates_in_place
    )


def check_partition(
    plan: RolloutPlan, observation: ComponentObservation, path: FieldPath
) -> list[FieldError]:
    """batchPartition may not go below the batch already rolling to the same target."""
    return _partition_errors(plan, plan.target_revision, observation, path)


def _partition_errors(
    plan: RolloutPlan, target: str | None, observation: ComponentObservation, path: FieldPath
) -> list[FieldError]:
    """check_partition of ``plan`` with ``target`` for its target_revision."""
    if (
        plan.batch_partition is None
        or target is None
        or observation.rollout_target != target
        or observation.rolling_state != ROLLING_IN_BATCHES
        or observation.current_batch is None
        or plan.batch_partition >= observation.current_batch
    ):
        return []
    return [
        fe.forbidden(
            path.child("batchPartition"),
            f"batch {observation.current_batch} of the rollout to {target}"
            f" has started; batchPartition cannot go below {observation.current_batch}",
        )
    ]


def validate_against_state(
    app: Application, observed: ObservedState, resolved: Mapping[str, ResolvedRevision]
) -> list[FieldError]:
    """Rules that need live state: targetRevision exists, batch sums, partition moves.

    ``resolved`` comes from webhook.core.revisions.resolve_revisions for the same state.
    An empty ObservedState means a first deploy: batches add up to targetSize.
    """
    errs: list[FieldError] = []
    for i, component in enumerate(app.components):
        plan = component.rollout()
        # The rollout trait's index: the plan's trait, found only when there is a plan.
        trait_index = (
            None if plan is None
            else next((j for j, t in enumerate(component.traits) if t.type == ROLLOUT_TRAIT), None)
        )
        rev = resolved.get(component.name)
        if trait_index is None or plan is None or rev is None:
            continue
        # One path, not four steps to it: every plan judged here needs it.
        ppath = FieldPath((*COMPONENTS_PATH.parts, i, "traits", trait_index, "properties"))
        target = plan.target_revision or rev.name
        if plan.target_revision is not None and target != rev.name:
            record = observed.revision_named(target)
            if (
                record is None
                or record.component != component.name
                or record.owner not in ("", app.name)
            ):
                known = [r.name for r in observed.revisions_of(component.name)] + [rev.name]
                errs.append(
                    rules.unknown_revision_error(
                        ppath.child("targetRevision"), target, component.name, known
                    )
                )
                continue
            # A revision kept from before a type change cannot be rolled back to (the
            # controller could only hold a run between two kinds of workload).
            crossing = cross_type_detail(component, record)
            if crossing is not None:
                errs.append(fe.invalid(ppath.child("targetRevision"), target, crossing))
                continue
        # The plan is judged with its target resolved (check_scale and check_partition of
        # the plan with target_revision=target), without copying it.
        observation = observed.component(component.name)
        in_place = component.type in IN_PLACE_TYPES
        errs.extend(_scale_errors(plan, target, observation, ppath, in_place))
        errs.extend(_partition_errors(plan, target, observation, ppath))
    return errs
