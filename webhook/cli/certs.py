"""The ``oam-rollout certs`` subcommand: write a CA and a serving certificate for the webhook.

Holds argument parsing and printing only; the certificate work is webhook.admission.certs.
It must not print key material: stdout carries the base64 caBundle, stderr the file names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

NAME = "certs"


def register(sub: Any) -> None:
    p = sub.add_parser(
        NAME,
        help="create a CA and a serving certificate for the admission webhook",
        description=(
            "Write ca.crt, tls.crt and tls.key (mode 0600, ECDSA P-256) to --out and print "
            "the base64 CA bundle for the webhook configurations' clientConfig.caBundle."
        ),
    )
    p.add_argument(
        "--hosts",
        required=True,
        help="comma-separated SANs, e.g. 127.0.0.1,oam-rollout.oam-rollout-system.svc",
    )
    p.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from webhook.admission.certs import generate, parse_hosts

    bundle = generate(parse_hosts(args.hosts), args.out)
    print(f"wrote {bundle.ca_path}, {bundle.cert_path}, {bundle.key_path}", file=sys.stderr)
    print(bundle.ca_bundle_b64)
    return 0
