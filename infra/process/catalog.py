"""Loads the plan catalog: every `plans/*.toml` file, parsed with tomllib into `PlanTerms`.

This is the only place the catalog touches the file system; the parsing and its checks
live in `domain.plans.parse_catalog`, whose errors name the file and the plan. The default
folder is the `plans` package's data, found with importlib.resources wherever it is installed.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from domain.plans import PlanTerms, parse_catalog

__all__ = ["DEFAULT_PLANS_DIR", "load_catalog"]

DEFAULT_PLANS_DIR: Traversable = files("plans")


def load_catalog(directory: Path | Traversable | None = None) -> dict[str, PlanTerms]:
    """Plan id -> terms for every plan of every `*.toml` file in ``directory``."""
    folder = DEFAULT_PLANS_DIR if directory is None else directory
    found = sorted((p for p in folder.iterdir() if p.name.endswith(".toml") and p.is_file()), key=lambda p: p.name)
    if not found:
        raise FileNotFoundError(f"no plan files (*.toml) in {folder}")
    documents = {}
    for path in found:
        try:
            documents[path.name] = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path.name}: not valid TOML: {error}") from None
    return parse_catalog(documents)
