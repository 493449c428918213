"""A model too large for the machine is refused before it is built; a child that trains to
no use (infinite perplexity, chance accuracy) is recorded as diverged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from nasforge.codegen.cost import cost
from nasforge.grammar import parse, to_text
from nasforge.runtime.cli import cli
from nasforge.runtime.data import ImageData, TextData, load_dataset
from nasforge.runtime.errors import TooLarge, TrainingFailed
from nasforge.runtime.memory import available_bytes, check_fits, memory_need
from nasforge.runtime.search.evaluators import TrainEvaluator
from nasforge.runtime.train import train_arch
from torch import nn

# 30 layers of 4,096 15x15 filters, each reading every layer before it: 1.6 trillion
# parameters (6 TiB of float32), a valid architecture no machine can build.
HUGE = "cnn input 1x8x8 classes 10\n" + "".join(
    f"L{i}: conv 15x15 n4096{' <- ' + ' '.join(f'L{j}' for j in range(1, i)) if i > 1 else ''}\n"
    for i in range(1, 31)
)
RNN = "rnn base 2; N0: add tanh; N1: mul relu; N2: mul sigmoid; inject N0: add relu; cell N1"
TINY_CNN = "cnn input 1x8x8 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8 <- L1"


@pytest.fixture(scope="module")
def digits() -> ImageData:
    data = load_dataset("digits", seed=0)
    assert isinstance(data, ImageData)
    return data


def must_not_build(**kwargs: object) -> nn.Module:
    raise AssertionError("build_model was called for a model that cannot fit")


def test_the_huge_architecture_is_valid_and_counted() -> None:
    counted = cost(parse(HUGE))
    assert counted.params > 10**12


def test_free_memory_is_known_here() -> None:
    free = available_bytes("cpu")
    assert free is not None and free > 0


def test_the_need_is_a_lower_bound_of_what_building_takes() -> None:
    need = memory_need(parse(TINY_CNN), {}, batch=64, copies=3)
    assert need is not None
    assert need.weight_bytes == cost(parse(TINY_CNN)).params * 3 * 4
    # A model that fits is not refused.
    check_fits(parse(TINY_CNN), {}, device="cpu", batch=64, copies=3)


def test_train_arch_refuses_before_building(digits: ImageData) -> None:
    with pytest.raises(TrainingFailed) as caught:
        train_arch(parse(HUGE), digits, epochs=1, build=must_not_build)
    assert caught.value.reason == "too_large"
    assert isinstance(caught.value, TooLarge)
    message = str(caught.value)
    assert message.startswith("the model is too large for training on cpu: it needs at least ")
    assert "1,642,071,224,330 parameters x 3 copies" in message
    assert message.endswith("is free; nothing was built")


def test_a_search_records_it_as_a_failed_trial() -> None:
    evaluator = TrainEvaluator("digits", epochs=1)
    outcome = evaluator.evaluate(to_text(parse(HUGE), one_line=True))
    assert outcome.status == "failed"
    assert outcome.metrics["reason"] == "too_large"
    assert outcome.parameters == cost(parse(HUGE)).params
    assert outcome.error is not None and "too large for training" in outcome.error


def test_train_and_export_refuse_it_with_exit_2(tmp_path: Path) -> None:
    arch = tmp_path / "huge.arch"
    arch.write_text(HUGE, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["train", str(arch), "--dataset", "digits", "--epochs", "1", "--out", str(out)],
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("nasforge: error: the model is too large for training on ")
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["export", str(arch), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("nasforge: error: the model is too large for an ONNX export")
    assert not (tmp_path / "m.onnx").exists()


def test_an_oversized_language_model_override_is_refused() -> None:
    text = TextData(
        "toy",
        [str(i) for i in range(50)],
        torch.arange(400) % 50,
        torch.arange(200) % 50,
        None,
        "toy",
    )
    rnn = parse(RNN)
    with pytest.raises(TooLarge):
        train_arch(rnn, text, epochs=1, overrides={"hidden_size": 10**8}, build=must_not_build)


# --- diverged children -----------------------------------------------------------


class Constant(nn.Module):
    """An image model that ignores its input and is sure of class 0, as blown-up weights are."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(10))
        self.register_buffer("sure", torch.tensor([1e4] + [0.0] * 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.bias + self.sure).expand(x.shape[0], 10) + 0.0 * x.flatten(1)[:, :1]


def test_an_image_model_that_ends_at_chance_has_diverged(digits: ImageData) -> None:
    with pytest.raises(TrainingFailed) as caught:
        train_arch(parse(TINY_CNN), digits, epochs=1, build=lambda **kw: Constant())
    assert caught.value.reason == "diverged"
    assert "no more accurate than always answering the most common class" in str(caught.value)


class Confidently(nn.Module):
    """A language model sure of token 0 whatever it reads: infinite perplexity elsewhere."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, state: object = None) -> tuple[torch.Tensor, object]:
        logits = torch.zeros(*x.shape, self.vocab_size) + self.weight
        logits[..., 0] = 1e5
        return logits, state


def test_a_language_model_with_infinite_perplexity_has_diverged() -> None:
    tokens = torch.arange(1, 2001) % 49 + 1  # never token 0
    text = TextData("toy", [str(i) for i in range(50)], tokens, tokens[:700], None, "toy")
    rnn = parse(RNN)
    with pytest.raises(TrainingFailed) as caught:
        train_arch(rnn, text, epochs=1, build=lambda **kw: Confidently(kw["vocab_size"]))
    assert caught.value.reason == "diverged"
    assert "validation perplexity is inf" in str(caught.value)


def test_train_records_a_diverged_child_in_metrics_json(tmp_path: Path) -> None:
    # lr 100 blows the weights up without a NaN: every answer ends the same.
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["train", "--arch", "cnn input 1x8x8 classes 10; L1: conv 3x3 n4", "--dataset",
         "digits", "--epochs", "1", "--out", str(out), "--lr", "100", "--threads", "1",
         "--device", "cpu", "--seed", "0"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "nasforge: error: training failed (diverged) in epoch 1: " in result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged"
    assert metrics["failure"]["reason"] == "diverged"
    assert "most common class" in metrics["failure"]["message"]
    assert not (out / "weights.pt").exists()
