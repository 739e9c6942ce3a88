"""The ``oam-rollout render`` subcommand: print what an Application deploys, offline.

Holds argument parsing and YAML printing only: validation and input handling
come from the validate command, objects from webhook.render.renderer. It must not
talk to a cluster and must not print a traceback for bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from webhook.cli.policy import policy_from
from webhook.cli.validate import (
    add_input_arguments,
    check_documents,
    make_renderer,
    read_inputs,
    report,
)

NAME = "render"


def register(sub: Any) -> None:
    p = sub.add_parser(
        NAME,
        help="print the objects an Application deploys (ControllerRevision, Rollout, workload)",
        description=(
            "Validate every Application in FILE, then print as one YAML stream, per "
            "component: its ControllerRevision, its traits' objects (the Rollout) and the "
            "workload of the target revision with the replicas the rollout plan ends at. "
            "With --revisions, upgrades, rollbacks and scaling render against what is live."
        ),
    )
    add_input_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    docs, observed = read_inputs(args)
    renderer = make_renderer(args.templates_dir)
    outcomes, notes = check_documents(docs, observed, renderer, policy_from(args))
    if not report(outcomes, notes, args.filename):
        return 1
    objects: list[dict[str, Any]] = []
    for outcome in outcomes:
        assert outcome.app is not None
        objects += renderer.render_application(outcome.app, observed)
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True))
    return 0
