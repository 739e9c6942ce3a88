"""The simulators together: in this process (simulated_cluster) or as a daemon (main).

Holds `simulated_cluster()`, a LocalCluster with the simulated kubelet and
CloneSet controller running in threads (tests, the demo), and the daemon entry
point `python -m webhook.localcluster.simulation --kubeconfig F --workdir D` that
`oam-rollout cluster up` starts beside the control plane, so pods become Ready
and CloneSets reconcile after the CLI has returned. The daemon runs until
SIGTERM and touches `<workdir>/simulators.ready` once both simulations watch.
It must not hold simulation logic (kubelet.py, cloneset.py do).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from webhook.localcluster.cloneset import SimulatedCloneSetController
from webhook.localcluster.cluster import LocalCluster
from webhook.localcluster.kubelet import SimulatedKubelet

READY_FILE = "simulators.ready"


@contextlib.contextmanager
def simulated_cluster(
    workdir: Path | None = None, *, ready_delay: float = 0.5, die_with_parent: bool = True
) -> Iterator[LocalCluster]:
    """A started LocalCluster whose pods get Ready and whose CloneSets reconcile.

    Everything is stopped on exit, whatever happened inside.
    """
    cluster = LocalCluster(workdir, die_with_parent=die_with_parent)
    kubelet: SimulatedKubelet | None = None
    clonesets: SimulatedCloneSetController | None = None
    try:
        cluster.start()
        kubelet = SimulatedKubelet(cluster.kubeconfig, ready_delay=ready_delay)
        kubelet.start()
        clonesets = SimulatedCloneSetController(cluster.kubeconfig)
        clonesets.start()
        yield cluster
    finally:
        if clonesets is not None:
            clonesets.stop()
        if kubelet is not None:
            kubelet.stop()
        cluster.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webhook.localcluster.simulation",
        description="Run the simulated kubelet and CloneSet controller until SIGTERM.",
    )
    parser.add_argument("--kubeconfig", type=Path, required=True)
    # The workdir is also the marker `cluster down` checks before signalling us.
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--ready-delay", type=float, default=0.5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    kubelet = SimulatedKubelet(args.kubeconfig, ready_delay=args.ready_delay)
    clonesets = SimulatedCloneSetController(args.kubeconfig)
    try:
        kubelet.start()
        clonesets.start()
        (args.workdir / READY_FILE).touch()
        done.wait()
    finally:
        clonesets.stop()
        kubelet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
