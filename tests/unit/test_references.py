"""The repository stands alone: no text in it points outside it (a parent folder, a design
note or seed page kept elsewhere) or to a tracker's issue numbers, and every repository path
that a docstring, comment or document names (`infra/kafka/avro.py`, `docs/plans.md`) exists,
as does every relative link of the documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "var", "build", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache"}
TEXT = {".py", ".md", ".toml", ".sql", ".avsc", ".txt", ".cfg", ".ini", ".yml", ".yaml"}
TEXT_NAMES = {"Makefile", "run"}  # .ci/run

OUTSIDE = [
    (re.compile(r"\.\./"), "a path into a parent folder"),
    (re.compile(r"\bDESIGN(?:\.md)?\b|\bSTYLE\.md\b"), "a design note kept outside the repository"),
    (re.compile(r"\bshared/|\bseeds/"), "the shared folder or its seed pages"),
    (re.compile(r"\b(?:issue|task|ticket|PR|pull request)\s*#?\d+\b", re.IGNORECASE), "an issue number"),
    (re.compile(r"(?<![\w&/])#\d+\b"), "an issue number"),
]
ROOTS = ("domain", "projections", "consumers", "infra", "schemas", "plans", "tests", "bench", "docs")
# A path ends where a word does; one running on into a pattern (`<Type>`, `*`, `{a,b}`) is no path.
PATH = re.compile(r"(?<![\w./-])((?:{})/[\w./-]*\w)(?![\w/<*{{-]|\.[\w<*{{])".format("|".join(ROOTS)))
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def text_files() -> list[Path]:
    found = []
    for path in REPO.rglob("*"):
        parts = set(path.relative_to(REPO).parts)
        if parts & SKIP_DIRS or any(p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        if path.suffix in TEXT or path.name in TEXT_NAMES:
            found.append(path)
    return sorted(found)


FILES = text_files()


def _ids(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_the_scan_sees_the_code_the_docs_and_the_catalog() -> None:
    names = {_ids(p) for p in FILES}
    assert {"README.md", "Makefile", "infra/kafka/avro.py", "plans/bpm.toml", "docs/design.md"} <= names


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_no_text_refers_outside_the_repository_or_to_issue_numbers(path: Path) -> None:
    if path == Path(__file__).resolve():
        return  # its patterns would find themselves
    found = [f"line {n}: {why}: {line.strip()}"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             for pattern, why in OUTSIDE if pattern.search(line)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_every_repository_path_a_file_names_exists(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    missing = sorted({m for m in PATH.findall(text) if not (REPO / m).exists()})
    assert not missing, f"{_ids(path)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("path", [p for p in FILES if p.suffix == ".md"], ids=_ids)
def test_every_relative_link_of_a_document_resolves(path: Path) -> None:
    links = [link for link in LINK.findall(path.read_text(encoding="utf-8")) if "://" not in link]
    missing = [link for link in links if not (path.parent / link).exists()]
    assert not missing, f"{_ids(path)} links to missing files: {missing}"


def test_the_path_check_catches_a_missing_file_and_spares_patterns() -> None:
    nowhere = "infra/" + "nowhere.py"  # spelled apart, so that this file names no missing path
    names = PATH.findall(f"see infra/kafka/avro.py, {nowhere}, plans/*.toml and "
                         "schemas/ticketing.v1.<Type>.avsc and tests/{unit,e2e}.")
    assert names == ["infra/kafka/avro.py", nowhere]
    assert not (REPO / names[1]).exists()


def test_the_outside_check_catches_parent_paths_and_issue_numbers() -> None:
    samples = ["see ../shared/DESIGN.md", "as issue 8 says", "fixed in #12", "Task 3"]
    assert all(any(p.search(s) for p, _ in OUTSIDE) for s in samples)
    assert not any(p.search("a 15-credit block, P1 response, 2bd, 10 %") for p, _ in OUTSIDE)
