"""The trait-rendering pipeline: Jinja2 templates in, Kubernetes objects (dicts) out.

Holds the template registry (component types from templates/components/*.yaml.j2,
trait types from templates/traits/*.yaml.j2, plus controllerrevision.yaml.j2),
compiled once with StrictUndefined, and the Renderer that builds the context for
each object. Every value reaches YAML through the ``tojson`` filter, so no user
string can inject YAML. It must not do I/O other than reading templates, and
must not validate user input (callers validate first; see webhook.core.validation).

Rendering is a pure function of (template, context): templates have no clock, no I/O
and no randomness. So each Renderer remembers, in a bounded LRU, the objects the last
few contexts rendered to (as JSON text, decoded afresh on every hit so callers never
share or alias a cached object). Admission renders the same specs again and again
(retries, updates that change one component of several, the controller's re-syncs),
and Jinja2 plus the YAML parse of its output was most of the cost of a review.
Admission only needs to know that a component renders, not the objects: ``check_component``
remembers which inputs rendered fine, under one key per component, and skips even the
memo's per-object keys and decoding when it has seen them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml

from webhook.core import rules
from webhook.core.errors import InputError, TemplateError
from webhook.core.labels import (
    APP_API_VERSION,
    APP_KIND,
    IN_PLACE_TYPES,
    LABEL_APP_NAME,
    LABEL_COMPONENT,
    LABEL_CONTROLLER_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_REVISION_HASH,
    MANAGED_BY,
    ROLLOUT_TRAIT,
)
from webhook.core.model import Application, Component, Trait
from webhook.core.revisions import (
    ResolvedRevision,
    resolve_revisions,
    target_revision_name,
)
from webhook.core.shapes import plain
from webhook.core.state import ObservedState, RunRecord
from webhook.render.context import rollout_batches, workload_metadata
from webhook.render.memo import RenderMemo
from webhook.render.templates import (
    COMPONENTS_DIR,
    REVISION_TEMPLATE,
    TEMPLATE_SUFFIX,
    TRAITS_DIR,
    TemplateSet,
    default_templates_dir,
)

# libyaml's safe loader when present: ~9x faster, and admission renders on every review.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Rendered results remembered per Renderer; a few KiB each, so at most ~1-2 MiB.
DEFAULT_CACHE_SIZE = 256


class Renderer:
    """Renders ControllerRevisions, Rollouts and workloads from compiled templates.

    ``templates_dir`` adds (and overrides) templates on top of the built-in ones,
    so users can drop in their own component and trait types; ``builtin=False``
    uses only ``templates_dir``. ``cache_size`` bounds the memo of rendered
    results (0 turns it off).
    """

    def __init__(
        self,
        templates_dir: Path | None = None,
        *,
        builtin: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._memo = RenderMemo(cache_size)
        dirs: list[Path] = []
        if templates_dir is not None:
            if not templates_dir.is_dir():
                raise TemplateError(f"templates directory not found: {templates_dir}")
            dirs.append(templates_dir)
        if builtin or templates_dir is None:
            default = default_templates_dir()
            if default not in dirs:
                dirs.append(default)
        self.templates_dirs: tuple[Path, ...] = tuple(dirs)
        compiled = TemplateSet.compile(dirs)
        self.component_types: frozenset[str] = compiled.component_types
        self.trait_types: frozenset[str] = compiled.trait_types
        self._templates: dict[str, jinja2.Template] = compiled.templates

    # -- the generic step ---------------------------------------------------

    def _render(self, name: str, context: Mapping[str, Any]) -> list[dict[str, Any]]:
        key = self._memo.key(name, context)
        if key is not None:
            cached = self._memo.get(key)
            if cached is not None:
                return cached
        docs = self._render_fresh(name, context)
        if key is not None:
            self._memo.put(key, docs)
        return docs

    def _render_fresh(self, name: str, context: Mapping[str, Any]) -> list[dict[str, Any]]:
        template = self._templates.get(name)
        if template is None:
            raise TemplateError(f"no template {name}")
        try:
            text = template.render(**context)
        except TemplateError as exc:
            raise TemplateError(f"template {name}: {exc}") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {name}: {exc.message or type(exc).__name__}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise TemplateError(f"template {name}: {exc}") from None
        try:
            docs = [d for d in yaml.load_all(text, Loader=_SAFE_LOADER) if d is not None]
        except yaml.YAMLError as exc:
            raise TemplateError(f"template {name} rendered invalid YAML: {exc}") from None
        for doc in docs:
            metadata = doc.get("metadata") if isinstance(doc, dict) else None
            if (
                not isinstance(doc, dict)
                or not doc.get("apiVersion")
                or not doc.get("kind")
                or not isinstance(metadata, dict)
                or not metadata.get("name")
            ):
                raise TemplateError(
                    f"template {name} rendered an object lacking apiVersion, kind or metadata.name"
                )
        return docs

    @staticmethod
    def _base_context(app: Application, component: str) -> dict[str, Any]:
        owner_references = []
        if app.uid:
            owner_references.append(
                {
                    "apiVersion": APP_API_VERSION,
                    "kind": APP_KIND,
                    "name": app.name,
                    "uid": app.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            )
        return {
            "app": {"name": app.name, "namespace": app.namespace},
            "namespace": app.namespace,
            "component": component,
            "owner_references": owner_references,
        }

    # -- admission's check ---------------------------------------------------

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
        """Render what admission applies for ``component``; TemplateError if any fails.

        The ControllerRevision of ``resolved``, the Rollout aiming at ``target_revision``
        when ``with_rollout``, and the workload of ``resolved`` with ``replicas``. Inputs
        that rendered fine before are not rendered again.
        """
        key = self._memo.check_key(
            [
                app.name,
                app.namespace,
                app.uid,
                component.name,
                component.type,
                component.external_revision,
                component.properties,
                [[trait.type, trait.properties] for trait in component.traits],
                resolved.name,
                resolved.number,
                resolved.spec_hash,
                target_revision,
                replicas,
                with_rollout,
            ]
        )
        if key is not None and self._memo.rendered_ok(key):
            return
        self.render_revision(app, component, resolved)
        if with_rollout:
            self.render_rollout(app, component, target_revision)
        self.render_workload(app, component.spec(), resolved.name, replicas)
        if key is not None:
            self._memo.remember_ok(key)

    # -- the objects --------------------------------------------------------

    def render_revision(
        self, app: Application, component: Component, resolved: ResolvedRevision
    ) -> dict[str, Any]:
        """The ControllerRevision for ``resolved``: data = the component spec."""
        context = self._base_context(app, component.name)
        context.update(
            revision=resolved.name,
            revision_number=resolved.number,
            spec=component.spec(),
            labels={
                "revision": {
                    LABEL_CONTROLLER_COMPONENT: component.name,
                    LABEL_COMPONENT: component.name,
                    LABEL_APP_NAME: app.name,
                    LABEL_REVISION_HASH: resolved.spec_hash,
                    LABEL_MANAGED_BY: MANAGED_BY,
                },
            },
        )
        return self._single(REVISION_TEMPLATE, context)

    def render_rollout(
        self,
        app: Application,
        component: Component,
        target_revision: str,
        last: RunRecord | None = None,
    ) -> dict[str, Any]:
        """The Rollout of ``component`` aiming at ``target_revision``; ``last`` is the run
        its live status records (percent batches count from where that run started)."""
        trait = component.rollout_trait()
        if trait is None:
            raise TemplateError(f"component {component.name!r} has no {ROLLOUT_TRAIT} trait")
        docs = self.render_trait(app, component, trait, target_revision, last)
        return docs[0]

    def render_trait(
        self,
        app: Application,
        component: Component,
        trait: Trait,
        target_revision: str,
        last: RunRecord | None = None,
    ) -> list[dict[str, Any]]:
        """Whatever objects the trait's template renders (a Rollout for ``rollout``; the
        scaler, labels and annotations traits render none: they shape the workload).

        The rollout trait's template gets ``rollout_batches``, each batch's replicas with
        percentages resolved (rules.percent_base against ``last``, the live Rollout's run):
        the Rollout carries numbers, the ones admission checked.
        """
        context = self._base_context(app, component.name)
        context.update(
            target_revision=target_revision,
            component_type=component.type,
            properties=plain(trait.properties),
            component_properties=plain(component.properties),
            labels={"component": self._component_labels(app, component.name)},
        )
        if trait.type == ROLLOUT_TRAIT:
            context["rollout_batches"] = rollout_batches(
                component, trait, target_revision, last or RunRecord()
            )
        return self._render(f"{TRAITS_DIR}/{trait.type}{TEMPLATE_SUFFIX}", context)

    def render_workload(
        self,
        app: Application,
        spec: Mapping[str, Any],
        revision_name: str,
        replicas: int | None,
    ) -> list[dict[str, Any]]:
        """The workload of one revision ([0]), then e.g. its Service.

        ``spec`` is ControllerRevision data: {name, type, properties, and traits when
        the labels or annotations traits were set}. ``replicas`` None leaves replicas out
        (the Kubernetes default applies).

        Labels: ``labels.pod`` is the selector (never more: a selector is immutable);
        ``labels.pod_template`` adds the labels property and the labels trait, which the
        workload's own labels get too. Annotations likewise (``annotations.workload``,
        ``annotations.pod_template``). Without those the pod template is what it was.
        """
        name = str(spec.get("name", ""))
        ctype = str(spec.get("type", ""))
        if ctype not in self.component_types:
            raise TemplateError(f"no template for component type {ctype!r}")
        properties = plain(spec.get("properties") or {})
        labels, annotations = workload_metadata(
            self._component_labels(app, name), spec, properties, revision_name
        )
        context = self._base_context(app, name)
        context.update(
            component_type=ctype,
            revision=revision_name,
            replicas=replicas,
            properties=properties,
            labels=labels,
            annotations=annotations,
        )
        docs = self._render(f"{COMPONENTS_DIR}/{ctype}{TEMPLATE_SUFFIX}", context)
        if not docs:
            raise TemplateError(f"template for component type {ctype!r} rendered nothing")
        return docs

    def render_application(self, app: Application, observed: ObservedState) -> list[dict[str, Any]]:
        """Everything a validated Application needs given ``observed``, as the rollout plans end.

        Per component: its ControllerRevision, its traits' objects (the Rollout), then
        the workload of the target revision with the replicas the plan ends at; when a
        batchPartition stops an upgrade halfway, the source revision's workload too (a
        CloneSet updated in place: its whole size, the pods not yet released held by
        ``updateStrategy.partition``). Where the run starts is decided from the live
        Rollout by the rules admission and the controller use (rules.known_origin).
        """
        resolved, errs = resolve_revisions(app, observed)
        if errs:
            raise InputError("; ".join(str(e) for e in errs))
        out: list[dict[str, Any]] = []
        for component in app.components:
            rev = resolved[component.name]
            target = target_revision_name(component, rev)
            out.append(self.render_revision(app, component, rev))
            last = observed.component(component.name).last_run()
            for trait in component.traits:
                out.extend(self.render_trait(app, component, trait, target, last))
            out.extend(self._planned_workloads(app, component, rev, target, observed))
        return _unique(out)

    def _planned_workloads(
        self,
        app: Application,
        component: Component,
        rev: ResolvedRevision,
        target: str,
        observed: ObservedState,
    ) -> list[dict[str, Any]]:
        target_spec = self._revision_spec(component, rev, target, observed)
        plan = component.rollout()
        if plan is None:
            return self.render_workload(app, target_spec, target, component.scaled_replicas())
        in_place = component.type in IN_PLACE_TYPES
        last = observed.component(component.name).last_run()
        # The batches as the Rollout carries them (percentages resolved).
        batches = plan.replicas(rules.percent_base(target, plan.target_size, last))
        # Where the run starts, by the rules admission and the controller share.
        origin = rules.known_origin(
            target, plan.target_size, last, updates_in_place=in_place,
        )
        if origin is None:  # the run finished: the target runs everything
            return self.render_workload(app, target_spec, target, plan.target_size)
        scale = bool(origin.source) and origin.source == target
        if origin.original is None and (scale or (in_place and origin.source)):
            # Validation refuses these changes; say why rather than guess at live replicas.
            rolling = origin.unfinished.target if origin.unfinished else origin.source
            raise InputError(
                f"component {component.name!r}: the rollout to {rolling} has not finished and"
                " this change starts a new run from the replicas it left, which the live"
                " state given does not show"
            )
        if in_place and origin.source and not scale:
            # A CloneSet updated in place: all its pods, the batches not yet released held
            # back on the old template by the partition, as the controller sets it.
            docs = self.render_workload(app, target_spec, target, plan.target_size)
            held = 0
            if plan.batch_partition is not None:
                released = rules.cumulative(batches, plan.batch_partition)
                held = max(0, plan.target_size - released)
            if held:
                strategy = docs[0].setdefault("spec", {}).setdefault("updateStrategy", {})
                strategy["partition"] = held
            return docs
        replicas = rules.planned_replicas(
            batches, plan.batch_partition, plan.target_size,
            origin.original if scale else None,
        )
        docs = self.render_workload(app, target_spec, target, replicas)
        source = origin.source
        if plan.batch_partition is not None and source not in ("", target) and (
            replicas < plan.target_size
        ):
            record = observed.revision_named(source)
            if record is not None and record.component == component.name:
                source_spec = {**record.data, "name": component.name}
                docs += self.render_workload(app, source_spec, source, plan.target_size - replicas)
        return docs

    @staticmethod
    def _revision_spec(
        component: Component, rev: ResolvedRevision, target: str, observed: ObservedState
    ) -> Mapping[str, Any]:
        if target == rev.name:
            return component.spec()
        record = observed.revision_named(target)
        if record is None or record.component != component.name:
            raise InputError(
                f"component {component.name!r}: target revision {target!r} does not exist"
            )
        # The component's own name wins over whatever name the stored data carries.
        return {**record.data, "name": component.name}

    @staticmethod
    def _component_labels(app: Application, component: str) -> dict[str, str]:
        """Object metadata labels (pod templates and selectors get their own dicts)."""
        return {LABEL_COMPONENT: component, LABEL_APP_NAME: app.name,
                LABEL_MANAGED_BY: MANAGED_BY}

    def _single(self, name: str, context: Mapping[str, Any]) -> dict[str, Any]:
        docs = self._render(name, context)
        if len(docs) != 1:
            raise TemplateError(f"template {name} must render exactly one object, got {len(docs)}")
        return docs[0]


# One encoder for every memo key: json.dumps with options builds a new one per call.
def _unique(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop later objects with the same apiVersion, kind and name (a CloneSet serves
    every revision, and a Service is shared by all of them)."""
    seen: set[tuple[str, str, str, str]] = set()
    out: list[dict[str, Any]] = []
    for doc in docs:
        meta = doc.get("metadata") or {}
        key = (
            str(doc.get("apiVersion")),
            str(doc.get("kind")),
            str(meta.get("namespace", "")),
            str(meta.get("name")),
        )
        if key not in seen:
            seen.add(key)
            out.append(doc)
    return out
