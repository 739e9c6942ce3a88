"""The pure admission function: every verdict and every error channel, without HTTP or a cluster."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import pytest

from tests.fixtures.apps import application
from tests.fixtures.webhook import StubRenderer, admission_review
from webhook.admission.judge import (
    annotation_patch,
    judge,
    mutate,
    review,
    revisions_annotation,
    validate,
)
from webhook.admission.reviews import BadReview, parse_review
from webhook.core.errors import ApiError, ErrorType
from webhook.core.labels import ANNOTATION_REVISIONS, ROLLING_IN_BATCHES, ROLLOUT_SUCCEED
from webhook.core.model import parse_application
from webhook.core.revisions import spec_hash
from webhook.core.state import ComponentObservation, ObservedState, RevisionRecord

TRAIT = "spec.components[0].traits[0].properties"


@dataclass
class Reader:
    """A state reader that returns a fixed state (or fails) and counts its calls."""

    state: ObservedState = field(default_factory=ObservedState)
    error: str | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    rollouts: list[bool] = field(default_factory=list)

    def __call__(self, namespace: str, name: str, *, rollouts: bool = True) -> ObservedState:
        self.calls.append((namespace, name))
        self.rollouts.append(rollouts)
        if self.error is not None:
            raise ApiError("GET", "/apis/apps/v1/namespaces/default/controllerrevisions", 503,
                           self.error)
        return self.state


def revision(app: dict[str, Any], name: str, number: int, owner: str = "") -> RevisionRecord:
    """The ControllerRevision the controller would have recorded for ``app``'s component."""
    parsed, errors = parse_application(app)
    assert parsed is not None, errors
    component = parsed.components[0]
    return RevisionRecord(
        name=name,
        component=component.name,
        number=number,
        spec_hash=spec_hash(component.spec()),
        data=component.spec(),
        owner=owner or parsed.name,
    )


def settled(revision_name: str, size: int) -> ComponentObservation:
    return ComponentObservation(
        current_revision=revision_name,
        current_size=size,
        current_batch=1,
        rolling_state=ROLLOUT_SUCCEED,
        batch_rolling_state="batchReady",
        rollout_target=revision_name,
    )


V1_APP = application()
V2_APP = application(
    image="stefanprodan/podinfo:5.0.2",
    external_revision="express-server-v2",
    rollout={
        "targetSize": 5,
        "batchPartition": 0,
        "rolloutBatches": [{"replicas": 2}, {"replicas": 3}],
    },
)
V2_FULL = application(image="stefanprodan/podinfo:5.0.2", external_revision="express-server-v2")


def rolled_back(size: int, batches: list[int]) -> dict[str, Any]:
    return application(
        image="stefanprodan/podinfo:5.0.2",
        external_revision="express-server-v2",
        rollout={
            "targetRevision": "express-server-v1",
            "targetSize": size,
            "rolloutBatches": [{"replicas": n} for n in batches],
        },
    )


REV_V1 = revision(V1_APP, "express-server-v1", 1)
REV_V2 = revision(V2_APP, "express-server-v2", 2)
BOTH = (REV_V1, REV_V2)

# The spec's walkthrough: each Application with what is live when it is applied.
SPEC_STEPS = [
    ("first deploy", V1_APP, ObservedState()),
    (
        "upgrade the first batch",
        V2_APP,
        ObservedState(revisions=(REV_V1,), components={"express-server": settled(REV_V1.name, 5)}),
    ),
    (
        "upgrade the rest",
        V2_FULL,
        ObservedState(
            revisions=BOTH,
            components={
                "express-server": ComponentObservation(
                    current_revision=REV_V2.name,
                    current_batch=0,
                    rolling_state=ROLLING_IN_BATCHES,
                    batch_rolling_state="batchReady",
                    rollout_target=REV_V2.name,
                )
            },
        ),
    ),
    (
        "roll back",
        rolled_back(5, [2, 3]),
        ObservedState(revisions=BOTH, components={"express-server": settled(REV_V2.name, 5)}),
    ),
    (
        "scale out 5 to 7",
        rolled_back(7, [1, 1]),
        ObservedState(revisions=BOTH, components={"express-server": settled(REV_V1.name, 5)}),
    ),
    (
        "scale in 7 to 3",
        rolled_back(3, [1, 3]),
        ObservedState(revisions=BOTH, components={"express-server": settled(REV_V1.name, 7)}),
    ),
    (
        "cloneset first deploy",
        application(
            "rollout-trait-test-cloneset",
            component="cloneset-server",
            type="cloneset",
            external_revision="cloneset-server-v1",
        ),
        ObservedState(),
    ),
]


@pytest.mark.parametrize(("step", "app", "state"), SPEC_STEPS, ids=[s[0] for s in SPEC_STEPS])
def test_every_application_of_the_spec_walkthrough_is_admitted(
    step: str, app: dict[str, Any], state: ObservedState
) -> None:
    answer = validate(parse_review(admission_review(app)), Reader(state), StubRenderer())
    assert answer["response"]["allowed"] is True, answer["response"].get("status")


def with_trait(**plan: Any) -> dict[str, Any]:
    return application(rollout=plan)


def batches(*replicas: Any) -> list[dict[str, Any]]:
    return [{"replicas": n} for n in replicas]


STATE_V1_SETTLED = ObservedState(
    revisions=(REV_V1,), components={"express-server": settled(REV_V1.name, 5)}
)
OTHER_OWNER = RevisionRecord(
    name="express-server-v1", component="other-server", number=1, spec_hash="0" * 16
)

BAD_SPECS = [
    (
        "batches summing to 4 for targetSize 5",
        with_trait(targetSize=5, rolloutBatches=batches(2, 2)),
        ObservedState(),
        f"{TRAIT}.rolloutBatches",
    ),
    (
        "batchPartition 2 with two batches",
        with_trait(targetSize=5, batchPartition=2, rolloutBatches=batches(2, 3)),
        ObservedState(),
        f"{TRAIT}.batchPartition",
    ),
    (
        "replicas 0",
        with_trait(targetSize=5, rolloutBatches=batches(0, 5)),
        ObservedState(),
        f"{TRAIT}.rolloutBatches[0].replicas",
    ),
    (
        'replicas "2"',
        with_trait(targetSize=5, rolloutBatches=batches("2", 3)),
        ObservedState(),
        f"{TRAIT}.rolloutBatches[0].replicas",
    ),
    (
        "unknown property",
        with_trait(targetSize=5, batchSize=2, rolloutBatches=batches(2, 3)),
        ObservedState(),
        f"{TRAIT}.batchSize",
    ),
    (
        "unknown targetRevision",
        with_trait(targetRevision="express-server-v9", targetSize=5, rolloutBatches=batches(2, 3)),
        STATE_V1_SETTLED,
        f"{TRAIT}.targetRevision",
    ),
    (
        "externalRevision reused with a new image",
        application(image="stefanprodan/podinfo:5.0.2"),
        STATE_V1_SETTLED,
        "spec.components[0].externalRevision",
    ),
    (
        "externalRevision owned by another component",
        V1_APP,
        ObservedState(revisions=(OTHER_OWNER,)),
        "spec.components[0].externalRevision",
    ),
    (
        "scale 5->7 with batches summing to 3",
        with_trait(targetSize=7, rolloutBatches=batches(1, 2)),
        STATE_V1_SETTLED,
        f"{TRAIT}.rolloutBatches",
    ),
    (
        "batchPartition lowered below the batch already rolled",
        application(
            image="stefanprodan/podinfo:5.0.2",
            external_revision="express-server-v2",
            rollout={"targetSize": 5, "batchPartition": 0, "rolloutBatches": batches(2, 3)},
        ),
        ObservedState(
            revisions=BOTH,
            components={
                "express-server": ComponentObservation(
                    current_revision=REV_V2.name,
                    current_batch=1,
                    rolling_state=ROLLING_IN_BATCHES,
                    rollout_target=REV_V2.name,
                )
            },
        ),
        f"{TRAIT}.batchPartition",
    ),
    (
        "unknown component type",
        application(type="statefulservice"),
        ObservedState(),
        "spec.components[0].type",
    ),
]


@pytest.mark.parametrize("dry_run", [False, True], ids=["apply", "dry-run"])
@pytest.mark.parametrize(
    ("case", "app", "state", "field_path"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS]
)
def test_bad_specs_are_denied_as_invalid_naming_the_field(
    case: str, app: dict[str, Any], state: ObservedState, field_path: str, dry_run: bool
) -> None:
    request = parse_review(admission_review(app, dry_run=dry_run))
    response = validate(request, Reader(state), StubRenderer())["response"]
    assert response["allowed"] is False
    status = response["status"]
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert field_path in [cause["field"] for cause in status["details"]["causes"]]
    assert f"{field_path}: " in status["message"]


def test_every_field_error_is_listed_not_only_the_first() -> None:
    app = with_trait(targetSize="5", batchSize=1, rolloutBatches=batches(0, "x"))
    status = validate(parse_review(admission_review(app)), Reader(), StubRenderer())["response"][
        "status"
    ]
    fields = {cause["field"] for cause in status["details"]["causes"]}
    assert fields >= {
        f"{TRAIT}.targetSize",
        f"{TRAIT}.batchSize",
        f"{TRAIT}.rolloutBatches[0].replicas",
        f"{TRAIT}.rolloutBatches[1].replicas",
    }
    assert all(f"{f}: " in status["message"] for f in fields)


@pytest.mark.parametrize("decide", [validate, mutate], ids=["validate", "mutate"])
def test_an_unreadable_cluster_denies_with_code_500_never_allows(decide: Any) -> None:
    reader = Reader(error="etcd unavailable")
    response = decide(parse_review(admission_review(V1_APP)), reader, StubRenderer())["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert "cannot check the Application against the cluster" in response["status"]["message"]
    assert "503" in response["status"]["message"]


def test_a_template_that_fails_to_render_denies_with_the_template_error() -> None:
    renderer = StubRenderer(failing_types={"webservice": "components/webservice.yaml: boom"})
    response = validate(parse_review(admission_review(V1_APP)), Reader(), renderer)["response"]
    status = response["status"]
    assert (response["allowed"], status["code"]) == (False, 422)
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.components[0]"]
    assert "components/webservice.yaml: boom" in status["message"]


def test_validation_renders_the_revision_the_rollout_and_the_workload() -> None:
    renderer = StubRenderer()
    validate(parse_review(admission_review(V1_APP)), Reader(), renderer)
    assert renderer.calls == [
        "revision:express-server-v1",
        "rollout:express-server-v1",
        "workload:express-server-v1:5",
    ]


@pytest.mark.parametrize("decide", [validate, mutate], ids=["validate", "mutate"])
@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_operations_other_than_create_and_update_pass_untouched(
    decide: Any, operation: str
) -> None:
    reader = Reader(error="must not be called")
    body = admission_review(None, operation=operation, old=V1_APP)
    response = decide(parse_review(body), reader, StubRenderer())["response"]
    assert response == {"allowed": True, "uid": body["request"]["uid"]}
    assert reader.calls == []


@pytest.mark.parametrize("decide", [validate, mutate], ids=["validate", "mutate"])
def test_other_kinds_are_not_ours_to_judge(decide: Any) -> None:
    body = admission_review({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    body["request"]["kind"] = {"group": "", "version": "v1", "kind": "ConfigMap"}
    response = decide(parse_review(body), Reader(error="unused"), StubRenderer())["response"]
    assert response["allowed"] is True
    assert "patch" not in response


@pytest.mark.parametrize("decide", [validate, mutate], ids=["validate", "mutate"])
def test_a_create_without_an_object_is_not_a_review(decide: Any) -> None:
    with pytest.raises(BadReview, match=r"request\.object is required"):
        decide(parse_review(admission_review(None)), Reader(), StubRenderer())


def test_metadata_only_updates_are_admitted_without_reading_the_cluster() -> None:
    old = with_trait(targetSize=7, rolloutBatches=batches(1, 2))
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["app.oam.dev/resource-tracker"]
    reader = Reader(error="must not be called")
    body = admission_review(new, operation="UPDATE", old=old)
    assert validate(parse_review(body), reader, StubRenderer())["response"]["allowed"] is True
    assert reader.calls == []


def test_a_new_revision_pinned_away_by_target_revision_gets_a_warning() -> None:
    app = application(
        image="stefanprodan/podinfo:6.0.0",
        external_revision="express-server-v3",
        rollout={"targetRevision": "express-server-v1", "targetSize": 5,
                 "rolloutBatches": batches(2, 3)},
    )  # fmt: skip
    response = validate(
        parse_review(admission_review(app)), Reader(STATE_V1_SETTLED), StubRenderer()
    )
    assert response["response"]["allowed"] is True
    assert any("express-server-v3" in w and "not rolled out" in w
               for w in response["response"]["warnings"])  # fmt: skip


@pytest.mark.parametrize("version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
def test_review_answers_each_webhook_in_the_request_version(version: str) -> None:
    body = admission_review(V1_APP, api_version=version)
    for mode in ("validate", "mutate"):
        answer = review(body, mode, Reader(), StubRenderer())  # type: ignore[arg-type]
        assert answer["apiVersion"] == version
        assert answer["response"]["allowed"] is True


# ---------------------------------------------------------------------------
# judge: the verdict the validating webhook and the validate CLI both give

JUDGED = [
    ("a first deploy", V1_APP, ObservedState(), StubRenderer()),
    ("an unknown type", application(type="nope"), ObservedState(), StubRenderer()),
    (
        "batches that do not add up",
        with_trait(targetSize=5, rolloutBatches=batches(2, 2)),
        ObservedState(),
        StubRenderer(),
    ),
    (
        "a partition that holds nothing back",
        with_trait(targetSize=5, batchPartition=1, rolloutBatches=batches(2, 3)),
        ObservedState(),
        StubRenderer(),
    ),
    (
        "a template that fails",
        V1_APP,
        ObservedState(),
        StubRenderer(failing_types={"webservice": "boom"}),
    ),
    (
        "a new revision pinned away",
        application(
            image="stefanprodan/podinfo:6.0.0",
            external_revision="express-server-v3",
            rollout={"targetRevision": "express-server-v1", "targetSize": 5,
                     "rolloutBatches": batches(2, 3)},
        ),
        STATE_V1_SETTLED,
        StubRenderer(),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "app", "state", "renderer"), JUDGED, ids=[c[0] for c in JUDGED]
)
def test_the_webhook_answers_with_exactly_the_verdict_of_judge(
    case: str, app: dict[str, Any], state: ObservedState, renderer: StubRenderer
) -> None:
    verdict = judge(app, state, renderer)
    response = validate(parse_review(admission_review(app)), Reader(state), renderer)["response"]
    causes = response.get("status", {}).get("details", {}).get("causes", [])
    assert (response["allowed"], causes, response.get("warnings", [])) == (
        verdict.allowed,
        [e.as_cause() for e in verdict.errors],
        verdict.warnings,
    )


def test_judge_names_the_component_a_template_fails_for() -> None:
    verdict = judge(V1_APP, ObservedState(), StubRenderer(failing_types={"webservice": "boom"}))
    assert [(str(e.path), e.type) for e in verdict.errors] == [
        ("spec.components[0]", ErrorType.INVALID)
    ]
    assert verdict.app is None


def test_judge_looks_live_state_up_once_and_only_after_the_static_rules_pass() -> None:
    asked: list[tuple[str, bool]] = []

    def lookup(app: Any, *, rollouts: bool) -> ObservedState:
        asked.append((app.name, rollouts))
        return STATE_V1_SETTLED

    judge(application(type="nope"), lookup, StubRenderer())
    assert asked == []
    verdict = judge(V1_APP, lookup, StubRenderer())
    assert asked == [("rollout-trait-test", True)]
    assert verdict == judge(V1_APP, STATE_V1_SETTLED, StubRenderer())


def test_judge_skips_the_state_rules_when_an_update_leaves_the_spec_alone() -> None:
    def unreachable(app: Any, *, rollouts: bool) -> ObservedState:
        raise ApiError("GET", "/apis", 0, "must not be called")

    old = with_trait(targetSize=5, rolloutBatches=batches(2, 3))
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"team": "a"}
    verdict = judge(new, unreachable, StubRenderer(), old_object=old)
    assert (verdict.allowed, verdict.app is not None) == (True, True)
    with pytest.raises(ApiError):
        judge(new, unreachable, StubRenderer())


# ---------------------------------------------------------------------------
# mutation


def patch_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    response = answer["response"]
    if "patch" not in response:
        return []
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


def annotation(obj: dict[str, Any]) -> dict[str, str]:
    value: dict[str, str] = json.loads(obj["metadata"]["annotations"][ANNOTATION_REVISIONS])
    return value


@pytest.mark.parametrize(
    ("app", "state", "expected"),
    [
        (V1_APP, ObservedState(), {"express-server": "express-server-v1"}),
        (
            application(external_revision=None),
            ObservedState(),
            {"express-server": "express-server-v1"},
        ),
        (
            application(external_revision=None, image="stefanprodan/podinfo:5.0.2"),
            ObservedState(revisions=(REV_V1,)),
            {"express-server": "express-server-v2"},
        ),
        (
            application(external_revision=None),
            ObservedState(revisions=(REV_V1,)),
            {"express-server": "express-server-v1"},
        ),
        (
            rolled_back(5, [2, 3]),
            ObservedState(revisions=BOTH),
            {"express-server": "express-server-v2"},
        ),
    ],
    ids=[
        "external",
        "first-generated",
        "next-generated",
        "reused-by-hash",
        "rollback-keeps-latest",
    ],
)
def test_mutation_records_the_resolved_revision_of_every_component(
    app: dict[str, Any], state: ObservedState, expected: dict[str, str]
) -> None:
    answer = mutate(parse_review(admission_review(app)), Reader(state), StubRenderer())
    ops = patch_of(answer)
    assert ops == [
        {
            "op": "add",
            "path": "/metadata/annotations",
            "value": {ANNOTATION_REVISIONS: json.dumps(expected, separators=(",", ":"))},
        }
    ]
    assert annotation(jsonpatch.apply_patch(app, ops)) == expected


def test_mutation_is_idempotent_on_its_own_output() -> None:
    once = jsonpatch.apply_patch(
        V1_APP, patch_of(mutate(parse_review(admission_review(V1_APP)), Reader(), StubRenderer()))
    )
    again = mutate(parse_review(admission_review(once)), Reader(), StubRenderer())
    assert patch_of(again) == []
    assert again["response"]["allowed"] is True


def test_mutation_adds_one_key_beside_existing_annotations_and_touches_nothing_else() -> None:
    app = copy.deepcopy(V1_APP)
    app["metadata"]["annotations"] = {"team": "a"}
    ops = patch_of(mutate(parse_review(admission_review(app)), Reader(), StubRenderer()))
    assert ops == [
        {
            "op": "add",
            "path": "/metadata/annotations/rollout.oam.dev~1component-revisions",
            "value": revisions_annotation_for({"express-server": "express-server-v1"}),
        }
    ]


def revisions_annotation_for(names: dict[str, str]) -> str:
    return json.dumps(names, sort_keys=True, separators=(",", ":"))


def test_mutation_corrects_a_stale_annotation() -> None:
    app = copy.deepcopy(V1_APP)
    app["metadata"]["annotations"] = {ANNOTATION_REVISIONS: '{"express-server":"wrong"}'}
    ops = patch_of(mutate(parse_review(admission_review(app)), Reader(), StubRenderer()))
    assert ops == [
        {
            "op": "replace",
            "path": "/metadata/annotations/rollout.oam.dev~1component-revisions",
            "value": revisions_annotation_for({"express-server": "express-server-v1"}),
        }
    ]


def test_an_unchanged_update_gets_no_patch_and_no_cluster_read() -> None:
    stored = jsonpatch.apply_patch(
        V1_APP, patch_of(mutate(parse_review(admission_review(V1_APP)), Reader(), StubRenderer()))
    )
    reader = Reader(error="must not be called")
    body = admission_review(stored, operation="UPDATE", old=stored)
    answer = mutate(parse_review(body), reader, StubRenderer())
    assert patch_of(answer) == []
    assert reader.calls == []


def test_a_metadata_only_update_that_drops_the_annotation_gets_it_back_from_the_old_object() -> (
    None
):
    stored = copy.deepcopy(V1_APP)
    stored["metadata"]["annotations"] = {
        ANNOTATION_REVISIONS: '{"express-server":"express-server-v1"}'
    }
    replaced = copy.deepcopy(V1_APP)
    replaced["metadata"]["labels"] = {"tier": "web"}
    reader = Reader(error="must not be called")
    body = admission_review(replaced, operation="UPDATE", old=stored)
    result = jsonpatch.apply_patch(
        replaced, patch_of(mutate(parse_review(body), reader, StubRenderer()))
    )
    assert annotation(result) == {"express-server": "express-server-v1"}
    assert reader.calls == []


@pytest.mark.parametrize(
    ("app", "state"),
    [
        ({**V1_APP, "spec": {"components": "express-server"}}, ObservedState()),
        (application(image="stefanprodan/podinfo:5.0.2"), STATE_V1_SETTLED),
    ],
    ids=["unparseable", "conflicting-external-revision"],
)
def test_objects_that_validation_will_deny_are_left_unpatched(
    app: dict[str, Any], state: ObservedState
) -> None:
    answer = mutate(parse_review(admission_review(app)), Reader(state), StubRenderer())
    assert answer["response"]["allowed"] is True
    assert patch_of(answer) == []


def test_dry_run_mutation_patches_exactly_like_a_real_request() -> None:
    real = mutate(parse_review(admission_review(V1_APP)), Reader(), StubRenderer())
    dry = mutate(parse_review(admission_review(V1_APP, dry_run=True)), Reader(), StubRenderer())
    assert patch_of(dry) == patch_of(real) != []


def test_the_annotation_is_compact_key_sorted_json() -> None:
    from webhook.core.revisions import ResolvedRevision

    resolved = {
        "b": ResolvedRevision("b", "b-v2", 2, "h", False),
        "a": ResolvedRevision("a", "a-v1", 1, "h", True),
    }
    assert revisions_annotation(resolved) == '{"a":"a-v1","b":"b-v2"}'


def test_mutation_reads_revisions_only_and_validation_reads_rollouts_when_a_trait_needs_them() -> (
    None
):
    without_trait = copy.deepcopy(V1_APP)
    without_trait["spec"]["components"][0]["traits"] = []
    readers = {name: Reader() for name in ("mutate", "validate", "validate-no-trait")}
    mutate(parse_review(admission_review(V1_APP)), readers["mutate"], StubRenderer())
    validate(parse_review(admission_review(V1_APP)), readers["validate"], StubRenderer())
    validate(
        parse_review(admission_review(without_trait)), readers["validate-no-trait"], StubRenderer()
    )
    assert {name: reader.rollouts for name, reader in readers.items()} == {
        "mutate": [False],
        "validate": [True],
        "validate-no-trait": [False],
    }


REV_KEY = ANNOTATION_REVISIONS


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": {}},
        {"metadata": "not an object"},
        {"metadata": {"annotations": None}},
        {"metadata": {"annotations": "not an object"}},
        {"metadata": {"annotations": {}}},
        {"metadata": {"annotations": {"team": "web"}}},
        {"metadata": {"annotations": {REV_KEY: '{"web":"web-v2"}'}}},
        {"metadata": {"annotations": {REV_KEY: '{"web":"web-v1"}', "team": "web"}}},
        {"metadata": {"annotations": {REV_KEY: 1}}},
        {"metadata": {"annotations": {REV_KEY: None}}},
    ],
    ids=[
        "no-metadata",
        "no-annotations",
        "metadata-string",
        "annotations-null",
        "annotations-string",
        "annotations-empty",
        "other-annotation",
        "already-right",
        "stale",
        "number",
        "null-value",
    ],
)
def test_the_annotation_patch_is_the_one_a_full_diff_finds(obj: dict[str, Any]) -> None:
    value = '{"web":"web-v2"}'
    metadata = obj.get("metadata")
    before = {"metadata": metadata if isinstance(metadata, dict) else {}}
    after = copy.deepcopy(before)
    if not isinstance(after["metadata"].get("annotations"), dict):
        after["metadata"]["annotations"] = {}
    after["metadata"]["annotations"][REV_KEY] = value
    assert annotation_patch(obj, value) == jsonpatch.make_patch(before, after).patch
