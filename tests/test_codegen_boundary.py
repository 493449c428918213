"""An IR built in Python (the public API) is validated at the codegen boundary: nothing
but validated numbers and names from the op table reaches generated code."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from nasforge.codegen.cost import cost
from nasforge.grammar import ArchError, parse
from nasforge.grammar.ir import Arch

from nasforge import codegen

CNN = parse("cnn input 3x32x32 classes 10 lr 0.1; L1: conv 3x3 n36; L2: conv 3x3 n48 <- L1")
RNN = parse("rnn base 2; N0: add tanh; N1: mul relu; N2: mul sigmoid; inject N0: add relu; cell N1")
CELLS = parse(
    "cells nb201 input 3x32x32 classes 10 n 5 filters 16\n"
    "cell:\n"
    "  S1 = add(conv3x3(S0))\n"
    "  S2 = add(conv3x3(S0), conv3x3(S1))\n"
    "  S3 = add(skip(S0), conv3x3(S1), conv1x1(S2))\n"
    "  out = S3\n"
)


def _layer(index: int, **changes: object) -> Arch:
    layers = list(CNN.layers)  # type: ignore[union-attr]
    layers[index] = dataclasses.replace(layers[index], **changes)
    return dataclasses.replace(CNN, layers=tuple(layers))  # type: ignore[arg-type]


def _rnn_node(index: int, **changes: object) -> Arch:
    nodes = list(RNN.nodes)  # type: ignore[union-attr]
    nodes[index] = dataclasses.replace(nodes[index], **changes)
    return dataclasses.replace(RNN, nodes=tuple(nodes))  # type: ignore[arg-type]


def _cell_node(**changes: object) -> Arch:
    cell = CELLS.cells[0]  # type: ignore[union-attr]
    node = dataclasses.replace(cell.nodes[0], **changes)
    cell = dataclasses.replace(cell, nodes=(node, *cell.nodes[1:]))
    return dataclasses.replace(CELLS, cells=(cell, *CELLS.cells[1:]))  # type: ignore[arg-type]


def _edge(op: str) -> Arch:
    node = CELLS.cells[0].nodes[0]  # type: ignore[union-attr]
    return _cell_node(edges=(dataclasses.replace(node.edges[0], op=op),))


def _setting(value: object) -> Arch:
    options = list(CELLS.options)  # type: ignore[union-attr]
    options[0] = dataclasses.replace(options[0], value=value)
    return dataclasses.replace(CELLS, options=tuple(options))  # type: ignore[arg-type]


CRAFTED: dict[str, Callable[[], Arch]] = {
    "activation with a dot": lambda: _rnn_node(0, activation="os.system"),
    "combine with parentheses": lambda: _rnn_node(1, combine="add(__import__('os'))"),
    "inject activation, a dunder name": lambda: dataclasses.replace(
        RNN, inject=dataclasses.replace(RNN.inject, activation="__import__")  # type: ignore
    ),
    "layer kind with a quote": lambda: _layer(0, kind="conv'"),
    "layer kind with a newline": lambda: _layer(0, kind="conv\nimport os"),
    "cell op with a dot": lambda: _edge("nor_conv_3x3.__class__"),
    "cell combine, a dunder name": lambda: _cell_node(combine="__add__"),
    "unknown op": lambda: _edge("rm_rf"),
    "filters not an int": lambda: _layer(0, filters="36); import os; (1"),
    "kernel not ints": lambda: _layer(1, kernel=(3.5, 3)),
    "input shape with a string": lambda: dataclasses.replace(CNN, input_shape=("3", 32, 32)),
    "a setting's value a string of code": lambda: _setting("16); __import__('os').system('x'"),
}


def test_the_bases_are_valid() -> None:
    for arch in (CNN, RNN, CELLS):
        assert "def build_model" in codegen.generate(arch)


@pytest.mark.parametrize("name", list(CRAFTED))
def test_a_crafted_ir_is_refused_and_nothing_is_generated(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = CRAFTED[name]()
    rendered: list[str] = []
    render = codegen.render

    def spy(template: str, **context: object) -> str:
        rendered.append(template)
        return render(template, **context)

    monkeypatch.setattr(codegen, "render", spy)
    with pytest.raises(ArchError):
        codegen.generate(arch)
    with pytest.raises(ArchError):
        codegen.load(arch)
    with pytest.raises(ArchError):
        cost(arch)
    assert rendered == []
