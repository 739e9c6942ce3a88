"""The flags every user-facing command that talks to a cluster shares, and the client they build.

Holds ``add_cluster_flags`` (--kubeconfig, --context, -n/--namespace), ``connect_from``
(a webhook.kube.client.KubeApi from them: in-cluster, or the kubeconfig context with its
exec and auth-provider plugins) and ``namespace_from`` (-n, else the context's namespace,
else ``default``, as kubectl picks it). Also ``EXIT_*``, the exit codes `status` and the
verbs share. It is no subcommand (no ``register``) and must not hold command logic.
"""

from __future__ import annotations

import argparse
from typing import Any

# Exit codes of `status` and the verbs (README "Command line"); 2 is also argparse's.
EXIT_OK = 0
EXIT_FAILED = 1  # status --wait: a rollout failed; a verb: the API or the webhook refused it
EXIT_ERROR = 2  # usage, configuration or API error
EXIT_TIMEOUT = 3  # status --wait: --timeout passed first
EXIT_NOT_FOUND = 4  # no such Application

EXIT_CODES_HELP = (
    "exit codes: 0 done (status --wait: every rollout rolloutSucceed), 1 rolloutFailed (a verb: "
    "refused by the API or the webhook), 2 usage or API error, 3 --timeout passed, "
    "4 Application not found"
)


def add_cluster_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--namespace", metavar="NS", default=None,
                   help="the Application's namespace (default: the kubeconfig context's "
                   "namespace, in a pod its own, else default)")
    p.add_argument("--kubeconfig", metavar="FILE",
                   help="kubeconfig (default: in-cluster, else $KUBECONFIG or ~/.kube/config); "
                   "exec and auth-provider users work as with kubectl")
    p.add_argument("--context", metavar="NAME",
                   help="the kubeconfig context to use (default: its current-context)")


def connect_from(args: argparse.Namespace) -> Any:
    """A KubeApi for ``args``' --kubeconfig and --context (ApiConfigError when unusable)."""
    from webhook.kube.client import connect

    return connect(args.kubeconfig, context=args.context)


def namespace_from(args: argparse.Namespace, api: Any) -> str:
    """-n, else the context's namespace (the pod's own in a pod), else ``default``."""
    if args.namespace:
        return str(args.namespace)
    return str(api.credentials.namespace or "default")
