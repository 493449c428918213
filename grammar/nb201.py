"""Conversion between NAS-Bench-201 cell strings and `cells nb201` architectures.

NAS-Bench-201 writes a cell as its three nodes joined by '+', each node
listing its incoming edges as `op~source`:

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

Node j (1-based there) is our state S{j}; node 0 is the cell input S0.
"""

from __future__ import annotations

from . import ops
from .errors import ArchValidationError
from .ir import Cell, CellNode, CellsArch, Edge, Pos, Ref, Setting
from .validate import validate

NODES = 3  # new nodes in a NAS-Bench-201 cell (6 edges)


def from_nb201(
    text: str,
    *,
    n: int = 5,
    filters: int = 16,
    input_shape: tuple[int, int, int] = (3, 32, 32),
    classes: int = 10,
) -> CellsArch:
    """The `cells nb201` architecture of a NAS-Bench-201 cell string.

    The network defaults are NAS-Bench-201's own CIFAR-10 ones (5 cells a stage, 16 channels).
    """
    vocabulary = ops.ops_of("nb201")
    nodes_text = text.strip().split("+")
    if len(nodes_text) != NODES:
        raise _error(
            text,
            0,
            f"a NAS-Bench-201 cell has {NODES} nodes joined by '+', found {len(nodes_text)}",
        )
    nodes = []
    offset = len(text) - len(text.lstrip())  # where the node starts in `text`
    for number, node_text in enumerate(nodes_text, start=1):
        if not (node_text.startswith("|") and node_text.endswith("|")):
            raise _error(
                text, offset, f"node {number} must be written between '|' marks, as in |op~0|"
            )
        edges = []
        for edge_text in node_text[1:-1].split("|"):
            op_name, _, source = edge_text.partition("~")
            column = text.find(edge_text, offset)
            if op_name not in vocabulary:
                raise _error(
                    text,
                    column,
                    f"unknown NAS-Bench-201 op '{op_name}'; valid ops: {', '.join(vocabulary)}",
                    choices=tuple(vocabulary),
                )
            if not (source.isascii() and source.isdigit()) or len(source) > 2:
                raise _error(
                    text, column, f"an edge is op~source, as in nor_conv_3x3~0, not '{edge_text}'"
                )
            where = Pos(1, column + 1)  # so that validation errors point into the string
            edges.append(Edge(vocabulary[op_name].name, Ref(int(source), where), where))
        nodes.append(CellNode(number, "add", tuple(edges), Pos(1, offset + 1)))
        offset += len(node_text) + 1
    arch = CellsArch(
        skeleton="nb201",
        input_shape=input_shape,
        classes=classes,
        options=(Setting("n", n), Setting("filters", filters)),
        cells=(Cell("cell", tuple(nodes), (Ref(NODES),)),),
    )
    try:
        return validate(arch)
    except ArchValidationError as err:
        raise err.attach(text, "<nb201>") from None


def to_nb201(arch: CellsArch) -> str:
    """The NAS-Bench-201 string of a `cells nb201` architecture's cell."""
    if arch.skeleton != "nb201":
        raise ArchValidationError(
            "only a cells nb201 architecture has a NAS-Bench-201 string, "
            f"not a {arch.skeleton} one",
            arch.pos,
        )
    validate(arch)
    cell = arch.cell("cell")
    if len(cell.nodes) != NODES:
        raise ArchValidationError(
            f"a NAS-Bench-201 cell has {NODES} nodes, S1 to S{NODES}; "
            f"this one has {len(cell.nodes)}",
            cell.pos,
        )
    nodes = []
    for node in cell.nodes:
        edges = []
        for edge in node.edges:
            name = ops.CELL_OPS[edge.op].nb201
            if name is None:
                valid = ", ".join(op.name for op in ops.ops_of("nb201").values())
                raise ArchValidationError(
                    f"op '{edge.op}' is not in NAS-Bench-201's space; its ops are {valid}",
                    edge.pos,
                )
            edges.append(f"{name}~{edge.source.index}")
        nodes.append("|" + "|".join(edges) + "|")
    return "+".join(nodes)


def _error(
    text: str, index: int, message: str, choices: tuple[str, ...] = ()
) -> ArchValidationError:
    return ArchValidationError(message, Pos(1, max(index, 0) + 1), choices=choices).attach(
        text, "<nb201>"
    )
