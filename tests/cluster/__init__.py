"""Tests on the local control plane (a package so test basenames may repeat)."""
