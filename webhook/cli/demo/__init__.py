"""The `oam-rollout demo` subcommand: the whole product on a throw-away local control plane.

Holds the command (``register``, ``run``). The parts: ``steps`` (the scenario as plain
data), ``views`` (pure descriptions of live state, and the printer), ``processes`` (the
demo's child processes) and ``runner`` (the I/O shell that starts everything and plays
the scenario). It must not hold rollout or admission logic, and it must not leave
anything running: SIGTERM tears down as Ctrl-C does.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from webhook.cli.demo.processes import DemoError
from webhook.cli.demo.runner import Demo, chart_dir, helm_install_args
from webhook.cli.demo.steps import Expectation, RolloutView, Step, application, scenario
from webhook.cli.demo.views import Printer, is_settled, progress_line, rollout_view

__all__ = [
    "Demo",
    "DemoError",
    "Expectation",
    "RolloutView",
    "Step",
    "application",
    "chart_dir",
    "helm_install_args",
    "is_settled",
    "progress_line",
    "register",
    "rollout_view",
    "run",
    "scenario",
]


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
