"""The ``oam-rollout validate`` subcommand, and the input handling `render` shares.

Holds argument parsing, reading files or stdin, and printing: warnings and one error
per line on stderr with its field path, "valid" on stdout. Each Application is judged
by webhook.admission.judge.judge, the validating webhook's own pipeline, so both give
the same errors and warnings. It must not hold validation rules, and must never let a
user see a traceback (unreadable or non-YAML input exits 2 with one line).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webhook.cli.policy import add_policy_arguments, policy_from
from webhook.core.documents import load_documents
from webhook.core.errors import FieldError, InputError
from webhook.core.labels import APP_KIND
from webhook.core.model import Application
from webhook.core.objects import observed_state_from_documents
from webhook.core.properties import DEFAULT_POLICY, ComponentPolicy
from webhook.core.state import EMPTY, ObservedState

if TYPE_CHECKING:
    from webhook.render.renderer import Renderer

NAME = "validate"


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """The options validate and render share."""
    p.add_argument(
        "-f",
        "--filename",
        required=True,
        metavar="FILE",
        help="Application YAML or JSON (several documents allowed); - reads stdin",
    )
    p.add_argument(
        "--revisions",
        "--observed",
        dest="revisions",
        metavar="FILE",
        help=(
            "what is live, as `kubectl get controllerrevision,rollout -o yaml` prints it: "
            "ControllerRevisions (existing revisions) and optionally Rollouts (current "
            "revision and size, for scale and rollback checks); - reads stdin. "
            "Without it the change is judged as a first deploy"
        ),
    )
    p.add_argument(
        "--templates-dir",
        metavar="DIR",
        type=Path,
        help="extra component and trait templates (DIR/components/*.yaml.j2, "
        "DIR/traits/*.yaml.j2); they override built-in ones of the same name",
    )
    add_policy_arguments(p)


def register(sub: Any) -> None:
    p = sub.add_parser(
        NAME,
        help="check Application files against the rollout rules",
        description=(
            "Check every Application in FILE: shape, names, component and trait types, "
            "rollout trait properties, revisions and batch sums. Prints 'valid' and exits 0, "
            "or prints one error per line on stderr and exits 1; exits 2 when FILE cannot "
            "be read or is not YAML."
        ),
    )
    add_input_arguments(p)
    p.set_defaults(func=run)


def make_renderer(templates_dir: Path | None) -> Renderer:
    # Imported here so `oam-rollout --help` does not compile templates or load Jinja2.
    from webhook.render.renderer import Renderer

    return Renderer(templates_dir)


def read_text(source: str) -> str:
    """The text of a file, or of stdin for ``-``; InputError with one line otherwise."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"cannot read {source}: not UTF-8 text") from None


def read_documents(source: str) -> list[object]:
    text = read_text(source)
    try:
        return load_documents(text)
    except InputError as exc:
        raise InputError(f"{'stdin' if source == '-' else source}: {exc}") from None


def read_observed(source: str | None) -> ObservedState:
    if source is None:
        return EMPTY
    return observed_state_from_documents(read_documents(source))


@dataclass(frozen=True)
class Outcome:
    """The verdict on one Application document."""

    label: str
    app: Application | None
    errors: tuple[FieldError | str, ...]
    warnings: tuple[str, ...]


def check_documents(
    docs: list[object],
    observed: ObservedState,
    renderer: Renderer,
    policy: ComponentPolicy = DEFAULT_POLICY,
) -> tuple[list[Outcome], list[str]]:
    """Judge every Application among ``docs``; also return notes on skipped documents.

    Each one is judged as the validating webhook judges it (webhook.admission.judge),
    against ``observed`` as what is live.
    """
    # Imported here so `oam-rollout --help` stays fast.
    from webhook.admission.judge import judge

    outcomes: list[Outcome] = []
    notes: list[str] = []
    for n, doc in enumerate(docs, start=1):
        if not isinstance(doc, Mapping):
            outcomes.append(
                Outcome(f"document {n}", None, (f"document {n} is not an {APP_KIND} object",), ())
            )
            continue
        kind = doc.get("kind")
        if kind is not None and kind != APP_KIND:
            notes.append(f"skipping document {n}: kind {kind!r} is not {APP_KIND}")
            continue
        metadata = doc.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        label = name if isinstance(name, str) and name else f"document {n}"
        verdict = judge(doc, observed, renderer, policy=policy)
        outcomes.append(
            Outcome(label, verdict.app, tuple(verdict.errors), tuple(verdict.warnings))
        )
    return outcomes, notes


def report(outcomes: list[Outcome], notes: list[str], source: str) -> bool:
    """Print warnings and errors on stderr; True when every Application is valid.

    Warnings read as kubectl prints the webhook's (``Warning: ...``) and never change
    the verdict.
    """
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not outcomes:
        where = "stdin" if source == "-" else source
        print(f"no {APP_KIND} found in {where}", file=sys.stderr)
        return False
    prefix = len(outcomes) > 1
    for outcome in outcomes:
        head = f"{outcome.label}: " if prefix else ""
        for warning in outcome.warnings:
            print(f"Warning: {head}{warning}", file=sys.stderr)
        for error in outcome.errors:
            print(f"{head}{error}", file=sys.stderr)
    return all(not o.errors for o in outcomes)


def read_inputs(args: argparse.Namespace) -> tuple[list[object], ObservedState]:
    """The documents of -f and the live state of --revisions."""
    if args.filename == "-" and args.revisions == "-":
        raise InputError("only one of -f and --revisions can read stdin")
    return read_documents(args.filename), read_observed(args.revisions)


def run(args: argparse.Namespace) -> int:
    docs, observed = read_inputs(args)
    outcomes, notes = check_documents(
        docs, observed, make_renderer(args.templates_dir), policy_from(args)
    )
    if not report(outcomes, notes, args.filename):
        return 1
    if len(outcomes) == 1:
        print("valid")
    else:
        for outcome in outcomes:
            print(f"{outcome.label}: valid")
    return 0
