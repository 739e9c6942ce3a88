"""The ``oam-rollout`` command line: parser assembly and the top-level error guard.

Holds only the dispatch: each subcommand lives in ``webhook.cli.<name>`` (the four
operator verbs together in ``webhook.cli.verbs``) and exposes ``register(subparsers)``,
which adds its parsers and sets ``func``. Heavy
imports happen inside each command's ``run`` so ``--help`` stays fast. It must not
hold command logic.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from webhook import __version__
from webhook.core.errors import OamRolloutError

# Order is the order shown by --help.
COMMAND_MODULES = (
    "validate",
    "render",
    "webhook_server",
    "certs",
    "controller",
    "status",
    "verbs",
    "cluster",
    "demo",
)


# The console script kubectl runs as a plugin (`kubectl oam-rollout ...`).
PLUGIN_SCRIPT = "kubectl-oam_rollout"


def build_parser(prog: str = "oam-rollout") -> argparse.ArgumentParser:
    """The full parser; the chart test parses rendered container args with it."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Safe batch rollouts and batch scaling for OAM Application components.",
    )
    parser.add_argument("--version", action="version", version=f"oam-rollout {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"webhook.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Usage lines name the command the way it was typed.
    plugin = os.path.basename(sys.argv[0]) == PLUGIN_SCRIPT
    parser = build_parser("kubectl oam-rollout" if plugin else "oam-rollout")
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OamRolloutError as exc:
        print(f"oam-rollout {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
