"""Jinja2 rendering and black formatting of generated files.

Before a template runs, `render` walks its whole context and lets through only
numbers, booleans, names that are plain identifiers (handed out by a
Namespace or taken from the op table), the canonical architecture text
(checked character by character) and constants printed as Python literals
(PythonLiteral: parsed back and compared before they get here). So a
template cannot print input text as code even by mistake.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
from pathlib import Path

import jinja2

from .preprocessing import PythonLiteral

TEMPLATES = Path(__file__).with_name("templates")

_SAFE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
# Every character the canonical printer can produce (names, numbers, lr floats, punctuation).
_CANONICAL_CHARS = re.compile(r"[A-Za-z0-9 _:;,=()<\-+.\n]*\Z")


class ArchText(str):
    """The canonical text of an architecture, allowed into a docstring and a string literal."""

    def __new__(cls, text: str) -> ArchText:
        if not _CANONICAL_CHARS.match(text) or '"""' in text:
            raise ValueError("canonical architecture text holds a character it never should")
        return super().__new__(cls, text)


def check_context(value: object) -> None:
    """Raise unless `value` holds only numbers, booleans, safe names, ArchText and
    PythonLiteral."""
    kind = type(value)
    # Exact types first: a plan is mostly ints, tuples and dataclasses, and this
    # runs on every generated file of a search.
    if kind in _SCALARS:
        return
    if kind is str:
        if not _SAFE_WORD.match(value):  # type: ignore[arg-type]
            raise ValueError(f"a template would print {value!r}, which is not a plain name")
    elif kind is tuple or kind is list:
        for item in value:  # type: ignore[attr-defined]
            check_context(item)
    elif kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            check_context(key)
            check_context(item)
    elif kind in _FIELD_NAMES or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        for name in _field_names(kind):
            check_context(getattr(value, name))
    elif isinstance(value, (bool, int, float, ArchText, PythonLiteral)):
        return
    elif isinstance(value, str):
        check_context(str(value))
    elif isinstance(value, (tuple, list)):
        check_context(list(value))
    elif isinstance(value, dict):
        check_context(dict(value))
    else:
        raise TypeError(f"a template context may not hold a {kind.__name__}")


_SCALARS = frozenset({type(None), bool, int, float, ArchText, PythonLiteral})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(kind))
    return names


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(template: str, **context: object) -> str:
    check_context(context)
    return environment().get_template(template).render(**context)


LINE_LENGTH = 88
_COMPOUND = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.Match,
)


def format_source(source: str) -> str:
    """The source as black formats it.

    Templates lay out their text the way black would, so black is given only
    the statements a template cannot lay out by itself: those with a line
    longer than black's limit, or spread over several lines. Each such
    statement goes through black.format_str once per process (statements
    recur across generated files). Tests hold the result equal to black
    formatting the whole file.
    """
    lines = source.split("\n")
    spans = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.stmt) or isinstance(node, _COMPOUND):
            continue
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        if first != last or len(lines[first]) > LINE_LENGTH:
            spans.append((first, last))
    for first, last in sorted(spans, reverse=True):  # bottom-up keeps earlier line numbers valid
        lines[first : last + 1] = _format_statement("\n".join(lines[first : last + 1])).split("\n")
    return "\n".join(lines)


def format_file(source: str) -> str:
    """The whole source through black (a file with printed literals, not on a hot path)."""
    import black

    return black.format_str(source, mode=black.Mode(line_length=LINE_LENGTH))


@functools.lru_cache(maxsize=4096)
def _format_statement(text: str) -> str:
    """One statement, at its own indentation, as black formats it in place."""
    import black

    indent = len(text) - len(text.lstrip(" "))
    depth = indent // 4
    # Nest the statement in as many blocks as its indentation, so black sees the same width.
    wrapper = "".join(" " * (4 * level) + "if True:\n" for level in range(depth))
    formatted = black.format_str(wrapper + text + "\n", mode=black.Mode(line_length=LINE_LENGTH))
    return "\n".join(formatted.rstrip("\n").split("\n")[depth:])
