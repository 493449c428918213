"""The trial store: round trips of trials, config and checkpoints; its rules; WAL."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from nasforge.runtime.search.store import (
    StoreError,
    TrialRecord,
    TrialStore,
    arch_hash,
    dump_state,
    load_state,
)

CONFIG = {"space": "digits", "strategy": "reinforce", "seed": 0, "batch": 8, "options": {"lr": 0.02}}


def trial(id: int, **changes: object) -> TrialRecord:
    fields: dict[str, object] = {
        "id": id,
        "step": (id - 1) // 4,
        "slot": (id - 1) % 4,
        "arch": f"cnn input 1x8x8 classes 10; L1: conv 3x3 n{id}",
        "status": "ok",
        "reward": 0.25 * id,
        "decisions": (1, 0, id),
        "metrics": {"epochs": [{"val_acc": 0.5, "epoch": 1}], "nan": float("inf")},
        "parameters": 1000 + id,
        "macs": 64_000,
        "seconds": 1.5,
        "worker": "pool-1/pid 42",
        "started_at": 10.0,
        "finished_at": 11.5,
    }
    fields.update(changes)
    return TrialRecord(**fields)  # type: ignore[arg-type]


def test_trials_and_config_round_trip(tmp_path: Path) -> None:
    with TrialStore.create(tmp_path / "s.db", CONFIG) as store:
        records = [
            trial(1),
            trial(2, status="failed", reward=0.0, error="training failed (shape): ...", depth=4),
            trial(3, status="repeat", repeat_of=1, reward=0.25, arch=trial(1).arch, metrics={}),
        ]
        for record in (records[1], records[0], records[2]):  # stored as they finish
            store.add_trial(record)
    with TrialStore.open(tmp_path / "s.db") as store:
        assert store.config == CONFIG
        assert store.trials() == records
        assert store.trials(step=0) == records and store.trials(step=1) == []
        assert store.count() == 3
        assert store.find(trial(1).arch) == records[0]  # the original, not the repeat
        assert store.find("cnn input 1x8x8 classes 10; L1: conv 1x1 n8") is None
        assert [t.id for t in store.iter_evaluated()] == [1, 2]
        store.set_config({**CONFIG, "trials": 50})
        assert store.config["trials"] == 50
    assert records[0].arch_hash == arch_hash(records[0].arch) and len(records[0].arch_hash) == 64


def test_the_store_refuses_what_breaks_its_rules(tmp_path: Path) -> None:
    with TrialStore.create(tmp_path / "s.db", CONFIG) as store:
        store.add_trial(trial(1))
        with pytest.raises(StoreError, match=r"trial 1 \(step 0, slot 0\) cannot be stored"):
            store.add_trial(trial(1))
        with pytest.raises(StoreError, match="cannot be stored"):  # the same step and slot
            store.add_trial(trial(9, step=0, slot=0))
        with pytest.raises(StoreError, match="a repeat names the trial it repeats"):
            store.add_trial(trial(2, status="repeat"))
        with pytest.raises(StoreError, match="unknown trial status 'lost'"):
            store.add_trial(trial(2, status="lost"))
        with pytest.raises(StoreError, match="cannot be stored"):  # repeat_of must exist
            store.add_trial(trial(2, status="repeat", repeat_of=7))
    with pytest.raises(StoreError, match="already exists"):
        TrialStore.create(tmp_path / "s.db", CONFIG)
    with pytest.raises(StoreError, match="there is no trial store at"):
        TrialStore.open(tmp_path / "none.db")
    (tmp_path / "text.db").write_text("not a database at all, just some text " * 40)
    with pytest.raises(StoreError, match="is not a nasforge trial store"):
        TrialStore.open(tmp_path / "text.db")
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="is not a nasforge trial store"):
        TrialStore.open(tmp_path / "other.db")


def test_checkpoints_hold_a_strategy_state_exactly(tmp_path: Path) -> None:
    rng = random.Random(5)
    generator = torch.Generator().manual_seed(3)
    state = {
        "weights": {"w": torch.randn(3, 4, generator=generator)},
        "rng": rng.getstate(),
        "numpy": np.random.default_rng(1).bit_generator.state,
        "torch_rng": generator.get_state(),
        "baseline": 0.5,
    }
    with TrialStore.create(tmp_path / "s.db", CONFIG) as store:
        assert store.latest_checkpoint() is None
        store.save_checkpoint(0, 8, 1, dump_state(state))
        store.save_checkpoint(1, 8, 9, dump_state({**state, "baseline": 0.75}), told_stats={"loss": 1.5})
        store.resize_step(1, 4)
    with TrialStore.open(tmp_path / "s.db") as store:
        first, latest = store.checkpoints()
        assert store.latest_checkpoint() == latest
        assert (latest.step, latest.size, latest.first_trial, latest.stats) == (1, 4, 9, None)
        assert first.stats == {"loss": 1.5} and first.told_at is not None
        restored = load_state(first.state)
        assert torch.equal(restored["weights"]["w"], state["weights"]["w"])
        again = random.Random()
        again.setstate(restored["rng"])
        assert again.random() == rng.random()
        assert torch.equal(restored["torch_rng"], state["torch_rng"])
        assert load_state(latest.state)["baseline"] == 0.75
        store.add_trial(trial(9, step=1, slot=0))
        with pytest.raises(StoreError, match="step 1 has stored trials; its size is fixed"):
            store.resize_step(1, 2)


def test_wal_lets_a_reader_see_each_committed_trial(tmp_path: Path) -> None:
    with TrialStore.create(tmp_path / "s.db", CONFIG) as store:
        reader = sqlite3.connect(tmp_path / "s.db")
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        for n in range(1, 4):
            store.add_trial(trial(n))
            assert reader.execute("SELECT COUNT(*) FROM trials").fetchone() == (n,)
        reader.close()
