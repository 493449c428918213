"""`nasforge --help`, every command's --help and `nasforge validate` import no torch
(torch alone takes seconds to import); the time is measured in benchmarks/bench_cli.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nasforge.runtime.cli import COMMANDS

EXAMPLE = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.arch"))[0]

CODE = """
import sys
from nasforge.runtime.cli import cli
for args in {calls!r}:
    try:
        cli.main(args, prog_name="nasforge", standalone_mode=False)
    except SystemExit as exit:
        assert not exit.code, (args, exit.code)
print("torch" in sys.modules, sorted(m for m in ("torch", "numpy", "onnx") if m in sys.modules))
"""


def run_cli(*calls: list[str]) -> subprocess.CompletedProcess[str]:
    code = CODE.format(calls=list(calls))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_validate_imports_no_torch() -> None:
    result = run_cli(["validate", str(EXAMPLE)])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\nFalse []\n"


def test_help_of_every_command_imports_no_torch() -> None:
    result = run_cli(["--help"], *[[name, "--help"] for name in COMMANDS])
    assert result.returncode == 0, result.stderr
    assert "Commands:" in result.stdout and "--strategy" in result.stdout
    assert result.stdout.endswith("False []\n")
