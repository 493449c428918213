"""The train evaluator: a trained child's reward and cost; every child failure an Outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from nasforge.codegen import load
from nasforge.codegen.cost import cost
from nasforge.grammar import parse
from nasforge.grammar.errors import NasforgeError
from nasforge.runtime.search.evaluator import FAILED_REWARD
from nasforge.runtime.search.evaluators import TrainEvaluator, make_evaluator

TINY = "cnn input 1x8x8 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8 <- L1"


@pytest.fixture(scope="module")
def trainer() -> TrainEvaluator:
    return TrainEvaluator("digits", epochs=1, device="cpu", threads=1)


def test_a_child_is_trained_and_costed(trainer: TrainEvaluator, tmp_path: Path) -> None:
    trainer.weights_dir = str(tmp_path)
    try:
        outcome = trainer.evaluate(TINY, seed=3)
    finally:
        trainer.weights_dir = None
    assert outcome.status == "ok", outcome.error
    assert 0.0 < outcome.reward <= 1.0
    [epoch] = outcome.metrics["epochs"]
    assert outcome.reward == pytest.approx(epoch["val_acc"] ** 3)
    expected = cost(parse(TINY))
    assert (outcome.parameters, outcome.macs) == (expected.params, expected.macs)
    model = load(parse(TINY)).build_model()
    state = torch.load(tmp_path / outcome.metrics["weights"], weights_only=True)
    model.load_state_dict(state)  # the saved weights are this child's
    assert sum(p.numel() for p in model.parameters()) == outcome.parameters
    # The same seed trains the same child to the same reward.
    assert trainer.evaluate(TINY, seed=3).reward == outcome.reward


@pytest.mark.parametrize(
    ("arch", "reason", "words"),
    [
        ("cnn input 1x8x8 classes 10; L1: conv 3x3 n8 <- L7", "invalid", "L1 cannot read L7"),
        ("cnn input 3x32x32 classes 10; L1: conv 3x3 n8", "incompatible_data", "1x8x8"),
    ],
)
def test_a_failing_child_is_an_outcome(
    trainer: TrainEvaluator, arch: str, reason: str, words: str
) -> None:
    outcome = trainer.evaluate(arch)
    assert outcome.status == "failed"
    assert outcome.reward == FAILED_REWARD
    assert outcome.metrics["reason"] == reason
    assert words in (outcome.error or "")


def test_a_child_that_fails_to_train_keeps_its_cost(
    trainer: TrainEvaluator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasforge.runtime import train
    from nasforge.runtime.errors import TrainingFailed

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise TrainingFailed("out_of_memory", "CUDA out of memory", epoch=1)

    monkeypatch.setattr(train, "train_image", out_of_memory)
    outcome = trainer.evaluate(TINY)
    assert outcome.status == "failed" and outcome.reward == FAILED_REWARD
    assert outcome.metrics == {"reason": "out_of_memory", "epoch": 1}
    assert outcome.error == "training failed (out_of_memory) in epoch 1: CUDA out of memory"
    assert outcome.parameters == cost(parse(TINY)).params


def test_the_loaded_data_stays_out_of_the_pickle(trainer: TrainEvaluator) -> None:
    import pickle

    trainer.data()
    copy = pickle.loads(pickle.dumps(trainer))
    assert copy._data is None and trainer._data is not None
    assert copy.dataset == "digits" and copy.threads == 1


def test_make_evaluator_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(NasforgeError, match="needs --dataset"):
        make_evaluator("train")
    with pytest.raises(NasforgeError, match="needs --table PATH"):
        make_evaluator("table")
    with pytest.raises(NasforgeError, match="unknown evaluator 'oracle'; choose one of train, table"):
        make_evaluator("oracle")
    with pytest.raises(NasforgeError, match="cifar10 needs --data-dir"):
        make_evaluator("train", dataset="cifar10")
    with pytest.raises(NasforgeError, match="cannot read the table"):
        make_evaluator("table", table=tmp_path / "absent.csv")
