"""One-shot search in the controller: a cell space as a supernet spec, and derivation.

The code generator does not import the controller, so the space's fixed settings
and its per-edge ops reach it as a SupernetSpec (`supernet_spec`). After a search,
`derive_darts` and `derive_nb201` turn the supernet's architecture weights into an
architecture string of the space (pure functions: no I/O, no training).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from nasforge.codegen.supernet import SUPERNET_SKELETONS, SupernetSpec, skeleton_arch
from nasforge.codegen.supernet_macro import MacroSupernetSpec
from nasforge.grammar import to_text, validate
from nasforge.grammar.ir import Cell, Edge

from .space import Space, SpaceError
from .space_cells import CellsSpace
from .space_cnn import CnnSpace

# Architecture weights: one row per edge, one column per op; a torch tensor, a numpy
# array or nested lists of floats.
Rows = Sequence[Sequence[float]] | Any


def supernet_spec(space: Space) -> SupernetSpec | MacroSupernetSpec:
    """The supernet of a cells space whose nodes add their edges (nb201, darts), or of a
    cnn space of ENAS's macro kind (enas_macro)."""
    if isinstance(space, CnnSpace):
        return macro_supernet_spec(space)
    if not isinstance(space, CellsSpace) or space.skeleton not in SUPERNET_SKELETONS:
        raise SpaceError(
            f"the space {space.name!r} has no supernet: one-shot search takes a cells "
            f"space of the skeletons {', '.join(SUPERNET_SKELETONS)}, or a cnn space "
            "with layer ops, one filter count, chained layers and a fixed depth "
            "(enas_macro)"
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


def macro_supernet_spec(space: CnnSpace) -> MacroSupernetSpec:
    """The supernet of a cnn space of ENAS's macro kind: a layer-op slot (`ops`), one
    filter count, each layer reading the one before it (`chain`), a fixed depth and
    fixed strides; its layers' inputs then have one resolution each."""
    why = [
        reason
        for reason, missing in (
            ("layer ops (ops)", not space.layer_ops),
            ("one filter count", len(space.choices["filters"]) != 1),
            ("chained layers (chain = true)", not space.chain),
            ("a fixed depth", space.default_depth != space.max_depth),
            (
                "fixed strides",
                len(space.choices["stride_h"]) * len(space.choices["stride_w"]) != 1,
            ),
        )
        if missing
    ]
    if why:
        raise SpaceError(
            f"the space {space.name!r} has no supernet: a cnn space's supernet needs "
            + ", ".join(why)
        )
    assert space.max_depth is not None
    indices = range(1, space.max_depth + 1)
    fixed = (int(space.choices["stride_h"][0]), int(space.choices["stride_w"][0]))
    return MacroSupernetSpec(
        name=space.name,
        input_shape=space.input_shape,
        classes=space.classes,
        filters=int(space.choices["filters"][0][1:]),
        ops=tuple(space.layer_ops),
        sources=tuple(space.sources(i) for i in indices),
        strides=tuple(space.stride(i) or fixed for i in indices),
    )


# --- derivation: architecture weights -> an architecture string of the space ----------

# DARTS keeps two incoming edges per intermediate node (Liu et al. 2019, section 2.4).
DARTS_KEPT_EDGES = 2


def derive_darts(
    weights_normal: Rows,
    weights_reduce: Rows,
    spec_or_space: SupernetSpec | Space,
    *,
    softmax: bool = True,
) -> str:
    """DARTS' discrete cell pair from its architecture weights, as a string of the space.

    `weights_normal` and `weights_reduce` hold one row per supernet edge of that cell
    (DARTS' 14 for 4 nodes, in the supernet's EDGES order) and one column per op
    (the spec's ops). They are DARTS' architecture parameters (the alphas); the rule
    ranks their softmax per row, as the reference's `genotype()` does
    (quark0/darts, cnn/model_search.py). Pass rows that are already mixture weights
    with `softmax=False`. Per node, `darts_node_edges` picks the edges and ops.

    The string is canonical: a node's kept edges are written in the order of the
    states they read (the reference lists them strongest first; the node adds
    them, so the order does not change the network).
    """
    spec = _spec_of(spec_or_space, "darts")
    tables = {"normal": weights_normal, "reduction": weights_reduce}
    skeleton = skeleton_arch(spec, spec.ops[0])
    cells = []
    for cell in skeleton.cells:
        rows = _table(tables[cell.kind], _edge_count(cell), spec.ops, cell.kind)
        if softmax:
            rows = [_softmax(row) for row in rows]
        cells.append(_darts_cell(cell, rows, spec.ops))
    return to_text(validate(replace(skeleton, cells=tuple(cells))))


def darts_node_edges(
    rows: Sequence[Sequence[float]], ops: Sequence[str]
) -> list[tuple[int, int]]:
    """DARTS' choice for one node: (edge, op) pairs, one row per incoming edge.

    An edge's strength is its strongest op other than `none`; the node keeps the
    DARTS_KEPT_EDGES strongest edges (each reads a distinct state, since the
    supernet has one edge per earlier state) and, on each, that op. Ties follow the
    reference: a stable sort on descending strength keeps the earlier edge (the
    earlier state) first, and among equal ops the earlier op of `ops` wins. A node
    with fewer incoming edges keeps them all. The pairs come strongest first.
    """
    candidates = [k for k, op in enumerate(ops) if op != "none"]
    if not candidates:
        raise ValueError("DARTS derives from ops other than 'none', and there are none")
    best = [max(candidates, key=lambda k, row=row: (row[k], -k)) for row in rows]
    strengths = [row[k] for row, k in zip(rows, best, strict=True)]
    ranked = sorted(range(len(rows)), key=lambda e: -strengths[e])  # stable
    return [(e, best[e]) for e in ranked[:DARTS_KEPT_EDGES]]


def derive_nb201(weights: Rows, spec_or_space: SupernetSpec | Space) -> str:
    """NAS-Bench-201's cell from its architecture weights, as a string of the space.

    One row per edge (6 for 3 nodes, in the supernet's EDGES order), one column per
    op. Each edge takes its strongest op, `none` included, as the NAS-Bench-201
    baselines derive (D-X-Y/AutoDL-Projects,
    xautodl/models/cell_searchs/search_model_darts.py, `genotype()`: the argmax of
    the edge's architecture parameters). A softmax does not change a row's argmax,
    so the rows may be the alphas or the mixture weights. Among equal weights the
    earlier op of the spec's ops wins, as torch's argmax returns the first maximum.
    """
    spec = _spec_of(spec_or_space, "nb201")
    skeleton = skeleton_arch(spec, spec.ops[0])
    (cell,) = skeleton.cells
    rows = iter(_table(weights, _edge_count(cell), spec.ops, cell.kind))
    nodes = []
    for node in cell.nodes:
        edges = []
        for edge in node.edges:
            row = next(rows)
            best = max(range(len(row)), key=lambda k, row=row: (row[k], -k))
            edges.append(Edge(spec.ops[best], edge.source))
        nodes.append(replace(node, edges=tuple(edges)))
    derived = replace(cell, nodes=tuple(nodes))
    return to_text(validate(replace(skeleton, cells=(derived,))))


def _spec_of(spec_or_space: SupernetSpec | Space, skeleton: str) -> SupernetSpec:
    spec = (
        spec_or_space
        if isinstance(spec_or_space, SupernetSpec)
        else supernet_spec(spec_or_space)
    )
    if spec.skeleton != skeleton:
        raise ValueError(
            f"this derivation is for the {skeleton} skeleton, not {spec.skeleton}"
        )
    return spec


def _edge_count(cell: Cell) -> int:
    return sum(len(node.edges) for node in cell.nodes)


def _table(
    weights: Rows, edges: int, ops: Sequence[str], section: str
) -> list[list[float]]:
    """The weights as plain floats, checked against the supernet's edges and ops."""
    rows = weights.tolist() if hasattr(weights, "tolist") else weights
    table = [[float(w) for w in row] for row in rows]
    if len(table) != edges or any(len(row) != len(ops) for row in table):
        shape = f"{len(table)} rows of {sorted({len(row) for row in table})} columns"
        raise ValueError(
            f"the {section} cell's weights are {edges} edges x {len(ops)} ops, not {shape}"
        )
    if not all(math.isfinite(w) for row in table for w in row):
        raise ValueError(f"the {section} cell's weights must be finite numbers")
    return table


def _softmax(row: Sequence[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(w - top) for w in row]
    total = sum(exps)
    return [e / total for e in exps]


def _darts_cell(cell: Cell, rows: list[list[float]], ops: Sequence[str]) -> Cell:
    nodes = []
    start = 0
    for node in cell.nodes:
        stop = start + len(node.edges)
        kept = sorted(darts_node_edges(rows[start:stop], ops))  # by the state read
        edges = tuple(Edge(ops[k], node.edges[e].source) for e, k in kept)
        nodes.append(replace(node, edges=edges))
        start = stop
    return replace(cell, nodes=tuple(nodes))
