"""Imports flow one way: grammar <- codegen <- controller <- runtime.

Every module of the four code folders is read with `ast` (imports at module level and
inside functions, absolute and relative), and an import of a later layer is a
back-edge. The controller only proposes, so it also imports nothing that stores or
runs things (sqlite3, subprocess, multiprocessing, ray).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("grammar", "codegen", "controller", "runtime")  # each may import only earlier ones
CONTROLLER_FORBIDDEN = ("sqlite3", "subprocess", "multiprocessing", "ray")


def module_name(path: Path) -> str:
    """nasforge.LAYER.sub.module for a file under ROOT/LAYER/ (a package: its __init__)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["nasforge", *parts])


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved.

    `from PACKAGE import NAME` yields PACKAGE and PACKAGE.NAME (NAME may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "nasforge" and parts[1] in LAYERS:
        return parts[1]
    return None


def back_edges(folder: str) -> list[str]:
    allowed = set(LAYERS[: LAYERS.index(folder) + 1])
    problems = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in imported_modules(path):
            layer = layer_of(module)
            if layer is not None and layer not in allowed:
                problems.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    return problems


def test_the_walker_sees_module_function_and_relative_imports() -> None:
    # The walker must see what the rule is about, or the rule passes vacuously.
    search = ROOT / "runtime" / "search" / "loop.py"
    found = {module for _, module in imported_modules(search)}
    assert "nasforge.controller.strategy" in found
    assert "nasforge.runtime.search.executors" in found  # `from .executors import ...`
    evaluators = {m for _, m in imported_modules(ROOT / "runtime" / "search" / "evaluators.py")}
    assert "nasforge.runtime.train" in evaluators  # `from .. import train` inside a method
    assert layer_of("nasforge.runtime.search.store") == "runtime"
    assert layer_of("runtime") is None  # an unrelated top-level package of that name


@pytest.mark.parametrize("folder", LAYERS)
def test_no_back_edges(folder: str) -> None:
    assert back_edges(folder) == []


def test_controller_runs_nothing() -> None:
    problems = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in sorted((ROOT / "controller").rglob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[0] in CONTROLLER_FORBIDDEN
    ]
    assert problems == []
