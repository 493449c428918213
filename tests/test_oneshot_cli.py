"""`nasforge search --strategy enas|darts|darts1|rsws`: one-shot searches from the CLI.

Tiny settings (digits, the nb201 space, minibatches of 16, two weight steps an epoch,
one held-out batch per record, one thread): what is checked is that each strategy ends
in a valid string of the space, compiled, trained and exported; that its bad
combinations are refused with exact texts; and that a search interrupted by Ctrl-C or
a real SIGKILL continues with --resume to the architecture an uninterrupted run derives.

The ONNX export is checked once (rsws): it exports the compiled best_model.py, the same
code whichever strategy derived it, and the dynamo exporter takes most of such a run's
time (the done-when runs of all four strategies, with their export, are measured in
benchmarks/README.md).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_runner import run
from click.testing import Result
from nasforge.codegen import load_file
from nasforge.controller.space import load_space
from nasforge.grammar import parse, to_text
from nasforge.runtime.oneshot import ONESHOT_STRATEGIES
from search_doubles import poll_until

HANG_POLLS = 30_000  # ends a wait only when something hangs (minutes); no claim on speed
TINY = (
    "--dataset", "digits", "--space", "nb201", "--device", "cpu", "--threads", "1",
    "--batch", "16", "--option", "max_steps=2", "--option", "max_eval_batches=1",
)  # fmt: skip
# Each strategy's own caps, where it has them (fewer candidates scored at the end).
STRATEGY_TINY = {
    "rsws": ("--option", "derive_samples=4"),
    "enas": ("--option", "derive_samples=4", "--option", "controller_steps=1", "--option", "controller_aggregate=2"),
}  # fmt: skip


STRATEGIES = list(ONESHOT_STRATEGIES)


def oneshot(strategy: str, out: Path, *extra: object, epochs: int = 1) -> Result:
    return run(
        "search", "--strategy", strategy, "--epochs", epochs, *TINY,
        *STRATEGY_TINY.get(strategy, ()), "--out", out, *extra,
    )  # fmt: skip


def command(strategy: str, out: Path, *extra: str, epochs: int) -> list[str]:
    """The same search as `oneshot`, as a command line for a process of its own."""
    return [
        sys.executable, "-m", "nasforge.runtime.cli", "search", "--strategy", strategy,
        "--epochs", str(epochs), *TINY, *STRATEGY_TINY.get(strategy, ()), "--out", str(out),
        *extra,
    ]  # fmt: skip


def epoch_rows(out: Path) -> list[dict[str, object]]:
    """The stored epochs' records without their timings."""
    try:
        with sqlite3.connect(out / "search.db", timeout=30) as db:
            records = db.execute("SELECT record FROM epochs ORDER BY epoch").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    rows = [json.loads(record) for (record,) in records]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def check_outputs(out: Path) -> str:
    """The folder holds a derived string of the space, compiled, trained and exported; the
    string."""
    text = (out / "best.arch").read_text()
    ir = parse(text)
    space = load_space("nb201").with_data((1, 8, 8), 10)
    space.decisions_of(ir)  # raises unless the architecture is one of the space's
    source = (out / "best_model.py").read_text()
    assert to_text(ir) in source
    model = load_file(out / "best_model.py").build_model()
    model.load_state_dict(torch.load(out / "best_weights.pt", weights_only=True))
    assert model.eval()(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"]["arch"] == to_text(ir, one_line=True)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["arch"] == to_text(ir) and 0.0 <= metrics["val_acc"] <= 1.0
    # The model carries the data's preprocessing, as a trained folder's does.
    assert metrics["class_names"] == [str(digit) for digit in range(10)]
    assert summary["best"]["preprocessing"]["mean"] == metrics["mean"]
    for name in ("supernet.py", "supernet.pt", "report.md", "history.png"):
        assert (out / name).is_file(), name
    return text


def check_onnx(out: Path) -> None:
    import numpy as np
    import onnxruntime

    summary = json.loads((out / "summary.json").read_text())
    assert "max abs diff" in summary["outputs"]["best_model.onnx"]
    module = load_file(out / "best_model.py")
    model = module.build_model()
    model.load_state_dict(torch.load(out / "best_weights.pt", weights_only=True))
    pixels = torch.rand(3, 1, 8, 8)  # the ONNX graph takes raw pixels and normalises them
    session = onnxruntime.InferenceSession(str(out / "best_model.onnx"))
    assert session.get_inputs()[0].name == "pixels"
    (got,) = session.run(None, {"pixels": pixels.numpy()})
    want = model.eval()(module.preprocess(pixels)).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_ends_in_a_compiled_trained_exported_architecture(
    strategy: str, tmp_path: Path
) -> None:
    out = tmp_path / strategy
    # The inherited weights, evaluated: the cheapest end, and the supernet's own weights.
    onnx = strategy == "rsws"
    result = oneshot(
        strategy, out, "--inherit", "--retrain-epochs", "0", *[] if onnx else ["--no-onnx"]
    )
    assert result.exit_code == 0, result.output
    check_outputs(out)
    if onnx:
        check_onnx(out)
    assert (
        "no training"
        in json.loads((out / "summary.json").read_text())["outputs"]["best_weights.pt"]
    )
    report = (out / "report.md").read_text()
    assert report.startswith("# nasforge one-shot search report")
    assert f"- strategy: {strategy}:" in report and "| 1 |" in report
    assert "epoch 1/1: train loss" in result.stderr


def test_the_derived_architecture_retrains_from_scratch(tmp_path: Path) -> None:
    out = tmp_path / "retrained"
    result = oneshot("rsws", out, "--retrain-epochs", "1", "--no-onnx")
    assert result.exit_code == 0, result.output
    check_outputs(out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["inherit"] is False and [row["epoch"] for row in metrics["epochs"]] == [1]
    assert "final training, epoch 1/1" in result.stderr
    assert not (out / "best_model.onnx").exists()


@pytest.mark.parametrize(("strategy", "space", "shape"), [
    ("darts1", "darts", (1, 8, 8)),  # DARTS' own 8-cell search network
    ("enas", "enas_macro", (1, 8, 8)),  # ENAS's macro space
])  # fmt: skip
def test_the_darts_and_macro_spaces_end_in_their_own_strings(
    strategy: str, space: str, shape: tuple[int, ...], tmp_path: Path
) -> None:
    out = tmp_path / space
    result = oneshot(strategy, out, "--space", space, "--inherit", "--retrain-epochs", "0",
                     "--no-onnx")  # fmt: skip
    assert result.exit_code == 0, result.output
    ir = parse((out / "best.arch").read_text())
    load_space(space).with_data(shape, 10).decisions_of(ir)  # one of the space's strings
    model = load_file(out / "best_model.py").build_model()
    model.load_state_dict(torch.load(out / "best_weights.pt", weights_only=True))
    assert model.eval()(torch.randn(2, *shape)).shape == (2, 10)


ERRORS = [
    (
        ("--trials", "8", "--workers", "2"),
        "--strategy rsws is a one-shot search: one supernet trains in this process for "
        "--epochs on --dataset, with no trials to evaluate or distribute; drop --trials, "
        "--workers",
    ),
    (
        ("--evaluator", "table", "--backend", "ray"),
        "--strategy rsws is a one-shot search: one supernet trains in this process for "
        "--epochs on --dataset, with no trials to evaluate or distribute; drop --evaluator, "
        "--backend",
    ),
    (
        ("--max-params", "20k"),
        "--strategy rsws is a one-shot search: one supernet trains in this process for "
        "--epochs on --dataset, with no trials to evaluate or distribute; drop the budget "
        "(--max-params, --max-macs, --objective, --target-*, --mnas-w)",
    ),
    (
        ("--retrain-epochs", "0"),
        "--retrain-epochs 0 leaves the derived architecture untrained: add --inherit (start "
        "from the supernet's weights and only evaluate them), or retrain it for at least 1 "
        "epoch",
    ),
    (
        ("--space", "ptb_rnn"),
        "--strategy rsws searches image classifiers; --space ptb_rnn is a rnn space: choose "
        "nb201, darts (cells) or enas_macro (enas, rsws)",
    ),
    (
        ("--option", "colour=1"),
        "--strategy rsws: unknown option(s) colour for the one-shot strategy rsws; valid: ",
    ),
    (
        ("--dashboard",),
        "--dashboard shows a multi-trial search's trials, and a one-shot search has none: "
        "drop --dashboard (`nasforge report DIR` draws its epochs)",
    ),
]


@pytest.mark.parametrize(("extra", "message"), ERRORS)
def test_bad_combinations_exit_2_naming_what_to_drop(
    extra: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = oneshot("rsws", out, *extra)
    assert result.exit_code == 2, result.output
    # The last line (a failure after the data set is loaded comes after a line saying so).
    assert result.stderr.splitlines()[-1].startswith(f"nasforge: error: {message}"), result.stderr
    assert not (out / "search.db").exists()


def test_darts_needs_a_cell_space_and_multi_trial_needs_trials(tmp_path: Path) -> None:
    result = run(
        "search", "--strategy", "darts", "--space", "digits", "--dataset", "digits",
        "--out", tmp_path / "a",
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] + "\n" == (
        "nasforge: error: --strategy darts weighs the candidate ops on every edge of a cell: "
        "it needs a cell space (nb201, darts); --space digits is a cnn space: use --strategy "
        "enas or rsws for it\n"
    )
    result = run("search", "--space", "nb201", "--dataset", "digits", "--out", tmp_path / "b")
    assert result.exit_code == 2
    assert result.stderr == (
        "nasforge: error: --strategy reinforce needs --trials N (the proposals it evaluates)\n"
    )
    result = run(
        "search", "--space", "nb201", "--dataset", "digits", "--trials", "2", "--inherit",
        "--out", tmp_path / "c",
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        "nasforge: error: --inherit: only a one-shot strategy (enas, darts, darts1, rsws) "
        "retrains what it derives; --strategy reinforce keeps the best trial's weights: drop "
        "them\n"
    )


def test_ctrl_c_stores_the_ended_epoch_and_resume_ends_as_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasforge.runtime.search.store import TrialStore

    reference = tmp_path / "reference"
    done = oneshot("rsws", reference, "--inherit", "--retrain-epochs", "0", "--no-onnx", epochs=3)
    assert done.exit_code == 0, done.output

    # Ctrl-C lands while epoch 2 is being stored: it ended, so it is stored all the same.
    real = TrialStore.save_epoch
    calls: list[int] = []

    def interrupted(store: TrialStore, epoch: int, record: dict, state: bytes) -> None:
        calls.append(epoch)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(store, epoch, record, state)

    monkeypatch.setattr(TrialStore, "save_epoch", interrupted)
    out = tmp_path / "interrupted"
    stopped = oneshot("rsws", out, "--inherit", "--retrain-epochs", "0", "--no-onnx", epochs=3)
    assert stopped.exit_code == 130
    assert calls == [1, 2, 2]
    assert "2 of 3 epochs are stored" in stopped.stderr
    assert "run the same command with --resume to continue" in stopped.stderr
    assert not (out / "best.arch").exists()
    monkeypatch.setattr(TrialStore, "save_epoch", real)

    changed = oneshot("rsws", out, "--resume", "--seed", "1", epochs=3)
    assert changed.exit_code == 2
    assert "holds a different search: --seed 1 (the stored search has 0)" in changed.stderr
    resumed = oneshot(
        "rsws", out, "--resume", "--inherit", "--retrain-epochs", "0", "--no-onnx", epochs=3
    )
    assert resumed.exit_code == 0, resumed.output
    assert "2 of 3 epochs are stored" in resumed.stderr
    assert epoch_rows(out) == epoch_rows(reference)
    assert (out / "best.arch").read_text() == (reference / "best.arch").read_text()


@pytest.mark.slow
def test_sigkill_and_resume_derive_what_an_uninterrupted_run_derives(tmp_path: Path) -> None:
    epochs, extra = 4, ("--inherit", "--retrain-epochs", "0", "--no-onnx")
    strategy = "darts1"
    reference = tmp_path / "reference"
    done = oneshot(strategy, reference, *extra, epochs=epochs)
    assert done.exit_code == 0, done.output

    out = tmp_path / "killed"
    process = subprocess.Popen(
        command(strategy, out, *extra, epochs=epochs),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    poll_until(lambda: len(epoch_rows(out)) >= 1 or process.poll() is not None, polls=HANG_POLLS)
    assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()  # type: ignore[union-attr]
    before = epoch_rows(out)
    assert 1 <= len(before) < epochs, "the kill should land mid-run"
    assert not (out / "best.arch").exists()

    resumed = subprocess.run(
        command(strategy, out, *extra, "--resume", epochs=epochs), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} of {epochs} epochs are stored" in resumed.stderr
    after = epoch_rows(out)
    assert after[: len(before)] == before  # the stored epochs were kept, not run again
    assert after == epoch_rows(reference)
    assert (out / "best.arch").read_text() == (reference / "best.arch").read_text()


def test_report_redraws_a_one_shot_folder(tmp_path: Path) -> None:
    out = tmp_path / "search"
    assert oneshot("rsws", out, "--inherit", "--retrain-epochs", "0", "--no-onnx").exit_code == 0
    (out / "report.md").unlink()
    (out / "candidates.png").unlink()
    result = run("report", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == (out / "report.md").read_text()
    assert "- derived: `cells nb201 input 1x8x8" in result.stdout
    assert (out / "candidates.png").stat().st_size > 0


def test_a_supernet_that_fails_to_train_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasforge.runtime.errors import TrainingFailed
    from nasforge.runtime.oneshot.rsws import RandomWeightSharing

    def diverges(self: object) -> dict[str, object]:
        raise TrainingFailed("nan_loss", "the supernet's training loss became nan")

    monkeypatch.setattr(RandomWeightSharing, "train_epoch", diverges)
    out = tmp_path / "out"
    result = oneshot("rsws", out, "--no-onnx")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "nasforge: error: the supernet failed to train: training failed (nan_loss): the "
        f"supernet's training loss became nan; 0 epochs are stored in {out / 'search.db'}, "
        f"readable with `nasforge report {out}`"
    )
