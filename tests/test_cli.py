"""`nasforge validate` and the CLI group: in-process with CliRunner, and as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from cli_runner import run
from click.testing import CliRunner
from nasforge.grammar import NasforgeError, parse, to_text
from nasforge.runtime.cli import LazyGroup

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.arch"))

GOOD = "cnn input 3x32x32 classes 10; L1: conv 3x3 n36; L2: conv 3x3 n48 <- L1"
BAD = "cnn input 3x32x32 classes 10; L1: conv 3x3 n36; L2: conv 3x3 n48 <- L3"
BAD_MESSAGE = (
    "<arch>:1:69: error: L2 cannot read L3: it can read L1\n"
    "  cnn input 3x32x32 classes 10; L1: conv 3x3 n36; L2: conv 3x3 n48 <- L3\n"
    "                                                                      ^\n"
)




def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_validate_example_ok(path: Path) -> None:
    result = run("validate", str(path))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "ok\n", "")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_canonical_is_to_text(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    result = run("validate", "--canonical", str(path))
    assert result.exit_code == 0
    assert result.stdout == to_text(parse(text))
    one_line = run("validate", "--one-line", str(path))
    assert one_line.exit_code == 0
    assert one_line.stdout == to_text(parse(text), one_line=True) + "\n"
    # The canonical text is itself valid and canonical.
    again = run("validate", "--canonical", "--arch", one_line.stdout)
    assert again.stdout == result.stdout


def test_arch_string() -> None:
    result = run("validate", "--arch", GOOD)
    assert (result.exit_code, result.stdout) == (0, "ok\n")


def test_bad_arch_exact_message() -> None:
    result = run("validate", "--arch", BAD)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == BAD_MESSAGE


def test_stdin() -> None:
    result = run("validate", "-", stdin=GOOD.replace("; ", "\n"))
    assert (result.exit_code, result.stdout) == (0, "ok\n")
    result = run("validate", "-", stdin="cnn input 3x32x32 classes 10\nL1: conv 3x3 n36 L0\n")
    assert result.exit_code == 2
    assert result.stderr.startswith("<stdin>:2:18: error: ")
    assert "  L1: conv 3x3 n36 L0\n                   ^\n" in result.stderr


def test_several_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.arch"
    bad.write_text(BAD.replace("; ", "\n"), encoding="utf-8")
    first, second = (str(p) for p in EXAMPLES[:2])
    result = run("validate", first, str(bad), second)
    assert result.exit_code == 2
    assert result.stdout == f"{first}: ok\n{second}: ok\n"
    assert result.stderr.startswith(f"{bad}:3:21: error: L2 cannot read L3")

    result = run("validate", "--canonical", first, "--arch", GOOD)
    assert result.exit_code == 0
    expected = to_text(parse(EXAMPLES[0].read_text(encoding="utf-8")))
    assert result.stdout == f"# {first}\n{expected}# <arch>\n{to_text(parse(GOOD))}"


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.arch"
    result = run("validate", str(missing), str(EXAMPLES[0]))
    assert result.exit_code == 2
    assert result.stderr == f"nasforge: error: cannot read {missing}: No such file or directory\n"
    assert result.stdout == f"{EXAMPLES[0]}: ok\n"

    result = run("validate", str(tmp_path))
    assert result.stderr == f"nasforge: error: cannot read {tmp_path}: Is a directory\n"

    binary = tmp_path / "binary.arch"
    binary.write_bytes(b"cnn \xff\xfe")
    result = run("validate", str(binary))
    assert result.exit_code == 2
    assert result.stderr == f"nasforge: error: cannot read {binary}: not UTF-8 text (byte 4)\n"


def test_no_inputs_is_a_usage_error() -> None:
    result = run("validate")
    assert result.exit_code == 2
    assert "give at least one FILE" in result.stderr


def test_nasforge_error_from_any_command() -> None:
    @click.command()
    def boom() -> None:
        raise NasforgeError("the widget is broken")

    group = LazyGroup(commands=[boom])
    result = CliRunner().invoke(group, ["boom"])
    assert result.exit_code == 2
    assert result.stderr == "nasforge: error: the widget is broken\n"


def test_help_lists_validate() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "validate" in result.stdout


# --- real processes ------------------------------------------------------------


def _process(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sys.executable, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def test_subprocess_module() -> None:
    ok = _process("-m", "nasforge.runtime.cli", "validate", str(EXAMPLES[0]))
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "ok\n", "")
    bad = _process("-m", "nasforge.runtime.cli", "validate", "-", stdin=BAD)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr == BAD_MESSAGE.replace("<arch>", "<stdin>")
    assert "Traceback" not in bad.stderr


def test_subprocess_console_script() -> None:
    script = Path(sys.executable).with_name("nasforge")
    if not script.exists():
        pytest.skip("the nasforge console script is not installed next to this python")
    result = subprocess.run(
        [str(script), "validate", "no/such/file.arch"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    expected = "nasforge: error: cannot read no/such/file.arch: No such file or directory\n"
    assert result.stderr == expected


def test_validate_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from nasforge.runtime.cli import main\n"
        f"sys.argv = ['nasforge', 'validate', {str(EXAMPLES[0])!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'jinja2', 'onnx') if m in sys.modules)\n"
        "print('heavy:', heavy)\n"
    )
    result = _process("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\nheavy: []\n"
