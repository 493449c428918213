"""Evaluators the search can use, by name: `train` (defined here) and `table`.

`TrainEvaluator` trains each architecture with the runtime's recipes
(runtime/train.py) on a registered dataset and scores it with the recipe's reward;
parameters and multiply-adds come from the cost model (codegen/cost.py). Every
failure of the child (an architecture outside the language, data it does not fit,
NaN loss, out of memory, a shape error) is an Outcome with status "failed" and
the reason, never an exception.

The evaluator is pickled into every trial's process by the local pool: the loaded
dataset stays out of the pickle and is loaded (once per process) where it is used.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from nasforge.grammar.errors import NasforgeError

from ..errors import DataError
from .config import EVALUATORS
from .evaluator import Evaluator, Outcome


class TrainEvaluator(Evaluator):
    """Train each child for `epochs` on `dataset`; reward = the recipe's reward."""

    name = "train"
    # What the local pool's fork server imports once, so each trial's process starts warm.
    preload_modules = (
        "torch",
        "torch._dynamo",  # the first optimizer imports it: 2 s in every trial otherwise
        "sklearn.datasets",
        "nasforge.runtime.train",
        "nasforge.runtime.data",
        "nasforge.codegen",
        "nasforge.codegen.cost",
        "nasforge.runtime.search.trial_warmup",  # builds the parser and template caches
    )

    def __init__(
        self,
        dataset: str,
        *,
        epochs: int = 1,
        device: str = "cpu",
        threads: int | None = None,
        data_dir: str | Path | None = None,
        batch_size: int | None = None,
        max_batches: int | None = None,
        data_seed: int = 0,
        weights_dir: str | Path | None = None,
        data_options: dict[str, Any] | None = None,
        measure_latency: bool = False,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, not {epochs}")
        self.dataset = dataset
        self.epochs = epochs
        self.device = device
        self.threads = threads
        self.data_dir = None if data_dir is None else str(data_dir)
        self.batch_size = batch_size
        self.max_batches = max_batches  # language models: training chunks per epoch
        self.data_seed = data_seed  # fixes the train/validation split, the same for every child
        # Where to save each trained child's state_dict (HASH.pt), so the search can
        # keep its best one's weights (the trial ran in another process); None: nowhere.
        self.weights_dir = None if weights_dir is None else str(weights_dir)
        self.data_options = dict(data_options or {})  # a path data set's (see SearchConfig)
        self.measure_latency = measure_latency  # time each trained child (runtime/latency.py)
        self._data: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_data": None}

    def data(self) -> Any:
        """The dataset, loaded on first use (DataError when it cannot be)."""
        if self._data is None:
            from ..data import load_dataset
            from ..userdata import UserDataOptions

            options = dict(self.data_options)
            if options.get("resize"):
                options["resize"] = tuple(int(n) for n in str(options["resize"]).split("x"))
            options["augment"] = tuple(options.get("augment") or ())
            self._data = load_dataset(
                self.dataset,
                data_dir=self.data_dir,
                seed=self.data_seed,
                options=UserDataOptions(**options),
            )
        return self._data

    def check(self) -> None:
        """Raise now what every trial would fail on: the dataset and the device."""
        from ..devices import resolve_device

        resolve_device(self.device)
        self.data()

    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        began = time.perf_counter()
        try:
            return self._evaluate(arch, seed, began)
        except DataError:
            raise  # the data set itself is broken: every child would fail, stop the search
        except NasforgeError as err:  # the architecture: outside the language, not trainable
            return Outcome.failed(str(err), time.perf_counter() - began, reason="invalid")

    def _evaluate(self, arch: str, seed: int, began: float) -> Outcome:
        from nasforge.codegen.cost import cost
        from nasforge.grammar import parse

        from .. import train as recipes
        from ..devices import resolve_device, set_threads
        from ..errors import TrainingFailed

        threads = set_threads(self.threads)
        device = resolve_device(self.device)
        ir = parse(arch, "<trial>")
        data = self.data()
        try:
            recipes.check_compatible(ir, data)
        except TrainingFailed as err:
            return Outcome.failed(str(err), time.perf_counter() - began, reason=err.reason)
        counted = cost(ir, **recipes.build_kwargs(ir, data))
        try:
            result = recipes.train_arch(
                ir,
                data,
                epochs=self.epochs,
                device=device,
                seed=seed,
                batch_size=self.batch_size,
                max_batches=self.max_batches,
            )
        except TrainingFailed as err:
            return Outcome.failed(
                str(err),
                time.perf_counter() - began,
                parameters=counted.params,
                macs=counted.macs,
                reason=err.reason,
                epoch=err.epoch,
            )
        metrics: dict[str, Any] = {
            "epochs": result.metrics,
            "device": result.device,
            "threads": threads,
        }
        if self.measure_latency:
            metrics.update(_latency(result.model, ir))
        if self.weights_dir is not None:
            metrics["weights"] = self._save_weights(arch, result.model)
        return Outcome(
            status="ok",
            reward=float(result.reward),
            metrics=metrics,
            parameters=counted.params,
            macs=counted.macs,
            seconds=time.perf_counter() - began,
        )

    def _save_weights(self, arch: str, model: Any) -> str:
        """Save the trained state_dict under weights_dir; its file name."""
        import torch

        from .store import arch_hash

        folder = Path(self.weights_dir)  # type: ignore[arg-type]
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{arch_hash(arch)[:20]}.pt"
        partial = folder / f".{name}.{os.getpid()}.part"
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, partial)
        os.replace(partial, folder / name)  # a killed trial never leaves a torn file
        return name


def _latency(model: Any, ir: Any) -> dict[str, Any]:
    """The child's measured latency as metrics, or why it could not be measured."""
    from ..latency import measure_latency

    try:
        return measure_latency(model.cpu(), ir).metrics()
    except Exception as err:  # an export or onnxruntime failure: the objective fails the trial
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return {"latency_error": f"{type(err).__name__}: {first}"[:500]}


def make_evaluator(
    name: str,
    *,
    dataset: str | None = None,
    epochs: int = 1,
    device: str = "cpu",
    threads: int | None = None,
    data_dir: str | Path | None = None,
    table: str | Path | None = None,
    weights_dir: str | Path | None = None,
    data_options: dict[str, Any] | None = None,
    measure_latency: bool = False,
) -> Evaluator:
    """The evaluator called `name`, built from the search's options; NasforgeError (a clear
    message) when an option it needs is missing or wrong."""
    if name == "train":
        if dataset is None:
            raise DataError("the train evaluator needs --dataset (e.g. --dataset digits)")
        evaluator = TrainEvaluator(
            dataset,
            epochs=epochs,
            device=device,
            threads=threads,
            data_dir=data_dir,
            weights_dir=weights_dir,
            data_options=data_options,
            measure_latency=measure_latency,
        )
        evaluator.check()
        return evaluator
    if name == "table":
        if table is None:
            raise DataError("the table evaluator needs --table PATH (a NAS-Bench-201-format CSV)")
        from .table import TableEvaluator

        return TableEvaluator(table)
    raise DataError(f"unknown evaluator {name!r}; choose one of {', '.join(EVALUATORS)}")
