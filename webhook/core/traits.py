"""The traits beside rollout: scaler, labels and annotations, and the rules between traits.

Holds the property checks of the three patch traits (KubeVela's parameters: scaler
``replicas``, default 1; labels and annotations a map of strings), ``trait_errors`` for
one trait's properties, and ``conflict_errors`` for one component's traits taken
together: a built-in trait at most once, and never scaler beside rollout (both would set
the replicas). The rollout trait's own properties are webhook.core.model's. It must not
know about live state and must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core import errors as fe
from webhook.core.checkers import Checker, check_fields, integer
from webhook.core.errors import FieldError
from webhook.core.labels import ANNOTATIONS_TRAIT, LABELS_TRAIT, ROLLOUT_TRAIT, SCALER_TRAIT
from webhook.core.paths import FieldPath
from webhook.core.podfields import annotations_map, labels_map

# KubeVela's scaler: replicas: *1 | int.
SCALER_DEFAULT_REPLICAS = 1
# Traits that may appear once per component (a second rollout is validation's own error).
PATCH_TRAITS = (SCALER_TRAIT, LABELS_TRAIT, ANNOTATIONS_TRAIT)


def _scaler(value: Any, path: FieldPath) -> list[FieldError]:
    return check_fields(value, {"replicas": (integer(0), False)}, path)


_PROPERTIES: dict[str, Checker] = {
    SCALER_TRAIT: _scaler,
    LABELS_TRAIT: labels_map,
    ANNOTATIONS_TRAIT: annotations_map,
}


def trait_errors(
    trait_type: str, properties: Mapping[str, Any], path: FieldPath
) -> list[FieldError]:
    """Errors in the properties (at ``path``) of a scaler, labels or annotations trait."""
    check = _PROPERTIES.get(trait_type)
    return check(properties, path) if check is not None else []


def conflict_errors(trait_types: list[str], traits_path: FieldPath) -> list[FieldError]:
    """Rules over a component's traits (their types in order, at ``traits_path``)."""
    errs: list[FieldError] = []
    seen: set[str] = set()
    for j, ttype in enumerate(trait_types):
        if ttype in PATCH_TRAITS and ttype in seen:
            # The path only for an error: every component of every review comes here.
            errs.append(fe.duplicate(traits_path.index(j).child("type"), ttype))
        seen.add(ttype)
    if ROLLOUT_TRAIT in seen and SCALER_TRAIT in seen:
        j = trait_types.index(SCALER_TRAIT)
        errs.append(
            fe.forbidden(
                traits_path.index(j).child("type"),
                "scaler may not be used with the rollout trait: the rollout's targetSize"
                " sets the replicas of this component",
            )
        )
    return errs


def scaler_replicas(properties: Mapping[str, Any]) -> int:
    """The replicas a (valid) scaler trait asks for."""
    replicas = properties.get("replicas")
    return replicas if isinstance(replicas, int) else SCALER_DEFAULT_REPLICAS
