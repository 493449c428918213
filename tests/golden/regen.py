"""Regenerate the golden files: every examples/*.arch -> tests/golden/<name>.py, and the
supernet of each one-shot space -> tests/golden/supernet_<space>.py.

Run after an intended change to the generated code, then review the diff:
    .venv/bin/python tests/golden/regen.py
"""

from __future__ import annotations

from pathlib import Path

from nasforge.codegen import generate
from nasforge.codegen.supernet import generate_supernet
from nasforge.controller.oneshot import supernet_spec
from nasforge.controller.space import load_space
from nasforge.grammar import parse

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent


def golden_pairs() -> list[tuple[Path, Path]]:
    return [
        (arch, GOLDEN / f"{arch.stem}.py") for arch in sorted((ROOT / "examples").glob("*.arch"))
    ]


SUPERNET_SPACES = ("nb201", "darts", "enas_macro")


def supernet_golden(space: str) -> tuple[str, Path]:
    """The generated supernet of a built-in space and its golden file."""
    source = generate_supernet(supernet_spec(load_space(space)))
    return source, GOLDEN / f"supernet_{space}.py"


def main() -> None:
    for arch_path, golden_path in golden_pairs():
        source = generate(parse(arch_path.read_text(encoding="utf-8"), str(arch_path)))
        golden_path.write_text(source, encoding="utf-8")
        print(f"wrote {golden_path.relative_to(ROOT)}")
    for space in SUPERNET_SPACES:
        source, golden_path = supernet_golden(space)
        golden_path.write_text(source, encoding="utf-8")
        print(f"wrote {golden_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
