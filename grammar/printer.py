"""IR -> text: the one canonical printed form of an architecture.

Canonical means: one statement a line, single spaces, defaults spelled out
where the header has them (cells options) and left out where a layer has them
(stride 1x1, batch norm on), anchors ascending, sections in the skeleton's order.
`parse(to_text(ir)) == ir` for every valid IR.
"""

from __future__ import annotations

from .ir import Arch, Cell, CellsArch, CnnArch, Layer, RnnArch, for_family


def to_text(arch: Arch, *, one_line: bool = False) -> str:
    """The canonical text of `arch` (ending in a newline), or one line joined by '; '."""
    lines = for_family(_PRINTERS, arch)(arch)
    if one_line:
        return "; ".join(line.strip() for line in lines).replace(":; ", ": ")
    return "\n".join(lines) + "\n"


def _size(size: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in size)


def _cnn(arch: CnnArch) -> list[str]:
    header = f"cnn input {_size(arch.input_shape)} classes {arch.classes}"
    if arch.lr is not None:
        header += f" lr {arch.lr!r}"
    return [header, *(_layer(layer) for layer in arch.layers)]


def _layer(layer: Layer) -> str:
    words = [f"L{layer.index}:", layer.kind, _size(layer.kernel)]
    if layer.stride != (1, 1):
        words.append("s" + _size(layer.stride))
    if layer.filters is not None:
        words.append(f"n{layer.filters}")
    if not layer.batchnorm:
        words.append("nobn")
    if layer.lrn:
        words.append("lrn")
    if layer.inputs:
        words.append("<-")
        words.extend(f"L{ref.index}" for ref in layer.inputs)
    return " ".join(words)


def _rnn(arch: RnnArch) -> list[str]:
    inject, cell = arch.inject, arch.cell
    if inject is None or cell is None:
        raise ValueError("an rnn IR without its inject or cell line has no text; validate it first")
    return [
        f"rnn base {arch.base}",
        *(f"N{n.index}: {n.combine} {n.activation}" for n in arch.nodes),
        f"inject N{inject.node.index}: {inject.combine} {inject.activation}",
        f"cell N{cell.index}",
    ]


def _cells(arch: CellsArch) -> list[str]:
    header = f"cells {arch.skeleton} input {_size(arch.input_shape)} classes {arch.classes}"
    header += "".join(f" {s.name} {s.value}" for s in arch.options)
    lines = [header]
    for cell in arch.cells:
        lines.append(f"{cell.kind}:")
        lines.extend(f"  {line}" for line in _cell_body(cell))
    return lines


def _cell_body(cell: Cell) -> list[str]:
    lines = []
    for node in cell.nodes:
        edges = ", ".join(f"{e.op}(S{e.source.index})" for e in node.edges)
        lines.append(f"S{node.index} = {node.combine}({edges})")
    states = [f"S{ref.index}" for ref in cell.output]
    lines.append(f"out = {states[0]}" if len(states) == 1 else f"out = concat({', '.join(states)})")
    return lines


# The families table of the printer: each IR class's statements.
_PRINTERS = {CnnArch: _cnn, RnnArch: _rnn, CellsArch: _cells}
