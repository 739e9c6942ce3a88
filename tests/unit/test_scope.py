"""Which Applications are ours: shard assignment (hash and pin) and types passed through."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.fixtures.apps import application, application_of, component_fields, rollout_trait
from webhook.core.scope import (
    EVERYTHING,
    LABEL_SHARD,
    UNKNOWN_DENY,
    UNKNOWN_IGNORE,
    Scope,
    Shard,
    assigned_shard,
    identity_shard,
    pass_through_reason,
    pinned_shard,
    shard_errors,
    shard_of,
    unknown_types,
)

COMPONENT_TYPES = frozenset({"webservice", "worker", "cloneset"})
TRAIT_TYPES = frozenset({"rollout", "scaler", "labels", "annotations"})
NAMES = [(f"ns-{i % 7}", f"app-{i}") for i in range(2000)]


def labelled(app: dict[str, Any], **labels: str) -> dict[str, Any]:
    app["metadata"]["labels"] = labels
    return app


def test_the_hash_spreads_applications_evenly_over_the_shards() -> None:
    counts = collections.Counter(shard_of(ns, name, 4) for ns, name in NAMES)
    assert sorted(counts) == [0, 1, 2, 3]
    assert all(400 <= n <= 600 for n in counts.values()), counts


def test_the_hash_is_the_same_in_every_process_whatever_its_hash_seed() -> None:
    script = ("import json, sys; from webhook.core.scope import shard_of; "
              "print(json.dumps([shard_of(ns, n, 5) for ns, n in json.load(sys.stdin)]))")
    here = [shard_of(ns, name, 5) for ns, name in NAMES[:200]]
    seen = []
    for seed in ("1", "2"):
        result = subprocess.run([sys.executable, "-c", script], input=json.dumps(NAMES[:200]),
                                capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONHASHSEED": seed})
        seen.append(json.loads(result.stdout))
    assert seen == [here, here]


def test_one_shard_owns_everything() -> None:
    assert {shard_of(ns, name, 1) for ns, name in NAMES} == {0}


@pytest.mark.parametrize(("value", "shards", "pinned"), [
    ("0", 2, 0),
    ("1", 2, 1),
    ("2", 2, None),  # not a shard of this installation: the hash decides
    ("01", 2, None),
    ("-1", 2, None),
    ("one", 2, None),
    ("", 2, None),
    (None, 2, None),
])
def test_a_shard_label_pins_an_application_when_it_names_a_shard(
    value: str | None, shards: int, pinned: int | None,
) -> None:
    labels = {} if value is None else {LABEL_SHARD: value}
    assert pinned_shard(labels, shards) == pinned


def test_a_pin_overrides_the_hash() -> None:
    ns, name = next((ns, n) for ns, n in NAMES if shard_of(ns, n, 2) == 0)
    assert (assigned_shard(ns, name, {}, 2), assigned_shard(ns, name, {LABEL_SHARD: "1"}, 2),
            assigned_shard(ns, name, {LABEL_SHARD: "7"}, 2)) == (0, 1, 0)


@pytest.mark.parametrize(("shard", "lease", "identity"), [
    (Shard(), "oam-rollout-controller", "pod-a"),
    (Shard(0, 1), "oam-rollout-controller", "pod-a"),
    (Shard(0, 2), "oam-rollout-controller-shard-0", "shard-0/pod-a"),
    (Shard(3, 4), "oam-rollout-controller-shard-3", "shard-3/pod-a"),
])
def test_each_shard_has_its_own_lease_and_its_writes_name_it(
    shard: Shard, lease: str, identity: str,
) -> None:
    assert (shard.lease_name("oam-rollout-controller"), shard.identity("pod-a")) == (
        lease, identity)
    assert identity_shard(shard.identity("pod-a")) == (shard.index if shard.sharded else None)


@pytest.mark.parametrize(("identity", "shard"), [
    ("shard-1/pod", 1), ("pod", None), ("shard-x/pod", None), ("other/pod", None),
])
def test_the_shard_is_read_back_from_an_identity(identity: str, shard: int | None) -> None:
    assert identity_shard(identity) == shard


@pytest.mark.parametrize(("index", "count", "errors"), [
    (0, 1, []),
    (1, 2, []),
    (2, 2, ["--shard-id 2: must be between 0 and 1 (--shards 2)"]),
    (-1, 2, ["--shard-id -1: must be between 0 and 1 (--shards 2)"]),
    (0, 0, ["--shards 0: must be at least 1"]),
])
def test_bad_shard_settings_are_named(index: int, count: int, errors: list[str]) -> None:
    assert shard_errors(index, count) == errors


def test_exactly_one_shard_owns_each_application() -> None:
    shards = [Shard(i, 3) for i in range(3)]
    owners = [[s.index for s in shards if s.owns(ns, name, {})] for ns, name in NAMES]
    assert {len(o) for o in owners} == {1}


UNKNOWN_CASES: dict[str, tuple[dict[str, Any], list[tuple[str, str]]]] = {
    "all known": (application(), []),
    "unknown component type": (application(type="helm"), [("spec.components[0].type", "helm")]),
    "unknown trait type": (
        application_of(component_fields(traits=[rollout_trait(), {"type": "gateway"}])),
        [("spec.components[0].traits[1].type", "gateway")]),
    "unknown in the second component": (
        application_of(component_fields(), component_fields(name="db", type="kustomize",
                                                            traits=None)),
        [("spec.components[1].type", "kustomize")]),
    "no type at all: admission reports it": (application_of(component_fields(type=None)), []),
    "not an object": ({"spec": "nonsense"}, []),
}


@pytest.mark.parametrize(("app", "unknown"), UNKNOWN_CASES.values(), ids=UNKNOWN_CASES.keys())
def test_unknown_types_are_listed_with_their_field(
    app: dict[str, Any], unknown: list[tuple[str, str]],
) -> None:
    assert unknown_types(app, COMPONENT_TYPES, TRAIT_TYPES) == unknown


@pytest.mark.parametrize(("app", "mode", "passes"), [
    (application(type="helm"), UNKNOWN_IGNORE, True),
    (application(type="helm"), UNKNOWN_DENY, False),
    (application(), UNKNOWN_IGNORE, False),
])
def test_only_an_unknown_type_with_ignore_passes_through(
    app: dict[str, Any], mode: Any, passes: bool,
) -> None:
    reason = pass_through_reason(app, COMPONENT_TYPES, TRAIT_TYPES, mode)
    assert (reason is not None) == passes
    if reason is not None:
        assert "spec.components[0].type: 'helm'" in reason and "untouched" in reason


def test_a_scope_owns_its_shard_s_applications_of_known_types() -> None:
    ns, name = next((ns, n) for ns, n in NAMES if shard_of(ns, n, 2) == 1)
    mine = application(name, namespace=ns)
    scopes = [Scope(Shard(i, 2), UNKNOWN_IGNORE, COMPONENT_TYPES, TRAIT_TYPES) for i in (0, 1)]
    cases = {
        "hashed to shard 1": mine,
        "pinned to shard 0": labelled(application(name, namespace=ns), **{LABEL_SHARD: "0"}),
        "unknown type": application(name, namespace=ns, type="helm"),
    }
    assert {what: [s.ours(app) for s in scopes] for what, app in cases.items()} == {
        "hashed to shard 1": [False, True],
        "pinned to shard 0": [True, False],
        "unknown type": [False, False],
    }


def test_the_default_scope_owns_everything() -> None:
    assert EVERYTHING.everything
    assert EVERYTHING.ours(application(type="helm"))
    assert not Scope(Shard(0, 2)).everything
    assert not Scope(unknown=UNKNOWN_IGNORE).everything
