"""Conversion between NAS-Bench-201 cell strings and `cells nb201` architectures."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nasforge.grammar import ArchValidationError, ops, parse, to_text
from nasforge.grammar.ir import CellsArch, Ref
from nasforge.grammar.nb201 import NODES, from_nb201, to_nb201
from strategies import fast

README_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def test_the_readme_example() -> None:
    arch = from_nb201(README_EXAMPLE)
    assert to_text(arch) == (
        "cells nb201 input 3x32x32 classes 10 n 5 filters 16\n"
        "cell:\n"
        "  S1 = add(conv3x3(S0))\n"
        "  S2 = add(conv3x3(S0), avgpool3x3(S1))\n"
        "  S3 = add(skip(S0), conv3x3(S1), skip(S2))\n"
        "  out = S3\n"
    )
    assert to_nb201(arch) == README_EXAMPLE
    assert to_nb201(parse(to_text(arch))) == README_EXAMPLE


def test_the_examples_are_the_strings_in_their_comments() -> None:
    examples = Path(__file__).resolve().parents[1] / "examples"
    for name, string in (
        ("nb201_index1.arch", README_EXAMPLE),
        (
            "nb201_best.arch",
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
            "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
        ),
    ):
        arch = parse((examples / name).read_text(encoding="utf-8"))
        assert to_nb201(arch) == string
        assert from_nb201(string) == arch


def test_none_edges() -> None:
    string = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    arch = from_nb201(string)
    assert to_text(arch, one_line=True) == (
        "cells nb201 input 3x32x32 classes 10 n 5 filters 16; cell: S1 = add(none(S0)); "
        "S2 = add(none(S0), none(S1)); S3 = add(none(S0), none(S1), none(S2)); out = S3"
    )
    assert to_nb201(arch) == string
    mixed = "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|"
    assert to_text(from_nb201(mixed)).splitlines()[2:5] == [
        "  S1 = add(none(S0))",
        "  S2 = add(skip(S0), none(S1))",
        "  S3 = add(none(S0), none(S1), conv1x1(S2))",
    ]
    assert to_nb201(from_nb201(mixed)) == mixed


def test_from_our_text() -> None:
    text = (
        "cells nb201 input 3x32x32 classes 10 n 5 filters 16\ncell:\n"
        "  S1 = add(avgpool3x3(S0))\n"
        "  S2 = add(conv1x1(S0), skip(S1))\n"
        "  S3 = add(conv1x1(S0), skip(S1), skip(S2))\n"
        "  out = S3\n"
    )
    assert to_nb201(parse(text)) == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+"
        "|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    )


def test_network_settings() -> None:
    arch = from_nb201(README_EXAMPLE, n=3, filters=32, input_shape=(3, 16, 16), classes=100)
    assert to_text(arch).splitlines()[0] == ("cells nb201 input 3x16x16 classes 100 n 3 filters 32")
    assert to_nb201(arch) == README_EXAMPLE


def test_the_op_table_names_nb201_ops() -> None:
    assert tuple(ops.ops_of("nb201")) == NB201_OPS


@fast(examples=100)
@given(st.lists(st.sampled_from(NB201_OPS), min_size=6, max_size=6))
def test_any_cell_of_the_space_round_trips(choice: list[str]) -> None:
    edges = iter(choice)
    string = "+".join(
        "|" + "|".join(f"{next(edges)}~{source}" for source in range(node)) + "|"
        for node in range(1, NODES + 1)
    )
    arch = from_nb201(string)
    assert to_nb201(parse(to_text(arch))) == string
    assert parse(to_text(arch)) == arch


@pytest.mark.parametrize(
    ("string", "message", "column"),
    [
        ("", "a NAS-Bench-201 cell has 3 nodes joined by '+', found 1", 1),
        ("|none~0|", "a NAS-Bench-201 cell has 3 nodes joined by '+', found 1", 1),
        (README_EXAMPLE + "+", "a NAS-Bench-201 cell has 3 nodes joined by '+', found 4", 1),
        (
            "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "node 1 must be written between '|' marks, as in |op~0|",
            1,
        ),
        (
            "|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "unknown NAS-Bench-201 op 'conv_3x3'; valid ops: " + ", ".join(NB201_OPS),
            2,
        ),
        (
            "|none~0|+|none~0|none1|+|none~0|none~1|none~2|",
            "unknown NAS-Bench-201 op 'none1'; valid ops: " + ", ".join(NB201_OPS),
            18,
        ),
        (
            "|none~x|+|none~0|none~1|+|none~0|none~1|none~2|",
            "an edge is op~source, as in nor_conv_3x3~0, not 'none~x'",
            2,
        ),
        (
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~-2|",
            "an edge is op~source, as in nor_conv_3x3~0, not 'none~-2'",
            41,
        ),
        (
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~²|",
            "an edge is op~source, as in nor_conv_3x3~0, not 'none~²'",
            41,
        ),
        (
            "|none~999|+|none~0|none~1|+|none~0|none~1|none~2|",
            "an edge is op~source, as in nor_conv_3x3~0, not 'none~999'",
            2,
        ),
        (
            "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
            "S1 cannot read S1: it can read S0",
            2,
        ),
        (
            "|none~0|+|none~1|none~0|+|none~0|none~1|none~2|",
            "in a nb201 cell every node adds one edge from each earlier state, in order: "
            "S2 = add(op(S0), op(S1)); use 'none' for a missing edge",
            10,
        ),
        (
            "|none~0|+|none~0|+|none~0|none~1|none~2|",
            "in a nb201 cell every node adds one edge from each earlier state, in order: "
            "S2 = add(op(S0), op(S1)); use 'none' for a missing edge",
            10,
        ),
        (
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|",
            "S3 cannot read S3: it can read S0 to S2",
            48,
        ),
    ],
)
def test_malformed_strings(string: str, message: str, column: int) -> None:
    with pytest.raises(ArchValidationError) as info:
        from_nb201(string)
    err = info.value
    assert (err.message, err.line, err.column) == (message, 1, column)
    assert err.filename == "<nb201>"
    assert str(err).startswith(f"<nb201>:1:{column}: error: {message}\n  {string}\n")


def test_unknown_op_error_text_and_choices() -> None:
    with pytest.raises(ArchValidationError) as info:
        from_nb201("|sep_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert str(info.value) == (
        "<nb201>:1:2: error: unknown NAS-Bench-201 op 'sep_conv_3x3'; valid ops: "
        "none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3\n"
        "  |sep_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|\n"
        "   ^"
    )
    assert info.value.choices == NB201_OPS


def test_to_nb201_refuses_what_the_benchmark_cannot_write() -> None:
    darts = parse(
        "cells darts input 3x32x32 classes 10\nnormal: S2 = add(skip(S0)); out = concat(S1, S2)\n"
        "reduction: S2 = add(skip(S0)); out = concat(S1, S2)\n"
    )
    with pytest.raises(ArchValidationError, match="only a cells nb201 architecture"):
        to_nb201(darts)  # type: ignore[arg-type]
    sep = parse(
        "cells nb201 input 3x32x32 classes 10\ncell:\n  S1 = add(sep3x3(S0))\n"
        "  S2 = add(skip(S0), skip(S1))\n  S3 = add(skip(S0), skip(S1), skip(S2))\n  out = S3\n"
    )
    with pytest.raises(ArchValidationError) as info:
        to_nb201(sep)
    assert info.value.message == (
        "op 'sep3x3' is not in NAS-Bench-201's space; its ops are "
        "none, skip, conv1x1, conv3x3, avgpool3x3"
    )
    small = parse("cells nb201 input 3x32x32 classes 10; cell: S1 = add(conv3x3(S0)); out = S1")
    with pytest.raises(ArchValidationError) as info:
        to_nb201(small)
    assert info.value.message == "a NAS-Bench-201 cell has 3 nodes, S1 to S3; this one has 1"


def test_to_nb201_validates_programmatic_ir() -> None:
    arch = from_nb201(README_EXAMPLE)
    cell = arch.cells[0]
    broken = CellsArch(
        arch.skeleton, arch.input_shape, arch.classes, arch.options,
        (type(cell)(cell.kind, cell.nodes, (Ref(2),)),),
    )  # fmt: skip
    with pytest.raises(ArchValidationError, match="a nb201 cell outputs its last node: out = S3"):
        to_nb201(broken)


def test_all_nas_bench_201_cells(real_nb201_csv: Path) -> None:
    with real_nb201_csv.open(newline="", encoding="utf-8") as f:
        strings = [row["arch"] for row in csv.DictReader(f)]
    assert len(strings) == 15_625
    assert len(set(strings)) == 15_625
    texts = set()
    for string in strings:
        text = to_text(from_nb201(string))
        assert to_nb201(parse(text)) == string
        texts.add(text)
    assert len(texts) == 15_625
