"""Training-time augmentation (`--augment crop,flip,cutout`, `--cutout N`): each changes
the training inputs as runtime/augment.py states, off means off, the same seed gives the
same batches, metrics.json names what was used, and bad values exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_runner import run
from nasforge.runtime.augment import Augmentation, batch_augmenter, resolve
from nasforge.runtime.data import load_dataset
from nasforge.runtime.errors import DataError
from nasforge.runtime.train import ImageConfig, train_image
from nasforge.runtime.userdata import UserDataOptions
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DIGITS_ARCH = ROOT / "examples" / "digits_cnn.arch"
MEAN, STD = (0.25, 0.5, 0.75), (0.5, 0.25, 0.125)
SHAPE = (3, 8, 8)


def images(n: int = 64) -> torch.Tensor:
    """Distinct positive values everywhere, so that a zero is padding or cutout, nothing else."""
    return torch.arange(1, n * 3 * 64 + 1, dtype=torch.float32).view(n, *SHAPE)


def augmented(augmentation: Augmentation, batch: torch.Tensor, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return batch_augmenter(augmentation, SHAPE, MEAN, STD)(batch)


def test_defaults_follow_the_image_size() -> None:
    assert resolve(["crop", "cutout"], None, (3, 32, 32)) == Augmentation(crop=4, cutout=16)
    assert resolve(["crop", "flip"], None, (1, 8, 8)) == Augmentation(crop=1, flip=True)
    assert resolve([], 3, (1, 8, 8)) == Augmentation(cutout=3)  # --cutout implies cutout
    assert resolve([], None, (1, 8, 8)) is None
    with pytest.raises(DataError, match=r"--cutout 9: the square must be 1..8 pixels"):
        resolve(["cutout"], 9, (1, 8, 8))
    with pytest.raises(DataError, match="unknown blur"):
        resolve(["blur"], None, (1, 8, 8))


def test_flip_mirrors_some_images_and_leaves_the_others() -> None:
    batch = images()
    out = augmented(Augmentation(flip=True), batch)
    mirrored = [bool(torch.equal(o, b.flip(-1))) for o, b in zip(out, batch, strict=True)]
    kept = [bool(torch.equal(o, b)) for o, b in zip(out, batch, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 10 < sum(mirrored) < 54  # p = 0.5 over 64 images


def test_crop_takes_a_window_of_the_black_padded_image() -> None:
    batch = images()
    out = augmented(Augmentation(crop=2), batch)
    black = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)]).view(3, 1, 1)
    shifted = 0
    for image, result in zip(batch, out, strict=True):
        padded = black.expand(3, 12, 12).clone()
        padded[:, 2:10, 2:10] = image
        windows = [(dy, dx) for dy in range(5) for dx in range(5)]
        hits = [
            w for w in windows if torch.equal(padded[:, w[0] : w[0] + 8, w[1] : w[1] + 8], result)
        ]
        assert hits, "each output is an 8x8 window of the padded image"
        shifted += hits[0] != (2, 2)
    assert shifted > 32  # 24 of the 25 windows are shifted


def test_cutout_zeroes_one_clipped_square_and_nothing_else() -> None:
    batch = images()
    out = augmented(Augmentation(cutout=4), batch)
    for image, result in zip(batch, out, strict=True):
        zeroed = (result == 0).all(dim=0)
        assert torch.equal(result[:, ~zeroed], image[:, ~zeroed])
        rows, cols = zeroed.any(dim=1).nonzero(), zeroed.any(dim=0).nonzero()
        height, width = len(rows), len(cols)
        assert 2 <= height <= 4 and 2 <= width <= 4  # clipped at a border, at least half
        assert int(zeroed.sum()) == height * width  # one rectangle


def test_same_seed_same_batches_other_seed_other_batches() -> None:
    everything = Augmentation(crop=1, flip=True, cutout=3)
    batch = images()
    first, again = augmented(everything, batch, seed=5), augmented(everything, batch, seed=5)
    assert torch.equal(first, again)
    assert not torch.equal(first, augmented(everything, batch, seed=6))


class Recorder(nn.Module):
    """A linear classifier that keeps every training input it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.append(x.detach().clone())
        return self.linear(x.flatten(1))


def training_inputs(options: UserDataOptions, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(what one epoch on the digits fed the model, the training split's images)."""
    data = load_dataset("digits", seed=0, options=options)
    model = Recorder()
    torch.manual_seed(seed)
    train_image(model, data, ImageConfig(epochs=1, seed=seed))
    return torch.cat(model.seen), data.train.tensors[0]  # type: ignore[attr-defined]


def as_rows(x: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(row.tolist()) for row in x.flatten(1)}


def test_off_means_off_and_flip_flips_in_training() -> None:
    seen, train = training_inputs(UserDataOptions())
    assert as_rows(seen) <= as_rows(train)  # the very training images, untouched
    seen, train = training_inputs(UserDataOptions(augment=("flip",)))
    originals, mirrors = as_rows(train), as_rows(train.flip(-1))
    rows = [tuple(row.tolist()) for row in seen.flatten(1)]
    assert all(row in originals or row in mirrors for row in rows)
    assert sum(row not in originals for row in rows) > len(rows) // 4
    again, _ = training_inputs(UserDataOptions(augment=("flip",)))
    assert torch.equal(seen, again)


def test_metrics_name_each_augmentation(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run(
        "train", DIGITS_ARCH, "--dataset", "digits", "--epochs", "1", "--out", out,
        "--augment", "cutout,crop,flip", "--cutout", "4", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["augment"] == {"crop": {"padding": 1}, "flip": {"p": 0.5}, "cutout": {"size": 4}}
    result = run(
        "train", DIGITS_ARCH, "--dataset", "digits", "--epochs", "1", "--out", out,
        "--overwrite", "--no-progress",
    )  # fmt: skip
    assert json.loads((out / "metrics.json").read_text())["augment"] == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--augment", "crop,blur"], "Invalid value for '--augment': 'crop,blur': unknown blur"),
        (["--augment", ","], "no names; give a comma-separated list of crop, flip, cutout"),
        (["--cutout", "0"], "Invalid value for '--cutout'"),
        (["--cutout", "9"], "--cutout 9: the square must be 1..8 pixels, the images being 8x8"),
    ],
)
def test_bad_values_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(
        "train", DIGITS_ARCH, "--dataset", "digits", "--epochs", "1", "--out", tmp_path / "o",
        *args,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_search_records_the_augmentation_in_its_identity(tmp_path: Path) -> None:
    from nasforge.runtime.search.config import SearchConfig

    base = {"space": "digits", "trials": 1, "dataset": "digits"}
    plain = SearchConfig.create(**base)
    flipped = SearchConfig.create(**base, data_options={"augment": ["flip"]})
    assert flipped.resume_differences(plain.stored())  # another search: no resume across
    assert flipped.stored()["data_options"] == {"augment": ["flip"]}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_text("the cat sat on the mat\n" * 5)
    (corpus / "valid.txt").write_text("the cat sat\n")
    result = run(
        "search", "--space", "ptb_rnn", "--dataset", corpus, "--augment", "flip",
        "--trials", "1", "--out", tmp_path / "s", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--augment and --cutout apply to images; corpus is text" in result.output
