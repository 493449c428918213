"""The user's own data sets (`--dataset PATH`): a folder of PNGs, an .npz and a text
folder made here from scikit-learn's digits and a few sentences; every bad input's
error (exit 2, before anything trains)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_runner import run
from nasforge.runtime.data import ImageData, TextData, load_dataset
from nasforge.runtime.errors import DataError
from nasforge.runtime.userdata import UserDataOptions
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DIGITS_ARCH = ROOT / "examples" / "digits_cnn.arch"
RNN_ARCH = ROOT / "examples" / "rnn_fig5_base2.arch"
PER_CLASS = 60  # 600 images of 10 classes: well above chance in 8 epochs (0.1 s each)
SENTENCES = [
    "the cat sat on the mat",
    "a dog ran to the park",
    "the dog sat on a log",
    "a cat ran to the mat",
] * 5


def digits(per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """The first `per_class` 8x8 digits of each class as uint8 pixels (0..255) and labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    chosen = np.concatenate([np.flatnonzero(bunch.target == c)[:per_class] for c in range(10)])
    pixels = np.round(bunch.images[chosen] * 255 / 16).astype(np.uint8)
    return pixels, bunch.target[chosen].astype(np.int64)


def write_pngs(root: Path, pixels: np.ndarray, labels: np.ndarray, mode: str = "L") -> Path:
    for i, (image, label) in enumerate(zip(pixels, labels, strict=True)):
        folder = root / f"digit{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").convert(mode).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pngs(tmp_path_factory.mktemp("data") / "imgs", *digits())


def text_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "train.txt").write_text("\n".join(SENTENCES) + "\n")
    (root / "valid.txt").write_text("the cat ran to a zebra\n" * 3)
    return root


def refused(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


# --- loading ---------------------------------------------------------------------


def test_image_folder_loads_as_the_pngs_hold(image_folder: Path) -> None:
    pixels, _ = digits()
    data = load_dataset(str(image_folder), seed=3)
    assert isinstance(data, ImageData)
    assert data.input_shape == (1, 8, 8) and data.classes == 10
    assert data.class_names == tuple(f"digit{c}" for c in range(10))
    assert len(data.train) == 480 and len(data.val) == 120  # --val-fraction 0.2
    train_x = data.train.tensors[0].numpy()
    # Undoing the normalisation gives back the PNGs' pixels / 255.
    raw = train_x * data.std[0] + data.mean[0]
    assert abs(float(train_x.mean())) < 1e-5 and abs(float(train_x.std()) - 1) < 1e-4
    every = np.sort(
        np.concatenate([raw, data.val.tensors[0].numpy() * data.std[0] + data.mean[0]]).ravel()
    )
    assert np.allclose(every, np.sort(pixels.ravel() / 255.0), atol=1e-5)
    again = load_dataset(str(image_folder), seed=3)
    assert np.array_equal(again.val.tensors[1].numpy(), data.val.tensors[1].numpy())
    other = load_dataset(str(image_folder), seed=4)
    assert not np.array_equal(other.val.tensors[1].numpy(), data.val.tensors[1].numpy())


def test_image_folder_channels_resize_and_own_split(tmp_path: Path) -> None:
    pixels, labels = digits(per_class=4)
    write_pngs(tmp_path / "own" / "train", pixels[::2], labels[::2], mode="RGB")
    write_pngs(tmp_path / "own" / "val", pixels[1::2], labels[1::2], mode="RGB")
    data = load_dataset(str(tmp_path / "own"))
    assert data.input_shape == (3, 8, 8) and (len(data.train), len(data.val)) == (20, 20)
    grey = load_dataset(str(tmp_path / "own"), options=UserDataOptions(channels=1, resize=(16, 12)))
    assert grey.input_shape == (1, 16, 12)


def test_npz_both_layouts_and_its_own_validation(tmp_path: Path) -> None:
    pixels, labels = digits(per_class=10)
    np.savez(tmp_path / "nhwc.npz", x=pixels[..., None], y=labels)
    np.savez(tmp_path / "nchw.npz", x=pixels[:, None], y=labels)
    a = load_dataset(str(tmp_path / "nhwc.npz"))
    b = load_dataset(str(tmp_path / "nchw.npz"))
    assert "N,H,W,C assumed" in a.description and "N,C,H,W assumed" in b.description
    assert a.input_shape == b.input_shape == (1, 8, 8)
    assert np.array_equal(a.train.tensors[0].numpy(), b.train.tensors[0].numpy())
    np.savez(
        tmp_path / "val.npz",
        x=pixels[:80, None],
        y=labels[:80],
        x_val=pixels[80:, None],
        y_val=labels[80:],
    )
    c = load_dataset(str(tmp_path / "val.npz"))
    assert (len(c.train), len(c.val)) == (80, 20)


def test_text_folder_words_and_chars(tmp_path: Path) -> None:
    folder = text_folder(tmp_path / "corpus")
    words = load_dataset(str(folder))
    assert isinstance(words, TextData)
    assert words.vocab[:3] == ["the", "cat", "sat"] and "<unk>" in words.vocab
    assert words.vocab[int(words.val[5])] == "<unk>"  # zebra is not in the training text
    chars = load_dataset(str(folder), options=UserDataOptions(chars=True))
    assert chars.vocab[:4] == ["t", "h", "e", "_"]


# --- train and search ------------------------------------------------------------


def test_train_on_an_image_folder_an_npz_and_a_text_folder(
    image_folder: Path, tmp_path: Path
) -> None:
    import json

    np.savez(tmp_path / "d.npz", x=digits()[0][:, None], y=digits()[1])
    for name, data in (("imgs", image_folder), ("npz", tmp_path / "d.npz")):
        result = run(
            "train",
            DIGITS_ARCH,
            "--dataset",
            data,
            "--epochs",
            "8",
            "--out",
            tmp_path / name,
            "--no-progress",
        )
        assert result.exit_code == 0, result.output
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics["status"] == "ok" and len(metrics["mean"]) == 1
        assert metrics["epochs"][-1]["val_acc"] > 0.6  # chance is 0.1
        assert f"data: {data}: " in result.output
    assert metrics["class_names"] == [str(label) for label in range(10)]  # an .npz: labels
    assert "(N,C,H,W assumed)" in metrics["dataset_description"]
    folder_metrics = json.loads((tmp_path / "imgs" / "metrics.json").read_text())
    assert folder_metrics["class_names"][0] == "digit0"
    corpus = text_folder(tmp_path / "corpus")
    result = run(
        "train",
        RNN_ARCH,
        "--dataset",
        corpus,
        "--epochs",
        "1",
        "--out",
        tmp_path / "lm",
        "--no-progress",
        "--model-arg",
        "hidden_size=16",
        "--model-arg",
        "embed_size=16",
        "--batch-size",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "lm" / "vocab.txt").read_text().split()[:2] == ["the", "cat"]


def test_search_on_an_image_folder(image_folder: Path, tmp_path: Path) -> None:
    import json

    result = run(
        "search",
        "--space",
        "digits",
        "--dataset",
        image_folder,
        "--trials",
        "4",
        "--epochs",
        "1",
        "--out",
        tmp_path / "s",
        "--no-progress",
        "--no-onnx",
        "--val-fraction",
        "0.25",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["best"]["arch"].startswith("cnn input 1x8x8 classes 10")
    report = (tmp_path / "s" / "report.md").read_text()
    assert "trials: 4 of 4;" in report and " 0 failed;" in report
    from nasforge.runtime.search.evaluators import make_evaluator

    options = {"val_fraction": 0.25, "resize": "4x4"}
    evaluator = make_evaluator("train", dataset=str(image_folder), data_options=options)
    assert len(evaluator.data().val) == 150 and evaluator.data().input_shape == (1, 4, 4)
    # The store records the data options: resuming with another split is refused.
    other = refused(
        "search",
        "--space",
        "digits",
        "--dataset",
        image_folder,
        "--trials",
        "5",
        "--epochs",
        "1",
        "--out",
        tmp_path / "s",
        "--resume",
        "--no-progress",
    )
    assert "{'val_fraction': 0.25}" in other
    refusal = refused(
        "search",
        "--space",
        "digits",
        "--dataset",
        tmp_path / "rgb",
        "--trials",
        "1",
        "--out",
        tmp_path / "s2",
    )
    assert "no such file or folder" in refusal


# --- bad input: exit 2 before anything trains ------------------------------------


def bad(path: Path, options: UserDataOptions | None = None) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(str(path), options=options)
    return str(info.value)


def test_bad_folders(tmp_path: Path) -> None:
    pixels, labels = digits(per_class=2)
    assert "no such file or folder" in bad(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert "no class sub-folders" in bad(tmp_path / "empty")
    write_pngs(tmp_path / "one", pixels[:2], labels[:2])
    assert "one class only (digit0/)" in bad(tmp_path / "one")
    write_pngs(tmp_path / "hollow", pixels, labels)
    (tmp_path / "hollow" / "zzz").mkdir()
    assert "class folder " + str(tmp_path / "hollow" / "zzz") + " holds no images" in bad(
        tmp_path / "hollow"
    )
    corrupt = write_pngs(tmp_path / "corrupt", pixels, labels)
    (corrupt / "digit3" / "broken.png").write_bytes(b"not a png")
    message = bad(corrupt)
    assert "cannot read the image" in message and "broken.png" in message
    assert "--skip-bad-files" in message
    skipped = load_dataset(str(corrupt), options=UserDataOptions(skip_bad_files=True))
    assert "1 unreadable file(s) skipped" in skipped.description
    assert len(skipped.train) + len(skipped.val) == 20
    mixed = write_pngs(tmp_path / "mixed", pixels, labels)
    Image.new("L", (12, 10)).save(mixed / "digit9" / "big.png")
    message = bad(mixed)
    assert "is 8x8" in message and "big.png is 10x12" in message and "--resize" in message
    assert load_dataset(str(mixed), options=UserDataOptions(resize=(8, 8))).input_shape == (
        1,
        8,
        8,
    )


def test_bad_npz(tmp_path: Path) -> None:
    pixels, labels = digits(per_class=2)
    np.savez(tmp_path / "nox.npz", images=pixels, y=labels)
    assert "has no x array (it holds images, y)" in bad(tmp_path / "nox.npz")
    np.savez(tmp_path / "short.npz", x=pixels[:, None], y=labels[:-1])
    assert "x holds 20 images but y 19 labels" in bad(tmp_path / "short.npz")
    np.savez(tmp_path / "range.npz", x=pixels[:, None], y=labels + 1)
    assert "labels must be 0..classes-1" in bad(tmp_path / "range.npz")
    assert "found 1..10" in bad(tmp_path / "range.npz")
    np.savez(tmp_path / "layout.npz", x=np.zeros((4, 5, 8, 8)), y=np.arange(4) % 2)
    assert "neither axis 1 nor axis 3" in bad(tmp_path / "layout.npz")
    (tmp_path / "x.txt").write_text("hello")
    assert "must be a NumPy .npz" in bad(tmp_path / "x.txt")


def test_cli_refuses_bad_data_and_mismatched_architectures(
    image_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    message = refused(
        "train", DIGITS_ARCH, "--dataset", tmp_path / "nope", "--epochs", "1", "--out", out
    )
    assert "no such file or folder" in message
    assert "unknown dataset 'digitz'" in refused(
        "train", DIGITS_ARCH, "--dataset", "digitz", "--epochs", "1", "--out", out
    )
    rgb = write_pngs(tmp_path / "rgb16", *digits(per_class=2), mode="RGB")
    message = refused(
        "train", DIGITS_ARCH, "--dataset", rgb, "--resize", "16x16", "--epochs", "1", "--out", out
    )
    assert "input is 1x8x8" in message and "1x16x16" in message
    assert "write `input 1x16x16` in the architecture" in message
    pixels, labels = digits(per_class=2)
    np.savez(tmp_path / "three.npz", x=pixels[:, None], y=labels % 3)
    message = refused(
        "train", DIGITS_ARCH, "--dataset", tmp_path / "three.npz", "--epochs", "1", "--out", out
    )
    assert "has 10 classes but three.npz has 3" in message and "classes 3" in message
    message = refused("train", RNN_ARCH, "--dataset", image_folder, "--epochs", "1", "--out", out)
    assert "language model" in message
    space = tmp_path / "digits10.toml"  # a space file keeps its 10 classes
    space.write_text((ROOT / "controller" / "spaces" / "digits.toml").read_text())
    message = refused(
        "search",
        "--space",
        space,
        "--dataset",
        tmp_path / "three.npz",
        "--trials",
        "1",
        "--out",
        tmp_path / "s",
    )
    assert "cannot train on --dataset" in message and "3 classes" in message
    assert not out.exists() and not (tmp_path / "s" / "search.db").exists()


def test_datasets_lists_the_builtins_and_the_path_forms() -> None:
    from nasforge.runtime.choices import BUILTIN_DATASETS
    from nasforge.runtime.data import DATASETS

    assert [row[0] for row in BUILTIN_DATASETS] == list(DATASETS)

    result = run("datasets")
    assert result.exit_code == 0
    for name in DATASETS:
        assert f"  {name} " in result.output
    assert "FILE.npz" in result.output and "train.txt" in result.output
