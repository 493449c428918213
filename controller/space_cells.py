"""cells spaces: NASNet / DARTS cell pairs and dense NAS-Bench-201 cells.

NASNet-style skeletons (nasnet, darts): each section (normal, reduction)
has `nodes` new states; each state picks, in NASNet's order (Zoph et al.
2018, Fig. 3), the input state of every edge, then every edge's op, then the
combine. The cell's output follows the space's rule: `unused` (NASNet: concat
of the states no node reads) or `all` (DARTS: concat of every new state).

Dense skeletons (nb201): every state reads every earlier one through one op,
so the only decisions are the ops, edge by edge (S1's edge from S0, S2's from
S0 and S1, ...). The output is the last state.

The network around the cells (skeleton options such as n and filters) is
fixed by the space file, not searched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property

from nasforge.grammar import limits, ops, validate
from nasforge.grammar.ir import Arch, Cell, CellNode, CellsArch, Edge, Ref, Setting

from .space import Slot, Space, Table

OUTPUT_RULES = ("unused", "all", "last")
VOCABULARIES = ("nasnet", "darts", "nb201")  # op-table columns a space may take its ops from


class CellsSpace(Space):
    family = "cells"

    def __init__(
        self,
        name: str,
        doc: str,
        *,
        skeleton: str,
        input_shape: tuple[int, int, int],
        classes: int,
        options: tuple[Setting, ...],
        nodes: int,
        edges: int,
        op_names: tuple[str, ...],
        combines: tuple[str, ...],
        output: str,
    ) -> None:
        super().__init__(name, doc)
        self.skeleton = skeleton
        self.input_shape = input_shape
        self.classes = classes
        self.options = options
        self.nodes = nodes
        self.edges = edges
        self.ops = op_names
        self.combines = combines
        self.output = output
        info = ops.SKELETONS[skeleton]
        self.sections = info.sections
        self.first = info.inputs  # the number of the first new state
        self.dense = info.dense

    @classmethod
    def read(cls, name: str, doc: str, table: Table) -> CellsSpace:
        skeleton = table.text("skeleton")
        if skeleton not in ops.SKELETONS:
            raise table.error(
                "skeleton", f"unknown {skeleton!r}; valid: {', '.join(ops.SKELETONS)}"
            )
        info = ops.SKELETONS[skeleton]
        shape = table.shape("input")
        option_table = table.table("options")
        options = []
        for option in info.options:
            value = option_table.value(option.name, option.default)
            options.append(Setting(option.name, value))
        vocabulary = table.value("ops", None)
        if isinstance(vocabulary, str):
            if vocabulary not in VOCABULARIES:
                raise table.error("ops", f"a vocabulary is one of {', '.join(VOCABULARIES)}")
            op_names = tuple(op.name for op in ops.ops_of(vocabulary).values())
        else:
            op_names = table.names("ops", ops.CELL_OPS)
        dense_default = ["add"] if info.dense else None
        combines = table.names("combines", ops.CELL_COMBINES, dense_default)
        output = table.text("output", "last" if info.dense else None)
        if output not in OUTPUT_RULES:
            raise table.error("output", f"is one of {', '.join(OUTPUT_RULES)}, not {output!r}")
        if info.dense and (combines != ("add",) or output != "last"):
            raise table.error(
                "output", f"a dense {skeleton} cell adds its edges and outputs its last state"
            )
        space = cls(
            name,
            doc,
            skeleton=skeleton,
            input_shape=shape,
            classes=table.integer("classes", low=2, high=limits.MAX_CLASSES),
            options=tuple(options),
            nodes=table.integer("nodes", high=limits.MAX_CELL_NODES),
            edges=0 if info.dense else table.integer("edges", high=limits.MAX_CELL_EDGES),
            op_names=op_names,
            combines=combines,
            output=output,
        )
        # Surface bad option values (and anything else) now, with the grammar's message.
        space.to_arch([0] * len(space.slots()))
        return space

    # --- the sequence ----------------------------------------------------------------

    def _states(self, number: int) -> tuple[str, ...]:
        return tuple(f"S{i}" for i in range(number))

    def _node_slots(self, section: str, number: int) -> list[Slot]:
        prefix = f"{section}.S{number}"
        if self.dense:
            return [Slot(f"{prefix}.op{e}", "choice", self.ops) for e in range(number)]
        slots = [Slot(f"{prefix}.in{e}", "choice", self._states(number)) for e in range(self.edges)]
        slots += [Slot(f"{prefix}.op{e}", "choice", self.ops) for e in range(self.edges)]
        if len(self.combines) > 1:
            slots.append(Slot(f"{prefix}.combine", "choice", self.combines))
        return slots

    @cached_property
    def _by_name(self) -> dict[str, Slot]:
        return {slot.name: slot for slot in self.slots()}

    def _numbers(self) -> range:
        return range(self.first, self.first + self.nodes)

    def _build_slots(self, depth: int | None) -> list[Slot]:
        return [
            slot
            for section in self.sections
            for number in self._numbers()
            for slot in self._node_slots(section, number)
        ]

    # --- decisions -> architecture ----------------------------------------------------

    def to_arch(self, decisions: Sequence[int], depth: int | None = None) -> Arch:
        self.check_decisions(decisions, depth)
        values = iter(int(v) for v in decisions)  # consumed in slot order (_node_slots)
        cells = tuple(self._cell(section, values) for section in self.sections)
        arch = CellsArch(self.skeleton, self.input_shape, self.classes, self.options, cells)
        return validate(arch)

    def _cell(self, section: str, values: Iterator[int]) -> Cell:
        nodes = []
        for number in self._numbers():
            if self.dense:
                sources = list(range(number))
            else:
                sources = [next(values) for _ in range(self.edges)]
            edges = tuple(Edge(self.ops[next(values)], Ref(source)) for source in sources)
            combine = self.combines[next(values) if len(self.combines) > 1 else 0]
            nodes.append(CellNode(number, combine, edges))
        return Cell(section, tuple(nodes), self._output(nodes))

    def _output(self, nodes: Sequence[CellNode]) -> tuple[Ref, ...]:
        numbers = [node.index for node in nodes]
        if self.output == "last":
            return (Ref(numbers[-1]),)
        if self.output == "all":
            return tuple(Ref(n) for n in numbers)
        read = {edge.source.index for node in nodes for edge in node.edges}
        return tuple(Ref(n) for n in numbers if n not in read)

    # --- architecture -> decisions ----------------------------------------------------

    def decisions_of(self, arch: Arch) -> tuple[tuple[int, ...], int | None]:
        if not isinstance(arch, CellsArch):
            raise self.mismatch(f"a {arch.family} architecture is not cells", arch.pos, ("cells",))
        if arch.skeleton != self.skeleton:
            raise self.mismatch(
                f"skeleton {arch.skeleton} is not {self.skeleton}", arch.pos, (self.skeleton,)
            )
        self.check_image_header(arch, self.input_shape, self.classes)
        for setting, fixed in zip(arch.options, self.options, strict=True):
            if setting.value != fixed.value:
                raise self.mismatch(
                    f"option {setting.name} is {setting.value}, not the space's {fixed.value}",
                    setting.pos if setting.pos.line else arch.pos,
                    (str(fixed.value),),
                )
        decisions: list[int] = []
        for cell in arch.cells:
            decisions.extend(self._cell_decisions(cell))
        return tuple(decisions), None

    def _cell_decisions(self, cell: Cell) -> list[int]:
        if len(cell.nodes) != self.nodes:
            raise self.mismatch(
                f"the '{cell.kind}:' section has {len(cell.nodes)} nodes, not {self.nodes}",
                cell.nodes[-1].pos if cell.nodes else cell.pos,
            )
        decisions: list[int] = []
        slots = self._by_name
        for node in cell.nodes:
            prefix = f"{cell.kind}.S{node.index}"
            if not self.dense and len(node.edges) != self.edges:
                raise self.mismatch(
                    f"S{node.index} has {len(node.edges)} edges, not {self.edges}", node.pos
                )
            ins = []
            for e, edge in enumerate(node.edges):
                where = edge.source.pos if edge.source.pos.line else node.pos
                if not self.dense:
                    slot = slots[f"{prefix}.in{e}"]
                    ins.append(self.pick(slot, f"S{edge.source.index}", where))
            ops_ = [
                self.pick(
                    slots[f"{prefix}.op{e}"], edge.op, edge.pos if edge.pos.line else node.pos
                )
                for e, edge in enumerate(node.edges)
            ]
            combine = slots.get(f"{prefix}.combine")
            decisions += ins + ops_
            if combine is not None:
                decisions.append(self.pick(combine, node.combine, node.pos))
            elif node.combine != self.combines[0]:
                raise self.outside(f"{prefix}.combine", node.combine, self.combines, node.pos)
        expected = self._output(cell.nodes)
        if [r.index for r in cell.output] != [r.index for r in expected]:
            rule = {
                "unused": "concat(unused)",
                "all": "concat of every new state",
                "last": "its last state",
            }
            given = ", ".join(f"S{r.index}" for r in cell.output)
            want = ", ".join(f"S{r.index}" for r in expected)
            where = cell.output[0].pos if cell.output and cell.output[0].pos.line else cell.pos
            raise self.mismatch(
                f"the '{cell.kind}:' output is {given}, not {want} ({rule[self.output]})",
                where,
                (want,),
            )
        return decisions
