"""Training recipes: real learning on digits and on a text fixture, typed failures, devices."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
from nasforge.codegen import load
from nasforge.grammar import parse
from nasforge.runtime.data import ImageData, TextData, load_dataset
from nasforge.runtime.devices import resolve_device, seed_everything
from nasforge.runtime.errors import DeviceError, IncompatibleData, TrainingFailed
from nasforge.runtime.train import (
    ImageConfig,
    LanguageConfig,
    check_compatible,
    classify_error,
    evaluate_language_model,
    train_arch,
    train_image,
    train_language_model,
)
from torch import nn
from torch.utils.data import TensorDataset

ROOT = Path(__file__).resolve().parent.parent
DIGITS_ARCH = ROOT / "examples" / "digits_cnn.arch"
RNN_ARCH = ROOT / "examples" / "rnn_fig5_base2.arch"
TINY_CNN = "cnn input 1x8x8 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8 <- L1"


@pytest.fixture(scope="module")
def digits() -> ImageData:
    data = load_dataset("digits", seed=0)
    assert isinstance(data, ImageData)
    return data


def tiny_images(poison: bool = False, channels: int = 1) -> ImageData:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, channels, 8, 8, generator=generator)
    y = torch.randint(0, 10, (64,), generator=generator)
    if poison:
        x[5, 0, 3, 3] = math.nan
    data = TensorDataset(x, y)
    return ImageData("tiny", (channels, 8, 8), 10, data, data, (0.0,), (1.0,), "random")


def test_digits_cnn_reaches_90_percent_in_three_epochs(digits: ImageData) -> None:
    """Learning fast is learning in little work: three passes over the 1,497 training
    images (the seconds an epoch takes: benchmarks/bench_runtime.py)."""
    arch = parse(DIGITS_ARCH.read_text(), str(DIGITS_ARCH))
    result = train_arch(arch, digits, epochs=3, seed=0)
    print(f"digits_cnn, 3 epochs: val acc {[m['val_acc'] for m in result.metrics]}")
    assert [m["epoch"] for m in result.metrics] == [1, 2, 3]
    assert max(m["val_acc"] for m in result.metrics) >= 0.90
    assert result.parameters == 37562 and result.kind == "image" and result.device == "cpu"
    assert result.reward == pytest.approx(max(m["val_acc"] for m in result.metrics) ** 3)
    assert set(result.metrics[0]) == {
        "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"
    }  # fmt: skip
    lrs = [m["lr"] for m in result.metrics]
    assert lrs[0] == pytest.approx(0.1) and lrs[0] > lrs[1] > lrs[2]  # cosine from 0.1


def test_architecture_lr_and_seed_determinism(digits: ImageData) -> None:
    arch = parse(TINY_CNN.replace("classes 10", "classes 10 lr 0.05"))
    a = train_arch(arch, digits, epochs=1, seed=7)
    b = train_arch(arch, digits, epochs=1, seed=7)
    assert a.metrics[0]["lr"] == pytest.approx(0.05)
    assert a.metrics[0]["train_loss"] == b.metrics[0]["train_loss"]
    assert a.metrics[0]["val_acc"] == b.metrics[0]["val_acc"]


def make_text(n_sentences: int, seed: int) -> list[str]:
    """Sentences of a tiny grammar: easy to learn, so perplexity must fall."""
    rng = random.Random(seed)
    nouns, verbs, adjectives = ["cat", "dog", "bird", "fish"], ["sees", "likes"], ["big", "red"]
    return [
        f"the {rng.choice(adjectives)} {rng.choice(nouns)} {rng.choice(verbs)} the {rng.choice(nouns)}"
        for _ in range(n_sentences)
    ]


def test_recurrent_cell_lowers_validation_perplexity(tmp_path: Path) -> None:
    (tmp_path / "ptb.train.txt").write_text("\n".join(make_text(400, 1)) + "\n")
    (tmp_path / "ptb.valid.txt").write_text("\n".join(make_text(60, 2)) + "\n")
    data = load_dataset("ptb", data_dir=tmp_path)
    assert isinstance(data, TextData) and data.vocab_size == 10
    arch = parse(RNN_ARCH.read_text())
    seed_everything(0)
    model = load(arch).build_model(
        vocab_size=data.vocab_size, embed_size=32, hidden_size=32, dropout=0.0
    )
    config = LanguageConfig(epochs=3, batch_size=8, lr=5.0)
    before = math.exp(evaluate_language_model(model, data.val, config, torch.device("cpu")))
    result = train_language_model(model, data, config)
    after = [m["val_ppl"] for m in result.metrics]
    print(f"validation perplexity {before:.2f} -> {after}, {result.seconds:.2f} s")
    assert before > 8.0 and min(after) < 0.5 * before and min(after) < 4.0
    assert result.reward == pytest.approx((80 / min(after)) ** 2)
    assert result.kind == "text"


def test_nan_loss_from_a_poisoned_input() -> None:
    model = load(parse(TINY_CNN)).build_model()
    with pytest.raises(TrainingFailed) as info:
        train_image(model, tiny_images(poison=True), ImageConfig(epochs=1, batch_size=16))
    assert info.value.reason == "nan_loss" and info.value.epoch == 1
    assert str(info.value).startswith("training failed (nan_loss) in epoch 1: the training loss")


def test_nan_loss_from_a_huge_learning_rate(digits: ImageData) -> None:
    arch = parse(TINY_CNN.replace("classes 10", "classes 10 lr 10"))
    model = load(arch).build_model()
    config = ImageConfig(epochs=3, lr=1e8, schedule="constant")
    with pytest.raises(TrainingFailed) as info:
        train_image(model, digits, config)
    assert info.value.reason == "nan_loss"


def test_shape_error_inside_the_model() -> None:
    model = load(parse(TINY_CNN)).build_model()  # expects 1 channel
    with pytest.raises(TrainingFailed) as info:
        train_image(model, tiny_images(channels=3), ImageConfig(epochs=1, batch_size=16))
    assert info.value.reason == "shape"
    assert "RuntimeError" in info.value.message and "channels" in info.value.message
    assert "<nasforge:" in info.value.message  # points at the generated line
    assert info.value.to_dict()["reason"] == "shape"


class Exploding(nn.Module):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
            "out_of_memory",
        ),
        (MemoryError(), "out_of_memory"),
        (
            RuntimeError("DefaultCPUAllocator: can't allocate memory: out of memory"),
            "out_of_memory",
        ),
        (ValueError("something else"), "runtime"),
        (ZeroDivisionError("division by zero"), "runtime"),
    ],
)
def test_failures_become_typed_errors(error: BaseException, reason: str) -> None:
    assert classify_error(error) == reason
    with pytest.raises(TrainingFailed) as info:
        train_image(Exploding(error), tiny_images(), ImageConfig(epochs=1, batch_size=16))
    assert info.value.reason == reason
    assert info.value.__cause__ is error


def test_incompatible_architecture_lists_both_shapes(digits: ImageData) -> None:
    arch = parse("cnn input 3x32x32 classes 10; L1: conv 3x3 n8")
    with pytest.raises(IncompatibleData) as info:
        train_arch(arch, digits, epochs=1)
    assert info.value.reason == "incompatible_data"
    assert info.value.message == (
        "the architecture's input is 3x32x32 but digits's images are 1x8x8; "
        "write `input 1x8x8` in the architecture"
    )
    with pytest.raises(IncompatibleData, match="has 5 classes but digits has 10"):
        check_compatible(parse(TINY_CNN.replace("classes 10", "classes 5")), digits)
    with pytest.raises(IncompatibleData, match="an rnn architecture is a language model"):
        check_compatible(parse(RNN_ARCH.read_text()), digits)


def test_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(DeviceError) as info:
        resolve_device("cuda")
    assert str(info.value).startswith("--device cuda: CUDA is not available on this machine")
    assert str(info.value).endswith("use --device cpu or --device auto")
