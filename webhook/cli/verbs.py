"""The ``oam-rollout pause|resume|promote|undo`` subcommands: operate a rollout in flight.

Holds argument parsing and the shell around webhook.core.operations.verb_patch: read the
Application (and, for undo, its component revisions), send the patch that function
decides as one guarded JSON patch of the Application (webhook.kube.client), and say what
changed. The patch passes the admission webhook like any apply and is recorded in the
Application's spec, so ``kubectl get app -o yaml`` shows it. It must not decide what to
change (that is the pure function's) nor write anything but that patch.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from webhook.cli.kubeflags import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    add_cluster_flags,
    connect_from,
    namespace_from,
)

HELP = {
    "pause": ("hold a rollout: the batch in flight finishes, then it waits (paused: true)",
              "Set the rollout trait's paused: true. The batch in flight finishes first; "
              "the rollout then holds until resumed."),
    "resume": ("let a paused rollout go on (removes paused)",
               "Remove the rollout trait's paused, so the rollout goes on where it held."),
    "promote": ("release the next batch (batchPartition + 1; removed at the last batch)",
                "Raise the rollout trait's batchPartition by one; when that would reach the "
                "last batch, remove it so every batch rolls. --full removes it at once."),
    "undo": ("roll back to the previous revision (targetRevision)",
             "Set the rollout trait's targetRevision to the component's revision before the "
             "one it rolls to now (or --to-revision), and remove batchPartition so the "
             "rollback covers every batch. The batches and targetSize stay: the webhook "
             "checks them as for any rollback."),
}


def register(sub: Any) -> None:
    for verb, (short, long) in HELP.items():
        p = sub.add_parser(verb, help=short, description=long, epilog=EXIT_CODES_HELP)
        p.add_argument("app", metavar="APP", help="the Application's name")
        p.add_argument("-c", "--component", metavar="NAME",
                       help="only this component (default: every component with a rollout "
                       "trait)")
        add_cluster_flags(p)
        if verb == "promote":
            p.add_argument("--full", action="store_true",
                           help="remove batchPartition: roll every remaining batch")
        if verb == "undo":
            p.add_argument("--to-revision", metavar="REVISION",
                           help="go back to this ControllerRevision of the component")
        p.add_argument("--dry-run", action="store_true",
                       help="print the JSON patch instead of sending it")
        p.set_defaults(func=run, verb=verb)


def run(args: argparse.Namespace) -> int:
    from webhook.core.errors import ApiError
    from webhook.core.operations import VerbError, verb_patch
    from webhook.core.state import RevisionRecord
    from webhook.kube.client import APPLICATIONS
    from webhook.kube.reader import read_observed_state

    api = connect_from(args)
    namespace = namespace_from(args, api)
    prog = f"oam-rollout {args.verb}"
    path = APPLICATIONS.path(namespace, args.app)
    app = api.get(path)
    if app is None:
        print(f"{prog}: application {args.app!r} not found in namespace {namespace!r}",
              file=sys.stderr)
        return EXIT_NOT_FOUND
    revisions: tuple[RevisionRecord, ...] = ()
    if args.verb == "undo":
        revisions = read_observed_state(api, namespace, args.app, rollouts=False).revisions
    try:
        patch = verb_patch(args.verb, app, args.component, revisions,
                           full=getattr(args, "full", False),
                           to_revision=getattr(args, "to_revision", None))
    except VerbError as exc:
        print(f"{prog}: application {args.app!r}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.dry_run:
        print(json.dumps(patch.operations, indent=2))
        return EXIT_OK
    if patch.operations:
        try:
            api.json_patch(path, patch.operations)
        except ApiError as exc:
            if exc.status == 0 or exc.status >= 500:
                raise  # unreachable or broken: an API error (exit 2)
            print(f"{prog}: application {args.app!r} not changed: {refusal(exc)}",
                  file=sys.stderr)
            return EXIT_FAILED
    for change in patch.changes:
        state = "patched" if change.operations else "unchanged"
        print(f"application.core.oam.dev/{args.app} {state}: component {change.component}: "
              f"{change.summary}")
    return EXIT_OK


STALE = "the Application changed since it was read; run it again"
# How the API server answers a JSON patch that does not apply (a failed ``test``, a
# ``remove`` of what is gone): 422 with this generic message and no details.
PATCH_NOT_APPLICABLE = "the server rejected our request due to an error in our request"


def refusal(exc: Exception) -> str:
    """Why the API refused a verb's patch: a guard that failed (someone changed the
    Application in between) in words, anything else (the webhook's denial) as said."""
    status = getattr(exc, "status", 0)
    return STALE if status == 422 and PATCH_NOT_APPLICABLE in str(exc) else str(exc)
