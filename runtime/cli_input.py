"""Reading architectures for CLI commands: a file, `-` for stdin, or a --arch string."""

from __future__ import annotations

import sys

from nasforge.grammar import parse
from nasforge.grammar.ir import Arch

from .cli import Failure

STDIN = "-"


def read_text(path: str) -> tuple[str, str]:
    """(display name, text) of a file path or of `-` (stdin); Failure when unreadable."""
    try:
        if path == STDIN:
            return "<stdin>", sys.stdin.read()
        with open(path, encoding="utf-8") as handle:
            return path, handle.read()
    except OSError as err:
        raise Failure(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise Failure(f"cannot read {path}: not UTF-8 text (byte {err.start})") from None


def read_arch(path: str | None, arch: str | None) -> Arch:
    """The validated IR of one architecture given as ARCH (file or `-`) or --arch STRING."""
    if (path is None) == (arch is None):
        raise Failure("give one architecture: a FILE, '-' for stdin, or --arch STRING")
    name, text = ("<arch>", arch) if arch is not None else read_text(path)  # type: ignore[arg-type]
    return parse(text, name)
