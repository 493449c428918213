"""The one-shot engines (runtime/oneshot/): resume is exact, derive() ships, options are checked.

Tiny settings throughout: the digits set (1x8x8), the nb201 and darts spaces with one
cell per stage and 4 filters, batches of 16 and at most 2 weight steps per epoch
(the `max_steps` option; 1 for DARTS on the darts space, whose mixture runs all 8 ops
on 14 edges), a few derivation samples and controller steps. The resume check runs each
strategy on nb201 and the sampling strategies on darts too (where the supernet refuses
most uniform samples); ENAS also on ENAS' macro space where that space is installed.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
from nasforge.codegen import generate, load_source
from nasforge.codegen.supernet import generate_supernet
from nasforge.controller.space import load_space, space_names
from nasforge.grammar import parse
from nasforge.grammar.ir import Setting
from nasforge.runtime.choices import ONESHOT_STRATEGIES
from nasforge.runtime.data import load_digits_data
from nasforge.runtime.oneshot import OneShotSettings, make_oneshot, strategy_class

IMPLEMENTED = ("rsws", "darts1", "darts", "enas")
TINY = {"max_steps": 2, "max_eval_batches": 1}
TINY_STRATEGY = {
    "rsws": {"derive_samples": 3},
    "enas": {"derive_samples": 3, "controller_steps": 2, "controller_aggregate": 2},
}


@pytest.fixture(scope="module")
def digits():
    return load_digits_data()


def tiny_space(name: str):
    """The space at the digits' shape; a cell space with one cell per stage and 4 filters."""
    space = copy.copy(load_space(name).with_data((1, 8, 8), 10))
    if space.family != "cells":
        return space
    space.options = tuple(
        Setting(s.name, {"n": 1, "filters": 4}.get(s.name, s.value)) for s in space.options
    )
    space._slots = {}
    return space


def make(strategy: str, space_name: str, data, epochs: int = 2, **options):
    steps = {"max_steps": 1} if space_name == "darts" and strategy.startswith("darts") else {}
    settings = OneShotSettings(
        strategy,
        epochs=epochs,
        batch=16,
        seed=3,
        device="cpu",
        options={**TINY, **steps, **TINY_STRATEGY.get(strategy, {}), **options},
    )
    return make_oneshot(tiny_space(space_name), data, settings)


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


MACRO = pytest.mark.skipif(
    "enas_macro" not in space_names(), reason="ENAS' macro space is not installed here"
)
RESUMED = [
    *((strategy, "nb201") for strategy in IMPLEMENTED),
    ("rsws", "darts"),
    ("enas", "darts"),
    pytest.param("enas", "enas_macro", marks=MACRO),
]
DERIVED = [
    *((strategy, space) for strategy in IMPLEMENTED for space in ("nb201", "darts")),
    pytest.param("enas", "enas_macro", marks=MACRO),
    pytest.param("rsws", "enas_macro", marks=MACRO),
]
EXTRA_FIELDS = {
    "rsws": {"derived"},
    "darts": {"alphas", "derived"},
    "darts1": {"alphas", "derived"},
    "enas": {"entropy", "reward", "baseline", "sampled", "derived"},
}


@pytest.mark.parametrize(("strategy", "space_name"), RESUMED)
def test_resumed_search_equals_the_uninterrupted_one(strategy, space_name, digits) -> None:
    straight = make(strategy, space_name, digits)
    straight.run_epoch()
    straight.run_epoch()

    first = make(strategy, space_name, digits)
    first.run_epoch()
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    del first
    torch.manual_seed(12345)  # the global generator moves on; the state restores it
    resumed = make(strategy, space_name, digits)
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue())))
    assert resumed.epoch == 1
    resumed.run_epoch()

    assert without_seconds(resumed.history) == without_seconds(straight.history)
    assert resumed.derive() == straight.derive()
    weights = resumed.supernet.state_dict()
    for key, value in straight.supernet.state_dict().items():
        assert torch.equal(weights[key], value), key


@pytest.mark.parametrize(("strategy", "space_name"), DERIVED)
def test_derived_architecture_is_of_the_space_compiles_and_runs(
    strategy, space_name, digits
) -> None:
    search = make(strategy, space_name, digits, epochs=1)
    record = search.run_epoch()
    assert {"epoch", "train_loss", "train_acc", "valid_acc", "seconds"} <= set(record)
    assert EXTRA_FIELDS[strategy] <= set(record)
    assert record["derived"] == search.derive()
    if strategy == "enas" and space_name == "enas_macro":
        assert 0.0 <= record["skip_rate"] <= 1.0
    if strategy.startswith("darts"):
        sections = {"nb201": {"cell"}, "darts": {"normal", "reduce"}}[space_name]
        assert set(record["alphas"]) == sections
        for rows in record["alphas"].values():
            assert all(sum(row) == pytest.approx(1.0) for row in rows)
    derived = search.derive()
    arch = parse(derived)
    search.space.decisions_of(arch)  # OutsideSpaceError if it is not of the space
    model = load_source(generate(arch, black=False)).build_model()
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_settings_and_options_are_checked(digits) -> None:
    with pytest.raises(ValueError, match="valid: enas, darts, darts1, rsws"):
        OneShotSettings("nas", epochs=1, batch=8)
    with pytest.raises(ValueError, match="epochs"):
        OneShotSettings("rsws", epochs=0, batch=8)
    with pytest.raises(ValueError, match=r"unknown option\(s\) lr_max .*valid: .*derive_samples"):
        make("rsws", "nb201", digits, lr_max=0.1)
    with pytest.raises(ValueError, match=r"lr is -1\.0, outside"):
        make("rsws", "nb201", digits, lr=-1)
    with pytest.raises(ValueError, match="DARTS searches the cell spaces"):
        make("darts", "digits", digits)
    assert set(ONESHOT_STRATEGIES) == {"enas", "darts", "darts1", "rsws"}
    assert strategy_class("rsws").strategy == "rsws"


def test_formatted_source_is_the_generated_supernet_file(digits) -> None:
    search = make("rsws", "nb201", digits, epochs=1)
    assert search.formatted_source() == generate_supernet(search.spec)
