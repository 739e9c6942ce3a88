"""Acceptance: beside KubeVela, Applications of types we have no template for pass through.

A webhook and a controller run with `--unknown-types ignore` (the chart's
unknownTypes=ignore), the webhook registered for one namespace of its own (the session
webhook's configurations skip it) and the controller limited to it. There, an
Application of an unknown component type (with an unknown trait) is admitted untouched
with a warning that says why, and the controller writes nothing for it: no revision,
Rollout, workload, status or Event. One of a known type is still judged: denied when
its batches do not add up, rolled out when good. The session controller steps aside
meanwhile and is restarted whatever happens.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.apps import (
    api_application,
    application,
    application_of,
    component_fields,
    manifest,
    plan,
)
from tests.fixtures.cluster import BYPASS_LABELS, fresh_namespace, namespace_name
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually
from tests.fixtures.views import wait_settled
from tests.fixtures.webhook import start_webhook, webhook_configurations
from webhook.kube.client import EVENTS, FIELD_MANAGER, connect
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

SELECT_LABEL = "oam-rollout.dev/pass-through-test"
CONFIG_NAME = "oam-rollout-pass-through-test"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# A KubeVela app: a helm component with a gateway trait, neither of them ours.
VELA_APP = application_of(
    component_fields(name="vela-web", type="helm", externalRevision=None,
                     properties={"chart": "podinfo", "version": "6.0.0"},
                     traits=[{"type": "gateway", "properties": {"domain": "web.local"}}]),
    name="vela-app")


@pytest.fixture
def pass_through(cluster: LocalCluster, api_client: Any, kubectl: Any,
                 controller_process: ControllerProcess) -> Iterator[str]:
    """A namespace admitted only by a webhook with --unknown-types ignore, served only by
    a controller with the same setting; everything removed (and the session controller
    back) afterwards."""
    name = namespace_name("pass-through")
    workdir = Path(tempfile.mkdtemp(prefix="oam-rollout-pass-through-"))
    controller_process.stop()
    controller = ControllerProcess(cluster.kubeconfig, "pass-through", lease=CONFIG_NAME,
                                   extra_args=("--namespace", name, "--unknown-types",
                                               "ignore"))
    server = None
    try:
        with fresh_namespace(api_client, name, {**BYPASS_LABELS, SELECT_LABEL: name}):
            server = start_webhook(workdir, Path(cluster.kubeconfig),
                                   extra_args=("--unknown-types", "ignore"))
            configurations = webhook_configurations(server.url, server.ca_bundle)
            for configuration in configurations:
                configuration["metadata"]["name"] = CONFIG_NAME
                for hook in configuration["webhooks"]:
                    hook["namespaceSelector"] = {"matchLabels": {SELECT_LABEL: name}}
            kubectl("apply", "-f", "-", input=manifest(*configurations))
            wait_until_judged(kubectl, name)
            controller.start()
            yield name
    finally:
        kubectl("delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration",
                CONFIG_NAME, "--ignore-not-found", check=False)
        controller.cleanup()
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        controller_process.start()


def wait_until_judged(kubectl: Any, namespace: str) -> None:
    """The apiserver picks configurations up asynchronously: probe with a denied dry-run."""
    probe = manifest(application("webhook-probe", rollout={"targetSize": 1,
                                                           "rolloutBatches": []}))

    def denied_by_us() -> bool:
        result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                         input=probe, check=False)
        return result.returncode != 0 and "rolloutBatches" in result.stderr

    eventually(denied_by_us, timeout=20, what="the apiserver calling the pass-through webhook")


def kinds_in(kubectl: Any, namespace: str) -> list[str]:
    listing = json.loads(kubectl("get", "controllerrevision,rollout,deploy,cloneset", "-n",
                                 namespace, "-o", "json").stdout)
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in listing["items"])


def test_an_unknown_type_passes_through_untouched_and_a_known_one_is_still_judged(
    cluster: LocalCluster, kubectl: Any, pass_through: str,
) -> None:
    ns = pass_through
    applied = kubectl("apply", "-n", ns, "-f", "-", input=manifest(VELA_APP))
    bad = kubectl("apply", "-n", ns, "-f", "-", check=False,
                  input=manifest(application("bad", component="bad", rollout=plan(5, 1))))
    kubectl("apply", "-n", ns, "-f", "-", input=manifest(api_application(1, [3, 3])))
    wait_settled(kubectl, ns, 1)
    time.sleep(2)  # ample time for a stray reconcile of the passed-through app to land
    stored = json.loads(kubectl("get", "app", "vela-app", "-n", ns, "-o", "json").stdout)
    events = connect(str(cluster.kubeconfig)).list(EVENTS.path(ns))
    ours_about_vela = [e["reason"] for e in events
                       if e.get("reportingComponent") == FIELD_MANAGER
                       and (e.get("involvedObject") or {}).get("name") in ("vela-app",
                                                                             "vela-web")]
    assert "Warning: oam-rollout has no template for spec.components[0].type: 'helm', " \
           "spec.components[0].traits[0].type: 'gateway'" in applied.stderr
    assert (stored["spec"], sorted(stored["metadata"].get("annotations") or {}),
            stored.get("status")) == (VELA_APP["spec"], [LAST_APPLIED], None)
    assert bad.returncode != 0
    assert "spec.components[0].traits[0].properties.rolloutBatches" in bad.stderr
    assert kinds_in(kubectl, ns) == ["ControllerRevision/api-v1", "Deployment/api-v1",
                                     "Rollout/api"]
    assert ours_about_vela == []
