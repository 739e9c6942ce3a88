"""The ``oam-rollout status`` subcommand: an Application's rollouts, once or live.

Holds argument parsing, the reads (the Application and its Rollouts) and the --watch
loop (redraws on every event of either, followed by webhook.kube.watching.ListWatch; no
polling). Formatting lives in webhook.controller.report. It must not write to the
cluster.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
from typing import Any

NAME = "status"


def register(sub: Any) -> None:
    p = sub.add_parser(
        NAME,
        help="show an Application's rollouts: revision, states, a progress bar per batch",
    )
    p.add_argument("app", metavar="APP", help="the Application's name")
    p.add_argument("-n", "--namespace", default="default", metavar="NS")
    p.add_argument("--kubeconfig", metavar="FILE")
    p.add_argument("-w", "--watch", action="store_true",
                   help="redraw on every change until interrupted")
    p.set_defaults(func=run)


def snapshot(api: Any, namespace: str, name: str) -> str | None:
    from webhook.controller.report import format_status
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
    return format_status(app, rollouts)


def run(args: argparse.Namespace) -> int:
    from webhook.kube.client import connect

    api = connect(args.kubeconfig)
    text = snapshot(api, args.namespace, args.app)
    if text is None:
        print(f"oam-rollout status: application {args.app!r} not found in namespace "
              f"{args.namespace!r}", file=sys.stderr)
        return 1
    if not args.watch:
        print(text)
        return 0
    return watch(api, args.namespace, args.app, text)


def watch(api: Any, namespace: str, name: str, first: str) -> int:
    from webhook.kube.client import APPLICATIONS, ROLLOUTS
    from webhook.kube.watching import EachObject, ListWatch, WatchPolicy

    changes: queue.Queue[str] = queue.Queue()
    stop = threading.Event()

    def changed(kind: str, obj: dict[str, Any]) -> None:
        # Any change of either kind redraws; a listing too (a break may have hidden one).
        changes.put(kind)

    policy = WatchPolicy(watch_seconds=60, relist_after_watch=True, backoff_first=1.0,
                         backoff_max=1.0)
    for path in (APPLICATIONS.path(namespace), ROLLOUTS.path(namespace)):
        ListWatch(f"status {path}", api, path, EachObject(changed), policy=policy,
                  stop=stop).start()
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
    shown = None
    text: str | None = first
    try:
        while True:
            if text is None:
                text = f"application {name!r} is gone"
            if text != shown:
                print(clear + text + ("" if clear else "\n---"), flush=True)
                shown = text
            changes.get()
            while not changes.empty():  # one redraw for a burst of events
                changes.get_nowait()
            text = snapshot(api, namespace, name)
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()
