"""IR -> a readable, standalone PyTorch file, and the cost model that goes with it."""

from __future__ import annotations

from types import ModuleType

from nasforge.grammar import to_text, validate
from nasforge.grammar.ir import Arch

from .families import family
from .loader import load_file, load_source
from .preprocessing import Preprocessing
from .render import ArchText, format_file, format_source, render


def generate(arch: Arch, *, black: bool = True, preprocessing: Preprocessing | None = None) -> str:
    """The Python source of `arch`'s model.

    `arch` is validated first (an IR built in Python may hold anything): ArchError for
    one the language does not allow, before anything is rendered. `black=False` skips
    formatting, for the search's hot path. `preprocessing` (image families; a trained
    model's) adds MEAN, STD, CLASS_NAMES and preprocess(x) after the constants.
    """
    row = family(arch)
    validate(arch)
    text = ArchText(to_text(arch))
    literals = None
    if preprocessing is not None:
        if arch.family == "rnn":
            raise ValueError("preprocessing (mean, std, class names) is for image models")
        literals = preprocessing.literals()
    source = render(
        row.template, arch_text=text, plan=row.plan(arch), preprocessing=literals, **row.context
    )
    if literals is not None and black:
        return format_file(source)  # the literals' quotes and line breaks as black has them
    return format_source(source) if black else source


def load(arch: Arch, *, black: bool = False) -> ModuleType:
    """Generate `arch`'s file and load it as a module."""
    return load_source(generate(arch, black=black))


__all__ = ["Preprocessing", "generate", "load", "load_file", "load_source"]
