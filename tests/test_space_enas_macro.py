"""ENAS's macro space (controller/spaces/enas_macro.toml) and the cnn space keys it uses:
a layer-op slot (`ops`), each layer reading the one before it (`chain`) and fixed
reductions (`reductions`)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from nasforge.controller.reinforce import Reinforce
from nasforge.controller.space import OutsideSpaceError, SpaceError, load_space
from nasforge.grammar import parse, to_text

OPS = ("conv 3x3", "sep 3x3", "conv 5x5", "sep 5x5", "avgpool 3x3", "maxpool 3x3")
HEADER = "cnn input 3x32x32 classes 10"


def _macro_text(*layers: str) -> str:
    return "; ".join((HEADER, *layers))


def test_the_macro_space_has_an_op_and_skip_anchors_per_layer() -> None:
    space = load_space("enas_macro")
    assert (space.max_depth, space.default_depth, space.input_shape) == (
        12,
        12,
        (3, 32, 32),
    )
    slots = {slot.name: slot for slot in space.slots()}
    assert all(slots[f"L{i}.op"].choices == OPS for i in range(1, 13))
    anchors = {(s.source, s.target) for s in slots.values() if s.kind == "anchor"}
    # L{i-1} always feeds L{i}; skips stay within a resolution (reductions at L5, L9).
    assert anchors == {
        (1, 3), (1, 4), (2, 4), (1, 5), (2, 5), (3, 5),
        (5, 7), (5, 8), (6, 8), (5, 9), (6, 9), (7, 9),
        (9, 11), (9, 12), (10, 12),
    }  # fmt: skip
    assert len(slots) == 12 + len(anchors)  # no filters or stride decision


@pytest.mark.parametrize("seed", range(5))
def test_random_decisions_make_enas_layers_and_round_trip(seed: int) -> None:
    space = load_space("enas_macro")
    rng = random.Random(seed)
    decisions = [rng.randrange(len(slot.choices)) for slot in space.slots()]
    arch = space.to_arch(decisions)
    for layer in arch.layers:
        assert f"{layer.kind} {layer.kernel[0]}x{layer.kernel[1]}" in OPS
        assert layer.filters == 36
        assert layer.stride == ((2, 2) if layer.index in (5, 9) else (1, 1))
        reads = [ref.index for ref in layer.inputs]
        first = max((r for r in (5, 9) if r < layer.index), default=1)
        assert layer.index == 1 or reads[-1] == layer.index - 1
        assert all(first <= j < layer.index for j in reads)
    assert space.decisions_of(parse(to_text(arch))) == (tuple(decisions), 12)


def test_the_policy_samples_strings_of_the_space() -> None:
    space = load_space("enas_macro")
    controller = Reinforce(space, seed=0)
    for proposal in controller.ask(20):
        arch = parse(proposal.arch)
        assert space.decisions_of(arch) == (proposal.decisions, 12)
        assert {layer.filters for layer in arch.layers} == {36}


def test_the_space_follows_a_data_set() -> None:
    space = load_space("enas_macro").with_data((1, 8, 8), 10)
    arch = space.to_arch([0] * len(space.slots()))
    assert to_text(arch, one_line=True).startswith("cnn input 1x8x8 classes 10; L1: conv 3x3 n36")


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            ("L1: conv 3x3 n36", "L2: maxpool 3x3 n36"),
            "L2 does not read L1: every layer reads the one before it",
        ),
        (
            ("L1: conv 3x3 n36", "L2: maxpool 3x3 <- L1"),
            "L2.filters is maxpool, outside the space 'enas_macro': it allows n36",
        ),
        (
            ("L1: conv 3x3 n36", "L2: conv 7x7 n36 <- L1"),
            "L2.op is conv 7x7, outside the space 'enas_macro'",
        ),
        (
            ("L1: conv 3x3 n36", "L2: conv 3x3 s2x2 n36 <- L1"),
            "L2's stride is 2x2, not 1x1",
        ),
        (
            (
                *(
                    f"L{i}: conv 3x3 n36 <- L{i - 1}" if i > 1 else "L1: conv 3x3 n36"
                    for i in range(1, 5)
                ),
                "L5: conv 3x3 s2x2 n36 <- L4",
                "L6: conv 3x3 n36 <- L4 L5",
            ),
            "L6 reads L4, but it may read only L5..L5",
        ),
    ],
)
def test_strings_outside_the_macro_space_name_why(layers: tuple[str, ...], message: str) -> None:
    space = load_space("enas_macro")
    with pytest.raises(OutsideSpaceError, match=message.replace(".", r"\.")):
        space.decisions_of(parse(_macro_text(*layers)))


BASE = """
family = "cnn"
input = [1, 6, 6]
classes = 3
[depth]
max = 3
[layer]
filters = [4]
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            'ops = ["conv 3x3"]\nkernel_h = [3]',
            "layer.kernel_h: a space with ops leaves kernel_h out",
        ),
        ('ops = ["dense 3x3"]', "layer.ops: a layer op is a layer kind and its kernel"),
        (
            'ops = ["conv 3 x 3"]',
            "layer.ops: a layer op is a layer kind and its kernel",
        ),
        (
            'ops = ["conv 99x3"]',
            "layer.ops: 'conv 99x3': a kernel side is from 1 to 15",
        ),
        (
            'ops = ["conv 3x3", "conv 3x3"]',
            "layer.ops: must be a non-empty list of distinct",
        ),
        (
            'ops = ["conv 3x3"]\nreductions = [2]\nstride_h = [1, 2]',
            "a space with reductions",
        ),
        (
            'ops = ["conv 3x3"]\nreductions = [4]',
            "layer.reductions: must be a non-empty list",
        ),
        ('ops = ["conv 3x3"]\nchain = 1', "layer.chain: must be true or false, not 1"),
    ],
)
def test_bad_macro_keys_are_named(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BASE + extra + "\n", encoding="utf-8")
    with pytest.raises(SpaceError, match=message):
        load_space(str(path))


def test_ops_without_chain_or_reductions_search_every_anchor(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text(BASE + 'ops = ["conv 3x3", "maxpool 2x2"]\nstride_h = [1, 2]\n')
    space = load_space(str(path))
    names = [slot.name for slot in space.slots()]
    assert names[:5] == ["L1.op", "L1.stride_h", "L2.anchor.L1", "L2.op", "L2.stride_h"]
    arch = space.to_arch([1, 1, 0, 0, 0, 1, 1, 0, 1])
    assert to_text(arch, one_line=True) == (
        "cnn input 1x6x6 classes 3; L1: maxpool 2x2 s2x1 n4; L2: conv 3x3 n4; "
        "L3: conv 3x3 s2x1 n4 <- L1 L2"
    )
    assert space.decisions_of(arch) == ((1, 1, 0, 0, 0, 1, 1, 0, 1), 3)
