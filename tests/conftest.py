"""Shared fixtures and the `--full` switch; the markers are registered in pyproject.toml.

The hypothesis strategies are plain functions in tests/strategies.py (a decorator
such as @given cannot take a fixture); the evaluator and strategy doubles that child
processes import live in tests/search_doubles.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="also run the tests marked `full` (full-size ONNX exports: about 8 minutes more)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--full"):
        return
    skip = pytest.mark.skip(reason="a long check at full size; pytest --full (make test-full)")
    for item in items:
        if "full" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Each test starts with one intra-op torch thread and leaves the count as it found it.

    The models here are tiny: on a shared 2-core machine a second thread mostly spins.
    Code under test may set the count (`--threads`, the train evaluator, the search's
    controller); restoring it keeps one test from changing the next. A run that never
    imports torch (the grammar tests alone) does not import it here either.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def real_nb201_csv() -> Path:
    """The real NAS-Bench-201 CIFAR-10 table (../shared/data, or NASFORGE_NB201_CSV); the
    test is skipped where it is absent (a fresh clone)."""
    configured = os.environ.get("NASFORGE_NB201_CSV")
    path = Path(configured) if configured else ROOT.parent / "shared/data/nb201/nb201_cifar10.csv"
    if not path.exists():
        pytest.skip(f"the NAS-Bench-201 table is not at {path} (set NASFORGE_NB201_CSV)")
    return path


@pytest.fixture(scope="session")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A NAS-Bench-201-format CSV for the table evaluator, written once per run."""
    from search_doubles import write_nb201_table

    return write_nb201_table(tmp_path_factory.mktemp("table") / "nb201.csv")
