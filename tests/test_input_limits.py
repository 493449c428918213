"""Bounded reads of every input (architectures, stdin, tables, space files) and a UTF-8 BOM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run
from nasforge.controller.space import MAX_SPACE_CHARS, SpaceError, load_space
from nasforge.grammar import limits
from nasforge.runtime.search.table import MAX_TABLE_BYTES, TableError, TableEvaluator

GOOD = "cnn input 3x32x32 classes 10; L1: conv 3x3 n36; L2: conv 3x3 n48 <- L1\n"
DIGITS = "cnn input 1x8x8 classes 10; L1: conv 3x3 n4\n"
HEADER = "index,arch,valid12,time12,valid200,test200"
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
ROW = f"6111,{CELL},84.3840,177.33,91.6067,94.3733"
TOO_LONG = f"more than {limits.MAX_SOURCE_CHARS:,} characters"




def _process(args: list[str], stdin: object = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    # The timeout is a safety net for a regression that reads forever, not an assertion.
    return subprocess.run(
        [sys.executable, "-m", "nasforge.runtime.cli", *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_validate_dev_zero_ends_at_once_with_exit_2() -> None:
    result = _process(["validate", "/dev/zero"])
    assert result.returncode == 2
    assert result.stderr.startswith("nasforge: error: cannot read /dev/zero: ")
    assert TOO_LONG in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_validate_endless_stdin_ends_with_exit_2() -> None:
    with open("/dev/zero", "rb") as endless:
        result = _process(["validate", "-"], stdin=endless)
    assert result.returncode == 2
    assert result.stderr.startswith("nasforge: error: cannot read <stdin>: ")
    assert TOO_LONG in result.stderr


def test_a_file_one_character_over_the_limit_is_refused(tmp_path: Path) -> None:
    at_limit = tmp_path / "at.arch"
    at_limit.write_text(GOOD + "#" * (limits.MAX_SOURCE_CHARS - len(GOOD)), encoding="utf-8")
    assert run("validate", str(at_limit)).stdout == "ok\n"
    over = tmp_path / "over.arch"
    over.write_text(GOOD + "#" * (limits.MAX_SOURCE_CHARS - len(GOOD) + 1), encoding="utf-8")
    result = run("validate", str(over))
    assert result.exit_code == 2
    assert result.stderr == (
        f"nasforge: error: cannot read {over}: {TOO_LONG}; an architecture has at most "
        f"{limits.MAX_SOURCE_CHARS:,}\n"
    )


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.arch"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert run("validate", str(path)).stdout == "ok\n"
    assert (
        run("validate", "--one-line", str(path)).stdout
        == run("validate", "--one-line", "--arch", GOOD).stdout
    )
    assert run("validate", "-", stdin="\ufeff" + GOOD).stdout == "ok\n"


def test_a_byte_order_mark_only_at_the_start() -> None:
    result = run("validate", "-", stdin=GOOD + "\ufeff")
    assert result.exit_code == 2


# --- tables -------------------------------------------------------------------------


def test_a_table_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\n{ROW}\n".encode())
    assert len(TableEvaluator(path)) == 1


def test_a_table_over_the_byte_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:  # sparse: no disk space used
        handle.write(f"{HEADER}\n".encode())
        handle.truncate(MAX_TABLE_BYTES + 1)
    with pytest.raises(TableError) as caught:
        TableEvaluator(path)
    assert str(caught.value) == (
        f"{path}: error: the table is larger than {MAX_TABLE_BYTES:,} bytes, the most "
        "nasforge reads (NAS-Bench-201's is 1.9 MB)"
    )


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_table_that_never_ends() -> None:
    with pytest.raises(TableError, match=f"larger than {MAX_TABLE_BYTES:,} bytes"):
        TableEvaluator("/dev/zero")


def test_the_real_table_fits_with_room() -> None:
    # NAS-Bench-201's table (1,926,710 bytes) is well inside the limit.
    assert MAX_TABLE_BYTES >= 8 * 1_926_710


def test_an_unterminated_quote_is_reported_where_it_opens(tmp_path: Path) -> None:
    rows = [
        f"{i},|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|{i}~2|,1,2,3,4" for i in range(1200)
    ]
    rows[49] = rows[49].replace(",|", ',"|', 1)  # line 51: the header is line 1
    path = tmp_path / "table.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    with pytest.raises(TableError) as caught:
        TableEvaluator(path)
    assert caught.value.line == 51
    assert str(caught.value) == (
        f"{path}:51: error: not a CSV file: the quote opened on this line is never closed"
    )


# --- space files --------------------------------------------------------------------


def test_a_space_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text("# " + "x" * MAX_SPACE_CHARS + "\n", encoding="utf-8")
    with pytest.raises(SpaceError) as caught:
        load_space(str(path))
    assert str(caught.value) == (
        f"cannot read {path}: more than {MAX_SPACE_CHARS:,} characters; a space file has at "
        f"most {MAX_SPACE_CHARS:,}"
    )


def test_a_space_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    builtin = Path(load_space.__code__.co_filename).parent / "spaces" / "digits.toml"
    path = tmp_path / "digits_bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + builtin.read_bytes())
    assert load_space(str(path)).slots() == load_space("digits").slots()


# --- train --lr ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_train_refuses_a_learning_rate_that_is_not_finite(tmp_path: Path, value: str) -> None:
    result = run(
        "train", "--arch", DIGITS, "--dataset", "digits", "--epochs", "1",
        "--out", str(tmp_path / "out"), "--lr", value,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--lr" in result.stderr
    assert "finite" in result.stderr or "range" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--timeout", "--cpus-per-child", "--gpus-per-child"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_search_refuses_seconds_and_resources_that_are_not_finite(
    tmp_path: Path, option: str, value: str
) -> None:
    result = run(
        "search", "--space", "digits", "--dataset", "digits", "--trials", "1",
        "--out", str(tmp_path / "out"), option, value,
    )  # fmt: skip
    assert result.exit_code == 2
    assert f"Invalid value for '{option}': {value!r} is not a finite number." in result.stderr
    assert not (tmp_path / "out").exists()
