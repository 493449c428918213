"""Reading CLI input: architectures (a file, `-` for stdin, or a --arch string), KEY=VALUE pairs."""

from __future__ import annotations

import ast
import sys

from nasforge.grammar import parse
from nasforge.grammar.ir import Arch

from . import Failure

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


def parse_pairs(
    pairs: tuple[str, ...], flag: str, example: str, *, allow_none: bool = False
) -> dict[str, object]:
    """`flag KEY=VALUE` pairs -> keyword arguments; values are numbers, true or false
    (and none when `allow_none`); Failure naming the pair otherwise."""
    words: dict[str, object] = {"true": True, "false": False}
    if allow_none:
        words["none"] = None
    allowed = "a number, true, false or none" if allow_none else "a number, true or false"
    values: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key.isidentifier():
            raise Failure(f"{flag} {pair!r}: expected KEY=VALUE, such as {example}")
        if raw.lower() in words:
            values[key] = words[raw.lower()]
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise Failure(f"{flag} {pair!r}: the value must be {allowed}")
        values[key] = value
    return values
