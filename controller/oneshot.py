"""A cell space as the plain data the supernet generator takes (codegen.supernet).

The code generator does not import the controller, so the space's fixed settings
and its per-edge ops reach it as a SupernetSpec.
"""

from __future__ import annotations

from nasforge.codegen.supernet import SUPERNET_SKELETONS, SupernetSpec

from .space import Space, SpaceError
from .space_cells import CellsSpace


def supernet_spec(space: Space) -> SupernetSpec:
    """The supernet of a cells space whose nodes add their edges (nb201, darts)."""
    if not isinstance(space, CellsSpace) or space.skeleton not in SUPERNET_SKELETONS:
        raise SpaceError(
            f"the space {space.name!r} has no supernet: one-shot search takes a cells "
            f"space of the skeletons {', '.join(SUPERNET_SKELETONS)}"
        )
    if space.combines != ("add",) or space.output not in ("last", "all"):
        raise SpaceError(
            f"the space {space.name!r} has no supernet: its nodes must add their edges "
            "and its output must not depend on the edges (last or all)"
        )
    return SupernetSpec(
        name=space.name,
        skeleton=space.skeleton,
        input_shape=space.input_shape,
        classes=space.classes,
        options=tuple((s.name, s.value) for s in space.options),
        nodes=space.nodes,
        ops=space.ops,
    )
