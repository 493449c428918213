"""A one-shot search's report and plots, from epoch records made by hand (no training):
each strategy's table columns and plot, the cells' edge and op names, and a store with
no epoch yet."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from cli_runner import run
from nasforge.runtime.search.config import SearchConfig
from nasforge.runtime.search.oneshot_report import (
    _cell_labels,
    build_oneshot_report,
    render_oneshot,
    write_oneshot_report,
)
from nasforge.runtime.search.store import TrialStore


def mixture(edges: int, ops: int, rng: random.Random) -> list[list[float]]:
    rows = []
    for _ in range(edges):
        weights = [rng.random() for _ in range(ops)]
        rows.append([w / sum(weights) for w in weights])
    return rows


def records(strategy: str, space: str, epochs: int = 3) -> list[dict[str, object]]:
    rng = random.Random(0)
    made: list[dict[str, object]] = []
    for epoch in range(1, epochs + 1):
        record: dict[str, object] = {
            "epoch": epoch, "lr": 0.025, "train_loss": 2.0 / epoch, "train_acc": 0.2 * epoch,
            "valid_acc": 0.1 * epoch, "seconds": 1.5,
        }  # fmt: skip
        if strategy.startswith("darts"):
            sections = (
                {"cell": (6, 5)} if space == "nb201" else {"normal": (14, 8), "reduce": (14, 8)}
            )
            record["alphas"] = {k: mixture(*shape, rng) for k, shape in sections.items()}
            record["derived"] = f"arch {min(epoch, 2)}"
        elif strategy == "enas":
            record.update(entropy=3.0 - epoch / 2, reward=0.1 * epoch, baseline=0.08 * epoch)
        else:
            record.update(derived=f"arch {epoch}", derived_score=0.15 * epoch)
        made.append(record)
    return made


@pytest.mark.parametrize(
    ("strategy", "space", "plot", "columns"),
    [
        ("darts", "nb201", "alphas.png", ""),
        ("darts1", "darts", "alphas.png", ""),
        ("enas", "nb201", "controller.png", " entropy | reward | baseline |"),
        ("rsws", "nb201", "candidates.png", " derived's score |"),
    ],
)
def test_each_strategy_gets_its_table_and_plot(
    strategy: str, space: str, plot: str, columns: str, tmp_path: Path
) -> None:
    config = SearchConfig.create(space=space, strategy=strategy, dataset="digits", epochs=3)
    store = TrialStore.create(tmp_path / "search.db", config.stored())
    for record in records(strategy, space):
        store.save_epoch(int(record["epoch"]), record, b"state")  # type: ignore[call-overload]
    report = build_oneshot_report(store, {})
    store.close()
    assert report.plots() == ["history.png", plot]
    text = render_oneshot(report)
    assert f"| epoch | lr | train loss | train acc | held-out acc |{columns} seconds |" in text
    assert "| 3 | 0.025 | 0.6667 | 60.00% | 30.00% |" in text
    assert "- derived: not yet (the search has not ended; `--resume` continues it)" in text
    assert "- epochs: 3 of 3 stored; search time 4.5 s (summed over epochs)" in text
    if strategy != "enas":  # the derived string, each time it changed
        assert "- epoch 1: `arch 1`" in text and "- epoch 2: `arch 2`" in text
    paths = write_oneshot_report(tmp_path, report)
    assert [p.name for p in paths] == ["report.md", "history.png", plot]
    assert all(p.stat().st_size > 0 for p in paths)


def test_the_cells_are_labelled_by_their_states_and_ops() -> None:
    edges, ops = _cell_labels({"space": "nb201"})["cell"]
    assert edges == ["S0->S1", "S0->S2", "S1->S2", "S0->S3", "S1->S3", "S2->S3"]
    assert ops == ["none", "skip", "conv1x1", "conv3x3", "avgpool3x3"]
    edges, ops = _cell_labels({"space": "darts"})["reduction"]
    assert len(edges) == 14 and edges[:3] == ["S0->S2", "S1->S2", "S0->S3"] and len(ops) == 8
    assert _cell_labels({"space": "digits"}) == {}


def test_report_on_a_one_shot_store_with_no_epoch_yet(tmp_path: Path) -> None:
    config = SearchConfig.create(space="nb201", strategy="enas", dataset="digits", epochs=2)
    TrialStore.create(tmp_path / "search.db", config.stored()).close()
    result = run("report", tmp_path)
    assert result.exit_code == 0, result.output
    assert "- epochs: 0 of 2 stored" in result.stdout
    assert "(no epoch stored yet)" in result.stdout
    assert (tmp_path / "controller.png").stat().st_size > 0
