"""The typed model of an OAM Application and of the objects that describe live state.

Holds frozen dataclasses (Application, Component, Trait, RolloutPlan, RolloutBatch)
and the parsers that build them from raw YAML/JSON values, collecting FieldErrors
with exact paths. Also turns ControllerRevision / Rollout documents (as `kubectl get
-o yaml` prints them) into the plain values of webhook.core.state. It must not raise on
bad user input, must not decide policy that needs live state (see validation), and
must not do I/O beyond parsing text it is handed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeGuard

import yaml

from webhook.core import errors as fe
from webhook.core.errors import FieldError, InputError
from webhook.core.labels import (
    APP_API_VERSION,
    APP_KIND,
    LABEL_CONTROLLER_COMPONENT,
    LABEL_REVISION_HASH,
    ROLLOUT_KIND,
    ROLLOUT_SUCCEED,
    ROLLOUT_TRAIT,
)
from webhook.core.paths import FieldPath
from webhook.core.state import ComponentObservation, ObservedState, RevisionRecord

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

    def batch_sum(self) -> int:
        return sum(b.replicas for b in self.rollout_batches)


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


def plain(value: Any) -> Any:
    """A deep copy in plain dicts (string keys) and lists, so values never alias caller data.

    Plain containers, not read-only proxies, on purpose: callers json.dumps and
    deepcopy them; the Mapping type hints already say "do not mutate".
    """
    # Exact JSON types first (one type() lookup each, no isinstance walk): parsed specs
    # are strings and numbers in plain dicts and lists. Subclasses take the slow path.
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): plain(v) for k, v in value.items()}
    if kind is list:
        return [plain(v) for v in value]
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, dict | Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def is_int(value: object) -> TypeGuard[int]:
    """An integer that is really one: a bool is not, "2" is not."""
    return isinstance(value, int) and not isinstance(value, bool)


def type_name(value: object) -> str:
    """The JSON type name of a value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def wrong_type(path: FieldPath, value: object, expected: str) -> FieldError:
    return fe.invalid(path, value, f"must be {expected}, not {type_name(value)}")


def unknown_field(path: FieldPath, key: object, allowed: Sequence[str]) -> FieldError:
    """An unsupported key, with a hint when it looks like a typo of an allowed one."""
    error = fe.unsupported(path, str(key), tuple(allowed))
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.75)
    if not close:
        return error
    return fe.FieldError(error.type, path, f'did you mean "{close[0]}"? {error.detail}', str(key))


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

    Checks everything that needs no live state: required fields, exact types,
    unknown keys, targetSize >= 0, every batch >= 1, batchPartition in range.
    The batch-sum rule needs live state and lives in webhook.core.validation.
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
    elif target_size < 0:
        errs.append(
            fe.invalid(path.child("targetSize"), target_size, "must be greater than or equal to 0")
        )
    else:
        size_ok = True

    batches: list[RolloutBatch] = []
    batches_ok = False
    raw_batches = properties.get("rolloutBatches")
    bpath = path.child("rolloutBatches")
    if raw_batches is None:
        errs.append(fe.required(bpath))
    elif not isinstance(raw_batches, list | tuple):
        errs.append(wrong_type(bpath, raw_batches, "an array"))
    elif not raw_batches:
        errs.append(fe.required(bpath, "must have at least one batch"))
    else:
        before = len(errs)
        for i, raw_batch in enumerate(raw_batches):
            batch = _parse_batch(raw_batch, bpath.index(i), errs)
            if batch is not None:
                batches.append(batch)
        batches_ok = len(errs) == before

    partition = properties.get("batchPartition")
    ppath = path.child("batchPartition")
    if partition is not None:
        if not is_int(partition):
            errs.append(wrong_type(ppath, partition, "an integer"))
        elif partition < 0:
            errs.append(fe.invalid(ppath, partition, "must be greater than or equal to 0"))
        elif batches_ok and partition > len(batches) - 1:
            errs.append(
                fe.invalid(
                    ppath,
                    partition,
                    f"must be less than or equal to {len(batches) - 1}"
                    f" (the index of the last of {len(batches)} rolloutBatches)",
                )
            )

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


def _parse_batch(raw: object, path: FieldPath, errs: list[FieldError]) -> RolloutBatch | None:
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
    if replicas < 1:
        errs.append(fe.invalid(rpath, replicas, "must be greater than 0"))
        return None
    return RolloutBatch(replicas=replicas)


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


# ---------------------------------------------------------------------------
# documents: YAML text in, plain objects out


def load_documents(text: str) -> list[object]:
    """Every document of a YAML (or JSON) stream, empty documents dropped.

    A ``kind: List`` document is expanded into its items. Raises InputError with
    a one-line message when the text is not YAML.
    """
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise InputError(f"not valid YAML{where}: {problem}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        # safe_load can still fail on odd scalars (e.g. bad timestamps); keep it one line.
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"not valid YAML: {detail}") from None
    out: list[object] = []
    for doc in docs:
        if doc is None:
            continue
        _check_size(doc)
        if (
            isinstance(doc, Mapping)
            and doc.get("kind") == "List"
            and isinstance(doc.get("items"), list)
        ):
            out.extend(item for item in doc["items"] if item is not None)
        else:
            out.append(doc)
    return out


# Aliases let a few lines of YAML stand for a huge (or endless) tree; cap the walk.
MAX_NODES = 200_000


def _check_size(doc: object) -> None:
    """InputError for a document that refers to itself or expands past MAX_NODES values."""
    seen = 0
    stack: list[tuple[object, frozenset[int]]] = [(doc, frozenset())]
    while stack:
        value, ancestors = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise InputError(f"document expands to more than {MAX_NODES} values (YAML aliases?)")
        if isinstance(value, Mapping):
            children: list[object] = list(value.values())
        elif isinstance(value, list):
            children = list(value)
        else:
            continue
        if id(value) in ancestors:
            raise InputError("document refers to itself through a YAML alias")
        inner = ancestors | {id(value)}
        stack.extend((child, inner) for child in children)


def is_application(doc: object) -> bool:
    return isinstance(doc, Mapping) and doc.get("kind") == APP_KIND


def revision_record(obj: Mapping[str, Any]) -> RevisionRecord | None:
    """A RevisionRecord from a ControllerRevision object, None if it is not one of ours."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    labels = metadata.get("labels") or {}
    name = metadata.get("name")
    if not isinstance(labels, Mapping) or not isinstance(name, str):
        return None
    component = labels.get(LABEL_CONTROLLER_COMPONENT)
    number = obj.get("revision")
    if not isinstance(component, str) or not is_int(number):
        return None
    data = obj.get("data")
    owner = next(
        (
            str(ref.get("name", ""))
            for ref in metadata.get("ownerReferences") or ()
            if isinstance(ref, Mapping) and ref.get("controller")
        ),
        "",
    )
    return RevisionRecord(
        name=name,
        component=component,
        number=int(number),
        spec_hash=str(labels.get(LABEL_REVISION_HASH, "")),
        data=plain(data) if isinstance(data, Mapping) else {},
        owner=owner,
    )


def rollout_observation(obj: Mapping[str, Any]) -> tuple[str, ComponentObservation] | None:
    """(component name, observation) from a Rollout object, None if it has no name."""
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str):
        return None
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(spec, Mapping) and isinstance(status, Mapping)

    def text(m: Mapping[str, Any], key: str) -> str | None:
        v = m.get(key)
        return v if isinstance(v, str) and v else None

    def number(m: Mapping[str, Any], key: str) -> int | None:
        v = m.get(key)
        return int(v) if is_int(v) else None

    rolling = text(status, "rollingState")
    settled = rolling == ROLLOUT_SUCCEED
    return name, ComponentObservation(
        current_revision=text(status, "lastTargetRevision"),
        current_size=number(status, "rolloutTargetSize") if settled else None,
        current_batch=number(status, "currentBatch"),
        rolling_state=rolling,
        batch_rolling_state=text(status, "batchRollingState"),
        rollout_target=text(spec, "targetRevisionName"),
    )


def observed_state_from_documents(docs: list[object], namespace: str = "default") -> ObservedState:
    """ObservedState from ControllerRevision and Rollout objects; other kinds are ignored.

    This is how `oam-rollout render/validate --revisions FILE` learn what is live
    without a cluster (FILE as printed by `kubectl get controllerrevision,rollout -o yaml`).
    """
    revisions: list[RevisionRecord] = []
    components: dict[str, ComponentObservation] = {}
    for doc in docs:
        if not isinstance(doc, Mapping):
            continue
        if doc.get("kind") == "ControllerRevision":
            record = revision_record(doc)
            if record is not None:
                revisions.append(record)
        elif doc.get("kind") == ROLLOUT_KIND:
            found = rollout_observation(doc)
            if found is not None:
                components[found[0]] = found[1]
    return ObservedState(namespace=namespace, revisions=tuple(revisions), components=components)
