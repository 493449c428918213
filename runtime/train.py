"""Training recipes for children: image classifiers (cnn, cells) and language models (rnn).

Image children follow the NAS paper (Zoph & Le 2017, section 4.1): SGD with Nesterov
momentum 0.9, learning rate 0.1 (or the architecture's own `lr`), weight decay 1e-4.
Schedule: cosine annealing from that rate to 0 over the whole run, updated after every
batch (`schedule="constant"` keeps it fixed). Cross-entropy loss; when a model returns
(logits, aux_logits) in training (NASNet/DARTS auxiliary heads) the auxiliary loss is
added with weight 0.4. Reward: rewards.accuracy_reward over the validation accuracies.

Language models: truncated back-propagation through time over 35 steps, the state
carried across chunks and detached; gradient norm clipped to 0.25; plain SGD with
learning rate 20, divided by 4 after every epoch whose validation perplexity does not
improve (the recipe of PyTorch's word_language_model example, which uses the same BPTT
length and clipping). Reward: rewards.perplexity_reward, (80 / best validation ppl)^2.

A child that fails raises TrainingFailed with a reason code (see errors.py); nothing
else escapes the training functions except KeyboardInterrupt and SystemExit.
"""

from __future__ import annotations

import math
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from nasforge.grammar.errors import NasforgeError
from nasforge.grammar.ir import Arch
from torch import nn
from torch.nn import functional as F

from .data import Data, ImageData, TextData, batch_count, batchify, image_batches
from .errors import IncompatibleData, TrainingFailed
from .rewards import accuracy_reward, perplexity_reward

AUX_WEIGHT = 0.4
# An image model has diverged when it ends no more accurate than the most common class
# with a validation loss above this many times that of a uniform guess.
DIVERGED_LOSS_FACTOR = 2.0
NAN_CHECK_EVERY = 20  # batches between checks of the running loss (each check syncs a GPU)

EpochCallback = Callable[[dict[str, float]], None]


@dataclass
class ImageConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # or "constant"
    reward_window: int = 5
    reward_power: float = 3.0
    workers: int = 0  # DataLoader worker processes (CIFAR-10's per-image transforms)
    seed: int = 0  # the order of the batches


@dataclass
class LanguageConfig:
    epochs: int = 6
    batch_size: int = 20
    eval_batch_size: int = 10
    bptt: int = 35
    lr: float = 20.0
    clip: float = 0.25
    anneal: float = 4.0  # lr /= anneal after an epoch without a better validation perplexity
    reward_c: float = 80.0
    reward_power: float = 2.0
    max_batches: int | None = None  # cap on training chunks per epoch (quick runs)


@dataclass
class TrainResult:
    """What training a child produced. `model` is the trained module (not serialised)."""

    kind: str  # "image" or "text"
    metrics: list[dict[str, float]]
    reward: float
    seconds: float
    parameters: int
    device: str
    config: dict[str, object]
    model: nn.Module | None = field(default=None, repr=False)


# --- compatibility, building ----------------------------------------------------------


def check_compatible(arch: Arch, data: Data) -> None:
    """IncompatibleData unless `arch` can be trained on `data` as it is."""
    if arch.family == "rnn":
        if not isinstance(data, TextData):
            raise IncompatibleData(
                f"an rnn architecture is a language model; dataset {data.name} is an image "
                "set (use ptb or ptb-char)"
            )
        return
    if not isinstance(data, ImageData):
        raise IncompatibleData(
            f"a {arch.family} architecture classifies images; dataset {data.name} is text "
            "(use digits, mnist5k or cifar10)"
        )
    shape = tuple(arch.input_shape)  # type: ignore[union-attr]
    if shape != data.input_shape:
        raise IncompatibleData(
            f"the architecture's input is {_shape(shape)} but {data.name}'s images are "
            f"{_shape(data.input_shape)}; write `input {_shape(data.input_shape)}` in the "
            "architecture"
        )
    if arch.classes != data.classes:  # type: ignore[union-attr]
        raise IncompatibleData(
            f"the architecture has {arch.classes} classes but {data.name} has "  # type: ignore[union-attr]
            f"{data.classes}; write `classes {data.classes}` in the architecture"
        )


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def build_kwargs(arch: Arch, data: Data, **extra: object) -> dict[str, object]:
    """The build_model(**overrides) a child needs for `data` (language models: vocab size)."""
    kwargs: dict[str, object] = dict(extra)
    if arch.family == "rnn" and isinstance(data, TextData):
        kwargs.setdefault("vocab_size", data.vocab_size)
    return kwargs


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters; tied weights counted once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# --- failures, progress ---------------------------------------------------------------

_SHAPE_WORDS = (
    "shape",
    "size mismatch",
    "sizes of tensors",
    "must match the size",
    "mat1 and mat2",
    "expected input",
    "dimension",
    "out of bounds",
    "kernel size can't be greater",
)


def classify_error(err: BaseException) -> str:
    """The TrainingFailed reason of an exception raised while training."""
    text = str(err).lower()
    if isinstance(err, MemoryError) or "out of memory" in text:
        return "out_of_memory"
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return "out_of_memory"
    if any(word in text for word in _SHAPE_WORDS):
        return "shape"
    return "runtime"


def _where(err: BaseException) -> str:
    """The innermost traceback frame in generated code (or the innermost one at all)."""
    frames = traceback.extract_tb(err.__traceback__)
    generated = [
        f for f in frames if f.filename.startswith("<nasforge:") or f.filename.endswith("model.py")
    ]
    frame = (generated or frames or [None])[-1]
    if frame is None:
        return ""
    line = f": {frame.line.strip()}" if frame.line else ""
    return f" (at {frame.filename}:{frame.lineno}{line})"


@contextmanager
def failures_as_training_failed(epoch: list[int]) -> Iterator[None]:
    """Turn any error inside the block into TrainingFailed; `epoch[0]` is the current epoch."""
    try:
        yield
    except TrainingFailed as err:
        if err.epoch is None and epoch[0]:
            err.epoch = epoch[0]
        raise
    except NasforgeError:  # a DataError, such as too little text for one batch
        raise
    except Exception as err:
        reason = classify_error(err)
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        message = f"{type(err).__name__}: {first}{_where(err)}"
        raise TrainingFailed(reason, message, epoch=epoch[0] or None) from err


def _check_finite(total: torch.Tensor, what: str, step: int, lr: float) -> None:
    value = float(total)
    if not math.isfinite(value):
        raise TrainingFailed(
            "nan_loss", f"the {what} loss became {value} by batch {step} (learning rate {lr:g})"
        )


class _Progress:
    """A per-epoch progress bar on stderr (rich), or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._bar = None

    @contextmanager
    def epoch(self, description: str, total: int) -> Iterator[Callable[[], None]]:
        if not self.enabled:
            yield lambda: None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield lambda: bar.advance(task)


def _loss(output: object, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits) of a model output: logits, or (logits, aux_logits) in training."""
    if isinstance(output, tuple):
        logits, aux = output
        return F.cross_entropy(logits, target) + AUX_WEIGHT * F.cross_entropy(aux, target), logits
    return F.cross_entropy(output, target), output  # type: ignore[arg-type]


# --- image children -------------------------------------------------------------------


def evaluate_image(
    model: nn.Module, data: ImageData, device: torch.device, batch_size: int, workers: int = 0
) -> tuple[float, float]:
    """(mean loss, accuracy) on the validation split."""
    loss, accuracy, _ = _evaluate_image(model, data, device, batch_size, workers)
    return loss, accuracy


def _evaluate_image(
    model: nn.Module, data: ImageData, device: torch.device, batch_size: int, workers: int = 0
) -> tuple[float, float, float]:
    """(mean loss, accuracy, chance) on the validation split; chance is the accuracy of
    always answering the split's most common class."""
    model.eval()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    per_class = torch.zeros(data.classes, device=device, dtype=torch.int64)
    seen = 0
    with torch.no_grad():
        for x, y in image_batches(data.val, batch_size, shuffle=False, workers=workers):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            per_class += torch.bincount(y, minlength=data.classes)[: data.classes]
            seen += len(y)
    return float(total_loss) / seen, int(correct) / seen, int(per_class.max()) / seen


def train_image(
    model: nn.Module,
    data: ImageData,
    config: ImageConfig,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train an image classifier with the NAS child recipe; TrainingFailed when it fails."""
    device = torch.device(device)
    start = time.perf_counter()
    epoch = [0]
    metrics: list[dict[str, float]] = []
    bar = _Progress(progress)
    with failures_as_training_failed(epoch):
        model.to(device)
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
        steps_per_epoch = batch_count(data.train, config.batch_size, drop_last=True)
        total_steps = max(1, steps_per_epoch * config.epochs)
        if config.schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
            )
        elif config.schedule == "constant":
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        else:
            raise ValueError(f"unknown schedule {config.schedule!r}")
        generator = torch.Generator().manual_seed(config.seed)
        augment = data.augmenter()
        for epoch[0] in range(1, config.epochs + 1):
            model.train()
            began = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            total_loss = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            seen = 0
            batches = image_batches(
                data.train,
                config.batch_size,
                shuffle=True,
                generator=generator,
                drop_last=True,
                workers=config.workers,
            )
            with bar.epoch(f"epoch {epoch[0]}/{config.epochs}", steps_per_epoch) as advance:
                for step, (x, y) in enumerate(batches, start=1):
                    if augment is not None:
                        x = augment(x)
                    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                    loss, logits = _loss(model(x), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    total_loss += loss.detach() * len(y)
                    correct += (logits.detach().argmax(1) == y).sum()
                    seen += len(y)
                    if step % NAN_CHECK_EVERY == 0:
                        _check_finite(total_loss, "training", step, lr)
                    advance()
            _check_finite(total_loss, "training", steps_per_epoch, lr)
            val_loss, val_acc, chance = _evaluate_image(model, data, device, config.batch_size * 2)
            if not math.isfinite(val_loss):
                raise TrainingFailed("nan_loss", f"the validation loss became {val_loss}")
            row = {
                "epoch": epoch[0],
                "lr": lr,
                "train_loss": float(total_loss) / seen,
                "train_acc": int(correct) / seen,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "seconds": time.perf_counter() - began,
            }
            metrics.append(row)
            if on_epoch is not None:
                on_epoch(row)
        # A model still learning sits near chance with the loss of a uniform guess,
        # ln(classes); one whose weights blew up answers the same class with great
        # confidence, for a loss far above it.
        if val_acc <= chance and val_loss > DIVERGED_LOSS_FACTOR * math.log(data.classes):
            raise TrainingFailed(
                "diverged",
                f"the validation accuracy ended at {val_acc:.2%}, no more accurate than always "
                f"answering the most common class ({chance:.2%}), with a loss of {val_loss:.4g} "
                f"(a uniform guess: {math.log(data.classes):.4g})",
                epoch=epoch[0],
            )
    reward = accuracy_reward(
        [m["val_acc"] for m in metrics], window=config.reward_window, power=config.reward_power
    )
    return TrainResult(
        kind="image",
        metrics=metrics,
        reward=reward,
        seconds=time.perf_counter() - start,
        parameters=count_parameters(model),
        device=str(device),
        config=asdict(config),
        model=model,
    )


# --- language models ------------------------------------------------------------------


def _detach(state: object) -> object:
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (list, tuple)):
        return type(state)(_detach(s) for s in state)
    return state


def _perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf


def evaluate_language_model(
    model: nn.Module, tokens: torch.Tensor, config: LanguageConfig, device: torch.device
) -> float:
    """Mean cross-entropy per token over `tokens`, state carried across chunks."""
    model.eval()
    source = batchify(tokens, config.eval_batch_size).to(device)
    total = torch.zeros((), device=device)
    count = 0
    state = None
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, config.bptt):
            length = min(config.bptt, source.size(0) - 1 - i)
            x, y = source[i : i + length], source[i + 1 : i + 1 + length]
            logits, state = model(x, state)
            total += F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"
            )
            count += y.numel()
    return float(total) / count


def train_language_model(
    model: nn.Module,
    data: TextData,
    config: LanguageConfig,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train a LanguageModel with truncated BPTT; TrainingFailed when it fails."""
    device = torch.device(device)
    start = time.perf_counter()
    epoch = [0]
    metrics: list[dict[str, float]] = []
    bar = _Progress(progress)
    with failures_as_training_failed(epoch):
        model.to(device)
        source = batchify(data.train, config.batch_size).to(device)
        lr = config.lr
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        chunks = list(range(0, source.size(0) - 1, config.bptt))
        if config.max_batches is not None:
            chunks = chunks[: config.max_batches]
        best_val = math.inf
        for epoch[0] in range(1, config.epochs + 1):
            model.train()
            began = time.perf_counter()
            total_loss = torch.zeros((), device=device)
            tokens = 0
            state = None
            with bar.epoch(f"epoch {epoch[0]}/{config.epochs}", len(chunks)) as advance:
                for step, i in enumerate(chunks, start=1):
                    length = min(config.bptt, source.size(0) - 1 - i)
                    x, y = source[i : i + length], source[i + 1 : i + 1 + length]
                    state = _detach(state)
                    logits, state = model(x, state)
                    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                    optimizer.step()
                    total_loss += loss.detach() * y.numel()
                    tokens += y.numel()
                    if step % NAN_CHECK_EVERY == 0:
                        _check_finite(total_loss, "training", step, lr)
                    advance()
            _check_finite(total_loss, "training", len(chunks), lr)
            val_loss = evaluate_language_model(model, data.val, config, device)
            if math.isnan(val_loss):
                raise TrainingFailed("nan_loss", "the validation loss became nan")
            train_loss = float(total_loss) / tokens
            row = {
                "epoch": epoch[0],
                "lr": lr,
                "train_loss": train_loss,
                "train_ppl": _perplexity(train_loss),
                "val_loss": val_loss,
                "val_ppl": _perplexity(val_loss),
                "seconds": time.perf_counter() - began,
            }
            metrics.append(row)
            if on_epoch is not None:
                on_epoch(row)
            if val_loss < best_val:
                best_val = val_loss
            else:
                lr /= config.anneal
                for group in optimizer.param_groups:
                    group["lr"] = lr
        if math.isinf(metrics[-1]["val_ppl"]):
            raise TrainingFailed(
                "diverged",
                f"the validation perplexity is inf (loss {metrics[-1]['val_loss']:.4g} per "
                "token) at the end of training",
                epoch=epoch[0],
            )
    reward = perplexity_reward(
        [m["val_ppl"] for m in metrics], c=config.reward_c, power=config.reward_power
    )
    return TrainResult(
        kind="text",
        metrics=metrics,
        reward=reward,
        seconds=time.perf_counter() - start,
        parameters=count_parameters(model),
        device=str(device),
        config=asdict(config),
        model=model,
    )


# --- the one entry point -------------------------------------------------------------


def training_batch(data: Data, batch_size: int | None) -> dict[str, int]:
    """memory.check_fits's `batch` (values per step: examples, or token positions of a
    language model's BPTT chunk) and `copies` (weights, gradients and momentum: plain SGD
    for language models keeps no momentum) for training on `data`."""
    if isinstance(data, TextData):
        config = LanguageConfig()
        return {"batch": (batch_size or config.batch_size) * config.bptt, "copies": 2}
    return {"batch": batch_size or ImageConfig.batch_size, "copies": 3}


def train_arch(
    arch: Arch,
    data: Data,
    *,
    epochs: int,
    device: torch.device | str = "cpu",
    seed: int = 0,
    batch_size: int | None = None,
    lr: float | None = None,
    max_batches: int | None = None,
    loader_workers: int = 0,
    overrides: dict[str, object] | None = None,
    build: Callable[..., nn.Module] | None = None,
    progress: bool = False,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Build `arch` for `data` and train it with its family's recipe: the one way a child
    is trained (the search's train evaluator, `nasforge train`, the benchmarks).

    `lr` replaces the recipe's rate and the architecture's own `lr`; `max_batches` caps a
    language model's training chunks per epoch; `loader_workers` are an image
    DataLoader's processes. `build` is the build_model to call (default: `arch` compiled
    in memory; `nasforge train` passes the generated file's own), with
    build_kwargs(arch, data, **overrides). Raises TrainingFailed (IncompatibleData
    included) and nothing else a caller must expect, save a NasforgeError that `build`
    raises; the result's `model` is the trained module.
    """
    from .devices import seed_everything
    from .memory import check_fits

    check_compatible(arch, data)
    kwargs = build_kwargs(arch, data, **(overrides or {}))
    check_fits(arch, kwargs, device=device, **training_batch(data, batch_size))
    seed_everything(seed)
    with failures_as_training_failed([0]):
        if build is None:
            from nasforge.codegen import load

            build = load(arch).build_model
        model = build(**kwargs)
    if isinstance(data, TextData):
        lm = LanguageConfig(epochs=epochs, max_batches=max_batches)
        if batch_size is not None:
            lm.batch_size = batch_size
        if lr is not None:
            lm.lr = lr
        return train_language_model(
            model, data, lm, device=device, progress=progress, on_epoch=on_epoch
        )
    config = ImageConfig(epochs=epochs, seed=seed, workers=loader_workers)
    if getattr(arch, "lr", None) is not None:
        config.lr = arch.lr  # type: ignore[union-attr,assignment]
    if lr is not None:
        config.lr = lr
    if batch_size is not None:
        config.batch_size = batch_size
    return train_image(model, data, config, device=device, progress=progress, on_epoch=on_epoch)
