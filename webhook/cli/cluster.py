"""The `oam-rollout cluster up|down|env` subcommand: a local control plane in the background.

Holds argument parsing and printing only; starting, finding and stopping the
control plane is webhook.localcluster.background. It must not talk to the
Kubernetes API itself.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from types import FrameType
from typing import Any

DEFAULT_NAME = "default"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "cluster",
        help="start/stop a local control plane (etcd, kube-apiserver, controllers) on 127.0.0.1",
        description=(
            "A throw-away Kubernetes control plane on loopback for tests and the demo: "
            "etcd, kube-apiserver and kube-controller-manager, plus a simulated kubelet "
            "and a simulated OpenKruise CloneSet controller."
        ),
    )
    p.add_argument(
        "action",
        choices=("up", "down", "env"),
        help="up: start and wait until ready; down: stop it and remove its files; "
        "env: print `export KUBECONFIG=...`",
    )
    p.add_argument(
        "--name",
        default=DEFAULT_NAME,
        help="which local cluster (several can run side by side; default: %(default)s)",
    )
    p.add_argument(
        "--no-simulators",
        action="store_true",
        help="do not run the simulated kubelet and CloneSet controller",
    )
    p.add_argument(
        "--ready-delay",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="how long the simulated kubelet takes to make a pod Ready (default: %(default)s)",
    )
    p.set_defaults(func=run)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def export_line(kubeconfig: str) -> str:
    return f"export KUBECONFIG={shlex.quote(kubeconfig)}"


def run(args: argparse.Namespace) -> int:
    from webhook.localcluster import background
    from webhook.localcluster.controlplane import describe_startup

    if args.ready_delay < 0:
        print("oam-rollout cluster: --ready-delay must be >= 0", file=sys.stderr)
        return 2
    if args.action == "up":
        # SIGTERM mid-start unwinds like Ctrl-C: what was started gets stopped.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        state, started = background.up(
            args.name, simulators=not args.no_simulators, ready_delay=args.ready_delay
        )
        if started:
            print(
                f"{args.name}: {describe_startup(state.startup_seconds, state.phases)} at "
                f"{state.server} (workdir {state.workdir})",
                file=sys.stderr,
            )
        else:
            print(f"control plane {args.name!r} already running at {state.server}", file=sys.stderr)
        print(export_line(state.kubeconfig))
        return 0
    if args.action == "down":
        if background.down(args.name):
            print(f"control plane {args.name!r} stopped", file=sys.stderr)
        else:
            print(f"no local control plane {args.name!r} was running", file=sys.stderr)
        return 0
    found = background.find(args.name)
    if found is None:
        print(
            f"oam-rollout cluster: no local control plane {args.name!r} is running "
            "(start one with: oam-rollout cluster up)",
            file=sys.stderr,
        )
        return 1
    print(export_line(found.kubeconfig))
    return 0
