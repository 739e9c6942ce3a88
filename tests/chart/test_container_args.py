"""The chart's container commands, the Dockerfile and the CLI cannot drift apart.

The image cannot be built on the test machine, so instead the arguments the chart renders
are parsed by the CLI's own parser, and the Dockerfile's entrypoint is checked to be the
console script that parser belongs to.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import chart as m
from webhook.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _dockerfile_instruction(name: str) -> str:
    """The argument of the last `name` instruction of the final stage."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    found = [line.split(None, 1)[1] for line in lines if line.startswith(f"{name} ")]
    if not found:
        raise AssertionError(f"Dockerfile has no {name}")
    return found[-1].strip()


def _parse(container: dict[str, Any]) -> dict[str, Any]:
    args = build_parser().parse_args([str(a) for a in container["args"]])
    # Paths compare as the strings the chart wrote.
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def _container(values: dict[str, Any], component: str) -> dict[str, Any]:
    deployment = m.one(m.render(values), "Deployment", component)
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_image_entrypoint_is_the_oam_rollout_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert (json.loads(_dockerfile_instruction("ENTRYPOINT")), scripts["oam-rollout"]) == (
        ["oam-rollout"],
        "webhook.cli:main",
    )


def test_chart_leaves_the_image_entrypoint_in_place() -> None:
    overrides = [(name, "command" in c) for name, c in m.containers(m.render())]
    assert overrides == [("rel-oam-rollout-controller", False), ("rel-oam-rollout-webhook", False)]


def test_image_user_is_the_non_root_user_the_chart_runs_as() -> None:
    match = re.fullmatch(r"(\d+):(\d+)", _dockerfile_instruction("USER"))
    assert match is not None, "USER must be numeric uid:gid so runAsNonRoot can be checked"
    pod = m.one(m.render(), "Deployment", "webhook")["spec"]["template"]["spec"]
    assert (int(match[1]), int(match[2])) == (
        pod["securityContext"]["runAsUser"],
        pod["securityContext"]["runAsGroup"],
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {},
            {
                "command": "webhook",
                "tls_cert": "/tls/tls.crt",
                "tls_key": "/tls/tls.key",
                "bind": "0.0.0.0",
                "port": 9443,
                "workers": 2,
                "threads": 4,
            },
        ),
        (
            {"webhook": {"port": 10443, "workers": 3, "threads": 8}},
            {"command": "webhook", "port": 10443, "workers": 3, "threads": 8},
        ),
    ],
    ids=["defaults", "tuned"],
)
def test_webhook_container_args_parse_with_the_cli(
    values: dict[str, Any], expected: dict[str, Any]
) -> None:
    parsed = _parse(_container(values, "webhook"))
    assert {key: parsed.get(key) for key in expected} == expected


def test_webhook_serves_on_the_port_its_probes_and_service_use() -> None:
    container = _container({"webhook": {"port": 10443}}, "webhook")
    parsed = _parse(container)
    mounts = {v["name"]: v["mountPath"] for v in container["volumeMounts"]}
    assert (
        parsed["port"],
        str(Path(parsed["tls_cert"]).parent),
        str(Path(parsed["tls_key"]).parent),
    ) == (container["ports"][0]["containerPort"], mounts["tls"], mounts["tls"])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {},
            {
                "command": "controller",
                "leader_elect": True,
                "lease_namespace": m.NAMESPACE,
                "lease_name": f"{m.RELEASE}-oam-rollout-controller",
                "progress_deadline": 600,
                "revision_history_limit": 10,
                "health_bind": "0.0.0.0",
                "health_port": 8080,
            },
        ),
        (
            {"controller": {"progressDeadlineSeconds": 0, "healthPort": 9090}},
            {"command": "controller", "progress_deadline": 0, "health_port": 9090},
        ),
        ({"controller": {"leaderElect": False}}, {"command": "controller", "leader_elect": False}),
        (
            {"controller": {"revisionHistoryLimit": 3}},
            {"command": "controller", "revision_history_limit": 3},
        ),
        (
            {"controller": {"watchNamespace": "team-a"}},
            {"command": "controller", "leader_elect": True, "namespace": "team-a"},
        ),
    ],
    ids=["defaults", "no-deadline-other-port", "single-replica", "history", "one-namespace"],
)
def test_controller_container_args_parse_with_the_cli(
    values: dict[str, Any], expected: dict[str, Any]
) -> None:
    parsed = _parse(_container(values, "controller"))
    assert {key: parsed.get(key) for key in expected} == expected


def test_controller_serves_probes_on_the_port_the_probes_and_service_use() -> None:
    values = {"controller": {"healthPort": 9090}, "serviceMonitor": {"enabled": True}}
    objects = m.render(values)
    container = m.one(objects, "Deployment", "controller")["spec"]["template"]["spec"][
        "containers"][0]
    service = m.one(objects, "Service", "controller")
    parsed = _parse(container)
    assert (parsed["health_bind"], parsed["health_port"]) == ("0.0.0.0", 9090)
    assert (container["ports"][0]["containerPort"], service["spec"]["ports"][0]["port"]) == (
        9090, 9090)


def test_image_build_context_holds_everything_the_wheel_is_built_from() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {
        "pyproject.toml",
        project["project"]["readme"],
        *wheel["packages"],
        *wheel.get("force-include", {}),
    }
    copied = {
        source.rstrip("/")
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    }
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert (needed - copied, needed & ignored) == (set(), set())
