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
from typing import Any, ClassVar

import torch

from .base import SampledSearch
from .settings import Option


class RandomWeightSharing(SampledSearch):
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

    def derive_candidates(self, generator: torch.Generator) -> list[str]:
        """Uniform children of the space that the supernet holds."""
        return [self.uniform_child(generator) for _ in range(self.options["derive_samples"])]

    def extra_state(self) -> dict[str, Any]:
        return {"sampler": self.sampler.get_state()}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.sampler.set_state(state["sampler"])
        self._derived = None
