"""`nasforge train --out DIR`: an earlier run's folder is refused unless --overwrite, which
removes the old outputs first; the thread count is chosen from the usable cores and
recorded in metrics.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result
from nasforge.runtime.cli import cli

TINY_CNN = "cnn input 1x8x8 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8 <- L1"




def train(out: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["train", "--arch", TINY_CNN, "--dataset", "digits", "--epochs", "1", "--out", str(out),
         *extra],
        prog_name="nasforge",
    )  # fmt: skip


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding an earlier run's outputs, model.onnx included."""
    out = tmp_path_factory.mktemp("train") / "run"
    result = train(out, "--threads", "1")
    assert result.exit_code == 0, result.output
    (out / "model.onnx").write_bytes(b"an earlier export")
    (out / "notes.txt").write_text("the user's own file")
    return out


def test_an_earlier_run_is_refused(earlier_run: Path) -> None:
    before = {p.name: p.read_bytes() for p in earlier_run.iterdir()}
    result = train(earlier_run, "--threads", "1")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"nasforge: error: {earlier_run} already holds a `nasforge train` run (metrics.json, "
        "model.onnx, model.py, weights.pt); add --overwrite to replace it, or choose another "
        "--out\n"
    )
    assert {p.name: p.read_bytes() for p in earlier_run.iterdir()} == before


def test_overwrite_removes_the_old_outputs_first(earlier_run: Path, tmp_path: Path) -> None:
    result = train(earlier_run, "--threads", "1", "--epochs", "2", "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (earlier_run / "model.onnx").exists()  # no stale export beside new weights
    assert (earlier_run / "notes.txt").read_text() == "the user's own file"
    assert len(json.loads((earlier_run / "metrics.json").read_text())["epochs"]) == 2


def test_an_empty_or_foreign_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n")
    result = train(tmp_path, "--threads", "1")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data.csv").is_file() and (tmp_path / "weights.pt").is_file()


def test_default_threads_are_the_usable_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    torch.set_num_threads(2)
    result = train(tmp_path / "one")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["threads"] == 1
    result = train(tmp_path / "given", "--threads", "2")
    assert json.loads((tmp_path / "given" / "metrics.json").read_text())["threads"] == 2
