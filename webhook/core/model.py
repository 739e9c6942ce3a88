"""The typed model of an OAM Application and of the objects that describe live state.

Holds frozen dataclasses (Application, Component, Trait; the rollout trait's RolloutPlan
and RolloutBatch come from webhook.core.plans and are re-exported) and the parsers that
build them from raw YAML/JSON values, collecting FieldErrors with exact paths. YAML
text is loaded by webhook.core.documents, live objects (ControllerRevisions, Rollouts)
are read by webhook.core.objects. It must not raise on bad user input, must not decide
policy that needs live state (see validation), and must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core import errors as fe
from webhook.core.errors import FieldError
from webhook.core.labels import (
    APP_API_VERSION,
    APP_KIND,
    POD_TRAITS,
    ROLLOUT_TRAIT,
    SCALER_TRAIT,
)
from webhook.core.paths import FieldPath

# The rollout trait's plan lives in webhook.core.plans; its names are re-exported here,
# where the model's users have always imported them.
from webhook.core.plans import ROLLOUT_BATCH_PROPERTIES as ROLLOUT_BATCH_PROPERTIES
from webhook.core.plans import ROLLOUT_PROPERTIES as ROLLOUT_PROPERTIES
from webhook.core.plans import RolloutBatch as RolloutBatch
from webhook.core.plans import RolloutPlan as RolloutPlan
from webhook.core.plans import parse_rollout_plan as parse_rollout_plan
from webhook.core.shapes import is_int, is_mapping, plain, wrong_type
from webhook.core.traits import scaler_replicas

SPEC_PATH = FieldPath.root("spec")
COMPONENTS_PATH = SPEC_PATH.child("components")
# Built once: every parse passes them down (errors are rare, parses are not).
METADATA_PATH = FieldPath.root("metadata")
_ANNOTATIONS_PATH = METADATA_PATH.child("annotations")
_LABELS_PATH = METADATA_PATH.child("labels")
# Where Component.rollout() parses its plan; its errors are dropped, so the path is nominal.
ROLLOUT_PROPERTIES_PATH = FieldPath.root("properties")
# Where Component.rollout() keeps the plan it parsed, and the mark of "not parsed yet".
_PLAN_ATTRIBUTE = "_rollout_plan"
_NOT_PARSED: Any = object()


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
        # A loop, not next() over a generator: asked a few times per review.
        for trait in self.traits:
            if trait.type == ROLLOUT_TRAIT:
                return trait
        return None

    def scaler_trait(self) -> Trait | None:
        """The first scaler trait (validation rejects a second one, and one beside rollout)."""
        return next((t for t in self.traits if t.type == SCALER_TRAIT), None)

    def scaled_replicas(self) -> int | None:
        """The replicas the scaler trait sets; None without one (a rollout's targetSize, or
        the Kubernetes default, decides)."""
        trait = self.scaler_trait()
        return scaler_replicas(trait.properties) if trait is not None else None

    def pod_traits(self) -> tuple[Trait, ...]:
        """The traits that land in the pod template (labels, annotations), in order: part
        of the component's revision, so a change of them rolls out like any other."""
        return tuple(t for t in self.traits if t.type in POD_TRAITS)

    def rollout(self) -> RolloutPlan | None:
        """The parsed rollout trait, if there is one and it is valid."""
        # Parsed once per component: one review asks for the plan several times. Kept in
        # the instance's __dict__ as functools.cached_property would keep it (not a field:
        # equality, repr and replace() ignore it), without the lock cached_property takes
        # on every first read in Python 3.11; two threads racing parse the same plan.
        found = self.__dict__.get(_PLAN_ATTRIBUTE, _NOT_PARSED)
        if found is _NOT_PARSED:
            found = self.__dict__[_PLAN_ATTRIBUTE] = self._parse_rollout()
        plan: RolloutPlan | None = found
        return plan

    def _parse_rollout(self) -> RolloutPlan | None:
        trait = self.rollout_trait()
        if trait is None:
            return None
        plan, errs = parse_rollout_plan(trait.properties, ROLLOUT_PROPERTIES_PATH)
        return None if errs else plan

    def spec(self) -> dict[str, Any]:
        """The component spec a ControllerRevision stores as ``data``: name, type,
        properties, externalRevision, and the pod traits when there are any (the other
        traits are not part of a revision). Without pod traits it is what it always was,
        so existing revisions keep their hash and their workloads render the same."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "properties": plain(self.properties),
        }
        if self.external_revision is not None:
            out["externalRevision"] = self.external_revision
        pod_traits = self.pod_traits()
        if pod_traits:
            out["traits"] = [
                {"type": t.type, "properties": plain(t.properties)} for t in pod_traits
            ]
        return out

    def revision_content(self) -> dict[str, Any]:
        """What the revision hash covers: type, properties and the pod traits (if any)."""
        out: dict[str, Any] = {"type": self.type, "properties": self.properties}
        pod_traits = self.pod_traits()
        if pod_traits:
            out["traits"] = [{"type": t.type, "properties": t.properties} for t in pod_traits]
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
    if not is_mapping(raw):
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
    if not is_mapping(value):
        errs.append(wrong_type(path.child("properties"), value, "an object"))
        return {}
    copied: Mapping[str, Any] = plain(value)
    return copied


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
    if not is_mapping(raw):
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

    mpath = METADATA_PATH
    metadata = raw.get("metadata")
    if metadata is None:
        errs.append(fe.required(mpath))
    elif not is_mapping(metadata):
        errs.append(wrong_type(mpath, metadata, "an object"))
    elif metadata.get("name") in (None, "") and not metadata.get("generateName"):
        errs.append(fe.required(mpath.child("name")))
    if not is_mapping(metadata):
        metadata = {}
    name = _optional_string(metadata, "name", mpath, errs) or ""
    namespace = _optional_string(metadata, "namespace", mpath, errs) or ""
    uid = _optional_string(metadata, "uid", mpath, errs) or ""
    generation = metadata.get("generation", 0)
    if not is_int(generation):
        errs.append(wrong_type(mpath.child("generation"), generation, "an integer"))
        generation = 0
    annotations = _string_map(metadata.get("annotations"), _ANNOTATIONS_PATH, errs)
    labels = _string_map(metadata.get("labels"), _LABELS_PATH, errs)

    components: list[Component] = []
    spec = raw.get("spec")
    if spec is None:
        errs.append(fe.required(SPEC_PATH))
    elif not is_mapping(spec):
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
    if not is_mapping(raw):
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
    if raw_traits is not None:
        tpath = path.child("traits")
        if not isinstance(raw_traits, list | tuple):
            errs.append(wrong_type(tpath, raw_traits, "an array"))
        else:
            for j, raw_trait in enumerate(raw_traits):
                traits.append(_parse_trait(raw_trait, tpath, j, errs))
    return Component(name, ctype, external, properties, tuple(traits))


def _parse_trait(raw: object, traits: FieldPath, index: int, errs: list[FieldError]) -> Trait:
    """The trait at ``traits[index]``; its path is built only when it has an error."""
    if not is_mapping(raw):
        errs.append(wrong_type(traits.index(index), raw, "an object"))
        return Trait("", {})
    ttype = raw.get("type")
    if type(ttype) is not str or not ttype:
        # What _required_string makes of anything but a non-empty str (errors included).
        ttype = _required_string(raw, "type", traits.index(index), errs)
    properties = raw.get("properties")
    if type(properties) is dict:
        # What _properties makes of an object: a plain copy.
        copied: Mapping[str, Any] = plain(properties)
        return Trait(ttype, copied)
    return Trait(ttype, _properties(raw, traits.index(index), errs))
