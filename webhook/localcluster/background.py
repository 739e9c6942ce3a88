"""Background clusters: a LocalCluster that outlives the command that started it.

Holds `up` / `down` / `find` for named control planes started by `oam-rollout
cluster up`: the processes run in their own sessions, and a state file under
the cache dir (`clusters/<name>.json`, PIDs + paths) lets later commands find and
stop them. It must not parse command lines or print (commands/cluster.py does),
and it only ever signals the PIDs recorded in that file, after checking their
command line still names the cluster's workdir.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from webhook.localcluster import tools
from webhook.localcluster.cluster import LocalCluster
from webhook.localcluster.controlplane import ClusterStartError, ClusterState
from webhook.localcluster.processes import process_alive
from webhook.localcluster.simulation import READY_FILE

SIMULATORS = "simulators"


def state_path(name: str) -> Path:
    return tools.cache_dir() / "clusters" / f"{name}.json"


def find(name: str) -> ClusterState | None:
    """The state of a running background cluster, or None (stale files are ignored)."""
    path = state_path(name)
    if not path.is_file():
        return None
    try:
        state = ClusterState.load(path)
    except (OSError, ValueError, TypeError):
        return None
    apiserver = state.pids.get("kube-apiserver")
    if apiserver is None or not process_alive(apiserver) or not Path(state.workdir).is_dir():
        return None
    return state


def up(
    name: str, *, simulators: bool = True, ready_delay: float = 0.5
) -> tuple[ClusterState, bool]:
    """Start cluster `name` unless it runs; returns (state, started_now)."""
    running = find(name)
    if running:
        return running, False
    down(name)  # clears a stale state file and anything left of it
    # The state file is written as each process starts: if this start is killed
    # halfway, `down` (or the next `up`) still finds what it left running.
    cluster = LocalCluster(state_file=state_path(name))
    cluster.start()
    try:
        if simulators:
            cluster.adopt(SIMULATORS, _start_simulators(cluster, ready_delay))
    except BaseException:
        cluster.stop()
        raise
    cluster.detach()
    state = cluster.state()
    return state, True


def down(name: str) -> bool:
    """Stop cluster `name` (every recorded PID) and remove its workdir; False if none."""
    path = state_path(name)
    if not path.is_file():
        return False
    try:
        cluster = LocalCluster.from_state(path)
    except (OSError, ValueError, TypeError):
        path.unlink(missing_ok=True)
        return False
    cluster.stop()
    return True


def _start_simulators(cluster: LocalCluster, ready_delay: float) -> int:
    log_path = cluster.workdir / "logs" / f"{SIMULATORS}.log"
    argv = [
        sys.executable,
        "-m",
        "webhook.localcluster.simulation",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--workdir",
        str(cluster.workdir),
        "--ready-delay",
        str(ready_delay),
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    ready = cluster.workdir / READY_FILE
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ready.exists():
            return proc.pid
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()
    tail = log_path.read_text(errors="replace")[-2000:]
    raise ClusterStartError(f"the simulators did not start; {log_path}:\n{tail}")
