"""A component without a rollout trait: its workload is applied as rendered, per revision."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.apps import application
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually
from tests.fixtures.views import app_row, deploys, revisions, view

pytestmark = pytest.mark.cluster


def plain(image: str) -> str:
    """Application `plain`: one worker, no externalRevision, no trait."""
    return json.dumps(application("plain", component="worker", type="worker", image=image,
                                  external_revision=None, rollout=None))


def test_a_component_without_rollout_runs_its_latest_revision_only(
    webhook_server: Any, controller_process: ControllerProcess, kubectl: Any, namespace: str,
) -> None:
    del webhook_server
    owner = "application.core.oam.dev/plain"

    def views() -> dict[str, Any]:
        return {
            "app": view(kubectl, namespace, "app", "plain"),
            "deploy": view(kubectl, namespace, "deploy", "-l", "app.oam.dev/component=worker"),
            "revisions": view(kubectl, namespace, "controllerRevision", "-l",
                              "controller.oam.dev/component=worker"),
        }

    for image, expected_deploys, expected_revisions in [
        ("busybox:1", deploys(("worker-v1", 1)), revisions(("worker-v1", 1), owner=owner)),
        ("busybox:2", deploys(("worker-v2", 1)),
         revisions(("worker-v1", 1), ("worker-v2", 2), owner=owner)),
    ]:
        kubectl("apply", "-n", namespace, "-f", "-", input=plain(image))
        expected = {"app": app_row("plain", "worker", "worker"), "deploy": expected_deploys,
                    "revisions": expected_revisions}
        eventually(views, equals=expected, timeout=60, what=image,
                   context=controller_process.tail)
