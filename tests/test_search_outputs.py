"""The files a search leaves: the best's weights are kept through pruning, re-runs and
extensions; everything else in DIR/weights/ goes."""

from __future__ import annotations

import json
from pathlib import Path

from nasforge.runtime.search.outputs import WeightsKeeper, write_outputs
from nasforge.runtime.search.store import TrialRecord, TrialStore


def arch(n: int) -> str:
    return f"cnn input 1x8x8 classes 10; L1: conv 3x3 n{n}"


def ok(id: int, reward: float, weights: str | None) -> TrialRecord:
    metrics = {"weights": weights} if weights else {}
    return TrialRecord(id=id, step=id, slot=0, arch=arch(id), status="ok", reward=reward,
                       metrics=metrics)  # fmt: skip


def add(store: TrialStore, keeper: WeightsKeeper, record: TrialRecord, folder: Path) -> None:
    name = record.metrics.get("weights")
    if name:
        (folder / name).write_bytes(f"weights of trial {record.id}".encode())
    store.add_trial(record)
    keeper(record)


def test_the_best_weights_survive_pruning_reruns_and_extensions(tmp_path: Path) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    store = TrialStore.create(tmp_path / "search.db", {})
    keeper = WeightsKeeper(folder, store.trials())
    add(store, keeper, ok(1, 0.5, "a.pt"), folder)
    add(store, keeper, ok(2, 0.9, "b.pt"), folder)
    add(store, keeper, ok(3, 0.7, "c.pt"), folder)
    add(store, keeper, ok(4, 0.9, "d.pt"), folder)  # a tie: the earlier trial stays best
    assert sorted(p.name for p in folder.iterdir()) == ["b.pt"]

    outputs = write_outputs(tmp_path, store, onnx=False)
    assert (tmp_path / "best_weights.pt").read_bytes() == b"weights of trial 2"
    assert not folder.exists()
    assert outputs["best.arch"] == "trial 2 (canonical text)" and "best_weights.pt" in outputs
    assert json.loads((tmp_path / "summary.json").read_text())["best"]["trial"] == 2

    # Run the end again (a resumed search with nothing left to do): the weights stay.
    write_outputs(tmp_path, store, onnx=False)
    assert (tmp_path / "best_weights.pt").read_bytes() == b"weights of trial 2"

    # Extend the search: a better trial replaces them.
    folder.mkdir()
    keeper = WeightsKeeper(folder, store.trials())
    add(store, keeper, ok(5, 0.95, "e.pt"), folder)
    write_outputs(tmp_path, store, onnx=False)
    assert (tmp_path / "best_weights.pt").read_bytes() == b"weights of trial 5"
    assert "trial 5, reward 0.950000" in (tmp_path / "best.arch").read_text()

    # A better trial whose weights are gone: no stale weights of another trial remain.
    store.add_trial(ok(6, 0.99, "f.pt"))
    outputs = write_outputs(tmp_path, store, onnx=False)
    assert not (tmp_path / "best_weights.pt").exists()
    assert "best_weights.pt" not in outputs
    store.close()


def test_a_search_killed_between_copy_and_cleanup_keeps_the_weights(tmp_path: Path) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    store = TrialStore.create(tmp_path / "search.db", {})
    keeper = WeightsKeeper(folder, store.trials())
    add(store, keeper, ok(1, 0.5, "a.pt"), folder)
    write_outputs(tmp_path, store, onnx=False)
    # As if killed after the copy but before summary.json: the source is still there.
    folder.mkdir()
    (folder / "a.pt").write_bytes(b"weights of trial 1")
    (tmp_path / "summary.json").unlink()
    write_outputs(tmp_path, store, onnx=False)
    assert (tmp_path / "best_weights.pt").read_bytes() == b"weights of trial 1"
    store.close()
