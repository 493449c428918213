"""A real `nasforge search` process is SIGKILLed mid-run and resumed: no completed trial is
lost or changed, none is evaluated twice, and the trials come out exactly as in a run that
was never interrupted."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from nasforge.runtime.cli import cli
from search_doubles import poll_until, write_nb201_table

TRIALS = 24
# Waits end after this long only if something hangs: the test bounds no speed (a loaded
# machine may take minutes), and without a bound a hang would stop the suite.
HANG_POLLS = 30_000  # looks at most this often (minutes); ends the wait only on a hang
COLUMNS = "id, step, slot, arch, status, reward, repeat_of, metrics, seconds, worker, finished_at"


def command(table: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "nasforge.runtime.cli", "search", "--space", "nb201",
        "--evaluator", "table", "--table", str(table), "--strategy", "reinforce",
        "--trials", str(TRIALS), "--workers", "2", "--seed", "4", "--out", str(out),
        "--no-progress", "--no-onnx", *extra,
    ]  # fmt: skip


def stored(out: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(out / "search.db", timeout=30) as db:
        return db.execute(f"SELECT {COLUMNS} FROM trials ORDER BY id").fetchall()


def count(out: Path) -> int:
    try:
        with sqlite3.connect(out / "search.db", timeout=30) as db:
            return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (Linux /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            children = {int(c) for c in task.read_text().split()}
            todo += list(children - found)
            found |= children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_sigkill_and_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    table = write_nb201_table(tmp_path / "nb201.csv")
    reference = tmp_path / "reference"
    # The reference evaluates in-process; the executor changes where a trial runs, not what
    # is proposed or how it scores, so both runs must store the same trials.
    # (In this process: one interpreter start less.)
    done = CliRunner().invoke(cli, command(table, reference, "--executor", "inline")[3:])
    assert done.exit_code == 0, done.output

    out = tmp_path / "killed"
    process = subprocess.Popen(
        command(table, out, "--executor", "pool"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    children: set[int] = set()

    def seven_stored_or_ended() -> bool:
        children.update(descendants(process.pid))
        return count(out) >= 7 or process.poll() is not None

    poll_until(seven_stored_or_ended, polls=HANG_POLLS, interval=0.02)
    assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
    assert count(out) >= 7, "the search stored fewer than 7 trials and is still running"
    children |= descendants(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()  # type: ignore[union-attr]
    before = stored(out)
    assert 7 <= len(before) < TRIALS, "the kill should land mid-run"
    # The fork server and trial processes notice and end: no orphan keeps a core busy.
    assert children
    poll_until(lambda: not any(alive(pid) for pid in children), polls=HANG_POLLS)
    assert not [pid for pid in children if alive(pid)]

    resumed = subprocess.run(
        command(table, out, "--executor", "pool", "--resume"), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at step" in resumed.stderr
    after = stored(out)
    # Every trial completed before the kill is still there, unchanged (same worker and
    # finish time: it was not run again).
    by_id = {row[0]: row for row in after}
    assert all(by_id[row[0]] == row for row in before)
    # No trial twice, none missing, no architecture evaluated twice.
    assert [row[0] for row in after] == list(range(1, TRIALS + 1))
    evaluated = [row[3] for row in after if row[4] != "repeat"]
    assert len(evaluated) == len(set(evaluated))
    # The strongest check: the same sequence as the uninterrupted run.
    identity = [row[:7] for row in after]
    assert identity == [row[:7] for row in stored(reference)]
    assert (out / "best.arch").read_text() == (reference / "best.arch").read_text()
