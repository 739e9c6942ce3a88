"""oam-rollout: batch rollouts and batch scaling for OAM Application components.

This package holds every part of the product as layered subpackages, bottom to top:
core (pure values and rules) <- render (templates) <- kube (the Kubernetes API seam)
<- admission (the webhook) and controller (the state machine and its loop), which never
import each other <- cli. localcluster (a local control plane for tests) uses core and
kube only, and only cli imports it. A layer must not import one above it: the contracts
in pyproject.toml (lint-imports) hold it; docs/architecture.md draws it.
"""

__version__ = "0.1.0"
