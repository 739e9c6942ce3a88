"""Subcommands of ``oam-rollout``, one module each (see webhook.cli)."""
