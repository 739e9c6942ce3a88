"""What the templates get beyond a spec's own fields: labels, annotations, resolved batches.

Holds the pure builders the Renderer puts into a template's context: ``workload_metadata``
(the labels and annotations of a workload, its pod template and its selector, from the
revision's properties and pod traits) and ``rollout_batches`` (the rollout trait's batches
with percentages resolved, webhook.core.rules). It must not render, must not read files
and must not decide anything about what is live beyond the run record it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core import rules
from webhook.core.labels import (
    ANNOTATIONS_TRAIT,
    LABEL_COMPONENT,
    LABEL_REVISION,
    LABEL_WORKLOAD_TYPE,
    LABELS_TRAIT,
)
from webhook.core.model import Component, Trait
from webhook.core.state import RunRecord


def workload_metadata(
    component_labels: Mapping[str, str],
    spec: Mapping[str, Any],
    properties: Mapping[str, Any],
    revision: str,
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(labels, annotations) of the workload of ``spec`` (ControllerRevision data) at
    ``revision``. ``labels.pod`` is the selector and never more (a selector is immutable);
    ``labels.pod_template`` adds the labels property and the labels trait, which the
    workload's own labels get too; annotations likewise. Without those, every dict is what
    it always was, so the pod template renders byte for byte as before."""
    name = str(spec.get("name", ""))
    trait_labels, trait_annotations = _pod_trait_maps(spec)
    pod = {LABEL_COMPONENT: name, LABEL_REVISION: revision}
    labels = {
        "component": dict(component_labels),
        "workload": {
            **component_labels,
            LABEL_REVISION: revision,
            LABEL_WORKLOAD_TYPE: str(spec.get("type", "")),
            **trait_labels,
        },
        "pod": pod,
        "pod_template": {**pod, **_string_map(properties, "labels"), **trait_labels},
        "selector_component": {LABEL_COMPONENT: name},
    }
    annotations = {
        "workload": trait_annotations,
        "pod_template": {**_string_map(properties, "annotations"), **trait_annotations},
    }
    return labels, annotations


def rollout_batches(
    component: Component, trait: Trait, target_revision: str, last: RunRecord
) -> list[Any]:
    """The batches' replicas the Rollout carries: percentages resolved against the base of
    the run the plan asks for; a plan that does not parse keeps what it states (validation
    has refused it already, this only keeps rendering total)."""
    plan = component.rollout()
    if plan is None:
        batches = trait.properties.get("rolloutBatches")
        return [b.get("replicas") if isinstance(b, Mapping) else None
                for b in (batches if isinstance(batches, list) else [])]
    base = rules.percent_base(target_revision, plan.target_size, last)
    return list(plan.replicas(base))


def _string_map(properties: Mapping[str, Any], key: str) -> dict[str, str]:
    value = properties.get(key)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _pod_trait_maps(spec: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and the annotations the revision's pod traits set (later ones win)."""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    traits = spec.get("traits")
    for trait in traits if isinstance(traits, list) else []:
        if not isinstance(trait, Mapping):
            continue
        target = {LABELS_TRAIT: labels, ANNOTATIONS_TRAIT: annotations}.get(str(trait.get("type")))
        if target is not None:
            target.update(_string_map(trait, "properties"))
    return labels, annotations
