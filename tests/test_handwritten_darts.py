"""benchmarks/handwritten_darts.py computes what the generated darts supernet computes.

bench_oneshot.py times the two against each other; the comparison is fair only if,
with the same weights (copied through the name map), they give the same logits and
the same architecture gradients. Checked in float64 (in float32 the alphas' gradient,
a sum of many nearly cancelling terms, differs by about 1e-4 between the two
summation orders) on 8x8 inputs, which keep the 8-cell network cheap.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
from nasforge.codegen import load_source
from nasforge.codegen.supernet import generate_supernet
from nasforge.controller.oneshot import supernet_spec
from nasforge.controller.space import load_space
from torch import nn
from torch.nn import functional as F

HAND = Path(__file__).resolve().parents[1] / "benchmarks" / "handwritten_darts.py"


def load_hand() -> ModuleType:
    spec = importlib.util.spec_from_file_location("handwritten_darts", HAND)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_hand_written_darts_network_equals_the_generated_supernet() -> None:
    hand_module = load_hand()
    spec = supernet_spec(load_space("darts").with_data((3, 8, 8), 10))
    generated = load_source(generate_supernet(spec, black=False)).build_model().double()
    torch.manual_seed(0)
    with torch.no_grad():  # far from the initial values, so a wrong map shows
        for p in generated.parameters():
            p.normal_(0.0, 0.3)
        for m in generated.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    hand = hand_module.SearchNetwork().double()
    hand.load_state_dict(hand_module.from_supernet_names(generated.state_dict()))  # strict
    x, y = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.tensor([0, 3, 7, 9])
    alphas = torch.randn(28, 8, dtype=torch.float64)
    for train in (True, False):
        found = []
        for model in (generated, hand):
            model.train(train)
            leaf = alphas.clone().requires_grad_()
            logits = model(x, torch.softmax(leaf, dim=-1))
            F.cross_entropy(logits, y).backward()
            found.append((logits.detach(), leaf.grad))
        (logits_g, grad_g), (logits_h, grad_h) = found
        assert torch.allclose(logits_g, logits_h, atol=1e-10, rtol=0), train
        assert torch.allclose(grad_g, grad_h, atol=1e-10, rtol=0), train
        assert grad_g.abs().max() > 1e-4  # the gradient reaches the architecture
