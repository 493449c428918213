"""Round trips: IR -> canonical text -> IR, for generated IR of every family and the examples."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from nasforge.grammar import parse, to_text, validate
from nasforge.grammar.ir import CellsArch, CnnArch, RnnArch
from strategies import FAMILIES, archs, fast

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*.arch"))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generated_ir_round_trips(family: str) -> None:
    """For generated valid IR: parse(print(ir)) == ir, in both forms, and printing is stable."""

    @fast()
    @given(FAMILIES[family])
    def check(arch) -> None:
        assert validate(arch) is arch  # the strategy builds valid IR
        text = to_text(arch)
        assert text.endswith("\n") and "\n\n" not in text
        again = parse(text)
        assert again == arch
        assert to_text(again) == text
        line = to_text(arch, one_line=True)
        assert "\n" not in line
        assert parse(line) == arch
        assert to_text(parse(line)) == text
        assert to_text(again, one_line=True) == line

    check()


@fast(examples=30)
@given(archs())
def test_parsed_ir_carries_positions(arch) -> None:
    parsed = parse(to_text(arch))
    assert parsed.pos.line == 1
    if isinstance(parsed, CnnArch):
        assert [layer.pos.line for layer in parsed.layers] == list(range(2, len(parsed.layers) + 2))
    elif isinstance(parsed, RnnArch):
        assert [node.pos.line for node in parsed.nodes] == list(range(2, len(parsed.nodes) + 2))
    else:
        assert all(n.pos.line > 1 for cell in parsed.cells for n in cell.nodes)


def test_there_are_examples_of_every_family() -> None:
    families = {parse(path.read_text(encoding="utf-8")).family for path in EXAMPLE_FILES}
    assert families == {"cnn", "rnn", "cells"}
    skeletons = {
        arch.skeleton
        for arch in (parse(p.read_text(encoding="utf-8")) for p in EXAMPLE_FILES)
        if isinstance(arch, CellsArch)
    }
    assert skeletons == {"nasnet", "darts", "nb201"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_parses_validates_and_round_trips(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    arch = parse(source, str(path))
    assert validate(arch) is arch
    text = to_text(arch)
    assert parse(text) == arch
    assert parse(to_text(arch, one_line=True)) == arch
    assert to_text(parse(text)) == text


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_canonical_text_is_its_statements(path: Path) -> None:
    """Each example is its canonical text plus comments and blank lines.

    The one liberty the examples take: v2_strides.arch spells out a default
    stride (s1x1), which the canonical form leaves out.
    """
    source = path.read_text(encoding="utf-8")
    statements = [line.split("#")[0].rstrip().replace(" s1x1", "") for line in source.splitlines()]
    written = "\n".join(s for s in statements if s.strip()) + "\n"
    assert to_text(parse(source)) == written


def test_example_one_line_forms() -> None:
    """Pinned one-line canonical texts of a few examples (the form used on command lines)."""

    def one_line(name: str) -> str:
        return to_text(parse((EXAMPLES_DIR / name).read_text(encoding="utf-8")), one_line=True)

    assert one_line("fig2_plain.arch") == (
        "cnn input 3x32x32 classes 10; L1: conv 3x3 n36; L2: conv 5x5 n48 <- L1; "
        "L3: conv 3x3 n64 <- L2; L4: conv 7x5 n48 <- L3"
    )
    assert one_line("rnn_fig5_base2.arch") == (
        "rnn base 2; N0: add tanh; N1: mul relu; N2: mul sigmoid; inject N0: add relu; cell N1"
    )
    assert one_line("nb201_index1.arch") == (
        "cells nb201 input 3x32x32 classes 10 n 5 filters 16; cell: S1 = add(conv3x3(S0)); "
        "S2 = add(conv3x3(S0), avgpool3x3(S1)); S3 = add(skip(S0), conv3x3(S1), skip(S2)); "
        "out = S3"
    )


def test_non_canonical_spellings_print_canonically() -> None:
    text = (
        "# a comment first\n\n"
        "cnn   input 3x32x32 classes 10   # trailing comment\n"
        "L1: conv 3x3 s1x1 n36 ;; \n"
        "\tL2: conv 3x3 n48 <- L1 ;\n"
        "L3: maxpool 2x2 s2x2 <- L2 L1\n\n"
    )
    assert to_text(parse(text)) == (
        "cnn input 3x32x32 classes 10\n"
        "L1: conv 3x3 n36\n"
        "L2: conv 3x3 n48 <- L1\n"
        "L3: maxpool 2x2 s2x2 <- L1 L2\n"
    )


def test_cells_defaults_and_unused_output_are_spelled_out() -> None:
    text = (
        "cells darts input 3x32x32 classes 10 filters 16\n"
        "reduction:\n  S2 = add(maxpool3x3(S0), skip(S1))\n  out = concat(unused)\n"
        "normal: S2 = add(sep3x3(S0), sep3x3(S1))\n  S3 = concat(skip(S2), skip(S1))\n"
        "  out = concat(unused)\n"
    )
    assert to_text(parse(text)) == (
        "cells darts input 3x32x32 classes 10 n 6 filters 16 stem cifar\n"
        "normal:\n"
        "  S2 = add(sep3x3(S0), sep3x3(S1))\n"
        "  S3 = concat(skip(S2), skip(S1))\n"
        "  out = S3\n"
        "reduction:\n"
        "  S2 = add(maxpool3x3(S0), skip(S1))\n"
        "  out = S2\n"
    )


def test_lr_prints_as_written_value() -> None:
    for written, printed in (("0.1", "0.1"), ("1e-3", "0.001"), ("2", "2.0"), ("1E-6", "1e-06")):
        arch = parse(f"cnn input 3x32x32 classes 10 lr {written}; L1: conv 3x3 n8")
        assert to_text(arch).splitlines()[0] == f"cnn input 3x32x32 classes 10 lr {printed}"
        assert parse(to_text(arch)) == arch
