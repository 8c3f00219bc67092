"""Test doubles and the conformance suites every target (and store) must pass."""
