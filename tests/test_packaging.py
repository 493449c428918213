"""What a pip user gets: the version, the examples and the language reference as package data
(`nasforge examples`), a wheel that builds without warnings and works away from the source
tree, and a space file of the user's own (the one the language reference shows)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from cli_runner import run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.arch"))
REFERENCE = ROOT / "grammar" / "README.md"




def test_the_version_is_the_distributions() -> None:
    import nasforge

    assert nasforge.__version__ == importlib.metadata.version("nasforge")
    result = run("--version")
    assert result.exit_code == 0
    assert result.output == f"nasforge, version {nasforge.__version__}\n"


def test_examples_lists_every_shipped_architecture() -> None:
    result = run("examples")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines[: len(EXAMPLES)]] == EXAMPLES
    assert lines[len(EXAMPLES)] == "" and "missing_arrow.arch" not in result.output
    assert "digits_cnn.arch       cnn input 1x8x8 classes 10\n" in result.output
    assert f"\n{len(EXAMPLES)} examples; `nasforge examples --copy DIR` copies them" in result.output


def test_examples_copy_into_a_folder_and_never_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    result = run("examples", "--copy", target)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.iterdir()) == sorted([*EXAMPLES, "LANGUAGE.md"])
    for name in EXAMPLES:
        assert (target / name).read_bytes() == (ROOT / "examples" / name).read_bytes()
    assert (target / "LANGUAGE.md").read_bytes() == REFERENCE.read_bytes()
    (target / "digits_cnn.arch").write_text("# edited\n")
    (target / "fig2_plain.arch").unlink()
    again = run("examples", "--copy", target)
    assert again.exit_code == 2
    assert again.stderr.startswith(f"nasforge: error: {target} already has darts_v2.arch, ")
    assert "digits_cnn.arch" in again.stderr and "; nothing was copied" in again.stderr
    assert (target / "digits_cnn.arch").read_text() == "# edited\n"
    assert not (target / "fig2_plain.arch").exists()


def test_space_help_lists_the_shipped_spaces() -> None:
    result = run("search", "--help")
    assert result.exit_code == 0
    flat = " ".join(result.output.split())
    assert (
        "A built-in search space (cifar10_v1, cifar10_v2, cifar10_v3, darts, digits, "
        "enas_macro, nasnet, nb201, ptb_rnn) or the path of a space file" in flat
    )


def test_a_space_file_from_the_language_reference_drives_a_search(tmp_path: Path) -> None:
    section = REFERENCE.read_text(encoding="utf-8").split("## Search spaces", 1)[1]
    (toml,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    space = tmp_path / "mnist_small.toml"
    space.write_text(toml, encoding="utf-8")
    out = tmp_path / "run"
    result = run(
        "search", "--space", space, "--dataset", "mnist5k", "--epochs", "1", "--trials", "2",
        "--strategy", "random", "--executor", "inline", "--device", "cpu", "--threads", "1",
        "--out", out, "--no-progress", "--no-onnx",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"]["arch"].startswith("cnn input 1x28x28 classes 10; L1: conv ")
    assert summary["best"]["val_acc"] > 0.2  # trained: above chance (0.1)
    assert f"- search: space {space}, strategy random" in (out / "report.md").read_text()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel pip builds from this tree (no isolation: the venv's setuptools), and pip's
    output."""
    folder = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
         str(folder), str(ROOT)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = folder.glob("nasforge-*.whl")
    return path, done.stdout + done.stderr


def test_the_wheel_builds_without_warnings(wheel: tuple[Path, str]) -> None:
    _, output = wheel
    assert "Warning" not in output and "warning:" not in output.lower(), output


def test_the_wheel_holds_the_examples_reference_templates_and_spaces(
    wheel: tuple[Path, str],
) -> None:
    path, _ = wheel
    names = set(zipfile.ZipFile(path).namelist())
    for name in EXAMPLES:
        assert f"nasforge/examples/{name}" in names
    assert not any("examples/bad" in name for name in names)
    for name in ("__init__.py", "grammar/README.md", "grammar/arch.lark",
                 "codegen/templates/cnn.py.jinja", "controller/spaces/digits.toml",
                 "runtime/dashboard/templates/index.html", "runtime/dashboard/static/dashboard.js",
                 "runtime/dashboard/static/chart.umd.min.js",
                 "runtime/dashboard/static/chart.js.LICENSE.md"):  # fmt: skip
        assert f"nasforge/{name}" in names, name


def test_the_unpacked_wheel_works_without_the_source_tree(
    wheel: tuple[Path, str], tmp_path: Path
) -> None:
    path, _ = wheel
    unpacked = tmp_path / "site"
    zipfile.ZipFile(path).extractall(unpacked)
    # -S: no site module, so the editable install's .pth finder is not loaded; the venv's
    # site-packages still provide torch, click and the rest.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(unpacked), sysconfig.get_paths()["purelib"]])}
    work = tmp_path / "elsewhere"
    work.mkdir()

    def nasforge(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-S", "-m", "nasforge.runtime.cli", *args],
            cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    where = subprocess.run(
        [sys.executable, "-S", "-c", "import nasforge, nasforge.runtime.cli as c; "
         "print(nasforge.__file__, c.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert all(p.startswith(str(unpacked)) for p in where.stdout.split()), where.stdout
    listed = nasforge("examples")
    assert listed.returncode == 0, listed.stderr
    assert "nb201_best.arch       cells nb201 input 3x32x32 classes 10 n 5 filters 16" in listed.stdout
    copied = nasforge("examples", "--copy", "mine")
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.name for p in (work / "mine").iterdir()) == sorted([*EXAMPLES, "LANGUAGE.md"])
    checked = nasforge("validate", "mine/nas_cifar15.arch")
    assert checked.returncode == 0 and checked.stdout == "ok\n", checked.stderr
