"""The shared base of the one-shot strategies: data halves, the supernet, the epoch loop.

A search owns one generated supernet (codegen.supernet.generate_supernet of the
space's spec, loaded with codegen.load_source), trained by SGD with momentum on
the weight part of the training data; the architecture part (the rest of the
training data) is what the strategy chooses architectures with (DARTS' architecture
steps, ENAS' rewards, the final scoring). The data set's own validation split is
never used to choose: it only measures ("valid_acc" in the records).

Determinism: every random draw of a search comes from its own torch generators
(`order`: the data order; each strategy's sampler), seeded from the settings' seed,
and the supernet's initial weights are drawn under that seed without touching the
global generators. `state_dict()` holds them (and, as the contract asks, the global
torch, NumPy and Python states), so on the CPU a search restored between epochs
continues exactly as one that never stopped.
"""

from __future__ import annotations

import math
import random
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any, ClassVar

import numpy as np
import torch
from nasforge.codegen import load_source
from nasforge.codegen.render import format_source
from nasforge.codegen.supernet import generate_supernet, one_hot
from nasforge.controller.oneshot import supernet_spec
from nasforge.controller.space import Space
from nasforge.grammar import parse, to_text
from nasforge.grammar.ir import Arch, CellsArch
from torch import nn
from torch.nn import functional
from torch.utils.data import Dataset, Subset, TensorDataset

from ..data import ImageData, image_batches
from ..devices import resolve_device
from ..errors import TrainingFailed
from .settings import OneShotSettings, Option, resolve_options

Batch = tuple[torch.Tensor, torch.Tensor]

# Options every strategy has; a strategy's OPTIONS may override a default (with its
# own source). DARTS' values: quark0/darts, cnn/train_search.py.
COMMON_OPTIONS: dict[str, Option] = {
    "lr": Option(0.025, "DARTS cnn/train_search.py learning_rate", float, 0.0, 10.0),
    "lr_min": Option(0.001, "DARTS cnn/train_search.py learning_rate_min", float, 0.0, 10.0),
    "momentum": Option(0.9, "DARTS cnn/train_search.py momentum", float, 0.0, 1.0),
    "nesterov": Option(False, "DARTS cnn/train_search.py: torch.optim.SGD, no Nesterov", bool),
    "weight_decay": Option(3e-4, "DARTS cnn/train_search.py weight_decay", float, 0.0, 1.0),
    "grad_clip": Option(5.0, "DARTS cnn/train_search.py grad_clip", float, 1e-9, 1e9, True),
    "arch_fraction": Option(0.5, "DARTS cnn/train_search.py train_portion 0.5", float, 0.01, 0.99),
    # Caps for quick runs and tests, off by default: a full pass is one epoch.
    "max_steps": Option(
        None, "cap on weight steps per epoch (None: a full pass)", int, 1, None, True
    ),
    "max_eval_batches": Option(
        None,
        "cap on held-out validation batches per record (None: all)",
        int,
        1,
        None,
        True,
    ),
}

MAX_DRAWS = 10_000  # draws before giving up on a sample the supernet can hold
_CACHE = 4096  # architectures whose one-hot weights are kept


class OneShotSearch(ABC):
    """The epoch loop, the supernet and its optimiser; strategies fill in the rest.

    Subclasses define `strategy`, `OPTIONS` (merged over COMMON_OPTIONS), and
    `train_epoch()` (the epoch's steps: returns train_loss and train_acc and any
    extra record fields), `epoch_record()` (fields measured after the epoch),
    `derive()`, and `extra_state()` / `load_extra_state()`.
    """

    strategy: ClassVar[str]
    OPTIONS: ClassVar[dict[str, Option]] = {}

    def __init__(self, space: Space, data: ImageData, settings: OneShotSettings) -> None:
        if settings.strategy not in self.strategies():
            raise ValueError(
                f"{type(self).__name__} runs {self.strategies()}, not {settings.strategy}"
            )
        if not isinstance(data, ImageData):
            raise ValueError(f"one-shot search classifies images; {data.name} is not an image set")
        self.space = space
        self.data = data
        self.settings = settings
        self.options = resolve_options(
            self.declared_options(space), settings.options, settings.strategy
        )
        self.device = resolve_device(settings.device)
        self.depth = space.check_depth(None)  # a cnn space's full depth; None for cells
        self.spec = supernet_spec(space)
        self.source = generate_supernet(self.spec, black=False)  # the same code, unformatted
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            self.module = load_source(self.source)
            self.supernet: nn.Module = self.module.build_model()
        # A cell supernet's rows (section.edge); a macro supernet's rows are its layers.
        self.edges: tuple[str, ...] = tuple(getattr(self.module, "EDGES", ()))
        self.supernet.to(self.device)
        self.weight_data, self.arch_data = split_training(
            data.train, self.options["arch_fraction"], settings.seed
        )
        self.optimizer = torch.optim.SGD(
            self.supernet.parameters(),
            lr=self.options["lr"],
            momentum=self.options["momentum"],
            nesterov=self.options["nesterov"],
            weight_decay=self.options["weight_decay"],
        )
        self.order = torch.Generator().manual_seed(settings.seed)  # the data order
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self._one_hots: OrderedDict[str, torch.Tensor | None] = OrderedDict()

    def formatted_source(self) -> str:
        """The supernet's source black-formatted, as generate_supernet(spec) writes it (the
        engine loads the same code unformatted, which is faster to generate)."""
        return format_source(self.source)

    @classmethod
    def strategies(cls) -> tuple[str, ...]:
        return (cls.strategy,)

    @classmethod
    def declared_options(cls, space: Space | None = None) -> dict[str, Option]:
        """The options and their defaults (some strategies' defaults depend on the space)."""
        return {**COMMON_OPTIONS, **cls.OPTIONS}

    # --- the loop -----------------------------------------------------------------------

    def lr_at(self, epoch: int) -> float:
        """Cosine annealing over the search's epochs, set once per epoch as DARTS'
        CosineAnnealingLR(epochs, eta_min=lr_min) steps (cnn/train_search.py)."""
        top, bottom = self.options["lr"], self.options["lr_min"]
        return bottom + 0.5 * (top - bottom) * (
            1 + math.cos(math.pi * epoch / self.settings.epochs)
        )

    def run_epoch(self) -> dict[str, Any]:
        """One epoch; appends its record to `history` and returns it."""
        began = time.perf_counter()
        lr = self.lr_at(self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        record: dict[str, Any] = {"epoch": self.epoch + 1, "lr": lr}
        self.supernet.train()
        record.update(self.train_epoch())
        self.epoch += 1
        record.update(self.epoch_record())
        record["seconds"] = time.perf_counter() - began
        self.history.append(record)
        return record

    @abstractmethod
    def train_epoch(self) -> dict[str, Any]:
        """The epoch's steps: train_loss, train_acc and the strategy's own fields."""

    @abstractmethod
    def epoch_record(self) -> dict[str, Any]:
        """What the record adds after the epoch (valid_acc, the derived string, ...)."""

    @abstractmethod
    def derive(self) -> str:
        """The architecture the search has found, a canonical string of the space."""

    # --- batches ------------------------------------------------------------------------

    def weight_batches(self) -> Iterator[Batch]:
        """One epoch of shuffled weight-part batches (at most max_steps)."""
        cap = self.options["max_steps"]
        batches = image_batches(
            self.weight_data,
            self.settings.batch,
            shuffle=True,
            generator=self.order,
            drop_last=True,
        )
        for step, batch in enumerate(batches):
            if cap is not None and step >= cap:
                return
            yield self._to_device(batch)

    def arch_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        """Shuffled architecture-part batches without end (a new order each pass)."""
        while True:
            yield from (
                self._to_device(b)
                for b in image_batches(
                    self.arch_data,
                    self.settings.batch,
                    shuffle=True,
                    generator=generator,
                    drop_last=True,
                )
            )

    def held_out_batches(self) -> Iterator[Batch]:
        """The data set's validation split, in order (at most max_eval_batches)."""
        cap = self.options["max_eval_batches"]
        for step, batch in enumerate(
            image_batches(self.data.val, self.settings.batch, shuffle=False)
        ):
            if cap is not None and step >= cap:
                return
            yield self._to_device(batch)

    def _to_device(self, batch: Batch) -> Batch:
        x, y = batch
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def derive_generator(self) -> torch.Generator:
        """Fixed by the seed and the epochs done, so derive() is a function of the state."""
        return torch.Generator().manual_seed(self.settings.seed * 1_000_003 + self.epoch + 1)

    # --- steps and measurements -----------------------------------------------------

    def weight_step(self, batch: Batch, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step of the supernet's weights at architecture `weights`: (loss, correct)."""
        x, y = batch
        if not self.supernet.training:  # train() walks every module: only when it changes
            self.supernet.train()
        logits = self.supernet(x, weights.detach())
        loss = functional.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.clip_gradients()
        self.optimizer.step()
        return loss.detach(), (logits.detach().argmax(1) == y).sum()

    def clip_gradients(self) -> None:
        clip = self.options["grad_clip"]
        if clip is not None:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), clip)

    def summary(self, losses: list[torch.Tensor], correct: list[torch.Tensor], seen: int) -> dict:
        """train_loss and train_acc of an epoch's weight steps (NaN: TrainingFailed)."""
        if not losses:
            raise TrainingFailed(
                "runtime",
                f"the weight part of the training data ({len(self.weight_data)} examples) "
                f"holds no full batch of {self.settings.batch}",
            )
        loss = float(torch.stack(losses).mean())
        if not math.isfinite(loss):
            raise TrainingFailed("nan_loss", f"the supernet's training loss became {loss}")
        return {"train_loss": loss, "train_acc": int(torch.stack(correct).sum()) / seen}

    def accuracy(self, weights: torch.Tensor, batches: Iterator[Batch] | list[Batch]) -> float:
        """Accuracy of the supernet at `weights` on `batches`, in eval mode (it stays in eval
        mode until the next weight step)."""
        if self.supernet.training:
            self.supernet.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = 0
        with torch.no_grad():
            for x, y in batches:
                correct += (self.supernet(x, weights).argmax(1) == y).sum()
                seen += len(y)
        return int(correct) / max(seen, 1)

    # --- architectures as supernet weights ---------------------------------------------

    def child_weights(self, text: str, arch: Arch | None = None) -> torch.Tensor | None:
        """The one-hot weights of an architecture string (`arch`: its IR, if at hand), None
        if the supernet cannot hold it (e.g. a darts node reading one state twice); cached.
        """
        if text in self._one_hots:
            self._one_hots.move_to_end(text)
            return self._one_hots[text]
        if arch is not None and reads_a_state_twice(arch):
            return None  # the supernet has one edge per pair of states; spare one_hot's plan
        try:
            rows = one_hot(self.spec, text if arch is None else arch)
        except ValueError:
            weights = None
        else:
            weights = torch.tensor(rows, dtype=torch.float32, device=self.device)
        self._one_hots[text] = weights
        if len(self._one_hots) > _CACHE:
            self._one_hots.popitem(last=False)
        return weights

    def uniform_child(self, generator: torch.Generator) -> str:
        """An architecture drawn uniformly from those of the space the supernet holds
        (uniform decisions, redrawn until the supernet holds them)."""
        counts = torch.tensor([len(slot.choices) for slot in self.space.slots(self.depth)])
        for _ in range(MAX_DRAWS):
            decisions = (torch.rand(len(counts), generator=generator) * counts).long()
            arch = self.space.to_arch(torch.minimum(decisions, counts - 1).tolist(), self.depth)
            text = to_text(arch, one_line=True)
            if self.child_weights(text, arch) is not None:
                return text
        raise ValueError(
            f"no architecture of {self.space.name!r} the supernet holds in {MAX_DRAWS} draws"
        )

    def best_by_accuracy(self, candidates: list[str], batches: list[Batch]) -> tuple[str, float]:
        """The candidate most accurate on `batches` through the shared weights (ties: the
        earlier), and its accuracy."""
        best, best_acc = candidates[0], -1.0
        for text in candidates:
            weights = self.child_weights(text)
            assert weights is not None
            acc = self.accuracy(weights, batches)
            if acc > best_acc:
                best, best_acc = text, acc
        return best, best_acc

    # --- checkpoints ----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit on the CPU (torch.save-able, and
        loadable with torch.load's weights_only default: tensors and plain Python)."""
        return {
            "strategy": self.settings.strategy,
            "epoch": self.epoch,
            "history": [dict(r) for r in self.history],
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "order": self.order.get_state(),
            "rng": global_rng_state(),
            **self.extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["strategy"] != self.settings.strategy:
            raise ValueError(
                f"a checkpoint of the {state['strategy']} strategy cannot continue a "
                f"{self.settings.strategy} search"
            )
        self.epoch = int(state["epoch"])
        self.history = [dict(r) for r in state["history"]]
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.order.set_state(state["order"])
        set_global_rng_state(state["rng"])
        self.load_extra_state(state)

    @abstractmethod
    def extra_state(self) -> dict[str, Any]:
        """The strategy's own state (alphas, controller, sampler) for state_dict()."""

    @abstractmethod
    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what extra_state() returned."""


class SampledSearch(OneShotSearch):
    """A search that derives by sampling (ENAS, rsws): derive_samples candidates, the best
    by shared-weight accuracy on the same derive_batches scoring batches. The result is a
    function of the state (seed and epochs done), cached per epoch."""

    _derived: tuple[int, tuple[str, float]] | None = None

    @abstractmethod
    def derive_candidates(self, generator: torch.Generator) -> list[str]:
        """derive_samples candidate strings, drawn with `generator`."""

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
        """(the best candidate, its accuracy on the scoring batches)."""
        if self._derived is None or self._derived[0] != self.epoch:
            generator = self.derive_generator()
            batches = list(islice(self.arch_batches(generator), self.options["derive_batches"]))
            candidates = self.derive_candidates(generator)
            self._derived = (self.epoch, self.best_by_accuracy(candidates, batches))
        return self._derived[1]


def canonical(text: str) -> str:
    """An architecture string in the canonical multi-line form (as derive_darts writes)."""
    return to_text(parse(text))


def reads_a_state_twice(arch: Arch) -> bool:
    """Whether a cell node of `arch` has two edges from one state."""
    if not isinstance(arch, CellsArch):
        return False
    for cell in arch.cells:
        for node in cell.nodes:
            sources = [edge.source for edge in node.edges]
            if len(set(sources)) != len(sources):
                return True
    return False


def split_training(train: Dataset, arch_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(weight part, architecture part) of the training data: a permutation fixed by the
    seed, the last `arch_fraction` of it for the architecture part."""
    n = len(train)  # type: ignore[arg-type]
    order = np.random.default_rng(seed).permutation(n)
    arch_size = max(1, min(n - 1, round(n * arch_fraction)))
    weight_idx, arch_idx = np.sort(order[: n - arch_size]), np.sort(order[n - arch_size :])
    if isinstance(train, TensorDataset):
        x, y = train.tensors
        return (
            TensorDataset(x[torch.from_numpy(weight_idx)], y[torch.from_numpy(weight_idx)]),
            TensorDataset(x[torch.from_numpy(arch_idx)], y[torch.from_numpy(arch_idx)]),
        )
    return Subset(train, weight_idx.tolist()), Subset(train, arch_idx.tolist())


def global_rng_state() -> dict[str, Any]:
    """torch's, NumPy's and Python's global generator states as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (
            kind,
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ),
        "python": (version, list(internal), gauss),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
