"""The demo's child processes: started in a session of their own, stopped by their own PID.

Holds ``DemoError``, ``LocalProcess`` (a child with its log file), ``start_process``,
``wait_for`` and ``https_ok`` (a probe of a TLS endpoint on 127.0.0.1). It must not
stop anything it did not start, and a child must not outlive the demo: each is asked
to receive SIGTERM when the demo dies.
"""

from __future__ import annotations

import contextlib
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from webhook.core.errors import OamRolloutError
from webhook.localcluster.processes import stop_process


class DemoError(OamRolloutError):
    """A demo stage could not start; the message says which and why."""


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


def https_ok(url: str, cafile: Path) -> bool:
    context = ssl.create_default_context(cafile=str(cafile))
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ssl.SSLError):
        return False
