"""The ``oam-rollout status`` subcommand: Applications' rollouts, once, live, or until done.

Holds argument parsing, the reads (Applications and their Rollouts) and the loop that
--watch and --wait share (it re-reads on every event of either kind, followed by
webhook.kube.watching.ListWatch; no polling); --wait ends it on a verdict or at --timeout
with the exit codes of webhook.cli.kubeflags. Text comes from webhook.controller.report,
the verdict and the -o json|yaml document from webhook.controller.summary. It must not
write to the cluster.
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from webhook.cli.kubeflags import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_TIMEOUT,
    add_cluster_flags,
    connect_from,
    namespace_from,
)

NAME = "status"
# (Application, its Rollouts by component name) as read from the API.
Snapshot = list[tuple[dict[str, Any], dict[str, dict[str, Any]]]]
EXIT_INTERRUPTED = 130  # as the shell reports SIGINT; the top-level guard's code too
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``5m``, ``1h30m`` (argparse type)."""
    found = _DURATION.fullmatch(text.strip())
    if not text.strip() or found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90s, 5m, 1h)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def register(sub: Any) -> None:
    p = sub.add_parser(
        NAME,
        help="show Applications' rollouts: revision, states, a progress bar per batch; "
        "--wait for CI",
        description="Show an Application's rollouts (every Application of the namespace "
        "without APP, of every namespace with -A). --wait exits on the verdict, for CI "
        "pipelines: a run is judged only once its status describes the current spec. "
        "A run held by batchPartition or paused keeps waiting (promote or resume it).",
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument("app", metavar="APP", nargs="?", help="the Application's name")
    add_cluster_flags(p)
    p.add_argument("-A", "--all-namespaces", action="store_true",
                   help="every namespace (APP, if given, in each)")
    p.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table",
                   help="table (default): the progress report; json or yaml: one document "
                   "per Application (a list without APP or with -A)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-w", "--watch", action="store_true",
                      help="redraw on every change until interrupted")
    mode.add_argument("--wait", action="store_true",
                      help="follow until every rollout is rolloutSucceed (exit 0) or one is "
                      "rolloutFailed (exit 1)")
    p.add_argument("--timeout", type=duration, default=0.0, metavar="D",
                   help="with --wait: give up after D (90s, 5m, 1h; exit 3); default 0, no "
                   "limit")
    p.set_defaults(func=run)


def read_app(api: Any, namespace: str, name: str) -> tuple[dict[str, Any],
                                                           dict[str, dict[str, Any]]] | None:
    """One Application and its components' Rollouts; None when it does not exist."""
    from webhook.kube.client import APPLICATIONS, ROLLOUTS

    app = api.get(APPLICATIONS.path(namespace, name))
    if app is None:
        return None
    rollouts = {}
    for comp in (app.get("spec") or {}).get("components") or []:
        cname = comp.get("name") if isinstance(comp, dict) else None
        if isinstance(cname, str):
            live = api.get(ROLLOUTS.path(namespace, cname))
            if live is not None:
                rollouts[cname] = live
    return app, rollouts


def read_apps(api: Any, namespace: str | None) -> Snapshot:
    """Every Application of ``namespace`` (None: all) with its Rollouts, by namespace and name."""
    from webhook.kube.client import APPLICATIONS, ROLLOUTS

    rollouts: dict[tuple[str, str], dict[str, Any]] = {}
    for ro in api.list(ROLLOUTS.path(namespace)):
        meta = ro.get("metadata") or {}
        rollouts[(str(meta.get("namespace")), str(meta.get("name")))] = ro
    out: Snapshot = []
    apps = api.list(APPLICATIONS.path(namespace))
    for app in sorted(apps, key=lambda a: (a["metadata"].get("namespace", ""),
                                           a["metadata"].get("name", ""))):
        ns = str(app["metadata"].get("namespace"))
        names = [c.get("name") for c in (app.get("spec") or {}).get("components") or []
                 if isinstance(c, dict)]
        out.append((app, {str(n): rollouts[(ns, str(n))] for n in names
                          if (ns, str(n)) in rollouts}))
    return out


def snapshot(api: Any, namespace: str, name: str) -> str | None:
    """The table for one Application; None when it does not exist."""
    from webhook.controller.report import format_status

    found = read_app(api, namespace, name)
    return None if found is None else format_status(*found)


def run(args: argparse.Namespace) -> int:
    if args.timeout and not args.wait:
        print("oam-rollout status: --timeout goes with --wait", file=sys.stderr)
        return EXIT_ERROR
    api = connect_from(args)
    namespace = None if args.all_namespaces else namespace_from(args, api)

    def read() -> Snapshot | None:
        if args.app and namespace is not None:
            found = read_app(api, namespace, args.app)
            return None if found is None else [found]
        apps = read_apps(api, namespace)
        if args.app:
            apps = [a for a in apps if a[0]["metadata"].get("name") == args.app]
            return apps or None
        return apps

    first = read()
    if first is None:
        where = "any namespace" if namespace is None else f"namespace {namespace!r}"
        print(f"oam-rollout status: application {args.app!r} not found in {where}",
              file=sys.stderr)
        return EXIT_NOT_FOUND
    single = bool(args.app) and namespace is not None
    if not (args.watch or args.wait):
        print(render(first, args.output, single))
        return EXIT_OK
    return follow(api, namespace, read, first, args, single)


def render(apps: Snapshot, output: str, single: bool) -> str:
    from webhook.controller.report import format_status
    from webhook.controller.summary import application_document

    if output == "table":
        if not apps:
            return "no Applications"
        return "\n\n".join(format_status(app, rollouts) for app, rollouts in apps)
    docs = [application_document(app, rollouts) for app, rollouts in apps]
    doc: Any = docs[0] if single else {"items": docs}
    if output == "json":
        return json.dumps(doc, indent=2)
    import yaml

    return yaml.safe_dump(doc, sort_keys=False).rstrip("\n")


def verdict(apps: Snapshot) -> str:
    from webhook.controller.summary import application_verdict, worst

    return worst([application_verdict(app, rollouts) for app, rollouts in apps])


def follow(api: Any, namespace: str | None, read: Callable[[], Snapshot | None],
           first: Snapshot, args: argparse.Namespace, single: bool) -> int:
    """--watch: redraw until interrupted. --wait: until the verdict, or --timeout (exit 3)."""
    from webhook.controller.summary import FAILED, SUCCEEDED
    from webhook.kube.client import APPLICATIONS, ROLLOUTS
    from webhook.kube.watching import EachObject, ListWatch, WatchPolicy

    changes: queue.Queue[str] = queue.Queue()
    stop = threading.Event()

    def changed(kind: str, obj: dict[str, Any]) -> None:
        # Any change of either kind re-reads; a listing too (a break may have hidden one).
        changes.put(kind)

    policy = WatchPolicy(watch_seconds=60, relist_after_watch=True, backoff_first=1.0,
                         backoff_max=1.0)
    for path in (APPLICATIONS.path(namespace), ROLLOUTS.path(namespace)):
        ListWatch(f"status {path}", api, path, EachObject(changed), policy=policy,
                  stop=stop).start()
    table = args.output == "table"
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() and args.watch else ""
    deadline = time.monotonic() + args.timeout if args.wait and args.timeout > 0 else None
    shown = None
    apps: Snapshot | None = first
    try:
        while True:
            text = (render(apps, args.output, single) if apps is not None
                    else f"application {args.app!r} is gone")
            outcome = verdict(apps) if args.wait and apps is not None else None
            if args.wait and apps is None:
                print(text, file=sys.stderr)
                return EXIT_NOT_FOUND
            # --wait -o json|yaml prints one document, the last; tables show each change.
            if text != shown and (table or args.watch or outcome in (SUCCEEDED, FAILED)):
                print(clear + text + ("" if clear or not table else "\n---"), flush=True)
                shown = text
            if outcome == SUCCEEDED:
                return EXIT_OK
            if outcome == FAILED:
                return EXIT_FAILED
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return timed_out(args, text, table)
            try:
                changes.get(timeout=remaining)
            except queue.Empty:
                return timed_out(args, text, table)
            while not changes.empty():  # one read for a burst of events
                changes.get_nowait()
            apps = read()
    except KeyboardInterrupt:
        return EXIT_OK if args.watch else EXIT_INTERRUPTED
    finally:
        stop.set()


def timed_out(args: argparse.Namespace, text: str, table: bool) -> int:
    if not table:
        print(text, flush=True)  # the state it gave up in, for the pipeline's log
    print(f"oam-rollout status: timed out after {args.timeout:g}s", file=sys.stderr)
    return EXIT_TIMEOUT
