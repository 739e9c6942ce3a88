"""Kubeconfig credentials as kubectl reads them: exec plugins, contexts, namespaces, merging.

The exec plugin here is a real script (a tiny Python program printing an ExecCredential and
counting its runs in a file), run by the official client's loader; no API is called.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from webhook.core.errors import ApiConfigError
from webhook.kube import reader
from webhook.kube.reader import Credentials, load_credentials

EXEC_API = "client.authentication.k8s.io/v1beta1"
SERVER = "https://127.0.0.1:6443"


def plugin(tmp_path: Path, expires_in: timedelta | None = None, fails: bool = False) -> Path:
    """A credential plugin printing token-N on its Nth run (N counted in runs.txt)."""
    runs = tmp_path / "runs.txt"
    expiry = ""
    if expires_in is not None:
        stamp = (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
        expiry = f', "expirationTimestamp": "{stamp}"'
    script = tmp_path / "credential-plugin.py"
    script.write_text(
        "import pathlib, sys\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "n = int(runs.read_text()) + 1 if runs.exists() else 1\n"
        "runs.write_text(str(n))\n"
        + ("sys.exit('no login')\n" if fails else "")
        + f"print('{{\"apiVersion\": \"{EXEC_API}\", \"kind\": \"ExecCredential\", '\n"
        f"      '\"status\": {{\"token\": \"token-' + str(n) + '\"{expiry}}}}}')\n"
    )
    return script


def runs(tmp_path: Path) -> int:
    path = tmp_path / "runs.txt"
    return int(path.read_text()) if path.exists() else 0


def exec_user(script: Path) -> dict[str, Any]:
    return {"exec": {"apiVersion": EXEC_API, "command": sys.executable, "args": [str(script)]}}


def kubeconfig(path: Path, users: dict[str, dict[str, Any]], current: str | None = "dev",
               contexts: dict[str, dict[str, Any]] | None = None) -> Path:
    contexts = contexts if contexts is not None else {
        "dev": {"cluster": "local", "user": "plugin", "namespace": "team-a"},
        "ops": {"cluster": "other", "user": "static"},
    }
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": SERVER}},
                     {"name": "other", "cluster": {"server": "https://127.0.0.2:6443",
                                                   "tls-server-name": "api.internal"}}],
        "users": [{"name": name, "user": user} for name, user in users.items()],
        "contexts": [{"name": name, "context": ctx} for name, ctx in contexts.items()],
    }
    if current is not None:
        doc["current-context"] = current
    path.write_text(json.dumps(doc))
    return path


def test_an_exec_user_gets_the_plugins_token_and_the_contexts_namespace(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", {"plugin": exec_user(plugin(tmp_path))})
    creds = load_credentials(str(path))
    assert creds.authorization is not None
    assert (creds.server, creds.namespace, creds.token, creds.authorization()) == (
        SERVER, "team-a", None, "Bearer token-1")
    assert runs(tmp_path) == 1


@pytest.mark.parametrize(
    ("expires_in", "tokens", "plugin_runs"),
    [
        (None, ["Bearer token-1", "Bearer token-1"], 1),  # no expiry: the token is kept
        (timedelta(hours=1), ["Bearer token-1", "Bearer token-1"], 1),
        # Within the client's skew of its expiry the token counts as expired: run again.
        (timedelta(seconds=30), ["Bearer token-2", "Bearer token-3"], 3),
    ],
)
def test_an_expiring_plugin_token_is_renewed_before_the_request_that_needs_it(
    tmp_path: Path, expires_in: timedelta | None, tokens: list[str], plugin_runs: int,
) -> None:
    path = kubeconfig(tmp_path / "config", {"plugin": exec_user(plugin(tmp_path, expires_in))})
    creds = load_credentials(str(path))
    assert creds.authorization is not None
    assert [creds.authorization(), creds.authorization()] == tokens
    assert runs(tmp_path) == plugin_runs


def test_a_failing_plugin_is_a_one_line_error_naming_the_context(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", {"plugin": exec_user(plugin(tmp_path, fails=True))})
    with pytest.raises(ApiConfigError, match="the user of context 'dev' yields no credentials"):
        load_credentials(str(path))


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ("ops", Credentials(server="https://127.0.0.2:6443", token="static-token",
                            server_name="api.internal")),
        (None, Credentials(server=SERVER, token="static-token", namespace="team-a")),
    ],
)
def test_a_static_user_is_read_without_the_official_client_with_its_context(
    tmp_path: Path, context: str | None, expected: Credentials,
) -> None:
    contexts = {"dev": {"cluster": "local", "user": "static", "namespace": "team-a"},
                "ops": {"cluster": "other", "user": "static"}}
    path = kubeconfig(tmp_path / "config", {"static": {"token": "static-token"}},
                      contexts=contexts)
    assert load_credentials(str(path), context) == expected


def test_context_picks_an_exec_user_other_than_the_current_ones(tmp_path: Path) -> None:
    contexts = {"dev": {"cluster": "local", "user": "plugin", "namespace": "team-a"},
                "ops": {"cluster": "other", "user": "static"}}
    users = {"plugin": exec_user(plugin(tmp_path)), "static": {"token": "static-token"}}
    path = kubeconfig(tmp_path / "config", users, current="ops", contexts=contexts)
    assert load_credentials(str(path)).token == "static-token"
    chosen = load_credentials(str(path), "dev")
    assert chosen.authorization is not None
    assert (chosen.server, chosen.namespace, chosen.authorization()) == (
        SERVER, "team-a", "Bearer token-1")


def test_an_unknown_context_is_a_one_line_error(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", {"plugin": exec_user(plugin(tmp_path))})
    with pytest.raises(ApiConfigError, match="no context named 'nope'"):
        load_credentials(str(path), "nope")


def test_several_kubeconfig_files_merge_as_kubectl_merges_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first file names the context; the user lives only in the second.
    first = kubeconfig(tmp_path / "first", {}, contexts={
        "dev": {"cluster": "local", "user": "plugin", "namespace": "merged"}})
    second = kubeconfig(tmp_path / "second", {"plugin": exec_user(plugin(tmp_path))},
                        current=None, contexts={})
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    creds = load_credentials()
    assert creds.authorization is not None
    assert (creds.server, creds.namespace, creds.authorization()) == (
        SERVER, "merged", "Bearer token-1")


def test_in_a_pod_the_namespace_is_the_pods_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "namespace").write_text("oam-system\n")
    monkeypatch.setattr(reader, "IN_CLUSTER_DIR", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.1.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert load_credentials().namespace == "oam-system"
