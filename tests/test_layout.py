"""Package layering: research packages sit on shared lower modules, not on each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "psic"


def imported_modules_of(path: Path) -> set[str]:
    """Every module (and ``from`` module + name) a file imports, at any depth."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def imported_modules(folder: Path) -> set[str]:
    return set().union(*(imported_modules_of(path) for path in folder.rglob("*.py")))


@pytest.mark.parametrize(("package", "forbidden"), [("train", "psic.eval"), ("eval", "psic.train")])
def test_train_and_eval_do_not_import_each_other(package, forbidden):
    offending = sorted(m for m in imported_modules(PACKAGE / package) if m == forbidden or m.startswith(forbidden + "."))
    assert not offending


def test_compressai_is_touched_only_by_its_adapter():
    users = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(m.split(".")[0] == "compressai" for m in imported_modules_of(path))
    )
    assert users == []  # compressai_parts.py loads its extensions by file, without importing the package

