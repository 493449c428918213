"""DARTS' search step, timed in one process: torch only, so NNI's benchmark venv runs it too.

A configuration runs in a process of its own (`bench_oneshot.py` starts one per
implementation and kind), so that its peak resident memory is its own: build the
network, draw a training and a validation batch, take one untimed warm-up step,
then `repeats` timed steps, and print one JSON line with every step's seconds
(wall time, and CPU time of the one thread that runs the ops), the resident
memory before the first step and the process's peak.

Kinds: `weight` (the weight step alone), `darts1` and `darts2` (the architecture
step, first or second order, then the weight step, as one search step of DARTS'
loop). The weight step is the paper's: SGD lr 0.025, momentum 0.9, weight decay
3e-4, gradients clipped to norm 5 (Liu et al. 2019, appendix A.1.1).
"""

from __future__ import annotations

import json
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

KINDS = ("weight", "darts1", "darts2")
# DARTS' search settings (Liu et al. 2019, appendix A.1.1).
WEIGHT_LR, WEIGHT_MOMENTUM, WEIGHT_DECAY, GRAD_CLIP = 0.025, 0.9, 3e-4, 5.0
ARCH_LR, ARCH_BETAS, ARCH_DECAY = 3e-4, (0.5, 0.999), 1e-3


@dataclass
class Batches:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor


def cifar_batches(batch: int, classes: int = 10, seed: int = 0) -> Batches:
    """A training and a validation batch shaped like CIFAR-10's."""
    generator = torch.Generator().manual_seed(seed)
    draw = [
        torch.randn(batch, 3, 32, 32, generator=generator),
        torch.randint(0, classes, (batch,), generator=generator),
        torch.randn(batch, 3, 32, 32, generator=generator),
        torch.randint(0, classes, (batch,), generator=generator),
    ]
    return Batches(*draw)


def weight_optimizer(params: Sequence[nn.Parameter]) -> torch.optim.SGD:
    return torch.optim.SGD(
        params, lr=WEIGHT_LR, momentum=WEIGHT_MOMENTUM, weight_decay=WEIGHT_DECAY
    )


def weight_step(
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    batches: Batches,
) -> Callable[[], None]:
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss(batches.x_train, batches.y_train).backward()
        nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        optimizer.step()

    return step


def cross_entropy(model: nn.Module, *weights: torch.Tensor) -> Callable:
    """The loss of `model(x, *weights)` on a batch."""
    return lambda x, y: F.cross_entropy(model(x, *weights), y)


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, the high-water mark of its own pages.

    Not getrusage's ru_maxrss: Linux carries that over exec from the forked child's
    copy of its parent, so a worker started by a 4 GB benchmark would report 4 GB.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def run_configuration(
    steps: dict[str, Callable[[], None]], repeats: int, info: dict[str, object]
) -> None:
    """Warm up, time `repeats` rounds of the steps (in order), print the JSON line."""
    rss_before = current_rss_mb()
    for step in steps.values():
        step()  # warm-up: the allocator's first pass, the optimisers' state
    times: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start, start_cpu = time.perf_counter(), time.thread_time()
            step()
            cpu[name].append(time.thread_time() - start_cpu)
            times[name].append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                **info,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "seconds": times,
                "median_s": {name: statistics.median(ts) for name, ts in times.items()},
                "cpu_seconds": cpu,
                "median_cpu_s": {name: statistics.median(ts) for name, ts in cpu.items()},
                "rss_before_steps_mb": rss_before,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )
