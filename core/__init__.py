"""Parley's core: the one surface adapters import from (`from core import ...`)."""
