"""SearchConfig: validated once, stored as the store's config, compared on --resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from nasforge.runtime.choices import DATASET_NAMES, DEVICE_CHOICES
from nasforge.runtime.search.config import IDENTITY, ConfigError, SearchConfig

# The config JSON a store written before this class existed holds (every key but backend
# and the Ray settings, which came later).
OLD_STORED = {
    "space": "nb201",
    "strategy": "random",
    "options": {},
    "evaluator": "table",
    "dataset": None,
    "epochs": None,
    "seed": 0,
    "batch": 4,
    "trials": 8,
    "workers": 1,
    "device": "auto",
    "timeout": None,
}


def table_config(table: Path, **given: object) -> SearchConfig:
    return SearchConfig.create(
        **{"space": "nb201", "trials": 8, "strategy": "random", "evaluator": "table"}
        | {"table": str(table), "batch": 4, **given}
    )


def test_choices_agree_with_the_registries() -> None:
    from nasforge.runtime.data import DATASETS
    from nasforge.runtime.devices import resolve_device

    assert tuple(DATASETS) == DATASET_NAMES
    with pytest.raises(Exception, match="choose one of auto, cpu, cuda"):
        resolve_device("tpu")
    assert DEVICE_CHOICES == ("auto", "cpu", "cuda")


def test_create_drops_what_the_other_evaluator_uses(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("arch\n")
    config = table_config(table, dataset="digits", epochs=3)
    assert config.dataset is None and config.epochs is None
    assert config.table == str(table.resolve())
    trained = SearchConfig.create(space="digits", trials=2, dataset="digits", epochs=2)
    assert trained.table is None and trained.epochs == 2


def test_ray_settings_get_defaults_and_need_the_ray_backend(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("arch\n")
    with pytest.raises(ConfigError, match=r"^--replicas, --cpus-per-child need --backend ray$"):
        table_config(table, replicas=2, cpus_per_child=1.0)
    ray = table_config(table, backend="ray", strategy="reinforce")
    assert (ray.replicas, ray.children, ray.ps_shards, ray.batch) == (1, 4, 1, 4)
    assert (ray.cpus_per_child, ray.gpus_per_child, ray.child_retries) == (1.0, 0.0, 2)
    assert ray.asynchronous and not table_config(table).asynchronous


def test_stored_config_keeps_the_store_format(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("arch\n")
    stored = table_config(table).stored()
    assert set(stored) == {*OLD_STORED, "table", "backend", "replicas", "children"} | {
        "data_options",
        "ps_shards",
        "cpus_per_child",
        "gpus_per_child",
        "child_retries",
        "budget",
    }
    assert set(IDENTITY) <= set(stored)
    assert "address" not in stored and "threads" not in stored


def test_resume_compares_identity_fields_with_old_defaults(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("arch\n")
    old = {**OLD_STORED, "table": str(table.resolve())}
    # An old store has no backend: it ran on the local one. More trials may be asked for.
    assert table_config(table, trials=20, workers=3).resume_differences(old) == []
    assert table_config(table, seed=1, batch=2).resume_differences(old) == [
        "--seed 1 (the stored search has 0)",
        "--batch 2 (the stored search has 4)",
    ]
    ray = table_config(table, backend="ray", strategy="random")
    assert ray.resume_differences(old)[0] == "--backend ray (the stored search has local)"


def test_resume_differences_name_the_options_as_the_command_line_spells_them(
    tmp_path: Path,
) -> None:
    table = tmp_path / "t.csv"
    table.write_text("arch\n")
    stored = {**OLD_STORED, "table": str(table.resolve()), "data_options": {"char": True}}
    config = table_config(table, options={"population": 5}, strategy="evolution")
    assert config.resume_differences({**stored, "strategy": "evolution"}) == [
        "--option {'population': 5} (the stored search has {})",
        "the data options (--val-fraction, --char, --resize, --skip-bad-files, --augment, "
        "--cutout) {} "
        "(the stored search has {'char': True})",
    ]
