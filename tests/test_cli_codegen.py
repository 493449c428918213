"""`nasforge compile` and `nasforge info`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli_runner import run
from nasforge.codegen import generate
from nasforge.codegen.cost import cost
from nasforge.grammar import parse

ROOT = Path(__file__).resolve().parent.parent
FIG2 = ROOT / "examples" / "fig2_plain.arch"




def test_compile_to_stdout_is_generate() -> None:
    result = run("compile", str(FIG2))
    assert result.exit_code == 0
    assert result.stdout == generate(parse(FIG2.read_text()))


def test_compile_to_file_runs_standalone(tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    result = run("compile", str(FIG2), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    done = subprocess.run(
        [sys.executable, str(out)], capture_output=True, text=True, check=True, timeout=120
    )
    assert "parameters: 180,222" in done.stdout


def test_compile_never_overwrites_silently(tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    out.write_text("# the user's own file\n")
    result = run("compile", str(FIG2), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == (
        f"nasforge: error: -o {out} already exists; add --overwrite to replace it, "
        "or write elsewhere\n"
    )
    assert out.read_text() == "# the user's own file\n"
    assert run("compile", str(FIG2), "-o", str(out), "--overwrite").exit_code == 0
    assert out.read_text() == generate(parse(FIG2.read_text()))


def test_compile_no_format_and_stdin() -> None:
    text = FIG2.read_text()
    result = run("compile", "-", "--no-format", stdin=text)
    assert result.exit_code == 0
    assert result.stdout == generate(parse(text), black=False)


def test_compile_into_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "model.py"
    result = run("compile", str(FIG2), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == (
        f"nasforge: error: -o {out}: the folder {out.parent} does not exist; create it "
        "first (e.g. mkdir -p) or write elsewhere\n"
    )
    assert not out.parent.exists()


def test_compile_bad_architecture_exits_2_with_position() -> None:
    result = run("compile", "--arch", "cnn input 3x32x32 classes 10; L1: conv 3x3")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "<arch>:1:31: error: L1 is a conv layer and needs a filter count, such as n36\n"
        "  cnn input 3x32x32 classes 10; L1: conv 3x3\n"
        "                                ^\n"
    )


def test_compile_needs_exactly_one_architecture() -> None:
    assert run("compile").exit_code == 2
    both = run("compile", str(FIG2), "--arch", "rnn base 2")
    assert both.exit_code == 2
    assert "give one architecture" in both.stderr


def test_info_json_matches_the_cost_model() -> None:
    result = run("info", str(FIG2), "--json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    expected = cost(parse(FIG2.read_text()))
    assert payload["parameters"] == expected.params == 180_222
    assert payload["multiply_adds"] == expected.macs
    assert [p["name"] for p in payload["parts"]] == ["l1", "l2", "l3", "l4", "classifier"]
    assert payload["parts"][0]["output_shape"] == [36, 32, 32]


def test_info_table() -> None:
    result = run("info", str(FIG2))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["part", "output", "parameters", "multiply-adds"]
    assert lines[-1].split()[:2] == ["total", "180,222"]
