"""Deriving an architecture string from one-shot architecture weights (issue 18, phase 2).

Hand-made weight tables check the rules and their tie orders; random tables check
that every derived string parses, compiles, runs, lies in the space and selects
exactly its ops on the supernet (`one_hot`).
"""

from __future__ import annotations

import pytest
import torch
from nasforge.codegen import generate, load_source
from nasforge.codegen.supernet import one_hot
from nasforge.controller.oneshot import (
    darts_node_edges,
    derive_darts,
    derive_nb201,
    supernet_spec,
)
from nasforge.controller.space import load_space
from nasforge.grammar import parse, to_text, validate
from nasforge.grammar.nb201 import to_nb201

DARTS = load_space("darts")
NB201 = load_space("nb201")
DARTS_OPS = supernet_spec(
    DARTS
).ops  # none, skip, sep3x3, sep5x5, dil3x3, dil5x5, avg, max
NB201_OPS = supernet_spec(NB201).ops  # none, skip, conv1x1, conv3x3, avgpool3x3
HEADER_DARTS = "cells darts input 3x32x32 classes 10 n 2 filters 16 stem cifar"
HEADER_NB201 = "cells nb201 input 3x32x32 classes 10 n 5 filters 16"
# The darts supernet's rows per node: S2 reads S0 S1, S3 reads S0..S2, and so on.
DARTS_ROWS = {2: range(0, 2), 3: range(2, 5), 4: range(5, 9), 5: range(9, 14)}


def _row(ops, **weights: float) -> list[float]:
    return [weights.get(op, 0.0) for op in ops]


def _darts_table(fill: dict[int, list[list[float]]]) -> list[list[float]]:
    """Rows of a darts cell: `fill` node -> its rows; other nodes favour sep3x3 on S0, S1."""
    table = []
    for node, rows in DARTS_ROWS.items():
        given = fill.get(node)
        for e, _ in enumerate(rows):
            if given is not None:
                table.append(given[e])
            else:
                strength = 0.5 if e < 2 else 0.1
                table.append(_row(DARTS_OPS, sep3x3=strength))
    return table


def _node(text: str, section: str, index: int) -> str:
    cell = text.split(f"{section}:\n")[1]
    return next(
        line.strip()
        for line in cell.splitlines()
        if line.strip().startswith(f"S{index} ")
    )


# --- darts: hand-made tables ------------------------------------------------------------


@pytest.mark.parametrize("softmax", [True, False])
def test_darts_tied_edges_keep_the_earlier_states(softmax):
    same = _row(DARTS_OPS, dil3x3=0.4)
    weak = _row(DARTS_OPS, skip=0.1)
    table = _darts_table(
        {4: [same, same, same, same], 5: [weak, weak, same, same, same]}
    )
    text = derive_darts(table, table, DARTS, softmax=softmax)
    assert _node(text, "normal", 4) == "S4 = add(dil3x3(S0), dil3x3(S1))"
    assert _node(text, "reduction", 5) == "S5 = add(dil3x3(S2), dil3x3(S3))"


def test_darts_tied_ops_take_the_earlier_op():
    tied = _row(DARTS_OPS, sep5x5=0.3, sep3x3=0.3, maxpool3x3=0.3)
    table = _darts_table({2: [tied, _row(DARTS_OPS, maxpool3x3=0.2, avgpool3x3=0.2)]})
    text = derive_darts(table, table, DARTS, softmax=False)
    assert _node(text, "normal", 2) == "S2 = add(sep3x3(S0), avgpool3x3(S1))"


def test_darts_ranks_edges_by_the_softmax_as_the_reference():
    flat = [0.0] + [3.0] * 7  # raw strength 3, softmax strength 0.14
    peaked = [0.0, 2.5] + [0.0] * 6  # raw 2.5, softmax 0.64
    lower = [0.0, 2.0] + [0.0] * 6  # raw 2, softmax 0.51
    table = _darts_table({3: [flat, peaked, lower]})
    assert (
        _node(derive_darts(table, table, DARTS), "normal", 3)
        == "S3 = add(skip(S1), skip(S2))"
    )
    raw = derive_darts(table, table, DARTS, softmax=False)
    assert _node(raw, "normal", 3) == "S3 = add(skip(S0), skip(S1))"


def test_darts_excludes_none_even_where_it_is_strongest():
    dead = _row(DARTS_OPS, none=0.9, skip=0.05, maxpool3x3=0.04)
    table = _darts_table(
        {2: [dead, dead], 3: [dead, _row(DARTS_OPS, dil5x5=0.3), dead]}
    )
    text = derive_darts(table, table, DARTS, softmax=False)
    # Both of S2's edges are kept (it has two), each with its best op but none.
    assert _node(text, "normal", 2) == "S2 = add(skip(S0), skip(S1))"
    # S3 ranks S0 and S2 by skip's 0.05, the same: the earlier one stays.
    assert _node(text, "normal", 3) == "S3 = add(skip(S0), dil5x5(S1))"


def test_darts_drops_an_edge_whose_other_ops_are_all_weaker():
    strong_none = _row(DARTS_OPS, none=0.9, sep3x3=0.2, sep5x5=0.2, dil3x3=0.2)
    rows = [
        _row(DARTS_OPS, maxpool3x3=0.25),
        strong_none,
        _row(DARTS_OPS, skip=0.3),
        strong_none,
    ]
    table = _darts_table({4: rows})
    text = derive_darts(table, table, DARTS, softmax=False)
    assert _node(text, "normal", 4) == "S4 = add(maxpool3x3(S0), skip(S2))"


def test_darts_writes_kept_edges_in_state_order_and_cells_apart():
    normal = _darts_table(
        {5: [_row(DARTS_OPS, skip=v) for v in (0.1, 0.2, 0.3, 0.4, 0.9)]}
    )
    reduce = _darts_table({})
    text = derive_darts(normal, reduce, DARTS, softmax=False)
    assert darts_node_edges(normal[9:14], DARTS_OPS) == [
        (4, 1),
        (3, 1),
    ]  # strongest first
    assert _node(text, "normal", 5) == "S5 = add(skip(S3), skip(S4))"
    assert _node(text, "reduction", 5) == "S5 = add(sep3x3(S0), sep3x3(S1))"
    assert text.startswith(HEADER_DARTS + "\n")


def test_darts_node_with_one_predecessor_keeps_it():
    assert darts_node_edges([_row(DARTS_OPS, none=1.0, dil3x3=0.1)], DARTS_OPS) == [
        (0, 4)
    ]


def test_darts_refuses_tables_of_the_wrong_shape_and_only_none():
    table = _darts_table({})
    with pytest.raises(ValueError, match="14 edges x 8 ops"):
        derive_darts(table[:-1], table, DARTS)
    with pytest.raises(ValueError, match="finite"):
        derive_darts(table, [[float("nan")] * 8] * 14, DARTS)
    with pytest.raises(ValueError, match="none"):
        darts_node_edges([[1.0]], ("none",))
    with pytest.raises(ValueError, match="nb201"):
        derive_nb201(table, DARTS)


# --- nb201: hand-made tables ------------------------------------------------------------


def test_nb201_keeps_none_where_it_is_strongest_and_ties_take_the_earlier_op():
    rows = [
        _row(NB201_OPS, none=0.9, conv3x3=0.8),
        _row(NB201_OPS, conv1x1=0.5, conv3x3=0.5),
        _row(NB201_OPS, avgpool3x3=0.3),
        [0.2] * 5,
        _row(NB201_OPS, skip=0.1),
        _row(NB201_OPS, conv3x3=0.7, none=0.6),
    ]
    text = derive_nb201(rows, NB201)
    assert text == (
        f"{HEADER_NB201}\ncell:\n"
        "  S1 = add(none(S0))\n"
        "  S2 = add(conv1x1(S0), avgpool3x3(S1))\n"
        "  S3 = add(none(S0), skip(S1), conv3x3(S2))\n"
        "  out = S3\n"
    )


def test_nb201_all_skip_collapse():
    """Weights favouring skip on every edge: the collapse the NAS-Bench-201 paper reports
    for DARTS (Dong & Yang 2020)."""
    alphas = torch.zeros(6, 5)
    alphas[:, NB201_OPS.index("skip")] = 0.01
    text = derive_nb201(alphas, NB201)
    assert "S3 = add(skip(S0), skip(S1), skip(S2))" in text
    assert to_nb201(parse(text)) == (
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
        "|skip_connect~0|skip_connect~1|skip_connect~2|"
    )


def test_nb201_refuses_tables_of_the_wrong_shape():
    with pytest.raises(ValueError, match="6 edges x 5 ops"):
        derive_nb201(torch.zeros(6, 4), NB201)
    with pytest.raises(ValueError, match="darts"):
        derive_darts(torch.zeros(6, 5), torch.zeros(6, 5), NB201)


# --- random tables: the string is a compilable architecture of the space ---------------


def _darts_expected(alphas: torch.Tensor) -> list[int]:
    """The op index per supernet row that DARTS' rule selects (0, none, where left out)."""
    probs = torch.softmax(alphas, dim=-1)
    probs[:, DARTS_OPS.index("none")] = -1.0
    chosen = [0] * len(probs)
    for rows in DARTS_ROWS.values():
        strengths, ops_ = probs[list(rows)].max(dim=-1)
        for e in torch.argsort(strengths, descending=True, stable=True)[:2].tolist():
            chosen[rows[e]] = int(ops_[e])
    return chosen


def _check_in_space_and_runs(space, text: str) -> None:
    arch = validate(parse(text))
    assert to_text(arch) == text  # canonical
    decisions, _ = space.decisions_of(arch)
    assert to_text(space.to_arch(decisions)) == text
    model = load_source(generate(arch, black=False)).build_model()
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, *space.input_shape))
    assert logits.shape == (2, space.classes)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_darts_random_weights_derive_the_rule_and_round_trip(seed):
    torch.manual_seed(seed)
    normal, reduce = torch.randn(14, 8), torch.randn(14, 8)
    text = derive_darts(normal, reduce, DARTS)
    spec = supernet_spec(DARTS)
    picked = [row.index(1.0) for row in one_hot(spec, text)]
    assert picked == _darts_expected(normal) + _darts_expected(reduce)
    assert derive_darts(normal.tolist(), reduce.tolist(), spec) == text  # lists, a spec
    _check_in_space_and_runs(DARTS, text)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nb201_random_weights_derive_the_argmax_and_round_trip(seed):
    torch.manual_seed(seed)
    alphas = torch.randn(6, 5)
    text = derive_nb201(alphas, NB201)
    picked = [row.index(1.0) for row in one_hot(supernet_spec(NB201), text)]
    assert picked == alphas.argmax(dim=-1).tolist()
    assert derive_nb201(torch.softmax(alphas, dim=-1), NB201) == text
    _check_in_space_and_runs(NB201, text)
