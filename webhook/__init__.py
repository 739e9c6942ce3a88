"""oam-rollout: batch rollouts and batch scaling for OAM Application components.

This package holds pure decision code at the bottom (paths, errors, model,
revisions, validation, rendering, admission, controller.batches) and thin I/O
shells on top (server, kube, controller loop, cli). It must not import any I/O
module from a pure one.
"""

__version__ = "0.1.0"
