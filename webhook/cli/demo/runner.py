"""The demo's I/O shell: start the pieces, play the scenario, tear everything down.

Holds ``Demo``: it starts a throw-away local control plane, the simulated kubelet and
CloneSet controller, the webhook (with fresh TLS certificates) and the controller as
local processes, installs the Helm chart in local mode, then plays the scenario's steps
with kubectl and shows the kubectl views after each. Also ``chart_dir`` and
``helm_install_args``. It must not hold rollout or admission logic (the webhook and the
controller do that work), and it must not leave anything running: every process it
starts is stopped by its own handle, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from webhook.cli.demo.processes import DemoError, LocalProcess, https_ok, start_process, wait_for
from webhook.cli.demo.steps import IMAGE_V1, NAMESPACE, Step, application
from webhook.cli.demo.views import Printer, is_settled, progress_line, rollout_view, to_yaml
from webhook.core.labels import (
    CLONESET_GROUP,
    CLONESET_PLURAL,
    CLONESET_VERSION,
    LABEL_COMPONENT,
    ROLLOUT_GROUP,
    ROLLOUT_PLURAL,
    ROLLOUT_VERSION,
)

RELEASE = "oam-rollout"
RELEASE_NAMESPACE = "oam-system"


def chart_dir() -> Path:
    """The packaged chart (installed wheel), else the source tree's charts/oam-rollout."""
    here = Path(__file__).resolve().parents[2]  # the webhook package
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
        from webhook.localcluster.cluster import LocalCluster
        from webhook.localcluster.controlplane import free_port
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
            return https_ok(f"{url}/readyz", bundle.ca_path)

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
