"""Reading observed state from a real kube-apiserver: the small reader and the official client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.polling import eventually
from webhook.core.errors import ApiError
from webhook.core.labels import ROLLOUT_SUCCEED
from webhook.core.state import ComponentObservation
from webhook.kube.reader import load_api_client, load_api_reader, read_observed_state

pytestmark = pytest.mark.cluster


def seed(kubectl: Any, namespace: str) -> None:
    """Two revisions of `web` (one owned by `app`), a foreign one, and app's settled Rollout."""
    labels = {"controller.oam.dev/component": "web", "app.oam.dev/component-revision-hash": "h"}
    docs = [
        {"apiVersion": "apps/v1", "kind": "ControllerRevision",
         "metadata": {"name": f"web-v{n}", "labels": labels}, "revision": n,
         "data": {"name": "web", "type": "webservice", "properties": {"image": f"img:{n}"}}}
        for n in (1, 2)
    ] + [
        {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "plain"},
         "revision": 1, "data": {}},
        {"apiVersion": "standard.oam.dev/v1alpha1", "kind": "Rollout",
         "metadata": {"name": "web", "labels": {"app.oam.dev/name": "app"}},
         "spec": {"targetRevisionName": "web-v2", "componentName": "web",
                  "rolloutPlan": {"targetSize": 3, "rolloutBatches": [{"replicas": 3}]}}},
    ]  # fmt: skip
    kubectl("apply", "-n", namespace, "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))
    status = {"lastTargetRevision": "web-v2", "rolloutTargetSize": 3, "currentBatch": 0,
              "rollingState": ROLLOUT_SUCCEED, "batchRollingState": "batchReady"}  # fmt: skip
    kubectl(
        "patch", "rollout", "web", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def test_both_clients_read_the_same_observed_state(
    cluster: Any, kubectl: Any, namespace: str
) -> None:
    seed(kubectl, namespace)
    kubeconfig = str(cluster.kubeconfig)
    small = read_observed_state(load_api_reader(kubeconfig), namespace, "app")
    official = read_observed_state(load_api_client(kubeconfig), namespace, "app")
    assert small == official
    assert [(r.name, r.number, r.spec_hash) for r in small.revisions] == [
        ("web-v1", 1, "h"),
        ("web-v2", 2, "h"),
    ]
    assert small.components == {
        "web": ComponentObservation("web-v2", 3, 0, ROLLOUT_SUCCEED, "batchReady", "web-v2",
                                    run_size=3)
    }


def test_rollouts_can_be_left_out(cluster: Any, kubectl: Any, namespace: str) -> None:
    seed(kubectl, namespace)
    state = read_observed_state(
        load_api_reader(str(cluster.kubeconfig)), namespace, "app", rollouts=False
    )
    assert len(state.revisions) == 2
    assert state.components == {}


def test_a_refused_read_is_an_api_error_with_the_apiservers_status(
    cluster: Any, tmp_path: Any
) -> None:
    config = json.loads(json.dumps(__import__("yaml").safe_load(cluster.kubeconfig.read_text())))
    for user in config["users"]:
        user["user"] = {"token": "wrong-token"}
    (tmp_path / "kubeconfig").write_text(json.dumps(config))
    reader = load_api_reader(str(tmp_path / "kubeconfig"))
    with pytest.raises(ApiError, match=r"401") as caught:
        read_observed_state(reader, "default", "app")
    assert caught.value.status == 401


def test_the_watch_fed_cache_follows_the_api_and_reads_like_the_direct_reader(
    cluster: Any, kubectl: Any, namespace: str
) -> None:
    from webhook.admission.statecache import StateCache

    reader = load_api_reader(str(cluster.kubeconfig))
    cache = StateCache(reader)
    cache.start()
    try:
        eventually(lambda: cache.live, timeout=10, interval=0.05, what="the cache's first sync")
        seed(kubectl, namespace)
        direct = read_observed_state(reader, namespace, "app")
        eventually(lambda: cache.read(namespace, "app"), equals=direct, timeout=10,
                   interval=0.05, what="the cached state")
        kubectl("delete", "controllerrevision", "web-v1", "-n", namespace)
        eventually(
            lambda: [r.name for r in cache.read(namespace, "app").revisions],  # type: ignore[union-attr]
            equals=["web-v2"], timeout=10, interval=0.05, what="the cached revisions",
        )
    finally:
        cache.stop()
    assert cache.read(namespace, "app") is None
