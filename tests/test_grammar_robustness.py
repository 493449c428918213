"""Robustness: whatever the text, parse() succeeds or raises an ArchError, with work
linear in the text's length.

Random text (all of unicode, NUL bytes, the language's own tokens), mutations of
valid canonical strings (deleted, duplicated, swapped and replaced tokens, huge
numbers, unicode) and very large inputs. Any other exception, or a parse whose work
outgrows the text (EVENTS_PER_CHAR), is a bug in grammar/.

Work, not seconds: a parse's work is counted in Python trace events (function calls,
lines executed, returns; sys.settrace). The count is the same on every machine and
under any load, and superlinear work in the parser, the transformer, the validation or
the error reporting shows in it (work inside one C call, such as a regular-expression
match, does not). The seconds are measured in benchmarks/bench_grammar.py.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nasforge.grammar import ArchError, ArchSyntaxError, limits, parse, to_text
from nasforge.grammar.ir import Arch
from strategies import archs, fast

T = TypeVar("T")

# Measured: 45-58 trace events per character on the largest accepted texts (2.9-3.8
# million for 65,536 characters) and up to ~1,200 events more on a short text; the bound
# is about twice that. Refusing a text over the size limit and showing the error takes
# 80-600 events, whatever the text's length.
EVENTS_PER_CHAR = 120
EVENTS_BASE = 10_000
EVENTS_TO_REFUSE = 2_000
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
CANONICAL = tuple(
    to_text(parse(p.read_text(encoding="utf-8"))) for p in sorted(EXAMPLES_DIR.glob("*.arch"))
)

# Words and marks of the language, so random text often gets past the first token.
TOKENS = (
    "cnn", "rnn", "cells", "input", "classes", "lr", "base", "inject", "cell", "out",
    "unused", "concat", "add", "mul", "conv", "maxpool", "nobn", "lrn", "tanh", "relu",
    "nasnet", "darts", "nb201", "normal", "reduction", "skip", "sep3x3", "none", "n", "filters",
    "stem", "cifar", "L1", "L2", "N0", "N3", "S0", "S2", "3x32x32", "3x3", "s2x2", "n36",
    "0.1", "1e-3", "10", "0", "<-", ":", ";", "=", "(", ")", ",", "#", " ", "\n", "\t", "\r",
    "\x00", "x", "-", "<", "é", "\u2028", "\ufeff", "\U0001f600",
)  # fmt: skip

TOKEN_RE = re.compile(r"\s+|[A-Za-z0-9_.]+|<-|.", re.DOTALL)

HUGE_NUMBERS = st.one_of(
    st.integers(10**9, 10**80).map(str),
    st.integers(1, 5000).map(lambda n: "9" * n),
    st.sampled_from(("1e999", "1e-999", "0.0", "00000000000", "9" * 40 + ".5")),
)
ODD_TEXT = st.one_of(
    st.text(st.characters(codec=None), min_size=1, max_size=4),
    st.sampled_from(("\x00", "\ud800", "\u00a0", "\u2028", "\ufeff", "\r", "\x0c", "\x1b[31m")),
)


def parse_or_error(text: str) -> Arch | ArchError:
    try:
        return parse(text, "fuzz.arch")
    except ArchError as err:
        return err


def counted(func: Callable[[], T]) -> tuple[T, int]:
    """func()'s value and its work: the Python trace events it caused (each function call,
    each line executed, each return), counted with sys.settrace."""
    events = 0

    def count(_frame: object, _event: str, _arg: object) -> object:
        nonlocal events
        events += 1
        return count  # trace the lines of every function called, too

    previous = sys.gettrace()
    sys.settrace(count)
    try:
        value = func()
    finally:
        sys.settrace(previous)
    return value, events


@pytest.fixture(scope="module", autouse=True)
def built_parser() -> None:
    """Build and cache the parser and its table of common mistakes (and compile what the
    error paths compile) before any parse is counted."""
    for text in (*CANONICAL, "", "cnn x", "cnn input", "\u00e9", "L1:", "rnn base 99999999999"):
        parse_or_error(text)


def check_parse(text: str) -> None:
    """parse(text) either works (and what it gives round-trips) or raises an ArchError,
    and its work is linear in the text's length."""
    result, events = counted(lambda: parse_or_error(text))
    assert events <= EVENTS_BASE + EVENTS_PER_CHAR * len(text), (
        f"parse took {events:,} trace events on a {len(text):,}-character text"
    )
    if isinstance(result, ArchError):
        err = result
        shown = str(err)  # formatting the error must not fail either
        assert shown.startswith("fuzz.arch")
        assert ": error: " in shown
        if err.line:
            assert 1 <= err.line <= text.count("\n") + 1
            assert err.column >= 1
        if isinstance(err, ArchSyntaxError):
            assert err.line >= 1 and err.expected
    else:
        arch = result
        canonical = to_text(arch)
        assert parse(canonical) == arch
        assert to_text(parse(to_text(arch, one_line=True))) == canonical


@fast(examples=200)
@given(st.text(st.characters(codec=None)))
def test_random_unicode_text(text: str) -> None:
    check_parse(text)


@fast(examples=200)
@given(st.lists(st.one_of(st.sampled_from(TOKENS), ODD_TEXT), max_size=40).map(" ".join))
def test_random_token_soup(text: str) -> None:
    check_parse(text)


@fast(examples=100)
@given(
    st.sampled_from(
        ("cnn input 3x32x32 classes 10\n", "rnn base 2\n", "cells nb201 input 3x32x32 classes 10\n")
    ),
    st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join),
)
def test_random_statements_after_a_valid_header(header: str, body: str) -> None:
    check_parse(header + body)


MUTATIONS = ("delete", "duplicate", "swap", "replace", "huge", "unicode", "nul", "separator")


@st.composite
def mutated(draw: st.DrawFn, sources: st.SearchStrategy[str]) -> str:
    text = draw(sources)
    if draw(st.booleans()):
        text = "; ".join(line.strip() for line in text.splitlines())
    tokens = TOKEN_RE.findall(text)
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            break
        kind = draw(st.sampled_from(MUTATIONS))
        i = draw(st.integers(0, len(tokens) - 1))
        j = draw(st.integers(0, len(tokens) - 1))
        if kind == "delete":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap":
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif kind == "replace":
            tokens[i] = draw(st.sampled_from(TOKENS))
        elif kind == "huge":
            tokens.insert(i, draw(HUGE_NUMBERS))
        elif kind == "unicode":
            tokens.insert(i, draw(ODD_TEXT))
        elif kind == "nul":
            tokens.insert(i, "\x00")
        else:
            tokens.insert(i, draw(st.sampled_from(("\n", ";", " ; ", "\n\n", "#"))))
    return "".join(tokens)


@fast(examples=300)
@given(mutated(st.sampled_from(CANONICAL)))
def test_mutated_examples(text: str) -> None:
    check_parse(text)


@fast(examples=150)
@given(mutated(archs().map(to_text)))
def test_mutated_generated_architectures(text: str) -> None:
    check_parse(text)


@fast(examples=100)
@given(st.sampled_from(CANONICAL), st.integers(0, 2000), HUGE_NUMBERS)
def test_numbers_replaced_by_huge_ones(text: str, which: int, number: str) -> None:
    """Every number of a valid text, replaced by a huge one, is caught before int() sees it."""
    numbers = list(re.finditer(r"\d+", text))
    match = numbers[which % len(numbers)]
    check_parse(text[: match.start()] + number + text[match.end() :])


ONE_MB = 1_000_000
LONG_TEXTS = {
    "1 MB of letters": "x" * ONE_MB,
    "1 MB of NUL bytes": "\x00" * ONE_MB,
    "1 MB of new lines": "\n" * ONE_MB,
    "1 MB of emoji": "\U0001f600" * ONE_MB,
    "a valid text padded to 1 MB with a comment": CANONICAL[0] + "#" * ONE_MB,
    "1 MB of anchors": "cnn input 3x32x32 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8 <-"
    + " L1" * (ONE_MB // 3),
    "1 MB of layers": "cnn input 3x32x32 classes 10\n"
    + "".join(f"L{i}: conv 3x3 n8\n" for i in range(1, 60_000)),
}


@pytest.mark.parametrize("name", sorted(LONG_TEXTS))
def test_one_megabyte_inputs_are_refused_unread(name: str) -> None:
    text = LONG_TEXTS[name]
    assert len(text) >= ONE_MB

    def refuse_and_show() -> tuple[Arch | ArchError, str]:
        error = parse_or_error(text)
        return error, str(error)

    (error, shown), events = counted(refuse_and_show)
    assert isinstance(error, ArchError)
    assert events <= EVENTS_TO_REFUSE, f"{events:,} trace events to refuse {len(text):,} characters"
    assert "an architecture has at most 65,536" in shown
    assert len(shown) < 500  # the context shows a window of the line, not all of it


def _at_limit(text: str) -> str:
    return text[: limits.MAX_SOURCE_CHARS]


LIMIT_TEXTS = {
    # The largest texts the parser reads in full, each with a mistake at its end.
    "anchors": _at_limit(
        "cnn input 3x32x32 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8 <-" + " L1" * 30_000
    ),
    "layers": _at_limit(
        "cnn input 3x32x32 classes 10\n" + "".join(f"L{i}: conv 3x3 n8\n" for i in range(1, 5000))
    ),
    "edges": _at_limit(
        "cells darts input 3x32x32 classes 10\nnormal:\n  S2 = add(" + "skip(S0), " * 8000
    ),
}


@pytest.mark.parametrize("name", sorted(LIMIT_TEXTS))
def test_largest_accepted_texts_parse_in_linear_work(name: str) -> None:
    text = LIMIT_TEXTS[name]
    assert len(text) == limits.MAX_SOURCE_CHARS
    check_parse(text)


def test_many_valid_statements_are_caught_by_the_limits() -> None:
    layers = limits.MAX_LAYERS + 50
    text = "cnn input 3x32x32 classes 10\n" + "".join(
        f"L{i}: conv 3x3 n8{' <- L1' if i > 1 else ''}\n" for i in range(1, layers + 1)
    )
    with pytest.raises(ArchError, match="the number of layers is 306"):
        parse(text)
    nodes = "".join(f"N{i}: add tanh\n" for i in range(2 * limits.MAX_BASE + 10))
    with pytest.raises(ArchError, match="is one too many"):
        parse(f"rnn base {limits.MAX_BASE}\n{nodes}")
