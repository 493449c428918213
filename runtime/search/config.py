"""`SearchConfig`: everything a search is run with, validated once, stored in its store.

The command line parses into one `SearchConfig.create(...)`; a bad combination raises
ConfigError (exit 2 from the CLI) before anything is built. The store keeps
`stored()` as JSON; `--resume` compares the new config with it over IDENTITY, the
fields that make a search what it is (the others, such as trials and workers, may
change between runs). Stores written before a field existed are read with that
field's default (IDENTITY_DEFAULTS).

Nothing here imports torch: `nasforge search --help` lists EVALUATORS from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasforge.grammar.errors import NasforgeError

from ..choices import DEFAULT_RETRAIN_EPOCHS, ONESHOT_STRATEGIES

EVALUATORS: dict[str, str] = {
    "train": "the runtime's trainer on --dataset for --epochs",
    "table": "a NAS-Bench-201-format CSV (--table): reward valid12, simulated cost time12",
}
BACKENDS = ("local", "ray")
EXECUTORS = ("auto", "pool", "inline")
# The fields that make a search what it is: --resume refuses to continue a store
# recorded with other values.
IDENTITY = (
    "backend",
    "replicas",
    "ps_shards",
    "space",
    "strategy",
    "options",
    "evaluator",
    "dataset",
    "data_options",
    "table",
    "epochs",
    "seed",
    "batch",
)
# for stores older than the key
IDENTITY_DEFAULTS: dict[str, Any] = {"backend": "local", "data_options": {}}
RAY_FIELDS = (
    "address",
    "replicas",
    "children",
    "ps_shards",
    "cpus_per_child",
    "gpus_per_child",
    "child_retries",
)
# What the store records: IDENTITY and the settings a resumed run may change (not the
# Ray address, which names a machine, nor where data and outputs live).
STORED = (
    "space",
    "strategy",
    "options",
    "evaluator",
    "dataset",
    "data_options",
    "table",
    "epochs",
    "seed",
    "batch",
    "trials",
    "workers",
    "device",
    "timeout",
    "backend",
    *RAY_FIELDS[1:],
)
# A one-shot search also records how its derived architecture is trained at the end.
ONESHOT_STORED = ("retrain_epochs", "inherit")
# The multi-trial settings a one-shot search refuses, with the default each has when not
# given on the command line.
MULTI_TRIAL_ONLY: dict[str, Any] = {
    "trials": None,
    "workers": 1,
    "evaluator": "train",
    "table": None,
    "executor": "auto",
    "timeout": None,
    "backend": "local",
    **{key: None for key in RAY_FIELDS},
}


class ConfigError(NasforgeError):
    """A search that cannot run as configured; the message names the options to fix."""


@dataclass(frozen=True)
class SearchConfig:
    """One search: what it searches, how it proposes, evaluates and runs its trials."""

    space: str
    trials: int | None = None  # multi-trial strategies only (a one-shot search has none)
    strategy: str = "reinforce"
    options: dict[str, Any] = field(default_factory=dict)  # the strategy's --option pairs
    evaluator: str = "train"
    dataset: str | None = None  # train evaluator only
    # A path --dataset's options that differ from their defaults (JSON: val_fraction,
    # char, resize as "HxW", skip_bad_files).
    data_options: dict[str, Any] = field(default_factory=dict)
    table: str | None = None  # table evaluator only: the CSV's absolute path
    epochs: int | None = 1  # train evaluator only
    seed: int = 0
    batch: int | None = None  # None until resolved: --workers, or the stored batch
    workers: int = 1
    device: str = "auto"
    timeout: float | None = None
    threads: int | None = None  # CPU threads per trial; None: the builder's default
    data_dir: str | None = None
    executor: str = "auto"  # auto, pool or inline
    backend: str = "local"
    # The Ray backend (None on the local one; create() fills in their defaults).
    address: str | None = None
    replicas: int | None = None
    children: int | None = None
    ps_shards: int | None = None
    cpus_per_child: float | None = None
    gpus_per_child: float | None = None
    child_retries: int | None = None
    # One-shot strategies only: epochs the derived architecture trains at the end (None
    # until create() fills in the default), and whether it starts from the supernet's
    # weights rather than from scratch.
    retrain_epochs: int | None = None
    inherit: bool = False

    @classmethod
    def create(cls, **given: Any) -> SearchConfig:
        """A validated config from the command line's values; ConfigError for what cannot run.

        Fields that only one evaluator uses are dropped for the other, and the Ray
        backend's settings get their defaults."""
        config = cls(**given)
        if config.oneshot:
            return config._checked_oneshot()
        config._check_multi_trial()
        config._check_evaluator()
        config = dataclasses.replace(
            config,
            dataset=config.dataset if config.evaluator == "train" else None,
            data_options=config.data_options if config.evaluator == "train" else {},
            table=str(Path(config.table).resolve()) if config.evaluator == "table" else None,
            epochs=config.epochs if config.evaluator == "train" else None,
        )
        if config.backend == "ray":
            return config._with_ray_defaults()
        given_ray = [f"--{k.replace('_', '-')}" for k in RAY_FIELDS if given.get(k) is not None]
        if given_ray:
            raise ConfigError(f"{', '.join(given_ray)} need --backend ray")
        config._check_executor()
        return config

    @property
    def oneshot(self) -> bool:
        """A one-shot strategy: one supernet trains in this process; no trials."""
        return self.strategy in ONESHOT_STRATEGIES

    @property
    def asynchronous(self) -> bool:
        """REINFORCE on Ray trains asynchronously (parameter servers, replicas); every other
        strategy keeps the local loop and only its children become Ray tasks."""
        return self.backend == "ray" and self.strategy == "reinforce"

    @property
    def inline(self) -> bool:
        """Trials run in this process (the table evaluator's lookups, unless asked otherwise)."""
        return self.executor == "inline" or (self.executor == "auto" and self.evaluator == "table")

    def stored(self) -> dict[str, Any]:
        """What the store records (JSON)."""
        keys = (*STORED, *ONESHOT_STORED) if self.oneshot else STORED
        return {key: getattr(self, key) for key in keys}

    def resume_differences(self, stored: Mapping[str, Any]) -> list[str]:
        """How this config differs from a stored one over IDENTITY, as option texts."""

        def recorded(key: str) -> Any:
            # A store written before a key existed ran with that key's default.
            return stored.get(key, IDENTITY_DEFAULTS.get(key))

        mine = self.stored()
        return [
            f"{_option_text(key)} {_show(mine[key])} (the stored search has {_show(recorded(key))})"
            for key in IDENTITY
            if recorded(key) != mine[key]
        ]

    def _check_multi_trial(self) -> None:
        if self.trials is None:
            raise ConfigError(
                f"--strategy {self.strategy} needs --trials N (the proposals it evaluates)"
            )
        retrain = {
            "--retrain-epochs": self.retrain_epochs is not None,
            "--inherit": self.inherit,
        }
        given = [text for text, value in retrain.items() if value]
        if given:
            raise ConfigError(
                f"{', '.join(given)}: only a one-shot strategy ({', '.join(ONESHOT_STRATEGIES)}) "
                f"retrains what it derives; --strategy {self.strategy} keeps the best trial's "
                "weights: drop them"
            )

    def _checked_oneshot(self) -> SearchConfig:
        """The config of a one-shot search; ConfigError naming what it cannot use."""
        name = self.strategy
        extra = [
            _option_text(key)
            for key, default in MULTI_TRIAL_ONLY.items()
            if getattr(self, key) != default
        ]
        if extra:
            raise ConfigError(
                f"--strategy {name} is a one-shot search: one supernet trains in this process "
                f"for --epochs on --dataset, with no trials to evaluate or distribute; drop "
                f"{', '.join(extra)}"
            )
        if self.dataset is None:
            raise ConfigError(f"--strategy {name} needs --dataset (e.g. --dataset digits)")
        if self.retrain_epochs == 0 and not self.inherit:
            raise ConfigError(
                "--retrain-epochs 0 leaves the derived architecture untrained: add --inherit "
                "(start from the supernet's weights and only evaluate them), or retrain it "
                "for at least 1 epoch"
            )
        retrain = DEFAULT_RETRAIN_EPOCHS if self.retrain_epochs is None else self.retrain_epochs
        return dataclasses.replace(self, retrain_epochs=retrain)

    def _check_evaluator(self) -> None:
        if self.evaluator not in EVALUATORS:
            raise ConfigError(
                f"unknown evaluator {self.evaluator!r}; choose one of {', '.join(EVALUATORS)}"
            )
        if self.evaluator == "train" and self.dataset is None:
            raise ConfigError("--evaluator train needs --dataset (e.g. --dataset digits)")
        if self.evaluator == "table" and self.table is None:
            raise ConfigError("--evaluator table needs --table PATH (a NAS-Bench-201-format CSV)")
        if self.table is not None and not Path(self.table).is_file():
            raise ConfigError(f"--table {self.table}: no such file")

    def _check_executor(self) -> None:
        if self.inline and self.timeout is not None:
            raise ConfigError("--timeout needs the pool executor (each trial in its own process)")

    def _with_ray_defaults(self) -> SearchConfig:
        """The Ray backend's settings with their defaults; ConfigError for what cannot work."""
        if self.batch is not None and self.children is not None and self.batch != self.children:
            raise ConfigError(
                f"--batch {self.batch} and --children {self.children} disagree; give one"
            )
        config = dataclasses.replace(
            self,
            replicas=self.replicas or 1,
            children=self.children or self.batch or 1,
            ps_shards=self.ps_shards or 1,
            cpus_per_child=1.0 if self.cpus_per_child is None else self.cpus_per_child,
            gpus_per_child=self.gpus_per_child or 0.0,
            child_retries=2 if self.child_retries is None else self.child_retries,
        )
        config = dataclasses.replace(config, batch=config.children)
        if self.strategy != "reinforce" and (config.replicas > 1 or config.ps_shards > 1):
            raise ConfigError(
                "--replicas and --ps-shards drive the asynchronous REINFORCE controller: they "
                f"need --strategy reinforce (--strategy {self.strategy} runs its children as "
                "Ray tasks)"
            )
        from nasforge.controller.param_server import LOCAL_ONLY_OPTIONS

        local_only = [key for key in LOCAL_ONLY_OPTIONS if key in self.options]
        if self.strategy == "reinforce" and local_only:
            raise ConfigError(
                f"--option {', '.join(local_only)}: the Ray backend's replicas keep no state "
                "between updates, and this option needs some; use --backend local"
            )
        return config


# Config fields that are not spelled as one command-line option.
_OPTION_TEXTS = {
    "options": "--option",
    "data_options": "the data options (--val-fraction, --char, --resize, --skip-bad-files)",
}


def _option_text(key: str) -> str:
    """How the command line spells the config field `key`."""
    return _OPTION_TEXTS.get(key, f"--{key.replace('_', '-')}")


def _show(value: object) -> str:
    return "(none)" if value is None else str(value)
