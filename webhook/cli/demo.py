"""The `oam-rollout demo` subcommand: the whole product on a throw-away local control plane.

Holds the demo scenario as plain data (the Applications applied, in order, and the state
each one must reach before the kubectl views are shown), the pure helpers that judge and
describe live state, and the thin shell that starts the control plane, installs the Helm
chart in local mode, runs the webhook and the controller as local processes and plays the
scenario. It must not hold rollout or admission logic (the webhook and the controller do
that work), and it must not leave anything running: every process it starts is stopped by
its own handle, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from webhook.core.errors import OamRolloutError
from webhook.core.labels import (
    APP_API_VERSION,
    APP_KIND,
    BATCH_READY,
    CLONESET_GROUP,
    CLONESET_PLURAL,
    CLONESET_VERSION,
    LABEL_COMPONENT,
    LABEL_CONTROLLER_COMPONENT,
    ROLLING_IN_BATCHES,
    ROLLOUT_GROUP,
    ROLLOUT_PLURAL,
    ROLLOUT_SUCCEED,
    ROLLOUT_TRAIT,
    ROLLOUT_VERSION,
)
from webhook.localcluster.processes import stop_process

NAMESPACE = "default"
RELEASE = "oam-rollout"
RELEASE_NAMESPACE = "oam-system"
IMAGE_V1 = "stefanprodan/podinfo:4.0.3"
IMAGE_V2 = "stefanprodan/podinfo:5.0.2"


class DemoError(OamRolloutError):
    """A demo stage could not start; the message says which and why."""


# ---------------------------------------------------------------------------
# the scenario, as data


@dataclass(frozen=True)
class RolloutView:
    """The columns of `kubectl get rollout`: TARGET UPGRADED READY BATCH-STATE ROLLING-STATE."""

    target: int | None
    upgraded: int | None
    ready: int | None
    batch_state: str | None
    rolling_state: str | None


@dataclass(frozen=True)
class Expectation:
    """The live state a step must reach before its views are printed."""

    rollout: RolloutView
    # The revision the rollout aims at (Rollout status.lastTargetRevision).
    target_revision: str
    # Every workload of the component: name -> "ready/desired", as kubectl's READY column.
    workloads: Mapping[str, str]


@dataclass(frozen=True)
class Step:
    """One `kubectl apply` of the scenario, what it must lead to, and what to show after."""

    title: str
    explanation: str
    application: Mapping[str, Any]
    expect: Expectation | None
    views: tuple[tuple[str, ...], ...]
    # True when the webhook must refuse the change.
    denied: bool = False

    @property
    def app_name(self) -> str:
        return str(self.application["metadata"]["name"])

    @property
    def component(self) -> str:
        return str(self.application["spec"]["components"][0]["name"])


def application(
    name: str,
    component: str,
    component_type: str,
    revision: str,
    image: str,
    target_size: int,
    batches: Sequence[int],
    *,
    partition: int | None = None,
    target_revision: str | None = None,
) -> dict[str, Any]:
    """An Application with one component carrying a rollout trait."""
    plan: dict[str, Any] = {}
    if target_revision is not None:
        plan["targetRevision"] = target_revision
    plan["targetSize"] = target_size
    if partition is not None:
        plan["batchPartition"] = partition
    plan["rolloutBatches"] = [{"replicas": n} for n in batches]
    return {
        "apiVersion": APP_API_VERSION,
        "kind": APP_KIND,
        "metadata": {"name": name},
        "spec": {
            "components": [
                {
                    "name": component,
                    "type": component_type,
                    "externalRevision": revision,
                    "properties": {"image": image},
                    "traits": [{"type": ROLLOUT_TRAIT, "properties": plan}],
                }
            ]
        },
    }


def _views(app: str, component: str, *which: str) -> tuple[tuple[str, ...], ...]:
    """kubectl argument lists for the spec's views of one component."""
    table = {
        "app": ("get", "app", app),
        "revisions": (
            "get",
            "controllerrevision",
            "-l",
            f"{LABEL_CONTROLLER_COMPONENT}={component}",
        ),
        "rollout": ("get", "rollout", component),
        "deploy": ("get", "deploy", "-l", f"{LABEL_COMPONENT}={component}"),
        "cloneset": ("get", "cloneset", "-l", f"{LABEL_COMPONENT}={component}"),
        "image": (
            "get",
            "cloneset",
            component,
            "-o=jsonpath={.spec.template.spec.containers[0].image}",
        ),
    }
    return tuple(table[w] for w in which)


def _done(size: int, revision: str, workloads: Mapping[str, str]) -> Expectation:
    return Expectation(
        RolloutView(size, size, size, BATCH_READY, ROLLOUT_SUCCEED), revision, workloads
    )


def scenario(include_cloneset: bool = True) -> list[Step]:
    """The rollout-trait walkthrough: deploy, partial upgrade, finish, rollback, scale, refuse."""
    app, comp = "rollout-trait-test", "express-server"
    v1, v2 = f"{comp}-v1", f"{comp}-v2"

    def web(revision: str, image: str, size: int, batches: Sequence[int], **kw: Any) -> Any:
        return application(app, comp, "webservice", revision, image, size, batches, **kw)

    steps = [
        Step(
            "首次发布 · first deploy",
            f"5 replicas of {v1} in two batches (2, then 3 once the first 2 are ready).",
            web(v1, IMAGE_V1, 5, [2, 3]),
            _done(5, v1, {v1: "5/5"}),
            _views(app, comp, "app", "revisions", "rollout", "deploy"),
        ),
        Step(
            "灰度升级 · batch upgrade, first batch only",
            f"New image, new revision {v2}; batchPartition 0 stops after the first batch.",
            web(v2, IMAGE_V2, 5, [2, 3], partition=0),
            Expectation(
                RolloutView(5, 2, 2, BATCH_READY, ROLLING_IN_BATCHES), v2, {v1: "3/3", v2: "2/2"}
            ),
            _views(app, comp, "revisions", "rollout", "deploy"),
        ),
        Step(
            "完成升级 · finish the upgrade",
            "Without batchPartition every batch rolls; the old Deployment goes away.",
            web(v2, IMAGE_V2, 5, [2, 3]),
            _done(5, v2, {v2: "5/5"}),
            _views(app, comp, "rollout", "deploy"),
        ),
        Step(
            "回滚 · rollback",
            f"targetRevision {v1} rolls the component back to the earlier revision.",
            web(v2, IMAGE_V2, 5, [2, 3], target_revision=v1),
            _done(5, v1, {v1: "5/5"}),
            _views(app, comp, "rollout", "deploy"),
        ),
        Step(
            "扩容 · scale up",
            "From 5 to 7 replicas, one more per batch.",
            web(v2, IMAGE_V2, 7, [1, 1], target_revision=v1),
            _done(7, v1, {v1: "7/7"}),
            _views(app, comp, "rollout", "deploy"),
        ),
        Step(
            "缩容 · scale down",
            "From 7 to 3 replicas: first 1 fewer, then 3 fewer.",
            web(v2, IMAGE_V2, 3, [1, 3], target_revision=v1),
            _done(3, v1, {v1: "3/3"}),
            _views(app, comp, "rollout", "deploy"),
        ),
        Step(
            "拒绝 · a change the webhook refuses",
            "Scaling 3 -> 6 needs batches adding up to 3; 1 + 1 is refused before it is stored.",
            web(v2, IMAGE_V2, 6, [1, 1], target_revision=v1),
            None,
            _views(app, comp, "rollout"),
            denied=True,
        ),
    ]
    if include_cloneset:
        capp, ccomp = "rollout-trait-test-cloneset", "cloneset-server"
        c1, c2 = f"{ccomp}-v1", f"{ccomp}-v2"

        def clone(revision: str, image: str) -> Any:
            return application(capp, ccomp, "cloneset", revision, image, 5, [2, 3])

        steps += [
            Step(
                "cloneset 首次发布 · first deploy of a CloneSet",
                "A cloneset workload is named after the component and updated in place.",
                clone(c1, IMAGE_V1),
                _done(5, c1, {ccomp: "5/5"}),
                _views(capp, ccomp, "app", "revisions", "rollout", "cloneset", "image"),
            ),
            Step(
                "cloneset 升级 · in-place upgrade",
                f"New image, revision {c2}; the workload keeps its name.",
                clone(c2, IMAGE_V2),
                _done(5, c2, {ccomp: "5/5"}),
                _views(capp, ccomp, "revisions", "rollout", "cloneset", "image"),
            ),
        ]
    return steps


# ---------------------------------------------------------------------------
# pure judgements and descriptions of live state


def rollout_view(rollout: Mapping[str, Any] | None) -> RolloutView:
    status = (rollout or {}).get("status") or {}
    return RolloutView(
        status.get("rolloutTargetSize"),
        status.get("upgradedReplicas"),
        status.get("upgradedReadyReplicas"),
        status.get("batchRollingState"),
        status.get("rollingState"),
    )


def workload_readiness(workloads: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """name -> "ready/desired" for Deployments and CloneSets alike (kubectl's READY)."""
    return {
        str(w["metadata"]["name"]): (
            f"{(w.get('status') or {}).get('readyReplicas') or 0}/"
            f"{(w.get('spec') or {}).get('replicas', 0)}"
        )
        for w in workloads
        # A workload being deleted is on its way out; kubectl may still list it briefly.
        if not w["metadata"].get("deletionTimestamp")
    }


def is_settled(
    expect: Expectation,
    rollout: Mapping[str, Any] | None,
    workloads: Sequence[Mapping[str, Any]],
) -> bool:
    status = (rollout or {}).get("status") or {}
    return (
        rollout_view(rollout) == expect.rollout
        and status.get("lastTargetRevision") == expect.target_revision
        and workload_readiness(workloads) == dict(expect.workloads)
    )


def progress_line(component: str, rollout: Mapping[str, Any] | None) -> str:
    """One line describing where a rollout stands, for the live display."""
    if not rollout:
        return f"{component}: waiting for the Rollout"
    spec = rollout.get("spec") or {}
    status = rollout.get("status") or {}
    batches = len((spec.get("rolloutPlan") or {}).get("rolloutBatches") or [])
    batch = status.get("currentBatch")
    shown_batch = f"{batch + 1}/{batches}" if isinstance(batch, int) else f"-/{batches}"
    target = status.get("rolloutTargetSize", (spec.get("rolloutPlan") or {}).get("targetSize"))
    return (
        f"{component} -> {spec.get('targetRevisionName', '?')}: batch {shown_batch}, "
        f"upgraded {status.get('upgradedReplicas', 0)}/{target}, "
        f"ready {status.get('upgradedReadyReplicas', 0)}, "
        f"{status.get('batchRollingState', '-')}, {status.get('rollingState', '-')}"
    )


def to_yaml(obj: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(obj), sort_keys=False, allow_unicode=True)


def chart_dir() -> Path:
    """The packaged chart (installed wheel), else the source tree's charts/oam-rollout."""
    here = Path(__file__).resolve().parents[1]
    installed = here / "_data" / "charts" / "oam-rollout"
    return installed if installed.is_dir() else here.parent / "charts" / "oam-rollout"


def helm_install_args(chart: Path, webhook_url: str, ca_bundle: str) -> list[str]:
    """`helm install` in local mode: the webhook runs on 127.0.0.1, the controller locally."""
    return [
        "install", RELEASE, str(chart),
        "--namespace", RELEASE_NAMESPACE, "--create-namespace",
        # The local control plane installs the CRDs at start; the chart adopts them.
        "--take-ownership",
        "--set", f"webhook.url={webhook_url}",
        "--set", "certs.mode=external",
        "--set", f"certs.caBundle={ca_bundle}",
        "--set", "controller.enabled=false",
    ]  # fmt: skip


# ---------------------------------------------------------------------------
# the I/O shell


@dataclass
class Printer:
    """Writes the demo's story; the live progress line rewrites itself on a terminal."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    _live: str = ""

    @property
    def tty(self) -> bool:
        return self.out.isatty()

    def line(self, text: str = "") -> None:
        self.end_live()
        print(text, file=self.out, flush=True)

    def live(self, text: str) -> None:
        if text == self._live:
            return
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            print(f"\r\033[K  ⏳ {text[: width - 5]}", end="", file=self.out, flush=True)
        else:
            print(f"  .. {text}", file=self.out, flush=True)
        self._live = text

    def end_live(self) -> None:
        if self._live and self.tty:
            print(file=self.out, flush=True)
        self._live = ""


@dataclass
class LocalProcess:
    """A child process of the demo with its log file; stopped by its own PID."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise DemoError(
                f"{self.name} exited with code {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self) -> None:
        stop_process(self.process, timeout=15, kill_timeout=5)


def _exit_with_demo() -> None:
    """In the child before exec (Linux): SIGTERM it if the demo dies without cleaning up."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_process(name: str, argv: Sequence[str], log_path: Path) -> LocalProcess:
    with log_path.open("wb") as log_file:
        # A session of its own: Ctrl-C reaches only the demo, which stops its children in
        # order (controller, chart, webhook, control plane) instead of all at once.
        process = subprocess.Popen(
            list(argv),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_exit_with_demo,
        )
    return LocalProcess(name, process, log_path)


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise DemoError(f"{what}: not ready after {timeout:.0f} s")


def _https_ok(url: str, cafile: Path) -> bool:
    context = ssl.create_default_context(cafile=str(cafile))
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ssl.SSLError):
        return False


class Demo:
    """Starts the pieces, plays the scenario, and tears everything down on exit."""

    def __init__(self, printer: Printer, workdir: Path, step_timeout: float) -> None:
        self.p = printer
        self.workdir = workdir
        self.step_timeout = step_timeout
        self.stack = ExitStack()
        self.kubeconfig = Path()
        self.kubectl_bin = Path()
        self.helm_bin = Path()
        self.api: Any = None
        self.processes: list[LocalProcess] = []

    # -- setup ------------------------------------------------------------------

    def start(self) -> None:
        from webhook.admission.certs import generate
        from webhook.localcluster.cloneset import SimulatedCloneSetController
        from webhook.localcluster.cluster import LocalCluster, free_port
        from webhook.localcluster.kubelet import SimulatedKubelet
        from webhook.localcluster.tools import helm_path, kubectl_path

        self.kubectl_bin = kubectl_path()
        self.helm_bin = helm_path()

        self.p.line("==> starting a local control plane (etcd, kube-apiserver, controller-manager)")
        cluster = LocalCluster(self.workdir / "cluster", die_with_parent=True)
        self.stack.callback(cluster.stop)
        cluster.start()
        self.kubeconfig = Path(cluster.kubeconfig)
        self.api = cluster.api_client()
        self.stack.callback(self.api.close)
        self.p.line(f"    API at {cluster.server}, ready in {cluster.startup_seconds:.1f} s")

        self.p.line(
            "==> starting the simulated kubelet and CloneSet controller (no containers run)"
        )
        kubelet = SimulatedKubelet(self.kubeconfig, ready_delay=0.3)
        self.stack.callback(kubelet.stop)
        kubelet.start()
        clonesets = SimulatedCloneSetController(self.kubeconfig)
        self.stack.callback(clonesets.stop)
        clonesets.start()

        self.p.line(
            "==> generating the webhook's TLS certificates (CA + serving cert for 127.0.0.1)"
        )
        bundle = generate(["127.0.0.1", "localhost"], self.workdir / "certs")

        port = free_port()
        url = f"https://127.0.0.1:{port}"
        self.p.line(f"==> starting the admission webhook on {url}")
        webhook = self._spawn(
            "webhook",
            [
                "webhook", "--tls-cert", str(bundle.cert_path), "--tls-key", str(bundle.key_path),
                "--bind", "127.0.0.1", "--port", str(port), "--kubeconfig", str(self.kubeconfig),
                "--workers", "1", "--threads", "4",
            ],
        )  # fmt: skip

        def webhook_ready() -> bool:
            webhook.check_alive()
            return _https_ok(f"{url}/readyz", bundle.ca_path)

        wait_for("the webhook's /readyz", webhook_ready, 30)

        self.p.line("==> installing the Helm chart in local mode")
        args = helm_install_args(chart_dir(), url, bundle.ca_bundle_b64)
        shown = [a if not a.startswith("certs.caBundle=") else "certs.caBundle=<CA>" for a in args]
        self.p.line("$ helm " + " ".join(shown))
        result = self._tool(self.helm_bin, args)
        if result.returncode != 0:
            raise DemoError(f"helm install failed:\n{result.stderr.strip()}")
        self.stack.callback(self._helm_uninstall)
        status = [ln for ln in result.stdout.splitlines() if ln.startswith(("STATUS", "REVISION"))]
        self.p.line("    " + ", ".join(status))

        self.p.line("==> starting the rollout controller")
        # No health port: the demo watches the cluster, and a fixed port could be taken.
        controller = self._spawn("controller", ["controller", "--kubeconfig", str(self.kubeconfig),
                                                "--health-port", "0"])
        time.sleep(0.5)
        controller.check_alive()

        self.p.line("==> waiting until the API server calls the chart's webhook configurations")
        wait_for("admission through the chart's configurations", self._admission_active, 30)

    def _spawn(self, name: str, args: Sequence[str]) -> LocalProcess:
        argv = [sys.executable, "-m", "webhook", *args]
        process = start_process(name, argv, self.workdir / f"{name}.log")
        self.processes.append(process)
        self.stack.callback(process.stop)
        return process

    def _tool(
        self, binary: Path, args: Sequence[str], stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def _helm_uninstall(self) -> None:
        self._tool(self.helm_bin, ["uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE])

    def _admission_active(self) -> bool:
        probe = application("admission-probe", "probe", "webservice", "probe-v1", IMAGE_V1, 2, [2])
        result = self._tool(
            self.kubectl_bin,
            ["apply", "--dry-run=server", "-n", NAMESPACE, "-f", "-"],
            stdin=json.dumps(probe) + "\n",
        )
        # A well-formed probe passes once the webhooks answer; before that the API server
        # may still lack the configurations, so also require that a bad one is refused.
        if result.returncode != 0:
            return False
        bad = application("admission-probe", "probe", "webservice", "probe-v1", IMAGE_V1, 2, [5])
        refused = self._tool(
            self.kubectl_bin,
            ["apply", "--dry-run=server", "-n", NAMESPACE, "-f", "-"],
            stdin=json.dumps(bad) + "\n",
        )
        return refused.returncode != 0

    # -- reading live state -------------------------------------------------------

    def _rollout(self, name: str) -> Mapping[str, Any] | None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        try:
            obj: Mapping[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                ROLLOUT_GROUP, ROLLOUT_VERSION, NAMESPACE, ROLLOUT_PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def _workloads(self, component: str, kind: str) -> list[Mapping[str, Any]]:
        from kubernetes import client

        selector = f"{LABEL_COMPONENT}={component}"
        if kind == "cloneset":
            listing = client.CustomObjectsApi(self.api).list_namespaced_custom_object(
                CLONESET_GROUP, CLONESET_VERSION, NAMESPACE, CLONESET_PLURAL,
                label_selector=selector,
            )  # fmt: skip
            return list(listing.get("items", []))
        deployments = client.AppsV1Api(self.api).list_namespaced_deployment(
            NAMESPACE, label_selector=selector
        )
        return [self.api.sanitize_for_serialization(d) for d in deployments.items]

    # -- playing ----------------------------------------------------------------

    def play(self, steps: Sequence[Step], pause: bool) -> int:
        failures = 0
        for number, step in enumerate(steps, 1):
            self.p.line()
            self.p.line(f"━━ {number}/{len(steps)} {step.title}")
            self.p.line(f"   {step.explanation}")
            self.p.line("$ cat <<EOF | kubectl apply -f -")
            for text in to_yaml(step.application).splitlines():
                self.p.line(f"  {text}")
            self.p.line("EOF")
            result = self._tool(
                self.kubectl_bin, ["apply", "-n", NAMESPACE, "-f", "-"], to_yaml(step.application)
            )
            for text in (result.stdout + result.stderr).strip().splitlines():
                self.p.line(text)
            refused = result.returncode != 0
            if refused != step.denied:
                failures += 1
                self.p.line(
                    f"!! expected the change to be {'refused' if step.denied else 'accepted'}"
                )
            elif step.expect is not None and not self._wait_settled(step):
                failures += 1
            for view in step.views:
                self._show(view)
            if pause and number < len(steps):
                input("   (Enter for the next step) ")
        return failures

    def _wait_settled(self, step: Step) -> bool:
        assert step.expect is not None
        kind = step.application["spec"]["components"][0]["type"]
        deadline = time.monotonic() + self.step_timeout
        rollout: Mapping[str, Any] | None = None
        while time.monotonic() < deadline:
            for process in self.processes:
                process.check_alive()
            rollout = self._rollout(step.component)
            workloads = self._workloads(step.component, kind)
            if is_settled(step.expect, rollout, workloads):
                self.p.live(progress_line(step.component, rollout))
                self.p.end_live()
                return True
            self.p.live(progress_line(step.component, rollout))
            time.sleep(0.2)
        self.p.line(
            f"!! {step.component} did not reach {step.expect.rollout} on "
            f"{step.expect.target_revision} in {self.step_timeout:.0f} s; "
            f"now: {rollout_view(rollout)}"
        )
        return False

    def _show(self, view: Sequence[str]) -> None:
        self.p.line(f"$ kubectl {shlex.join(view)}")
        result = self._tool(self.kubectl_bin, ["-n", NAMESPACE, *view])
        text = (result.stdout + result.stderr).rstrip()
        self.p.line(text)

    def close(self) -> None:
        self.p.end_live()
        self.stack.close()


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="play the batch rollout walkthrough on a local control plane",
        description=(
            "Start a throw-away control plane on 127.0.0.1, install the Helm chart in local "
            "mode, run the webhook and the controller locally, and play the rollout "
            "walkthrough step by step. Everything stops at the end or on Ctrl-C."
        ),
    )
    p.add_argument(
        "--step-timeout", type=float, default=90.0, help="seconds each step may take (default 90)"
    )
    p.add_argument("--pause", action="store_true", help="wait for Enter between steps")
    p.add_argument("--skip-cloneset", action="store_true", help="leave out the CloneSet part")
    p.add_argument(
        "--keep-logs", action="store_true", help="keep the work dir (logs of every process)"
    )
    p.set_defaults(func=run)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM tears down like Ctrl-C does."""

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    if args.step_timeout <= 0:
        raise DemoError("--step-timeout must be a positive number of seconds")
    printer = Printer()
    workdir = Path(tempfile.mkdtemp(prefix="oam-rollout-demo-"))
    began = time.monotonic()
    demo = Demo(printer, workdir, args.step_timeout)
    failures = 0
    try:
        with _terminate_as_interrupt():
            try:
                demo.start()
                failures = demo.play(scenario(not args.skip_cloneset), args.pause)
            finally:
                printer.end_live()
                printer.line()
                printer.line("==> tearing down (controller, webhook, chart, control plane)")
                demo.close()
    finally:
        if args.keep_logs:
            printer.line(f"    logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - began
    if failures:
        printer.line(f"demo finished in {elapsed:.0f} s with {failures} step(s) off script")
        return 1
    printer.line(f"demo finished in {elapsed:.0f} s: every step as in the walkthrough")
    return 0
