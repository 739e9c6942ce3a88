"""What a local control plane is made of: its configuration files, command lines and state.

Holds the pure and file-writing parts LocalCluster (cluster.py) assembles: free 127.0.0.1
ports, the loopback service range check, the admin kubeconfig document, the token file
(the admin and the TOKEN_USERS, who hold no rights until RBAC grants them), the service
account keys, the command lines of etcd, kube-apiserver and kube-controller-manager, the
CRD files to install, ClusterState (the state file another process finds the cluster
by) and the start-up summary line. It must not start or stop processes (cluster.py and
processes.py do), and every address it names lies in 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from webhook.core.errors import OamRolloutError
from webhook.localcluster import tools

SERVICE_CIDR = "127.1.0.0/24"
CONTROLLERS = (
    "deployment",
    "replicaset",
    "garbagecollector",
    "serviceaccount",
    "serviceaccount-token",
    "namespace",
)
ADMIN_USER = "admin"
# Users who may authenticate (by token, like the admin) but hold no rights until a Role
# binds them: what RBAC lets a user do through an Application is tested with them.
# (name, groups); the groups let a binding to a group be tested too.
TOKEN_USERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("alice", ("developers",)),
    ("bob", ("developers",)),
    ("mallory", ()),
)


class ClusterStartError(OamRolloutError):
    """The control plane did not come up; the message says which part and why."""


@dataclass
class ClusterState:
    """What another process needs to find, use and stop a running control plane."""

    workdir: str
    server: str
    kubeconfig: str
    token: str
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0
    startup_seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    # The TOKEN_USERS' tokens, by user name.
    user_tokens: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        # It holds the admin token: readable by the owner only.
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        tmp.chmod(0o600)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ClusterState:
        raw = json.loads(path.read_text())
        return cls(**raw)


def check_loopback_cidr(cidr: str) -> None:
    """Refuse a service range outside 127.0.0.0/8: the apiserver may dial ClusterIPs."""
    try:
        network = ipaddress.ip_network(cidr)
    except ValueError as exc:
        raise ClusterStartError(f"service CIDR {cidr!r} is not a network: {exc}") from exc
    loopback = ipaddress.IPv4Network("127.0.0.0/8")
    if not (isinstance(network, ipaddress.IPv4Network) and network.subnet_of(loopback)):
        raise ClusterStartError(f"service CIDR {cidr} must lie inside 127.0.0.0/8")


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def crd_paths() -> list[Path]:
    """The oam-rollout CRDs (chart files) and the simulated CloneSet CRD."""
    here = Path(__file__).resolve().parent
    installed = here.parent / "_data" / "charts" / "oam-rollout" / "files" / "crds"
    root = tools.repo_root()
    in_repo = root / "charts" / "oam-rollout" / "files" / "crds" if root else None
    chart_dir = in_repo if in_repo and in_repo.is_dir() else installed
    found = sorted(chart_dir.glob("*.yaml")) if chart_dir.is_dir() else []
    if not found:
        raise ClusterStartError(f"no CRD files found in {chart_dir}")
    return [*found, here / "crds" / "clonesets.yaml"]


def write_service_account_keys(key_path: Path, pub_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    pub_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def tokens_file(admin_token: str, user_tokens: dict[str, str]) -> str:
    """The apiserver's --token-auth-file: ``token,user,uid,"group,..."`` per line."""
    groups = dict(TOKEN_USERS)
    lines = [f"{admin_token},{ADMIN_USER},{ADMIN_USER},system:masters"]
    for user, token in sorted(user_tokens.items()):
        member_of = ",".join(groups.get(user, ()))
        line = f"{token},{user},{user}"
        lines.append(f'{line},"{member_of}"' if member_of else line)
    return "\n".join(lines) + "\n"


def kubeconfig_document(server: str, ca_file: Path, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "oam-rollout-local",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [
            {
                "name": "oam-rollout-local",
                "context": {
                    "cluster": "oam-rollout-local",
                    "user": ADMIN_USER,
                    "namespace": "default",
                },
            }
        ],
        "current-context": "oam-rollout-local",
    }


def etcd_args(etcd: Path, data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    return [
        str(etcd),
        "--name=default",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        # Tests throw the data away: no fsync per write keeps a 2-core box responsive.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver_args(
    binary: Path, workdir: Path, etcd_port: int, port: int, service_cidr: str = SERVICE_CIDR
) -> list[str]:
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        f"--secure-port={port}",
        "--insecure-port=0",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--cert-dir={workdir / 'certs'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={workdir / 'sa.pub'}",
        f"--service-account-signing-key-file={workdir / 'sa.key'}",
        "--authorization-mode=RBAC",
        f"--token-auth-file={workdir / 'tokens.csv'}",
        f"--service-cluster-ip-range={service_cidr}",
        "--allow-privileged",
        "--profiling=false",
        "--v=0",
    ]


def controller_manager_args(binary: Path, workdir: Path, kubeconfig: Path, port: int) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--controllers={','.join(CONTROLLERS)}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--port=0",
        f"--service-account-private-key-file={workdir / 'sa.key'}",
        f"--root-ca-file={workdir / 'certs' / 'apiserver.crt'}",
        "--profiling=false",
        "--v=0",
    ]


def describe_startup(seconds: float, phases: dict[str, float]) -> str:
    """`control plane ready in 6.3 s (api 4.1 s, crds 0.4 s, controllers 1.8 s)`."""
    parts = ", ".join(f"{name} {value:.1f} s" for name, value in phases.items())
    return f"control plane ready in {seconds:.1f} s" + (f" ({parts})" if parts else "")
