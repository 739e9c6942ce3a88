"""Admission through a real kube-apiserver: kubectl apply of the spec's Applications, and bad ones.

The webhook runs as `oam-rollout webhook` (gunicorn, TLS) registered in url mode on 127.0.0.1.
The live state a rule needs (ControllerRevisions, a settled Rollout) is created here as the
controller would create it; if the session's controller runs too, both write the same state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fixtures import apps
from tests.fixtures.apps import application, plan
from tests.fixtures.polling import eventually
from webhook.core.labels import (
    ANNOTATION_REVISIONS,
    LABEL_CONTROLLER_COMPONENT,
    ROLLING_IN_BATCHES,
    ROLLOUT_API_VERSION,
    ROLLOUT_KIND,
    ROLLOUT_SUCCEED,
)
from webhook.core.model import parse_application
from webhook.core.revisions import resolve_revisions
from webhook.kube.reader import load_api_reader, read_observed_state
from webhook.render.renderer import Renderer

pytestmark = pytest.mark.cluster

COMPONENT = "express-server"

V1, V2 = "express-server-v1", "express-server-v2"


@dataclass(frozen=True)
class Settled:
    """What the controller would have made of a step: its Rollout target, size and batch."""

    target: str
    size: int | None  # None while batches still roll
    batch: int


# The spec's Applications (tests/golden/), in order, with the live state each step leaves.
SPEC_WALKTHROUGH: list[tuple[str, dict[str, Any], Settled | None]] = [
    ("first deploy", apps.spec_application(apps.FIRST_DEPLOY), Settled(V1, 5, 1)),
    ("first batch of v2", apps.spec_application(apps.UPGRADE_PARTITION), Settled(V2, None, 0)),
    ("rest of v2", apps.spec_application(apps.UPGRADE_COMPLETE), Settled(V2, 5, 1)),
    ("roll back", apps.spec_application(apps.ROLLBACK), Settled(V1, 5, 1)),
    ("scale out", apps.spec_application(apps.SCALE_OUT), Settled(V1, 7, 1)),
    ("scale in", apps.spec_application(apps.SCALE_IN), None),
]


class Controller:
    """Plays the controller's part for one namespace: revisions and Rollout status.

    A real controller may run in the same session and write the same objects; seeding is
    therefore idempotent, and each step waits until the live state reads as expected
    twice in a row, whoever wrote it.
    """

    def __init__(self, kubectl: Any, cluster: Any, namespace: str) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.renderer = Renderer()
        self.reader = load_api_reader(str(cluster.kubeconfig))

    def record_revision(self, app_name: str, component: str) -> None:
        """Create the ControllerRevision of the stored Application's component, owned by it."""
        stored = json.loads(
            self.kubectl("get", "app", app_name, "-n", self.namespace, "-o", "json").stdout
        )
        app, errors = parse_application(stored)
        assert app is not None, errors
        recorded = json.loads(stored["metadata"]["annotations"][ANNOTATION_REVISIONS])
        observed = read_observed_state(self.reader, self.namespace, app_name)
        resolved, errors = resolve_revisions(app, observed)
        assert not errors, errors
        assert resolved[component].name == recorded[component]
        if not resolved[component].is_new:
            return
        owner = app.component(component)
        assert owner is not None
        revision = self.renderer.render_revision(app, owner, resolved[component])
        created = self.kubectl(
            "create", "-n", self.namespace, "-f", "-", input=json.dumps(revision), check=False
        )
        assert created.returncode == 0 or "AlreadyExists" in created.stderr, created.stderr

    def settle(self, app_name: str, component: str, state: Settled) -> None:
        """A Rollout aimed at ``state.target``: settled at its size, or rolling its batch."""
        uid = self.kubectl(
            "get", "app", app_name, "-n", self.namespace, "-o", "jsonpath={.metadata.uid}"
        ).stdout
        size = state.size if state.size is not None else 5
        rollout = {
            "apiVersion": ROLLOUT_API_VERSION,
            "kind": ROLLOUT_KIND,
            "metadata": {
                "name": component,
                "namespace": self.namespace,
                "ownerReferences": [
                    {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "name": app_name,
                     "uid": uid, "controller": True}
                ],
            },
            "spec": {"targetRevisionName": state.target, "componentName": component,
                     "rolloutPlan": plan(size, size)},
        }  # fmt: skip
        self.kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps(rollout))
        status = {
            "lastTargetRevision": state.target,
            "rolloutTargetSize": size,
            "upgradedReplicas": size if state.size is not None else 2,
            "upgradedReadyReplicas": size if state.size is not None else 2,
            "currentBatch": state.batch,
            "rollingState": ROLLOUT_SUCCEED if state.size is not None else ROLLING_IN_BATCHES,
            "batchRollingState": "batchReady",
        }
        self.kubectl(
            "patch", "rollout", component, "-n", self.namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": status}),
        )  # fmt: skip
        self.wait_for(app_name, component, state)

    def wait_for(self, app_name: str, component: str, state: Settled, timeout: float = 30) -> None:
        """Until the observation validation uses reads as ``state`` twice, 0.3 s apart."""
        expected = (state.target, state.size, state.size is not None)
        matched: list[bool] = []  # one entry per reading: did it read as expected?

        def reading() -> tuple[str | None, int | None, bool]:
            seen = read_observed_state(self.reader, self.namespace, app_name).component(component)
            settled = seen.rolling_state == ROLLOUT_SUCCEED
            found = (seen.current_revision, seen.current_size, settled)
            matched.append(found == expected)
            return found

        eventually(reading, until=lambda _: matched[-2:] == [True, True], timeout=timeout,
                   interval=0.3, what=f"{component} read twice as {expected}")


def apply(kubectl: Any, namespace: str, app: dict[str, Any], *, dry_run: bool = False) -> Any:
    args = ["apply", "-n", namespace, "-f", "-"]
    if dry_run:
        args.append("--dry-run=server")
    return kubectl(*args, input=json.dumps(app), check=False)


def test_every_application_of_the_spec_is_accepted_in_order(
    webhook_server: Any, cluster: Any, kubectl: Any, namespace: str
) -> None:
    controller = Controller(kubectl, cluster, namespace)
    for step, app, after in SPEC_WALKTHROUGH:
        dry = apply(kubectl, namespace, app, dry_run=True)
        assert dry.returncode == 0, f"{step} (dry run): {dry.stderr}"
        real = apply(kubectl, namespace, app)
        assert real.returncode == 0, f"{step}: {real.stderr}"
        if after is not None:
            controller.record_revision("rollout-trait-test", "express-server")
            controller.settle("rollout-trait-test", "express-server", after)
    stored = json.loads(
        kubectl("get", "app", "rollout-trait-test", "-n", namespace, "-o", "json").stdout
    )
    assert json.loads(stored["metadata"]["annotations"][ANNOTATION_REVISIONS]) == {
        "express-server": "express-server-v2"
    }
    names = kubectl(
        "get", "controllerrevision", "-n", namespace,
        "-l", f"{LABEL_CONTROLLER_COMPONENT}={COMPONENT}",
        "-o", "jsonpath={.items[*].metadata.name}",
    ).stdout.split()  # fmt: skip
    assert sorted(names) == ["express-server-v1", "express-server-v2"]


def test_the_cloneset_applications_of_the_spec_are_accepted(
    webhook_server: Any, cluster: Any, kubectl: Any, namespace: str
) -> None:
    controller = Controller(kubectl, cluster, namespace)
    name, component = "rollout-trait-test-cloneset", "cloneset-server"
    first = apps.spec_application(apps.CLONESET_FIRST_DEPLOY)
    upgrade = apps.spec_application(apps.CLONESET_UPGRADE)
    assert apply(kubectl, namespace, first).returncode == 0
    controller.record_revision(name, component)
    controller.settle(name, component, Settled("cloneset-server-v1", 5, 1))
    result = apply(kubectl, namespace, upgrade)
    assert result.returncode == 0, result.stderr
    stored = json.loads(kubectl("get", "app", name, "-n", namespace, "-o", "json").stdout)
    assert json.loads(stored["metadata"]["annotations"][ANNOTATION_REVISIONS]) == {
        component: "cloneset-server-v2"
    }


TRAIT = "spec.components[0].traits[0].properties"

BATCH = f"{TRAIT}.rolloutBatches"
STRING_REPLICAS = {"targetSize": 5, "rolloutBatches": [{"replicas": "2"}, {"replicas": 3}]}

# (case, bad Application, whether v1 must be live and settled at 5 first, the path kubectl shows)
BAD_SPECS = [
    ("batches summing to 4 for targetSize 5", application(rollout=plan(5, 2, 2)), False, BATCH),
    (
        "batchPartition 2 with two batches",
        application(rollout=plan(5, 2, 3, batchPartition=2)),
        False,
        f"{TRAIT}.batchPartition",
    ),
    ("replicas 0", application(rollout=plan(5, 0, 5)), False, f"{BATCH}[0].replicas"),
    ('replicas "2"', application(rollout=STRING_REPLICAS), False, f"{BATCH}[0].replicas"),
    (
        "unknown property",
        application(rollout=plan(5, 2, 3, maxSurge=1)),
        False,
        f"{TRAIT}.maxSurge",
    ),
    (
        "unknown targetRevision",
        application(rollout=plan(5, 2, 3, targetRevision="express-server-v9")),
        True,
        f"{TRAIT}.targetRevision",
    ),
    (
        "externalRevision reused with a new image",
        application(image=apps.V2_IMAGE),
        True,
        "spec.components[0].externalRevision",
    ),
    ("scale 5->7 with batches summing to 3", application(rollout=plan(7, 1, 2)), True, BATCH),
]


@pytest.mark.parametrize(
    ("case", "app", "needs_v1", "field_path"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS]
)
def test_bad_specs_are_denied_and_kubectl_shows_the_field_path(
    webhook_server: Any,
    cluster: Any,
    kubectl: Any,
    namespace: str,
    case: str,
    app: dict[str, Any],
    needs_v1: bool,
    field_path: str,
) -> None:
    if needs_v1:
        assert apply(kubectl, namespace, application()).returncode == 0
        controller = Controller(kubectl, cluster, namespace)
        controller.record_revision("rollout-trait-test", "express-server")
        controller.settle("rollout-trait-test", "express-server", Settled(V1, 5, 1))
    verdicts = []
    for dry_run in (True, False):
        result = apply(kubectl, namespace, app, dry_run=dry_run)
        assert result.returncode != 0, f"{case} was admitted (dry run: {dry_run})"
        # kubectl prints an Invalid status as its causes: `The Application "x" is invalid: ...`.
        assert 'The Application "rollout-trait-test" is invalid' in result.stderr
        assert f"{field_path}: " in result.stderr
        verdicts.append(result.stderr.strip())
    assert verdicts[0] == verdicts[1]


def test_a_denied_update_leaves_the_stored_application_as_it_was(
    webhook_server: Any, kubectl: Any, namespace: str
) -> None:
    def stored() -> tuple[int, dict[str, Any]]:
        # Generation and spec, not resourceVersion: a controller may write status meanwhile.
        obj = json.loads(
            kubectl("get", "app", "rollout-trait-test", "-n", namespace, "-o", "json").stdout
        )
        return obj["metadata"]["generation"], obj["spec"]

    assert apply(kubectl, namespace, application()).returncode == 0
    before = stored()
    assert apply(kubectl, namespace, application(rollout=plan(5, 0, 5))).returncode != 0
    assert stored() == before


def test_reviews_are_answered_from_the_watch_fed_cache(
    webhook_server: Any, kubectl: Any, namespace: str
) -> None:
    def cache_reads() -> float:
        text = webhook_server.get("/metrics")[1].decode()
        prefix = 'oam_rollout_state_reads_total{source="cache"} '
        return sum(
            float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)
        )

    before = cache_reads()
    assert apply(kubectl, namespace, application()).returncode == 0
    # One read for the mutating webhook, one for the validating one.
    assert cache_reads() == before + 2


def test_kubectl_shows_the_warnings_of_an_admitted_application(
    webhook_server: Any, kubectl: Any, namespace: str
) -> None:
    result = apply(kubectl, namespace, application(rollout=plan(5, 2, 3, batchPartition=1)))
    assert result.returncode == 0, result.stderr
    assert (
        "Warning: express-server: batchPartition 1 is the last batch; it holds nothing back"
        in result.stderr
    )
