"""The families table of the code generator: each IR class's lowering, template and cost.

`generate` and `cost` look the architecture up here instead of branching on its
type; a new family is one more row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from nasforge.grammar.ir import Arch, CellsArch, CnnArch, RnnArch, for_family

from .cells import cost_cells, plan_cells
from .cnn import cost_cnn, plan_cnn
from .cost import Cost
from .rnn import DEFAULTS, cost_rnn, plan_rnn


@dataclass(frozen=True)
class Family:
    plan: Callable[[Arch], object]  # IR -> the plan both the template and the cost model read
    template: str
    cost: Callable[..., Cost]  # (plan, **overrides) -> Cost
    context: Mapping[str, object] = field(default_factory=dict)  # more template variables


FAMILIES: dict[type, Family] = {
    CnnArch: Family(plan_cnn, "cnn.py.jinja", cost_cnn),
    RnnArch: Family(plan_rnn, "rnn.py.jinja", cost_rnn, {"defaults": DEFAULTS}),
    CellsArch: Family(plan_cells, "cells.py.jinja", cost_cells),
}


def family(arch: Arch) -> Family:
    """The row of `arch`'s family; TypeError for anything that is not an architecture IR."""
    return for_family(FAMILIES, arch)
