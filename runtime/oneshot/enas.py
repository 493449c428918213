"""ENAS (Pham et al. 2018): an LSTM controller samples children of one shared network.

Each epoch (src/cifar10/main.py's loop): one pass of shared-weight training, a child
sampled from the controller for every minibatch and trained through the supernet's
one-hot weights (only its ops run); then `controller_steps` controller updates, each
over `controller_aggregate` sampled children whose rewards are their accuracies on a
fresh minibatch of the architecture part of the training data, through the supernet
in eval mode (the reference's `build_valid_rl`: `_model(x_valid_shuffle,
is_training=False)`). The learner is controller/enas.py. derive() (paper §3, "Deriving
Architectures"): sample `derive_samples` children, score each on the same minibatch
of the architecture part, keep the most accurate.

A sample the supernet cannot hold (a darts node reading one state twice) is drawn
again: the controller learns from the children it could train, i.e. from its
distribution conditioned on the supernet holding them.

Defaults follow ENAS' macro search for cnn spaces (scripts/cifar10_macro_search.sh)
and its micro search for cell spaces (scripts/cifar10_micro_search.sh); the
controller's updates per epoch are scaled down for the CPU (the scripts: 50 x 20
macro, 30 x 10 micro).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from nasforge.controller.enas import EnasController, EnasControllerSettings
from nasforge.controller.space import Space
from nasforge.grammar import to_text
from torch import nn

from .base import MAX_DRAWS, SampledSearch, canonical
from .settings import Option

_MACRO = "scripts/cifar10_macro_search.sh"
_MICRO = "scripts/cifar10_micro_search.sh"


def _enas_options(cells: bool) -> dict[str, Option]:
    script = _MICRO if cells else _MACRO
    controller = EnasControllerSettings.for_cells() if cells else EnasControllerSettings()
    return {
        "lr": Option(0.05, f"ENAS {script} child_lr_max", float, 0.0, 10.0),
        "lr_min": Option(0.0005, f"ENAS {script} child_lr_min", float, 0.0, 10.0),
        "nesterov": Option(True, "ENAS src/utils.py MomentumOptimizer(use_nesterov=True)", bool),
        "weight_decay": Option(
            1e-4 if cells else 2.5e-4, f"ENAS {script} child_l2_reg", float, 0.0, 1.0
        ),
        "grad_clip": Option(
            5.0,
            "ENAS main.py child_grad_bound, clip_mode 'norm' (per tensor)",
            float,
            1e-9,
            1e9,
            True,
        ),
        "arch_fraction": Option(
            0.1,
            "ENAS src/cifar10/data_utils.py read_data: 5,000 of 50,000 held out",
            float,
            0.01,
            0.99,
        ),
        "controller_lr": Option(controller.lr, f"ENAS {script} controller_lr", float, 0.0, 1.0),
        "controller_hidden": Option(64, "ENAS main.py lstm_size=64", int, 1, 4096),
        "controller_layers": Option(1, "ENAS main.py lstm_num_layers=1", int, 1, 16),
        "tanh_constant": Option(
            controller.tanh_constant,
            f"ENAS {script} controller_tanh_constant",
            float,
            0.01,
            100.0,
            True,
        ),
        "entropy_weight": Option(
            1e-4, f"ENAS {script} controller_entropy_weight", float, 0.0, 10.0
        ),
        "baseline_decay": Option(0.99, "ENAS main.py controller_bl_dec", float, 0.0, 1.0),
        "skip_target": Option(0.4, f"ENAS {_MACRO} controller_skip_target", float, 0.01, 0.99),
        "skip_weight": Option(
            controller.skip_weight,
            f"ENAS {_MACRO} controller_skip_weight 0.8 (cnn; the micro search has none)",
            float,
            0.0,
            100.0,
        ),
        "controller_steps": Option(
            10,
            f"CPU scale (ENAS {script} controller_train_steps: {30 if cells else 50})",
            int,
            0,
            1e6,
        ),
        "controller_aggregate": Option(
            10,
            f"CPU scale (ENAS {script} controller_num_aggregate: {10 if cells else 20})",
            int,
            1,
            1e6,
        ),
        "derive_samples": Option(
            100,
            "ENAS §3 samples 'several'; as rsws, so the two compare alike",
            int,
            1,
            1e6,
        ),
        "derive_batches": Option(1, "ENAS §3: a single validation minibatch", int, 1, 1e6),
    }


class Enas(SampledSearch):
    strategy: ClassVar[str] = "enas"

    @classmethod
    def declared_options(cls, space: Space | None = None) -> dict[str, Option]:
        cells = space is None or space.family == "cells"
        return {**super().declared_options(space), **_enas_options(cells)}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        settings = EnasControllerSettings(
            lr=o["controller_lr"],
            hidden=o["controller_hidden"],
            layers=o["controller_layers"],
            tanh_constant=o["tanh_constant"],
            entropy_weight=o["entropy_weight"],
            baseline_decay=o["baseline_decay"],
            skip_target=o["skip_target"],
            skip_weight=o["skip_weight"],
        )
        self.controller = EnasController(self.space, settings, seed=self.settings.seed + 1)

    def clip_gradients(self) -> None:
        clip = self.options["grad_clip"]
        if clip is not None:  # each tensor on its own, as tf.clip_by_norm per variable
            for p in self.supernet.parameters():
                if p.grad is not None:
                    nn.utils.clip_grad_norm_([p], clip)

    def sample_children(self, n: int) -> tuple[torch.Tensor, list[str]]:
        """n children from the controller that the supernet holds: (decisions, strings)."""
        rows: list[torch.Tensor] = []
        texts: list[str] = []
        drawn = 0
        while len(rows) < n:
            if drawn >= MAX_DRAWS:
                raise ValueError(
                    f"the controller drew {drawn} architectures of {self.space.name!r} and "
                    "the supernet holds too few of them"
                )
            rollout = self.controller.sample(max(n - len(rows), 8))
            drawn += len(rollout.decisions)
            for row in rollout.decisions:
                arch = self.space.to_arch(row.tolist(), self.depth)
                text = to_text(arch, one_line=True)
                if len(rows) < n and self.child_weights(text, arch) is not None:
                    rows.append(row)
                    texts.append(text)
        return torch.stack(rows), texts

    def train_epoch(self) -> dict[str, Any]:
        losses, correct, seen = [], [], 0
        sampled = ""
        for batch in self.weight_batches():
            _, (sampled,) = self.sample_children(1)
            child = self.child_weights(sampled)
            assert child is not None
            loss, right = self.weight_step(batch, child)
            losses.append(loss)
            correct.append(right)
            seen += len(batch[1])
        record = self.summary(losses, correct, seen)
        record.update(self.train_controller())
        record["sampled"] = canonical(sampled)
        return record

    def train_controller(self) -> dict[str, Any]:
        """controller_steps REINFORCE updates; the means of their statistics."""
        batches = self.arch_batches(self.order)
        found: dict[str, list[float]] = {}
        for _ in range(self.options["controller_steps"]):
            decisions, texts = self.sample_children(self.options["controller_aggregate"])
            accuracies = []
            for text in texts:
                child = self.child_weights(text)
                assert child is not None
                accuracies.append(self.accuracy(child, [next(batches)]))
            for key, value in self.controller.update(decisions, accuracies).items():
                found.setdefault(key, []).append(value)
        record = {key: sum(values) / len(values) for key, values in found.items() if key != "loss"}
        if "baseline" in found:
            record["baseline"] = found["baseline"][-1]
        return record

    def derive_candidates(self, generator: torch.Generator) -> list[str]:
        """Children sampled from the controller with `generator` (the controller's own
        generator left untouched, so deriving does not change the search)."""
        saved = self.controller.generator.get_state()
        self.controller.generator.set_state(generator.get_state())
        try:
            _, candidates = self.sample_children(self.options["derive_samples"])
        finally:
            self.controller.generator.set_state(saved)
        return candidates

    def extra_state(self) -> dict[str, Any]:
        return {"controller": self.controller.state_dict()}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self._derived = None
