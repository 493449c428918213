"""validate() on IR built in code (the controller's way), limits, and the op table as one list."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nasforge.grammar import ArchValidationError, limits, ops, parse, to_text, validate
from nasforge.grammar.ir import (
    NOWHERE,
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
from nasforge.grammar.parser import GRAMMAR_FILE
from strategies import cells_archs, cnn_archs, fast, rnn_archs

# --- small valid IR, built in code ------------------------------------------------------


def conv(index: int, *inputs: int, **changes: object) -> Layer:
    layer = Layer(index, "conv", (3, 3), filters=16, inputs=tuple(Ref(i) for i in inputs))
    return dataclasses.replace(layer, **changes)


def cnn(*layers: Layer, **changes: object) -> CnnArch:
    arch = CnnArch((3, 32, 32), 10, layers or (conv(1), conv(2, 1)))
    return dataclasses.replace(arch, **changes)


def rnn(**changes: object) -> RnnArch:
    arch = RnnArch(
        2,
        (TreeNode(0, "add", "tanh"), TreeNode(1, "mul", "relu"), TreeNode(2, "mul", "sigmoid")),
        Inject(Ref(0), "add", "relu"),
        Ref(1),
    )
    return dataclasses.replace(arch, **changes)


def node(index: int, *edges: tuple[str, int], combine: str = "add") -> CellNode:
    return CellNode(index, combine, tuple(Edge(op, Ref(source)) for op, source in edges))


def darts(normal: Cell | None = None, **changes: object) -> CellsArch:
    skeleton = ops.SKELETONS["darts"]
    default = Cell("normal", (node(2, ("sep3x3", 0), ("skip", 1)),), (Ref(2),))
    arch = CellsArch(
        "darts",
        (3, 32, 32),
        10,
        tuple(Setting(o.name, o.default) for o in skeleton.options),
        (normal or default, dataclasses.replace(default, kind="reduction")),
    )
    return dataclasses.replace(arch, **changes)


def nb201(*nodes: CellNode, output: int = 3) -> CellsArch:
    cell = Cell("cell", nodes, (Ref(output),))
    return CellsArch("nb201", (3, 32, 32), 10, (Setting("n", 5), Setting("filters", 16)), (cell,))


NB201_NODES = (
    node(1, ("conv3x3", 0)),
    node(2, ("conv3x3", 0), ("none", 1)),
    node(3, ("skip", 0), ("conv1x1", 1), ("skip", 2)),
)


def test_the_small_builders_are_valid() -> None:
    for arch in (cnn(), rnn(), darts(), nb201(*NB201_NODES)):
        assert validate(arch) is arch
        assert parse(to_text(arch)) == arch


@fast(examples=20)
@given(st.one_of(cnn_archs(), rnn_archs(), cells_archs()))
def test_validate_returns_its_argument(arch) -> None:
    assert validate(arch) is arch


# --- invalid IR built in code: a clear message and no position ----------------------------


INVALID: dict[str, tuple[Callable[[], object], str]] = {
    "layer numbered out of order": (
        lambda: cnn(conv(1), conv(3, 1)),
        "layers are numbered in order: this is layer 2, so it must be labelled L2, not L3",
    ),
    "unknown layer kind": (
        lambda: cnn(conv(1, kind="dense")),
        "unknown layer kind 'dense'; valid layer kinds: conv, sep, maxpool, avgpool",
    ),
    "anchor to a later layer": (
        lambda: cnn(conv(1), conv(2, 3)),
        "L2 cannot read L3: it can read L1",
    ),
    "duplicate anchor": (lambda: cnn(conv(1), conv(2), conv(3, 1, 1)), "L3 reads L1 twice"),
    "unsorted anchors": (
        lambda: cnn(conv(1), conv(2), conv(3, 2, 1)),
        "L3's anchors must be in ascending order",
    ),
    "conv without filters": (
        lambda: cnn(conv(1, filters=None)),
        "L1 is a conv layer and needs a filter count, such as n36",
    ),
    "pooling with zero filters": (
        lambda: cnn(conv(1), conv(2, 1, kind="maxpool", filters=0)),
        f"L2's filter count is 0; it must be between 1 and {limits.MAX_FILTERS}",
    ),
    "pooling without batch norm": (
        lambda: cnn(conv(1), conv(2, 1, kind="avgpool", filters=None, batchnorm=False)),
        "L2 is an avgpool layer: the flags nobn, lrn apply to conv and sep layers only",
    ),
    "sep without filters": (
        lambda: cnn(conv(1), conv(2, 1, kind="sep", filters=None)),
        "L2 is a sep layer and needs a filter count, such as n36",
    ),
    "kernel too large": (
        lambda: cnn(conv(1, kernel=(limits.MAX_KERNEL + 1, 3))),
        f"L1's kernel height is {limits.MAX_KERNEL + 1}; it must be between 1 and "
        f"{limits.MAX_KERNEL}",
    ),
    "zero stride": (
        lambda: cnn(conv(1, stride=(1, 0))),
        f"L1's stride width is 0; it must be between 1 and {limits.MAX_STRIDE}",
    ),
    "too many filters": (
        lambda: cnn(conv(1, filters=limits.MAX_FILTERS + 1)),
        f"L1's filter count is {limits.MAX_FILTERS + 1}; it must be between 1 and "
        f"{limits.MAX_FILTERS}",
    ),
    "no layers": (
        lambda: CnnArch((3, 32, 32), 10, ()),
        "a cnn needs at least one layer, such as 'L1: conv 3x3 n36'",
    ),
    "too many layers": (
        lambda: cnn(*(conv(i) for i in range(1, limits.MAX_LAYERS + 2))),
        f"the number of layers is {limits.MAX_LAYERS + 1}; it must be between 1 and "
        f"{limits.MAX_LAYERS}",
    ),
    "too many input channels": (
        lambda: cnn(input_shape=(limits.MAX_INPUT_CHANNELS + 1, 32, 32)),
        f"input channels is {limits.MAX_INPUT_CHANNELS + 1}; it must be between 1 and "
        f"{limits.MAX_INPUT_CHANNELS}",
    ),
    "one class": (lambda: cnn(classes=1), "classes is 1; it must be between 2 and 100000"),
    "lr too small": (
        lambda: cnn(lr=1e-9),
        "lr is 1e-09; it must be between 1e-06 and 10.0",
    ),
    "base not a power of two": (
        lambda: rnn(base=6),
        "base is 6; it must be a power of two from 2 to 64",
    ),
    "base too large": (
        lambda: rnn(base=2 * limits.MAX_BASE),
        "base is 128; it must be a power of two from 2 to 64",
    ),
    "tree node missing": (
        lambda: rnn(nodes=rnn().nodes[:2]),
        "a base-2 tree has 3 nodes, N0 to N2; N2 is missing",
    ),
    "tree node out of order": (
        lambda: rnn(nodes=rnn().nodes[::-1]),
        "tree nodes are listed in order: this is node 0, so it must be labelled N0, not N2",
    ),
    "unknown activation": (
        lambda: rnn(nodes=(*rnn().nodes[:2], TreeNode(2, "add", "gelu"))),
        "unknown activation 'gelu'; valid activations: identity, tanh, relu, sigmoid",
    ),
    "unknown inject combine": (
        lambda: rnn(inject=Inject(Ref(0), "max", "relu")),
        "unknown combine 'max'; valid combines: add, mul",
    ),
    "missing inject": (
        lambda: rnn(inject=None),
        "an rnn needs an 'inject' line saying where c_{t-1} joins, such as 'inject N0: add relu'",
    ),
    "missing cell": (
        lambda: rnn(cell=None),
        "an rnn needs a 'cell' line saying which node's value becomes c_t, such as 'cell N1'",
    ),
    "inject out of range": (
        lambda: rnn(inject=Inject(Ref(3), "add", "relu")),
        "inject cannot read N3: it can read N0 to N2",
    ),
    "cell out of range": (lambda: rnn(cell=Ref(-1)), "cell cannot read N-1: it can read N0 to N2"),
    "unknown skeleton": (
        lambda: darts(skeleton="enas"),
        "unknown skeleton 'enas'; valid skeletons: nasnet, darts, nb201",
    ),
    "options missing": (
        lambda: darts(options=()),
        "a darts header sets the options n, filters, stem, in that order",
    ),
    "option value of the wrong kind": (
        lambda: darts(
            options=(Setting("n", 6), Setting("filters", "36"), Setting("stem", "cifar"))
        ),
        "option filters takes a whole number, not '36'",
    ),
    "option not a choice": (
        lambda: darts(options=(Setting("n", 6), Setting("filters", 36), Setting("stem", 1))),
        "option stem is 1; valid values: cifar, imagenet",
    ),
    "option out of range": (
        lambda: darts(options=(Setting("n", 0), Setting("filters", 36), Setting("stem", "cifar"))),
        "option n is 0; it must be between 1 and 32",
    ),
    "sections out of order": (
        lambda: darts(cells=darts().cells[::-1]),
        "a darts architecture has the sections 'normal:', 'reduction:'; "
        "they must come in that order",
    ),
    "unknown op": (
        lambda: darts(Cell("normal", (node(2, ("conv9x9", 0)),), (Ref(2),))),
        "unknown op 'conv9x9'; valid ops: " + ", ".join(ops.CELL_OPS),
    ),
    "unknown cell combine": (
        lambda: darts(Cell("normal", (node(2, ("skip", 0), combine="mul"),), (Ref(2),))),
        "unknown combine 'mul'; valid combines: add, concat",
    ),
    "node without edges": (
        lambda: darts(Cell("normal", (node(2),), (Ref(2),))),
        f"S2's edge count is 0; it must be between 1 and {limits.MAX_CELL_EDGES}",
    ),
    "too many edges": (
        lambda: darts(Cell("normal", (node(2, *[("skip", 0)] * 17),), (Ref(2),))),
        f"S2's edge count is 17; it must be between 1 and {limits.MAX_CELL_EDGES}",
    ),
    "too many nodes": (
        lambda: darts(
            Cell("normal", tuple(node(i, ("skip", i - 1)) for i in range(2, 19)), (Ref(18),))
        ),
        f"the 'normal:' section's node count is 17; it must be between 1 and "
        f"{limits.MAX_CELL_NODES}",
    ),
    "edge from a later state": (
        lambda: darts(Cell("normal", (node(2, ("skip", 2)),), (Ref(2),))),
        "S2 cannot read S2: it can read S0 to S1",
    ),
    "unused node": (
        lambda: darts(Cell("normal", (node(2, ("skip", 0)), node(3, ("skip", 1))), (Ref(3),))),
        "S2 is computed but never used: read it in a later node or list it in out",
    ),
    "no output": (
        lambda: darts(Cell("normal", (node(2, ("skip", 0)),), ())),
        "the 'normal:' section has no output rule; add one such as 'out = concat(unused)'",
    ),
    "duplicate output": (
        lambda: darts(Cell("normal", (node(2, ("skip", 0)),), (Ref(2), Ref(2)))),
        "out reads S2 twice",
    ),
    "output out of range": (
        lambda: darts(Cell("normal", (node(2, ("skip", 0)),), (Ref(3),))),
        "out cannot read S3: it can read S0 to S2",
    ),
    "nb201 missing edge": (
        lambda: nb201(NB201_NODES[0], node(2, ("conv3x3", 0)), NB201_NODES[2]),
        "in a nb201 cell every node adds one edge from each earlier state, in order: "
        "S2 = add(op(S0), op(S1)); use 'none' for a missing edge",
    ),
    "nb201 concat": (
        lambda: nb201(
            NB201_NODES[0], node(2, ("conv3x3", 0), ("none", 1), combine="concat"), NB201_NODES[2]
        ),
        "in a nb201 cell every node adds one edge from each earlier state, in order: "
        "S2 = add(op(S0), op(S1)); use 'none' for a missing edge",
    ),
    "nb201 output": (
        lambda: nb201(*NB201_NODES, output=2),
        "a nb201 cell outputs its last node: out = S3",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_programmatic_ir(case: str) -> None:
    build, message = INVALID[case]
    with pytest.raises(ArchValidationError) as info:
        validate(build())  # type: ignore[arg-type]
    err = info.value
    assert err.message == message
    assert err.pos == NOWHERE and (err.line, err.column) == (0, 0)
    assert err.source is None and err.context() == ""
    assert str(err) == f"<arch>: error: {message}"


def test_programmatic_errors_list_choices() -> None:
    with pytest.raises(ArchValidationError) as info:
        validate(INVALID["unknown op"][0]())  # type: ignore[arg-type]
    assert info.value.choices == tuple(ops.CELL_OPS)
    with pytest.raises(ArchValidationError) as info:
        validate(rnn(base=6))
    assert info.value.choices == ("2", "4", "8", "16", "32", "64")
    with pytest.raises(ArchValidationError) as info:
        validate(rnn(inject=Inject(Ref(3), "add", "relu")))
    assert info.value.choices == ("N0", "N1", "N2")


def test_not_an_architecture() -> None:
    with pytest.raises(TypeError, match="not an architecture IR: str"):
        validate("cnn input 3x32x32 classes 10")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an architecture IR: Layer"):
        to_text(conv(1))  # type: ignore[arg-type]


def test_printing_an_rnn_without_inject_asks_for_validation() -> None:
    with pytest.raises(ValueError, match="validate it first"):
        to_text(rnn(inject=None))


# --- limits: the largest value passes, one more fails ----------------------------------------


@pytest.mark.parametrize(
    ("valid", "invalid"),
    [
        (lambda: cnn(conv(1, kernel=(limits.MAX_KERNEL, 1))), lambda: cnn(conv(1, kernel=(16, 1)))),
        (lambda: cnn(conv(1, stride=(limits.MAX_STRIDE, 1))), lambda: cnn(conv(1, stride=(9, 1)))),
        (
            lambda: cnn(conv(1, filters=limits.MAX_FILTERS)),
            lambda: cnn(conv(1, filters=limits.MAX_FILTERS + 1)),
        ),
        (
            lambda: cnn(*(conv(i) for i in range(1, limits.MAX_LAYERS + 1))),
            lambda: cnn(*(conv(i) for i in range(1, limits.MAX_LAYERS + 2))),
        ),
        (
            lambda: cnn(input_shape=(3, limits.MAX_INPUT_SIZE, 1)),
            lambda: cnn(input_shape=(3, limits.MAX_INPUT_SIZE + 1, 1)),
        ),
        (lambda: cnn(classes=limits.MAX_CLASSES), lambda: cnn(classes=limits.MAX_CLASSES + 1)),
        (lambda: cnn(lr=limits.MAX_LR), lambda: cnn(lr=limits.MAX_LR * 1.01)),
        (lambda: cnn(lr=limits.MIN_LR), lambda: cnn(lr=limits.MIN_LR * 0.99)),
    ],
)
def test_limits_are_inclusive(valid: Callable[[], CnnArch], invalid: Callable[[], CnnArch]) -> None:
    arch = valid()
    assert parse(to_text(arch)) == arch
    with pytest.raises(ArchValidationError):
        validate(invalid())


def test_largest_rnn_and_cell() -> None:
    base = limits.MAX_BASE
    arch = RnnArch(
        base,
        tuple(TreeNode(i, "add", "tanh") for i in range(2 * base - 1)),
        Inject(Ref(2 * base - 2), "mul", "identity"),
        Ref(0),
    )
    assert parse(to_text(arch)) == arch
    count = limits.MAX_CELL_NODES
    nodes = tuple(node(i, *[("skip", i - 1)] * limits.MAX_CELL_EDGES) for i in range(2, count + 2))
    arch = darts(Cell("normal", nodes, (Ref(count + 1),)))
    assert parse(to_text(arch)) == arch


# --- the op table is the single source ------------------------------------------------------


def test_the_grammar_file_spells_no_name_of_the_op_table() -> None:
    grammar = GRAMMAR_FILE.read_text(encoding="utf-8")
    names = {
        *ops.LAYER_KINDS,
        *ops.LAYER_FLAGS,
        *ops.RNN_COMBINES,
        *ops.ACTIVATIONS,
        *ops.CELL_OPS,
        *ops.CELL_COMBINES,
        *ops.SKELETONS,
        *(o.name for s in ops.SKELETONS.values() for o in s.options),
        *(c for s in ops.SKELETONS.values() for o in s.options for c in o.choices),
        *(section for s in ops.SKELETONS.values() for section in s.sections if section != "cell"),
    }
    for name in sorted(names):
        assert f'"{name}"' not in grammar, name


def test_op_table_keys_are_their_names() -> None:
    assert all(key == kind.name for key, kind in ops.LAYER_KINDS.items())
    assert all(key == op.name for key, op in ops.CELL_OPS.items())
    assert all(key == skeleton.name for key, skeleton in ops.SKELETONS.items())


@pytest.mark.parametrize("op", list(ops.CELL_OPS))
def test_every_cell_op_parses(op: str) -> None:
    text = (
        "cells darts input 3x32x32 classes 10\n"
        f"normal: S2 = add({op}(S0), {op}(S1)); out = S2\n"
        f"reduction: S2 = concat({op}(S1)); out = concat(S0, S2)\n"
    )
    arch = parse(text)
    assert {e.op for cell in arch.cells for n in cell.nodes for e in n.edges} == {op}
    assert parse(to_text(arch)) == arch


def test_every_layer_kind_and_flag_parses() -> None:
    for kind, info in ops.LAYER_KINDS.items():
        sizes = "3x3 n8" if info.has_filters else "2x2 s2x2"
        arch = parse(f"cnn input 3x32x32 classes 10; L1: conv 3x3 n8; L2: {kind} {sizes} <- L1")
        assert arch.layers[1].kind == kind
        if info.projects:  # a pooling layer's optional filter count
            text = f"cnn input 3x32x32 classes 10; L1: conv 3x3 n8; L2: {kind} 3x3 n6 <- L1"
            assert parse(text).layers[1].filters == 6
    for flag in ops.LAYER_FLAGS:
        layer = parse(f"cnn input 3x32x32 classes 10; L1: conv 3x3 n8 {flag}").layers[0]
        assert (not layer.batchnorm, layer.lrn) == (flag == "nobn", flag == "lrn")


def test_every_rnn_combine_and_activation_parses() -> None:
    for combine in ops.RNN_COMBINES:
        for activation in ops.ACTIVATIONS:
            text = (
                f"rnn base 2; N0: {combine} {activation}; N1: {combine} {activation}; "
                f"N2: {combine} {activation}; inject N2: {combine} {activation}; cell N0"
            )
            arch = parse(text)
            assert {(n.combine, n.activation) for n in arch.nodes} == {(combine, activation)}


@pytest.mark.parametrize("skeleton", list(ops.SKELETONS))
def test_every_skeleton_option_and_choice_parses(skeleton: str) -> None:
    table = ops.SKELETONS[skeleton]
    body = "".join(
        f"; {section}: S{table.inputs} = add("
        + ", ".join(f"skip(S{i})" for i in range(table.inputs))
        + f"); out = S{table.inputs}"
        for section in table.sections
    )
    for option in table.options:
        values = option.choices or (option.low, option.high, option.default)
        for value in values:
            arch = parse(f"cells {skeleton} input 3x32x32 classes 10 {option.name} {value}{body}")
            assert arch.option(option.name) == value
            assert [s.name for s in arch.options] == [o.name for o in table.options]


@pytest.mark.parametrize(
    ("text", "table"),
    [
        ("cnn input 3x32x32 classes 10; L1: sepconv 3x3 n8", ops.LAYER_KINDS),
        ("cnn input 3x32x32 classes 10; L1: conv 3x3 n8 bn", ops.LAYER_FLAGS),
        ("rnn base 2; N0: sub tanh", ops.RNN_COMBINES),
        ("rnn base 2; N0: add elu", ops.ACTIVATIONS),
        ("cells darts input 3x32x32 classes 10; normal: S2 = add(sep_conv_3x3(S0))", ops.CELL_OPS),
        ("cells darts input 3x32x32 classes 10; normal: S2 = sum(skip(S0))", ops.CELL_COMBINES),
        ("cells amoeba input 3x32x32 classes 10", ops.SKELETONS),
    ],
)
def test_a_name_not_in_the_table_is_rejected_with_the_table(text: str, table: dict) -> None:
    with pytest.raises(ArchValidationError) as info:
        parse(text)
    assert info.value.choices == tuple(table)


def test_the_parser_reads_the_table_when_it_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """An op added to the table is accepted, and one taken out is refused, without grammar edits."""
    text = (
        "cells darts input 3x32x32 classes 10\n"
        "normal: S2 = add(zap3x3(S0)); out = S2\nreduction: S2 = add(skip(S0)); out = S2\n"
    )
    with pytest.raises(ArchValidationError, match="unknown op 'zap3x3'"):
        parse(text)
    monkeypatch.setitem(ops.CELL_OPS, "zap3x3", ops.CellOp("zap3x3", "conv", 3, 1, "a test op"))
    assert parse(text).cells[0].nodes[0].edges[0].op == "zap3x3"
    monkeypatch.delitem(ops.LAYER_KINDS, "avgpool")
    with pytest.raises(ArchValidationError, match="valid layer kinds: conv, sep, maxpool\n"):
        parse("cnn input 3x32x32 classes 10; L1: avgpool 2x2")
