"""`nasforge search` edges found by a new user (issue 16): a space that cannot fit the data
set, validation accuracy beside the reward, simulated seconds, the thread count per trial,
what the command says before its first step, and exporting a search folder's best."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import run
from click.testing import Result
from nasforge.codegen import load_file
from nasforge.runtime.search.build import build_search
from nasforge.runtime.search.config import SearchConfig
from search_doubles import write_nb201_table

ROOT = Path(__file__).resolve().parents[1]


def digits_search(out: Path, *extra: str) -> Result:
    return run(
        "search", "--space", "digits", "--dataset", "digits", "--epochs", "1",
        "--strategy", "random", "--trials", "3", "--executor", "inline", "--device", "cpu",
        "--out", out, "--no-onnx", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def digits_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("digits") / "run"
    result = digits_search(out, "--no-progress")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def table_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = write_nb201_table(tmp_path_factory.mktemp("table") / "nb201.csv")
    out = tmp_path_factory.mktemp("table") / "run"
    result = run(
        "search", "--space", "nb201", "--evaluator", "table", "--table", table,
        "--strategy", "random", "--trials", "6", "--out", out, "--no-progress", "--no-onnx",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def stored(out: Path) -> list[tuple[int, float, dict[str, object]]]:
    with sqlite3.connect(out / "search.db") as db:
        rows = db.execute("SELECT id, reward, metrics FROM trials WHERE status = 'ok'").fetchall()
    return [(i, r, json.loads(m)) for i, r, m in rows]


# --- a space that cannot fit the data set ---------------------------------------------


def test_a_space_that_cannot_fit_the_data_set_is_refused_before_any_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasforge.runtime.train as recipes

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a child was trained")

    monkeypatch.setattr(recipes, "train_arch", no_training)
    out = tmp_path / "run"
    # A space file keeps the input it states (a built-in space would follow the data).
    space = tmp_path / "small.toml"
    space.write_text((ROOT / "controller" / "spaces" / "digits.toml").read_text())
    result = run(
        "search", "--space", space, "--dataset", "mnist5k", "--trials", "2",
        "--executor", "inline", "--out", out, "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert (
        f"nasforge: error: --space {space} cannot train on --dataset mnist5k: the space's "
        "architectures take input 1x8x8 and 10 classes, mnist5k's images are 1x28x28 in 10 "
        "classes; choose a space with input 1x28x28 and 10 classes (a space file with "
        "input = [1, 28, 28] and classes = 10: 'Search spaces' in grammar/README.md), or a "
        "data set that fits the space\n"
    ) in result.stderr
    assert "Traceback" not in result.output
    assert not (out / "search.db").exists()


def test_a_language_model_space_on_images_is_refused(tmp_path: Path) -> None:
    result = run(
        "search", "--space", "ptb_rnn", "--dataset", "digits", "--trials", "2",
        "--out", tmp_path / "run", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert (
        "nasforge: error: --space ptb_rnn cannot train on --dataset digits: an rnn "
        "architecture is a language model; dataset digits is an image set (use ptb or "
        "ptb-char)\n"
    ) in result.stderr


# --- validation accuracy beside the reward; simulated seconds -------------------------


def test_report_and_summary_show_validation_accuracy(digits_out: Path) -> None:
    trials = stored(digits_out)
    best_id, reward, metrics = max(trials, key=lambda t: (t[1], -t[0]))
    accuracy = max(row["val_acc"] for row in metrics["epochs"])  # type: ignore[index, union-attr]
    assert reward == pytest.approx(accuracy**3)
    summary = json.loads((digits_out / "summary.json").read_text())
    assert summary["best"]["trial"] == best_id
    assert summary["best"]["val_acc"] == accuracy
    assert summary["best"]["seconds"] > 0 and "simulated_seconds" not in summary["best"]
    report = (digits_out / "report.md").read_text()
    assert f"- best: trial {best_id}, reward {reward:.6f} (val acc {accuracy:.2%}): " in report
    assert "| rank | trial | reward | validation | parameters | multiply-adds | seconds |" in report
    assert f"| 1 | {best_id} | {reward:.6f} | val acc {accuracy:.2%} | " in report
    assert "evaluation time" in report and "simulated" not in report


def test_the_table_evaluators_seconds_are_labelled_simulated(table_out: Path) -> None:
    _, reward, metrics = max(stored(table_out), key=lambda t: (t[1], -t[0]))
    summary = json.loads((table_out / "summary.json").read_text())
    assert summary["best"]["val_acc"] == pytest.approx(metrics["valid12"] / 100)  # type: ignore[operator]
    assert summary["best"]["simulated_seconds"] == metrics["time12"]
    assert "seconds" not in summary["best"]
    report = (table_out / "report.md").read_text()
    assert "; simulated evaluation time " in report
    assert "(the table's training times, summed over trials; not time spent)" in report
    assert "| multiply-adds | simulated seconds | architecture |" in report
    assert f"reward {reward:.6f} (val acc {metrics['valid12'] / 100:.2%})" in report  # type: ignore[operator]


def test_a_language_models_report_shows_perplexity() -> None:
    from nasforge.runtime.search.report import validation_text

    epochs = [{"epoch": 1, "val_ppl": 300.0}, {"epoch": 2, "val_ppl": 212.34}]
    assert validation_text({"epochs": epochs}) == "val ppl 212.3"
    assert validation_text({}) == "-"


def test_progress_lines_show_validation_accuracy_beside_the_best_reward(
    digits_out: Path,
) -> None:
    # Resumed with more trials: the progress starts from the stored best and goes on.
    result = digits_search(digits_out, "--trials", "4", "--resume")
    assert result.exit_code == 0, result.output
    _, reward, metrics = max(stored(digits_out), key=lambda t: (t[1], -t[0]))
    accuracy = max(row["val_acc"] for row in metrics["epochs"])  # type: ignore[index, union-attr]
    assert f"best {reward:.4f} (val acc {accuracy:.2%})" in result.stderr


# --- threads ------------------------------------------------------------------------


def test_each_trial_records_its_threads(digits_out: Path) -> None:
    inline = max(1, len(os.sched_getaffinity(0)))
    assert {m["threads"] for _, _, m in stored(digits_out)} == {inline}


@pytest.mark.parametrize(("workers", "executor", "expected"), [(1, "pool", 4), (2, "pool", 2),
                                                                (3, "pool", 1), (8, "pool", 1),
                                                                (4, "inline", 4)])  # fmt: skip
def test_threads_per_trial_share_out_the_usable_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, executor: str, expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    config = SearchConfig.create(
        space="digits", trials=1, dataset="digits", workers=workers, executor=executor
    )
    search = build_search(config, tmp_path, resume=False)
    try:
        assert search.evaluator.threads == expected
    finally:
        search.close()


# --- what the command says before the first step ends -----------------------------------


def test_without_a_terminal_it_says_what_is_happening_before_the_first_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasforge.runtime.search.loop as loop

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # before any trial ran

    monkeypatch.setattr(loop, "run_search", stopped)
    result = run(
        "search", "--space", "digits", "--dataset", "digits", "--trials", "4",
        "--workers", "2", "--batch", "4", "--out", tmp_path / "run",
    )  # fmt: skip
    assert result.exit_code == 130
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "nasforge search: preparing space digits, strategy reinforce, 4 trials, each trained "
        "1 epoch(s) on digits (loading it now)"
    )
    cores = len(os.sched_getaffinity(0))
    assert lines[1] == (
        "data set loaded: scikit-learn digits, 1x8x8, /16 then normalised by the training "
        "split; 1,497/300; starting 2 worker process(es) (each imports torch once); each step "
        f"evaluates 4 architectures, 2 at a time, {max(1, cores // 2)} torch thread(s) each"
    )
    assert lines[2].startswith("nasforge: interrupted; 0 trials are stored")


def test_without_a_terminal_the_first_trial_is_announced(digits_out: Path) -> None:
    result = digits_search(digits_out, "--trials", "5", "--resume")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    first = next(
        i for i, line in enumerate(lines) if line.startswith("first trial done (ok) after ")
    )
    step = next(i for i, line in enumerate(lines) if line.startswith("step "))
    assert first < step


# --- export a search folder's best --------------------------------------------------


def test_export_of_a_search_folder_uses_its_best_and_kept_weights(
    digits_out: Path, tmp_path: Path
) -> None:
    import onnxruntime

    result = digits_search(digits_out, "--trials", "6", "--resume")  # the best may change
    assert result.exit_code == 0, result.output
    target = tmp_path / "best.onnx"
    result = run("export", digits_out, "--out", target)
    assert result.exit_code == 0, result.output
    module = load_file(digits_out / "best_model.py")
    model = module.build_model()
    model.load_state_dict(torch.load(digits_out / "best_weights.pt", weights_only=True))
    model.eval()
    pixels = torch.rand(3, 1, 8, 8)  # raw: the graph normalises as the search's training did
    with torch.no_grad():
        expected = model(module.preprocess(pixels)).numpy()
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "pixels"
    (got,) = session.run(None, {"pixels": pixels.numpy()})
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_export_of_a_table_search_folder_says_there_are_no_weights(
    table_out: Path, tmp_path: Path
) -> None:
    result = run("export", table_out, "--out", tmp_path / "x.onnx")
    assert result.exit_code == 2
    assert result.stderr == (
        f"nasforge: error: {table_out} has no best_weights.pt (a table search trains "
        f"nothing); give --weights W, or export {table_out / 'best.arch'} with random weights\n"
    )
