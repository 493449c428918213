"""Jinja2 rendering and black formatting of generated files.

Before a template runs, `render` walks its whole context and lets through only
numbers, booleans, names that are plain identifiers (handed out by a
Namespace or taken from the op table), and the canonical architecture text
(checked character by character). So a template cannot print input text as
code even by mistake.
"""

from __future__ import annotations

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


def format_source(source: str) -> str:
    """The source formatted by black (imported here: it costs time to import)."""
    import black

    return black.format_str(source, mode=black.Mode(line_length=88))
