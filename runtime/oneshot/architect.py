"""DARTS' architecture step, first and second order (Liu et al. 2019, §2.3).

The second-order gradient follows the paper's eq. 7-8 and the reference's
cnn/architect.py (quark0/darts): with xi the weights' current learning rate, the
virtual step w' = w - xi * (momentum * buffer + grad_w L_train(w, alpha) + wd * w) is
the SGD step the weight optimiser would take next; the gradient is

    grad_alpha L_val(w', alpha)
      - xi * (grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 eps)

with w+- = w +- eps * grad_w' L_val(w', alpha) and eps = r / ||grad_w' L_val(w', alpha)||,
r = 0.01: the finite-difference Hessian-vector product. First order drops the
virtual step: grad_alpha L_val(w, alpha).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional

Loss = Callable[[Tensor, Tensor], Tensor]
Mixture = Callable[[Sequence[Tensor]], Tensor]


def softmax_rows(alphas: Sequence[Tensor]) -> Tensor:
    """DARTS' mixture weights: the softmax of each row, the tensors' rows stacked in order."""
    return torch.cat([torch.softmax(a, dim=-1) for a in alphas], dim=0)


class Architect:
    """DARTS' architecture optimiser over any model whose forward is `model(x, weights)`.

    Architect(model, alphas, weight_optimizer, *, lr=3e-4, betas=(0.5, 0.999),
              weight_decay=1e-3, second_order=True, r=0.01, mixture=softmax_rows,
              loss=torch.nn.functional.cross_entropy)

    - model: an nn.Module called as model(x, weights), in the mode the caller set
      (DARTS searches in train mode).
    - alphas: the architecture parameters, a list of leaf tensors with requires_grad;
      `mixture(alphas)` turns them into the model's `weights` (default: the softmax of
      each row, the tensors' rows stacked: (sum of rows, ops)).
    - weight_optimizer: the torch.optim.SGD that steps the model's weights; the
      virtual step reads its parameters, learning rate (xi), momentum, momentum
      buffers and weight decay (its first param group's hyper-parameters).
    - lr, betas, weight_decay: the architecture Adam's (DARTS cnn/train_search.py
      arch_learning_rate 3e-4, arch_weight_decay 1e-3; cnn/architect.py betas (0.5, 0.999)).
    - second_order: the unrolled gradient (DARTS' "--unrolled"); False: first order.
    - r: the finite-difference radius's numerator, eps = r / ||grad_w' L_val|| (0.01,
      cnn/architect.py).

    step(x_train, y_train, x_val, y_val) -> float: one architecture step (Adam on the
    gradient above, which it leaves in each alpha's .grad); returns the validation
    loss. First order uses only the validation batch (the training batch may be None).
    gradient(x_train, y_train, x_val, y_val) -> (list of tensors, validation loss):
    the gradient alone, no step. The model's weights are as they were after either
    (the virtual step is undone); the batch-norm running statistics move as in the
    reference (its training-batch passes update them; the pass at w' does not).
    """

    def __init__(
        self,
        model: nn.Module,
        alphas: Sequence[Tensor],
        weight_optimizer: torch.optim.Optimizer,
        *,
        lr: float = 3e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        weight_decay: float = 1e-3,
        second_order: bool = True,
        r: float = 0.01,
        mixture: Mixture = softmax_rows,
        loss: Loss = functional.cross_entropy,
    ) -> None:
        self.model = model
        self.alphas = list(alphas)
        self.weight_optimizer = weight_optimizer
        self.params = [p for g in weight_optimizer.param_groups for p in g["params"]]
        self.second_order = second_order
        self.r = r
        self.mixture = mixture
        self.loss = loss
        self.optimizer = torch.optim.Adam(
            self.alphas, lr=lr, betas=betas, weight_decay=weight_decay
        )

    def step(
        self,
        x_train: Tensor | None,
        y_train: Tensor | None,
        x_val: Tensor,
        y_val: Tensor,
    ) -> float:
        grads, val_loss = self.gradient(x_train, y_train, x_val, y_val)
        self.optimizer.zero_grad(set_to_none=True)
        for alpha, grad in zip(self.alphas, grads, strict=True):
            alpha.grad = grad
        self.optimizer.step()
        return val_loss

    def gradient(
        self,
        x_train: Tensor | None,
        y_train: Tensor | None,
        x_val: Tensor,
        y_val: Tensor,
    ) -> tuple[list[Tensor], float]:
        if not self.second_order:
            loss = self._loss(x_val, y_val)
            return list(torch.autograd.grad(loss, self.alphas)), float(loss.detach())
        if x_train is None or y_train is None:
            raise ValueError("the second-order step needs a training batch")
        return self._unrolled(x_train, y_train, x_val, y_val)

    # --- second order ---------------------------------------------------------------

    def _loss(self, x: Tensor, y: Tensor) -> Tensor:
        return self.loss(self.model(x, self.mixture(self.alphas)), y)

    def _unrolled(
        self, x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor
    ) -> tuple[list[Tensor], float]:
        xi = self.weight_optimizer.param_groups[0]["lr"]
        saved = [p.detach().clone() for p in self.params]
        self._virtual_step(x_train, y_train, xi)
        buffers = [b.detach().clone() for b in self.model.buffers()]
        val_loss = self._loss(x_val, y_val)
        found = torch.autograd.grad(val_loss, self.alphas + self.params, allow_unused=True)
        with torch.no_grad():
            for b, kept in zip(self.model.buffers(), buffers, strict=True):
                b.copy_(kept)  # the reference's pass at w' runs on a copy of the model
            for p, kept in zip(self.params, saved, strict=True):
                p.copy_(kept)
        direct = _zeros_for_none(found[: len(self.alphas)], self.alphas)
        vector = _zeros_for_none(found[len(self.alphas) :], self.params)
        implicit = self._hessian_vector_product(vector, saved, x_train, y_train)
        grads = [d - xi * h for d, h in zip(direct, implicit, strict=True)]
        return grads, float(val_loss.detach())

    def _virtual_step(self, x: Tensor, y: Tensor, xi: float) -> None:
        """w <- w' = w - xi * (momentum * buffer + grad + wd * w), in place."""
        group = self.weight_optimizer.param_groups[0]
        momentum, decay = group.get("momentum", 0.0), group.get("weight_decay", 0.0)
        loss = self._loss(x, y)
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(self.params, grads, strict=True):
                step = decay * p if g is None else g + decay * p
                buffer = self.weight_optimizer.state.get(p, {}).get("momentum_buffer")
                if buffer is not None:
                    step = step + momentum * buffer
                p.sub_(xi * step)

    def _hessian_vector_product(
        self, vector: list[Tensor], saved: list[Tensor], x: Tensor, y: Tensor
    ) -> list[Tensor]:
        """(grad_alpha L_train(w + eps v) - grad_alpha L_train(w - eps v)) / (2 eps)."""
        eps = self.r / torch.cat([v.reshape(-1) for v in vector]).norm()
        sides = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, w, v in zip(self.params, saved, vector, strict=True):
                    p.copy_(w + sign * eps * v)
            sides.append(torch.autograd.grad(self._loss(x, y), self.alphas))
        with torch.no_grad():
            for p, w in zip(self.params, saved, strict=True):
                p.copy_(w)
        return [(plus - minus) / (2 * eps) for plus, minus in zip(*sides, strict=True)]


def _zeros_for_none(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like, strict=True)]
