"""Text -> IR: the Lark LALR parser, a Transformer that builds the IR, and error mapping."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import limits, ops
from .errors import ArchError, ArchSyntaxError, ArchValidationError
from .ir import (
    Arch,
    Cell,
    CellNode,
    CellsArch,
    CnnArch,
    Edge,
    Inject,
    Layer,
    Pos,
    Ref,
    RnnArch,
    Setting,
    TreeNode,
)
from .validate import check_choice, validate

GRAMMAR_FILE = Path(__file__).with_name("arch.lark")


@dataclass(frozen=True)
class _Arg:
    """One of a layer's stride / filter count / flag, before it is placed in a Layer."""

    key: str
    token: Token


@dataclass(frozen=True)
class _Section:
    name: Token
    first: CellNode | _Output | None  # a statement written on the header's line


@dataclass(frozen=True)
class _Output:
    rule: tuple[Ref, ...] | str  # the states, or "unused"
    pos: Pos


def _pos(token: Token) -> Pos:
    return Pos(token.line or 0, token.column or 0)


def _int(token: Token | str, what: str, pos: Pos) -> int:
    if len(token) > limits.MAX_NUMBER_DIGITS:
        raise ArchValidationError(
            f"{what} has {len(token)} digits; numbers have at most {limits.MAX_NUMBER_DIGITS}",
            pos,
        )
    return int(token)


def _sizes(token: Token, what: str, skip: int = 0) -> tuple[int, ...]:
    """'3x32x32' -> (3, 32, 32); `skip` drops a letter prefix such as the s of s2x2."""
    pos = _pos(token)
    return tuple(_int(part, what, pos) for part in token[skip:].split("x"))


class _ToIR(Transformer):
    """Builds the IR bottom-up; checks here only what needs the token's own position."""

    def start(self, children: list) -> Arch:
        return children[0]

    # --- cnn ---
    @v_args(inline=True)
    def lr(self, number: Token) -> float:
        if len(number) > limits.MAX_NUMBER_CHARS:
            raise ArchValidationError(
                f"lr has {len(number)} characters; numbers have at most {limits.MAX_NUMBER_CHARS}",
                _pos(number),
            )
        value = float(number)
        # Checked here too (validate checks IR built in code) to point at the number itself.
        if not limits.MIN_LR <= value <= limits.MAX_LR:
            raise ArchValidationError(
                f"lr is {value!r}; it must be between {limits.MIN_LR!r} and {limits.MAX_LR!r}",
                _pos(number),
            )
        return value

    def stride(self, children: list[Token]) -> _Arg:
        return _Arg("stride", children[0])

    def filters(self, children: list[Token]) -> _Arg:
        return _Arg("filters", children[0])

    def flag(self, children: list[Token]) -> _Arg:
        token = children[0]
        check_choice(str(token), ops.LAYER_FLAGS, "flag", _pos(token))
        return _Arg(str(token), token)

    def anchors(self, layers: list[Token]) -> tuple[Ref, ...]:
        return tuple(Ref(_int(t[1:], "a layer number", _pos(t)), _pos(t)) for t in layers)

    def layer(self, children: list) -> Layer:
        label, kind, size, *rest = children
        pos = _pos(label)
        check_choice(str(kind), ops.LAYER_KINDS, "layer kind", _pos(kind))
        fields: dict[str, Token] = {}
        inputs: tuple[Ref, ...] = ()
        for item in rest:
            if isinstance(item, tuple):
                inputs = item
            elif item.key in fields:
                raise ArchValidationError(f"{label} sets its {item.key} twice", _pos(item.token))
            else:
                fields[item.key] = item.token
        stride = fields.get("stride")
        filters = fields.get("filters")
        return Layer(
            index=_int(label[1:], "a layer number", pos),
            kind=str(kind),
            kernel=_sizes(size, "a kernel size"),  # type: ignore[arg-type]
            stride=_sizes(stride, "a stride", skip=1) if stride else (1, 1),  # type: ignore[arg-type]
            filters=_int(filters[1:], "a filter count", _pos(filters)) if filters else None,
            batchnorm="nobn" not in fields,
            lrn="lrn" in fields,
            inputs=tuple(sorted(inputs, key=lambda r: r.index)),
            pos=pos,
        )

    def cnn(self, children: list) -> CnnArch:
        shape, classes, *rest = children
        lr = rest[0] if rest and isinstance(rest[0], float) else None
        layers = tuple(c for c in rest if isinstance(c, Layer))
        return CnnArch(
            input_shape=_sizes(shape, "the input shape"),  # type: ignore[arg-type]
            classes=_int(classes, "the class count", _pos(classes)),
            layers=layers,
            lr=lr,
            pos=_pos(shape),
        )

    # --- rnn ---
    @v_args(inline=True)
    def tree_node(self, label: Token, combine: Token, activation: Token) -> TreeNode:
        check_choice(str(combine), ops.RNN_COMBINES, "combine", _pos(combine))
        check_choice(str(activation), ops.ACTIVATIONS, "activation", _pos(activation))
        return TreeNode(
            _int(label[1:], "a node number", _pos(label)),
            str(combine),
            str(activation),
            _pos(label),
        )

    @v_args(inline=True)
    def inject(self, label: Token, combine: Token, activation: Token) -> Inject:
        check_choice(str(combine), ops.RNN_COMBINES, "combine", _pos(combine))
        check_choice(str(activation), ops.ACTIVATIONS, "activation", _pos(activation))
        node = Ref(_int(label[1:], "a node number", _pos(label)), _pos(label))
        return Inject(node, str(combine), str(activation), _pos(label))

    @v_args(inline=True)
    def cell_output(self, _cell: Token, label: Token) -> Ref:
        return Ref(_int(label[1:], "a node number", _pos(label)), _pos(label))

    def rnn(self, children: list) -> RnnArch:
        base_token, *statements = children
        pos = _pos(base_token)
        nodes = tuple(s for s in statements if isinstance(s, TreeNode))
        injects = [s for s in statements if isinstance(s, Inject)]
        cells = [s for s in statements if isinstance(s, Ref)]
        for found, what in ((injects, "inject"), (cells, "cell")):
            if len(found) > 1:
                raise ArchValidationError(
                    f"an rnn has one '{what}' line; this is a second", found[1].pos
                )
        return RnnArch(
            base=_int(base_token, "the base", pos),
            nodes=nodes,
            inject=injects[0] if injects else None,
            cell=cells[0] if cells else None,
            pos=pos,
        )

    # --- cells ---
    @v_args(inline=True)
    def setting(self, name: Token, value: Token) -> Setting:
        pos = _pos(name)
        parsed: int | str = (
            _int(value, f"option {name}", pos) if value.type == "INT" else str(value)
        )
        return Setting(str(name), parsed, pos)

    @v_args(inline=True)
    def edge(self, op: Token, state: Token) -> Edge:
        check_choice(str(op), ops.CELL_OPS, "op", _pos(op))
        return Edge(
            str(op), Ref(_int(state[1:], "a state number", _pos(state)), _pos(state)), _pos(op)
        )

    def node(self, children: list) -> CellNode:
        label, combine, *edges = children
        check_choice(str(combine), ops.CELL_COMBINES, "combine", _pos(combine))
        return CellNode(
            _int(label[1:], "a state number", _pos(label)), str(combine), tuple(edges), _pos(label)
        )

    @v_args(inline=True)
    def out_state(self, state: Token) -> tuple[Ref, ...]:
        return (Ref(_int(state[1:], "a state number", _pos(state)), _pos(state)),)

    def unused(self, _children: list) -> str:
        return "unused"

    def out_combine(self, children: list) -> tuple[Ref, ...] | str:
        combine, *args = children
        if combine != "concat":
            raise ArchValidationError(
                f"an output rule concatenates: out = concat(...), not {combine}(...)",
                _pos(combine),
                choices=("concat",),
            )
        if "unused" in args:
            if len(args) > 1:
                raise ArchValidationError(
                    "'unused' stands alone: out = concat(unused)", _pos(combine)
                )
            return "unused"
        return tuple(Ref(_int(s[1:], "a state number", _pos(s)), _pos(s)) for s in args)

    @v_args(inline=True)
    def output(self, out: Token, rule: tuple[Ref, ...] | str) -> _Output:
        return _Output(rule, _pos(out))

    def section(self, children: list) -> _Section:
        return _Section(children[0], children[1] if len(children) > 1 else None)

    def cells(self, children: list) -> CellsArch:
        skeleton_token, shape, classes, *rest = children
        check_choice(str(skeleton_token), ops.SKELETONS, "skeleton", _pos(skeleton_token))
        skeleton = ops.SKELETONS[str(skeleton_token)]
        settings = [c for c in rest if isinstance(c, Setting)]
        statements = [c for c in rest if not isinstance(c, Setting)]
        return CellsArch(
            skeleton=skeleton.name,
            input_shape=_sizes(shape, "the input shape"),  # type: ignore[arg-type]
            classes=_int(classes, "the class count", _pos(classes)),
            options=_complete_settings(skeleton, settings),
            cells=_group_cells(skeleton, statements),
            pos=_pos(skeleton_token),
        )


def _complete_settings(skeleton: ops.Skeleton, given: list[Setting]) -> tuple[Setting, ...]:
    """Every option of the skeleton in table order, defaults filled in."""
    by_name: dict[str, Setting] = {}
    for setting in given:
        check_choice(
            setting.name,
            {o.name: o for o in skeleton.options},
            f"{skeleton.name} option",
            setting.pos,
        )
        if setting.name in by_name:
            raise ArchValidationError(f"option {setting.name} is set twice", setting.pos)
        by_name[setting.name] = setting
    return tuple(by_name.get(o.name, Setting(o.name, o.default)) for o in skeleton.options)


def _group_cells(skeleton: ops.Skeleton, statements: list) -> tuple[Cell, ...]:
    """Split the flat statement list at section headers into cells, in canonical order."""
    sections: dict[str, tuple[Pos, list[CellNode], list[_Output]]] = {}
    current: tuple[Pos, list[CellNode], list[_Output]] | None = None
    for statement in statements:
        if isinstance(statement, _Section):
            name, first = statement.name, statement.first
            check_choice(
                str(name), {s: s for s in skeleton.sections}, f"{skeleton.name} section", _pos(name)
            )
            if str(name) in sections:
                raise ArchValidationError(f"the section '{name}:' appears twice", _pos(name))
            current = sections[str(name)] = (_pos(name), [], [])
            if first is None:
                continue
            statement = first
        if current is None:
            raise ArchValidationError(
                "a node or output rule must follow a section header such as "
                f"'{skeleton.sections[0]}:'",
                statement.pos,
            )
        if isinstance(statement, CellNode):
            current[1].append(statement)
        else:
            current[2].append(statement)
    cells = []
    for name, (pos, nodes, outputs) in sections.items():
        if len(outputs) > 1:
            raise ArchValidationError(
                f"the '{name}:' section has more than one 'out =' line", outputs[1].pos
            )
        output = outputs[0].rule if outputs else ()
        if output == "unused":
            output = _unused(nodes)
        cells.append(Cell(name, tuple(nodes), output, pos))
    order = {name: i for i, name in enumerate(skeleton.sections)}
    return tuple(sorted(cells, key=lambda c: order[c.kind]))


def _unused(nodes: list[CellNode]) -> tuple[Ref, ...]:
    """The cell's new states that no node reads (NASNet's output rule)."""
    read = {e.source.index for node in nodes for e in node.edges}
    return tuple(Ref(n.index) for n in nodes if n.index not in read)


@functools.cache
def _lark() -> Lark:
    """The parser, building IR as it reduces (no parse tree).

    Positions come from the tokens, so rule positions (propagate_positions)
    are not needed; leaving them off makes parsing about 35% faster.
    """
    return Lark(
        GRAMMAR_FILE.read_text(encoding="utf-8"), parser="lalr", lexer="basic", transformer=_ToIR()
    )


@functools.cache
def _tree_lark() -> Lark:
    """The same grammar building plain trees: used to match syntax errors to known mistakes."""
    return Lark(GRAMMAR_FILE.read_text(encoding="utf-8"), parser="lalr", lexer="basic")


# --- syntax errors in plain words -----------------------------------------------

# What a terminal is, for "expected ..." lists; string terminals show their text.
_TERMINAL_WORDS = {
    "SHAPE": "an input shape like 3x32x32",
    "SIZE": "a size like 3x3",
    "STRIDE": "a stride like s2x2",
    "FILTERS": "a filter count like n36",
    "LAYER": "a layer like L1",
    "NODE": "a node like N0",
    "STATE": "a state like S0",
    "WORD": "a name",
    "INT": "a whole number",
    "NUMBER": "a number",
    "_SEP": "a new line or ';'",
    "$END": "the end of the text",
}

_HEADER = "cnn input 3x32x32 classes 10\n"
_CELLS = "cells darts input 3x32x32 classes 10\nnormal:\n"

# Common mistakes, each with texts that make it (Lark's match_examples).
_MISTAKES: dict[str, list[str]] = {
    "an architecture starts with its family: cnn, rnn or cells": [
        "L1: conv 3x3 n36",
        "N0: add tanh",
        "foo",
        "\n",
    ],
    "the cnn header is 'cnn input CxHxW classes K', as in 'cnn input 3x32x32 classes 10'": [
        "cnn 3x32x32 classes 10",
        "cnn input 3x32x32 10",
        "cnn input 3x32x32",
    ],
    "the input shape is CHANNELSxHEIGHTxWIDTH, as in 3x32x32": [
        "cnn input 32x32 classes 10",
        "cnn input 3 classes 10",
        "cells nb201 input 32x32 classes 10",
    ],
    "a layer starts with its label and a colon, as in 'L1: conv 3x3 n36'": [
        _HEADER + "L1 conv 3x3 n36",
        _HEADER + "conv 3x3 n36",
    ],
    "sizes are written HEIGHTxWIDTH, as in 'conv 3x3 n36'": [
        _HEADER + "L1: conv 3 n36",
        _HEADER + "L1: conv n36",
        _HEADER + "L1: maxpool s2x2",
    ],
    "anchors come after '<-', as in 'L3: conv 3x3 n36 <- L1 L2'; "
    "two statements on one line need a ';' between them": [
        _HEADER + "L1: conv 3x3 n36\nL2: conv 3x3 n36 L1",
    ],
    "'<-' takes one or more earlier layers, as in '<- L1 L2'": [
        _HEADER + "L1: conv 3x3 n36\nL2: conv 3x3 n36 <-",
        _HEADER + "L1: conv 3x3 n36\nL2: conv 3x3 n36 <- 1",
    ],
    "the rnn header is 'rnn base B', as in 'rnn base 8'": ["rnn 8", "rnn base"],
    "a tree node names a combine and an activation, as in 'N0: add tanh'": [
        "rnn base 2\nN0: add",
        "rnn base 2\nN0 add tanh",
        "rnn base 2\ninject N0 add tanh",
    ],
    "the cells header is 'cells SKELETON input CxHxW classes K', then options such as 'n 6'": [
        "cells darts 3x32x32 classes 10",
        "cells input 3x32x32 classes 10",
        "cells darts input 3x32x32 classes 10 n",
    ],
    "a cell node combines edges, and an edge is an op applied to a state, "
    "as in 'S2 = add(sep3x3(S0), skip(S1))'": [
        _CELLS + "S2 = add(S0)",
        _CELLS + "S2 = add(sep3x3 S0)",
        _CELLS + "S2 = sep3x3(S0)",
        _CELLS + "S2 = add(sep3x3(S0) skip(S1))",
        _CELLS + "S2 add(sep3x3(S0))",
    ],
    "an output rule is 'out = S5' or 'out = concat(S2, S3)' or 'out = concat(unused)'": [
        _CELLS + "S2 = add(skip(S0))\nout = concat(S2 S1)",
        _CELLS + "S2 = add(skip(S0))\nout concat(S2)",
        _CELLS + "S2 = add(skip(S0))\nout = concat()",
    ],
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    pattern = _lark().get_terminal(name).pattern
    return f"'{pattern.value}'" if pattern.type == "str" else name.lower()


def _expected(names: set[str] | frozenset[str]) -> tuple[str, ...]:
    described = sorted(
        {_describe_terminal(n) for n in names},
        key=lambda d: (not d.startswith("'"), d),  # keywords and punctuation first
    )
    return tuple(described)


def _acceptable(err: UnexpectedCharacters) -> set[str]:
    """The terminals the parser could take where the lexer failed.

    The basic lexer's own `allowed` lists every terminal of the grammar, which
    says nothing about the place; the parser's state knows what may come there.
    """
    state = err.state
    if state is None:  # pragma: no cover - the LALR parser always passes its state
        return set(err.allowed or ())
    terminals = {t.name for t in _lark().terminals} | {"$END"}
    actions = state.parse_conf.parse_table.states[state.position]
    return {name for name in actions if name in terminals}


def _end_pos(text: str) -> Pos:
    lines = text.split("\n")
    return Pos(len(lines), len(lines[-1]) + 1)


def _show(text: str) -> str:
    shown = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return f"'{shown}'"


def _syntax_error(err: UnexpectedInput, text: str) -> ArchSyntaxError:
    if isinstance(err, UnexpectedCharacters):
        found = f"character {_show(text[err.pos_in_stream])}"
        pos = Pos(err.line, err.column)
        names = _acceptable(err)
    elif isinstance(err, (UnexpectedToken, UnexpectedEOF)):
        token = err.token
        if token.type == "$END":
            found, pos = "end of the text", _end_pos(text.rstrip("\n; \t\r"))
        elif token.type == "_SEP":
            found = "end of the line" if "\n" in token else "';'"
            pos = Pos(token.line or 0, token.column or 0)
        else:
            found, pos = _show(str(token)), _pos(token)
        names = getattr(err, "accepts", None) or err.expected
    else:  # pragma: no cover - Lark raises only the three kinds above
        raise err
    expected = _expected(names)
    label = _mistake(err)
    listing = expected[0] if len(expected) == 1 else "one of " + ", ".join(expected)
    return ArchSyntaxError(
        f"unexpected {found}; expected {listing}", pos, expected=expected, label=label
    )


def _mistake(err: UnexpectedInput) -> str | None:
    """The label of the common mistake the failed parse made, if it made one.

    An example matches when the parser failed in the same LALR state
    (preferably on the same kind of token). Lark's own match_examples also
    compares the depth of the parser's stack, so an example with one layer
    before the mistake would not match the same mistake after two layers.
    The examples are parsed once, by the same parser, so states compare.
    """
    if not isinstance(err, UnexpectedToken) or err.state is None:
        return None  # an unexpected character is its own explanation
    state, token_type = err.state.position, err.token.type
    rows = _mistake_table()
    same_token = [label for s, t, label in rows if s == state and t == token_type]
    same_state = [label for s, _t, label in rows if s == state]
    return (same_token or same_state or [None])[0]


@functools.cache
def _mistake_table() -> tuple[tuple[int, str, str], ...]:
    """(parser state, token type, label) where each example of a common mistake fails."""
    rows = []
    for label, examples in _MISTAKES.items():
        for example in examples:
            try:
                _lark().parse(example)
            except UnexpectedToken as err:
                rows.append((err.state.position, err.token.type, label))
    return tuple(rows)


# --- the entry point --------------------------------------------------------------


def parse(text: str, filename: str = "<arch>", *, check: bool = True) -> Arch:
    """Parse an architecture text into IR and (unless `check` is false) validate it.

    Raises ArchSyntaxError or ArchValidationError (both ArchError), each
    carrying the text and `filename` so that str(error) shows the place.
    """
    try:
        if len(text) > limits.MAX_SOURCE_CHARS:
            raise ArchValidationError(
                f"the text has {len(text):,} characters; an architecture has at most "
                f"{limits.MAX_SOURCE_CHARS:,}",
                Pos(1, 1),
            )
        try:
            arch = _lark().parse(text)
        except UnexpectedInput as err:
            raise _syntax_error(err, text) from None
        if check:
            validate(arch)
        return arch
    except ArchError as err:
        if err.source is None:
            err.attach(text, filename)
        raise
