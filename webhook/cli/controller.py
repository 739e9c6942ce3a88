"""The ``oam-rollout controller`` subcommand: run the companion controller until signalled.

Holds argument parsing, logging setup and signal handling. It must not hold controller
logic (webhook.controller.*) and must exit cleanly, releasing its Lease, on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from webhook.controller.logs import FORMATS as LOG_FORMATS
from webhook.controller.logs import LEVELS as LOG_LEVELS
from webhook.core.scope import UNKNOWN_DENY, UNKNOWN_TYPES_MODES, Scope, Shard, shard_errors
from webhook.core.selectors import SelectorError, parse_selector

NAME = "controller"


def register(sub: Any) -> None:
    p = sub.add_parser(
        NAME,
        help="run the controller: revisions, workloads and rollout batches",
        description=(
            "Watch Applications, Rollouts, ControllerRevisions, Deployments and CloneSets; "
            "create component revisions and Rollouts, and roll workloads batch by batch."
        ),
    )
    p.add_argument("--kubeconfig", metavar="FILE",
                   help="kubeconfig (default: in-cluster, else $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", metavar="NAME",
                   help="kubeconfig context (default: its current-context; exec and "
                   "auth-provider users work as with kubectl)")
    p.add_argument("--namespace", metavar="NS",
                   help="only act in this namespace (default: all namespaces; the kubeconfig "
                   "context's namespace is not used)")
    p.add_argument("--namespace-selector", metavar="SELECTOR", default="",
                   help="only act on Applications in namespaces whose labels match this "
                   "label selector (as kubectl -l: 'rollout.oam.dev/enabled=true', "
                   "'team in (a,b),!legacy'); a namespace labelled later is picked up, one "
                   "that loses the label is left alone (nothing deleted); with --namespace "
                   "both must hold (default: every namespace)")
    p.add_argument("--leader-elect", action="store_true",
                   help="act only while holding the coordination.k8s.io/v1 Lease")
    p.add_argument("--lease-namespace", metavar="NS", default=None,
                   help="namespace of the Lease (default: --namespace, else default)")
    p.add_argument("--lease-name", default="oam-rollout-controller", metavar="NAME")
    p.add_argument("--identity", metavar="ID",
                   help="this replica's name in the Lease, on its Events and writes (default: "
                   "HOSTNAME_PID); a restart "
                   "with the same identity takes the lease back at once")
    p.add_argument("--lease-duration", type=float, default=15.0, metavar="SECONDS",
                   help="how long a silent leader keeps the lease (default 15)")
    p.add_argument("--renew-deadline", type=float, default=10.0, metavar="SECONDS",
                   help="a leader that cannot renew for this long stops (default 10)")
    p.add_argument("--retry-period", type=float, default=2.0, metavar="SECONDS",
                   help="how often the lease is renewed or tried (default 2)")
    p.add_argument("--workers", type=int, default=4, metavar="N",
                   help="reconciles run in parallel (default 4)")
    p.add_argument("--resync", type=int, default=300, metavar="SECONDS",
                   help="re-list everything this often as a safety net (default 300)")
    p.add_argument("--progress-deadline", type=int, default=600, metavar="SECONDS",
                   help="a batch whose pods are not Ready this long after it began fails "
                   "the rollout (rolloutFailed, no rollback); 0 waits forever (default 600)")
    p.add_argument("--revision-history-limit", type=int, default=10, metavar="N",
                   help="ControllerRevisions kept per component; older ones are deleted, never "
                   "one in use (the target, the source, a targetRevision) (default 10)")
    p.add_argument("--health-bind", default="127.0.0.1", metavar="ADDR",
                   help="address of /healthz, /readyz and /metrics (default 127.0.0.1; "
                   "0.0.0.0 in a pod)")
    p.add_argument("--health-port", type=int, default=8080, metavar="PORT",
                   help="port of /healthz, /readyz and /metrics (default 8080; 0 disables)")
    p.add_argument("--impersonate", action=argparse.BooleanOptionalAction, default=False,
                   help="write each Application's workloads, Services and Rollouts as the "
                   "user who last wrote its spec (recorded by the webhook), so that user's RBAC "
                   "decides; a refused write fails the rollout loudly (default: off, the "
                   "controller's own rights; see docs/security.md)")
    p.add_argument("--templates-dir", metavar="DIR", type=Path,
                   help="extra component and trait templates")
    p.add_argument("--shards", type=int, default=1, metavar="M",
                   help="run as one of M controllers, each acting on its own Applications: "
                   "a stable hash of namespace/name, or the label rollout.oam.dev/shard=N "
                   "on the Application; each shard elects its leader on the Lease "
                   "<lease-name>-shard-<N> and its writes name shard-<N>/<identity> "
                   "(default 1: every Application, the Lease <lease-name>)")
    p.add_argument("--shard-id", type=int, default=0, metavar="N",
                   help="which of the --shards this controller is, 0 to M-1 (default 0)")
    p.add_argument("--unknown-types", choices=UNKNOWN_TYPES_MODES, default=UNKNOWN_DENY,
                   help="Applications using a component or trait type no template knows: "
                   "act on them (deny, the default: their status reports the error), or "
                   "ignore them entirely, for another controller beside this one "
                   "(KubeVela's); give the webhook the same setting")
    p.add_argument("--log-format", choices=LOG_FORMATS, default=LOG_FORMATS[0],
                   help="json: one JSON object a line, with namespace, app and component on "
                   "every line about one (the default); text: one plain line each")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                   help="the controller's own lines from this level (default info); the "
                   "libraries' from warning")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log every reconcile (same as --log-level debug)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from webhook.controller.cache import Caches
    from webhook.controller.health import HealthServer
    from webhook.controller.lease import LeaderElector, default_identity
    from webhook.controller.logs import configure as configure_logging
    from webhook.controller.loop import ControllerLoop
    from webhook.controller.metrics import ControllerMetrics
    from webhook.controller.namespaces import NamespaceIndex
    from webhook.controller.reconcile import Reconciler
    from webhook.kube.client import connect, writer_manager
    from webhook.render.renderer import Renderer

    if not 0 < args.renew_deadline < args.lease_duration:
        print("oam-rollout controller: --renew-deadline must be > 0 and below "
              "--lease-duration", file=sys.stderr)
        return 2
    if args.workers < 1 or args.resync < 5:
        print("oam-rollout controller: --workers must be >= 1 and --resync >= 5",
              file=sys.stderr)
        return 2
    if args.progress_deadline < 0:
        print("oam-rollout controller: --progress-deadline must be >= 0 (0 waits forever)",
              file=sys.stderr)
        return 2
    if args.revision_history_limit < 0:
        print("oam-rollout controller: --revision-history-limit must be >= 0", file=sys.stderr)
        return 2
    for problem in shard_errors(args.shard_id, args.shards):
        print(f"oam-rollout controller: {problem}", file=sys.stderr)
        return 2
    if not 0 <= args.health_port <= 65535:
        print("oam-rollout controller: --health-port must be between 0 (off) and 65535",
              file=sys.stderr)
        return 2
    try:
        namespace_selector = parse_selector(args.namespace_selector)
    except SelectorError as exc:
        print(f"oam-rollout controller: --namespace-selector: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_format, "debug" if args.verbose else args.log_level)
    api = connect(args.kubeconfig, context=args.context)
    shard = Shard(args.shard_id, args.shards)
    identity = shard.identity(args.identity or default_identity())
    api.manager = writer_manager(identity)  # plain writes name this replica in managedFields
    renderer = Renderer(args.templates_dir)
    # Which Applications are ours: this shard's, less those of types no template knows
    # when they are left to another controller.
    # --namespace-selector: only in the namespaces it matches, as the loop's namespace
    # watch keeps them in the index.
    scope = Scope(shard, args.unknown_types, renderer.component_types, renderer.trait_types,
                  None if namespace_selector.everything else namespace_selector,
                  NamespaceIndex())
    elector = None
    if args.leader_elect:
        elector = LeaderElector(
            api, args.lease_namespace or args.namespace or "default",
            shard.lease_name(args.lease_name),
            identity=identity, lease_seconds=args.lease_duration,
            renew_seconds=args.renew_deadline, retry_seconds=args.retry_period)
    metrics = ControllerMetrics()
    reconciler = Reconciler(api, renderer, progress_deadline=args.progress_deadline,
                            metrics=metrics, identity=identity, impersonate=args.impersonate,
                            revision_history_limit=args.revision_history_limit, scope=scope,
                            caches=Caches())  # reads served by the watches' caches
    loop = ControllerLoop(api, reconciler, namespace=args.namespace, workers=args.workers,
                          resync_seconds=args.resync, elector=elector, metrics=metrics,
                          scope=scope)
    health = None
    if args.health_port:
        try:
            health = HealthServer(args.health_bind, args.health_port, loop.health_facts,
                                  metrics.exposition)
        except OSError as exc:
            print(f"oam-rollout controller: cannot serve health on "
                  f"{args.health_bind}:{args.health_port}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
        health.start()
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stopped.set()
        loop.halt()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if loop.start():
        logging.getLogger("oam_rollout.controller").info("oam-rollout controller: running")
        stopped.wait()
    logging.getLogger("oam_rollout.controller").info("stopping")
    loop.shutdown()
    if health is not None:
        health.stop()
    return 0
