"""The controller's health endpoint: GET /healthz, /readyz and /metrics on one small port.

Holds the pure probe rules (``live_problems``, ``ready_problems``: plain facts in, the
reasons a probe fails out), ``answer`` (path to status code and body) and HealthServer,
a daemon thread around http.server bound where it is told. It must not use Flask, reach
into the API or decide rollouts: the loop reports its facts through HealthFacts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

log = logging.getLogger("oam_rollout.controller")

# A reconcile is a handful of API calls with short timeouts: one held this long is stuck.
WEDGE_SECONDS = 120.0


@dataclass(frozen=True)
class HealthFacts:
    """What the loop knows about itself at one moment (monotonic seconds)."""

    now: float
    role: str  # "starting" | "follower" | "leader" | "stopping"
    busy: Mapping[str, tuple[str, float]] = field(default_factory=dict)  # worker: (key, since)
    dead_threads: Sequence[str] = ()
    unsynced_watches: Sequence[str] = ()
    lease_tried: float | None = None  # last lease attempt, with --leader-elect
    lease_patience: float = 60.0  # how long without one is a wedge


def live_problems(facts: HealthFacts, wedge_seconds: float = WEDGE_SECONDS) -> list[str]:
    """Why the process should be restarted; empty while it is alive and moving."""
    problems = [f"thread {name} has died" for name in facts.dead_threads]
    for worker, (key, since) in sorted(facts.busy.items()):
        if facts.now - since > wedge_seconds:
            problems.append(f"{worker} has been reconciling {key} for "
                            f"{facts.now - since:.0f}s")
    if facts.lease_tried is not None and facts.now - facts.lease_tried > facts.lease_patience:
        problems.append(f"no lease attempt for {facts.now - facts.lease_tried:.0f}s")
    return problems


def ready_problems(facts: HealthFacts) -> list[str]:
    """Why the replica is not ready: a leader must have every watch listed and synced;
    a follower waiting for the lease is ready (it is a healthy stand-by)."""
    if facts.role == "follower":
        return []
    if facts.role in ("starting", "stopping"):
        return [f"controller is {facts.role}"]
    return [f"watch {name} not synced yet" for name in facts.unsynced_watches]


def answer(path: str, facts: Callable[[], HealthFacts],
           metrics: Callable[[], bytes] | None) -> tuple[int, bytes, str]:
    """(HTTP status, body, content type) for one GET."""
    route = path.split("?", 1)[0]
    if route == "/metrics" and metrics is not None:
        return 200, metrics(), CONTENT_TYPE_LATEST
    if route in ("/healthz", "/livez", "/readyz"):
        snapshot = facts()
        problems = ready_problems(snapshot) if route == "/readyz" else live_problems(snapshot)
        if problems:
            return 503, ("\n".join(problems) + "\n").encode(), "text/plain; charset=utf-8"
        return 200, f"ok ({snapshot.role})\n".encode(), "text/plain; charset=utf-8"
    return 404, b"not found: try /healthz, /readyz or /metrics\n", "text/plain; charset=utf-8"


class HealthServer:
    """/healthz, /readyz and /metrics on ``bind:port`` in a daemon thread."""

    def __init__(self, bind: str, port: int, facts: Callable[[], HealthFacts],
                 metrics: Callable[[], bytes] | None = None) -> None:
        route = self._route = (facts, metrics)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server dispatches GET to
                try:
                    status, body, ctype = answer(self.path, *route)
                except Exception:  # a probe must answer, never hang or kill the server
                    log.exception("health endpoint %s failed", self.path)
                    status, body, ctype = 500, b"internal error\n", "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                del format, args  # probes every few seconds would flood the log

        self._server = ThreadingHTTPServer((bind, port), Handler)  # OSError when taken
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
