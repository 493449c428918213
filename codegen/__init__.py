"""IR -> a readable, standalone PyTorch file, and the cost model that goes with it."""

from __future__ import annotations

from types import ModuleType

from nasforge.grammar import to_text
from nasforge.grammar.ir import Arch, CellsArch, CnnArch, RnnArch

from .loader import load_file, load_source
from .render import ArchText, format_source, render


def generate(arch: Arch, *, black: bool = True) -> str:
    """The Python source of `arch`'s model.

    `black=False` skips formatting, for the search's hot path.
    """
    text = ArchText(to_text(arch))
    if isinstance(arch, CnnArch):
        from .cnn import plan_cnn

        source = render("cnn.py.jinja", arch_text=text, plan=plan_cnn(arch))
    elif isinstance(arch, RnnArch):
        from .rnn import DEFAULTS, plan_rnn

        source = render("rnn.py.jinja", arch_text=text, plan=plan_rnn(arch), defaults=DEFAULTS)
    elif isinstance(arch, CellsArch):
        from .cells import plan_cells

        source = render("cells.py.jinja", arch_text=text, plan=plan_cells(arch))
    else:
        raise TypeError(f"not an architecture IR: {type(arch).__name__}")
    return format_source(source) if black else source


def load(arch: Arch, *, black: bool = False) -> ModuleType:
    """Generate `arch`'s file and load it as a module."""
    return load_source(generate(arch, black=black))


__all__ = ["generate", "load", "load_file", "load_source"]
