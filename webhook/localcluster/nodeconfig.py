"""What a real node is made of: its address plan, containerd's and the kubelet's
configuration, the command lines, and the Node patches that make it usable here.

Pure functions of plain values for realnode.py, which starts the processes. It must not
start anything, and every address it names lies in 127.0.0.0/8.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhook.core.errors import OamRolloutError

PAUSE_IMAGE = "localhost/pause:oam"
TAINT_KEY = "oam-rollout.dev/real-node"
NODE_LABEL = "oam-rollout.dev/real-node"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
CRI_NAMESPACE = "k8s.io"
READY_TIMEOUT = 90.0
# runc here cannot raise rlimits (no CAP_SYS_RESOURCE): the lowered limits podman needs.
PODMAN_ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


class RealNodeError(OamRolloutError):
    """A real node did not come up or could not be stopped cleanly; the message says why."""


@dataclass(frozen=True)
class NodePlan:
    """One real node: its name, its loopback address and where its files live."""

    name: str
    ip: str
    dir: Path

    @property
    def socket(self) -> Path:
        return self.dir / "containerd" / "containerd.sock"


def node_plans(workdir: Path, count: int, block: int, prefix: str = "real-node") -> list[NodePlan]:
    """Nodes 1..count at 127.0.block.1..count (every 127.x address is loopback on Linux)."""
    if not 2 <= block <= 254 or not 1 <= count <= 254:
        raise RealNodeError(f"no loopback plan for {count} nodes in block {block}")
    return [
        NodePlan(f"{prefix}-{i}", f"127.0.{block}.{i}", workdir / f"{prefix}-{i}")
        for i in range(1, count + 1)
    ]


def containerd_config(root: Path, state: Path, socket: Path, sandbox_image: str) -> str:
    """containerd 1.6 TOML: own dirs and socket, CRI without CNI, no TCP listener.

    restrict_oom_score_adj: without CAP_SYS_RESOURCE lowering a sandbox's oom_score_adj
    fails and every sandbox dies ("can't get final child's PID from pipe: EOF").
    """
    return "\n".join(
        [
            "version = 2",
            f'root = "{root}"',
            f'state = "{state}"',
            "[grpc]",
            f'  address = "{socket}"',
            "[ttrpc]",
            f'  address = "{socket}.ttrpc"',
            "[debug]",
            '  address = ""',
            "[metrics]",
            '  address = ""',
            '[plugins."io.containerd.grpc.v1.cri"]',
            f'  sandbox_image = "{sandbox_image}"',
            "  restrict_oom_score_adj = true",
            # exec / port-forward streams: loopback, a port the kernel picks.
            '  stream_server_address = "127.0.0.1"',
            '  stream_server_port = "0"',
            "",
        ]
    )


def kubelet_config(address: str) -> dict[str, Any]:
    """The KubeletConfiguration (v1beta1 as of 1.20) a node without privileges needs."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": address,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        # No cgroup hierarchy of its own to manage here.
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        # A shared test machine is always "full" by the default thresholds.
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusUpdateFrequency": "10s",
        "syncFrequency": "10s",
        "serializeImagePulls": False,
    }


def kubelet_args(
    binary: Path, kubeconfig: Path, plan: NodePlan, sandbox_image: str = PAUSE_IMAGE
) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--config={plan.dir / 'kubelet-config.yaml'}",
        "--container-runtime=remote",
        f"--container-runtime-endpoint=unix://{plan.socket}",
        f"--hostname-override={plan.name}",
        # Refused as a node address (loopback); kept for the kubelet's own choices, and
        # RealNodes sets the Node's InternalIP itself (pods' hostIP / podIP come from it).
        f"--node-ip={plan.ip}",
        f"--root-dir={plan.dir / 'kubelet'}",
        f"--cert-dir={plan.dir / 'kubelet' / 'pki'}",
        f"--pod-infra-container-image={sandbox_image}",
        f"--node-labels={NODE_LABEL}=true",
        f"--register-with-taints={TAINT_KEY}=true:NoSchedule",
        "--v=1",
    ]


def scheduler_args(binary: Path, kubeconfig: Path, port: int) -> list[str]:
    # Both serving ports on loopback: the insecure one off, the secure one on a free port
    # (the default binds 0.0.0.0).
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--port=0",
        "--v=1",
    ]


def node_address_patch(plan: NodePlan) -> dict[str, Any]:
    """The kubelet refuses a loopback --node-ip for the Node's addresses; set them here.

    InternalIP only: the API server dials a kubelet (logs, exec) at the first address of
    the types it prefers, Hostname first, and looking a node's name up would query DNS.
    """
    return {"status": {"addresses": [{"type": "InternalIP", "address": plan.ip}]}}


def taints_without(node: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    return [t for t in (node.get("spec", {}).get("taints") or []) if t.get("key") != key]


def node_ready(node: Mapping[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def mounts_under(root: Path, mountinfo: str) -> list[Path]:
    """Mount points at or below root, deepest first (the order to unmount them)."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = Path(fields[4].replace("\\040", " "))
            if point == root or root in point.parents:
                found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)
