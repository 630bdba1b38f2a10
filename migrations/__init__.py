"""Alembic migration scripts, shipped as a package so `core.store.migrate` finds them with importlib.resources."""
