"""The chart's per-component knobs render as the chart's README documents them.

Per component (webhook, controller): podLabels, extraArgs, extraEnv, extraVolumes and
extraVolumeMounts, topologySpreadConstraints, and nodeSelector / tolerations / affinity /
priorityClassName over the top-level ones; the controller's PodDisruptionBudget,
image.digest, and the README's custom-templates example (ConfigMaps -> --templates-dir).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.fixtures import chart as m
from webhook.cli import build_parser

COMPONENTS = ["webhook", "controller"]
DIGEST = "sha256:" + "ab" * 32
README = m.CHART_DIR / "README.md"


def _deployment(values: dict[str, Any], component: str) -> dict[str, Any]:
    deployment: dict[str, Any] = m.one(m.render(values), "Deployment", component)
    return deployment


def _pod(values: dict[str, Any], component: str) -> dict[str, Any]:
    pod: dict[str, Any] = _deployment(values, component)["spec"]["template"]["spec"]
    return pod


def _container(values: dict[str, Any], component: str) -> dict[str, Any]:
    container: dict[str, Any] = _pod(values, component)["containers"][0]
    return container


def _parsed_args(container: dict[str, Any]) -> dict[str, Any]:
    args = build_parser().parse_args([str(a) for a in container["args"]])
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def _readme_example(name: str) -> dict[str, Any]:
    """The YAML block that follows the README's `<!-- example: NAME ... -->` marker."""
    text = README.read_text()
    match = re.search(
        rf"<!-- example: {re.escape(name)}\b.*?-->\s*```yaml\n(?P<body>.*?)```", text, re.DOTALL
    )
    if match is None:
        raise AssertionError(f"README.md has no example {name}")
    example: dict[str, Any] = yaml.safe_load(match["body"])
    return example


# (values under the component's key, what to read from the Deployment, what it must be)
KNOBS: dict[str, tuple[dict[str, Any], Any, Any]] = {
    "podLabels reach the pods only": (
        {"podLabels": {"team": "payments"}},
        lambda d: (
            d["spec"]["template"]["metadata"]["labels"].get("team"),
            "team" in d["metadata"]["labels"],
            "team" in d["spec"]["selector"]["matchLabels"],
        ),
        ("payments", False, False),
    ),
    "extraArgs come after the chart's arguments": (
        {"extraArgs": ["--templates-dir", "/templates"]},
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["args"][-2:],
        ["--templates-dir", "/templates"],
    ),
    "extraEnv comes after the top-level extraEnv": (
        {"extraEnv": [{"name": "HTTPS_PROXY", "value": "http://127.0.0.1:3128"}]},
        lambda d: [e["name"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]][-2:],
        ["SHARED", "HTTPS_PROXY"],
    ),
    "extraVolumes and extraVolumeMounts come after the chart's own": (
        {
            "extraVolumes": [{"name": "extra", "configMap": {"name": "cm"}}],
            "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra", "readOnly": True}],
        },
        lambda d: (
            d["spec"]["template"]["spec"]["volumes"][-1],
            d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][-1],
        ),
        (
            {"name": "extra", "configMap": {"name": "cm"}},
            {"name": "extra", "mountPath": "/extra", "readOnly": True},
        ),
    ),
    "own scheduling replaces the top-level one": (
        {
            "nodeSelector": {"pool": "own"},
            "tolerations": [{"key": "own", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {}},
            "priorityClassName": "own-priority",
        },
        lambda d: {
            k: d["spec"]["template"]["spec"].get(k)
            for k in ("nodeSelector", "tolerations", "affinity", "priorityClassName")
        },
        {
            "nodeSelector": {"pool": "own"},
            "tolerations": [{"key": "own", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {}},
            "priorityClassName": "own-priority",
        },
    ),
}


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize(("own", "read", "expected"), KNOBS.values(), ids=KNOBS.keys())
def test_each_component_knob_renders_as_documented(
    component: str, own: dict[str, Any], read: Any, expected: Any
) -> None:
    values = {component: own, "extraEnv": [{"name": "SHARED", "value": "1"}]}
    assert read(_deployment(values, component)) == expected


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_component_knob_leaves_the_other_component_alone(component: str) -> None:
    other = {"webhook": "controller", "controller": "webhook"}[component]
    own = {
        "podLabels": {"team": "payments"},
        "extraArgs": ["--templates-dir", "/templates"],
        "extraEnv": [{"name": "OWN", "value": "1"}],
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
        "nodeSelector": {"pool": "own"},
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}
        ],
    }
    baseline, changed = _deployment({}, other), _deployment({component: own}, other)
    assert changed == baseline


def test_top_level_scheduling_applies_where_a_component_sets_none() -> None:
    values = {
        "nodeSelector": {"pool": "shared"},
        "tolerations": [{"key": "shared", "operator": "Exists"}],
        "priorityClassName": "shared-priority",
        "affinity": {"podAffinity": {}},
        "controller": {"nodeSelector": {"pool": "own"}, "priorityClassName": "own-priority"},
    }
    summary = {
        c: {
            k: _pod(values, c).get(k)
            for k in ("nodeSelector", "tolerations", "priorityClassName", "affinity")
        }
        for c in COMPONENTS
    }
    shared_tolerations = [{"key": "shared", "operator": "Exists"}]
    assert summary == {
        "webhook": {"nodeSelector": {"pool": "shared"}, "tolerations": shared_tolerations,
                    "priorityClassName": "shared-priority", "affinity": {"podAffinity": {}}},
        "controller": {"nodeSelector": {"pool": "own"}, "tolerations": shared_tolerations,
                       "priorityClassName": "own-priority", "affinity": {"podAffinity": {}}},
    }  # fmt: skip


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_spread_constraint_without_a_selector_counts_the_components_pods(
    component: str,
) -> None:
    zone = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule"}  # fmt: skip
    selected = {**zone, "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"tier": "system"}}}  # fmt: skip
    deployment = _deployment({component: {"topologySpreadConstraints": [zone, selected]}},
                             component)  # fmt: skip
    own_pods = deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["template"]["spec"]["topologySpreadConstraints"] == [
        {**zone, "labelSelector": {"matchLabels": own_pods}},
        selected,
    ]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ({}, "ghcr.io/oam-rollout/oam-rollout:0.1.0"),
        ({"tag": "1.2.3"}, "ghcr.io/oam-rollout/oam-rollout:1.2.3"),
        ({"digest": DIGEST}, f"ghcr.io/oam-rollout/oam-rollout@{DIGEST}"),
        ({"tag": "1.2.3", "digest": DIGEST}, f"ghcr.io/oam-rollout/oam-rollout@{DIGEST}"),
    ],
    ids=["app-version", "tag", "digest", "digest-over-tag"],
)
def test_image_is_pinned_by_digest_when_one_is_given(image: dict[str, Any], expected: str) -> None:
    objects = m.render({"image": image})
    images = {name: c["image"] for name, c in m.containers(objects)}
    test_pod = m.one(objects, "Pod", "test")["spec"]["containers"][0]["image"]
    assert (images, test_pod) == (
        {"rel-oam-rollout-webhook": expected, "rel-oam-rollout-controller": expected},
        expected,
    )


CONTROLLER_PODS = {
    "app.kubernetes.io/name": "oam-rollout",
    "app.kubernetes.io/instance": m.RELEASE,
    "app.kubernetes.io/component": "controller",
}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, [(1, CONTROLLER_PODS)]),
        (
            {"controller": {"podDisruptionBudget": {"minAvailable": "50%"}}},
            [("50%", CONTROLLER_PODS)],
        ),
        ({"controller": {"replicas": 1}}, []),
        ({"controller": {"podDisruptionBudget": {"enabled": False}}}, []),
        ({"controller": {"enabled": False}}, []),
        (
            {"controller": {"shards": 2}},
            [(1, {**CONTROLLER_PODS, "rollout.oam.dev/shard": "0"}),
             (1, {**CONTROLLER_PODS, "rollout.oam.dev/shard": "1"})],
        ),
    ],
    ids=["default", "percentage", "one-replica", "disabled", "no-controller", "one-per-shard"],
)  # fmt: skip
def test_a_disruption_budget_keeps_a_controller_stand_by(
    values: dict[str, Any], expected: list[tuple[Any, dict[str, str]]]
) -> None:
    objects = m.render(values)
    budgets = [
        (pdb["spec"]["minAvailable"], pdb["spec"]["selector"]["matchLabels"])
        for pdb in m.of_kind(objects, "PodDisruptionBudget")
        if pdb["metadata"]["labels"]["app.kubernetes.io/component"] == "controller"
    ]
    assert budgets == expected


@pytest.mark.parametrize("shards", [1, 2])
def test_each_controller_disruption_budget_selects_the_pods_of_one_deployment(
    shards: int,
) -> None:
    objects = m.render({"controller": {"shards": shards}})
    deployments = [d["spec"]["selector"]["matchLabels"]
                   for d in m.of_kind(objects, "Deployment")
                   if d["metadata"]["labels"]["app.kubernetes.io/component"] == "controller"]
    budgets = [b["spec"]["selector"]["matchLabels"]
               for b in m.of_kind(objects, "PodDisruptionBudget")
               if b["metadata"]["labels"]["app.kubernetes.io/component"] == "controller"]
    assert (len(budgets), budgets) == (shards, deployments)  # fmt: skip


def test_controller_disruption_budget_uses_policy_v1beta1_on_kubernetes_1_20() -> None:
    versions = {
        kube: m.one(m.render(kube_version=kube), "PodDisruptionBudget", "controller")["apiVersion"]
        for kube in ("1.20.2", "1.25.0")
    }
    assert versions == {"1.20.2": "policy/v1beta1", "1.25.0": "policy/v1"}


@pytest.mark.parametrize("component", COMPONENTS)
def test_the_readme_custom_templates_example_mounts_the_configmaps_and_passes_the_dir(
    component: str,
) -> None:
    container = _container(_readme_example("custom-templates.yaml"), component)
    pod = _pod(_readme_example("custom-templates.yaml"), component)
    config_maps = {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
    mounts = {v["mountPath"]: (v["name"], v.get("readOnly")) for v in container["volumeMounts"]}
    parsed = _parsed_args(container)
    assert (parsed["command"], parsed["templates_dir"], config_maps) == (
        component,
        "/templates",
        {"component-templates": "oam-rollout-components", "trait-templates": "oam-rollout-traits"},
    )
    assert {
        path: mounts.get(path) for path in ("/templates/components", "/templates/traits")
    } == {
        "/templates/components": ("component-templates", True),
        "/templates/traits": ("trait-templates", True),
    }



def test_every_knob_at_once_lints_and_validates_against_the_kubernetes_schemas() -> None:
    lint = m.run_helm(["lint", "--strict", str(m.CHART_DIR)], m.EVERY_KNOB)
    problems = []
    for obj in m.render(m.EVERY_KNOB):
        try:
            kubernetes_validate.validate(obj, "1.25.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
    assert (lint.returncode, problems) == (0, []), lint.stdout
    # hostNetwork still holds with every knob set.
    assert {_pod(m.EVERY_KNOB, c).get("hostNetwork") for c in COMPONENTS} == {True}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"webhook": {"podLabels": {"app.kubernetes.io/component": "x"}}},
            "webhook.podLabels sets app.kubernetes.io/component, a label the chart sets itself",
        ),
        (
            {"controller": {"podLabels": {"helm.sh/chart": "x"}}},
            "controller.podLabels sets helm.sh/chart, a label the chart sets itself",
        ),
        (
            {"webhook": {"extraVolumes": [{"name": "tls", "emptyDir": {}}]}},
            "webhook.extraVolumes: the name tls is taken by the chart's own volume",
        ),
        (
            {"controller": {"extraVolumes": [{"name": "tmp", "emptyDir": {}}]}},
            "controller.extraVolumes: the name tmp is taken by the chart's own volume",
        ),
        (
            {
                "webhook": {"extraVolumes": [{"name": "templates", "emptyDir": {}}]},
                "controller": {"extraVolumeMounts": [{"name": "templates", "mountPath": "/t"}]},
            },
            "controller.extraVolumeMounts: /t mounts the volume templates, which is not in "
            "controller.extraVolumes",
        ),
    ],
    ids=["selector-label", "chart-label", "webhook-tls", "controller-tmp", "mount-elsewhere"],
)
def test_knob_values_that_would_break_the_pods_are_explained(
    values: dict[str, Any], message: str
) -> None:
    result = m.template(values)
    assert (result.returncode, message in result.stderr) == (1, True), result.stderr


def _config_map_volume(folder: Path, files: dict[str, str]) -> None:
    """A folder laid out as the kubelet mounts a ConfigMap: the files live in a timestamped
    directory, `..data` links to it, and each name links through `..data`."""
    stamp = folder / "..2026_01_01_00_00_00.000000001"
    stamp.mkdir(parents=True)
    for name, text in files.items():
        (stamp / name).write_text(text)
        (folder / name).symlink_to(Path("..data") / name)
    (folder / "..data").symlink_to(stamp.name)


def test_templates_mounted_from_configmaps_add_a_component_type(tmp_path: Path) -> None:
    example = _readme_example("custom-templates.yaml")["controller"]
    templates_dir = Path(example["extraArgs"][1])
    root = tmp_path / templates_dir.relative_to("/")
    job = (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ revision | tojson }}\n"
        "spec: {template: {spec: {restartPolicy: Never, containers: "
        "[{name: {{ component | tojson }}, image: {{ properties.image | tojson }}}]}}}\n"
    )
    for mount in example["extraVolumeMounts"]:
        files = {"task.yaml.j2": job} if mount["mountPath"].endswith("/components") else {}
        _config_map_volume(tmp_path / Path(mount["mountPath"]).relative_to("/"), files)
    app = tmp_path / "app.yaml"
    app.write_text(yaml.safe_dump({
        "apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
        "metadata": {"name": "batch", "namespace": "default"},
        "spec": {"components": [{"name": "once", "type": "task",
                                 "properties": {"image": "busybox"}}]},
    }))  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "webhook", "render", "-f", str(app), "--templates-dir", str(root)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    rendered = [(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(proc.stdout) if o]
    assert (proc.returncode, rendered) == (0, [("ControllerRevision", "once-v1"),
                                               ("Job", "once-v1")]), proc.stderr  # fmt: skip
