"""The local control plane's pure parts: tool lookup, simulations' decisions, CRDs, CLI.

No control plane here: these run in milliseconds and pin the rules the cluster
tests rely on (which binary wins, what the simulated kubelet and CloneSet
controller decide for a given object, which columns the CRDs print).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import namespace_name
from webhook import cli
from webhook.localcluster import tools
from webhook.localcluster.cloneset import (
    PodView,
    cloneset_status,
    plan_cloneset,
    revision_name,
    scaled_partition,
    template_shape,
)
from webhook.localcluster.cluster import LocalCluster
from webhook.localcluster.controlplane import ClusterStartError, crd_paths, kubeconfig_document
from webhook.localcluster.kubelet import SimulatedKubelet
from webhook.localcluster.pods import (
    CRASH_AFTER,
    NEVER_READY,
    PodAction,
    parse_duration,
    pod_action,
    status_patch,
)

REPO = Path(__file__).resolve().parents[2]
NODE = "sim-node"

# -- the simulated kubelet -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("2s", 2.0), ("1.5", 1.5), ("1m", 60.0), (" 3s ", 3.0)],
)
def test_durations_read_like_kubernetes_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1s", "2h", "1s2"])
def test_durations_that_are_not_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def pod(
    node: str | None = NODE,
    image: str = "app:2",
    reported: str | None = "app:2",
    ready: str | None = "True",
    phase: str = "Running",
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
    waiting: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if reported is not None:
        state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
        status["containerStatuses"] = [{"name": "main", "image": reported, "state": state}]
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready}]
    meta: dict[str, Any] = {"name": "p", "namespace": "ns", "uid": "u1"}
    if annotations:
        meta["annotations"] = annotations
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": image}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (pod(node=None, reported=None, ready=None, phase="Pending"), PodAction.BIND),
        (pod(node="other-node"), PodAction.IGNORE),
        (pod(deleting=True), PodAction.FINALIZE),
        (pod(node=None, deleting=True), PodAction.FINALIZE),
        (pod(node="other-node", deleting=True), PodAction.IGNORE),
        (pod(reported=None, ready=None, phase="Pending"), PodAction.START),
        (pod(reported="app:1"), PodAction.START),
        (pod(ready="False", phase="Pending", waiting="ContainerCreating"), PodAction.AWAIT_READY),
        (pod(), PodAction.IGNORE),
        (pod(phase="Succeeded"), PodAction.IGNORE),
        (pod(ready="False", waiting="CrashLoopBackOff"), PodAction.IGNORE),
        (
            pod(ready="False", phase="Pending", annotations={NEVER_READY: "true"}),
            PodAction.HOLD_UNREADY,
        ),
        (pod(ready="False", annotations={NEVER_READY: "true"}), PodAction.IGNORE),
        (pod(ready="False", annotations={CRASH_AFTER: "1s"}), PodAction.AWAIT_READY),
    ],
    ids=[
        "unscheduled-is-bound",
        "another-nodes-pod-is-left-alone",
        "terminating-is-finalized",
        "terminating-unscheduled-is-finalized",
        "another-nodes-terminating-pod-is-left-alone",
        "bound-and-not-started-starts",
        "image-changed-in-place-restarts",
        "started-and-not-ready-awaits-readiness",
        "ready-and-current-is-left-alone",
        "finished-is-left-alone",
        "crashed-stays-crashed",
        "never-ready-is-held-unready",
        "never-ready-held-is-left-alone",
        "crash-later-still-becomes-ready-first",
    ],
)
def test_the_simulated_kubelet_picks_the_next_step_a_kubelet_would(
    case: dict[str, Any], expected: PodAction
) -> None:
    assert pod_action(case, NODE) is expected


@pytest.mark.parametrize(
    ("state", "phase", "ready", "restarts", "container_state"),
    [
        ("starting", "Pending", "False", 0, "waiting"),
        ("running", "Running", "True", 0, "running"),
        ("unready", "Running", "False", 0, "running"),
        ("crashed", "Running", "False", 1, "waiting"),
    ],
)
def test_reported_pod_status_matches_the_simulated_state(
    state: str, phase: str, ready: str, restarts: int, container_state: str
) -> None:
    before = pod(reported=None, ready=None, phase="Pending")
    status = status_patch(before, state, "2026-01-01T00:00:00Z")["status"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    container = status["containerStatuses"][0]
    assert (
        status["phase"],
        conditions["Ready"],
        conditions["ContainersReady"],
        conditions["PodScheduled"],
        container["restartCount"],
        list(container["state"]),
        container["image"],
        status["podIP"].startswith("127."),
    ) == (phase, ready, ready, "True", restarts, [container_state], "app:2", True)


# -- the simulated CloneSet controller ---------------------------------------------------


@pytest.mark.parametrize(
    ("partition", "replicas", "count"),
    [
        (None, 5, 0),
        (0, 5, 0),
        (3, 5, 3),
        (9, 5, 5),
        (-1, 5, 0),
        ("40%", 5, 2),
        ("50%", 5, 3),
        ("2", 5, 2),
    ],
)
def test_partitions_count_pods_and_percentages_round_up(
    partition: int | str | None, replicas: int, count: int
) -> None:
    assert scaled_partition(partition, replicas) == count


def views(*specs: tuple[str, str, bool]) -> list[PodView]:
    """(name, revision, ready) -> PodViews created in the order given, same shape."""
    return [
        PodView(name, rev, ready, False, f"2026-01-01T00:00:0{i}Z", "shape")
        for i, (name, rev, ready) in enumerate(specs)
    ]


@pytest.mark.parametrize(
    ("replicas", "partition", "pods", "expected"),
    [
        (3, 0, [], {"create": 3}),
        (2, 0, views(("a", "new", True), ("b", "new", True)), {}),
        # Scale in: unready first, then old revision, then newest.
        (1, 0, views(("a", "new", True), ("b", "new", False)), {"delete": ("b",)}),
        (1, 0, views(("a", "old", True), ("b", "new", True)), {"delete": ("a",)}),
        (1, 0, views(("a", "new", True), ("b", "new", True)), {"delete": ("b",)}),
        # Update: all but `partition` pods, unready old pods first, then oldest.
        (
            3,
            1,
            views(("a", "old", True), ("b", "old", True), ("c", "old", True)),
            {"update_in_place": ("a", "b")},
        ),
        (
            3,
            0,
            views(("a", "old", True), ("b", "old", False), ("c", "new", True)),
            {"update_in_place": ("b", "a")},
        ),
        (3, 3, views(("a", "old", True), ("b", "old", True), ("c", "old", True)), {}),
        # Scaling out counts the new pods as updated.
        (4, 2, views(("a", "old", True), ("b", "old", True)), {"create": 2}),
    ],
    ids=[
        "creates-missing-pods",
        "steady-state-does-nothing",
        "scale-in-takes-unready-first",
        "scale-in-takes-old-revision-next",
        "scale-in-takes-newest-last",
        "partition-keeps-old-pods",
        "update-takes-unready-first",
        "partition-of-all-updates-none",
        "scale-out-pods-are-updated-pods",
    ],
)
def test_the_cloneset_plan_scales_and_updates_like_kruise(
    replicas: int, partition: int, pods: list[PodView], expected: dict[str, Any]
) -> None:
    plan = plan_cloneset(replicas, partition, "new", "shape", pods)
    wanted = {"create": 0, "delete": (), "update_in_place": (), "recreate": (), **expected}
    assert vars(plan) == wanted


def test_pods_whose_template_changed_beyond_images_are_recreated() -> None:
    pods = [PodView("a", "old", True, False, "t", "other-shape")]
    plan = plan_cloneset(1, 0, "new", "shape", pods)
    assert (plan.update_in_place, plan.recreate) == ((), ("a",))


def test_a_paused_cloneset_still_scales_but_does_not_update() -> None:
    plan = plan_cloneset(2, 0, "new", "shape", views(("a", "old", True)), paused=True)
    assert vars(plan) == {"create": 1, "delete": (), "update_in_place": (), "recreate": ()}


def template(image: str, env: str = "x") -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "cs"}},
        "spec": {"containers": [{"name": "main", "image": image, "env": [{"name": env}]}]},
    }


def test_revisions_follow_the_template_and_shapes_ignore_images() -> None:
    one, two, other = template("app:1"), template("app:2"), template("app:1", env="y")
    revs = [
        revision_name({"metadata": {"name": "cs"}, "spec": {"template": t}}) for t in (one, two)
    ]
    assert (
        revs[0] != revs[1],
        revs[0].startswith("cs-"),
        template_shape(one) == template_shape(two),
        template_shape(one) == template_shape(other),
    ) == (True, True, True, False)


def test_cloneset_status_counts_like_kruise() -> None:
    cloneset = {
        "metadata": {"name": "cs", "generation": 4},
        "spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}},
    }
    pods = [
        *views(("a", "new", True), ("b", "new", False), ("c", "old", True)),
        PodView("d", "new", True, True, "t", "shape"),  # terminating: not counted
    ]
    assert cloneset_status(cloneset, pods, "new") == {
        "observedGeneration": 4,
        "replicas": 3,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "updatedReplicas": 2,
        "updatedReadyReplicas": 1,
        "updateRevision": "new",
        "currentRevision": "old",
        "labelSelector": "a=1,b=2",
    }


# -- the CRDs --------------------------------------------------------------------------


def crd(name: str) -> dict[str, Any]:
    docs = {p.name: yaml.safe_load(p.read_text()) for p in crd_paths()}
    return docs[name]


@pytest.mark.parametrize(
    ("file", "names", "short", "version", "columns"),
    [
        (
            "applications.yaml",
            ("core.oam.dev", "Application", "applications"),
            ["app"],
            "v1beta1",
            [
                ("COMPONENT", ".spec.components[*].name"),
                ("TYPE", ".spec.components[*].type"),
                ("PHASE", ".status.status"),
                ("HEALTHY", ".status.services[*].healthy"),
                ("STATUS", ".status.services[*].message"),
                ("AGE", ".metadata.creationTimestamp"),
            ],
        ),
        (
            "rollouts.yaml",
            ("standard.oam.dev", "Rollout", "rollouts"),
            [],
            "v1alpha1",
            [
                ("TARGET", ".status.rolloutTargetSize"),
                ("UPGRADED", ".status.upgradedReplicas"),
                ("READY", ".status.upgradedReadyReplicas"),
                ("BATCH-STATE", ".status.batchRollingState"),
                ("ROLLING-STATE", ".status.rollingState"),
                ("AGE", ".metadata.creationTimestamp"),
            ],
        ),
        (
            "clonesets.yaml",
            ("apps.kruise.io", "CloneSet", "clonesets"),
            ["clone"],
            "v1alpha1",
            [
                ("DESIRED", ".spec.replicas"),
                ("UPDATED", ".status.updatedReplicas"),
                ("UPDATED_READY", ".status.updatedReadyReplicas"),
                ("READY", ".status.readyReplicas"),
                ("TOTAL", ".status.replicas"),
                ("AGE", ".metadata.creationTimestamp"),
            ],
        ),
    ],
)
def test_each_crd_serves_its_kind_with_the_printer_columns_of_the_spec(
    file: str,
    names: tuple[str, str, str],
    short: list[str],
    version: str,
    columns: list[tuple[str, str]],
) -> None:
    doc = crd(file)
    spec = doc["spec"]
    (served,) = spec["versions"]
    assert (
        doc["metadata"]["name"],
        (spec["group"], spec["names"]["kind"], spec["names"]["plural"]),
        spec["names"].get("shortNames", []),
        (served["name"], served["served"], served["storage"]),
        "status" in served["subresources"],
        [(c["name"], c["jsonPath"]) for c in served["additionalPrinterColumns"]],
    ) == (f"{names[2]}.{names[0]}", names, short, (version, True, True), True, columns)


def test_user_properties_stay_open_in_the_application_schema() -> None:
    schema = crd("applications.yaml")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    component = schema["properties"]["spec"]["properties"]["components"]["items"]
    trait = component["properties"]["traits"]["items"]
    assert (
        sorted(component["properties"]),
        component["properties"]["properties"].get("x-kubernetes-preserve-unknown-fields"),
        trait["properties"]["properties"].get("x-kubernetes-preserve-unknown-fields"),
        schema["properties"]["status"].get("x-kubernetes-preserve-unknown-fields"),
    ) == (["externalRevision", "name", "properties", "traits", "type"], True, True, True)


# -- tool lookup -------------------------------------------------------------------------


def executable(path: Path, content: bytes = b"#!/bin/sh\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o755)
    return path


def shared_dir(tmp: Path, name: str, content: bytes, claimed: str | None = None) -> Path:
    shared = tmp / "shared"
    shared.mkdir()
    (shared / f"{name}.xz").write_bytes(lzma.compress(content))
    digest = claimed or hashlib.sha256(content).hexdigest()
    (shared / "SHA256SUMS").write_text(f"{digest}  {name}\n{'0' * 64}  {name}.xz\n")
    return shared


@pytest.fixture
def isolated_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No KUBEBUILDER_ASSETS, an empty cache home and an empty shared dir."""
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("OAM_ROLLOUT_SHARED_K8S", str(tmp_path / "empty"))
    return tmp_path


def test_kubebuilder_assets_come_before_the_cache(
    isolated_lookup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = executable(isolated_lookup / "assets" / "kube-apiserver").parent
    executable(tools.k8s_cache_dir() / "kube-apiserver")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    assert tools.control_plane_binary("kube-apiserver", allow_build=False) == (
        assets / "kube-apiserver",
        "KUBEBUILDER_ASSETS",
    )


def test_the_cache_comes_before_the_shared_binaries(
    isolated_lookup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = executable(tools.k8s_cache_dir() / "kube-apiserver")
    shared = shared_dir(isolated_lookup, "kube-apiserver", b"shared build")
    monkeypatch.setenv("OAM_ROLLOUT_SHARED_K8S", str(shared))
    assert tools.control_plane_binary("kube-apiserver", allow_build=False) == (cached, "cache")


def test_shared_binaries_are_unpacked_into_the_cache_once_their_sum_matches(
    isolated_lookup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = shared_dir(isolated_lookup, "kube-controller-manager", b"\x7fELF pretend")
    monkeypatch.setenv("OAM_ROLLOUT_SHARED_K8S", str(shared))
    path, source = tools.control_plane_binary("kube-controller-manager", allow_build=False)
    again = tools.control_plane_binary("kube-controller-manager", allow_build=False)
    assert (path, source, path.read_bytes(), os.access(path, os.X_OK), again[1]) == (
        tools.k8s_cache_dir() / "kube-controller-manager",
        f"unpacked from {shared}",
        b"\x7fELF pretend",
        True,
        "cache",
    )


def test_a_shared_binary_with_the_wrong_sum_is_refused_and_not_cached(
    isolated_lookup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = shared_dir(isolated_lookup, "kube-apiserver", b"tampered", claimed="ab" * 32)
    monkeypatch.setenv("OAM_ROLLOUT_SHARED_K8S", str(shared))
    with pytest.raises(tools.ToolMissingError, match="SHA256SUMS says abab"):
        tools.control_plane_binary("kube-apiserver", allow_build=False)
    assert sorted(p.name for p in tools.k8s_cache_dir().iterdir()) == []


def test_missing_control_plane_binaries_say_how_to_get_them(isolated_lookup: Path) -> None:
    with pytest.raises(tools.ToolMissingError) as caught:
        tools.control_plane_binary("kube-apiserver", allow_build=False)
    message = str(caught.value)
    assert ("KUBEBUILDER_ASSETS" in message, "scripts/build-k8s.sh" in message) == (True, True)


# A stand-in for scripts/build-k8s.sh: records its arguments, installs two fake binaries.
STUB_BUILD = """#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$(dirname "$0")/calls.log"
echo "+ stub build log"
[ "$1" = --out ] || exit 9
mkdir -p "$2"
for b in kube-apiserver kube-controller-manager; do
  printf '#!/bin/sh\\necho built\\n' > "$2/$b"; chmod +x "$2/$b"
done
"""


@pytest.fixture
def checkout_without_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with no ../shared/k8s beside it, no KUBEBUILDER_ASSETS, an empty cache.

    repo_root() and the working directory both point into tmp_path, so the real
    ../shared/k8s beside this checkout cannot be found.
    """
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.delenv("OAM_ROLLOUT_SHARED_K8S", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    checkout = tmp_path / "work" / "main"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\nname = 'fake'\n")
    monkeypatch.setattr(tools, "repo_root", lambda: checkout)
    monkeypatch.chdir(checkout)
    return checkout


def stub_build_script(checkout: Path, body: str = STUB_BUILD) -> Path:
    return executable(checkout / "scripts" / "build-k8s.sh", body.encode())


def build_calls(checkout: Path) -> list[str]:
    log = checkout / "scripts" / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_without_shared_binaries_or_cache_the_build_script_fills_the_cache_once(
    checkout_without_shared: Path,
) -> None:
    stub_build_script(checkout_without_shared)
    apiserver = tools.control_plane_binary("kube-apiserver")
    kcm = tools.control_plane_binary("kube-controller-manager")
    assert (tools.shared_k8s_dir(), apiserver, kcm, build_calls(checkout_without_shared)) == (
        None,
        (tools.k8s_cache_dir() / "kube-apiserver", "built from source"),
        (tools.k8s_cache_dir() / "kube-controller-manager", "cache"),
        [f"--out {tools.k8s_cache_dir()}"],
    )


def test_the_build_log_goes_to_stderr_so_stdout_stays_evaluable(
    checkout_without_shared: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    stub_build_script(checkout_without_shared)
    tools.control_plane_binary("kube-apiserver")
    captured = capfd.readouterr()
    assert ("stub build log" in captured.out, "+ stub build log" in captured.err) == (False, True)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("#!/bin/sh\nexit 3\n", r"build-k8s\.sh failed \(exit 3\)"),
        ("#!/bin/sh\nexit 0\n", r"build-k8s\.sh failed \(exit 0\)"),
    ],
)
def test_a_build_that_fails_or_installs_nothing_is_an_error(
    checkout_without_shared: Path, body: str, error: str
) -> None:
    stub_build_script(checkout_without_shared, body)
    with pytest.raises(tools.ToolMissingError, match=error):
        tools.control_plane_binary("kube-apiserver")


@pytest.mark.parametrize(
    ("source", "reported"),
    [("KUBEBUILDER_ASSETS", "KUBEBUILDER_ASSETS"), ("cache", "cache"), ("shared", "unpacked")],
)
def test_the_fast_paths_never_run_the_build_script(
    checkout_without_shared: Path, monkeypatch: pytest.MonkeyPatch, source: str, reported: str
) -> None:
    stub_build_script(checkout_without_shared)
    if source == "KUBEBUILDER_ASSETS":
        assets = checkout_without_shared.parent / "assets"
        monkeypatch.setenv("KUBEBUILDER_ASSETS", str(executable(assets / "kube-apiserver").parent))
    elif source == "cache":
        executable(tools.k8s_cache_dir() / "kube-apiserver")
    else:
        # ../shared/k8s beside the checkout, found the way a real checkout finds it.
        built = shared_dir(checkout_without_shared.parents[1], "kube-apiserver", b"shared build")
        (checkout_without_shared.parent / "shared").mkdir()
        built.rename(checkout_without_shared.parent / "shared" / "k8s")
    _, found = tools.control_plane_binary("kube-apiserver")
    assert (found.split(" ")[0], build_calls(checkout_without_shared)) == (reported, [])


def test_without_allow_build_the_script_is_named_but_not_run(
    checkout_without_shared: Path,
) -> None:
    stub_build_script(checkout_without_shared)
    with pytest.raises(tools.ToolMissingError, match=r"run scripts/build-k8s\.sh"):
        tools.control_plane_binary("kube-apiserver", allow_build=False)
    assert build_calls(checkout_without_shared) == []


def test_missing_etcd_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tools, "DEBIAN_ETCD", tmp_path / "no-etcd")
    with pytest.raises(tools.ToolMissingError, match=r"apt-get install etcd-server"):
        tools.etcd_path()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"{'a' * 64}  kube-apiserver\n{'b' * 64} *kcm\n",
            {"kube-apiserver": "a" * 64, "kcm": "b" * 64},
        ),
        ("garbage\n\n", {}),
    ],
)
def test_sha256sums_files_are_read_in_sha256sum_format(text: str, expected: dict[str, str]) -> None:
    assert tools.parse_sha256sums(text) == expected


@pytest.mark.parametrize("lookup", [tools.kubectl_path, tools.helm_path, tools.etcd_path])
def test_the_client_tools_of_the_dev_install_are_found_and_executable(lookup: Any) -> None:
    path = lookup()
    assert (path.is_file(), os.access(path, os.X_OK)) == (True, True)


# -- the build script and the CLI -----------------------------------------------------


def build_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "build-k8s.sh"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


REFLECT2_VENDOR = "vendor/github.com/modern-go/reflect2"


def test_the_build_script_dry_run_shows_the_build_and_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = build_script("--dry-run", "--out", str(out), "--workdir", str(tmp_path / "w"))
    steps = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert (result.returncode, out.exists(), (tmp_path / "w").exists()) == (0, False, False)
    assert [
        any("apt-get source --download-only kubernetes=1.20.5+really1.20.2" in s for s in steps),
        any("--no-upgrade" in s and "golang-github-modern-go-reflect2-dev" in s for s in steps),
        f"+ rm -rf -- kubernetes-1.20.2/{REFLECT2_VENDOR}" in steps,
        any("make WHAT=cmd/kube-apiserver cmd/kube-controller-manager" in s for s in steps),
        # Installed under a temp name, then renamed: a reader never sees half a binary.
        f"+ mv -f {out}/.kube-apiserver.new {out}/kube-apiserver" in steps,
    ] == [True] * 5


def test_the_build_script_leaves_binaries_that_match_their_sums_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for name in tools.CONTROL_PLANE_BINARIES:
        executable(out / name, f"#!/bin/sh\necho {name}\n".encode())
    sums = "".join(f"{tools.sha256_of(out / n)}  {n}\n" for n in tools.CONTROL_PLANE_BINARIES)
    (out / "SHA256SUMS").write_text(sums)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    result = build_script("--out", str(out), "--workdir", str(tmp_path / "w"))
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    built = (tmp_path / "w").exists()
    assert (result.returncode, "already holds" in result.stdout, after, built) == (
        0,
        True,
        before,
        False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--bogus"], "unknown argument: --bogus"), (["--out"], "--out needs a directory")],
)
def test_the_build_script_refuses_bad_arguments_with_usage(args: list[str], message: str) -> None:
    result = build_script(*args)
    assert (result.returncode, message in result.stderr) == (2, True)


def test_cluster_env_without_a_running_cluster_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code = cli.main(["cluster", "env", "--name", "nothing-here"])
    err = capsys.readouterr().err
    assert (code, "oam-rollout cluster up" in err) == (1, True)


def test_a_negative_ready_delay_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["cluster", "up", "--ready-delay", "-1"])
    assert (code, capsys.readouterr().err.strip()) == (
        2,
        "oam-rollout cluster: --ready-delay must be >= 0",
    )


def test_the_admin_kubeconfig_trusts_the_apiserver_certificate_and_uses_the_token() -> None:
    doc = kubeconfig_document("https://127.0.0.1:1234", Path("/w/certs/apiserver.crt"), "tok")
    assert (
        doc["clusters"][0]["cluster"],
        doc["users"][0]["user"],
        doc["current-context"],
    ) == (
        {"server": "https://127.0.0.1:1234", "certificate-authority": "/w/certs/apiserver.crt"},
        {"token": "tok"},
        "oam-rollout-local",
    )


@pytest.mark.parametrize(
    "test_name",
    ["test_x", "test_" + "long_" * 30 + "[param-A/B]", "TEST__Weird..Name"],
)
def test_namespace_names_are_dns_labels(test_name: str) -> None:
    name = namespace_name(test_name)
    assert (len(name) <= 63, bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name))) == (
        True,
        True,
    )


@pytest.mark.parametrize("cidr", ["127.1.0.0/24", "127.2.0.0/16"])
def test_service_ranges_inside_loopback_are_used(cidr: str) -> None:
    assert LocalCluster(service_cidr=cidr).service_cidr == cidr


@pytest.mark.parametrize(
    ("cidr", "error"),
    [
        ("10.96.0.0/12", "must lie inside 127.0.0.0/8"),
        ("::1/128", "must lie inside 127.0.0.0/8"),
        ("127.1.0.0/33", "is not a network"),
    ],
)
def test_service_ranges_outside_loopback_are_refused(cidr: str, error: str) -> None:
    with pytest.raises(ClusterStartError, match=re.escape(error)):
        LocalCluster(service_cidr=cidr)


class FakeCore:
    """Stands in for CoreV1Api: serves one pod, records status patches."""

    def __init__(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.patches: list[dict[str, Any]] = []

    def read_namespaced_pod(self, name: str, namespace: str, **_: Any) -> Any:
        return type("Resp", (), {"data": json.dumps(self.pod).encode()})()

    def patch_namespaced_pod_status(
        self, name: str, namespace: str, body: dict[str, Any], **_: Any
    ) -> None:
        self.patches.append(body)


def test_a_readiness_timer_outrun_by_an_image_change_rearms_for_the_new_image() -> None:
    kubelet = SimulatedKubelet(Path("unused"), ready_delay=0.0, node_name=NODE)
    starting = pod(image="app:1", reported=None, ready=None, phase="Pending")
    core = FakeCore(starting)
    kubelet._core = core
    kubelet._on_pod("ADDED", starting)  # START: patch + a timer for app:1
    # The image changes in place before the timer fires; the restart is deduplicated.
    core.pod = pod(image="app:2", reported="app:2", ready="False", waiting="ContainerCreating")
    kubelet._on_pod("MODIFIED", core.pod)
    first = kubelet._timers[0]
    kubelet._timers.clear()
    kubelet._pending.clear()
    kubelet._fire(first)  # stale for app:1: must arm a timer for app:2
    assert ([t.images for t in kubelet._timers], len(core.patches)) == (
        [(("main", "app:2"),)],
        1,
    )
