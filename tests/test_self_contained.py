"""The repository is self-contained: no code, test, script or doc reads a path outside it (the
benchmark files and the docs the code cites used to live in a ``shared`` directory beside it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# built from pieces so that this file does not match itself
OUTSIDE = re.compile(r"\.\./" + "shared" + r"|" + "shared" + r"/(?:data|docs)\b")
CHECKED = ("src", "tests", "benchmarks", "scripts", "docs")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".txt", ".c", ".h", ".cfg"}


def repo_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for top in CHECKED:
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    return files


def test_nothing_points_outside_the_repository():
    hits = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in repo_files()
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_the_docs_the_code_cites_are_in_the_repository():
    cited = set()
    for p in repo_files():
        cited |= set(re.findall(r"\b(algorithms|architecture|style|sandbox)\.md\b", p.read_text()))
    assert {"algorithms", "architecture"} <= cited
    for name in cited:
        assert (ROOT / "docs" / f"{name}.md").is_file(), f"docs/{name}.md is cited but missing"
