"""One training entry point: the search's train evaluator and `nasforge train` train a
child exactly as runtime/train.py:train_arch does."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from nasforge.grammar import parse
from nasforge.runtime.cli import cli
from nasforge.runtime.data import load_dataset
from nasforge.runtime.devices import set_threads
from nasforge.runtime.search.evaluators import TrainEvaluator
from nasforge.runtime.train import train_arch

TINY = "cnn input 1x8x8 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8 <- L1"


def test_evaluator_command_and_function_agree(tmp_path: Path) -> None:
    set_threads(1)
    direct = train_arch(parse(TINY), load_dataset("digits", seed=0), epochs=1, seed=5)
    outcome = TrainEvaluator("digits", epochs=1, device="cpu", threads=1).evaluate(TINY, seed=5)
    assert outcome.status == "ok"
    assert outcome.reward == direct.reward
    assert [row["val_acc"] for row in outcome.metrics["epochs"]] == [
        row["val_acc"] for row in direct.metrics
    ]
    out = tmp_path / "trained"
    args = ["train", "--arch", TINY, "--dataset", "digits", "--epochs", "1", "--seed", "5"]
    result = CliRunner().invoke(
        cli, [*args, "--threads", "1", "--device", "cpu", "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    # The command splits the data with its --seed; the evaluator with data_seed 0.
    same_split = train_arch(parse(TINY), load_dataset("digits", seed=5), epochs=1, seed=5)
    assert json.loads((out / "metrics.json").read_text())["reward"] == same_split.reward
