"""Lowering of an rnn architecture: the cell tree as one statement per node.

Node k of a base-b tree is a leaf for k < b; inner node k combines nodes
2(k - b) and 2(k - b) + 1 (leaves first, then level by level, root last).
"""

from __future__ import annotations

from dataclasses import dataclass

from nasforge.grammar.ir import RnnArch

from .cost import Cost, PartCost, linear_cost
from .naming import Namespace

DEFAULTS = {
    "vocab_size": 10_000,
    "embed_size": 200,
    "hidden_size": 200,
    "num_layers": 1,
    "dropout": 0.2,
    "tie_weights": True,
    "bias": True,
}


@dataclass(frozen=True)
class NodePlan:
    name: str  # n3
    combine: str  # add | mul
    activation: str  # identity | tanh | relu | sigmoid
    operands: tuple[str, str]  # what it combines: the two projections, or the child nodes
    leaf: int | None  # for a leaf, which chunk of the projections it reads
    pre_name: str | None  # name of the value before the activation, when it is c_t
    inject: tuple[str, str] | None  # (combine, activation) with which c_{t-1} joins


@dataclass(frozen=True)
class RnnPlan:
    base: int
    nodes: tuple[NodePlan, ...]
    projected_x: str  # names of the chunked projections
    projected_h: str
    cell_value: str  # the name holding c_t
    root: str  # h_t


def children(base: int, index: int) -> tuple[int, int]:
    """The two children of inner node `index` in a base-`base` tree."""
    first = 2 * (index - base)
    return first, first + 1


def plan_rnn(arch: RnnArch, namespace: Namespace | None = None) -> RnnPlan:
    assert arch.inject is not None and arch.cell is not None, "validate the IR first"
    ns = namespace or Namespace()
    for reserved in ("h", "c", "state"):
        ns.name(reserved)
    wx, uh = ns.name("wx"), ns.name("uh")
    names = [ns.name(f"n{node.index}") for node in arch.nodes]
    nodes = []
    cell_value = ""
    for node in arch.nodes:
        k = node.index
        leaf = k if k < arch.base else None
        if leaf is not None:
            operands = (wx, uh)
        else:
            left, right = children(arch.base, k)
            operands = (names[left], names[right])
        pre_name = None
        if k == arch.cell.index:
            pre_name = ns.name(f"{names[k]}_pre")
            cell_value = pre_name
        inject = None
        if k == arch.inject.node.index:
            inject = (arch.inject.combine, arch.inject.activation)
        nodes.append(
            NodePlan(names[k], node.combine, node.activation, operands, leaf, pre_name, inject)
        )
    return RnnPlan(arch.base, tuple(nodes), wx, uh, cell_value, names[-1])


def cost_rnn(plan: RnnPlan, **overrides: object) -> Cost:
    """Parameters of the language model; multiply-adds per token."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown build_model overrides: {', '.join(sorted(unknown))}")
    options = {**DEFAULTS, **overrides}
    vocab, embed, hidden = (
        int(options["vocab_size"]),
        int(options["embed_size"]),
        int(options["hidden_size"]),
    )  # type: ignore[call-overload]
    width = plan.base * hidden
    parts = [PartCost("embedding", (embed,), vocab * embed, 0)]
    for layer in range(int(options["num_layers"])):  # type: ignore[call-overload]
        in_size = embed if layer == 0 else hidden
        x_params, x_macs = linear_cost(in_size, width, bias=False)
        h_params, h_macs = linear_cost(hidden, width, bias=bool(options["bias"]))
        parts.append(PartCost(f"cells.{layer}", (hidden,), x_params + h_params, x_macs + h_macs))
    params, macs = linear_cost(hidden, vocab)
    if options["tie_weights"]:
        params -= hidden * vocab  # the decoder shares the embedding's weight
    parts.append(PartCost("decoder", (vocab,), params, macs))
    return Cost.of(parts)
