"""The chart's RBAC on a real API server: each component may do its job, and no more.

Only the chart's ServiceAccounts, ClusterRoles, Role and bindings are applied (rendered
by helm for a throw-away release in a test namespace), so no webhook is registered.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.chart import CHART_DIR
from tests.fixtures.cluster import namespace_name
from tests.fixtures.polling import eventually
from webhook.kube.reader import load_api_reader, read_observed_state

pytestmark = pytest.mark.cluster

OTHER_NAMESPACE = "default"


@pytest.fixture(scope="module")
def rbac_release(helm: Any, kubectl: Any, api_client: Any) -> Iterator[tuple[str, str]]:
    """(release, namespace) with the chart's identities applied; all removed after."""
    from kubernetes import client

    release, namespace = f"rbac-{secrets.token_hex(3)}", namespace_name("chart-rbac")
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": namespace}})
    manifest = helm(
        "template", release, str(CHART_DIR), "--namespace", namespace,
        "--show-only", "templates/serviceaccounts.yaml", "--show-only", "templates/rbac.yaml",
    ).stdout  # fmt: skip
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
        yield release, namespace
    finally:
        kubectl("delete", "-n", namespace, "-f", "-", "--ignore-not-found", "--wait=false",
                input=manifest, check=False)  # fmt: skip
        core.delete_namespace(namespace, propagation_policy="Background")


def _can(kubectl: Any, account: str, verb: str, resource: str, namespace: str) -> bool:
    """`kubectl auth can-i`; resource may name a subresource as `rollouts.group/status`."""
    resource, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, resource, "-n", namespace, "--as", account]
    if subresource:
        args += ["--subresource", subresource]
    return kubectl(*args, check=False).stdout.strip() == "yes"


@pytest.mark.parametrize(
    ("component", "verb", "resource", "where", "allowed"),
    [
        ("webhook", "list", "controllerrevisions.apps", "other", True),
        ("webhook", "list", "rollouts.standard.oam.dev", "other", True),
        ("webhook", "get", "deployments.apps", "other", True),
        ("webhook", "watch", "clonesets.apps.kruise.io", "other", True),
        ("webhook", "create", "controllerrevisions.apps", "other", False),
        ("webhook", "update", "applications.core.oam.dev", "other", False),
        ("webhook", "get", "secrets", "release", False),
        ("controller", "create", "controllerrevisions.apps", "other", True),
        ("controller", "patch", "deployments.apps", "other", True),
        ("controller", "delete", "clonesets.apps.kruise.io", "other", True),
        ("controller", "create", "rollouts.standard.oam.dev", "other", True),
        ("controller", "patch", "rollouts.standard.oam.dev/status", "other", True),
        ("controller", "update", "applications.core.oam.dev/status", "other", True),
        ("controller", "create", "events", "other", True),
        ("controller", "update", "leases.coordination.k8s.io", "release", True),
        ("controller", "update", "leases.coordination.k8s.io", "other", False),
        ("controller", "get", "secrets", "other", False),
        ("controller", "delete", "applications.core.oam.dev", "other", False),
        ("controller", "create", "pods", "other", False),
        # controller.impersonate (on by default): users, groups and accounts, nothing more.
        ("controller", "impersonate", "users", "other", True),
        ("controller", "impersonate", "groups", "other", True),
        ("controller", "impersonate", "serviceaccounts", "other", True),
        ("controller", "impersonate", "userextras.authentication.k8s.io/scopes", "other",
         False),
        ("controller", "impersonate", "uids.authentication.k8s.io", "other", False),
        ("webhook", "impersonate", "users", "other", False),
    ],
)
def test_each_component_may_do_its_job_and_no_more(
    rbac_release: tuple[str, str],
    kubectl: Any,
    component: str,
    verb: str,
    resource: str,
    where: str,
    allowed: bool,
) -> None:
    release, namespace = rbac_release
    account = f"system:serviceaccount:{namespace}:{release}-oam-rollout-{component}"
    target = namespace if where == "release" else OTHER_NAMESPACE
    assert _can(kubectl, account, verb, resource, target) is allowed


def test_the_webhook_account_reads_the_observed_state_it_admits_with(
    rbac_release: tuple[str, str], kubectl: Any, cluster: Any, tmp_path: Path
) -> None:
    release, namespace = rbac_release
    account = f"{release}-oam-rollout-webhook"
    # The token controller adds the account's token Secret shortly after it is created.
    tokens = eventually(
        lambda: json.loads(kubectl("get", "serviceaccount", account, "-n", namespace, "-o",
                                   "json").stdout).get("secrets") or [],
        timeout=30, what=f"the token Secret of {account}")
    secret_name = tokens[0]["name"]
    token_b64 = json.loads(
        kubectl("get", "secret", secret_name, "-n", namespace, "-o", "json").stdout
    )["data"]["token"]
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    for user in config["users"]:
        user["user"] = {"token": base64.b64decode(token_b64).decode()}
    kubeconfig = tmp_path / "webhook-account.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    state = read_observed_state(load_api_reader(str(kubeconfig)), OTHER_NAMESPACE, "nothing")
    assert (state.namespace, state.revisions_of("nothing")) == (OTHER_NAMESPACE, ())
