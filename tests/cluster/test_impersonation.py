"""Acceptance: with --impersonate, the namespace's RBAC decides what an Application creates.

A real API server with RBAC and token users (alice and bob in group ``developers``,
mallory in none; see webhook.localcluster.controlplane.TOKEN_USERS), the session webhook
(which records writers) and a controller run with --impersonate as the chart's own
controller ServiceAccount (the chart's RBAC, applied for a throw-away release): its own
rights would let it create any Deployment, so every refusal below is the writer's. The
session controller, which does not impersonate, steps aside meanwhile.
"""

from __future__ import annotations

import base64
import json
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import application, manifest, plan
from tests.fixtures.chart import CHART_DIR
from tests.fixtures.cluster import TEST_LABELS, fresh_namespace, namespace_name
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.polling import eventually
from tests.fixtures.views import rollout_state
from webhook.core.labels import ANNOTATION_REQUESTER
from webhook.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

WRITER_RULES = [  # what an Application's author needs: the Application and its Rollouts
    {"apiGroups": ["core.oam.dev"], "resources": ["applications"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": ["standard.oam.dev"], "resources": ["rollouts"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
]
DEPLOYER_RULES = [
    {"apiGroups": ["apps"], "resources": ["deployments"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
]


def bob_claims() -> str:
    return json.dumps({"groups": ["developers", "system:authenticated"], "username": "bob"},
                      sort_keys=True, separators=(",", ":"))


def writer_value(username: str, *groups: str) -> str:
    return json.dumps({"groups": sorted({*groups, "system:authenticated"}),
                       "username": username}, sort_keys=True, separators=(",", ":"))


def account_token(kubectl: Any, namespace: str, account: str) -> str:
    """The token of a ServiceAccount (its token Secret, made by the token controller)."""
    secrets_of = eventually(
        lambda: json.loads(kubectl("get", "serviceaccount", account, "-n", namespace, "-o",
                                   "json").stdout).get("secrets") or [],
        timeout=30, what=f"the token Secret of {account}")
    data = json.loads(kubectl("get", "secret", secrets_of[0]["name"], "-n", namespace,
                              "-o", "json").stdout)["data"]
    return base64.b64decode(data["token"]).decode()


@pytest.fixture(scope="module")
def impersonating_controller(
    cluster: LocalCluster, controller_process: ControllerProcess, helm: Any, kubectl: Any,
    api_client: Any,
) -> Iterator[ControllerProcess]:
    """`oam-rollout controller --impersonate` as the chart's controller ServiceAccount."""
    release, home = f"imp-{secrets.token_hex(3)}", namespace_name("impersonation-home")
    identities = helm(
        "template", release, str(CHART_DIR), "--namespace", home,
        "--show-only", "templates/serviceaccounts.yaml", "--show-only", "templates/rbac.yaml",
    ).stdout  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="oam-rollout-impersonation-"))
    with fresh_namespace(api_client, home, TEST_LABELS):
        kubectl("apply", "-n", home, "-f", "-", input=identities)
        config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
        token = account_token(kubectl, home, f"{release}-oam-rollout-controller")
        for user in config["users"]:
            user["user"] = {"token": token}
        kubeconfig = workdir / "controller.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        controller = ControllerProcess(
            kubeconfig, "impersonating", lease=f"{release}-oam-rollout-controller",
            extra_args=("--impersonate", "--lease-namespace", home))
        controller_process.stop()
        try:
            controller.start()
            yield controller
        finally:
            controller.cleanup()
            kubectl("delete", "-n", home, "-f", "-", "--ignore-not-found", "--wait=false",
                    input=identities, check=False)
            controller_process.start()


class Team:
    """One namespace, its Roles, and kubectl as each token user."""

    def __init__(self, cluster: LocalCluster, kubectl: Any, namespace: str) -> None:
        self.cluster, self.kubectl, self.namespace = cluster, kubectl, namespace
        for role, rules in (("app-writer", WRITER_RULES), ("deployer", DEPLOYER_RULES)):
            kubectl("apply", "-n", namespace, "-f", "-", input=manifest({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": role}, "rules": rules}))

    def grant(self, role: str, kind: str, name: str) -> None:
        """Bind ``role`` to a User or a Group."""
        self.kubectl("apply", "-n", self.namespace, "-f", "-", input=manifest({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{role}-{kind.lower()}-{name.replace(':', '.')}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                          "name": name}]}))

    def as_user(self, user: str, *args: str, input: str | None = None,
                check: bool = True) -> Any:
        token = self.cluster.user_tokens[user]
        return self.kubectl("--token", token, "-n", self.namespace, *args, input=input,
                            check=check)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-n", self.namespace, "-o", "json").stdout)

    def deployments(self) -> list[str]:
        return sorted(d["metadata"]["name"] for d in self.get("deployments")["items"])

    def recorded_writer(self, app: str) -> str | None:
        annotations = self.get("application", app)["metadata"].get("annotations") or {}
        value = annotations.get(ANNOTATION_REQUESTER)
        return value if value is None else str(value)

    def ready(self, app: str) -> dict[str, Any]:
        conditions = (self.get("application", app).get("status") or {}).get("conditions") or []
        found: dict[str, Any] = next((c for c in conditions if c["type"] == "Ready"), {})
        return found

    def warnings(self, reason: str) -> list[str]:
        # The Rollout's (its Application gets the same, naming the component).
        events = self.get("events", "--field-selector",
                          f"reason={reason},involvedObject.kind=Rollout")["items"]
        return [e["message"] for e in events if e["type"] == "Warning"]


@pytest.fixture
def team(cluster: LocalCluster, kubectl: Any, api_client: Any) -> Iterator[Team]:
    """A fresh namespace ``t-team-a-<random>`` with the Roles, no binding yet."""
    with fresh_namespace(api_client, namespace_name("team-a"), TEST_LABELS) as namespace:
        yield Team(cluster, kubectl, namespace)


def web_app(name: str = "web", **annotations: str) -> dict[str, Any]:
    app = application(name, component=name, external_revision=None, rollout=plan(2, 1, 1))
    if annotations:
        app["metadata"]["annotations"] = annotations
    return app


def refused(user: str, namespace: str, verb: str = "patch") -> str:
    """A server-side apply is authorized as ``patch`` first (``create`` too, if it creates)."""
    return f'forbidden: user "{user}" may not {verb} deployments.apps in namespace "{namespace}"'


def test_a_writer_without_deployment_rights_gets_a_loud_failure_and_no_deployment_until_granted(
    webhook_server: Any, impersonating_controller: ControllerProcess, team: Team,
) -> None:
    del webhook_server  # installed: it records who writes each Application
    team.grant("app-writer", "User", "alice")
    team.as_user("alice", "apply", "-f", "-", input=manifest(web_app()))  # admitted
    assert team.recorded_writer("web") == writer_value("alice", "developers")
    refusal = refused("alice", team.namespace)
    ready = eventually(lambda: team.ready("web"), until=lambda c: c.get("reason") == "Forbidden",
                       timeout=30, what="the Application's Ready condition",
                       context=impersonating_controller.tail)
    assert (ready["status"], ready["message"]) == ("False", f"rollout of web failed: {refusal}")
    assert eventually(lambda: team.warnings("Forbidden"), timeout=10,
                      what="a Warning Event") == [refusal]
    # Permanent: nothing is retried meanwhile (no new Event, no new write of the Rollout).
    version = team.get("rollout", "web")["metadata"]["resourceVersion"]
    time.sleep(3)
    assert (team.deployments(), team.warnings("Forbidden")) == ([], [refusal])
    assert team.get("rollout", "web")["metadata"]["resourceVersion"] == version
    # A grant (to alice's group), then a touch: the rollout goes on, still as alice.
    team.grant("deployer", "Group", "developers")
    team.kubectl("annotate", "application", "web", "-n", team.namespace, "touched=1")
    eventually(lambda: rollout_state(team.kubectl, team.namespace, "web"),
               equals="rolloutSucceed/web-v1", timeout=90, what="the rollout after the grant",
               context=impersonating_controller.tail)
    assert team.deployments() == ["web-v1"]
    assert team.recorded_writer("web") == writer_value("alice", "developers")
    assert eventually(lambda: team.ready("web").get("reason"), equals="Reconciled",
                      timeout=30, what="the Application's Ready condition")


def test_a_claimed_writer_is_overwritten_and_the_real_writers_rights_decide(
    webhook_server: Any, impersonating_controller: ControllerProcess, team: Team,
) -> None:
    del webhook_server
    for user in ("mallory", "bob"):
        team.grant("app-writer", "User", user)
    team.grant("deployer", "Group", "developers")  # bob may create Deployments, mallory not
    forged = web_app("forged", **{ANNOTATION_REQUESTER: bob_claims()})
    team.as_user("mallory", "apply", "-f", "-", input=manifest(forged))
    assert team.recorded_writer("forged") == writer_value("mallory")
    refusal = refused("mallory", team.namespace)
    eventually(lambda: team.ready("forged").get("message"),
               equals=f"rollout of forged failed: {refusal}", timeout=30,
               what="the refusal of mallory's rollout", context=impersonating_controller.tail)
    # bob's own Application rolls out as bob; mallory cannot take it over by annotating it.
    team.as_user("bob", "apply", "-f", "-", input=manifest(web_app("bobs")))
    team.as_user("mallory", "annotate", "--overwrite", "application", "bobs",
                 f"{ANNOTATION_REQUESTER}={writer_value('mallory')}")
    assert team.recorded_writer("bobs") == writer_value("bob", "developers")
    eventually(lambda: rollout_state(team.kubectl, team.namespace, "bobs"),
               equals="rolloutSucceed/bobs-v1", timeout=90, what="bob's rollout",
               context=impersonating_controller.tail)
    assert team.deployments() == ["bobs-v1"]


def test_a_service_account_writer_is_impersonated_as_itself_with_its_groups(
    webhook_server: Any, impersonating_controller: ControllerProcess, team: Team,
) -> None:
    del webhook_server
    team.kubectl("create", "serviceaccount", "gitops", "-n", team.namespace)
    account = f"system:serviceaccount:{team.namespace}:gitops"
    team.grant("app-writer", "User", account)
    # Deployments through its groups only: impersonation must carry them.
    team.grant("deployer", "Group", f"system:serviceaccounts:{team.namespace}")
    token = account_token(team.kubectl, team.namespace, "gitops")
    team.kubectl("--token", token, "-n", team.namespace, "apply", "-f", "-",
                 input=manifest(web_app("synced")))
    assert team.recorded_writer("synced") == writer_value(
        account, "system:serviceaccounts", f"system:serviceaccounts:{team.namespace}")
    eventually(lambda: rollout_state(team.kubectl, team.namespace, "synced"),
               equals="rolloutSucceed/synced-v1", timeout=90, what="the GitOps account's rollout",
               context=impersonating_controller.tail)
    assert team.deployments() == ["synced-v1"]
