"""Unit tests: pure decisions, no control plane (a package so test basenames may repeat)."""
