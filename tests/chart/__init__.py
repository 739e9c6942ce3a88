"""Tests of the Helm chart as rendered by helm itself (no cluster needed)."""
