"""The processes of the local cluster and its tools: checking, signalling, stopping them.

Holds stop_process (a Popen: SIGTERM, a grace period, then SIGKILL; shared by the test
fixtures and the demo), stop_pid / process_alive / process_cmdline (a process known by
PID only, e.g. from a state file), die_with_parent (run in a child before exec) and
log_tail (the end of a process's log, for error messages). It must only ever signal
the processes it is given, by PID and never by name, and must not start anything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
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


def process_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True


def stop_pid(pid: int, marker: str, timeout: float = 10.0) -> None:
    """SIGTERM then SIGKILL one process we started.

    marker is a string its command line must contain (our workdir), so a PID
    recycled by an unrelated process after a crash is never signalled.
    """
    if not process_alive(pid) or marker not in process_cmdline(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not process_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def die_with_parent() -> None:
    """In the child before exec: ask for SIGTERM when the parent goes away (Linux)."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"
