"""Reading CLI input: architectures (a file, `-` for stdin, or a --arch string), KEY=VALUE pairs."""

from __future__ import annotations

import ast
import math
import sys
from typing import TextIO

import click
from nasforge.grammar import parse
from nasforge.grammar.ir import Arch
from nasforge.grammar.limits import MAX_SOURCE_CHARS

from . import Failure

STDIN = "-"
BYTE_ORDER_MARK = "\ufeff"


def read_text(path: str) -> tuple[str, str]:
    """(display name, text) of a file path or of `-` (stdin); Failure when unreadable.

    At most MAX_SOURCE_CHARS + 1 characters are read, so an endless input (/dev/zero, a
    pipe that never closes) is refused at once; a UTF-8 byte-order mark at the start is
    dropped (editors write one)."""
    name = "<stdin>" if path == STDIN else path
    try:
        if path == STDIN:
            text = _read_limited(sys.stdin)
        else:
            with open(path, encoding="utf-8") as handle:
                text = _read_limited(handle)
    except OSError as err:
        raise Failure(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise Failure(f"cannot read {path}: not UTF-8 text (byte {err.start})") from None
    if len(text) > MAX_SOURCE_CHARS:
        raise Failure(
            f"cannot read {name}: more than {MAX_SOURCE_CHARS:,} characters; an architecture "
            f"has at most {MAX_SOURCE_CHARS:,}"
        )
    return name, text


def _read_limited(handle: TextIO) -> str:
    """Up to MAX_SOURCE_CHARS + 1 characters of `handle`, without a leading byte-order mark."""
    text = handle.read(MAX_SOURCE_CHARS + 1)
    if text.startswith(BYTE_ORDER_MARK):
        text = text[1:] + handle.read(1)
    return text


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


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and infinities (which compare false to any bound)."""

    name = "finite float"

    def convert(self, value: object, param: object, ctx: object) -> object:
        number = super().convert(value, param, ctx)  # type: ignore[arg-type]
        if not math.isfinite(number):  # type: ignore[arg-type]
            self.fail(f"{value!r} is not a finite number.", param, ctx)  # type: ignore[arg-type]
        return number
