"""The dataset registry: embedded sets, CIFAR-10 and PTB fixtures made here, errors.

Nothing is downloaded: CIFAR-10 is a fake folder in torchvision's pickle format and PTB
is a few lines of text, both written into tmp_path.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from nasforge.grammar.errors import NasforgeError
from nasforge.runtime.data import (
    CIFAR_FILES,
    DATASETS,
    ImageData,
    TextData,
    batchify,
    image_batches,
    load_dataset,
    split_indices,
)
from nasforge.runtime.errors import DataError
from torchvision import transforms as T

CIFAR_PER_BATCH = 20  # 5 training batches -> 100 images; the real set has 10,000 each


def make_cifar(root: Path, per_batch: int = CIFAR_PER_BATCH, seed: int = 0) -> Path:
    """A fake cifar-10-batches-py folder in torchvision's pickle format."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in CIFAR_FILES[:-1]:
        batch = {
            "batch_label": name,
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return root


def make_ptb(root: Path, *, char: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    prefix = "ptb.char." if char else "ptb."
    (root / f"{prefix}train.txt").write_text(" the cat sat \n a dog ran <unk> \n\n the dog sat \n")
    (root / f"{prefix}valid.txt").write_text(" the cat ran \n a zebra sat \n")
    (root / f"{prefix}test.txt").write_text(" a cat \n")
    return root


def test_registry_names() -> None:
    assert list(DATASETS) == ["digits", "mnist5k", "cifar10", "ptb", "ptb-char"]


def test_digits_split_shapes_and_normalisation() -> None:
    data = load_dataset("digits", seed=0)
    assert isinstance(data, ImageData)
    assert (data.input_shape, data.classes) == ((1, 8, 8), 10)
    x, y = data.train.tensors  # type: ignore[attr-defined]
    assert x.shape == (1497, 1, 8, 8) and len(data.val) == 300  # type: ignore[arg-type]
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x.std()) == pytest.approx(1.0, abs=1e-3)


def test_image_splits_are_fixed_by_seed() -> None:
    a, b, c = (load_dataset("digits", seed=s) for s in (3, 3, 4))
    assert torch.equal(a.val.tensors[0], b.val.tensors[0])  # type: ignore[union-attr]
    assert not torch.equal(a.val.tensors[0], c.val.tensors[0])  # type: ignore[union-attr]
    train, val = split_indices(10, 3, seed=1)
    assert sorted([*train, *val]) == list(range(10)) and len(val) == 3


def test_mnist5k_split() -> None:
    data = load_dataset("mnist5k", seed=0)
    assert isinstance(data, ImageData)
    assert (data.input_shape, data.classes) == ((1, 28, 28), 10)
    assert (len(data.train), len(data.val)) == (4500, 500)  # type: ignore[arg-type]
    assert len(set(data.val.tensors[1].tolist())) == 10  # type: ignore[attr-defined]


def test_cifar10_fixture_split_and_transforms(tmp_path: Path) -> None:
    root = make_cifar(tmp_path / "cifar")
    data = load_dataset("cifar10", data_dir=root, seed=0)
    assert isinstance(data, ImageData)
    assert (data.input_shape, data.classes) == ((3, 32, 32), 10)
    assert (len(data.train), len(data.val)) == (90, 10)  # type: ignore[arg-type]  # 9/10, as 45,000/5,000
    # Whitening statistics: per channel over the training split, pixels in [0, 1].
    images = data.train.images  # type: ignore[attr-defined]
    pixels = images[data.train.indices].reshape(-1, 3) / 255.0  # type: ignore[attr-defined]
    assert data.mean == pytest.approx(tuple(pixels.mean(0)))
    assert data.std == pytest.approx(tuple(pixels.std(0)))
    steps = data.train.transform.transforms  # type: ignore[attr-defined]
    assert [type(t) for t in steps] == [
        T.Resize, T.RandomCrop, T.RandomHorizontalFlip, T.ToTensor, T.Normalize
    ]  # fmt: skip
    assert steps[0].size == 40 and steps[1].size == (32, 32) and steps[2].p == 0.5
    image, label = data.train[0]
    assert image.shape == (3, 32, 32) and 0 <= label < 10
    # Validation: normalisation only, so the exact pixels come back.
    val_image, _ = data.val[0]
    raw = images[data.val.indices[0]]  # type: ignore[attr-defined]  # HWC uint8
    expected = (
        torch.from_numpy(raw).permute(2, 0, 1) / 255.0 - torch.tensor(data.mean)[:, None, None]
    ) / torch.tensor(data.std)[:, None, None]
    assert torch.allclose(val_image, expected, atol=1e-5)
    # The same path also accepts the cifar-10-batches-py folder itself.
    again = load_dataset("cifar10", data_dir=root / "cifar-10-batches-py", seed=0)
    assert len(again.train) == 90  # type: ignore[arg-type]
    x, y = next(image_batches(data.train, 16, shuffle=True, drop_last=True))
    assert x.shape == (16, 3, 32, 32) and y.shape == (16,)
    assert pickle.loads(pickle.dumps(data.train)).indices.tolist() == data.train.indices.tolist()  # type: ignore[attr-defined]


def test_cifar10_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("cifar10")
    assert str(info.value) == (
        "cifar10 needs --data-dir: a folder holding cifar-10-batches-py/ (the 'python version' "
        "of CIFAR-10), or add --download to fetch it into that folder (163 MB)"
    )
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", data_dir=missing)
    assert str(info.value) == (
        f"cifar10: data folder {missing} does not exist; --data-dir must point to a folder "
        "holding cifar-10-batches-py/, or add --download to fetch CIFAR-10 into it"
    )
    root = make_cifar(tmp_path / "cifar")
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", data_dir=root)
    assert str(info.value) == (
        f"cifar10: {root / 'cifar-10-batches-py' / 'data_batch_3'} is missing; --data-dir must "
        "point to a folder holding cifar-10-batches-py/ with data_batch_1, data_batch_2, "
        "data_batch_3, data_batch_4, data_batch_5, test_batch, batches.meta, or add --download "
        "to fetch CIFAR-10 into it"
    )
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="holds a malformed batch file"):
        load_dataset("cifar10", data_dir=root)


def test_ptb_word_level(tmp_path: Path) -> None:
    data = load_dataset("ptb", data_dir=make_ptb(tmp_path / "ptb"))
    assert isinstance(data, TextData)
    assert data.vocab == ["the", "cat", "sat", "<eos>", "a", "dog", "ran", "<unk>"]
    assert data.train.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 3, 0, 5, 2, 3]  # blank line skipped
    assert data.val.tolist() == [0, 1, 6, 3, 4, 7, 2, 3]  # 'zebra' -> <unk>
    assert data.test is not None and data.test.tolist() == [4, 1, 3]
    assert batchify(data.train, 2).shape == (6, 2)


def test_ptb_char_level_and_optional_test(tmp_path: Path) -> None:
    root = make_ptb(tmp_path / "ptb", char=True)
    (root / "ptb.char.test.txt").unlink()
    data = load_dataset("ptb-char", data_dir=root)
    assert isinstance(data, TextData) and data.test is None
    assert data.vocab[:4] == ["the", "cat", "sat", "<eos>"]


def test_ptb_errors(tmp_path: Path) -> None:
    how = (
        "--data-dir must point to a folder holding ptb.train.txt, ptb.valid.txt, ptb.test.txt "
        "(Mikolov's Penn Treebank language-model files; the test file is optional)"
    )
    with pytest.raises(DataError) as info:
        load_dataset("ptb")
    assert str(info.value) == f"ptb needs --data-dir; {how}"
    root = make_ptb(tmp_path / "ptb")
    (root / "ptb.train.txt").unlink()
    with pytest.raises(DataError) as info:
        load_dataset("ptb", data_dir=root)
    assert str(info.value) == f"ptb: {root / 'ptb.train.txt'} is missing; {how}"
    (root / "ptb.train.txt").write_text("the cat\n")  # no <unk>: 'dog' cannot be mapped
    with pytest.raises(DataError, match="has the word 'ran', which is not in the training"):
        load_dataset("ptb", data_dir=root)
    (root / "ptb.train.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(DataError, match="is not UTF-8 text"):
        load_dataset("ptb", data_dir=root)


def test_unknown_dataset_and_download_elsewhere() -> None:
    with pytest.raises(DataError) as info:
        load_dataset("imagenet")
    assert str(info.value) == (
        "unknown dataset 'imagenet'; choose one of digits, mnist5k, cifar10, ptb, ptb-char, "
        "or give a path: a folder of images in class sub-folders, an .npz file, or a folder "
        "with train.txt and valid.txt (`nasforge datasets` lists them)"
    )
    with pytest.raises(DataError, match="--download applies to cifar10 only"):
        load_dataset("digits", download=True)
    assert issubclass(DataError, NasforgeError)


def test_cifar10_fixture_trains_through_the_data_loader(tmp_path: Path) -> None:
    from nasforge.grammar import parse
    from nasforge.runtime.train import train_arch

    data = load_dataset("cifar10", data_dir=make_cifar(tmp_path / "cifar"), seed=0)
    arch = parse("cnn input 3x32x32 classes 10; L1: conv 3x3 s2x2 n4; L2: maxpool 2x2 s2x2 <- L1")
    result = train_arch(arch, data, epochs=1, batch_size=32)
    assert len(result.metrics) == 1 and 0.0 <= result.metrics[0]["val_acc"] <= 1.0
