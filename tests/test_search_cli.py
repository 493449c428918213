"""`nasforge search` and `nasforge report`: the files written, exit codes, the report redraw."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch
from cli_runner import run
from click.testing import Result
from nasforge.codegen import load_file
from nasforge.grammar import parse, to_text
from search_doubles import interrupt_search_after


def table_search(table: Path, out: Path, *extra: str) -> Result:
    return run(
        "search", "--space", "nb201", "--evaluator", "table", "--table", table,
        "--strategy", "evolution", "--trials", "24", "--workers", "4", "--out", out,
        "--no-progress", "--no-onnx", *extra,
    )


def rows(out: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(out / "search.db") as db:
        return db.execute("SELECT id, arch, status, reward, repeat_of FROM trials ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def table_out(table: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("search") / "run"
    result = table_search(table, out)
    assert result.exit_code == 0, result.output
    return out


def test_table_search_writes_its_files(table_out: Path) -> None:
    for name in ("search.db", "best.arch", "best_model.py", "report.md", "rewards.png", "summary.json"):
        assert (table_out / name).is_file(), name
    assert not (table_out / "best_model.onnx").exists()  # --no-onnx
    stored = rows(table_out)
    assert [r[0] for r in stored] == list(range(1, 25))
    best = max((r for r in stored if r[2] == "ok"), key=lambda r: (r[3], -r[0]))  # type: ignore[operator]
    summary = json.loads((table_out / "summary.json").read_text())
    # val_acc and simulated_seconds: the table row's valid12 and time12 (test_search_cli_edges.py)
    assert summary["best"] == {
        "trial": best[0], "reward": best[3], "arch": best[1], "build_kwargs": {},
        "val_acc": summary["best"]["val_acc"],
        "simulated_seconds": summary["best"]["simulated_seconds"],
    }  # fmt: skip
    best_text = (table_out / "best.arch").read_text()
    assert best_text.startswith(f"# The best architecture of this search: trial {best[0]}, ")
    assert parse(best_text).family == "cells"
    generated = load_file(table_out / "best_model.py")
    assert to_text(parse(generated.ARCH), one_line=True) == best[1]
    report = (table_out / "report.md").read_text()
    assert f"- best: trial {best[0]}, reward {best[3]:.6f}" in report  # type: ignore[str-format]
    assert "| 1 | " in report and "first quarter of the trials" in report
    assert (table_out / "rewards.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_prints_and_redraws(table_out: Path) -> None:
    before = (table_out / "report.md").read_text()
    (table_out / "report.md").unlink()
    (table_out / "rewards.png").unlink()
    result = run("report", table_out, "--top", "3")
    assert result.exit_code == 0, result.output
    assert "## Top 3" in result.stdout and "| 3 | " in result.stdout and "| 4 | " not in result.stdout
    assert (table_out / "rewards.png").stat().st_size > 10_000
    # The same summary lines as the search's own report.
    assert result.stdout.split("## Top")[0] == before.split("## Top")[0]


def test_resume_with_more_trials_extends_the_search(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert table_search(table, out).exit_code == 0
    first = rows(out)
    result = run(
        "search", "--space", "nb201", "--evaluator", "table", "--table", table,
        "--strategy", "evolution", "--trials", "32", "--workers", "4", "--out", out,
        "--no-progress", "--no-onnx", "--resume",
    )
    assert result.exit_code == 0, result.output
    assert "resumed at step 6: 24 trials were stored" in result.stderr
    assert rows(out)[:24] == first and len(rows(out)) == 32


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "nope", "--evaluator", "table", "--table", "T"], "unknown space 'nope'; valid spaces: "),
        (["--space", "nb201", "--strategy", "annealing"], "Invalid value for '--strategy'"),
        (["--space", "digits", "--dataset", "imagenet"], "unknown dataset 'imagenet'; choose one of digits, "),
        (["--space", "nb201", "--evaluator", "table"], "--evaluator table needs --table PATH"),
        (["--space", "nb201", "--evaluator", "table", "--table", "missing.csv"], "--table missing.csv: no such file"),
        (["--space", "digits"], "--evaluator train needs --dataset"),
        (["--space", "digits", "--dataset", "cifar10"], "cifar10 needs --data-dir"),
        (["--space", "nb201", "--evaluator", "table", "--table", "T", "--resume"], "--resume: there is no search to resume in "),
        (["--space", "nb201", "--evaluator", "table", "--table", "T", "--option", "lr"], "--option 'lr': expected KEY=VALUE"),
        (["--space", "nb201", "--evaluator", "table", "--table", "T", "--strategy", "random", "--option", "lr=0.1"], "unknown option 'lr' for --strategy random; choose one of depth"),
        (["--space", "nb201", "--evaluator", "table", "--table", "T", "--replicas", "2", "--ps-shards", "2"], "--replicas, --ps-shards need --backend ray"),
        (["--space", "nb201", "--evaluator", "table", "--table", "T", "--backend", "ray", "--address", "127.0.0.1:1"], "--address 127.0.0.1:1: no Ray cluster answers there (Connection refused); start one with `ray start --head`"),
        (["--space", "nb201", "--evaluator", "table", "--table", "T", "--backend", "ray", "--address", "head"], "--address head: expected HOST:PORT (e.g. 10.0.0.1:6379) or auto"),
        (["--space", "nb201", "--evaluator", "table", "--table", "T", "--backend", "ray", "--strategy", "random", "--replicas", "2"], "--replicas and --ps-shards drive the asynchronous REINFORCE controller: they need --strategy reinforce"),
        (["--space", "nb201", "--evaluator", "table", "--table", "T", "--backend", "ray", "--batch", "4", "--children", "2"], "--batch 4 and --children 2 disagree; give one"),
        (["--space", "nb201", "--evaluator", "table", "--table", "T", "--backend", "ray", "--option", "screen=100"], "--option screen: the Ray backend's replicas keep no state between updates"),
        (["--space", "nb201", "--evaluator", "table", "--table", "T", "--backend", "ray", "--ps-shards", "17"], "--ps-shards 17: a shard holds whole parameter tensors and the controller of space nb201 has 16; use at most 16"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [str(table) if a == "T" else a for a in args]
    result = run("search", *args, "--trials", "4", "--out", tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "search.db").exists()  # a failed start leaves no store


def test_a_store_from_before_the_ray_backend_resumes(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "old"
    assert table_search(table, out, "--trials", "8").exit_code == 0
    with sqlite3.connect(out / "search.db") as db:
        config = json.loads(db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
        for key in ("backend", "replicas", "ps_shards", "children"):
            del config[key]
        db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
    result = table_search(table, out, "--trials", "12", "--resume")
    assert result.exit_code == 0, result.output
    assert len(rows(out)) == 12
    refused = table_search(table, out, "--trials", "12", "--resume", "--backend", "ray")
    assert refused.exit_code == 2
    assert "--backend ray (the stored search has local)" in refused.output


def test_an_out_dir_holding_a_search_is_not_overwritten(table: Path, table_out: Path) -> None:
    before = rows(table_out)
    result = table_search(table, table_out)
    assert result.exit_code == 2
    assert f"{table_out} already holds a search (search.db); add --resume" in result.stderr
    result = table_search(table, table_out, "--resume", "--seed", "1")
    assert result.exit_code == 2
    assert (
        f"--resume: {table_out} holds a different search: --seed 1 (the stored search has 0)"
        in result.stderr
    )
    assert rows(table_out) == before
    result = run("report", table_out.parent / "elsewhere")
    assert result.exit_code == 2 and "holds no search (no search.db)" in result.stderr


def test_a_failed_onnx_export_is_recorded_not_fatal(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasforge.runtime.onnx_export as onnx_export

    def broken(*args: object, **kwargs: object) -> None:
        raise onnx_export.ExportError("the exporter gave up")

    monkeypatch.setattr(onnx_export, "export_model", broken)
    out = tmp_path / "run"
    result = run(
        "search", "--space", "nb201", "--evaluator", "table", "--table", table,
        "--strategy", "random", "--trials", "4", "--out", out, "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "could not be exported to ONNX (FAILED: ExportError: the exporter gave up" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outputs"]["best_model.onnx"].startswith("FAILED: ExportError: the exporter gave up")
    assert "- best_model.onnx: FAILED: ExportError" in (out / "report.md").read_text()
    assert not (out / "best_model.onnx").exists()
    assert (out / "best_model.py").is_file()


@pytest.mark.slow
def test_train_search_on_digits_keeps_the_best_weights_and_exports_them(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run(
        "search", "--space", "digits", "--dataset", "digits", "--epochs", "1",
        "--strategy", "random", "--trials", "4", "--workers", "2", "--out", out,
        "--device", "cpu", "--no-progress", "--timeout", "120",
    )
    assert result.exit_code == 0, result.output
    assert not (out / "weights").exists()
    summary = json.loads((out / "summary.json").read_text())
    onnx = summary["outputs"]["best_model.onnx"]
    assert onnx.startswith("exported with trained weights"), onnx
    assert (out / "best_model.onnx").stat().st_size > 1000
    model = load_file(out / "best_model.py").build_model()
    model.load_state_dict(torch.load(out / "best_weights.pt", weights_only=True))
    stored = rows(out)
    assert len(stored) == 4 and all(r[2] == "ok" for r in stored)
    with sqlite3.connect(out / "search.db") as db:
        params, macs, worker = db.execute(
            "SELECT parameters, macs, worker FROM trials WHERE id = ?", (summary["best"]["trial"],)
        ).fetchone()
    assert params == sum(p.numel() for p in model.parameters()) and macs > 0
    assert worker.startswith("pool-")


def test_ctrl_c_says_how_to_continue(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = interrupt_search_after(monkeypatch, 5)
    out = tmp_path / "run"
    result = table_search(table, out)
    assert result.exit_code == 130
    assert f"nasforge: interrupted; 5 trials are stored in {out / 'search.db'}: run the same " in result.stderr
    monkeypatch.setattr("nasforge.runtime.search.loop.run_search", real)
    assert table_search(table, out, "--resume").exit_code == 0
    assert [r[0] for r in rows(out)] == list(range(1, 25))
