"""Semantic checks: does a well-formed IR describe an architecture we can build?

`validate` accepts IR from the parser or built in code (the controller's); it
raises ArchValidationError at the offending node's position, with the valid
choices where the problem is a choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from . import limits, ops
from .errors import ArchValidationError
from .ir import NOWHERE, Arch, Cell, CellsArch, CnnArch, Pos, Ref, RnnArch, for_family


def check_choice(value: str, table: Mapping[str, object], what: str, pos: Pos) -> None:
    """Raise unless `value` is a key of `table` (a string); the error lists the keys."""
    if not isinstance(value, str) or value not in table:
        choices = tuple(table)
        raise ArchValidationError(
            f"unknown {what} '{value}'; valid {what}s: {', '.join(choices)}",
            pos,
            choices=choices,
        )


def check_range(value: int, low: int, high: int, what: str, pos: Pos) -> None:
    """Raise unless `value` is a whole number (an int, not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchValidationError(
            f"{what} is {value!r}; it must be a whole number between {low} and {high}", pos
        )
    if not low <= value <= high:
        raise ArchValidationError(f"{what} is {value}; it must be between {low} and {high}", pos)


def _a(word: str) -> str:
    """The word with its indefinite article: 'a conv', 'an avgpool'."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def validate(arch: Arch) -> Arch:
    """Check `arch` and return it unchanged; raise ArchValidationError if it is invalid.

    IR built in Python may hold values of any type where the parser puts ints and op
    names; the checks say which, and anything malformed beyond them (a field of the
    wrong shape) is an ArchValidationError too, never a stray TypeError."""
    check = for_family(_VALIDATORS, arch)
    try:
        check(arch)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as err:
        raise ArchValidationError(
            f"not a well-formed {type(arch).__name__}: {type(err).__name__}: {err}", NOWHERE
        ) from None
    return arch


def _validate_input(shape: tuple[int, int, int], classes: int, pos: Pos) -> None:
    channels, height, width = shape
    check_range(channels, 1, limits.MAX_INPUT_CHANNELS, "input channels", pos)
    check_range(height, 1, limits.MAX_INPUT_SIZE, "input height", pos)
    check_range(width, 1, limits.MAX_INPUT_SIZE, "input width", pos)
    check_range(classes, 2, limits.MAX_CLASSES, "classes", pos)


def _check_refs(
    refs: Iterable[Ref],
    low: int,
    high: int,
    prefix: str,
    owner: str,
    pos: Pos,
    *,
    unique: bool = True,
) -> None:
    """Each ref must lie in [low, high] and, if `unique`, appear once."""
    seen: set[int] = set()
    for ref in refs:
        where = ref.pos if ref.pos.line else pos
        if isinstance(ref.index, bool) or not isinstance(ref.index, int):
            raise ArchValidationError(f"{owner} reads {ref.index!r}, not a {prefix} number", where)
        if unique and ref.index in seen:
            raise ArchValidationError(f"{owner} reads {prefix}{ref.index} twice", where)
        seen.add(ref.index)
        if not low <= ref.index <= high:
            if high < low:
                valid = "only earlier ones, and there are none"
            elif high == low:
                valid = f"{prefix}{low}"
            else:
                valid = f"{prefix}{low} to {prefix}{high}"
            raise ArchValidationError(
                f"{owner} cannot read {prefix}{ref.index}: it can read {valid}",
                where,
                choices=tuple(f"{prefix}{i}" for i in range(low, high + 1)),
            )


# --- cnn ------------------------------------------------------------------------


def _validate_cnn(arch: CnnArch) -> None:
    _validate_input(arch.input_shape, arch.classes, arch.pos)
    lr = arch.lr
    if lr is not None and (
        isinstance(lr, bool)
        or not isinstance(lr, (int, float))
        or not limits.MIN_LR <= lr <= limits.MAX_LR
    ):
        raise ArchValidationError(
            f"lr is {arch.lr!r}; it must be between {limits.MIN_LR!r} and {limits.MAX_LR!r}",
            arch.pos,
        )
    if not arch.layers:
        raise ArchValidationError(
            "a cnn needs at least one layer, such as 'L1: conv 3x3 n36'", arch.pos
        )
    check_range(len(arch.layers), 1, limits.MAX_LAYERS, "the number of layers", arch.layers[-1].pos)
    for number, layer in enumerate(arch.layers, start=1):
        name = f"L{layer.index}"
        if layer.index != number:
            raise ArchValidationError(
                f"layers are numbered in order: this is layer {number}, so it must be "
                f"labelled L{number}, not {name}",
                layer.pos,
            )
        check_choice(layer.kind, ops.LAYER_KINDS, "layer kind", layer.pos)
        if not isinstance(layer.batchnorm, bool) or not isinstance(layer.lrn, bool):
            raise ArchValidationError(f"{name}'s flags must be true or false", layer.pos)
        for size, what in ((layer.kernel, "kernel"), (layer.stride, "stride")):
            high = limits.MAX_KERNEL if what == "kernel" else limits.MAX_STRIDE
            check_range(size[0], 1, high, f"{name}'s {what} height", layer.pos)
            check_range(size[1], 1, high, f"{name}'s {what} width", layer.pos)
        if ops.LAYER_KINDS[layer.kind].has_filters:
            if layer.filters is None:
                raise ArchValidationError(
                    f"{name} is {_a(layer.kind)} layer and needs a filter count, such as n36",
                    layer.pos,
                )
            check_range(layer.filters, 1, limits.MAX_FILTERS, f"{name}'s filter count", layer.pos)
        else:
            if layer.filters is not None and not ops.LAYER_KINDS[layer.kind].projects:
                raise ArchValidationError(
                    f"{name} is {_a(layer.kind)} layer: it keeps its input's channels and "
                    "takes no filter count",
                    layer.pos,
                )
            if layer.filters is not None:
                check_range(
                    layer.filters, 1, limits.MAX_FILTERS, f"{name}'s filter count", layer.pos
                )
            if not layer.batchnorm or layer.lrn:
                convs = " and ".join(k for k, v in ops.LAYER_KINDS.items() if v.has_filters)
                raise ArchValidationError(
                    f"{name} is {_a(layer.kind)} layer: the flags {', '.join(ops.LAYER_FLAGS)} "
                    f"apply to {convs} layers only",
                    layer.pos,
                )
        _check_refs(layer.inputs, 1, layer.index - 1, "L", name, layer.pos)
        indices = [ref.index for ref in layer.inputs]
        if indices != sorted(indices):
            raise ArchValidationError(f"{name}'s anchors must be in ascending order", layer.pos)


# --- rnn ------------------------------------------------------------------------


def _validate_rnn(arch: RnnArch) -> None:
    base = arch.base
    if (
        isinstance(base, bool)
        or not isinstance(base, int)
        or base < 2
        or base & (base - 1)
        or base > limits.MAX_BASE
    ):
        raise ArchValidationError(
            f"base is {base!r}; it must be a power of two from 2 to {limits.MAX_BASE}",
            arch.pos,
            choices=tuple(str(2**k) for k in range(1, limits.MAX_BASE.bit_length())),
        )
    size = 2 * base - 1
    for number, node in enumerate(arch.nodes):
        if node.index != number:
            raise ArchValidationError(
                f"tree nodes are listed in order: this is node {number}, so it must be "
                f"labelled N{number}, not N{node.index}",
                node.pos,
            )
        if number >= size:
            raise ArchValidationError(
                f"a base-{base} tree has {size} nodes, N0 to N{size - 1}; "
                f"N{number} is one too many",
                node.pos,
            )
        check_choice(node.combine, ops.RNN_COMBINES, "combine", node.pos)
        check_choice(node.activation, ops.ACTIVATIONS, "activation", node.pos)
    if len(arch.nodes) < size:
        missing = len(arch.nodes)
        raise ArchValidationError(
            f"a base-{base} tree has {size} nodes, N0 to N{size - 1}; N{missing} is missing",
            arch.nodes[-1].pos if arch.nodes else arch.pos,
        )
    inject = arch.inject
    if inject is None:
        raise ArchValidationError(
            "an rnn needs an 'inject' line saying where c_{t-1} joins, "
            "such as 'inject N0: add relu'",
            arch.pos,
        )
    if arch.cell is None:
        raise ArchValidationError(
            "an rnn needs a 'cell' line saying which node's value becomes c_t, such as 'cell N1'",
            arch.pos,
        )
    _check_refs([inject.node], 0, size - 1, "N", "inject", inject.pos)
    check_choice(inject.combine, ops.RNN_COMBINES, "combine", inject.pos)
    check_choice(inject.activation, ops.ACTIVATIONS, "activation", inject.pos)
    _check_refs([arch.cell], 0, size - 1, "N", "cell", arch.cell.pos)


# --- cells ----------------------------------------------------------------------


def _validate_cells(arch: CellsArch) -> None:
    check_choice(arch.skeleton, ops.SKELETONS, "skeleton", arch.pos)
    skeleton = ops.SKELETONS[arch.skeleton]
    _validate_input(arch.input_shape, arch.classes, arch.pos)

    names = tuple(s.name for s in arch.options)
    expected = tuple(o.name for o in skeleton.options)
    if names != expected:
        raise ArchValidationError(
            f"a {skeleton.name} header sets the options {', '.join(expected)}, in that order",
            arch.pos,
            choices=expected,
        )
    for setting, option in zip(arch.options, skeleton.options, strict=True):
        where = setting.pos if setting.pos.line else arch.pos
        if option.choices:
            if not isinstance(setting.value, str) or setting.value not in option.choices:
                raise ArchValidationError(
                    f"option {option.name} is {setting.value}; valid values: "
                    f"{', '.join(option.choices)}",
                    where,
                    choices=option.choices,
                )
        elif isinstance(setting.value, bool) or not isinstance(setting.value, int):
            raise ArchValidationError(
                f"option {option.name} takes a whole number, not '{setting.value}'", where
            )
        else:
            check_range(setting.value, option.low, option.high, f"option {option.name}", where)

    kinds = tuple(c.kind for c in arch.cells)
    if kinds != skeleton.sections:
        missing = [s for s in skeleton.sections if s not in kinds]
        sections = ", ".join(f"'{s}:'" for s in skeleton.sections)
        detail = f"'{missing[0]}:' is missing" if missing else "they must come in that order"
        raise ArchValidationError(
            f"a {skeleton.name} architecture has the sections {sections}; {detail}",
            arch.pos,
            choices=skeleton.sections,
        )
    for cell in arch.cells:
        _validate_cell(cell, skeleton)


def _validate_cell(cell: Cell, skeleton: ops.Skeleton) -> None:
    first = skeleton.inputs
    if not cell.nodes:
        raise ArchValidationError(
            f"the '{cell.kind}:' section has no nodes; add one such as 'S{first} = add(skip(S0))'",
            cell.pos,
        )
    check_range(
        len(cell.nodes),
        1,
        limits.MAX_CELL_NODES,
        f"the '{cell.kind}:' section's node count",
        cell.pos,
    )
    used: set[int] = set()
    for number, node in enumerate(cell.nodes, start=first):
        name = f"S{node.index}"
        if node.index != number:
            inputs = (
                "S0 is the cell's input"
                if first == 1
                else f"S0 to S{first - 1} are the cell's inputs"
            )
            raise ArchValidationError(
                f"cell states are numbered in order: {inputs}, "
                f"so this node must be S{number}, not {name}",
                node.pos,
            )
        check_choice(node.combine, ops.CELL_COMBINES, "combine", node.pos)
        check_range(len(node.edges), 1, limits.MAX_CELL_EDGES, f"{name}'s edge count", node.pos)
        for edge in node.edges:
            check_choice(edge.op, ops.CELL_OPS, "op", edge.pos if edge.pos.line else node.pos)
        # Two edges may read the same state (NASNet-A does), through different ops.
        _check_refs(
            [e.source for e in node.edges], 0, number - 1, "S", name, node.pos, unique=False
        )
        if skeleton.dense:
            sources = [e.source.index for e in node.edges]
            if sources != list(range(number)) or node.combine != "add":
                listing = ", ".join(f"op(S{i})" for i in range(number))
                raise ArchValidationError(
                    f"in a {skeleton.name} cell every node adds one edge from each earlier "
                    f"state, in order: {name} = add({listing}); use 'none' for a missing edge",
                    node.pos,
                )
        used.update(e.source.index for e in node.edges)
    last = cell.nodes[-1].index
    if not cell.output:
        raise ArchValidationError(
            f"the '{cell.kind}:' section has no output rule; "
            "add one such as 'out = concat(unused)'",
            cell.pos,
        )
    _check_refs(cell.output, 0, last, "S", "out", cell.pos)
    used.update(ref.index for ref in cell.output)
    if skeleton.dense and [r.index for r in cell.output] != [last]:
        where = cell.output[0].pos if cell.output[0].pos.line else cell.pos
        raise ArchValidationError(
            f"a {skeleton.name} cell outputs its last node: out = S{last}", where
        )
    for node in cell.nodes:
        if node.index not in used:
            raise ArchValidationError(
                f"S{node.index} is computed but never used: "
                "read it in a later node or list it in out",
                node.pos,
            )


# The families table of the validator: each IR class's checks.
_VALIDATORS = {CnnArch: _validate_cnn, RnnArch: _validate_rnn, CellsArch: _validate_cells}
