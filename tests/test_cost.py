"""The cost model equals the built model, for many random architectures of every family.

Models are built on PyTorch's meta device: parameters get shapes but no
memory, so even large random architectures are counted exactly and quickly.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from nasforge.codegen import generate, load_source
from nasforge.codegen.cnn import plan_cnn
from nasforge.codegen.cost import cost
from strategies import cells_archs, cnn_archs, fast, rnn_archs, small_cnn_archs


def built_params(arch, **overrides) -> int:
    module = load_source(generate(arch, black=False))
    with torch.device("meta"):
        model = module.build_model(**overrides)
    return sum(p.numel() for p in model.parameters())


@fast(examples=200)
@given(cnn_archs())
def test_cnn_cost_equals_built(arch) -> None:
    assert cost(arch).params == built_params(arch)


@fast(examples=100)
@given(
    rnn_archs(),
    st.fixed_dictionaries(
        {
            "vocab_size": st.integers(2, 500),
            "hidden_size": st.integers(1, 64),
            "num_layers": st.integers(1, 3),
            "bias": st.booleans(),
            "tie_weights": st.booleans(),
        }
    ),
)
def test_rnn_cost_equals_built(arch, overrides) -> None:
    overrides["embed_size"] = overrides["hidden_size"]  # weight tying needs them equal
    assert cost(arch, **overrides).params == built_params(arch, **overrides)


# Building a module tree of up to 32 cells a stack costs ~0.5 s even on the meta
# device; the cost of a stack is counted per cell, so n <= 3 exercises the same
# code paths. A few examples keep the full range.
@pytest.mark.slow
@fast(examples=200)
@given(cells_archs(max_n=3))
def test_cells_cost_equals_built(arch) -> None:
    assert cost(arch).params == built_params(arch)


@fast(examples=10)
@given(cells_archs())
def test_cells_cost_equals_built_at_any_depth(arch) -> None:
    assert cost(arch).params == built_params(arch)


@fast(examples=60)
@given(small_cnn_archs(max_layers=6, max_side=17))
def test_cnn_plan_shapes_are_the_real_shapes(arch) -> None:
    """The shapes in the plan (and the file's shape comments) are what forward produces."""
    module = load_source(generate(arch, black=False))
    model = module.build_model().eval()
    seen: dict[str, tuple[int, ...]] = {}
    for name, child in model.named_children():
        child.register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, tuple(out.shape[1:]))
        )
    with torch.no_grad():
        out = model(torch.randn(2, *arch.input_shape))
    assert out.shape == (2, arch.classes)
    for layer in plan_cnn(arch).layers:
        assert seen[layer.name] == layer.out_shape
