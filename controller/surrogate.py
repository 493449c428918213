"""A reward model over decision sequences: kernel ridge regression.

The controller's `screen` option (controller/reinforce.py) uses it to rank
candidate architectures before paying for any of them, as PNAS (Liu et al.
2018) and neural-predictor NAS (Wen et al. 2019) rank candidates with a
learned predictor.

Two sequences of one space are compared slot by slot: with s the share of
slots whose choices agree, the kernel is (1 + s)^2. On one-hot codes of the
choices this is a degree-2 polynomial kernel, so the model is ridge
regression on every choice and every pair of choices (two edges' ops, a layer's
filter count with its kernel size) without building those features: its cost
grows with the number of architectures told, not with the size of the space.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def kernel(a: Tensor, b: Tensor) -> Tensor:
    """(1 + share of agreeing slots)^2 between the rows of a [n, slots] and b [k, slots]."""
    agree = (a[:, None, :] == b[None, :, :]).to(torch.float64).mean(dim=-1)
    return (1.0 + agree) ** 2


class KernelRidge:
    """Fit rewards of decision sequences, predict the rewards of others.

    `ridge` is the regulariser added to the kernel matrix's diagonal: larger
    values fit the told rewards less closely and predict closer to their mean.
    """

    def __init__(self, ridge: float = 0.1) -> None:
        if ridge <= 0:
            raise ValueError("ridge must be > 0")
        self.ridge = ridge
        self.rows: Tensor | None = None
        self.weights: Tensor | None = None
        self.mean = 0.0

    def fit(self, decisions: Sequence[Sequence[int]], rewards: Sequence[float]) -> KernelRidge:
        if len(decisions) != len(rewards) or not decisions:
            raise ValueError("fit needs as many rewards as decision sequences, at least one")
        self.rows = torch.tensor([list(d) for d in decisions], dtype=torch.long)
        target = torch.tensor([float(r) for r in rewards], dtype=torch.float64)
        self.mean = float(target.mean())
        gram = kernel(self.rows, self.rows)
        gram.diagonal().add_(self.ridge)
        self.weights = torch.linalg.solve(gram, target - self.mean)
        return self

    def predict(self, decisions: Tensor) -> Tensor:
        """Predicted rewards (float64) of the rows of `decisions` [k, slots]."""
        if self.rows is None or self.weights is None:
            raise RuntimeError("predict before fit")
        return kernel(decisions, self.rows) @ self.weights + self.mean
