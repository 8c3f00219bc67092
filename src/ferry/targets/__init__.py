"""Compute targets: one contract (base.py), one module per kind, a lazy registry."""
