"""One name, one thing: no two top-level classes of the backend's packages share a name, so
an import or a grep never finds the wrong one (nested event classes like `Ticket.Cancelled`
and `Contract.Cancelled` are named through their aggregate and do not count)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "projections", "consumers", "infra")


def top_level_classes() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.ClassDef):
                    found[node.name].append(str(path.relative_to(ROOT)))
    return found


def test_no_two_classes_of_the_backend_share_a_name() -> None:
    classes = top_level_classes()
    assert len(classes) > 50  # the scan found the packages
    assert {name: where for name, where in classes.items() if len(where) > 1} == {}

