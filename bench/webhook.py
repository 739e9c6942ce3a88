"""Benchmark of the admission webhook against a do-nothing baseline, both under gunicorn with TLS.

Starts `oam-rollout webhook` and a baseline (a minimal WSGI app that answers every request
with a fixed allowed AdmissionReview) with identical gunicorn settings (gthread, workers,
threads, keep-alive, TLS) on 127.0.0.1, plus a stub Kubernetes API on 127.0.0.1 that serves
the ControllerRevisions and Rollouts the corpus needs. Each server is driven with the same
mixed corpus (valid, invalid, state-checked and mutating reviews) over keep-alive
connections: first one connection for latency, then several for throughput; bounded in
count and time. Prints p50/p99 latency, requests/s, RSS and the ratios ours/baseline, for
--rounds rounds (ours and the baseline alternating) and their medians.

With --scale, instead: the scale phase. The same webhook, fed by real local control planes
(webhook.localcluster): one holds only the corpus's objects, the other also 2,000
Applications, their 20,000 ControllerRevisions and 2,000 Rollouts, created through the API
(a bounded thread pool on loopback). Runs against the two alternate: validate p99 full
against empty, and RSS.

Usage: .venv/bin/python bench/webhook.py [--requests N] [--seconds S] [--clients C] [--rounds R]
       .venv/bin/python bench/webhook.py --scale [--scale-apps N] [--scale-revisions M]
It must not be imported by the package or the tests, and never dials beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on sys.path and its name would shadow
# the `webhook` package: put the repository root first instead.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

NAMESPACE = "bench"
KEEPALIVE = 75

# ---------------------------------------------------------------------------
# the corpus


def _app(name: str, **kw: Any) -> dict[str, Any]:
    from tests.fixtures.apps import application

    return application(name, namespace=NAMESPACE, **kw)


def corpus() -> list[tuple[str, str, bytes]]:
    """(label, path, body): valid, invalid, state-checked and mutating reviews."""
    from tests.fixtures.webhook import admission_review

    def review(obj: dict[str, Any], **kw: Any) -> bytes:
        return json.dumps(admission_review(obj, namespace=NAMESPACE, **kw)).encode()

    first = _app("first")
    scale = _app("scaled", rollout={"targetSize": 7, "rolloutBatches": [{"replicas": 1}] * 2})
    bad_sum = _app("bad", rollout={"targetSize": 5, "rolloutBatches": [{"replicas": 2}] * 2})
    bad_scale = _app("scaled", rollout={"targetSize": 7, "rolloutBatches": [{"replicas": 3}]})
    reused = _app("scaled", image="stefanprodan/podinfo:5.0.2")
    labelled = json.loads(json.dumps(scale))
    labelled["metadata"]["labels"] = {"tier": "web"}
    return [
        ("validate valid create", "/validate", review(first)),
        (
            "validate valid scale",
            "/validate",
            review(scale, operation="UPDATE", old=_app("scaled")),
        ),
        ("validate invalid sum", "/validate", review(bad_sum)),
        ("validate invalid scale", "/validate", review(bad_scale, operation="UPDATE", old=scale)),
        ("validate reused revision", "/validate", review(reused)),
        ("validate metadata update", "/validate", review(labelled, operation="UPDATE", old=scale)),
        ("mutate create", "/mutate", review(first)),
        ("mutate update", "/mutate", review(scale, operation="UPDATE", old=_app("scaled"))),
    ]


# ---------------------------------------------------------------------------
# the stub Kubernetes API (read-only lists, loopback only)


def corpus_objects() -> tuple[dict[str, Any], dict[str, Any]]:
    """What `scaled` needs live: revision v1 of express-server, a Rollout settled at 5."""
    from webhook.core.model import parse_application
    from webhook.core.revisions import resolve_revisions
    from webhook.core.state import ObservedState
    from webhook.render.renderer import Renderer

    app, _ = parse_application(_app("scaled"))
    assert app is not None
    resolved, _ = resolve_revisions(app, ObservedState())
    component = app.components[0]
    revision = Renderer().render_revision(app, component, resolved[component.name])
    rollout = {
        "apiVersion": "standard.oam.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": component.name, "namespace": NAMESPACE,
                     "labels": {"app.oam.dev/name": "scaled"}},
        "spec": {"targetRevisionName": "express-server-v1"},
        "status": {"lastTargetRevision": "express-server-v1", "rolloutTargetSize": 5,
                   "rollingState": "rolloutSucceed", "currentBatch": 1,
                   "batchRollingState": "batchReady"},
    }  # fmt: skip
    revision["metadata"]["namespace"] = NAMESPACE
    return revision, rollout


def stub_lists() -> dict[str, bytes]:
    """The lists `scaled` needs: revision v1 of express-server, a Rollout settled at 5."""
    revision, rollout = corpus_objects()
    revisions = json.dumps(
        {
            "kind": "ControllerRevisionList",
            "metadata": {"resourceVersion": "1"},
            "items": [revision],
        }
    ).encode()
    rollouts = json.dumps(
        {"kind": "RolloutList", "metadata": {"resourceVersion": "1"}, "items": [rollout]}
    ).encode()
    # Namespaced lists for direct reads, cluster-wide ones for the watch-fed cache.
    return {
        f"/apis/apps/v1/namespaces/{NAMESPACE}/controllerrevisions": revisions,
        "/apis/apps/v1/controllerrevisions": revisions,
        f"/apis/standard.oam.dev/v1alpha1/namespaces/{NAMESPACE}/rollouts": rollouts,
        "/apis/standard.oam.dev/v1alpha1/rollouts": rollouts,
    }


def serve_stub_api(port: int) -> None:
    """Serve the stub API on 127.0.0.1:port until terminated (its own process: own GIL)."""
    lists = stub_lists()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Like Go's net/http (the real apiserver): no Nagle delay between header and body.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if "watch=1" in query.split("&"):
                # Nothing changes during a bench: hold the stream open, then end it.
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                time.sleep(60)
                self.wfile.write(b"0\r\n\r\n")
                return
            body = lists.get(path)
            self.send_response(200 if body is not None else 404)
            payload = body if body is not None else b'{"kind":"Status","message":"not found"}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def start_stub_api() -> tuple[multiprocessing.Process, int]:
    port = free_port()
    process = multiprocessing.Process(target=serve_stub_api, args=(port,), daemon=True)
    process.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("stub API did not start")


def write_kubeconfig(path: Path, port: int) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "bench",
        "clusters": [{"name": "bench", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "bench", "user": {"token": "bench"}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
    }))  # fmt: skip
    return path


# ---------------------------------------------------------------------------
# the baseline server: same gunicorn settings, a fixed answer


FIXED = json.dumps(
    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
     "response": {"uid": "", "allowed": True}}
).encode()  # fmt: skip


def baseline_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    environ["wsgi.input"].read()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(FIXED)))]
    )
    return [FIXED]


def serve_baseline(port: int, cert: str, key: str, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    options = {
        "bind": [f"127.0.0.1:{port}"], "workers": workers, "threads": threads,
        "worker_class": "gthread", "keepalive": KEEPALIVE, "timeout": 30,
        "certfile": cert, "keyfile": key, "accesslog": None, "errorlog": "-",
        "loglevel": "warning", "preload_app": False, "control_socket_disable": True,
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
    }  # fmt: skip

    class Baseline(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for k, v in options.items():
                self.cfg.set(k, v)

        def load(self) -> Any:
            return baseline_app

    Baseline().run()


# ---------------------------------------------------------------------------
# driving a server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(port: int, ca: str, path: str, process: subprocess.Popen[bytes]) -> None:
    context = ssl.create_default_context(cafile=ca)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited {process.returncode}")
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
            conn.request("GET", path) if path != "/validate" else conn.request(
                "POST", path, body=b"{}", headers={"Content-Type": "application/json"}
            )
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server not ready in 30 s")


def drive(
    args: tuple[int, str, list[tuple[str, str, bytes]], int, float, int],
) -> tuple[list[tuple[str, float]], float]:
    """One keep-alive connection: send the corpus round-robin.

    Returns (label, seconds) per request and the CPU seconds this client spent.
    """
    port, ca, items, count, seconds, offset = args
    cpu_started = time.process_time()
    context = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    out: list[tuple[str, float]] = []
    deadline = time.monotonic() + seconds
    for i in range(count):
        label, path, body = items[(i + offset) % len(items)]
        started = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        out.append((label, time.perf_counter() - started))
        if response.status != 200:
            raise SystemExit(f"{label}: HTTP {response.status}")
        if time.monotonic() > deadline:
            break
    conn.close()
    return out, time.process_time() - cpu_started


def tree_pids(pid: int) -> list[int]:
    """A process and its children (gunicorn master + workers)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.append(int(entry))
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far."""
    ticks = 0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, *, children: bool = True) -> int:
    """RSS of a process and its children (gunicorn master + workers), KiB."""
    total = 0
    for p in tree_pids(pid) if children else [pid]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(name: str, port: int, ca: str, pid: int, opts: argparse.Namespace) -> dict[str, Any]:
    items = corpus()
    if name == "oam-rollout" and not opts.no_state_cache:
        # Reviews are measured from the watch-fed cache, not from its fallback to the API.
        wait_for_cache(port, ca, items)
    # Warm-up: every corpus entry a few times (templates, connection pools).
    drive((port, ca, items, len(items) * 3, 10.0, 0))
    started = time.perf_counter()
    server_cpu = cpu_seconds(pid)
    # In a child process too: the driver must not share a GIL with anything measured.
    with multiprocessing.Pool(1, *client_affinity(opts)) as pool:
        sequential, client_cpu = pool.map(
            drive, [(port, ca, items, opts.requests, opts.seconds, 0)]
        )[0]
    seq_elapsed = time.perf_counter() - started
    jobs = [(port, ca, items, opts.requests, opts.seconds, i) for i in range(opts.clients)]
    started = time.perf_counter()
    with multiprocessing.Pool(opts.clients, *client_affinity(opts)) as pool:
        chunks = pool.map(drive, jobs)
    par_elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(pid) - server_cpu
    parallel = [r for chunk, _ in chunks for r in chunk]
    client_cpu += sum(cpu for _, cpu in chunks)
    total = len(sequential) + len(parallel)
    validate = [s for label, s in sequential if label.startswith("validate")]
    return {
        "name": name,
        "p50": percentile([s for _, s in sequential], 0.5) * 1000,
        "p99": percentile([s for _, s in sequential], 0.99) * 1000,
        "validate_p50": percentile(validate, 0.5) * 1000,
        "validate_p99": percentile(validate, 0.99) * 1000,
        "seq_rps": len(sequential) / seq_elapsed,
        "rps": len(parallel) / par_elapsed,
        "loaded_p99": percentile([s for _, s in parallel], 0.99) * 1000,
        "requests": total,
        "rss_mib": rss_kib(pid) / 1024,
        "worker_rss_mib": max((rss_kib(p, children=False) for p in tree_pids(pid)[1:]),
                              default=0) / 1024,
        # CPU per request hardly depends on what else runs on the machine; rates do.
        "server_cpu_ms": server_cpu / total * 1000,
        "client_cpu_ms": client_cpu / total * 1000,
    }


def server_side(log: Path) -> dict[str, float]:
    """p50/p99 of the webhook's own durationMs per review (no TLS, no client, no queueing)."""
    by_hook: dict[str, list[float]] = {"validate": [], "mutate": []}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"durationMs"' in line:
            entry = json.loads(line)
            by_hook.setdefault(entry["webhook"], []).append(entry["durationMs"])
    return {
        f"{hook}_{name}": percentile(values, q)
        for hook, values in by_hook.items()
        if values
        for name, q in (("p50", 0.5), ("p99", 0.99))
    }


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_cache(port: int, ca: str, items: list[tuple[str, str, bytes]]) -> None:
    """Until a review no longer reads the API (the webhook's cache has listed everything)."""
    context = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    validate = next(body for label, path, body in items if path == "/validate")
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            before = api_reads(conn)
            conn.request("POST", "/validate", body=validate,
                         headers={"Content-Type": "application/json"})
            conn.getresponse().read()
            if api_reads(conn) == before:
                return
            time.sleep(0.2)
    finally:
        conn.close()
    raise SystemExit("the webhook's state cache did not go live in 300 s")


def api_reads(conn: http.client.HTTPSConnection) -> float:
    """oam_rollout_state_reads_total{source="api"} from the webhook's /metrics."""
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    for line in text.splitlines():
        if line.startswith("oam_rollout_state_reads_total") and 'source="api"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def server_affinity(opts: argparse.Namespace) -> set[int]:
    """--pin: the CPU the server (master and workers, which inherit it) may run on."""
    return {min(os.sched_getaffinity(0))} if opts.pin else set()


def client_affinity(opts: argparse.Namespace) -> tuple[Any, ...]:
    """--pin: Pool(initializer, initargs) keeping the clients off the server's CPU."""
    if not opts.pin:
        return ()
    rest = os.sched_getaffinity(0) - server_affinity(opts)
    return (os.sched_setaffinity, (0, rest or os.sched_getaffinity(0)))


def run_server(
    name: str, cmd: list[str], port: int, ca: str, opts: argparse.Namespace, log_path: Path
) -> dict[str, Any]:
    """Start one server, measure it, stop it; ours also gets its own review-log figures."""
    with log_path.open("wb") as log:
        pin = server_affinity(opts)
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None,
        )
        try:
            wait_ready(port, ca, "/readyz" if name == "oam-rollout" else "/validate", process)
            result = measure(name, port, ca, process.pid, opts)
        finally:
            stop(process)
    if name == "oam-rollout":
        result["server"] = server_side(log_path)
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


COLUMNS = ("p50 ms", "p99 ms", "val p99", "req/s 1c", "req/s", "p99 load", "RSS MiB",
           "requests", "cpu ms/r", "client")  # fmt: skip


def row(label: str, r: dict[str, Any]) -> str:
    figures = (
        f"{r['p50']:.2f}", f"{r['p99']:.2f}", f"{r['validate_p99']:.2f}", f"{r['seq_rps']:.0f}",
        f"{r['rps']:.0f}", f"{r['loaded_p99']:.2f}", f"{r['rss_mib']:.1f}", str(r["requests"]),
        f"{r['server_cpu_ms']:.3f}", f"{r['client_cpu_ms']:.3f}",
    )  # fmt: skip
    return f"{label:<14}" + "".join(f" {f:>9}" for f in figures)


def report(
    rounds: list[tuple[dict[str, Any], dict[str, Any]]], opts: argparse.Namespace, began: float,
    load_before: tuple[float, float, float],
) -> None:
    source = "direct API reads" if opts.no_state_cache else "watch-fed state cache"
    source += ", render memo off" if opts.no_render_cache else ""
    print(
        f"oam-rollout webhook bench: {opts.workers} worker(s) x {opts.threads} threads, gthread, "
        f"TLS, keep-alive, {source}; corpus of {len(corpus())} reviews; {opts.clients} connections "
        f"in the load phase; {len(rounds)} round(s), ours and the baseline alternating"
        + (f"; each server pinned to CPU {sorted(server_affinity(opts))[0]}, the clients on "
           "the others" if opts.pin else "")
    )
    print(f"{'server':<14}" + "".join(f" {c:>9}" for c in COLUMNS))
    ratios: list[dict[str, float]] = []
    for i, (ours, base) in enumerate(rounds, 1):
        print(row(f"oam-rollout #{i}", ours))
        print(row(f"baseline #{i}", base))
        ratios.append({k: ours[k] / base[k]
                       for k in ("p50", "p99", "rps", "rss_mib", "server_cpu_ms")})
        inside = ours.get("server", {})
        if inside:
            print(
                f"  inside the webhook (durationMs of its review log): validate p50 "
                f"{inside['validate_p50']:.2f} ms, p99 {inside['validate_p99']:.2f} ms; mutate "
                f"p50 {inside['mutate_p50']:.2f} ms, p99 {inside['mutate_p99']:.2f} ms"
            )
        r = ratios[-1]
        print(
            f"  ratios ours/baseline: p50 {r['p50']:.2f}x, p99 {r['p99']:.2f}x, throughput "
            f"{r['rps']:.2f}x, RSS {r['rss_mib']:.2f}x, server CPU per request "
            f"{r['server_cpu_ms']:.2f}x"
        )
    mid = {k: median([r[k] for r in ratios]) for k in ratios[0]}
    ours_p99 = median([o["validate_p99"] for o, _ in rounds])
    ours_rss = median([o["rss_mib"] for o, _ in rounds])
    ours_cpu = median([o["server_cpu_ms"] for o, _ in rounds])
    base_cpu = median([b["server_cpu_ms"] for _, b in rounds])
    print(
        f"medians over {len(rounds)} round(s): validate p99 {ours_p99:.2f} ms; server CPU per "
        f"request {ours_cpu:.3f} ms against {base_cpu:.3f} ms; ratios: throughput "
        f"{mid['rps']:.2f}x, server CPU per request {mid['server_cpu_ms']:.2f}x, "
        f"RSS {mid['rss_mib']:.2f}x"
    )
    print(
        "cpu ms/r: server CPU (gunicorn master + workers) per request over both phases; "
        "client: the bench's own CPU per request, on the same cores"
    )
    checks = [
        ("validate p99 <= 2 ms", ours_p99 <= 2.0, f"{ours_p99:.2f} ms"),
        ("throughput >= 0.75 x baseline", mid["rps"] >= 0.75, f"{mid['rps']:.2f}x"),
        ("server CPU per request <= 1.3 x baseline", mid["server_cpu_ms"] <= 1.3,
         f"{mid['server_cpu_ms']:.2f}x"),
        ("total RSS <= 100 MiB", ours_rss <= 100.0, f"{ours_rss:.1f} MiB"),
    ]  # fmt: skip
    for label, ok, figure in checks:
        print(f"target {label}: {'met' if ok else 'MISSED'} ({figure}, median)")
    print(
        f"bench took {time.monotonic() - began:.1f} s on {os.cpu_count()} CPUs "
        f"(load average before: {' '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; other work on the machine skews "
        "the figures)"
    )


# ---------------------------------------------------------------------------
# the scale phase: the same webhook fed by a real API server that holds thousands of objects


class ClusterApi:
    """JSON requests to the local control plane, one keep-alive connection per thread."""

    def __init__(self, server: str, token: str, context: ssl.SSLContext) -> None:
        host, _, port = server.removeprefix("https://").partition(":")
        self._address = (host, int(port))
        self._token = token
        self._context = context
        self._local = threading.local()

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        for attempt in range(5):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPSConnection(*self._address, context=self._context,
                                                   timeout=60)
                self._local.conn = conn
            try:
                conn.request(method, path, body=json.dumps(body) if body is not None else None,
                             headers={"Authorization": f"Bearer {self._token}",
                                      "Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                time.sleep(0.2 * (attempt + 1))
                continue
            if response.status == 429 or response.status >= 500:
                time.sleep(0.2 * (attempt + 1))
                continue
            if response.status >= 300:
                raise SystemExit(f"{method} {path}: {response.status} {payload[:300]!r}")
            return json.loads(payload)
        raise SystemExit(f"{method} {path}: no answer after 5 attempts")


APPS_PATH = f"/apis/core.oam.dev/v1beta1/namespaces/{NAMESPACE}/applications"
REVISIONS_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/controllerrevisions"
ROLLOUTS_PATH = f"/apis/standard.oam.dev/v1alpha1/namespaces/{NAMESPACE}/rollouts"


def seed_corpus(api: ClusterApi) -> None:
    """The namespace and what the corpus reads live (as the stub API serves it)."""
    api.send("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    revision, rollout = corpus_objects()
    api.send("POST", REVISIONS_PATH, revision)
    status = rollout.pop("status")
    created = api.send("POST", ROLLOUTS_PATH, rollout)
    created["status"] = status
    api.send("PUT", f"{ROLLOUTS_PATH}/{rollout['metadata']['name']}/status", created)


def seed_scale(api: ClusterApi, apps: int, revisions: int, threads: int) -> float:
    """``apps`` Applications, each with one component, its Rollout and ``revisions / apps``
    ControllerRevisions, all controlled by their Application, in the corpus's namespace
    (the worst case: one namespace holds all of them). Returns the seconds it took."""
    from webhook.core.labels import (
        LABEL_APP_NAME,
        LABEL_CONTROLLER_COMPONENT,
        LABEL_REVISION_HASH,
    )

    began = time.monotonic()
    per_app = max(1, revisions // apps)
    names = [f"app-{i:04d}" for i in range(apps)]
    with ThreadPoolExecutor(threads) as pool:
        created = list(pool.map(
            lambda name: api.send("POST", APPS_PATH, _app(name, component=f"{name}-web",
                                                           external_revision=None)), names
        ))

        def owned(app: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
            meta = app["metadata"]
            owner = [{"apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
                      "name": meta["name"], "uid": meta["uid"], "controller": True}]
            component = app["spec"]["components"][0]
            name = component["name"]
            out = [(REVISIONS_PATH, {
                "apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": f"{name}-v{n}", "ownerReferences": owner, "labels": {
                    LABEL_CONTROLLER_COMPONENT: name, LABEL_APP_NAME: meta["name"],
                    LABEL_REVISION_HASH: f"{n:016x}"}},
                "revision": n,
                "data": {"name": name, "type": component["type"],
                         "properties": {**component["properties"], "image": f"example/web:{n}"}},
            }) for n in range(1, per_app + 1)]
            out.append((ROLLOUTS_PATH, {
                "apiVersion": "standard.oam.dev/v1alpha1", "kind": "Rollout",
                "metadata": {"name": name, "ownerReferences": owner,
                             "labels": {LABEL_APP_NAME: meta["name"]}},
                "spec": {"targetRevisionName": f"{name}-v{per_app}"},
            }))
            return out  # fmt: skip

        writes = [w for app in created for w in owned(app)]
        for _ in pool.map(lambda w: api.send("POST", *w), writes):
            pass
    return time.monotonic() - began


def wait_quiet(pids: list[int], seconds: float = 120.0) -> float:
    """Until the control plane is idle again (below 10% of a core over 2 s; the garbage
    collector of kube-controller-manager digests thousands of new owners for a while).
    Returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        before = sum(cpu_seconds(p) for p in pids)
        time.sleep(2.0)
        if sum(cpu_seconds(p) for p in pids) - before < 0.2:
            break
    return time.monotonic() - began


def scale_phase(opts: argparse.Namespace, bundle: Any, work: Path) -> int:
    """The webhook fed by two real API servers, one holding the corpus's objects only, the
    other the scale objects too; runs against each alternate, so both see the same machine."""
    from webhook.localcluster.cluster import LocalCluster

    began = time.monotonic()
    load_before = os.getloadavg()
    clusters = {name: LocalCluster(die_with_parent=True) for name in ("empty", "full")}
    try:
        for cluster in clusters.values():
            cluster.start()
            seed_corpus(ClusterApi(cluster.server, cluster.token, cluster.ssl_context()))
        full = clusters["full"]
        seconds = seed_scale(ClusterApi(full.server, full.token, full.ssl_context()),
                             opts.scale_apps, opts.scale_revisions, opts.seed_threads)
        settled = wait_quiet([p for c in clusters.values() for p in c.pids.values()])
        ca = str(bundle.ca_path)

        def ours(label: str, kubeconfig: Path) -> dict[str, Any]:
            port = free_port()
            cmd = [sys.executable, "-m", "webhook", "webhook", "--tls-cert", str(bundle.cert_path),
                   "--tls-key", str(bundle.key_path), "--kubeconfig", str(kubeconfig),
                   "--port", str(port), "--workers", str(opts.workers),
                   "--threads", str(opts.threads)]  # fmt: skip
            return run_server("oam-rollout", cmd, port, ca, opts, work / f"{label}.log")

        runs: dict[str, list[dict[str, Any]]] = {"empty": [], "full": []}
        for i in range(opts.rounds):
            for label, cluster in clusters.items():
                runs[label].append(ours(f"{label}-{i}", Path(cluster.kubeconfig)))
    finally:
        for cluster in clusters.values():
            cluster.stop()
    print(
        f"oam-rollout webhook scale phase: two local kube-apiservers; the empty one holds the "
        f"corpus's 2 objects, the full one also {opts.scale_apps} Applications' "
        f"{opts.scale_revisions} ControllerRevisions and {opts.scale_apps} Rollouts, all in "
        f"namespace {NAMESPACE!r} (created in {seconds:.0f} s, control planes idle after "
        f"{settled:.0f} s more); {opts.workers} worker(s) x {opts.threads} threads; "
        f"{opts.rounds} round(s), empty and full alternating"
    )
    print(f"{'cache':<14}" + "".join(f" {c:>9}" for c in COLUMNS) + "  worker RSS")
    for i in range(opts.rounds):
        for label in ("empty", "full"):
            r = runs[label][i]
            print(row(f"{label} #{i + 1}", r) + f"  {r['worker_rss_mib']:9.1f}")
    ratios = [f["validate_p99"] / e["validate_p99"]
              for e, f in zip(runs["empty"], runs["full"], strict=True)]
    p99_empty = median([r["validate_p99"] for r in runs["empty"]])
    p99_full = median([r["validate_p99"] for r in runs["full"]])
    rss_full = median([r["rss_mib"] for r in runs["full"]])
    worker_full = median([r["worker_rss_mib"] for r in runs["full"]])
    worker_empty = median([r["worker_rss_mib"] for r in runs["empty"]])
    ratio = median(ratios)
    print(
        f"medians: validate p99 {p99_empty:.2f} ms empty, {p99_full:.2f} ms full (ratio of each "
        f"round: {', '.join(f'{r:.2f}x' for r in ratios)}; median {ratio:.2f}x); RSS full "
        f"{rss_full:.1f} MiB (master + worker), worker {worker_full:.1f} MiB "
        f"({worker_empty:.1f} MiB empty)"
    )
    for label, ok, figure in (
        ("validate p99 full <= 1.3 x empty", ratio <= 1.3, f"{ratio:.2f}x"),
        ("webhook RSS <= 150 MiB", rss_full <= 150.0, f"{rss_full:.1f} MiB master + worker"),
    ):
        print(f"target {label}: {'met' if ok else 'MISSED'} ({figure}, median)")
    print(
        f"scale phase took {time.monotonic() - began:.1f} s (load average before: "
        f"{' '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per connection (cap)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase (cap)")
    parser.add_argument("--clients", type=int, default=4, help="connections in the load phase")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each server (ours and the baseline alternating)")
    parser.add_argument(
        "--no-state-cache", action="store_true", help="run the webhook with direct API reads"
    )
    parser.add_argument(
        "--no-render-cache",
        action="store_true",
        help="run the webhook with its render memo off (every render cold)",
    )
    parser.add_argument(
        "--pin", action="store_true",
        help="run each server on one CPU and the clients on the others (reviews/s per core)",
    )
    parser.add_argument(
        "--scale", action="store_true",
        help="instead: the scale phase, on a local control plane (see --scale-apps)",
    )
    parser.add_argument("--scale-apps", type=int, default=2000)
    parser.add_argument("--scale-revisions", type=int, default=20000)
    parser.add_argument("--seed-threads", type=int, default=8,
                        help="concurrent writes while seeding the scale phase")
    parser.add_argument(
        "--serve-baseline", nargs=3, metavar=("PORT", "CERT", "KEY"), help=argparse.SUPPRESS
    )
    opts = parser.parse_args(argv)
    if opts.serve_baseline:
        port, cert, key = opts.serve_baseline
        serve_baseline(int(port), cert, key, opts.workers, opts.threads)
        return 0

    from webhook.admission.certs import generate

    began = time.monotonic()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="oam-rollout-bench-"))
    bundle = generate(["127.0.0.1"], work / "certs")
    if opts.scale:
        try:
            return scale_phase(opts, bundle, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    stub, api_port = start_stub_api()
    kubeconfig = write_kubeconfig(work / "kubeconfig", api_port)
    ca = str(bundle.ca_path)
    common = ["--workers", str(opts.workers), "--threads", str(opts.threads)]
    tls = ["--tls-cert", str(bundle.cert_path), "--tls-key", str(bundle.key_path)]
    rounds: list[tuple[dict[str, Any], dict[str, Any]]] = []
    try:
        for i in range(opts.rounds):
            results: dict[str, dict[str, Any]] = {}
            for name in ("oam-rollout", "baseline"):
                port = free_port()
                if name == "baseline":
                    cmd = [sys.executable, str(Path(__file__).resolve()), *common,
                           "--serve-baseline", str(port), str(bundle.cert_path),
                           str(bundle.key_path)]  # fmt: skip
                else:
                    cmd = [sys.executable, "-m", "webhook", "webhook", *tls,
                           "--kubeconfig", str(kubeconfig), "--port", str(port), *common]
                    if opts.no_state_cache:
                        cmd.append("--no-state-cache")
                    if opts.no_render_cache:
                        cmd += ["--render-cache", "0"]
                results[name] = run_server(name, cmd, port, ca, opts, work / f"{name}-{i}.log")
            rounds.append((results["oam-rollout"], results["baseline"]))
    finally:
        stub.terminate()
        stub.join(timeout=5)
        shutil.rmtree(work, ignore_errors=True)

    report(rounds, opts, began, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
