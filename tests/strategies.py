"""Hypothesis strategies that build valid architecture IR directly (not text).

Every name comes from the op table (grammar/ops.py) and every number lies within
grammar/limits.py, so whatever these strategies draw passes `validate()`. Sizes
are kept small (a handful of layers, nodes and edges) so that a property test
runs many examples quickly; the limits themselves are tested separately.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from nasforge.grammar import limits, ops, validate
from nasforge.grammar.ir import (
    Cell,
    CellNode,
    CellsArch,
    CnnArch,
    Edge,
    Inject,
    Layer,
    Ref,
    RnnArch,
    Setting,
    TreeNode,
)

# A few learning rates, including the limits and ones whose repr uses an exponent.
LEARNING_RATES = (0.1, 0.025, 0.5, 1e-3, 1e-4, limits.MIN_LR, limits.MAX_LR, 1.0)

MAX_DRAWN_LAYERS = 12
MAX_DRAWN_CELL_NODES = 6
MAX_DRAWN_EDGES = 4
MAX_DRAWN_DENSE_NODES = 5
RNN_BASES = (2, 4, 8, 16)


def input_shapes() -> st.SearchStrategy[tuple[int, int, int]]:
    return st.tuples(
        st.integers(1, limits.MAX_INPUT_CHANNELS),
        st.integers(1, limits.MAX_INPUT_SIZE),
        st.integers(1, limits.MAX_INPUT_SIZE),
    )


def class_counts() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from((10, 100, 1000)), st.integers(2, limits.MAX_CLASSES))


# --- cnn ------------------------------------------------------------------------


@st.composite
def layers(
    draw: st.DrawFn,
    index: int,
    max_kernel: int = limits.MAX_KERNEL,
    max_stride: int = limits.MAX_STRIDE,
    max_filters: int = limits.MAX_FILTERS,
) -> Layer:
    """Layer `index` (1-based), reading a sorted subset of the layers before it."""
    kind = draw(st.sampled_from(sorted(ops.LAYER_KINDS)))
    has_filters = ops.LAYER_KINDS[kind].has_filters
    side = st.integers(1, max_kernel)
    step = st.integers(1, max_stride)
    earlier = list(range(1, index))
    anchors = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
    return Layer(
        index=index,
        kind=kind,
        kernel=(draw(side), draw(side)),
        stride=draw(st.one_of(st.just((1, 1)), st.tuples(step, step))),
        filters=(
            draw(st.integers(1, max_filters))
            if has_filters
            else draw(st.one_of(st.none(), st.integers(1, max_filters)))  # pooling's projection
            if ops.LAYER_KINDS[kind].projects
            else None
        ),
        batchnorm=draw(st.booleans()) if has_filters else True,
        lrn=draw(st.booleans()) if has_filters else False,
        inputs=tuple(Ref(i) for i in sorted(anchors)),
    )


@st.composite
def cnn_archs(draw: st.DrawFn, max_layers: int = MAX_DRAWN_LAYERS) -> CnnArch:
    count = draw(st.integers(1, max_layers))
    return CnnArch(
        input_shape=draw(input_shapes()),
        classes=draw(class_counts()),
        layers=tuple(draw(layers(i)) for i in range(1, count + 1)),
        lr=draw(
            st.one_of(
                st.none(),
                st.sampled_from(LEARNING_RATES),
                st.floats(limits.MIN_LR, limits.MAX_LR),
            )
        ),
    )


@st.composite
def small_cnn_archs(draw: st.DrawFn, max_layers: int = 4, max_side: int = 12) -> CnnArch:
    """Small enough to build, run and export: up to 8 filters, kernels up to 6, strides up
    to 3, inputs of 1-3 channels up to `max_side` square, 2-5 classes."""
    count = draw(st.integers(1, max_layers))
    side = st.integers(1, max_side)
    arch = CnnArch(
        input_shape=(draw(st.integers(1, 3)), draw(side), draw(side)),
        classes=draw(st.integers(2, 5)),
        layers=tuple(
            draw(layers(i, max_kernel=6, max_stride=3, max_filters=8)) for i in range(1, count + 1)
        ),
    )
    return validate(arch)


# --- rnn ------------------------------------------------------------------------


@st.composite
def rnn_archs(draw: st.DrawFn, bases: tuple[int, ...] = RNN_BASES) -> RnnArch:
    base = draw(st.sampled_from(bases))
    size = 2 * base - 1
    combine = st.sampled_from(sorted(ops.RNN_COMBINES))
    activation = st.sampled_from(sorted(ops.ACTIVATIONS))
    node = st.integers(0, size - 1)
    return RnnArch(
        base=base,
        nodes=tuple(TreeNode(i, draw(combine), draw(activation)) for i in range(size)),
        inject=Inject(Ref(draw(node)), draw(combine), draw(activation)),
        cell=Ref(draw(node)),
    )


# --- cells ----------------------------------------------------------------------


def option_values(option: ops.Option, high: int | None = None) -> st.SearchStrategy[int | str]:
    """Any value of `option`; integers capped at `high` when given."""
    if option.choices:
        return st.sampled_from(option.choices)
    return st.integers(option.low, option.high if high is None else min(high, option.high))


@st.composite
def sparse_cells(
    draw: st.DrawFn,
    kind: str,
    skeleton: ops.Skeleton,
    max_nodes: int = MAX_DRAWN_CELL_NODES,
    max_edges: int = MAX_DRAWN_EDGES,
) -> Cell:
    """A NASNet / DARTS style cell: any edges to earlier states; every node used."""
    first = skeleton.inputs
    count = draw(st.integers(1, max_nodes))
    op = st.sampled_from(sorted(ops.CELL_OPS))
    combine = st.sampled_from(sorted(ops.CELL_COMBINES))
    nodes = []
    read: set[int] = set()
    for number in range(first, first + count):
        sources = draw(st.lists(st.integers(0, number - 1), min_size=1, max_size=max_edges))
        read.update(sources)
        edges = tuple(Edge(draw(op), Ref(s)) for s in sources)
        nodes.append(CellNode(number, draw(combine), edges))
    last = first + count - 1
    # The nodes no later node reads must be in the output; any other state may be.
    required = [n.index for n in nodes if n.index not in read]
    extra = draw(st.lists(st.integers(0, last), unique=True))
    output = draw(st.permutations(sorted(set(required) | set(extra))))
    return Cell(kind, tuple(nodes), tuple(Ref(i) for i in output))


@st.composite
def dense_cells(
    draw: st.DrawFn,
    kind: str,
    skeleton: ops.Skeleton,
    max_nodes: int = MAX_DRAWN_DENSE_NODES,
) -> Cell:
    """A NAS-Bench-201 style cell: each node adds one edge from every earlier state."""
    first = skeleton.inputs
    count = draw(st.integers(1, max_nodes))
    op = st.sampled_from(sorted(ops.CELL_OPS))
    nodes = tuple(
        CellNode(number, "add", tuple(Edge(draw(op), Ref(s)) for s in range(number)))
        for number in range(first, first + count)
    )
    return Cell(kind, nodes, (Ref(first + count - 1),))


@st.composite
def cells_archs(
    draw: st.DrawFn, skeleton_name: str | None = None, max_n: int | None = None
) -> CellsArch:
    """Any cells architecture; `max_n` caps the cells per stack (building big ones is slow)."""
    if skeleton_name is None:
        skeleton_name = draw(st.sampled_from(sorted(ops.SKELETONS)))
    skeleton = ops.SKELETONS[skeleton_name]
    cell = dense_cells if skeleton.dense else sparse_cells
    return CellsArch(
        skeleton=skeleton.name,
        input_shape=draw(input_shapes()),
        classes=draw(class_counts()),
        options=tuple(
            Setting(o.name, draw(option_values(o, max_n if o.name == "n" else None)))
            for o in skeleton.options
        ),
        cells=tuple(draw(cell(kind, skeleton)) for kind in skeleton.sections),
    )


# Options that make any cell network small enough to build and run: one cell per stack,
# up to 8 filters, no stem multiplier.
SMALL_CELLS_OPTIONS = {
    "n": st.just(1),
    "filters": st.integers(1, 8),
    "stem_multiplier": st.just(1),
}


def _cell_strategy(
    skeleton: ops.Skeleton, tiny: bool
) -> Callable[[str, ops.Skeleton], st.SearchStrategy[Cell]]:
    """The cells of `skeleton`; `tiny`: 1-3 nodes of 1-2 edges (a dense cell: 1-2 nodes),
    for tests that export every network drawn."""
    if skeleton.dense:
        return functools.partial(dense_cells, max_nodes=2 if tiny else MAX_DRAWN_DENSE_NODES)
    if tiny:
        return functools.partial(sparse_cells, max_nodes=3, max_edges=2)
    return sparse_cells


@st.composite
def small_cells_archs(draw: st.DrawFn, skeleton_name: str, tiny: bool = False) -> CellsArch:
    """A cells network of `skeleton_name` small enough to build and run: one cell per stack,
    up to 8 filters, 1-3 channels, a small input (9-20 pixels for an ImageNet stem, 3-12
    otherwise), 2-5 classes; the cells as sparse_cells and dense_cells draw them, or
    `tiny` ones."""
    skeleton = ops.SKELETONS[skeleton_name]
    cell = _cell_strategy(skeleton, tiny)
    options = tuple(
        Setting(o.name, draw(SMALL_CELLS_OPTIONS.get(o.name, option_values(o))))
        for o in skeleton.options
    )
    imagenet = ("stem", "imagenet") in [(s.name, s.value) for s in options]
    side = st.integers(9, 20) if imagenet else st.integers(3, 12)
    arch = CellsArch(
        skeleton=skeleton_name,
        input_shape=(draw(st.integers(1, 3)), draw(side), draw(side)),
        classes=draw(st.integers(2, 5)),
        options=options,
        cells=tuple(draw(cell(kind, skeleton)) for kind in skeleton.sections),
    )
    return validate(arch)


def archs() -> st.SearchStrategy[CnnArch | RnnArch | CellsArch]:
    """Any family."""
    return st.one_of(cnn_archs(), rnn_archs(), cells_archs())


FAMILIES: dict[str, st.SearchStrategy] = {
    "cnn": cnn_archs(),
    "rnn": rnn_archs(),
    **{f"cells-{name}": cells_archs(name) for name in ops.SKELETONS},
}


# --- settings ---------------------------------------------------------------------

# Property tests run this many examples each; NASFORGE_HYPOTHESIS_SCALE=20 (say)
# multiplies every count for a deeper run. No deadline: the first example pays
# for building the Lark parser, and the robustness tests time parses themselves.
EXAMPLES = 60
SCALE = float(os.environ.get("NASFORGE_HYPOTHESIS_SCALE", "1"))


def fast(examples: int = EXAMPLES, **kwargs: object) -> settings:
    """Settings for a grammar property test: bounded examples, no deadline."""
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        **kwargs,  # type: ignore[arg-type]
    )
