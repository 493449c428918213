"""Rewards the controller maximises (Zoph & Le 2017, sections 4.1 and 4.2).

Image children: the maximum validation accuracy over the last `window` epochs, raised
to `power` (paper: window 5, power 3). Language models: (c / validation perplexity)
raised to `power` (paper: c = 80, power 2), taken at the best (lowest) validation
perplexity of the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ACCURACY_WINDOW = 5
ACCURACY_POWER = 3.0
PERPLEXITY_C = 80.0
PERPLEXITY_POWER = 2.0


def accuracy_reward(
    val_accuracies: Sequence[float],
    *,
    window: int = ACCURACY_WINDOW,
    power: float = ACCURACY_POWER,
) -> float:
    """(max of the last `window` validation accuracies, each in [0, 1]) ** power."""
    if window < 1:
        raise ValueError(f"window must be at least 1, not {window}")
    if not val_accuracies:
        raise ValueError("no validation accuracies to score")
    best = max(val_accuracies[-window:])
    if not 0.0 <= best <= 1.0:
        raise ValueError(f"accuracy {best} is not in [0, 1]")
    return best**power


def perplexity_reward(
    val_perplexities: Sequence[float],
    *,
    c: float = PERPLEXITY_C,
    power: float = PERPLEXITY_POWER,
) -> float:
    """(c / the lowest validation perplexity) ** power; 0 when every perplexity is infinite."""
    if not val_perplexities:
        raise ValueError("no validation perplexities to score")
    best = min(val_perplexities)
    if math.isnan(best) or best < 1.0:
        raise ValueError(f"perplexity {best} is not a perplexity (>= 1)")
    return 0.0 if math.isinf(best) else (c / best) ** power
