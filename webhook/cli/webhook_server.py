"""The ``oam-rollout webhook`` subcommand: the admission server under gunicorn (gthread, TLS).

Holds argument parsing, the up-front checks (TLS pair, templates directory, kubeconfig)
that turn setup mistakes into one-line errors, and the gunicorn application whose
workers each build the Flask app (webhook.admission.server) with their own API reader, watch-fed
state cache and renderer. With ``--self-managed-certs`` the master also runs
webhook.admission.selfmanaged (its CA and serving pair in a Secret, the caBundle in the
configurations), which writes the pair the workers serve. The master process stays
light: it never imports Flask or the renderer. It must not hold admission logic.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from webhook.cli.policy import add_policy_arguments, policy_from
from webhook.core.scope import UNKNOWN_DENY, UNKNOWN_TYPES_MODES

NAME = "webhook"

# Longer than the apiserver's idle connection reuse (Go's default idle timeout is 90 s;
# the apiserver closes idle webhook connections sooner), so we are not the side that
# closes a connection the apiserver is about to reuse.
KEEPALIVE_SECONDS = 75


def register(sub: Any) -> None:
    p = sub.add_parser(
        NAME,
        help="serve the mutating and validating admission webhook over TLS",
        description=(
            "Serve POST /validate and POST /mutate (AdmissionReview v1 and v1beta1), "
            "GET /healthz, /readyz and /metrics over TLS with gunicorn. The certificate "
            "files are re-read when they change."
        ),
    )
    p.add_argument("--tls-cert", type=Path, help="serving certificate (PEM)")
    p.add_argument("--tls-key", type=Path, help="serving key (PEM)")
    certs = p.add_argument_group(
        "self-managed TLS (instead of --tls-cert/--tls-key)",
        "The webhook keeps a CA and a serving certificate in a Secret, puts the CA bundle "
        "into its webhook configurations and rotates both before they expire.",
    )
    certs.add_argument(
        "--self-managed-certs", action="store_true",
        help="manage the CA, the serving certificate and the configurations' caBundle",
    )  # fmt: skip
    certs.add_argument("--certs-secret", metavar="NAME",
                       help="the Secret holding them (created if absent)")  # fmt: skip
    certs.add_argument(
        "--certs-namespace", metavar="NS", default=os.environ.get("POD_NAMESPACE", ""),
        help="the Secret's namespace (default: $POD_NAMESPACE)",
    )  # fmt: skip
    certs.add_argument(
        "--webhook-configurations", metavar="KIND/NAME,...",
        help="configurations whose webhooks get the caBundle, e.g. "
        "mutating/oam-rollout-mutate,validating/oam-rollout-validate",
    )  # fmt: skip
    certs.add_argument(
        "--cert-hosts", metavar="HOST,...",
        help="names and IPs the serving certificate is for, e.g. NAME.NS.svc,127.0.0.1",
    )  # fmt: skip
    certs.add_argument("--cert-validity", metavar="D", default="8760h",
                       help="lifetime of each CA and serving certificate (default 8760h)")
    certs.add_argument("--rotate-before", metavar="D", default="720h",
                       help="replace them this long before they expire (default 720h)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9443, help="TLS port (default 9443)")
    p.add_argument("--kubeconfig", help="kubeconfig (default: in-cluster, then ~/.kube/config)")
    p.add_argument("--workers", type=_positive, default=1, help="worker processes (default 1)")
    p.add_argument("--threads", type=_positive, default=4, help="threads per worker (default 4)")
    p.add_argument("--templates-dir", type=Path, help="templates (default: the installed ones)")
    p.add_argument(
        "--render-cache",
        type=_not_negative,
        default=256,
        metavar="N",
        help="rendered results each worker remembers (default 256; 0 turns the memo off)",
    )
    p.add_argument(
        "--no-record-requester",
        dest="record_requester",
        action="store_false",
        help="do not record who wrote each Application's spec (the rollout.oam.dev/requester "
        "annotation the controller's --impersonate acts as); a value a user supplies is "
        "removed either way",
    )
    add_policy_arguments(p)
    p.add_argument(
        "--unknown-types",
        choices=UNKNOWN_TYPES_MODES,
        default=UNKNOWN_DENY,
        help="Applications using a component or trait type no template knows: deny them "
        "(default), or ignore them: admitted untouched, with a warning, for another controller "
        "beside this one (KubeVela's); give the controller the same setting",
    )
    p.add_argument(
        "--no-state-cache",
        action="store_true",
        help="read revisions and Rollouts from the API on every review instead of from watches",
    )
    p.set_defaults(func=run)


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    return parse


_positive = _at_least(1)
_not_negative = _at_least(0)


def check_setup(args: argparse.Namespace) -> None:
    """Fail early, with one line, on what would otherwise kill every worker at boot."""
    from webhook.admission.tls import build_context
    from webhook.core.errors import InputError
    from webhook.kube.reader import load_credentials

    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port}: not a TCP port")
    if args.self_managed_certs:
        if args.tls_cert or args.tls_key:
            raise InputError("--tls-cert/--tls-key and --self-managed-certs exclude each other")
        self_managed_settings(args)
    else:
        for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
            if path is None:
                raise InputError(f"{flag} is required (or use --self-managed-certs)")
            if not path.is_file():
                raise InputError(f"{flag} {path}: no such file")
        try:
            build_context(args.tls_cert, args.tls_key)
        except (OSError, ValueError) as exc:
            raise InputError(f"--tls-cert/--tls-key: the pair does not load: {exc}") from exc
    if args.templates_dir is not None and not args.templates_dir.is_dir():
        raise InputError(f"--templates-dir {args.templates_dir}: no such directory")
    load_credentials(args.kubeconfig)  # raises ApiConfigError with the reason


def self_managed_settings(args: argparse.Namespace) -> tuple[Any, Any]:
    """(certplan.Policy, the configuration refs) from the self-managed flags; InputError
    naming the flag that is missing or wrong."""
    from webhook.admission.certplan import Policy, parse_configurations, parse_duration
    from webhook.admission.certs import parse_hosts
    from webhook.core.errors import InputError

    for flag, value in (("--certs-secret", args.certs_secret),
                        ("--webhook-configurations", args.webhook_configurations),
                        ("--cert-hosts", args.cert_hosts)):  # fmt: skip
        if not value:
            raise InputError(f"--self-managed-certs needs {flag}")
    if not args.certs_namespace:
        raise InputError("--self-managed-certs needs --certs-namespace (or $POD_NAMESPACE)")
    hosts = parse_hosts(args.cert_hosts)
    policy = Policy(
        validity=parse_duration(args.cert_validity, "--cert-validity"),
        rotate_before=parse_duration(args.rotate_before, "--rotate-before"),
        hosts=tuple(hosts),
    )
    return policy, parse_configurations(args.webhook_configurations)


def run(args: argparse.Namespace) -> int:
    check_setup(args)
    # Prometheus picks its storage when first imported: set the directory before that,
    # in the master, so every worker inherits it.
    metrics_dir = tempfile.mkdtemp(prefix="oam-rollout-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    master = os.getpid()
    try:
        return serve(args)
    finally:
        # Workers are forked inside serve() and unwind through here when they exit:
        # only the master may remove the directory the other workers still write to.
        if os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(args: argparse.Namespace) -> int:
    if args.self_managed_certs:
        return serve_self_managed(args)
    return serve_pair(args)


def serve_self_managed(args: argparse.Namespace) -> int:
    """Serve the pair webhook.admission.selfmanaged keeps in a private directory."""
    import logging

    from webhook.admission.selfmanaged import SelfManagedCerts
    from webhook.core.logformat import JsonFormatter
    from webhook.kube.client import connect

    log = logging.getLogger("oam_rollout.certs")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    policy, configurations = self_managed_settings(args)
    out_dir = Path(tempfile.mkdtemp(prefix="oam-rollout-tls-"))
    master = os.getpid()
    manager = SelfManagedCerts(
        connect(args.kubeconfig, pool_size=4), args.certs_namespace, args.certs_secret,
        configurations, policy, out_dir,
        labels={"app.kubernetes.io/part-of": "oam-rollout",
                "app.kubernetes.io/component": "webhook"},
    )  # fmt: skip
    try:
        manager.start_up()
        manager.start()
        args.tls_cert, args.tls_key = manager.cert_path, manager.key_path
        return serve_pair(args)
    finally:
        # Workers unwind through here too: only the master owns the thread and the files.
        if os.getpid() == master:
            manager.stop()
            shutil.rmtree(out_dir, ignore_errors=True)


def serve_pair(args: argparse.Namespace) -> int:
    """gunicorn over the TLS pair in --tls-cert/--tls-key, reloaded when the files change."""
    from gunicorn.app.base import BaseApplication

    from webhook.admission.tls import TlsReloader

    reloader_holder: dict[str, TlsReloader] = {}

    def reloader() -> TlsReloader:
        # One per worker process, created after the fork (gunicorn calls hooks in workers).
        pid_key = str(os.getpid())
        if pid_key not in reloader_holder:
            reloader_holder.clear()
            reloader_holder[pid_key] = TlsReloader(args.tls_cert, args.tls_key)
        return reloader_holder[pid_key]

    def ssl_context(_config: Any, _default_factory: Any) -> Any:
        return reloader().context()

    def child_exit(_server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    def load_app() -> Any:
        from webhook.admission.server import Metrics, create_app
        from webhook.admission.statecache import StateCache
        from webhook.kube.reader import load_api_reader, read_observed_state
        from webhook.render.renderer import Renderer

        renderer = Renderer(args.templates_dir, cache_size=args.render_cache)
        api = load_api_reader(args.kubeconfig)
        tls = reloader()
        tls.context()  # load now, so /readyz tells the truth before the first handshake

        def read_state(namespace: str, name: str, *, rollouts: bool = True) -> Any:
            return read_observed_state(api, namespace, name, rollouts=rollouts)

        metrics = Metrics()
        reader = read_state
        if not args.no_state_cache:
            # Per worker, after the fork: threads and connections do not survive one.
            cache = StateCache(api)
            cache.start()
            reader = metrics.layered_reader(cache.read, read_state)
        return create_app(
            reader, renderer, metrics=metrics, ready=lambda: {"templates": True, "tls": tls.loaded},
            record_requester=args.record_requester,
            policy=replace(policy_from(args), unknown_types=args.unknown_types),
        )

    options = {
        "bind": [bind_address(args.bind, args.port)],
        "workers": args.workers,
        "threads": args.threads,
        "worker_class": "gthread",
        "keepalive": KEEPALIVE_SECONDS,
        "timeout": 30,
        "graceful_timeout": 10,
        "certfile": str(args.tls_cert),
        "keyfile": str(args.tls_key),
        "ssl_context": ssl_context,
        "child_exit": child_exit,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "oam-rollout-webhook",
        "preload_app": False,
        # No control socket: it would live in $HOME, shared by every gunicorn on the host.
        "control_socket_disable": True,
    }
    if os.path.isdir("/dev/shm"):
        # Worker heartbeats in memory, also where the root filesystem is read-only.
        options["worker_tmp_dir"] = "/dev/shm"

    class WebhookServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return load_app()

    print(
        f"oam-rollout webhook: serving https://{bind_address(args.bind, args.port)} "
        f"({args.workers} worker(s) x {args.threads} threads)",
        file=sys.stderr,
    )
    WebhookServer().run()
    return 0
