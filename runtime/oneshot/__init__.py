"""One-shot architecture search: shared weights in one generated supernet.

Strategies (ONESHOT_STRATEGIES): `enas`, ENAS (Pham et al. 2018: an LSTM controller
trained by REINFORCE samples children of the shared weights); `darts` and `darts1`,
DARTS second and first order (Liu et al. 2019; its architecture step alone is
`Architect`); `rsws`, random search with weight sharing (Li & Talwalkar 2019).
`make_oneshot(space, data, settings)` builds one; a caller runs `run_epoch()` per
epoch, checkpoints `state_dict()` between epochs, and ends with `derive()`, an
architecture string of the space (canonical, multi-line).

Records (`run_epoch()`, one per epoch, JSON-able): epoch (1-based), lr (the weights'
rate that epoch), train_loss and train_acc (the epoch's weight steps), valid_acc (on
the data set's validation split, which no strategy chooses with: the mixture for
darts/darts1, the epoch's derived child through the shared weights for enas/rsws),
seconds; darts/darts1 add alphas ({"normal", "reduce"} or {"cell"}: the softmax
weights, rows = the supernet's EDGES of that section, columns = OPS) and derived;
enas adds entropy, reward (mean child accuracy), baseline, skip_rate (spaces with
anchors), sampled (a child of the epoch), derived and derived_score; rsws adds
derived and derived_score (the derived child's accuracy on its scoring batches).

Options: each strategy's `declared_options(space)` maps a name to an Option with its
default and that default's source (`settings.options_table` lists them); the caps
max_steps and max_eval_batches are for quick runs and tests.
"""

from __future__ import annotations

from nasforge.controller.space import Space

from ..choices import ONESHOT_STRATEGIES
from ..data import ImageData
from .architect import Architect, softmax_rows
from .base import OneShotSearch
from .darts import Darts
from .enas import Enas
from .rsws import RandomWeightSharing
from .settings import OneShotSettings, Option

__all__ = [
    "ONESHOT_STRATEGIES",
    "Architect",
    "Darts",
    "Enas",
    "OneShotSearch",
    "OneShotSettings",
    "Option",
    "make_oneshot",
    "softmax_rows",
    "strategy_class",
]

_CLASSES: tuple[type[OneShotSearch], ...] = (Enas, Darts, RandomWeightSharing)


def strategy_class(strategy: str) -> type[OneShotSearch]:
    """The class that runs `strategy` (ValueError naming the valid ones)."""
    for cls in _CLASSES:
        if strategy in cls.strategies():
            return cls
    raise ValueError(
        f"unknown one-shot strategy {strategy!r}; valid: {', '.join(ONESHOT_STRATEGIES)}"
    )


def make_oneshot(space: Space, data: ImageData, settings: OneShotSettings) -> OneShotSearch:
    """A one-shot search of `space` (already `.with_data(...)` for `data`) on `data`.

    The training split is divided into the weight part and the architecture part
    (option arch_fraction); the supernet is generated from the space's spec and
    loaded; its optimiser and the strategy's architecture parameters or controller
    are built from `settings`.
    """
    return strategy_class(settings.strategy)(space, data, settings)
