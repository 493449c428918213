"""DARTS' second-order architecture gradient against a direct finite-difference computation.

The quantity (Liu et al. 2019, eq. 6) is d/d alpha of
    L_val(w'(alpha), alpha),   w'(alpha) = w - xi * (momentum * buffer + grad_w L_train(w, alpha) + wd * w),
the validation loss after the weight optimiser's next SGD step. Here it is computed
directly by central differences over each alpha (float64, step 1e-6: truncation error
~1e-12 and rounding ~1e-16 / 1e-6 = 1e-10), and compared with the Architect, whose only
approximation is the finite-difference Hessian-vector product with eps = r / ||v||.
On a smooth network that approximation's error is O(eps^2): small at DARTS' r = 0.01
and shrinking with r. The second-order term matters in each case (the first-order
gradient is far from the direct one), so the comparison can fail.
"""

from __future__ import annotations

import copy

import pytest
import torch
from nasforge.codegen import load_source
from nasforge.codegen.supernet import generate_supernet
from nasforge.controller.oneshot import supernet_spec
from nasforge.controller.space import load_space
from nasforge.grammar.ir import Setting
from nasforge.runtime.oneshot import Architect, softmax_rows
from torch import nn
from torch.nn import functional

XI = 0.5  # large, so the virtual step moves the weights far enough to matter
MOMENTUM, DECAY = 0.9, 0.1


class TinyMixed(nn.Module):
    """Two mixed edges of three ops each, then a linear head: forward(x, weights (2, 3))."""

    def __init__(self) -> None:
        super().__init__()
        self.edge0 = nn.ModuleList(
            [nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.Tanh()), nn.Identity()]
        )
        self.edge1 = nn.ModuleList(
            [nn.Linear(4, 4), nn.Sequential(nn.Tanh(), nn.Linear(4, 4)), nn.Identity()]
        )
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(sum(w * op(x) for w, op in zip(weights[0], self.edge0, strict=True)))
        h = sum(w * op(h) for w, op in zip(weights[1], self.edge1, strict=True))
        return self.head(h)


def tiny_nb201_supernet() -> tuple[nn.Module, tuple[int, int]]:
    """The generated nb201 supernet for 1x6x6 images, 3 classes, one cell per stage."""
    space = load_space("nb201").with_data((1, 6, 6), 3)
    space.options = tuple(Setting(s.name, {"n": 1, "filters": 2}[s.name]) for s in space.options)
    spec = supernet_spec(space)
    module = load_source(generate_supernet(spec, black=False))
    return module.build_model(), (len(module.EDGES), len(module.OPS))


def setup(model: nn.Module, alpha_shapes, input_shape, classes: int, seed: int = 0):
    torch.manual_seed(seed)
    model = model.double()
    alphas = [
        torch.randn(*shape, dtype=torch.float64, requires_grad=True) for shape in alpha_shapes
    ]
    optimizer = torch.optim.SGD(model.parameters(), lr=XI, momentum=MOMENTUM, weight_decay=DECAY)
    for p in model.parameters():  # a momentum buffer as after earlier steps
        optimizer.state[p]["momentum_buffer"] = 0.1 * torch.randn_like(p)
    batches = [
        (
            torch.randn(6, *input_shape, dtype=torch.float64),
            torch.randint(classes, (6,)),
        )
        for _ in range(2)
    ]
    return model, alphas, optimizer, batches


def unrolled_validation_loss(model, alphas, optimizer, train, val) -> float:
    """L_val(w'(alpha), alpha) computed plainly on a copy of the model."""
    model = copy.deepcopy(model)
    params = list(model.parameters())
    loss = functional.cross_entropy(model(train[0], softmax_rows(alphas)), train[1])
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    originals = list(optimizer.param_groups[0]["params"])
    with torch.no_grad():
        for p, g, original in zip(params, grads, originals, strict=True):
            buffer = optimizer.state[original]["momentum_buffer"]
            g = torch.zeros_like(p) if g is None else g
            p.sub_(XI * (MOMENTUM * buffer + g + DECAY * p))
        return float(functional.cross_entropy(model(val[0], softmax_rows(alphas)), val[1]))


def direct_gradient(model, alphas, optimizer, train, val, step: float = 1e-6) -> list[torch.Tensor]:
    grads = []
    for alpha in alphas:
        grad = torch.zeros_like(alpha)
        for index in range(alpha.numel()):
            values = []
            for sign in (1.0, -1.0):
                shifted = [a.detach().clone() for a in alphas]
                shifted[alphas.index(alpha)].view(-1)[index] += sign * step
                values.append(unrolled_validation_loss(model, shifted, optimizer, train, val))
            grad.view(-1)[index] = (values[0] - values[1]) / (2 * step)
        grads.append(grad)
    return grads


def relative_error(found, expected) -> float:
    found, expected = torch.cat([f.reshape(-1) for f in found]), torch.cat(
        [e.reshape(-1) for e in expected]
    )
    return float((found - expected).norm() / expected.norm())


CASES = {
    "tiny-module": lambda: (TinyMixed(), [(2, 3)], (4,), 3),
    "tiny-nb201-supernet": lambda: (lambda m, shape: (m, [shape], (1, 6, 6), 3))(
        *tiny_nb201_supernet()
    ),
}


def check_against_direct(case: str, radii: tuple[float, ...]) -> dict[float, float]:
    """Relative errors of the Architect's second-order gradient at each r; also checks
    that first order is far off and that the weights are left as they were."""
    torch.manual_seed(0)
    model, shapes, input_shape, classes = CASES[case]()
    model, alphas, optimizer, (train, val) = setup(model, shapes, input_shape, classes)
    model.train()
    weights_before = [p.detach().clone() for p in model.parameters()]
    expected = direct_gradient(model, alphas, optimizer, train, val)
    errors = {}
    for r in radii:
        found, _ = Architect(model, alphas, optimizer, r=r).gradient(*train, *val)
        errors[r] = relative_error(found, expected)
    first_order = Architect(model, alphas, optimizer, second_order=False).gradient(None, None, *val)
    assert relative_error(first_order[0], expected) > 0.05  # the second-order term matters here
    for p, before in zip(model.parameters(), weights_before, strict=True):
        assert torch.equal(p, before)  # the virtual step is undone
    return errors


def test_second_order_gradient_matches_direct_differences_at_dartss_radius() -> None:
    """A smooth network (tanh): at DARTS' r = 0.01 the error is within 1e-4 (measured
    1e-5), and it shrinks with r as the O(eps^2) error of central differences should.
    """
    errors = check_against_direct("tiny-module", (1e-2, 1e-3))
    assert errors[1e-2] < 1e-4, errors
    assert errors[1e-3] < errors[1e-2], errors


def test_second_order_gradient_matches_direct_differences_on_a_supernet() -> None:
    """The generated nb201 supernet (ReLU, batch norm over 6 images of 6x6) is only
    piecewise smooth, and at this tiny size its curvature is large: a weight-space step
    of r = 0.01 crosses kinks, and the finite-difference Hessian-vector product is far
    off there (measured: relative error 5 at r = 0.01, 12 at r = 1e-3). As r shrinks the
    Architect's gradient converges to the direct one: within 1e-4 at r = 1e-4 (measured
    5e-8), which checks the formula and the code on the generated supernet itself."""
    errors = check_against_direct("tiny-nb201-supernet", (1e-4,))
    assert errors[1e-4] < 1e-4, errors


def test_first_order_is_the_plain_validation_gradient() -> None:
    model, alphas, optimizer, (_, val) = setup(TinyMixed(), [(2, 3)], (4,), 3, seed=1)
    found, loss = Architect(model, alphas, optimizer, second_order=False).gradient(None, None, *val)
    expected_loss = functional.cross_entropy(model(val[0], softmax_rows(alphas)), val[1])
    expected = torch.autograd.grad(expected_loss, alphas)
    assert loss == pytest.approx(float(expected_loss.detach()))
    assert all(torch.equal(f, e) for f, e in zip(found, expected, strict=True))


def test_step_applies_adam_to_the_gradient() -> None:
    model, alphas, optimizer, (train, val) = setup(TinyMixed(), [(2, 3)], (4,), 3, seed=2)
    before = alphas[0].detach().clone()
    architect = Architect(model, alphas, optimizer, lr=0.01, weight_decay=0.0)
    grad, _ = architect.gradient(*train, *val)
    architect.step(*train, *val)
    # Adam's first step moves each coordinate by lr against the gradient's sign.
    expected = before - 0.01 * torch.sign(grad[0])
    assert torch.allclose(alphas[0].detach(), expected, atol=1e-6)
