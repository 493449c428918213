"""A search folder is something people copy and share: what is read from it must not run
code, a damaged store must not pass as whole, and a search must not lose the user's files."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from cli_runner import run
from click.testing import Result
from nasforge.runtime.search.store import StoreError, TrialStore, dump_state, load_state
from search_doubles import interrupt_search_after


def table_search(table: Path, out: Path, *extra: str) -> Result:
    return run(
        "search", "--space", "nb201", "--evaluator", "table", "--table", table,
        "--strategy", "reinforce", "--trials", "12", "--workers", "4", "--out", out,
        "--no-progress", "--no-onnx", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished(table: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    result = table_search(table, out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def search_copy(finished: Path, tmp_path: Path) -> Path:
    """A copy of a finished 12-trial search, to damage."""
    return Path(shutil.copytree(finished, tmp_path / "copy"))


def trial_count(out: Path) -> int:
    with sqlite3.connect(out / "search.db") as db:
        return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


def set_latest_checkpoint(out: Path, blob: bytes) -> None:
    with sqlite3.connect(out / "search.db") as db:
        db.execute(
            "UPDATE checkpoints SET state = ? WHERE step = (SELECT MAX(step) FROM checkpoints)",
            (blob,),
        )


# --- 1. a checkpoint cannot run code -------------------------------------------------


class Payload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


def torch_saved(value: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("form", ["pickle", "torch.save"])
def test_a_payload_checkpoint_is_refused_and_runs_nothing(
    search_copy: Path, table: Path, tmp_path: Path, form: str
) -> None:
    marker = tmp_path / "ran"
    payload = {"policy": Payload(marker)}
    blob = pickle.dumps(payload) if form == "pickle" else torch_saved(payload)
    set_latest_checkpoint(search_copy, blob)
    result = table_search(table, search_copy, "--trials", "16", "--resume")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "controller checkpoint of step 3" in result.stderr
    assert "nothing in it was loaded" in result.stderr
    assert "nasforge report" in result.stderr  # how to continue
    assert not marker.exists()
    assert trial_count(search_copy) == 12
    with pytest.raises(StoreError, match="nothing in it was loaded"):
        load_state(blob)
    assert not marker.exists()


def test_a_checkpoint_of_an_earlier_nasforge_still_resumes(search_copy: Path, table: Path) -> None:
    with TrialStore.open(search_copy / "search.db") as store:
        state = load_state(store.latest_checkpoint().state)  # type: ignore[union-attr]
    set_latest_checkpoint(search_copy, torch_saved(state))  # torch.save: the earlier format
    result = table_search(table, search_copy, "--trials", "16", "--resume")
    assert result.exit_code == 0, result.output
    assert trial_count(search_copy) == 16


def test_checkpoints_are_not_pickles(search_copy: Path) -> None:
    with sqlite3.connect(search_copy / "search.db") as db:
        blobs = [bytes(b) for (b,) in db.execute("SELECT state FROM checkpoints")]
    assert blobs and all(b.startswith(b"nasforge-state 1\n") for b in blobs)
    state = {"w": torch.arange(6.0).reshape(2, 3), "t": (1, None, "x"), "d": {0: [1.5, True]}}
    restored = load_state(dump_state(state))
    assert torch.equal(restored["w"], state["w"]) and restored["w"].dtype == torch.float32
    assert restored["t"] == (1, None, "x") and restored["d"] == {0: [1.5, True]}
    with pytest.raises(TypeError, match=r"state\['bad'\]: a Payload cannot be stored"):
        dump_state({"bad": Payload(Path("never"))})


def state_bytes(header: object, data: bytes = b"") -> bytes:
    import json

    text = json.dumps(header).encode()
    return b"nasforge-state 1\n" + len(text).to_bytes(8, "little") + text + data


@pytest.mark.parametrize(
    "blob",
    [
        b"nasforge-state 1\n\xff",  # cut short
        state_bytes({"t": "dict", "v": [["w", {"t": "tensor", "dtype": "float32", "shape": [10**9], "at": 0, "n": 4}]]}),
        state_bytes({"t": "tensor", "dtype": "object", "shape": [1], "at": 0, "n": 8}, b"\0" * 8),
        state_bytes({"t": "tensor", "dtype": "float32", "shape": [2], "at": -8, "n": 8}, b"\0" * 8),
        state_bytes({"t": "module", "v": ["os", "system"]}),
        state_bytes({"t": "list", "v": [1, 2]}),  # data, but not a state
        state_bytes({"t": "dict", "v": [[{"t": "list"}, 1]]}),
        state_bytes([{"t": "list", "v": []}] * 2),
    ],
)
def test_a_malformed_state_is_refused(blob: bytes) -> None:
    with pytest.raises(StoreError, match="refused, nothing in it was loaded"):
        load_state(blob)


# --- 4. a search never overwrites or removes what it did not write ------------------------


def user_files(folder: Path) -> dict[str, bytes]:
    files = {
        "weights/mine.pt": b"the user's weights",
        "report.md": b"# my own report",
        "best.arch": b"# my favourite architecture",
        "summary.json": b'{"mine": true}',
        "notes.txt": b"notes",
    }
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return files


def unchanged(folder: Path, files: dict[str, bytes]) -> bool:
    return all((folder / n).is_file() and (folder / n).read_bytes() == c for n, c in files.items())


def test_a_new_search_refuses_a_folder_holding_other_files(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    files = user_files(out)
    result = table_search(table, out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "best.arch, notes.txt, report.md, summary.json, weights/" in result.stderr
    assert "choose another --out" in result.stderr
    assert unchanged(out, files)
    assert not (out / "search.db").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert table_search(table, empty).exit_code == 0  # an empty folder is fine


def test_a_resumed_search_removes_only_its_own_files(search_copy: Path, table: Path) -> None:
    foreign = {
        "weights/mine.pt": b"the user's weights",
        "best_weights.pt": b"not the search's",  # the table evaluator keeps no weights
        "best_model.onnx": b"not the search's either",  # and this search has --no-onnx
        "notes.txt": b"notes",
    }
    for name, content in foreign.items():
        (search_copy / name).parent.mkdir(parents=True, exist_ok=True)
        (search_copy / name).write_bytes(content)
    killed_child = search_copy / "weights" / ".0123456789abcdef0123.pt.42.part"
    killed_child.write_bytes(b"a child killed while saving its weights")
    result = table_search(table, search_copy, "--trials", "16", "--resume")
    assert result.exit_code == 0, result.output
    assert unchanged(search_copy, foreign)
    assert not killed_child.exists()  # the evaluator's own file: the search's to remove
    assert trial_count(search_copy) == 16


# --- 5. a damaged store is refused, with how to salvage it --------------------------------


def refused_as_damaged(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.stderr, result.stderr


def test_random_bytes_in_the_store_are_refused(search_copy: Path, table: Path) -> None:
    import random

    path = search_copy / "search.db"
    size = path.stat().st_size
    assert size >= 5 * 4096
    at = (size // 2) // 4096 * 4096
    with path.open("r+b") as file:
        file.seek(at)
        file.write(random.Random(0).randbytes(4096))
    before = path.read_bytes()
    for result in (run("report", search_copy), table_search(table, search_copy, "--trials", "16", "--resume")):
        refused_as_damaged(result, "is damaged", "sqlite3 search.db", "nasforge report salvaged")
    assert path.read_bytes() == before  # nothing was written into it


def test_a_store_without_its_trials_table_is_refused(search_copy: Path, table: Path) -> None:
    with sqlite3.connect(search_copy / "search.db") as db:
        db.execute("DROP TABLE trials")
    refused_as_damaged(run("report", search_copy), "has no table trials")
    refused_as_damaged(table_search(table, search_copy, "--resume"), "has no table trials")
    with sqlite3.connect(search_copy / "search.db") as db:  # not silently created again
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert "trials" not in tables


@pytest.mark.parametrize(
    ("column", "value"), [("metrics", "{broken"), ("decisions", "[1, 2"), ("metrics", "[1, 2]")]
)
def test_a_row_with_broken_json_names_the_trial(search_copy: Path, column: str, value: str) -> None:
    with sqlite3.connect(search_copy / "search.db") as db:
        db.execute(f"UPDATE trials SET {column} = ? WHERE id = 5", (value,))
    refused_as_damaged(run("report", search_copy), f"trial 5's {column}")


def test_a_checkpoint_with_broken_stats_names_the_step(search_copy: Path, table: Path) -> None:
    with sqlite3.connect(search_copy / "search.db") as db:
        db.execute("UPDATE checkpoints SET stats = '{' WHERE step = 1")
    result = table_search(table, search_copy, "--trials", "16", "--resume")
    refused_as_damaged(result, "step 1's stats")


# --- 6. search.db alone holds every finished trial -------------------------------------------


def copy_of_the_db_alone(out: Path, tmp_path: Path) -> int:
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copyfile(out / "search.db", alone / "search.db")
    return trial_count(alone)


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[sqlite3.Connection]]:
    """A reader that opens each new store as soon as it exists and holds it open (as a
    dashboard or `nasforge report` in a loop would): the writer's close then does not
    checkpoint the WAL by itself."""
    readers: list[sqlite3.Connection] = []
    create = TrialStore.create.__func__  # type: ignore[attr-defined]

    def create_and_read(cls: type[TrialStore], path: Path, config: dict[str, object]) -> TrialStore:
        store = create(cls, path, config)
        readers.append(sqlite3.connect(path))
        readers[-1].execute("SELECT COUNT(*) FROM trials").fetchone()
        return store

    monkeypatch.setattr(TrialStore, "create", classmethod(create_and_read))
    yield readers
    for connection in readers:
        connection.close()


def test_a_finished_search_leaves_no_trial_only_in_the_wal(
    table: Path, tmp_path: Path, reader: list[sqlite3.Connection]
) -> None:
    out = tmp_path / "run"
    assert table_search(table, out).exit_code == 0
    assert len(reader) == 1
    assert copy_of_the_db_alone(out, tmp_path) == 12


def test_ctrl_c_leaves_no_trial_only_in_the_wal(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: list[sqlite3.Connection]
) -> None:
    interrupt_search_after(monkeypatch, 5)
    out = tmp_path / "run"
    assert table_search(table, out).exit_code == 130
    assert len(reader) == 1
    assert copy_of_the_db_alone(out, tmp_path) == 5


# --- 7. a full disk, a read-only store --------------------------------------------------------


def test_a_full_disk_is_a_clear_error_and_the_search_resumes(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasforge.runtime.search.store as store_module

    real = store_module._connect

    def small_disk(*args: object, **kwargs: object) -> sqlite3.Connection:
        connection = real(*args, **kwargs)
        (pages,) = connection.execute("PRAGMA page_count").fetchone()
        connection.execute(f"PRAGMA max_page_count = {max(pages, 12) + 30}")
        return connection

    monkeypatch.setattr(store_module, "_connect", small_disk)
    out = tmp_path / "run"
    result = table_search(table, out, "--trials", "200", "--workers", "1")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    stored = trial_count(out)
    assert 0 < stored < 200
    assert f"the disk is full; the {stored} trials stored are intact" in result.stderr
    assert "free some space and run the same command with --resume" in result.stderr
    monkeypatch.setattr(store_module, "_connect", real)
    resumed = table_search(table, out, "--trials", "200", "--workers", "1", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert trial_count(out) == 200


def test_a_full_disk_while_writing_the_files_keeps_the_search_resumable(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import nasforge.runtime.search.report as report_module

    real = report_module.write_report

    def no_space(*args: object, **kwargs: object) -> object:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(report_module, "write_report", no_space)
    out = tmp_path / "run"
    result = table_search(table, out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "No space left on device" in result.stderr
    assert "its 12 trials are stored" in result.stderr and "--resume" in result.stderr
    monkeypatch.setattr(report_module, "write_report", real)
    assert table_search(table, out, "--resume").exit_code == 0
    assert (out / "report.md").is_file() and trial_count(out) == 12


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make `folder` read-only as a CD would be: a read-only bind mount (as root, which
    ignores permissions), else the immutable attribute, else (not root) permissions."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        try:
            yield
        finally:
            os.chmod(folder, 0o755)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if mounted.returncode == 0:
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
            yield
        finally:
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
                subprocess.run(["umount", "--lazy", str(folder)], check=True)  # still in use
        return
    files = [folder, *folder.iterdir()]
    if subprocess.run(["chattr", "+i", *map(str, files)], capture_output=True).returncode:
        pytest.skip("no way to make a folder read-only for root here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=True)


def test_a_read_only_store_is_reported_and_not_resumed(search_copy: Path, table: Path) -> None:
    before = {p.name: p.read_bytes() for p in search_copy.iterdir() if p.is_file()}
    with read_only(search_copy):
        with pytest.raises(OSError):
            (search_copy / "probe").write_text("x")  # the folder really is read-only
        report = run("report", search_copy)
        assert report.exit_code == 0, report.output
        assert "## Top 10" in report.stdout
        assert "read-only" in report.stderr and "not rewritten" in report.stderr
        resumed = table_search(table, search_copy, "--trials", "16", "--resume")
        assert resumed.exit_code == 2, resumed.output
        assert "Traceback" not in resumed.output
        assert f"{search_copy} is read-only" in resumed.stderr
        assert "copy the whole folder" in resumed.stderr
        with TrialStore.open_readonly(search_copy / "search.db") as store:
            assert store.count() == 12
    assert {p.name: p.read_bytes() for p in search_copy.iterdir() if p.is_file()} == before


def test_a_killed_search_on_read_only_media_is_read_with_its_wal(tmp_path: Path) -> None:
    from nasforge.runtime.search.store import TrialRecord

    live = tmp_path / "live"
    store = TrialStore.create(live / "search.db", {"note": "killed"})
    for n in (1, 2, 3):
        store.add_trial(TrialRecord(id=n, step=0, slot=n - 1, arch=f"a{n}", status="ok", reward=0.5))
    copies = {}
    for name, files in (("whole", ("", "-wal", "-shm")), ("no-shm", ("", "-wal"))):
        copies[name] = tmp_path / name
        copies[name].mkdir()
        for suffix in files:  # copied as a killed search leaves them: the WAL not checkpointed
            shutil.copyfile(live / f"search.db{suffix}", copies[name] / f"search.db{suffix}")
    store.close()
    assert (copies["whole"] / "search.db-wal").stat().st_size > 0
    with (
        read_only(copies["whole"]),
        TrialStore.open_readonly(copies["whole"] / "search.db") as readonly,
    ):
        assert readonly.count() == 3
    with read_only(copies["no-shm"]), pytest.raises(StoreError, match=r"search\.db-wal holds"):
        TrialStore.open_readonly(copies["no-shm"] / "search.db")


# --- 8. one search at a time in a folder --------------------------------------------------


def test_a_second_search_on_a_running_ones_folder_is_refused(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "nasforge.runtime.cli", "search", "--space", "nb201",
        "--evaluator", "table", "--table", str(table), "--strategy", "random",
        "--trials", "1000000", "--out", str(out), "--no-progress", "--no-onnx",
    ]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(6000):  # until it has stored a trial (bounded polling, not a deadline)
            if (out / "search.db").exists() and _count_or_zero(out) > 0:
                break
            assert first.poll() is None, "the first search ended early"
            time.sleep(0.05)
        for extra in ((), ("--resume",)):
            second = table_search(table, out, "--trials", "1000000", "--strategy", "random", *extra)
            assert second.exit_code == 2, second.output
            assert f"another search is running in {out}: pid {first.pid}" in second.stderr
            assert "started " in second.stderr
        assert first.poll() is None  # the running search went on
    finally:
        first.kill()
        first.wait()
    done = table_search(table, out, "--trials", "1", "--strategy", "random", "--resume")
    assert done.exit_code == 0, done.output  # a killed search's lock is gone with it


def _count_or_zero(out: Path) -> int:
    try:
        return trial_count(out)
    except sqlite3.OperationalError:
        return 0
