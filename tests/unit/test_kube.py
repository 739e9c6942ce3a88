"""Reducing listed API objects to an ObservedState, and finding credentials, without a cluster."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from webhook.core.errors import ClusterReadError
from webhook.core.state import ComponentObservation, RevisionRecord
from webhook.kube.reader import (
    IN_CLUSTER_DIR,
    ApiReader,
    Credentials,
    component_observation,
    credentials_from_kubeconfig,
    get_json,
    load_credentials,
    observed_state_from,
    revision_record,
)


def controller_revision(name: str, component: str, number: Any, **meta: Any) -> dict[str, Any]:
    labels = {
        "controller.oam.dev/component": component,
        "app.oam.dev/component-revision-hash": "h1",
    }
    return {
        "metadata": {"name": name, "labels": labels, **meta},
        "revision": number,
        "data": {"name": component, "type": "webservice"},
    }


def rollout(
    name: str, status: dict[str, Any], *, owner: str = "app", **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "ownerReferences": [{"kind": "Application", "name": owner, "controller": True}],
        },
        "spec": spec,
        "status": status,
    }


def test_a_controller_revision_becomes_a_record_with_its_owner() -> None:
    owned = controller_revision(
        "web-v2",
        "web",
        2,
        ownerReferences=[{"kind": "Application", "name": "app", "controller": True}],
    )
    assert revision_record(owned) == RevisionRecord(
        name="web-v2",
        component="web",
        number=2,
        spec_hash="h1",
        data={"name": "web", "type": "webservice"},
        owner="app",
    )


@pytest.mark.parametrize(
    "obj",
    [{"metadata": {"name": "x"}}, {"metadata": "nope"}, {}, {"metadata": {"labels": {"a": 1}}}],
)
def test_objects_without_the_component_label_are_not_revisions(obj: dict[str, Any]) -> None:
    assert revision_record(obj) is None


@pytest.mark.parametrize("number", ["2", None, True, 2.5])
def test_a_revision_number_that_is_not_an_integer_reads_as_zero(number: Any) -> None:
    record = revision_record(controller_revision("web-v2", "web", number))
    assert record is not None
    assert record.number == 0


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {"lastTargetRevision": "web-v1", "rolloutTargetSize": 5,
             "rollingState": "rolloutSucceed", "currentBatch": 1,
             "batchRollingState": "batchReady"},
            ComponentObservation("web-v1", 5, 1, "rolloutSucceed", "batchReady", "web-v1"),
        ),
        (
            {"lastTargetRevision": "web-v1", "rolloutTargetSize": 5,
             "rollingState": "rollingInBatches", "currentBatch": 0},
            ComponentObservation("web-v1", None, 0, "rollingInBatches", None, "web-v1"),
        ),
        ({}, ComponentObservation(None, None, None, None, None, "web-v1")),
        (
            {"rolloutTargetSize": "5", "rollingState": "rolloutSucceed", "currentBatch": "1"},
            ComponentObservation(None, None, None, "rolloutSucceed", None, "web-v1"),
        ),
    ],
    ids=["settled", "rolling", "no-status", "wrong-types"],
)  # fmt: skip
def test_the_size_counts_only_once_a_rollout_has_succeeded(
    status: dict[str, Any], expected: ComponentObservation
) -> None:
    assert component_observation(rollout("web", status, targetRevisionName="web-v1")) == expected


def test_an_observed_state_keeps_every_revision_but_only_the_apps_own_rollouts() -> None:
    revisions = [
        controller_revision("web-v2", "web", 2),
        controller_revision("web-v1", "web", 1),
        controller_revision("other-v1", "other", 1),
        {"metadata": {"name": "unlabelled"}},
    ]
    rollouts = [
        rollout("web", {"rollingState": "rolloutSucceed"}),
        rollout("other", {}, owner="another-app"),
        {"metadata": {"name": "labelled", "labels": {"app.oam.dev/name": "app"}}},
    ]
    state = observed_state_from("ns", "app", revisions, rollouts)
    assert [r.name for r in state.revisions] == ["other-v1", "web-v1", "web-v2"]
    assert sorted(state.components) == ["labelled", "web"]
    assert state.namespace == "ns"


def kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
            }
        )
    )
    return path


def test_a_token_kubeconfig_with_a_relative_ca_file(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config",
        {"server": "https://127.0.0.1:6443", "certificate-authority": "ca.crt"},
        {"token": "abc"},
    )
    assert credentials_from_kubeconfig(path) == Credentials(
        server="https://127.0.0.1:6443", ca_file=str(tmp_path / "ca.crt"), token="abc"
    )


def test_inline_certificate_data_is_written_to_private_files(tmp_path: Path) -> None:
    data = base64.b64encode(b"PEM").decode()
    path = kubeconfig(
        tmp_path / "config",
        {"server": "https://127.0.0.1:6443", "certificate-authority-data": data},
        {"client-certificate-data": data, "client-key-data": data},
    )
    creds = credentials_from_kubeconfig(path)
    for name in (creds.ca_file, creds.client_cert_file, creds.client_key_file):
        assert name is not None
        assert Path(name).read_bytes() == b"PEM"
        assert Path(name).stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not: [yaml", "cannot read it"),
        ("[]", "not a kubeconfig"),
        (json.dumps({"current-context": "missing"}), "no context named 'missing'"),
    ],
)
def test_unusable_kubeconfigs_are_one_line_errors(tmp_path: Path, content: str, says: str) -> None:
    (tmp_path / "config").write_text(content)
    with pytest.raises(ClusterReadError, match=says):
        credentials_from_kubeconfig(tmp_path / "config")


@pytest.mark.parametrize(
    ("user", "says"),
    [({"exec": {"command": "aws"}}, "exec and auth-provider"), ({}, None)],
)
def test_exec_credentials_are_refused_and_anonymous_is_allowed(
    tmp_path: Path, user: dict[str, Any], says: str | None
) -> None:
    path = kubeconfig(tmp_path / "config", {"server": "https://127.0.0.1:6443"}, user)
    if says:
        with pytest.raises(ClusterReadError, match=says):
            credentials_from_kubeconfig(path)
    else:
        assert credentials_from_kubeconfig(path).token is None


def test_in_cluster_credentials_use_the_service_account_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.1.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert load_credentials(None) == Credentials(
        server="https://127.1.0.1:443",
        ca_file=str(IN_CLUSTER_DIR / "ca.crt"),
        token_file=str(IN_CLUSTER_DIR / "token"),
    )


def test_a_closed_port_is_a_cluster_read_error_naming_the_path() -> None:
    reader = ApiReader(Credentials(server="https://127.0.0.1:9"))
    with pytest.raises(
        ClusterReadError, match=r"GET /apis/apps/v1/namespaces/x/controllerrevisions"
    ):
        get_json(reader, "/apis/apps/v1/namespaces/x/controllerrevisions")
