"""Jinja2 rendering and black formatting of generated files.

Before a template runs, `render` walks its whole context and lets through only
numbers, booleans, names that are plain identifiers (handed out by a
Namespace or taken from the op table), and the canonical architecture text
(checked character by character). So a template cannot print input text as
code even by mistake.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
from pathlib import Path

import jinja2

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
    """Raise unless `value` holds only numbers, booleans, safe names and ArchText."""
    if value is None or isinstance(value, (bool, int, float, ArchText)):
        return
    if isinstance(value, str):
        if not _SAFE_WORD.match(value):
            raise ValueError(f"a template would print {value!r}, which is not a plain name")
    elif isinstance(value, (tuple, list)):
        for item in value:
            check_context(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_context(key)
            check_context(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            check_context(getattr(value, field.name))
    else:
        raise TypeError(f"a template context may not hold a {type(value).__name__}")


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
