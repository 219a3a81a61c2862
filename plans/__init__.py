"""The plan catalog, shipped as package data: one `*.toml` file per provider.

This package holds no code. It exists so that the catalog installs with the backend and is
found with `importlib.resources` (see `infra/process/catalog.py`) wherever it is installed.
How each file reads its seed page is in `docs/plans.md`.
"""
