"""Spaces follow the data: a built-in image space takes the train evaluator's input shape
and class count (its proposals carry the data's header); a space that cannot hold the
data is refused before the first trial; a table search keeps the space as it is."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run
from nasforge.runtime.search.build import build_search
from nasforge.runtime.search.config import ConfigError, SearchConfig
from PIL import Image


def rgb_folder(root: Path, classes: int = 3, per_class: int = 4, size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    for label in range(classes):
        folder = root / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / f"{i}.png")
    return root


def built(tmp_path: Path, **given: object):  # -> Search
    config = SearchConfig.create(executor="inline", **given)  # type: ignore[arg-type]
    return build_search(config, tmp_path / "out", resume=False)


def test_the_digits_space_on_a_3x32x32_image_folder_just_works(tmp_path: Path) -> None:
    data = rgb_folder(tmp_path / "imgs")
    out = tmp_path / "s"
    result = run(
        "search", "--space", "digits", "--dataset", data, "--trials", "2", "--epochs", "1",
        "--executor", "inline", "--device", "cpu", "--out", out, "--no-progress", "--no-onnx",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with sqlite3.connect(out / "search.db") as db:
        rows = db.execute("SELECT arch, status FROM trials").fetchall()
    assert len(rows) == 2 and all(status == "ok" for _, status in rows)
    assert all(arch.startswith("cnn input 3x32x32 classes 3") for arch, _ in rows)
    assert (out / "best.arch").read_text().splitlines()[1] == "cnn input 3x32x32 classes 3"


def test_nb201_on_digits_takes_1x8x8_and_ten_classes(tmp_path: Path) -> None:
    search = built(tmp_path, space="nb201", trials=2, dataset="digits", device="cpu")
    try:
        assert (search.space.input_shape, search.space.classes) == ((1, 8, 8), 10)
        proposals = search.strategy.ask(2)
        assert all("input 1x8x8 classes 10" in p.arch for p in proposals)
    finally:
        search.close()


def test_a_table_search_keeps_its_space(tmp_path: Path, table: Path) -> None:
    search = built(tmp_path, space="nb201", trials=2, evaluator="table", table=str(table))
    try:
        assert (search.space.input_shape, search.space.classes) == ((3, 32, 32), 10)
        assert all("input 3x32x32 classes 10" in p.arch for p in search.strategy.ask(2))
    finally:
        search.close()


def test_a_space_that_cannot_hold_the_images_is_refused_before_any_trial(
    tmp_path: Path,
) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (6, 1, 1030, 2), dtype=np.uint8)
    np.savez(tmp_path / "tall.npz", x=pixels, y=np.arange(6) % 2)
    with pytest.raises(ConfigError) as caught:
        built(tmp_path, space="digits", trials=1, dataset=str(tmp_path / "tall.npz"))
    assert str(caught.value) == (
        f"--space digits cannot take --dataset {tmp_path / 'tall.npz'}'s images (1x1030x2, "
        "2 classes): input height is 1030; it must be between 1 and 1024. Resize the images "
        "(--resize HxW for a folder of images), or write a space file for them ('Search "
        "spaces' in grammar/README.md)"
    )
    assert not (tmp_path / "out" / "search.db").exists()
