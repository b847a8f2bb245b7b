"""Test doubles shared across the test suite (fake BloFin server, ...)."""
