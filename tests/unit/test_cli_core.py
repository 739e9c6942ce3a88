"""`oam-rollout validate` and `oam-rollout render`: exit codes, stdout, stderr, inputs."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.apps import application_of
from webhook.cli import build_parser, main

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
FIRST = GOLDEN / "01-first-deploy" / "application.yaml"
SCALE = GOLDEN / "05-scale-out"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def feed_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def bad_app() -> str:
    doc = yaml.safe_load(FIRST.read_text())
    trait = doc["spec"]["components"][0]["traits"][0]["properties"]
    trait["rolloutBatch"] = trait.pop("rolloutBatches")
    trait["targetSize"] = True
    return yaml.safe_dump(doc)


def test_both_commands_are_registered() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["render", "-f", "-", "--revisions", "live.yaml", "--templates-dir", "t"]
    )
    assert (args.command, args.filename, args.revisions, args.templates_dir) == (
        "render",
        "-",
        "live.yaml",
        Path("t"),
    )
    assert (
        parser.parse_args(["validate", "-f", "a.yaml", "--observed", "b.yaml"]).revisions
        == "b.yaml"
    )


def test_a_valid_application_prints_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", "-f", str(FIRST)) == (0, "valid\n", "")


def test_an_invalid_application_prints_one_error_per_line_with_paths(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(bad_app())
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        'spec.components[0].traits[0].properties.rolloutBatch: Unsupported value: "rolloutBatch": '
        'did you mean "rolloutBatches"? '
        'supported values: "targetRevision", "targetSize", "rolloutBatches", "batchPartition",'
        ' "paused"',
        "spec.components[0].traits[0].properties.targetSize: Invalid value: true:"
        " must be an integer, not boolean",
        "spec.components[0].traits[0].properties.rolloutBatches: Required value",
    ]


def with_plan(**plan: Any) -> str:
    doc = yaml.safe_load(FIRST.read_text())
    doc["spec"]["components"][0]["traits"][0]["properties"].update(plan)
    return yaml.safe_dump(doc)


def test_validate_prints_the_webhooks_warnings_as_kubectl_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(with_plan(batchPartition=1))
    assert run(capsys, "validate", "-f", str(path)) == (
        0,
        "valid\n",
        "Warning: express-server: batchPartition 1 is the last batch; it holds nothing back\n",
    )


def test_a_denied_application_gets_its_errors_without_the_admitted_ones_warnings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(with_plan(batchPartition=1, targetSize=6))
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert (code, out) == (1, "")
    assert [line.split(": ")[0] for line in err.splitlines()] == [
        "spec.components[0].traits[0].properties.rolloutBatches"
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"a: [1, 2\n",
            "oam-rollout validate: stdin: not valid YAML (line 2, column 1):"
            " expected ',' or ']', but got '<stream end>'",
        ),
        (b"\xff\xfe\x00binary", "oam-rollout validate: cannot read -: not UTF-8 text"),
        (
            b"a: &a [*a]\n",
            "oam-rollout validate: stdin: document refers to itself through a YAML alias",
        ),
        (
            b"a: !!python/object:os.system x\n",
            "oam-rollout validate: stdin: not valid YAML (line 1, column 4): could not determine"
            " a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",
        ),
    ],
)
def test_input_that_is_not_usable_yaml_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data: bytes, message: str
) -> None:
    feed_stdin(monkeypatch, data)
    assert run(capsys, "validate", "-f", "-") == (2, "", message + "\n")


def test_aliases_that_expand_without_bound_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert (code, out) == (2, "")
    assert err == (
        f"oam-rollout validate: {path}:"
        " document expands to more than 200000 values (YAML aliases?)\n"
    )


def test_a_missing_file_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "render", "-f", str(tmp_path / "nope.yaml"))
    assert (code, out) == (2, "")
    assert (
        err
        == f"oam-rollout render: cannot read {tmp_path / 'nope.yaml'}: No such file or directory\n"
    )


def test_stdin_is_read_for_a_dash(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_stdin(monkeypatch, FIRST.read_bytes())
    assert run(capsys, "validate", "-f", "-") == (0, "valid\n", "")


def test_several_documents_are_judged_one_by_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cloneset = GOLDEN / "07-cloneset-first-deploy" / "application.yaml"
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"
    path = tmp_path / "apps.yaml"
    path.write_text("\n---\n".join([FIRST.read_text(), config_map, cloneset.read_text()]))
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert (code, out.splitlines()) == (
        0,
        ["rollout-trait-test: valid", "rollout-trait-test-cloneset: valid"],
    )
    assert err.splitlines() == ["note: skipping document 2: kind 'ConfigMap' is not Application"]

    path.write_text(
        FIRST.read_text() + "\n---\n" + bad_app().replace("rollout-trait-test", "broken")
    )
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert code == 1
    assert [line.split(": ")[0] for line in err.splitlines()] == ["broken"] * 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", "no Application found in"),
        ("just a string\n", "document 1 is not an Application object"),
    ],
)
def test_input_without_an_application_is_invalid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert (code, out) == (1, "")
    assert message in err


def test_live_state_decides_whether_a_scale_adds_up(capsys: pytest.CaptureFixture[str]) -> None:
    app = str(SCALE / "application.yaml")
    assert run(capsys, "validate", "-f", app, "--revisions", str(SCALE / "live.yaml")) == (
        0,
        "valid\n",
        "",
    )
    code, _, err = run(capsys, "validate", "-f", app)
    assert code == 1
    assert err.startswith("spec.components[0].traits[0].properties.targetRevision: Not found")


def test_render_prints_revision_rollout_and_deployment_for_the_first_deploy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "render", "-f", str(FIRST))
    assert (code, err) == (0, "")
    objects = list(yaml.safe_load_all(out))
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ControllerRevision", "express-server-v1"),
        ("Rollout", "express-server"),
        ("Deployment", "express-server-v1"),
    ]
    assert (
        objects[2]["spec"]["template"]["spec"]["containers"][0]["image"]
        == "stefanprodan/podinfo:4.0.3"
    )


def test_render_refuses_an_invalid_application(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(bad_app())
    code, out, err = run(capsys, "render", "-f", str(path))
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 3


def test_render_uses_dropped_in_templates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "task.yaml.j2").write_text(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ revision | tojson }}\n"
        "spec: {template: {spec: {restartPolicy: Never, containers: "
        "[{name: {{ component | tojson }}, image: {{ properties.image | tojson }}}]}}}\n"
    )
    app = application_of(
        {"name": "once", "type": "task", "properties": {"image": "busybox"}}, name="batch")
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(app))
    code, out, _ = run(capsys, "render", "-f", str(path), "--templates-dir", str(tmp_path))
    assert code == 0
    assert [(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(out)] == [
        ("ControllerRevision", "once-v1"),
        ("Job", "once-v1"),
    ]
    code, _, err = run(capsys, "validate", "-f", str(path))
    assert code == 1
    assert err.startswith('spec.components[0].type: Unsupported value: "task"')


def test_a_broken_template_dir_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "traits").mkdir()
    (tmp_path / "traits" / "bad.yaml.j2").write_text("{% for %}")
    code, out, err = run(capsys, "render", "-f", str(FIRST), "--templates-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith("oam-rollout render: template traits/bad.yaml.j2, line 1:")


def test_the_installed_entry_point_never_shows_a_traceback(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("{{{{ not yaml")
    done = subprocess.run(
        [sys.executable, "-m", "webhook", "validate", "-f", str(garbage)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_validate_renders_every_component_so_template_failures_name_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    (templates / "components").mkdir(parents=True)
    (templates / "components" / "task.yaml.j2").write_text(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ properties.jobName | tojson }}\n"
    )
    app: dict[str, Any] = {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "batch"},
        "spec": {
            "components": [
                {"name": "web", "type": "worker", "properties": {"image": "busybox"}},
                {"name": "once", "type": "task", "properties": {"image": "busybox"}},
            ]
        },
    }
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(app))
    code, out, err = run(capsys, "validate", "-f", str(path), "--templates-dir", str(templates))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        'spec.components[1]: Invalid value: "task": cannot be rendered: '
        "template components/task.yaml.j2: 'dict object' has no attribute 'jobName'"
    ]
