"""rnn spaces: the NAS paper's recurrent cell trees (Zoph & Le 2017, §3.4).

The sequence follows the paper's Figure 5: each tree node's combine and
activation in node order (leaves first, the root last), then where c_{t-1}
is injected (a node, a combine, an activation), then which node's value
becomes c_t. Any tree node may take the inject and give the cell output.
"""

from __future__ import annotations

from collections.abc import Sequence

from nasforge.grammar import limits, ops, validate
from nasforge.grammar.ir import Arch, Inject, Ref, RnnArch, TreeNode

from .space import Slot, Space, Table


class RnnSpace(Space):
    family = "rnn"

    def __init__(
        self,
        name: str,
        doc: str,
        *,
        base: int,
        combines: tuple[str, ...],
        activations: tuple[str, ...],
    ) -> None:
        super().__init__(name, doc)
        self.base = base
        self.combines = combines
        self.activations = activations
        self.nodes = tuple(f"N{k}" for k in range(2 * base - 1))

    @classmethod
    def read(cls, name: str, doc: str, table: Table) -> RnnSpace:
        base = table.integer("base", low=2, high=limits.MAX_BASE)
        if base & (base - 1):
            raise table.error("base", f"must be a power of two, not {base}")
        return cls(
            name,
            doc,
            base=base,
            combines=table.names("combines", ops.RNN_COMBINES),
            activations=table.names("activations", ops.ACTIVATIONS),
        )

    def _build_slots(self, depth: int | None) -> list[Slot]:
        slots = []
        for node in self.nodes:
            slots.append(Slot(f"{node}.combine", "choice", self.combines))
            slots.append(Slot(f"{node}.activation", "choice", self.activations))
        slots.append(Slot("inject.node", "choice", self.nodes))
        slots.append(Slot("inject.combine", "choice", self.combines))
        slots.append(Slot("inject.activation", "choice", self.activations))
        slots.append(Slot("cell.node", "choice", self.nodes))
        return slots

    def to_arch(self, decisions: Sequence[int], depth: int | None = None) -> Arch:
        self.check_decisions(decisions, depth)
        values = [int(v) for v in decisions]
        count = len(self.nodes)
        nodes = tuple(
            TreeNode(k, self.combines[values[2 * k]], self.activations[values[2 * k + 1]])
            for k in range(count)
        )
        where, combine, activation, cell = values[2 * count :]
        inject = Inject(Ref(where), self.combines[combine], self.activations[activation])
        return validate(RnnArch(self.base, nodes, inject, Ref(cell)))

    def decisions_of(self, arch: Arch) -> tuple[tuple[int, ...], int | None]:
        if not isinstance(arch, RnnArch):
            raise self.mismatch(f"a {arch.family} architecture is not an rnn", arch.pos, ("rnn",))
        if arch.base != self.base:
            raise self.mismatch(f"base {arch.base} is not {self.base}", arch.pos, (str(self.base),))
        assert arch.inject is not None and arch.cell is not None  # validated IR has both
        slots = iter(self.slots())
        decisions = []
        for node in arch.nodes:
            decisions.append(self.pick(next(slots), node.combine, node.pos))
            decisions.append(self.pick(next(slots), node.activation, node.pos))
        inject = arch.inject
        decisions.append(self.pick(next(slots), f"N{inject.node.index}", inject.node.pos))
        decisions.append(self.pick(next(slots), inject.combine, inject.pos))
        decisions.append(self.pick(next(slots), inject.activation, inject.pos))
        decisions.append(self.pick(next(slots), f"N{arch.cell.index}", arch.cell.pos))
        return tuple(decisions), None
