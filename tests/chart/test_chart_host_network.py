"""The chart's values for nodes without a pod network: hostNetwork, bind addresses, extraEnv.

tests/cluster/test_real_node.py runs them on real kubelets; here, what they render to.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures import chart as m
from webhook.cli import build_parser

HOST_NETWORK = {
    "hostNetwork": True,
    "webhook": {"port": 19443, "bindAddress": "127.1.0.200",
                "service": {"port": 19443, "clusterIP": "127.1.0.200"}},
    "controller": {"healthPort": 18080, "healthBindAddress": "$(POD_IP)"},
    "extraEnv": [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"}],
}  # fmt: skip


def _pod(values: dict[str, Any], component: str) -> dict[str, Any]:
    pod: dict[str, Any] = m.one(m.render(values), "Deployment", component)["spec"]["template"][
        "spec"]
    return pod


def _probe_hosts(container: dict[str, Any]) -> set[str | None]:
    return {container[probe]["httpGet"].get("host") for probe in ("livenessProbe",
                                                                   "readinessProbe")}


@pytest.mark.parametrize("component", ["webhook", "controller"])
def test_host_network_puts_both_pods_on_the_node_network_and_one_pod_per_node_port(
    component: str,
) -> None:
    deployment = m.one(m.render(HOST_NETWORK), "Deployment", component)
    pod = deployment["spec"]["template"]["spec"]
    assert (pod["hostNetwork"], pod["dnsPolicy"], deployment["spec"]["strategy"]) == (
        True, "ClusterFirstWithHostNet",
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
    )  # fmt: skip


def test_without_host_network_the_pods_keep_the_pod_network_and_the_default_strategy() -> None:
    deployment = m.one(m.render(), "Deployment", "controller")
    pod = deployment["spec"]["template"]["spec"]
    assert ("hostNetwork" in pod, "strategy" in deployment["spec"]) == (False, False)


def test_webhook_listens_on_its_bind_address_and_its_probes_dial_it() -> None:
    pod = _pod(HOST_NETWORK, "webhook")
    container = pod["containers"][0]
    args = build_parser().parse_args([str(a) for a in container["args"]])
    service = m.one(m.render(HOST_NETWORK), "Service", "webhook")
    assert (args.bind, args.port, _probe_hosts(container), service["spec"]["clusterIP"]) == (
        "127.1.0.200", 19443, {"127.1.0.200"}, "127.1.0.200")


def test_controller_bound_to_the_pod_ip_is_probed_at_the_pod_ip() -> None:
    container = _pod(HOST_NETWORK, "controller")["containers"][0]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
           for e in container["env"]}  # fmt: skip
    args = container["args"]
    assert (args[args.index("--health-bind") + 1], env["POD_IP"], _probe_hosts(container)) == (
        "$(POD_IP)", "status.podIP", {None})


def test_default_bind_addresses_listen_everywhere_and_probes_dial_the_pod_ip() -> None:
    hosts = [_probe_hosts(_pod({}, c)["containers"][0]) for c in ("webhook", "controller")]
    assert hosts == [{None}, {None}]


@pytest.mark.parametrize("component", ["webhook", "controller"])
def test_extra_env_reaches_both_containers_after_the_downward_api_fields(component: str) -> None:
    env = [e["name"] for e in _pod(HOST_NETWORK, component)["containers"][0]["env"]]
    assert env[-2:] == ["POD_IP", "KUBERNETES_SERVICE_HOST"]


def test_controller_replicas_elect_by_pod_name_not_by_hostname() -> None:
    # Pods on the host network share the node's hostname (and PID 1): the default
    # identity, hostname_pid, made two replicas on one host both believe they led.
    container = _pod({}, "controller")["containers"][0]
    args = build_parser().parse_args([str(a) for a in container["args"]])
    names = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]
             if "valueFrom" in e}  # fmt: skip
    assert (args.identity, names["POD_NAME"]) == ("$(POD_NAME)", "metadata.name")


@pytest.mark.parametrize(
    "values",
    [
        {"webhook": {"bindAddress": "localhost"}},
        {"controller": {"healthBindAddress": "$(HOST_IP)"}},
        {"webhook": {"service": {"clusterIP": "None"}}},
        {"extraEnv": [{"value": "x"}]},
    ],
    ids=["bind-name", "other-variable", "headless", "env-without-name"],
)
def test_schema_refuses_addresses_and_env_it_cannot_render(values: dict[str, Any]) -> None:
    assert m.template(values).returncode != 0
