"""Search spaces: the data files load, every decision sequence is a valid (and buildable)
architecture, decisions_of inverts to_arch and names what is outside a space, and
`nasforge validate --space` reports it."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from nasforge.codegen import generate, load_source
from nasforge.controller.space import (
    OutsideSpaceError,
    Slot,
    Space,
    SpaceError,
    load_space,
    space_names,
)
from nasforge.grammar import ArchValidationError, parse, to_text
from nasforge.grammar.nb201 import from_nb201, to_nb201
from nasforge.runtime.cli import cli

SPACES = [
    "cifar10_v1",
    "cifar10_v2",
    "cifar10_v3",
    "darts",
    "digits",
    "enas_macro",
    "nasnet",
    "nb201",
    "ptb_rnn",
]
ROOT = Path(__file__).resolve().parent.parent


def _random_decisions(space: Space, rng: random.Random, depth: int | None = None) -> list[int]:
    return [rng.randrange(len(slot.choices)) for slot in space.slots(depth)]


def test_space_names() -> None:
    assert space_names() == SPACES


@pytest.mark.parametrize("name", SPACES)
def test_slots_are_well_formed(name: str) -> None:
    space = load_space(name)
    slots = space.slots()
    assert len({s.name for s in slots}) == len(slots)
    for slot in slots:
        assert slot.kind in ("choice", "anchor")
        assert len(slot.choices) >= 2, slot  # a single choice is no decision
        assert len(set(slot.choices)) == len(slot.choices)
        if slot.kind == "anchor":
            assert slot.choices == ("no", "yes")
            assert slot.source is not None and slot.target is not None
            assert 1 <= slot.source < slot.target
    if space.max_depth is not None:  # smaller depths are prefixes (one controller, all depths)
        for depth in range(1, space.max_depth + 1):
            assert space.slots(depth) == slots[: len(space.slots(depth))]
            assert len(space.layer_starts(depth)) == depth


@pytest.mark.parametrize("name", SPACES)
def test_random_decisions_round_trip(name: str) -> None:
    space = load_space(name)
    rng = random.Random(7)
    depths = [None] if space.max_depth is None else [1, 2, space.max_depth]
    for depth in depths:
        for _ in range(30):
            decisions = _random_decisions(space, rng, depth)
            text = space.to_text(decisions, depth)
            arch = parse(text)
            assert to_text(arch, one_line=True) == text
            assert space.to_arch(decisions, depth) == arch
            got, got_depth = space.decisions_of(arch)
            assert got == tuple(decisions)
            assert got_depth == space.check_depth(depth)


def _first_and_last(space: Space, depth: int | None) -> list[list[int]]:
    slots = space.slots(depth)
    return [[0] * len(slots), [len(s.choices) - 1 for s in slots]]


@pytest.mark.parametrize("name", SPACES)
def test_sampled_architectures_build_and_run(name: str) -> None:
    """Codegen agrees that the extremes and random members are valid: shapes work out."""
    space = load_space(name)
    rng = random.Random(3)
    cases: list[tuple[list[int], int | None]] = []
    if space.max_depth is None:
        cases += [(d, None) for d in _first_and_last(space, None)]
        cases += [(_random_decisions(space, rng), None) for _ in range(2)]
    else:
        # All-last: the largest kernels, strides 3 and (v3) pooling at full depth,
        # so the image shrinks to 1x1 and stays there. Full-depth stride-1 convs are
        # too slow for a unit test; shapes cannot change at stride 1 anyway.
        last = _first_and_last(space, space.max_depth)[1]
        if "stride_h" in {s.name.split(".")[1] for s in space.slots()} or space.max_depth <= 4:
            cases.append((last, space.max_depth))
        cases += [(_random_decisions(space, rng, 4), 4) for _ in range(2)]
    torch.manual_seed(0)
    for decisions, depth in cases:
        arch = space.to_arch(decisions, depth)
        module = load_source(generate(arch, black=False))
        if arch.family == "rnn":
            model = module.build_model(vocab_size=20, embed_size=8, hidden_size=8)
            logits, _ = model(torch.randint(0, 20, (3, 2)))
            assert logits.shape == (3, 2, 20)
        else:
            model = module.build_model()
            with torch.no_grad():
                out = model.eval()(torch.randn(1, *module.INPUT_SHAPE))
            assert out.shape == (1, module.NUM_CLASSES)


def test_cifar10_v2_strides_never_shrink_below_one_pixel() -> None:
    space = load_space("cifar10_v2")
    # A chain (each layer reads the one before) of 7x7 convs at stride 3.
    chain = [
        int(s.source == s.target - 1) if s.kind == "anchor" else len(s.choices) - 1  # type: ignore[operator]
        for s in space.slots()
    ]
    arch = space.to_arch(chain)
    assert all(layer.stride == (3, 3) for layer in arch.layers)
    from nasforge.codegen.cnn import plan_cnn

    plan = plan_cnn(arch)
    assert [layer.out_shape[1:] for layer in plan.layers] == [
        (11, 11),
        (4, 4),
        (2, 2),
        *[(1, 1)] * 12,
    ]
    module = load_source(generate(arch, black=False))
    with torch.no_grad():
        assert module.build_model().eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_cifar10_v3_pooling_is_a_filters_choice() -> None:
    space = load_space("cifar10_v3")
    slot = next(s for s in space.slots() if s.name == "L2.filters")
    assert slot.choices == ("n24", "n36", "n48", "n64", "maxpool")
    text = "cnn input 3x32x32 classes 10; L1: conv 3x5 s2x1 n36; L2: maxpool 3x3 s2x2 <- L1"
    decisions, depth = space.decisions_of(parse(text))
    assert depth == 2
    assert space.to_text(decisions, depth) == text
    assert load_space("cifar10_v1").slots()[-1] == Slot(
        "L15.filters", "choice", ("n24", "n36", "n48", "n64")
    )


def test_digits_space_is_small() -> None:
    space = load_space("digits")
    assert (space.default_depth, space.max_depth) == (4, 4)
    assert [space.depth_at(n) for n in (0, 10_000)] == [4, 4]
    assert space.size() == 3**8 * 3**4 * 2**6  # kernels h/w, filters, anchors


def test_depth_schedule() -> None:
    space = load_space("cifar10_v1")
    assert (space.default_depth, space.depth_step, space.depth_every, space.max_depth) == (
        6,
        2,
        1600,
        15,
    )
    depths = [space.depth_at(n) for n in (0, 1599, 1600, 3200, 6400, 8000, 100_000)]
    assert depths == [6, 6, 8, 10, 14, 15, 15]
    fast = space.with_schedule(start=2, step=1, every=10, max_depth=5)
    assert [fast.depth_at(n) for n in (0, 10, 25, 1000)] == [2, 3, 4, 5]
    assert len(fast.slots()) == len(space.slots(5))
    assert space.max_depth == 15  # the original is unchanged
    with pytest.raises(ValueError, match="has no depth schedule"):
        load_space("nb201").with_schedule(start=2)


def test_nb201_reaches_every_cell_and_round_trips() -> None:
    space = load_space("nb201")
    slots = space.slots()
    assert len(slots) == 6 and all(len(s.choices) == 5 for s in slots)
    strings = set()
    for decisions in itertools.product(range(5), repeat=6):
        arch = space.to_arch(decisions)
        string = to_nb201(arch)
        strings.add(string)
        back = from_nb201(string)
        assert back == arch
        assert space.decisions_of(back) == (decisions, None)
    assert len(strings) == 15_625


def test_nb201_slot_order_matches_the_benchmark_strings() -> None:
    space = load_space("nb201")
    assert [s.name for s in space.slots()] == [
        "cell.S1.op0",
        "cell.S2.op0",
        "cell.S2.op1",
        "cell.S3.op0",
        "cell.S3.op1",
        "cell.S3.op2",
    ]
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    decisions, _ = space.decisions_of(from_nb201(best))
    assert to_nb201(space.to_arch(decisions)) == best
    assert space.decisions_of(parse((ROOT / "examples/nb201_best.arch").read_text())) == (
        decisions,
        None,
    )


def test_nasnet_space_uses_the_13_nasnet_ops() -> None:
    space = load_space("nasnet")
    op_slot = next(s for s in space.slots() if s.name == "normal.S2.op0")
    assert len(op_slot.choices) == 13 and "none" not in op_slot.choices
    names = [s.name for s in space.slots() if s.name.startswith("normal.S2.")]
    assert names == [f"normal.S2.{x}" for x in ("in0", "in1", "op0", "op1", "combine")]
    assert next(s for s in space.slots() if s.name == "reduction.S6.in1").choices == (
        "S0",
        "S1",
        "S2",
        "S3",
        "S4",
        "S5",
    )
    assert len(space.slots()) == 2 * 5 * 5


def test_darts_space_has_the_8_darts_ops() -> None:
    space = load_space("darts")
    op_slot = next(s for s in space.slots() if s.name == "reduction.S5.op1")
    assert op_slot.choices == (
        "none",
        "skip",
        "sep3x3",
        "sep5x5",
        "dil3x3",
        "dil5x5",
        "avgpool3x3",
        "maxpool3x3",
    )
    assert len(space.slots()) == 2 * 4 * 4  # two inputs and two ops per node, add only


def test_ptb_rnn_space() -> None:
    space = load_space("ptb_rnn")
    names = [s.name for s in space.slots()]
    assert names[:2] == ["N0.combine", "N0.activation"]
    assert names[-4:] == ["inject.node", "inject.combine", "inject.activation", "cell.node"]
    assert len(names) == 15 * 2 + 4
    nascell = parse((ROOT / "examples/rnn_nascell_ptb.arch").read_text())
    decisions, depth = space.decisions_of(nascell)
    assert depth is None and space.to_arch(decisions) == nascell


# --- errors -------------------------------------------------------------------------------


def _outside(space: str, text: str) -> OutsideSpaceError:
    with pytest.raises(OutsideSpaceError) as info:
        load_space(space).decisions_of(parse(text))
    assert isinstance(info.value, ArchValidationError)
    return info.value.attach(text, "<arch>")  # type: ignore[return-value]


def test_filters_outside_cifar10_v1_pinned() -> None:
    text = "cnn input 3x32x32 classes 10; L1: conv 3x3 n36; L2: conv 3x3 n40 <- L1"
    err = _outside("cifar10_v1", text)
    assert (err.slot, err.value, err.choices) == ("L2.filters", "n40", ("n24", "n36", "n48", "n64"))
    assert str(err) == (
        "<arch>:1:49: error: L2.filters is n40, outside the space 'cifar10_v1': it allows n24, n36, n48, n64\n"
        "  cnn input 3x32x32 classes 10; L1: conv 3x3 n36; L2: conv 3x3 n40 <- L1\n"
        "                                                  ^"
    )


@pytest.mark.parametrize(
    ("space", "text", "message"),
    [
        (
            "cifar10_v1",
            "cnn input 3x32x32 classes 10; L1: conv 3x3 s2x1 n36",
            "L1.stride_h is 2, outside the space 'cifar10_v1': it allows 1",
        ),
        (
            "cifar10_v2",
            "cnn input 3x32x32 classes 10; L1: maxpool 3x3",
            "L1.filters is maxpool, outside the space 'cifar10_v2': it allows n24, n36, n48, n64",
        ),
        (
            "digits",
            "cnn input 1x8x8 classes 10; L1: conv 7x3 n8",
            "L1.kernel_h is 7, outside the space 'digits': it allows 1, 3, 5",
        ),
        (
            "digits",
            "cnn input 3x32x32 classes 10; L1: conv 3x3 n8",
            "input 3x32x32 is not 1x8x8, outside the space 'digits'",
        ),
        (
            "digits",
            "cnn input 1x8x8 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8; L3: conv 3x3 n8; "
            "L4: conv 3x3 n8; L5: conv 3x3 n8",
            "5 layers is more than 4, outside the space 'digits'",
        ),
        (
            "digits",
            "cnn input 1x8x8 classes 10; L1: conv 3x3 n8 nobn",
            "L1's flag nobn is not a decision, outside the space 'digits'",
        ),
        (
            "nb201",
            "cells nb201 input 3x32x32 classes 10 n 5 filters 16; cell: S1 = add(sep3x3(S0)); "
            "S2 = add(skip(S0), skip(S1)); S3 = add(skip(S0), skip(S1), skip(S2)); out = S3",
            "cell.S1.op0 is sep3x3, outside the space 'nb201': it allows none, skip, conv1x1, "
            "conv3x3, avgpool3x3",
        ),
        (
            "nb201",
            "rnn base 2; N0: add tanh; N1: add tanh; N2: add tanh; inject N0: add tanh; cell N1",
            "a rnn architecture is not cells, outside the space 'nb201'",
        ),
        (
            "darts",
            (ROOT / "examples/darts_v2.arch").read_text(),
            "option n is 6, not the space's 2, outside the space 'darts'",
        ),
        (
            "nasnet",
            "cells nasnet input 3x32x32 classes 10 n 2 filters 16; normal: S2 = add(skip(S0), skip(S1)); "
            "out = S2; reduction: S2 = add(skip(S0), skip(S1)); out = S2",
            "the 'normal:' section has 1 nodes, not 5, outside the space 'nasnet'",
        ),
        (
            "ptb_rnn",
            "rnn base 2; N0: add tanh; N1: add tanh; N2: add tanh; inject N0: add tanh; cell N1",
            "base 2 is not 8, outside the space 'ptb_rnn'",
        ),
    ],
)
def test_outside_messages(space: str, text: str, message: str) -> None:
    assert _outside(space, text).message == message


def test_output_rule_outside_the_space() -> None:
    chain = "S2 = add(skip(S0), skip(S1)); S3 = add(skip(S2), skip(S0)); S4 = add(skip(S3), skip(S0)); S5 = add(skip(S4), skip(S0))"
    text = f"cells darts input 3x32x32 classes 10 n 2 filters 16; normal: {chain}; out = S5; reduction: {chain}; out = S5"
    err = _outside("darts", text)
    assert err.message == (
        "the 'normal:' output is S5, not S2, S3, S4, S5 (concat of every new state), "
        "outside the space 'darts'"
    )


def test_unknown_space_lists_the_valid_ones() -> None:
    with pytest.raises(SpaceError) as info:
        load_space("cifar11")
    assert str(info.value) == (
        "unknown space 'cifar11'; valid spaces: cifar10_v1, cifar10_v2, cifar10_v3, darts, "
        "digits, enas_macro, nasnet, nb201, ptb_rnn (or the path of a .toml file)"
    )


def test_space_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(
        'family = "cells"\nskeleton = "nb201"\ninput = [3, 8, 8]\nclasses = 4\nnodes = 2\n'
        'ops = ["skip", "conv3x3"]\n[options]\nn = 1\nfilters = 4\n'
    )
    space = load_space(str(path))
    assert space.name == "tiny" and space.size() == 2**3
    assert space.to_text([1, 0, 1]) == (
        "cells nb201 input 3x8x8 classes 4 n 1 filters 4; cell: S1 = add(conv3x3(S0)); "
        "S2 = add(skip(S0), conv3x3(S1)); out = S2"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'family = "rnn"\nbase = 8\ncombines = ["add"]\nactivations = ["tanh"]\nextra = 1\n',
            "extra: unknown key",
        ),
        (
            'family = "rnn"\nbase = 6\ncombines = ["add"]\nactivations = ["tanh"]\n',
            "base: must be a power of two, not 6",
        ),
        (
            'family = "rnn"\nbase = 8\ncombines = ["add", "sub"]\nactivations = ["tanh"]\n',
            "combines: unknown name 'sub'; valid: add, mul",
        ),
        (
            'family = "cells"\nskeleton = "nb201"\ninput = [3, 8, 8]\nclasses = 4\nnodes = 3\nops = ["sep9x9"]\n',
            "ops: unknown name 'sep9x9'",
        ),
        (
            'family = "cnn"\ninput = [1, 8, 8]\nclasses = 10\n[depth]\nmax = 4\n[layer]\nkernel_h = [3]\nkernel_w = [3]\nfilters = [8, 8]\n',
            "layer.filters: must be a non-empty list of distinct whole numbers",
        ),
        ('family = "mlp"\n', "family is 'mlp'; valid families: cnn, rnn, cells"),
        ("family = ", "not valid TOML"),
    ],
)
def test_bad_space_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(SpaceError, match=r"bad\.toml") as info:
        load_space(str(path))
    assert message in str(info.value)


def test_bad_decisions() -> None:
    space = load_space("nb201")
    with pytest.raises(ValueError, match="takes 6 decisions"):
        space.to_arch([0] * 5)
    with pytest.raises(ValueError, match=r"outside 0\.\.4"):
        space.to_arch([0, 0, 0, 0, 0, 5])
    with pytest.raises(ValueError, match="has no depth"):
        space.slots(3)
    with pytest.raises(ValueError, match=r"outside 1\.\.15"):
        load_space("cifar10_v1").slots(16)


# --- nasforge validate --space ----------------------------------------------------------------


def _cli(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), prog_name="nasforge")


def test_validate_space_inside() -> None:
    result = _cli(
        "validate",
        "--space",
        "cifar10_v1",
        "--arch",
        "cnn input 3x32x32 classes 10; L1: conv 3x3 n36; L2: conv 5x7 n64 <- L1",
    )
    assert (result.exit_code, result.stdout, result.stderr) == (0, "ok\n", "")  # type: ignore[attr-defined]
    path = ROOT / "examples/nb201_best.arch"
    result = _cli("validate", "--space", "nb201", "--one-line", str(path))
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert result.stdout == to_text(parse(path.read_text()), one_line=True) + "\n"  # type: ignore[attr-defined]


def test_validate_space_outside() -> None:
    text = "cnn input 3x32x32 classes 10; L1: conv 3x3 n36; L2: conv 3x3 n40 <- L1"
    result = _cli("validate", "--space", "cifar10_v1", "--arch", text)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert result.stdout == ""  # type: ignore[attr-defined]
    assert result.stderr == (  # type: ignore[attr-defined]
        "<arch>:1:49: error: L2.filters is n40, outside the space 'cifar10_v1': it allows n24, n36, n48, n64\n"
        "  cnn input 3x32x32 classes 10; L1: conv 3x3 n36; L2: conv 3x3 n40 <- L1\n"
        "                                                  ^\n"
    )


def test_validate_space_file_and_several_inputs() -> None:
    darts = ROOT / "examples/darts_v2.arch"
    nascell = ROOT / "examples/rnn_nascell_ptb.arch"
    result = _cli("validate", "--space", "ptb_rnn", str(nascell), str(darts))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert result.stdout == f"{nascell}: ok\n"  # type: ignore[attr-defined]
    assert "error: a cells architecture is not an rnn, outside the space 'ptb_rnn'" in result.stderr  # type: ignore[attr-defined]


def test_validate_unknown_space() -> None:
    result = _cli("validate", "--space", "nope", "--arch", "rnn base 2")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert result.stderr.startswith(
        "nasforge: error: unknown space 'nope'; valid spaces: cifar10_v1"
    )  # type: ignore[attr-defined]
