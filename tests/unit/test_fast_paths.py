"""The quick paths admission takes on every review give what the thorough ones give.

A well-formed rollout plan is read in one pass (webhook.core.plans.well_formed_plan),
field paths are extended without the dataclass __init__, ``plain`` keeps leaves without
a call (so spec_hash, which copies with it, must hash as it always did), ``is_mapping``
answers a dict without the ABC, and an Invalid answer renders each error once: each is
checked here against the general path over generated inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.apps import SPEC_PLAN
from tests.fixtures.webhook import admission_review
from webhook.admission.reviews import invalid, parse_review
from webhook.core import errors as fe
from webhook.core.checkers import INT32_MAX
from webhook.core.paths import FieldPath
from webhook.core.plans import parse_rollout_plan, parse_rollout_plan_fully, well_formed_plan
from webhook.core.revisions import spec_hash
from webhook.core.shapes import is_mapping, plain

PATH = FieldPath.root("spec", "components").index(0).child("traits").index(1).child("properties")

EDGES = [0, 1, 2, 3, -1, INT32_MAX, INT32_MAX + 1, 2**64]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 6),
    st.sampled_from(EDGES),
    st.floats(allow_nan=False),
    st.sampled_from(["20%", "50%", "100%", "0%", "101%", "", "v1", "é"]),
    st.text(max_size=3),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    | st.tuples(inner),
    max_leaves=6,
)
SIZES = st.integers(-1, 6) | st.sampled_from(EDGES)
BATCH = st.one_of(
    st.fixed_dictionaries({"replicas": SIZES}),
    st.fixed_dictionaries({"replicas": SCALARS}),
    st.dictionaries(st.sampled_from(["replicas", "replica", "x"]), SCALARS, max_size=2),
    SCALARS,
)
# The shape the fast path takes, every field towards its edges (and past them).
IN_RANGE = st.integers(1, 6) | st.just(INT32_MAX)
PLANS = st.fixed_dictionaries(
    {"targetSize": IN_RANGE | st.just(0),
     "rolloutBatches": st.lists(st.fixed_dictionaries({"replicas": IN_RANGE}), max_size=4)},
    optional={
        "batchPartition": st.integers(0, 3),
        "targetRevision": st.sampled_from(["express-server-v2", ""]),
        "paused": st.booleans(),
    },
)


ODD = st.sampled_from(EDGES) | SCALARS


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A plan of that shape, or one with a field, a batch, a batch's keys or the plan's
    keys made odd: an edge (0, -1, int32 and past it) or any scalar (bools, floats,
    percentages, strings)."""
    plan: dict[str, Any] = draw(PLANS)
    how = draw(st.sampled_from(["field", "field", "batch", "batch", "batch key", "key", "none"]))
    if how == "field":
        plan[draw(st.sampled_from(sorted(plan)))] = draw(ODD)
    elif how == "batch" and plan["rolloutBatches"]:
        batches = plan["rolloutBatches"]
        batches[draw(st.integers(0, len(batches) - 1))] = draw(
            st.fixed_dictionaries({"replicas": ODD}) | BATCH
        )
    elif how == "batch key" and plan["rolloutBatches"]:
        batch = draw(st.sampled_from(plan["rolloutBatches"]))
        batch[draw(st.sampled_from(["replica", "x"]))] = draw(SCALARS)
    elif how == "key":
        plan[draw(st.sampled_from(["tagetSize", "replicas", "paused"]))] = draw(SCALARS)
    return plan


NEAR_VALID = near_valid()
ANY_PROPERTIES = st.one_of(
    NEAR_VALID,
    st.dictionaries(
        st.sampled_from(["targetSize", "rolloutBatches", "batchPartition", "targetRevision",
                         "paused", "replicas"]),
        VALUES,
        max_size=5,
    ),
    NEAR_VALID.map(lambda d: MappingProxyType(d)),
    VALUES,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(properties=ANY_PROPERTIES)
def test_a_plan_parses_the_same_with_or_without_the_one_pass_read(properties: Any) -> None:
    assert parse_rollout_plan(properties, PATH) == parse_rollout_plan_fully(properties, PATH)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(properties=NEAR_VALID)
def test_the_one_pass_read_gives_a_plan_only_where_the_full_parse_finds_no_error(
    properties: dict[str, Any],
) -> None:
    fast = well_formed_plan(properties)
    plan, errors = parse_rollout_plan_fully(properties, PATH)
    if fast is not None:
        assert (fast, errors) == (plan, [])


def test_the_spec_plan_and_its_variants_take_the_one_pass_read() -> None:
    plans = [
        dict(SPEC_PLAN),
        {**SPEC_PLAN, "batchPartition": 1, "targetRevision": "express-server-v2", "paused": True},
        {"targetSize": INT32_MAX, "rolloutBatches": [{"replicas": INT32_MAX}]},
    ]
    for properties in plans:
        fast = well_formed_plan(properties)
        assert fast is not None
        assert (fast, []) == parse_rollout_plan_fully(properties, PATH)


@given(parts=st.lists(st.text(max_size=3) | st.integers(0, 20), max_size=5),
       name=st.text(max_size=3), more=st.lists(st.text(max_size=3), max_size=2),
       index=st.integers(0, 20), key=st.text(max_size=3))
def test_an_extended_path_is_the_path_of_its_parts(
    parts: list[str | int], name: str, more: list[str], index: int, key: str
) -> None:
    base = FieldPath(tuple(parts))
    built = [base.child(name, *more), base.index(index), base.key(key)]
    expected = [
        FieldPath((*parts, name, *more)),
        FieldPath((*parts, index)),
        FieldPath((*parts, f"[{key}]")),
    ]
    assert built == expected
    assert [hash(p) for p in built] == [hash(p) for p in expected]
    assert [(str(p), repr(p)) for p in built] == [(str(p), repr(p)) for p in expected]


def reference_plain(value: Any) -> Any:
    """plain() as it was written first: one call per value."""
    if isinstance(value, str | int | float) or value is None:
        return value
    if isinstance(value, dict | Mapping):
        return {str(k) if type(k) is not str else k: reference_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reference_plain(v) for v in value]
    return value


class Label(str):
    """A str subclass, as YAML loaders and enums make them."""


JSONISH = st.recursive(
    SCALARS | st.builds(Label, st.text(max_size=3)),
    lambda inner: st.lists(inner, max_size=3)
    | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=3) | st.integers(0, 3) | st.booleans(), inner, max_size=3)
    | st.dictionaries(st.text(max_size=3), inner, max_size=2).map(MappingProxyType),
    max_leaves=10,
)


@given(value=JSONISH)
def test_plain_copies_as_the_call_per_value_copy_does(value: Any) -> None:
    copied = plain(value)
    assert copied == reference_plain(value)
    assert repr(copied) == repr(reference_plain(value))


def reference_spec_hash(spec: Mapping[str, Any]) -> str:
    """spec_hash with the call-per-value copy: what every stored revision carries."""
    content = {
        "type": reference_plain(spec.get("type", "")),
        "properties": reference_plain(spec.get("properties") or {}),
    }
    if spec.get("traits"):
        content["traits"] = reference_plain(spec["traits"])
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


HASHED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
    | st.builds(Label, st.text(max_size=3)),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    | st.dictionaries(st.integers(0, 3) | st.booleans(), inner, max_size=2)
    | st.tuples(inner),
    max_leaves=12,
)


@settings(max_examples=400)
@given(spec=st.fixed_dictionaries(
    {"type": st.text(max_size=5) | HASHED, "properties": HASHED},
    optional={"traits": HASHED, "name": st.text(max_size=3)},
))
def test_a_spec_hashes_as_it_always_did(spec: dict[str, Any]) -> None:
    assert spec_hash(spec) == reference_spec_hash(spec)


@given(value=JSONISH)
def test_is_mapping_is_isinstance_of_mapping(value: Any) -> None:
    assert is_mapping(value) == isinstance(value, Mapping)


ERRORS = st.lists(
    st.builds(
        fe.FieldError,
        st.sampled_from(list(fe.ErrorType)),
        st.builds(FieldPath, st.lists(st.text(max_size=4) | st.integers(0, 3), max_size=4)
                  .map(tuple)),
        st.text(max_size=8),
        VALUES,
    )
    | st.builds(fe.required, st.just(PATH), st.text(max_size=5)),
    min_size=1,
    max_size=3,
)


@given(errors=ERRORS)
def test_an_invalid_answer_lists_each_error_as_str_prints_it(errors: list[fe.FieldError]) -> None:
    request = parse_review(admission_review({"metadata": {"name": "app"}}))
    status = invalid(request, errors)["response"]["status"]
    listed = [str(e) for e in errors]
    body = listed[0] if len(listed) == 1 else "[" + ", ".join(listed) + "]"
    assert status["message"] == f'Application.core.oam.dev "app" is invalid: {body}'
    assert status["details"]["causes"] == [
        {"reason": e.type.reason, "message": str(e)[len(str(e.path)) + 2:], "field": str(e.path)}
        for e in errors
    ]
