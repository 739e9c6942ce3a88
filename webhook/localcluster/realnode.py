"""Real nodes for the local control plane: kubelets on containerd, and kube-scheduler.

Holds RealNodes / KubeScheduler, which start and stop the processes (their configuration
and command lines are nodeconfig.py's pure functions), and the image export from podman:
per node one containerd (own root, state and socket: two kubelets on one containerd
would each kill the other's pods as unknown) and one kubelet, with images imported
from podman's storage, since no registry is reachable. Only hostNetwork pods can run
(no CNI), each node on its own loopback address 127.0.B.N, so pods of two nodes that
bind `$(POD_IP)` on the same port do not collide. The nodes carry a taint, so only pods
that tolerate it (the chart's, through its tolerations value) land there; a real
kube-scheduler places pods, and the simulated kubelet must not bind any.
It must not start anything that listens on or dials an address outside 127.0.0.0/8,
and it stops only the processes and containers it started (by PID, by container ID).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import random
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import yaml

from webhook.localcluster import tools
from webhook.localcluster.nodeconfig import (
    CRI_NAMESPACE,
    NOT_READY_TAINT,
    PAUSE_IMAGE,
    READY_TIMEOUT,
    NodePlan,
    RealNodeError,
    containerd_config,
    kubelet_args,
    kubelet_config,
    mounts_under,
    node_address_patch,
    node_plans,
    node_ready,
    scheduler_args,
    taints_without,
)
from webhook.localcluster.processes import die_with_parent, log_tail, stop_pid


def _binary(name: str) -> Path:
    path, _source = tools.control_plane_binary(name)
    return path


def _require(command: str, package: str) -> str:
    found = shutil.which(command)
    if not found:
        raise RealNodeError(
            f"{command} not found: install Debian's {package} (sudo apt-get install {package})"
        )
    return found


def export_image(ref: str, dest: Path) -> Path:
    """podman image -> an OCI archive (uncompressed layers: quicker to write and import)."""
    podman = _require("podman", "podman")
    with tempfile.TemporaryDirectory(prefix="oam-rollout-oci-", dir=dest.parent) as tmp:
        layout = Path(tmp) / "layout"
        subprocess.run(
            [podman, "save", "--quiet", "--format", "oci-dir", "--uncompressed", "-o",
             str(layout), ref],
            check=True, capture_output=True,
        )  # fmt: skip
        with tarfile.open(dest, "w") as tar:
            for entry in sorted(layout.iterdir()):
                tar.add(entry, arcname=entry.name)
    return dest


def ensure_pause_image(ref: str = PAUSE_IMAGE) -> str:
    """The pod sandbox image in podman's storage, made from the static pause binary."""
    podman = _require("podman", "podman")
    exists = subprocess.run([podman, "image", "exists", ref], check=False)
    if exists.returncode == 0:
        return ref
    pause = _binary("pause")
    with tempfile.TemporaryDirectory(prefix="oam-rollout-pause-") as tmp:
        archive = Path(tmp) / "pause.tar"
        with tarfile.open(archive, "w") as tar:
            info = tar.gettarinfo(str(pause), arcname="pause")
            info.uid = info.gid = 0
            info.mode = 0o755
            with pause.open("rb") as src:
                tar.addfile(info, src)
        subprocess.run(
            [podman, "import", "--change", 'ENTRYPOINT ["/pause"]', str(archive), ref],
            check=True, capture_output=True,
        )  # fmt: skip
    return ref


class _Spawned:
    """Processes started here, by name: their PIDs, Popen handles and logs."""

    def __init__(self, logs: Path, marker: str) -> None:
        self.logs = logs
        self.marker = marker
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as log:
            try:
                self.procs[name] = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                    env=dict(env) if env is not None else None,
                )
            except OSError as exc:
                raise RealNodeError(f"could not start {name} ({argv[0]}): {exc}") from exc

    def check(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            log = self.logs / f"{name}.log"
            raise RealNodeError(
                f"{name} exited with code {proc.returncode}; last lines of {log}:\n"
                f"{log_tail(log)}"
            )

    def stop(self, name: str, timeout: float = 10.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        stop_pid(proc.pid, self.marker, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


class KubeScheduler:
    """kube-scheduler v1.20 on loopback, binding pods by nodeSelector, taints and ports."""

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self._spawned = _Spawned(workdir / "logs", str(kubeconfig))

    def start(self) -> None:
        from webhook.localcluster.controlplane import free_port

        argv = scheduler_args(_binary("kube-scheduler"), self.kubeconfig, free_port())
        self._spawned.spawn("kube-scheduler", argv)
        time.sleep(0.5)
        self._spawned.check("kube-scheduler")

    def stop(self) -> None:
        self._spawned.stop("kube-scheduler")


class RealNodes:
    """`count` real nodes (containerd + kubelet each) for a running local control plane."""

    def __init__(
        self,
        kubeconfig: Path,
        images: Sequence[str],
        *,
        count: int = 2,
        workdir: Path | None = None,
        block: int | None = None,
    ) -> None:
        """images: podman image references to import into every node's containerd.

        block: the third octet of the nodes' addresses (default: a random one, so two
        test sessions on one machine do not share node addresses).
        """
        self.kubeconfig = kubeconfig
        self.images = list(images)
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="oam-rollout-nodes-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.plans = node_plans(self.workdir, count, block or random.randint(2, 254))
        self.timings: dict[str, float] = {}
        self._spawned = _Spawned(self.workdir / "logs", str(self.workdir))
        self._locks: list[IO[str]] = []
        self._core: Any = None

    @property
    def names(self) -> list[str]:
        return [plan.name for plan in self.plans]

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start every node; return once each is Ready, addressed and schedulable."""
        began = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - began

    def _start(self) -> None:
        from kubernetes import client, config

        _require("containerd", "containerd")
        ctr = _require("ctr", "containerd")
        _require("runc", "runc")
        kubelet = _binary("kubelet")
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=cfg)
        self._core = client.CoreV1Api(client.ApiClient(cfg))

        mark = time.monotonic()
        refs = [ensure_pause_image(), *self.images]
        archives = [export_image(ref, self.workdir / f"image-{i}.tar") for i, ref in
                    enumerate(refs)]  # fmt: skip
        self.timings["export"] = time.monotonic() - mark

        mark = time.monotonic()
        for index, plan in enumerate(self.plans):
            self._start_containerd(index, plan)
        for plan in self.plans:
            self._wait_socket(plan)
        importers = [
            subprocess.Popen(
                [ctr, "--address", str(plan.socket), "-n", CRI_NAMESPACE, "images", "import",
                 str(archive)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            for plan in self.plans
            for archive in archives
        ]
        for importer in importers:
            _out, err = importer.communicate(timeout=300)
            if importer.returncode != 0:
                raise RealNodeError(f"ctr images import failed: {err.decode(errors='replace')}")
        self.timings["import"] = time.monotonic() - mark

        mark = time.monotonic()
        for plan in self.plans:
            (plan.dir / "kubelet").mkdir(parents=True, exist_ok=True)
            (plan.dir / "kubelet-config.yaml").write_text(
                yaml.safe_dump(kubelet_config(plan.ip), sort_keys=False)
            )
            self._spawned.spawn(f"kubelet-{plan.name}", kubelet_args(kubelet, self.kubeconfig,
                                                                     plan))
        for plan in self.plans:
            self._wait_ready(plan)
        self.timings["nodes"] = time.monotonic() - mark

    def _start_containerd(self, index: int, plan: NodePlan) -> None:
        """containerd with a root kept in the cache (imports are incremental) when free."""
        state = plan.dir / "containerd"
        state.mkdir(parents=True, exist_ok=True)
        root = self._cached_root(index) or state / "root"
        (state / "config.toml").write_text(
            containerd_config(root, state / "state", plan.socket, PAUSE_IMAGE)
        )
        self._spawned.spawn(
            f"containerd-{plan.name}", ["containerd", "--config", str(state / "config.toml")]
        )

    def _cached_root(self, index: int) -> Path | None:
        """A containerd root under the cache dir, locked for this run; None if all are busy."""
        base = tools.cache_dir() / "containerd"
        base.mkdir(parents=True, exist_ok=True)
        for slot in range(index * 4, index * 4 + 4):
            lock = (base / f"root-{slot}.lock").open("w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            self._locks.append(lock)
            return base / f"root-{slot}"
        return None

    def _wait_socket(self, plan: NodePlan) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self._spawned.check(f"containerd-{plan.name}")
            if plan.socket.exists():
                return
            time.sleep(0.1)
        raise RealNodeError(f"containerd of {plan.name} did not open {plan.socket}")

    def _wait_ready(self, plan: NodePlan) -> None:
        from kubernetes.client.rest import ApiException

        deadline = time.monotonic() + READY_TIMEOUT
        addressed = False
        while time.monotonic() < deadline:
            self._spawned.check(f"kubelet-{plan.name}")
            try:
                node = self._core.read_node(plan.name, _preload_content=False)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                time.sleep(0.2)
                continue
            doc = json.loads(node.data)
            if not addressed:
                self._core.patch_node_status(plan.name, node_address_patch(plan))
                addressed = True
            if node_ready(doc):
                taints = taints_without(doc, NOT_READY_TAINT)
                if taints != (doc.get("spec", {}).get("taints") or []):
                    # kube-controller-manager's nodelifecycle controller, which would lift
                    # it, does not run here (it would also evict the simulated node's pods).
                    self._core.patch_node(plan.name, {"spec": {"taints": taints}})
                return
            time.sleep(0.2)
        log = self.workdir / "logs" / f"kubelet-{plan.name}.log"
        raise RealNodeError(
            f"node {plan.name} not Ready within {READY_TIMEOUT:.0f} s; last lines of {log}:\n"
            f"{log_tail(log)}"
        )

    def stop(self) -> None:
        """Containers first (kubelet and containerd leave them running), then the processes,
        then what the kubelet mounted; removes the workdir."""
        for plan in self.plans:
            self._spawned.stop(f"kubelet-{plan.name}")
        for plan in self.plans:
            if plan.socket.exists():
                self._remove_containers(plan)
            self._spawned.stop(f"containerd-{plan.name}")
        self._unmount_all()
        if self._core is not None:
            for plan in self.plans:
                with contextlib.suppress(Exception):
                    self._core.delete_node(plan.name)
            with contextlib.suppress(Exception):
                self._core.api_client.close()
            self._core = None
        for lock in self._locks:
            lock.close()
        self._locks.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _remove_containers(self, plan: NodePlan) -> None:
        ctr = shutil.which("ctr")
        if ctr is None:
            return
        base = [ctr, "--address", str(plan.socket), "-n", CRI_NAMESPACE]
        listed = subprocess.run([*base, "tasks", "ls", "-q"], capture_output=True, text=True,
                                check=False, timeout=30)  # fmt: skip
        tasks = listed.stdout.split()
        for task in tasks:
            subprocess.run([*base, "tasks", "kill", "-a", "-s", "SIGKILL", task],
                           capture_output=True, check=False, timeout=30)  # fmt: skip
        for task in tasks:
            subprocess.run([*base, "tasks", "delete", "-f", task], capture_output=True,
                           check=False, timeout=30)  # fmt: skip
        containers = subprocess.run([*base, "containers", "ls", "-q"], capture_output=True,
                                    text=True, check=False, timeout=30).stdout.split()  # fmt: skip
        if containers:
            subprocess.run([*base, "containers", "delete", *containers], capture_output=True,
                           check=False, timeout=60)  # fmt: skip

    def _unmount_all(self) -> None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return
        for point in mounts_under(self.workdir, mountinfo):
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)

    def diagnose(self) -> str:
        """Each node's running tasks and the end of its kubelet's log, for failure messages."""
        parts = []
        for plan in self.plans:
            tasks = subprocess.run(
                ["ctr", "--address", str(plan.socket), "-n", CRI_NAMESPACE, "tasks", "ls"],
                capture_output=True, text=True, check=False, timeout=30,
            ).stdout
            log = log_tail(self.workdir / "logs" / f"kubelet-{plan.name}.log", 25)
            parts.append(f"== {plan.name} tasks:\n{tasks}== {plan.name} kubelet:\n{log}")
        return "\n".join(parts)

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items() if k != "total")
        total = self.timings.get("total", 0.0)
        return f"{len(self.plans)} real nodes ready in {total:.1f} s ({parts})"

