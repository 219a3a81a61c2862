"""Loads the plan catalog: every `plans/*.toml` file, parsed with tomllib into `PlanTerms`.

This is the only place the catalog touches the file system; the parsing and its checks
live in `domain.plans.parse_catalog`, whose errors name the file and the plan. The default
folder is the repository's `plans/`, found relative to this file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from domain.plans import PlanTerms, parse_catalog

__all__ = ["DEFAULT_PLANS_DIR", "load_catalog"]

DEFAULT_PLANS_DIR = Path(__file__).resolve().parents[2] / "plans"


def load_catalog(directory: Path | None = None) -> dict[str, PlanTerms]:
    """Plan id -> terms for every plan of every `*.toml` file in ``directory``."""
    folder = Path(directory) if directory is not None else DEFAULT_PLANS_DIR
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise FileNotFoundError(f"no plan files (*.toml) in {folder}")
    documents = {}
    for path in files:
        try:
            documents[path.name] = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path.name}: not valid TOML: {error}") from None
    return parse_catalog(documents)
