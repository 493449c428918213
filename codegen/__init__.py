"""IR -> a readable, standalone PyTorch file, and the cost model that goes with it."""

from __future__ import annotations

from types import ModuleType

from nasforge.grammar import to_text, validate
from nasforge.grammar.ir import Arch

from .families import family
from .loader import load_file, load_source
from .render import ArchText, format_source, render


def generate(arch: Arch, *, black: bool = True) -> str:
    """The Python source of `arch`'s model.

    `arch` is validated first (an IR built in Python may hold anything): ArchError for
    one the language does not allow, before anything is rendered. `black=False` skips
    formatting, for the search's hot path.
    """
    row = family(arch)
    validate(arch)
    text = ArchText(to_text(arch))
    source = render(row.template, arch_text=text, plan=row.plan(arch), **row.context)
    return format_source(source) if black else source


def load(arch: Arch, *, black: bool = False) -> ModuleType:
    """Generate `arch`'s file and load it as a module."""
    return load_source(generate(arch, black=black))


__all__ = ["generate", "load", "load_file", "load_source"]
