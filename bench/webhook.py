"""Benchmark of the admission webhook against a do-nothing baseline, both under gunicorn with TLS.

Starts `oam-rollout webhook` and a baseline (a minimal WSGI app that answers every request
with a fixed allowed AdmissionReview) with identical gunicorn settings (gthread, workers,
threads, keep-alive, TLS) on 127.0.0.1, plus a stub Kubernetes API on 127.0.0.1 that serves
the ControllerRevisions and Rollouts the corpus needs. Each server is driven with the same
mixed corpus (valid, invalid, state-checked and mutating reviews) over keep-alive
connections: first one connection for latency, then several for throughput; bounded in
count and time. Prints p50/p99 latency, requests/s, RSS and the ratios ours/baseline.

Usage: .venv/bin/python bench/webhook.py [--requests N] [--seconds S] [--clients C]
It must not be imported by the package or the tests, and never dials beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
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
    from tests.fixtures.webhook import application

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


def stub_lists() -> dict[str, bytes]:
    """The lists `scaled` needs: revision v1 of express-server, a Rollout settled at 5."""
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


def rss_kib(pid: int) -> int:
    """RSS of a process and its children (gunicorn master + workers), KiB."""
    total = 0
    for p in tree_pids(pid):
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
    time.sleep(1.0)  # let the webhook's watch-fed cache list (it falls back to the API till then)
    # Warm-up: every corpus entry a few times (templates, connection pools).
    drive((port, ca, items, len(items) * 3, 10.0, 0))
    started = time.perf_counter()
    server_cpu = cpu_seconds(pid)
    # In a child process too: the driver must not share a GIL with anything measured.
    with multiprocessing.Pool(1) as pool:
        sequential, client_cpu = pool.map(
            drive, [(port, ca, items, opts.requests, opts.seconds, 0)]
        )[0]
    seq_elapsed = time.perf_counter() - started
    jobs = [(port, ca, items, opts.requests, opts.seconds, i) for i in range(opts.clients)]
    started = time.perf_counter()
    with multiprocessing.Pool(opts.clients) as pool:
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


def report(
    results: list[dict[str, Any]], opts: argparse.Namespace, began: float, load_before: float
) -> None:
    ours, base = results
    source = "direct API reads" if opts.no_state_cache else "watch-fed state cache"
    source += ", render memo off" if opts.no_render_cache else ""
    print(
        f"oam-rollout webhook bench: {opts.workers} worker(s) x {opts.threads} threads, gthread, "
        f"TLS, keep-alive, {source}; corpus of {len(corpus())} reviews; {opts.clients} connections "
        "in the load phase"
    )
    columns = (
        "p50 ms",
        "p99 ms",
        "val p99",
        "req/s 1c",
        "req/s",
        "p99 load",
        "RSS MiB",
        "requests",
        "cpu ms/r",
        "client",
    )
    print(f"{'server':<12}" + "".join(f" {c:>9}" for c in columns))
    for r in results:
        figures = (
            f"{r['p50']:.2f}", f"{r['p99']:.2f}", f"{r['validate_p99']:.2f}", f"{r['seq_rps']:.0f}",
            f"{r['rps']:.0f}", f"{r['loaded_p99']:.2f}", f"{r['rss_mib']:.1f}", str(r["requests"]),
            f"{r['server_cpu_ms']:.3f}", f"{r['client_cpu_ms']:.3f}",
        )  # fmt: skip
        print(f"{r['name']:<12}" + "".join(f" {f:>9}" for f in figures))
    inside = ours.get("server", {})
    if inside:
        print(
            "inside the webhook (durationMs of its review log, all phases): "
            f"validate p50 {inside['validate_p50']:.2f} ms, p99 {inside['validate_p99']:.2f} ms; "
            f"mutate p50 {inside['mutate_p50']:.2f} ms, p99 {inside['mutate_p99']:.2f} ms"
        )
    ratio = {k: ours[k] / base[k] for k in ("p50", "p99", "rps", "rss_mib", "server_cpu_ms")}
    print(
        f"ratios ours/baseline: p50 {ratio['p50']:.2f}x, p99 {ratio['p99']:.2f}x, "
        f"throughput {ratio['rps']:.2f}x, RSS {ratio['rss_mib']:.2f}x, "
        f"server CPU per request {ratio['server_cpu_ms']:.2f}x"
    )
    print(
        "cpu ms/r: server CPU (gunicorn master + workers) per request over both phases; "
        "client: the bench's own CPU per request, on the same cores"
    )
    checks = [
        ("validate p99 <= 10 ms", ours["validate_p99"] <= 10.0, f"{ours['validate_p99']:.2f} ms"),
        ("throughput >= 0.6 x baseline", ratio["rps"] >= 0.6, f"{ratio['rps']:.2f}x"),
        ("total RSS <= 100 MiB", ours["rss_mib"] <= 100.0, f"{ours['rss_mib']:.1f} MiB"),
    ]
    for label, ok, figure in checks:
        print(f"target {label}: {'met' if ok else 'MISSED'} ({figure})")
    load_after = os.getloadavg()[0]
    print(
        f"bench took {time.monotonic() - began:.1f} s on {os.cpu_count()} CPUs "
        f"(1-min load average before/after: {load_before:.2f}/{load_after:.2f}; "
        "other work on the machine skews the figures)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per connection (cap)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase (cap)")
    parser.add_argument("--clients", type=int, default=4, help="connections in the load phase")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--no-state-cache", action="store_true", help="run the webhook with direct API reads"
    )
    parser.add_argument(
        "--no-render-cache",
        action="store_true",
        help="run the webhook with its render memo off (every render cold)",
    )
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
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="oam-rollout-bench-"))
    bundle = generate(["127.0.0.1"], work / "certs")
    stub, api_port = start_stub_api()
    kubeconfig = write_kubeconfig(work / "kubeconfig", api_port)
    ca = str(bundle.ca_path)
    results = []
    common = ["--workers", str(opts.workers), "--threads", str(opts.threads)]
    tls = ["--tls-cert", str(bundle.cert_path), "--tls-key", str(bundle.key_path)]
    servers = {
        "oam-rollout": [
            *(sys.executable, "-m", "webhook", "webhook"), *tls,
            "--kubeconfig", str(kubeconfig), "--port",
        ],
        "baseline": [sys.executable, str(Path(__file__).resolve()), *common, "--serve-baseline"],
    }  # fmt: skip
    try:
        for name, argv_head in servers.items():
            port = free_port()
            if name == "baseline":
                cmd = [*argv_head, str(port), str(bundle.cert_path), str(bundle.key_path)]
            else:
                cmd = [*argv_head, str(port), *common]
                if opts.no_state_cache:
                    cmd.append("--no-state-cache")
                if opts.no_render_cache:
                    cmd += ["--render-cache", "0"]
            log = (work / f"{name}.log").open("wb")
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            try:
                wait_ready(port, ca, "/readyz" if name == "oam-rollout" else "/validate", process)
                results.append(measure(name, port, ca, process.pid, opts))
            finally:
                stop(process)
                log.close()
            if name == "oam-rollout":
                results[-1]["server"] = server_side(work / f"{name}.log")
    finally:
        stub.terminate()
        stub.join(timeout=5)
        for path in sorted(work.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        work.rmdir()

    report(results, opts, began, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
