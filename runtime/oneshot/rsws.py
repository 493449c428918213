"""Random search with weight sharing (Li & Talwalkar 2019), the control for ENAS and DARTS.

Each weight step trains one child drawn uniformly from the space (uniform decisions,
§3 of the paper: "random search with weight-sharing"), through the supernet's one-hot
weights, so only its ops run and learn. To derive, `derive_samples` children drawn
uniformly are scored by their accuracy through the shared weights on the same
`derive_batches` batches of the architecture part of the training data, and the most
accurate wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any, ClassVar

import torch

from .base import OneShotSearch, canonical
from .settings import Option


class RandomWeightSharing(OneShotSearch):
    strategy: ClassVar[str] = "rsws"
    OPTIONS: ClassVar[dict[str, Option]] = {
        "derive_samples": Option(
            100,
            "CPU-scale choice: candidates drawn uniformly, each scored once",
            int,
            1,
            1e6,
        ),
        "derive_batches": Option(
            1,
            "ENAS §3 scores candidates on one validation minibatch; the same for each",
            int,
            1,
            1e6,
        ),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sampler = torch.Generator().manual_seed(self.settings.seed + 1)
        self._derived: tuple[int, tuple[str, float]] | None = None

    def train_epoch(self) -> dict[str, Any]:
        losses, correct, seen = [], [], 0
        for batch in self.weight_batches():
            child = self.child_weights(self.uniform_child(self.sampler))
            assert child is not None
            loss, right = self.weight_step(batch, child)
            losses.append(loss)
            correct.append(right)
            seen += len(batch[1])
        return self.summary(losses, correct, seen)

    def epoch_record(self) -> dict[str, Any]:
        derived, score = self.scored_derivation()
        child = self.child_weights(derived)
        assert child is not None
        return {
            "valid_acc": self.accuracy(child, self.held_out_batches()),
            "derived": canonical(derived),
            "derived_score": score,
        }

    def derive(self) -> str:
        return canonical(self.scored_derivation()[0])

    def scored_derivation(self) -> tuple[str, float]:
        """(the best of derive_samples uniform children, its accuracy on the scoring
        batches); a function of the search's state (cached per epoch)."""
        if self._derived is None or self._derived[0] != self.epoch:
            generator = self.derive_generator()
            batches = list(islice(self.arch_batches(generator), self.options["derive_batches"]))
            candidates = [
                self.uniform_child(generator) for _ in range(self.options["derive_samples"])
            ]
            self._derived = (self.epoch, self.best_by_accuracy(candidates, batches))
        return self._derived[1]

    def extra_state(self) -> dict[str, Any]:
        return {"sampler": self.sampler.get_state()}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.sampler.set_state(state["sampler"])
        self._derived = None
