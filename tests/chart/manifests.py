"""Rendering the chart with the real helm binary, and finding objects in the result.

Holds thin wrappers around `helm template` / `helm lint` and lookups over the rendered
documents, shared by the chart tests and the cluster chart test. It must not hold
assertions: tests state what they expect.
"""

from __future__ import annotations

import base64
import functools
import json
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from webhook.localcluster.tools import helm_path

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "oam-rollout"
RELEASE = "rel"
NAMESPACE = "oam-system"

# PEM-shaped text for values that need a caBundle; helm checks the shape only.
_PEM_PLACEHOLDER = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def example_ca_bundle() -> str:
    """A base64 PEM bundle, valid in shape, for external and url mode values."""
    return base64.b64encode(_PEM_PLACEHOLDER.encode()).decode()


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str


def run_helm(args: Sequence[str], values: Mapping[str, Any] | None = None) -> HelmResult:
    """Run helm with `values` written to a temporary values file."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as values_file:
        yaml.safe_dump(dict(values or {}), values_file)
        values_file.flush()
        proc = subprocess.run(
            [str(helm_path()), *args, "--values", values_file.name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    return HelmResult(proc.returncode, proc.stdout, proc.stderr)


def template(
    values: Mapping[str, Any] | None = None,
    *,
    kube_version: str | None = None,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> HelmResult:
    args = ["template", release, str(CHART_DIR), "--namespace", namespace]
    if kube_version:
        args += ["--kube-version", kube_version]
    return run_helm(args, values)


@functools.lru_cache(maxsize=64)
def _render_cached(values_json: str, kwargs_json: str) -> str:
    result = template(json.loads(values_json), **json.loads(kwargs_json))
    if result.returncode != 0:
        raise AssertionError(f"helm template failed: {result.stderr.strip()}")
    return result.stdout


def render(values: Mapping[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """The rendered objects (fresh copies); raises with helm's message when rendering fails.

    Renders are cached per values: many tests look at the same release, and helm takes a
    noticeable fraction of a second per run.
    """
    text = _render_cached(
        json.dumps(dict(values or {}), sort_keys=True), json.dumps(kwargs, sort_keys=True)
    )
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(objects: Sequence[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def one(objects: Sequence[Mapping[str, Any]], kind: str, component: str | None = None) -> Any:
    """The single object of `kind` (of one app.kubernetes.io/component, if given)."""
    found = [
        o
        for o in of_kind(objects, kind)
        if component is None
        or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    if len(found) != 1:
        names = [o["metadata"]["name"] for o in found]
        raise AssertionError(f"expected one {kind} ({component}), found {names}")
    return found[0]


def kinds(objects: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(o["kind"]) for o in objects}


def containers(objects: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(deployment name, container) for every container of every Deployment."""
    for deployment in of_kind(objects, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            yield deployment["metadata"]["name"], container
