"""LocalCluster: etcd + kube-apiserver + kube-controller-manager on loopback, in a temp dir.

Holds the supervision of a throw-away control plane: its start (free 127.0.0.1 ports,
token auth, RBAC, service CIDR in 127.1.0.0/24; retried on fresh ports when a port was
taken in between), readiness checks, the installation of the oam-rollout CRDs plus the
simulated CloneSet CRD, its state file, and its stop. What the processes are started
with lives in controlplane.py, how they are signalled in processes.py. It must not run
the simulated kubelet or CloneSet controller itself (see kubelet.py / cloneset.py), must
only ever stop processes it started (by PID, checked against their command line), and
nothing it starts may listen on or dial an address outside 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from webhook.localcluster import tools
from webhook.localcluster.controlplane import (
    SERVICE_CIDR,
    TOKEN_USERS,
    ClusterStartError,
    ClusterState,
    apiserver_args,
    check_loopback_cidr,
    controller_manager_args,
    crd_paths,
    etcd_args,
    free_port,
    kubeconfig_document,
    tokens_file,
    write_service_account_keys,
)
from webhook.localcluster.processes import die_with_parent, log_tail, stop_pid

READY_TIMEOUT = 90.0
STATE_FILE = "cluster.json"
PORT_ATTEMPTS = 3


class LocalCluster:
    """A real control plane for tests and the demo, on free 127.0.0.1 ports."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        die_with_parent: bool = False,
        service_cidr: str = SERVICE_CIDR,
        state_file: Path | None = None,
    ) -> None:
        """workdir: where to keep data and logs (default: a new temp dir); stop() removes it.

        die_with_parent: the kernel sends SIGTERM to the control plane if this process
        dies without calling stop() (test sessions); `cluster up` leaves it False.
        service_cidr: must lie in 127.0.0.0/8, so even a Service-mode webhook dials
        loopback; a /24 holds 254 Services, pass a wider one for big benchmarks.
        """
        check_loopback_cidr(service_cidr)
        self.service_cidr = service_cidr
        self.state_file = state_file
        self._given_workdir = workdir
        self._die_with_parent = die_with_parent
        self.workdir: Path = workdir or Path()
        self.kubeconfig: Path = Path()
        self.server: str = ""
        self.token: str = ""
        # Tokens of the users who hold no rights until a test binds them (TOKEN_USERS).
        self.user_tokens: dict[str, str] = {}
        self.startup_seconds: float = 0.0
        self.sources: dict[str, str] = {}
        # Seconds spent per start phase, for the figures tests and `cluster up` print.
        self.phases: dict[str, float] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._pids: dict[str, int] = {}
        self._ports: dict[str, int] = {}
        self._started_at = 0.0

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start everything; return once the API serves and the CRDs are established."""
        began = time.monotonic()
        binaries = tools.control_plane_binaries()
        self.sources = dict(binaries.sources)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            if self._given_workdir:
                self._given_workdir.mkdir(parents=True, exist_ok=True)
                self.workdir = self._given_workdir
            else:
                self.workdir = Path(tempfile.mkdtemp(prefix="oam-rollout-cluster-"))
            try:
                self._start(binaries, began)
                return
            except ClusterStartError as exc:
                self.stop()
                # Free ports are picked, then bound by the child: a parallel session can
                # take one in between. Start over on fresh ports in that case only.
                if "address already in use" not in str(exc) or attempt == PORT_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise

    def _start(self, binaries: tools.ControlPlaneBinaries, began: float) -> None:
        work = self.workdir
        (work / "certs").mkdir(exist_ok=True)
        (work / "logs").mkdir(exist_ok=True)
        self.token = secrets.token_hex(24)
        self.user_tokens = {user: secrets.token_hex(24) for user, _ in TOKEN_USERS}
        tokens = work / "tokens.csv"
        tokens.write_text(tokens_file(self.token, self.user_tokens))
        tokens.chmod(0o600)
        write_service_account_keys(work / "sa.key", work / "sa.pub")
        self._ports = {
            "etcd": free_port(),
            "etcd-peer": free_port(),
            "kube-apiserver": free_port(),
            "kube-controller-manager": free_port(),
        }
        self.server = f"https://127.0.0.1:{self._ports['kube-apiserver']}"
        self._started_at = time.time()

        self._spawn(
            "etcd",
            etcd_args(binaries.etcd, work / "etcd", self._ports["etcd"], self._ports["etcd-peer"]),
        )
        self._spawn(
            "kube-apiserver",
            apiserver_args(
                binaries.kube_apiserver,
                work,
                self._ports["etcd"],
                self._ports["kube-apiserver"],
                self.service_cidr,
            ),
        )
        self._wait_api_ready()
        self.phases["api"] = time.monotonic() - began
        self.kubeconfig = work / "kubeconfig"
        doc = kubeconfig_document(self.server, work / "certs" / "apiserver.crt", self.token)
        self.kubeconfig.write_text(yaml.safe_dump(doc, sort_keys=False))
        self.kubeconfig.chmod(0o600)
        self._spawn(
            "kube-controller-manager",
            controller_manager_args(
                binaries.kube_controller_manager,
                work,
                self.kubeconfig,
                self._ports["kube-controller-manager"],
            ),
        )
        mark = time.monotonic()
        self._install_crds()
        self.phases["crds"] = time.monotonic() - mark
        mark = time.monotonic()
        self._wait_default_service_account()
        self.phases["controllers"] = time.monotonic() - mark
        self.startup_seconds = time.monotonic() - began
        self.save_state()

    def stop(self) -> None:
        """Stop what this object started (reverse order, by PID) and remove the temp dir."""
        marker = str(self.workdir)
        for name in reversed(list(self._pids)):
            stop_pid(self._pids[name], marker)
            proc = self._procs.get(name)
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.wait(timeout=5)
        self._pids.clear()
        self._procs.clear()
        if self.workdir != Path() and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- state -------------------------------------------------------------

    @property
    def pids(self) -> dict[str, int]:
        return dict(self._pids)

    def state(self) -> ClusterState:
        return ClusterState(
            workdir=str(self.workdir),
            server=self.server,
            kubeconfig=str(self.kubeconfig),
            token=self.token,
            pids=dict(self._pids),
            ports=dict(self._ports),
            started_at=self._started_at,
            startup_seconds=round(self.startup_seconds, 3),
            phases={k: round(v, 3) for k, v in self.phases.items()},
            user_tokens=dict(self.user_tokens),
        )

    def adopt(self, pid_name: str, pid: int) -> None:
        """Record another process (e.g. the simulators daemon) to stop with the cluster."""
        self._pids[pid_name] = pid
        self.save_state()

    def save_state(self) -> None:
        state = self.state()
        state.save(self.workdir / STATE_FILE)
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            state.save(self.state_file)

    def detach(self) -> None:
        """Forget the Popen handles so the processes outlive this Python process."""
        self._procs.clear()

    @classmethod
    def from_state(cls, path: Path) -> LocalCluster:
        """Rebuild a handle (e.g. in `oam-rollout cluster down`) from a state file."""
        st = ClusterState.load(path)
        cluster = cls(Path(st.workdir), state_file=path)
        cluster.workdir = Path(st.workdir)
        cluster.server = st.server
        cluster.kubeconfig = Path(st.kubeconfig)
        cluster.token = st.token
        cluster.user_tokens = dict(st.user_tokens)
        cluster._pids = dict(st.pids)
        cluster._ports = dict(st.ports)
        cluster._started_at = st.started_at
        cluster.startup_seconds = st.startup_seconds
        cluster.phases = dict(st.phases)
        return cluster

    # -- helpers -----------------------------------------------------------

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        log = (self.workdir / "logs" / f"{name}.log").open("wb")
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                # Own session: a Ctrl-C in the terminal or the CLI exiting does not kill it;
                # only stop() (by PID) does.
                start_new_session=True,
                preexec_fn=die_with_parent if self._die_with_parent else None,
            )
        except OSError as exc:
            raise ClusterStartError(f"could not start {name} ({argv[0]}): {exc}") from exc
        finally:
            log.close()
        self._procs[name] = proc
        self._pids[name] = proc.pid
        self.save_state()

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            code = proc.poll()
            if code is not None:
                log = self.workdir / "logs" / f"{name}.log"
                raise ClusterStartError(
                    f"{name} exited with code {code} during start; last lines of {log}:\n"
                    f"{log_tail(log)}"
                )

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.workdir / "certs" / "apiserver.crt"))

    def _get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(
                request, context=self.ssl_context(), timeout=timeout
            ) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def _wait_api_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        ca = self.workdir / "certs" / "apiserver.crt"
        last = "no answer yet"
        while time.monotonic() < deadline:
            self._check_alive()
            if ca.exists():
                try:
                    status, body = self._get("/readyz", timeout=2.0)
                    if status == 200:
                        return
                    last = f"HTTP {status}: {body[:200]!r}"
                except (OSError, ssl.SSLError) as exc:
                    last = str(exc)
            time.sleep(0.1)
        raise ClusterStartError(
            f"kube-apiserver not ready after {READY_TIMEOUT:.0f}s ({last}); "
            f"last lines of its log:\n{log_tail(self.workdir / 'logs' / 'kube-apiserver.log')}"
        )

    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient for this cluster (admin token)."""
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=cfg)
        return client.ApiClient(cfg)

    def _install_crds(self) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        api = client.ApiextensionsV1Api(self.api_client())
        names: list[str] = []
        for path in crd_paths():
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc:
                    continue
                try:
                    api.create_custom_resource_definition(doc)
                except ApiException as exc:
                    if exc.status != 409:
                        raise ClusterStartError(
                            f"CRD {path.name} rejected: {exc.status} {exc.body}"
                        ) from exc
                names.append(doc["metadata"]["name"])
        deadline = time.monotonic() + READY_TIMEOUT
        pending = set(names)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                crd = api.read_custom_resource_definition(name)
                conditions = (crd.status.conditions if crd.status else None) or []
                if any(c.type == "Established" and c.status == "True" for c in conditions):
                    pending.discard(name)
            if pending:
                time.sleep(0.05)
        if pending:
            raise ClusterStartError(f"CRDs not established in time: {sorted(pending)}")

    def _wait_default_service_account(self) -> None:
        """The controller manager works once `default` has its ServiceAccount and token."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        core = client.CoreV1Api(self.api_client())
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                sa = core.read_namespaced_service_account("default", "default")
                if sa.secrets:
                    return
            except ApiException as exc:
                if exc.status != 404:
                    raise
            time.sleep(0.05)
        raise ClusterStartError(
            "kube-controller-manager did not create the default ServiceAccount in time; "
            "last lines of its log:\n"
            f"{log_tail(self.workdir / 'logs' / 'kube-controller-manager.log')}"
        )
