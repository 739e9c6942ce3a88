"""The typed model of an OAM Application and of the objects that describe live state.

Holds frozen dataclasses (Application, Component, Trait, RolloutPlan, RolloutBatch)
and the parsers that build them from raw YAML/JSON values, collecting FieldErrors
with exact paths. YAML text is loaded by webhook.core.documents, live objects
(ControllerRevisions, Rollouts) are read by webhook.core.objects. It must not raise on
bad user input, must not decide policy that needs live state (see validation), and
must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from webhook.core import errors as fe
from webhook.core import rules
from webhook.core.errors import FieldError
from webhook.core.labels import APP_API_VERSION, APP_KIND, ROLLOUT_TRAIT
from webhook.core.paths import FieldPath
from webhook.core.shapes import is_int, plain, unknown_field, wrong_type

# The rollout trait's properties, as the spec's parameter table lists them.
ROLLOUT_PROPERTIES = ("targetRevision", "targetSize", "rolloutBatches", "batchPartition")
ROLLOUT_BATCH_PROPERTIES = ("replicas",)

SPEC_PATH = FieldPath.root("spec")
COMPONENTS_PATH = SPEC_PATH.child("components")
# Where Component.rollout() parses its plan; its errors are dropped, so the path is nominal.
ROLLOUT_PROPERTIES_PATH = FieldPath.root("properties")


@dataclass(frozen=True)
class RolloutBatch:
    """One batch of a rollout plan: how many replicas it moves."""

    replicas: int


@dataclass(frozen=True)
class RolloutPlan:
    """The rollout trait's properties, parsed and range-checked."""

    target_size: int
    rollout_batches: tuple[RolloutBatch, ...]
    batch_partition: int | None = None
    target_revision: str | None = None

    def replicas(self) -> tuple[int, ...]:
        """Each batch's replicas, in order."""
        return tuple(b.replicas for b in self.rollout_batches)

    def batch_sum(self) -> int:
        return sum(self.replicas())


@dataclass(frozen=True)
class Trait:
    type: str
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class Component:
    name: str
    type: str
    external_revision: str | None
    properties: Mapping[str, Any]
    traits: tuple[Trait, ...]

    def rollout_trait(self) -> Trait | None:
        """The first rollout trait (validation rejects a second one)."""
        return next((t for t in self.traits if t.type == ROLLOUT_TRAIT), None)

    def rollout(self) -> RolloutPlan | None:
        """The parsed rollout trait, if there is one and it is valid."""
        return self._rollout_plan

    @cached_property
    def _rollout_plan(self) -> RolloutPlan | None:
        # Parsed once per component: one review asks for the plan several times.
        # A cached_property is not a field: equality, repr and replace() ignore it.
        trait = self.rollout_trait()
        if trait is None:
            return None
        plan, errs = parse_rollout_plan(trait.properties, ROLLOUT_PROPERTIES_PATH)
        return None if errs else plan

    def spec(self) -> dict[str, Any]:
        """The component spec a ControllerRevision stores as ``data`` (traits excluded)."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "properties": plain(self.properties),
        }
        if self.external_revision is not None:
            out["externalRevision"] = self.external_revision
        return out


@dataclass(frozen=True)
class Application:
    name: str
    namespace: str
    uid: str
    generation: int
    components: tuple[Component, ...]
    annotations: Mapping[str, str]
    labels: Mapping[str, str]

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)


# ---------------------------------------------------------------------------
# small helpers


def _string_map(raw: object, path: FieldPath, errs: list[FieldError]) -> Mapping[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        errs.append(wrong_type(path, raw, "an object"))
        return {}
    out: dict[str, str] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not isinstance(v, str):
            errs.append(wrong_type(path.key(str(k)), v, "a string"))
            continue
        out[k] = v
    return out


def _optional_string(
    raw: Mapping[str, Any], key: str, path: FieldPath, errs: list[FieldError]
) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errs.append(wrong_type(path.child(key), value, "a string"))
        return None
    return value


def _required_string(
    raw: Mapping[str, Any], key: str, path: FieldPath, errs: list[FieldError]
) -> str:
    value = raw.get(key)
    if value is None or value == "":
        errs.append(fe.required(path.child(key)))
        return ""
    if not isinstance(value, str):
        errs.append(wrong_type(path.child(key), value, "a string"))
        return ""
    return value


def _properties(
    raw: Mapping[str, Any], path: FieldPath, errs: list[FieldError]
) -> Mapping[str, Any]:
    value = raw.get("properties")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errs.append(wrong_type(path.child("properties"), value, "an object"))
        return {}
    copied: Mapping[str, Any] = plain(value)
    return copied


# ---------------------------------------------------------------------------
# the rollout trait


def parse_rollout_plan(
    properties: Mapping[str, Any], path: FieldPath
) -> tuple[RolloutPlan | None, list[FieldError]]:
    """Parse and range-check the rollout trait's properties found at ``path``.

    Checks everything that needs no live state: required fields, exact types and
    unknown keys here, then the ranges of webhook.core.rules (targetSize >= 0, every
    batch >= 1, batchPartition in range). The batch-sum rule needs live state: it is
    applied by webhook.core.validation.
    """
    errs: list[FieldError] = []
    if not isinstance(properties, Mapping):
        return None, [wrong_type(path, properties, "an object")]
    for key in properties:
        if key not in ROLLOUT_PROPERTIES:
            errs.append(unknown_field(path.child(str(key)), key, ROLLOUT_PROPERTIES))

    target_revision = properties.get("targetRevision")
    if target_revision is not None and (
        not isinstance(target_revision, str) or not target_revision
    ):
        errs.append(wrong_type(path.child("targetRevision"), target_revision, "a non-empty string"))
        target_revision = None

    target_size = properties.get("targetSize")
    size_ok = False
    if target_size is None:
        errs.append(fe.required(path.child("targetSize")))
    elif not is_int(target_size):
        errs.append(wrong_type(path.child("targetSize"), target_size, "an integer"))
    else:
        size_errs = rules.target_size_errors(target_size, path)
        errs.extend(size_errs)
        size_ok = not size_errs

    batches: list[RolloutBatch] = []
    batches_ok = False
    raw_batches = properties.get("rolloutBatches")
    bpath = path.child("rolloutBatches")
    if raw_batches is None:
        errs.append(fe.required(bpath))
    elif not isinstance(raw_batches, list | tuple):
        errs.append(wrong_type(bpath, raw_batches, "an array"))
    elif not raw_batches:
        errs.extend(rules.batch_count_errors(0, path))
    else:
        before = len(errs)
        for i, raw_batch in enumerate(raw_batches):
            batch = _parse_batch(raw_batch, path, i, errs)
            if batch is not None:
                batches.append(batch)
        batches_ok = len(errs) == before

    partition = properties.get("batchPartition")
    ppath = path.child("batchPartition")
    if partition is not None:
        if not is_int(partition):
            errs.append(wrong_type(ppath, partition, "an integer"))
        else:
            count = len(batches) if batches_ok else None
            errs.extend(rules.partition_errors(partition, count, path))

    if errs or not size_ok or not batches_ok:
        return None, errs
    assert is_int(target_size)
    return (
        RolloutPlan(
            target_size=int(target_size),
            rollout_batches=tuple(batches),
            batch_partition=partition if is_int(partition) else None,
            target_revision=target_revision,
        ),
        [],
    )


def _parse_batch(
    raw: object, plan: FieldPath, index: int, errs: list[FieldError]
) -> RolloutBatch | None:
    path = plan.child("rolloutBatches").index(index)
    if not isinstance(raw, Mapping):
        errs.append(wrong_type(path, raw, "an object"))
        return None
    for key in raw:
        if key not in ROLLOUT_BATCH_PROPERTIES:
            errs.append(unknown_field(path.child(str(key)), key, ROLLOUT_BATCH_PROPERTIES))
    replicas = raw.get("replicas")
    rpath = path.child("replicas")
    if replicas is None:
        errs.append(fe.required(rpath))
        return None
    if not is_int(replicas):
        errs.append(wrong_type(rpath, replicas, "an integer"))
        return None
    range_errs = rules.batch_replicas_errors(replicas, index, plan)
    errs.extend(range_errs)
    return None if range_errs else RolloutBatch(replicas=replicas)


# ---------------------------------------------------------------------------
# the Application


def parse_application(raw: object) -> tuple[Application | None, list[FieldError]]:
    """Build an Application from a raw object; on any shape error return (None, errors).

    Never raises on bad input. Rules that are not about shape (names, template
    types, the rollout trait's values) are checked by webhook.core.validation.
    """
    app, errs = parse_application_lenient(raw)
    return (None, errs) if errs else (app, errs)


def parse_application_lenient(raw: object) -> tuple[Application | None, list[FieldError]]:
    """Like parse_application, but return a best-effort Application along with errors.

    Components keep their index (a broken one becomes a Component with empty
    name/type), so later checks report the right ``spec.components[i]`` paths.
    Returns None only when the input is not an object at all.
    """
    errs: list[FieldError] = []
    if not isinstance(raw, Mapping):
        return None, [wrong_type(FieldPath(), raw, "an object (an Application document)")]

    api_version = raw.get("apiVersion")
    if api_version is None:
        errs.append(fe.required(FieldPath.root("apiVersion")))
    elif api_version != APP_API_VERSION:
        errs.append(fe.unsupported(FieldPath.root("apiVersion"), api_version, (APP_API_VERSION,)))
    kind = raw.get("kind")
    if kind is None:
        errs.append(fe.required(FieldPath.root("kind")))
    elif kind != APP_KIND:
        errs.append(fe.unsupported(FieldPath.root("kind"), kind, (APP_KIND,)))

    mpath = FieldPath.root("metadata")
    metadata = raw.get("metadata")
    if metadata is None:
        errs.append(fe.required(mpath))
    elif not isinstance(metadata, Mapping):
        errs.append(wrong_type(mpath, metadata, "an object"))
    elif metadata.get("name") in (None, "") and not metadata.get("generateName"):
        errs.append(fe.required(mpath.child("name")))
    if not isinstance(metadata, Mapping):
        metadata = {}
    name = _optional_string(metadata, "name", mpath, errs) or ""
    namespace = _optional_string(metadata, "namespace", mpath, errs) or ""
    uid = _optional_string(metadata, "uid", mpath, errs) or ""
    generation = metadata.get("generation", 0)
    if not is_int(generation):
        errs.append(wrong_type(mpath.child("generation"), generation, "an integer"))
        generation = 0
    annotations = _string_map(metadata.get("annotations"), mpath.child("annotations"), errs)
    labels = _string_map(metadata.get("labels"), mpath.child("labels"), errs)

    components: list[Component] = []
    spec = raw.get("spec")
    if spec is None:
        errs.append(fe.required(SPEC_PATH))
    elif not isinstance(spec, Mapping):
        errs.append(wrong_type(SPEC_PATH, spec, "an object"))
    else:
        raw_components = spec.get("components")
        if raw_components is None:
            errs.append(fe.required(COMPONENTS_PATH))
        elif not isinstance(raw_components, list | tuple):
            errs.append(wrong_type(COMPONENTS_PATH, raw_components, "an array"))
        else:
            for i, raw_component in enumerate(raw_components):
                components.append(_parse_component(raw_component, COMPONENTS_PATH.index(i), errs))

    app = Application(
        name=name,
        namespace=namespace,
        uid=uid,
        generation=int(generation),
        components=tuple(components),
        annotations=annotations,
        labels=labels,
    )
    return app, errs


def _parse_component(raw: object, path: FieldPath, errs: list[FieldError]) -> Component:
    if not isinstance(raw, Mapping):
        errs.append(wrong_type(path, raw, "an object"))
        return Component("", "", None, {}, ())
    name = _required_string(raw, "name", path, errs)
    ctype = _required_string(raw, "type", path, errs)
    external = _optional_string(raw, "externalRevision", path, errs)
    if external == "":
        external = None
    properties = _properties(raw, path, errs)
    traits: list[Trait] = []
    raw_traits = raw.get("traits")
    tpath = path.child("traits")
    if raw_traits is not None:
        if not isinstance(raw_traits, list | tuple):
            errs.append(wrong_type(tpath, raw_traits, "an array"))
        else:
            for j, raw_trait in enumerate(raw_traits):
                traits.append(_parse_trait(raw_trait, tpath.index(j), errs))
    return Component(name, ctype, external, properties, tuple(traits))


def _parse_trait(raw: object, path: FieldPath, errs: list[FieldError]) -> Trait:
    if not isinstance(raw, Mapping):
        errs.append(wrong_type(path, raw, "an object"))
        return Trait("", {})
    ttype = _required_string(raw, "type", path, errs)
    return Trait(ttype, _properties(raw, path, errs))
