"""The `table` evaluator: score NAS-Bench-201 cells by looking them up in a CSV.

A NAS-Bench-201-format table has one row per cell, with the columns
`index,arch,valid12,time12,valid200,test200` (see ../shared/data/README.md). The
reward is a lookup (`valid12` / 100 by default) and the cost is simulated: the
Outcome's `seconds` is the 12-epoch training time the benchmark recorded, so
strategies can be compared under NAS-Bench-201's time budget without training.

The table describes NAS-Bench-201's own CIFAR-10 network (5 cells a stage, 16
channels), so only `cells nb201` texts with exactly that header are in it.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nasforge.grammar import ArchError, NasforgeError, parse, to_text
from nasforge.grammar.ir import CellsArch
from nasforge.grammar.nb201 import from_nb201, to_nb201

from .evaluator import Evaluator, Outcome

ARCH_COLUMN = "arch"
INDEX_COLUMN = "index"
METRIC_COLUMNS = ("valid12", "time12", "valid200", "test200")
REQUIRED_COLUMNS = (INDEX_COLUMN, ARCH_COLUMN, *METRIC_COLUMNS)
# The memo maps architecture texts to outcomes; a search repeats texts a lot, but a
# caller feeding endless distinct garbage must not grow it without bound.
MAX_MEMO = 200_000
# The most of a table file that is read: NAS-Bench-201's CIFAR-10 table is 1.9 MB, so
# 16 MiB leaves room for wider tables while /dev/zero or a wrong path ends at once.
MAX_TABLE_BYTES = 16 * 2**20


def _header(ir: CellsArch) -> str:
    """The first statement of the one-line text: skeleton, input, classes, options."""
    return to_text(ir, one_line=True).split("; ", 1)[0]


# The network every row was trained as: from_nb201's defaults, whatever the cell.
NETWORK_HEADER = _header(from_nb201("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))


class TableError(NasforgeError):
    """A table file that cannot be read or is not in NAS-Bench-201 format."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.line = line
        self.problem = problem

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        return f"{where}: error: {self.problem}"


@dataclass(frozen=True)
class Row:
    """One cell of the table: its NAS-Bench-201 index and metric columns."""

    index: int
    values: dict[str, float]  # column -> value, for every numeric column of the file


def read_table(path: Path, numeric_columns: tuple[str, ...]) -> dict[str, Row]:
    """NAS-Bench-201 string -> row, from the CSV at `path`.

    Raises TableError naming the file, the line and the problem for a missing file, a
    file over MAX_TABLE_BYTES (read no further), a missing column, a short or long row,
    a value that is not a number, a quote never closed, or a cell listed twice. A UTF-8
    byte-order mark at the start is ignored.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TABLE_BYTES + 1)
    except OSError as err:
        raise TableError(path, None, f"cannot read the table: {err.strerror or err}") from None
    if len(data) > MAX_TABLE_BYTES:
        raise TableError(
            path,
            None,
            f"the table is larger than {MAX_TABLE_BYTES:,} bytes, the most nasforge reads "
            "(NAS-Bench-201's is 1.9 MB)",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise TableError(path, None, f"not UTF-8 text (byte {err.start})") from None
    return _read_rows(path, _Lines(text), numeric_columns)


class _Lines:
    """A csv.reader over text that knows the line each record starts on."""

    def __init__(self, text: str) -> None:
        self.reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        self.line_num = 0  # the line the latest record started on
        self.read_to = 0  # the last line read so far

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> list[str]:
        self.line_num = self.read_to + 1
        try:
            return next(self.reader)
        except csv.Error as err:
            if "end of data" not in str(err):
                self.line_num = self.reader.line_num
            raise
        finally:
            self.read_to = self.reader.line_num


def _read_rows(path: Path, reader: _Lines, numeric_columns: tuple[str, ...]) -> dict[str, Row]:
    try:
        header = next(reader, None)
        if header is None:
            raise TableError(
                path, 1, f"the file is empty; expected the header {','.join(REQUIRED_COLUMNS)}"
            )
        header = [name.strip() for name in header]
        missing = [name for name in (*REQUIRED_COLUMNS, *numeric_columns) if name not in header]
        if missing:
            raise TableError(
                path,
                1,
                f"missing column(s) {', '.join(dict.fromkeys(missing))}; "
                f"the header has {','.join(header)}",
            )
        where = {name: header.index(name) for name in header}
        numeric = tuple(dict.fromkeys((*METRIC_COLUMNS, *numeric_columns)))
        rows: dict[str, Row] = {}
        first_line: dict[str, int] = {}
        for fields in reader:
            line = reader.line_num
            if not fields:  # a blank line, as a trailing newline at the end leaves
                continue
            if len(fields) != len(header):
                raise TableError(path, line, f"{len(fields)} fields; the header has {len(header)}")
            arch = fields[where[ARCH_COLUMN]].strip()
            if arch in rows:
                raise TableError(
                    path, line, f"cell {arch} is listed twice (also on line {first_line[arch]})"
                )
            index_text = fields[where[INDEX_COLUMN]].strip()
            if not index_text.isdigit():
                raise TableError(
                    path, line, f"column {INDEX_COLUMN} is '{index_text}', not an integer"
                )
            values = {name: _number(path, line, name, fields[where[name]]) for name in numeric}
            rows[arch] = Row(int(index_text), values)
            first_line[arch] = line
    except csv.Error as err:
        if "end of data" in str(err):  # inside a quoted field when the file ended
            problem = "the quote opened on this line is never closed"
        else:
            problem = str(err)
        raise TableError(path, reader.line_num, f"not a CSV file: {problem}") from None
    if not rows:
        raise TableError(path, 2, "the table has a header but no rows")
    return rows


def _number(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise TableError(path, line, f"column {column} is '{text.strip()}', not a number")
    return value


class TableEvaluator(Evaluator):
    """Looks each `cells nb201` architecture up in a NAS-Bench-201-format CSV."""

    name = "table"

    def __init__(
        self, path: str | Path, reward_column: str = "valid12", cost_column: str = "time12"
    ) -> None:
        self.path = Path(path)
        self.reward_column = reward_column
        self.cost_column = cost_column
        self.rows = read_table(self.path, (reward_column, cost_column))
        self._memo: dict[str, Outcome] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        """The table's outcome for `arch`; the seed is unused (rows are seed averages)."""
        outcome = self._memo.get(arch)
        if outcome is None:
            outcome = self._look_up(arch)
            if len(self._memo) >= MAX_MEMO:
                self._memo.clear()
            self._memo[arch] = outcome
        # A copy of the metrics, so a caller that edits them cannot change the memo.
        return replace(outcome, metrics=dict(outcome.metrics))

    def outcome_of_nb201(self, string: str) -> Outcome:
        """The outcome of a NAS-Bench-201 cell string."""
        row = self.rows.get(string)
        if row is None:
            return Outcome.failed(f"the cell {string} is not in the table {self.path}")
        metrics: dict[str, Any] = {INDEX_COLUMN: row.index, **row.values}
        return Outcome(
            status="ok",
            reward=row.values[self.reward_column] / 100.0,  # the table holds percentages
            metrics=metrics,
            seconds=row.values[self.cost_column],
        )

    def _look_up(self, text: str) -> Outcome:
        try:
            ir = parse(text)
        except NasforgeError as err:
            return Outcome.failed(f"not a valid architecture: {err}")
        if not isinstance(ir, CellsArch) or ir.skeleton != "nb201":
            return Outcome.failed(
                f"the table's network is '{NETWORK_HEADER}'; this is a {_kind(ir)} architecture"
            )
        header = _header(ir)
        if header != NETWORK_HEADER:
            return Outcome.failed(f"the table's network is '{NETWORK_HEADER}', not '{header}'")
        try:
            string = to_nb201(ir)
        except ArchError as err:
            return Outcome.failed(f"not a NAS-Bench-201 cell: {err.message}")
        return self.outcome_of_nb201(string)


def _kind(ir: Any) -> str:
    return f"cells {ir.skeleton}" if isinstance(ir, CellsArch) else str(ir.family)
