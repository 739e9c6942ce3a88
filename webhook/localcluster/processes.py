"""Stopping a child process this program started: SIGTERM, a grace period, then SIGKILL.

Holds stop_process, shared by the test fixtures and the demo. It must only ever signal
the Popen it is given (by its PID, never by name) and must not start anything.
"""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15.0,
                 kill_timeout: float = 5.0) -> None:
    """Ask ``proc`` to stop; SIGKILL it if it is still running after ``timeout`` seconds.

    A process that already exited is left alone. The grace period lets servers finish
    requests and controllers release their Lease; SIGKILL bounds a teardown that hangs.
    """
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=kill_timeout)
