"""The table evaluator: NAS-Bench-201 lookups, failures as Outcomes, typed file errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from nasforge.grammar import NasforgeError, parse, to_text
from nasforge.grammar.nb201 import from_nb201
from nasforge.runtime.search.evaluator import FAILED_REWARD
from nasforge.runtime.search.table import NETWORK_HEADER, TableError, TableEvaluator

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HEADER = "index,arch,valid12,time12,valid200,test200"
# Three real rows of NAS-Bench-201's CIFAR-10 table (indices 0, 1 and 6111, the best cell).
INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
INDEX1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
ROWS = (
    f"0,{INDEX0},63.3640,89.20,81.9827,85.8633",
    f"1,{INDEX1},82.8340,133.93,90.7693,93.6600",
    f"6111,{BEST},84.3840,177.33,91.6067,94.3733",
)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def table(tmp_path: Path) -> TableEvaluator:
    return TableEvaluator(write(tmp_path, HEADER, *ROWS))


def one_line(nb201: str) -> str:
    return to_text(from_nb201(nb201), one_line=True)


def test_a_cell_in_the_table(table: TableEvaluator) -> None:
    outcome = table.evaluate(one_line(INDEX1))
    assert outcome.status == "ok"
    assert outcome.error is None
    assert outcome.reward == pytest.approx(0.82834)
    assert outcome.seconds == pytest.approx(133.93)
    assert outcome.metrics == {
        "index": 1,
        "valid12": 82.834,
        "time12": 133.93,
        "valid200": 90.7693,
        "test200": 93.66,
    }
    assert len(table) == 3


def test_any_spelling_of_the_architecture_finds_its_row(table: TableEvaluator) -> None:
    # The multi-line example file, comments and all, is the same cell as its one-line text.
    text = (EXAMPLES / "nb201_best.arch").read_text(encoding="utf-8")
    assert table.evaluate(text) == table.evaluate(one_line(BEST))
    assert table.evaluate(text).metrics["test200"] == pytest.approx(94.3733)


def test_other_columns_give_reward_and_cost(tmp_path: Path) -> None:
    table = TableEvaluator(
        write(tmp_path, HEADER, *ROWS), reward_column="test200", cost_column="valid200"
    )
    outcome = table.evaluate(one_line(INDEX0))
    assert outcome.reward == pytest.approx(0.858633)
    assert outcome.seconds == pytest.approx(81.9827)


def test_the_metrics_returned_are_a_copy(table: TableEvaluator) -> None:
    text = one_line(INDEX0)
    table.evaluate(text).metrics["test200"] = 0.0
    assert table.evaluate(text).metrics["test200"] == pytest.approx(85.8633)


def test_a_cell_not_in_the_table_fails(table: TableEvaluator, tmp_path: Path) -> None:
    absent = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    outcome = table.evaluate(one_line(absent))
    assert outcome.status == "failed"
    assert outcome.reward == FAILED_REWARD
    assert outcome.error == f"the cell {absent} is not in the table {tmp_path / 'table.csv'}"


def test_another_network_header_fails(table: TableEvaluator) -> None:
    text = one_line(BEST).replace(" n 5 ", " n 3 ")
    outcome = table.evaluate(text)
    assert outcome.status == "failed"
    assert outcome.error == (
        "the table's network is 'cells nb201 input 3x32x32 classes 10 n 5 filters 16', "
        "not 'cells nb201 input 3x32x32 classes 10 n 3 filters 16'"
    )
    assert NETWORK_HEADER == "cells nb201 input 3x32x32 classes 10 n 5 filters 16"


def test_texts_outside_nas_bench_201_fail_with_the_reason(table: TableEvaluator) -> None:
    cnn = table.evaluate("cnn input 3x32x32 classes 10; L1: conv 3x3 n36")
    assert cnn.status == "failed"
    assert cnn.error is not None and cnn.error.endswith("this is a cnn architecture")
    sep = table.evaluate(one_line(BEST).replace("conv1x1(S2)", "sep3x3(S2)"))
    assert sep.error == (
        "not a NAS-Bench-201 cell: op 'sep3x3' is not in NAS-Bench-201's space; "
        "its ops are none, skip, conv1x1, conv3x3, avgpool3x3"
    )
    four_nodes = (
        "cells nb201 input 3x32x32 classes 10 n 5 filters 16; cell: S1 = add(skip(S0)); "
        "S2 = add(skip(S0), skip(S1)); S3 = add(skip(S0), skip(S1), skip(S2)); "
        "S4 = add(skip(S0), skip(S1), skip(S2), skip(S3)); out = S4"
    )
    parse(four_nodes)  # a valid architecture, just not one of NAS-Bench-201's
    assert table.evaluate(four_nodes).error == (
        "not a NAS-Bench-201 cell: a NAS-Bench-201 cell has 3 nodes, S1 to S3; this one has 4"
    )
    garbage = table.evaluate("cells nb201 input 3x32x32")
    assert garbage.status == "failed"
    assert garbage.error is not None and garbage.error.startswith("not a valid architecture: ")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((), "table.csv:1: error: the file is empty; expected the header " + HEADER),
        (
            ("index,arch,valid12,time12,valid200", ROWS[0][:-8]),
            "table.csv:1: error: missing column(s) test200; "
            "the header has index,arch,valid12,time12,valid200",
        ),
        ((HEADER,), "table.csv:2: error: the table has a header but no rows"),
        (
            (HEADER, ROWS[0], ROWS[1][:-8]),
            "table.csv:3: error: 5 fields; the header has 6",
        ),
        (
            (HEADER, ROWS[0], ROWS[1].replace("82.8340", "82,8340")),
            "table.csv:3: error: 7 fields; the header has 6",
        ),
        (
            (HEADER, ROWS[0], ROWS[1].replace("133.93", "fast")),
            "table.csv:3: error: column time12 is 'fast', not a number",
        ),
        (
            (HEADER, ROWS[0], ROWS[1].replace("133.93", "nan")),
            "table.csv:3: error: column time12 is 'nan', not a number",
        ),
        (
            (HEADER, ROWS[0], ROWS[1].replace("1,", "one,", 1)),
            "table.csv:3: error: column index is 'one', not an integer",
        ),
        (
            (HEADER, ROWS[0], ROWS[1], ROWS[0].replace("0,", "7,", 1)),
            f"table.csv:4: error: cell {INDEX0} is listed twice (also on line 2)",
        ),
        (
            (HEADER, '0,"|none~0|', "x"),
            "table.csv:2: error: not a CSV file: the quote opened on this line is never closed",
        ),
    ],
)
def test_a_malformed_table_names_the_file_line_and_problem(
    tmp_path: Path, lines: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    with pytest.raises(TableError) as caught:
        TableEvaluator(path)
    assert str(caught.value) == f"{tmp_path}/{message}"
    assert isinstance(caught.value, NasforgeError)
    assert caught.value.path == path


def test_a_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    with pytest.raises(TableError) as caught:
        TableEvaluator(path)
    assert str(caught.value) == f"{path}: error: cannot read the table: No such file or directory"
    assert caught.value.line is None


def test_a_reward_column_the_file_lacks(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"table.csv:1: error: missing column\(s\) test12;"):
        TableEvaluator(write(tmp_path, HEADER, *ROWS), reward_column="test12")


def test_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes(HEADER.encode() + b"\n0,\xff\xfe,1,2,3,4\n")
    with pytest.raises(TableError) as caught:
        TableEvaluator(path)
    assert str(caught.value).startswith(f"{path}: error: not UTF-8 text")


def test_the_real_table(real_nb201_csv: Path) -> None:
    table = TableEvaluator(real_nb201_csv)
    assert len(table) == 15_625
    best = table.evaluate((EXAMPLES / "nb201_best.arch").read_text(encoding="utf-8"))
    assert best.status == "ok"
    assert best.metrics["index"] == 6111
    assert round(best.metrics["test200"], 2) == 94.37
    assert max(row.values["test200"] for row in table.rows.values()) == best.metrics["test200"]
    first = table.evaluate((EXAMPLES / "nb201_index1.arch").read_text(encoding="utf-8"))
    assert first.metrics["index"] == 1
