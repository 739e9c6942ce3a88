"""Test-session wiring: fixtures live in tests/fixtures/<subsystem>.py and are re-exported here.

Cluster fixtures start one real control plane per session (lazily, only when a test asks).
"""
