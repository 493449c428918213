"""DARTS (Liu et al. 2019): architecture weights per edge, optimised by gradient.

Every edge of the supernet is DARTS' mixed op: the softmax of its row of
architecture parameters (alphas) weighs every candidate op's output. One row per
supernet edge: the darts space has a normal and a reduction table (14 rows each for
4 nodes), nb201 one table (6 rows). The alphas start at alpha_init * N(0, 1)
(cnn/model_search.py, `_initialize_alphas`: 1e-3 * randn).

Each step (cnn/train_search.py, `train`): an architecture step on a batch of the
architecture part of the training data (Architect: `darts` second order, `darts1`
first order), then a weight step on a batch of the weight part at the new mixture,
its gradient clipped to grad_clip. derive() is controller.oneshot's derive_darts
(darts space) or derive_nb201 (nb201 space) of the alphas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from nasforge.controller.oneshot import derive_darts, derive_nb201
from nasforge.controller.space import Space

from .architect import Architect, softmax_rows
from .base import OneShotSearch
from .settings import Option

# Record keys of the sections, as the interface names them.
_RECORD_NAMES = {"normal": "normal", "reduction": "reduce", "cell": "cell"}


class Darts(OneShotSearch):
    strategy: ClassVar[str] = "darts"
    OPTIONS: ClassVar[dict[str, Option]] = {
        "arch_lr": Option(3e-4, "DARTS cnn/train_search.py arch_learning_rate", float, 0.0, 10.0),
        "arch_beta1": Option(
            0.5, "DARTS cnn/architect.py Adam betas (0.5, 0.999)", float, 0.0, 0.9999
        ),
        "arch_beta2": Option(
            0.999, "DARTS cnn/architect.py Adam betas (0.5, 0.999)", float, 0.0, 0.9999
        ),
        "arch_weight_decay": Option(
            1e-3, "DARTS cnn/train_search.py arch_weight_decay", float, 0.0, 1.0
        ),
        "alpha_init": Option(
            1e-3,
            "DARTS cnn/model_search.py _initialize_alphas: 1e-3 * randn",
            float,
            0.0,
            10.0,
        ),
        "hessian_r": Option(
            0.01,
            "DARTS cnn/architect.py _hessian_vector_product r=1e-2",
            float,
            1e-12,
            10.0,
        ),
    }

    @classmethod
    def strategies(cls) -> tuple[str, ...]:
        return ("darts", "darts1")

    def __init__(self, space: Space, *args: Any, **kwargs: Any) -> None:
        if space.family != "cells":  # before the supernet is built
            raise ValueError(
                f"DARTS searches the cell spaces (darts, nb201), not the {space.family} "
                f"space {space.name!r}"
            )
        super().__init__(space, *args, **kwargs)
        ops = len(self.spec.ops)
        self.sections = self._sections()
        generator = torch.Generator().manual_seed(self.settings.seed + 2)
        self.alphas = [
            (self.options["alpha_init"] * torch.randn(rows, ops, generator=generator))
            .to(self.device)
            .requires_grad_()
            for _, rows in self.sections
        ]
        self.architect = Architect(
            self.supernet,
            self.alphas,
            self.optimizer,
            lr=self.options["arch_lr"],
            betas=(self.options["arch_beta1"], self.options["arch_beta2"]),
            weight_decay=self.options["arch_weight_decay"],
            second_order=self.settings.strategy == "darts",
            r=self.options["hessian_r"],
        )

    def _sections(self) -> list[tuple[str, int]]:
        """(section, rows) in the supernet's EDGES order (labels are section.edge)."""
        sections: list[tuple[str, int]] = []
        for label in self.edges:
            section = label.split(".")[0]
            if sections and sections[-1][0] == section:
                sections[-1] = (section, sections[-1][1] + 1)
            else:
                sections.append((section, 1))
        return sections

    def mixture(self) -> torch.Tensor:
        return softmax_rows(self.alphas)

    def train_epoch(self) -> dict[str, Any]:
        losses, correct, seen = [], [], 0
        arch = self.arch_batches(self.order)
        for x, y in self.weight_batches():
            x_val, y_val = next(arch)
            self.architect.step(x, y, x_val, y_val)
            loss, right = self.weight_step((x, y), self.mixture())
            losses.append(loss)
            correct.append(right)
            seen += len(y)
        return self.summary(losses, correct, seen)

    def epoch_record(self) -> dict[str, Any]:
        with torch.no_grad():
            valid_acc = self.accuracy(self.mixture(), self.held_out_batches())
        return {
            "valid_acc": valid_acc,
            "alphas": self.weights_table(),
            "derived": self.derive(),
        }

    def weights_table(self) -> dict[str, list[list[float]]]:
        """The mixture weights per section: rows = the section's edges, columns = OPS."""
        return {
            _RECORD_NAMES.get(name, name): torch.softmax(alpha.detach(), dim=-1).cpu().tolist()
            for (name, _), alpha in zip(self.sections, self.alphas, strict=True)
        }

    def derive(self) -> str:
        tables = {
            name: alpha.detach().cpu()
            for (name, _), alpha in zip(self.sections, self.alphas, strict=True)
        }
        if self.spec.skeleton == "darts":
            return derive_darts(tables["normal"], tables["reduction"], self.spec)
        return derive_nb201(tables["cell"], self.spec)

    def extra_state(self) -> dict[str, Any]:
        return {
            "alphas": [alpha.detach().cpu() for alpha in self.alphas],
            "arch_optimizer": self.architect.optimizer.state_dict(),
        }

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for alpha, saved in zip(self.alphas, state["alphas"], strict=True):
                alpha.copy_(saved)
        self.architect.optimizer.load_state_dict(state["arch_optimizer"])
