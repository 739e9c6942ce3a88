"""The ``oam-rollout`` command line: parser assembly and the top-level error guard.

Holds only the dispatch: each subcommand lives in ``webhook.cli.<name>`` and
exposes ``register(subparsers)``, which adds its parser and sets ``func``. Heavy
imports happen inside each command's ``run`` so ``--help`` stays fast. It must not
hold command logic.
"""

from __future__ import annotations

import argparse
import importlib
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
    "cluster",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser; the chart test parses rendered container args with it."""
    parser = argparse.ArgumentParser(
        prog="oam-rollout",
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
    parser = build_parser()
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
