"""A one-shot supernet, generated from a cell space: every edge holds all its candidate ops.

The supernet is a readable standalone PyTorch file, like a compiled architecture,
and is built from the same plan and templates: the network around the cells is
the skeleton's (`plan_cells` of the space's skeleton), and each candidate op of an
edge is the module the registry (cells/modules.py) and its template macros
(templates/_edge_modules.py.jinja) build for that op on that edge. So the op a
derived architecture compiles to is the op the supernet trained, and the weights
carry over by name (`standalone_state_dict`).

Its forward takes the architecture as data: `forward(x, weights)`, `weights` of
shape (edges, ops) in the order of the file's EDGES and OPS. A one-hot `weights`
runs only the chosen op of each edge (ENAS, evaluating a sampled child); any other
`weights` is the weighted sum of every op's output (DARTS' mixed op).

The generator takes plain data (a `SupernetSpec`), not a search space: codegen
does not import the controller; `nasforge.controller.oneshot.supernet_spec`
turns a space into a spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from nasforge.grammar import ops, parse, to_text
from nasforge.grammar.ir import Arch, Cell, CellNode, CellsArch, Edge, Ref, Setting

from .cells import plan_cells
from .cells.modules import helpers_for
from .cells.plan_types import CellsPlan, EdgePlan
from .render import ArchText, format_source, render
from .supernet_macro import (
    MacroSupernetSpec,
    generate_macro_supernet,
    macro_one_hot,
    macro_standalone_state_dict,
)

# Skeletons a supernet can be generated for: the cells add their edges, and the
# output rule does not depend on the ops (nb201: the last node; darts: every node).
SUPERNET_SKELETONS = ("nb201", "darts")
_LEFT_OUT = ("DropPath", "AuxiliaryHead")


@dataclass(frozen=True)
class SupernetSpec:
    """What a supernet is generated from: a cell space's fixed settings, as plain data.

    Every edge of every cell reads one earlier state and holds the ops `ops`, in
    the order of the weights' columns: nb201's dense cell has an edge from each
    earlier state, and so does the darts supernet (DARTS' 14 edges for 4 nodes),
    whose derived architectures keep some of them.
    """

    name: str  # the space's name, for the file's docstring
    skeleton: str  # a key of SUPERNET_SKELETONS
    input_shape: tuple[int, int, int]
    classes: int
    options: tuple[tuple[str, int | str], ...]  # the skeleton's options, in op-table order
    nodes: int  # new states per cell
    ops: tuple[str, ...]  # candidate ops of every edge: keys of the op table


@dataclass(frozen=True)
class SupernetEdge:
    """One row of the weights: a mixed edge and its candidate modules, one per op."""

    label: str  # section.attribute, e.g. cell.s2_1
    section: str
    node: int  # the state it feeds
    name: str  # attribute in the cell class
    source: str  # the state variable it reads
    source_index: int
    candidates: tuple[EdgePlan, ...]  # in the order of spec.ops


@dataclass(frozen=True)
class SupernetPlan:
    cells: CellsPlan  # the skeleton's network, planned with the first op on every edge
    ops: tuple[str, ...]
    edges: tuple[SupernetEdge, ...]
    rows: dict[str, tuple[int, int]]  # section -> its edges' rows [start, stop)
    helpers: tuple[str, ...]  # op classes the file defines, in order


def skeleton_arch(spec: SupernetSpec, op: str) -> CellsArch:
    """The architecture with `op` on every edge of the supernet: its skeleton IR."""
    _check(spec)
    info = ops.SKELETONS[spec.skeleton]
    first = info.inputs
    numbers = range(first, first + spec.nodes)
    cells = []
    for section in info.sections:
        nodes = tuple(
            CellNode(i, "add", tuple(Edge(op, Ref(j)) for j in range(i))) for i in numbers
        )
        output = (Ref(numbers[-1]),) if info.dense else tuple(Ref(i) for i in numbers)
        cells.append(Cell(section, nodes, output))
    options = tuple(Setting(name, value) for name, value in spec.options)
    return CellsArch(spec.skeleton, spec.input_shape, spec.classes, options, tuple(cells))


def _check(spec: SupernetSpec) -> None:
    if spec.skeleton not in SUPERNET_SKELETONS:
        raise ValueError(
            f"no supernet for the skeleton {spec.skeleton!r}; "
            f"valid: {', '.join(SUPERNET_SKELETONS)}"
        )
    unknown = [op for op in spec.ops if op not in ops.CELL_OPS]
    if unknown or not spec.ops or len(set(spec.ops)) != len(spec.ops):
        raise ValueError(f"a supernet's ops are distinct op-table names, not {spec.ops!r}")


def plan_supernet(spec: SupernetSpec) -> SupernetPlan:
    """The skeleton's plan, and each edge's candidate modules from the same registry."""
    plans = [plan_cells(skeleton_arch(spec, op)) for op in spec.ops]
    base = plans[0]
    edges = []
    rows: dict[str, tuple[int, int]] = {}
    for c, cls in enumerate(base.cell_classes):
        start = len(edges)
        for n, node in enumerate(cls.nodes):
            for e, edge in enumerate(node.edges):
                candidates = tuple(p.cell_classes[c].nodes[n].edges[e] for p in plans)
                edges.append(
                    SupernetEdge(
                        label=f"{cls.kind}.{edge.name}",
                        section=cls.kind,
                        node=node.index,
                        name=edge.name,
                        source=edge.source,
                        source_index=edge.source_index,
                        candidates=candidates,
                    )
                )
        rows[cls.kind] = (start, len(edges))
    modules = [m.module for e in edges for m in e.candidates]
    # The supernet has no drop-path and no auxiliary head (a derived architecture's
    # standalone file has them, with no parameters unless asked for).
    base_helpers = (h for p in plans for h in p.helpers if h not in _LEFT_OUT)
    helpers = helpers_for(base_helpers, modules)
    return SupernetPlan(base, spec.ops, tuple(edges), rows, helpers)


def generate_supernet(spec: SupernetSpec | MacroSupernetSpec, *, black: bool = True) -> str:
    """The Python source of the supernet of `spec` (a cell space's, or ENAS's macro space's)."""
    if isinstance(spec, MacroSupernetSpec):
        return generate_macro_supernet(spec, black=black)
    plan = plan_supernet(spec)
    header = ArchText(to_text(skeleton_arch(spec, spec.ops[0])).split("\n")[0])
    source = render("supernet_cells.py.jinja", plan=plan, space=spec.name, header=header)
    return format_source(source) if black else source


# --- architectures on the supernet ----------------------------------------------------


def _arch(spec: SupernetSpec, arch: Arch | str) -> CellsArch:
    ir = parse(arch) if isinstance(arch, str) else arch
    if not isinstance(ir, CellsArch) or ir.skeleton != spec.skeleton:
        raise ValueError(f"not a cells {spec.skeleton} architecture: {to_text(ir, one_line=True)}")
    header = (ir.input_shape, ir.classes, tuple((s.name, s.value) for s in ir.options))
    if header != (spec.input_shape, spec.classes, spec.options):
        raise ValueError(
            "the architecture's header (input, classes, options) is not the supernet's: "
            + to_text(ir, one_line=True).split(";")[0]
        )
    return ir


def _chosen(spec: SupernetSpec, arch: Arch | str) -> dict[tuple[str, int, int], tuple[int, int]]:
    """(section, node, source) -> (op index, edge position in the architecture)."""
    ir = _arch(spec, arch)
    chosen: dict[tuple[str, int, int], tuple[int, int]] = {}
    for cell in ir.cells:
        if len(cell.nodes) != spec.nodes:
            raise ValueError(
                f"the '{cell.kind}:' section has {len(cell.nodes)} nodes, not {spec.nodes}"
            )
        for node in cell.nodes:
            if node.combine != "add":
                raise ValueError(f"S{node.index} concatenates; a supernet's nodes add their edges")
            for position, edge in enumerate(node.edges):
                key = (cell.kind, node.index, edge.source.index)
                if key in chosen:
                    raise ValueError(
                        f"S{node.index} reads S{edge.source.index} twice; "
                        "a supernet has one edge per pair of states"
                    )
                if edge.op not in spec.ops:
                    raise ValueError(f"op {edge.op!r} is not one of the supernet's {spec.ops}")
                chosen[key] = (spec.ops.index(edge.op), position)
    return chosen


def one_hot(spec: SupernetSpec | MacroSupernetSpec, arch: Arch | str) -> list[list[float]]:
    """The weights (edges x ops) that select `arch`: a 1 at each edge's op.

    An edge the architecture leaves out takes the op `none`, which must then be one
    of the supernet's ops. A macro supernet's rows are its layers: a 1 at the layer's
    op, then a 1 at each layer it reads (`supernet_macro.macro_one_hot`). Either way
    `torch.tensor(one_hot(spec, arch))` is what the supernet's forward takes.
    """
    if isinstance(spec, MacroSupernetSpec):
        return macro_one_hot(spec, arch)
    plan = plan_supernet(spec)
    chosen = _chosen(spec, arch)
    rows = []
    for edge in plan.edges:
        pick = chosen.get((edge.section, edge.node, edge.source_index))
        if pick is None:
            if "none" not in spec.ops:
                raise ValueError(f"{edge.label} is left out, and 'none' is not a supernet op")
            index = spec.ops.index("none")
        else:
            index = pick[0]
        rows.append([1.0 if k == index else 0.0 for k in range(len(spec.ops))])
    return rows


T = TypeVar("T")


def standalone_state_dict(
    spec: SupernetSpec | MacroSupernetSpec, supernet_state: Mapping[str, T], arch: Arch | str
) -> dict[str, T]:
    """The state_dict of `arch`'s compiled file (nasforge.codegen.generate), from the supernet's.

    Names map one to one: a candidate `CELL.EDGE.K.REST` of the supernet (op K of
    that edge) is `CELL.EDGE'.REST` of the standalone model, where EDGE' is the
    architecture's edge between the same two states; the other candidates are
    left out, and everything outside the edges keeps its name. A macro supernet's
    convs that read a layer's input are sliced to the layers it reads
    (`supernet_macro.macro_standalone_state_dict`).
    """
    if isinstance(spec, MacroSupernetSpec):
        return macro_standalone_state_dict(spec, supernet_state, arch)
    plan = plan_supernet(spec)
    chosen = _chosen(spec, arch)
    standalone = plan_cells(_arch(spec, arch))
    names = {
        (cls.kind, node.index, position): edge.name
        for cls in standalone.cell_classes
        for node in cls.nodes
        for position, edge in enumerate(node.edges)
    }
    renames: dict[tuple[str, str, str], str] = {}  # (section, edge, op index) -> standalone edge
    for edge in plan.edges:
        pick = chosen.get((edge.section, edge.node, edge.source_index))
        if pick is not None:
            target = names[(edge.section, edge.node, pick[1])]
            renames[(edge.section, edge.name, str(pick[0]))] = target
    edge_names = {(e.section, e.name) for e in plan.edges}
    kinds = {step.name: step.kind for step in plan.cells.steps if step.module == "cell"}
    state: dict[str, T] = {}
    for key, value in supernet_state.items():
        step, *rest = key.split(".")
        kind = kinds.get(step)
        if kind is not None and len(rest) >= 2 and (kind, rest[0]) in edge_names:
            target = renames.get((kind, rest[0], rest[1]))
            if target is not None:
                state[".".join([step, target, *rest[2:]])] = value
        else:
            state[key] = value
    return state
