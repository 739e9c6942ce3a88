"""The component policy options the webhook, ``validate`` and ``render`` share.

Holds ``add_policy_arguments`` (--allow-host-path, --allow-expose-type) and
``policy_from``, which turns them into webhook.core.properties.ComponentPolicy. The chart
passes its componentPolicy values to the webhook as these flags; ``validate`` and
``render`` take the same ones, so an offline check gives the cluster's verdict. It must
not hold the rules themselves (webhook.core.properties does) and is not a command.
"""

from __future__ import annotations

import argparse
from typing import Any

from webhook.core.properties import DEFAULT_EXPOSE_TYPE, GATED_EXPOSE_TYPES, ComponentPolicy


def add_policy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-host-path",
        action="store_true",
        help="let components mount hostPath volumes (volumeMounts.hostPath); refused by default",
    )
    p.add_argument(
        "--allow-expose-type",
        action="append",
        choices=GATED_EXPOSE_TYPES,
        default=[],
        metavar="TYPE",
        help="let a webservice's exposeType be TYPE (NodePort or LoadBalancer; repeat for "
        "both); only ClusterIP by default",
    )


def policy_from(args: Any) -> ComponentPolicy:
    """The policy the parsed options ask for."""
    types = frozenset({DEFAULT_EXPOSE_TYPE, *getattr(args, "allow_expose_type", [])})
    return ComponentPolicy(
        allow_host_path=bool(getattr(args, "allow_host_path", False)), expose_types=types
    )
