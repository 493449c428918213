"""Asynchronous REINFORCE with parameter servers (NAS paper §3.4, Figure 3), without Ray.

The paper trains its controller with S parameter-server shards and K controller
replicas: a replica pulls the current weights, samples m architectures, waits for
their rewards, computes the REINFORCE gradient with the weights it sampled from and
pushes it; each shard applies every gradient the moment it arrives, so a gradient
may be a few versions stale. This module is that arithmetic in plain torch:

- `ParameterShard`: a slice of the controller's parameters with their own Adam
  state, a version counter (one per applied gradient), the ids of the rounds it
  has applied (so a pushed gradient is applied at most once: a retried or replayed
  push is skipped) and, on shard 0, the REINFORCE baseline.
- `ReplicaCore`: samples with given weights and generator state, and turns a
  round's rewards into a gradient. It keeps no state between calls, so a replica
  that dies can be restarted anywhere and continue from the shards' weights.

runtime/search/ray_search.py puts these in Ray actors. With one replica sampling one
architecture per round, shards apply exactly the updates `Reinforce.tell` makes,
so the distributed search samples the same strings as the local one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .reinforce import Reinforce
from .space import Space
from .strategy import Proposal

Weights = dict[str, Tensor]
# Reinforce's screen options: the architectures told so far and their rewards, which the
# reward model is fitted to, live in one controller between updates; replicas keep no
# state and the shards only the baseline, so asynchronous training refuses these options
# rather than ignore them.
LOCAL_ONLY_OPTIONS = ("screen", "screen_warmup", "screen_ridge", "screen_memory")


@dataclass(frozen=True)
class Layout:
    """Named tensors packed into one flat float32 vector, in `names` order.

    Weights and gradients cross process boundaries packed: one NumPy array is a
    fraction of the cost of a dict of small tensors to serialize."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, tensors: Weights) -> Layout:
        return cls(tuple(tensors), tuple(tuple(t.shape) for t in tensors.values()))

    def pack(self, tensors: Weights) -> np.ndarray:
        """The tensors present in `tensors`, in layout order, as one vector."""
        parts = [tensors[n].detach().reshape(-1) for n in self.names if n in tensors]
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return torch.cat(parts).to(torch.float32).numpy()

    def unpack(self, vector: np.ndarray, names: Sequence[str] | None = None) -> Weights:
        """The tensors `names` (default: all) back from `pack`'s vector of them."""
        wanted = set(self.names if names is None else names)
        out: Weights = {}
        at = 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            if name not in wanted:
                continue
            size = math.prod(shape)
            out[name] = torch.from_numpy(np.array(vector[at : at + size])).reshape(shape)
            at += size
        if at != len(vector):
            raise ValueError(f"a packed vector of {len(vector)} values for {at} in the layout")
        return out


def split_parameters(sizes: dict[str, int], shards: int) -> list[list[str]]:
    """Assign parameter names to `shards` shards, balancing their element counts (largest
    first, each to the lightest shard); every shard gets at least one when it can."""
    if shards < 1:
        raise ValueError(f"need at least one parameter-server shard, not {shards}")
    if shards > len(sizes):
        raise ValueError(
            f"{shards} shards but the controller has only {len(sizes)} parameter tensors"
        )
    loads = [0] * shards
    names: list[list[str]] = [[] for _ in range(shards)]
    for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
        lightest = min(range(shards), key=lambda s: (loads[s], s))
        names[lightest].append(name)
        loads[lightest] += sizes[name]
    return names


@dataclass(frozen=True)
class Applied:
    """What a shard did with a pushed gradient."""

    version: int  # the shard's version after the push
    staleness: int  # how many versions the shard had moved on since the weights were pulled
    applied: bool  # False: this round's gradient was applied before (a retried push)


class ParameterShard:
    """Some of the controller's parameters, their Adam state and (shard 0) the baseline."""

    def __init__(
        self,
        weights: Weights,
        adam: dict[str, Any],
        *,
        baseline_decay: float | None = None,
    ) -> None:
        self.params = {name: nn.Parameter(t.detach().clone()) for name, t in weights.items()}
        self.optimizer = torch.optim.Adam(list(self.params.values()), **adam)
        self.version = 0
        self.applied: set[int] = set()
        # Only the shard that holds the baseline gets a decay; the others leave it None.
        self.baseline_decay = baseline_decay
        self.baseline: float | None = None

    def pull(self) -> tuple[int, Weights, float | None]:
        """(version, a copy of the weights, the baseline)."""
        return self.version, {n: p.detach().clone() for n, p in self.params.items()}, self.baseline

    def apply(
        self, round_id: int, grads: Weights, pulled_version: int, reward_mean: float
    ) -> Applied:
        """One Adam step with the gradient of round `round_id`, unless it was applied before."""
        if round_id in self.applied:
            return Applied(self.version, 0, applied=False)
        # Never negative: a shard restored from a checkpoint older than the weights a stored
        # round sampled with counts its versions again from there.
        staleness = max(0, self.version - pulled_version)
        for name, param in self.params.items():
            # A parameter no proposal reached has no gradient: Adam leaves it (and its
            # moments) alone, as the local optimizer does.
            grad = grads.get(name)
            param.grad = None if grad is None else grad.to(param.dtype)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.baseline_decay is not None:
            # Reinforce.next_baseline's moving average, kept where every replica reads it.
            base = reward_mean if self.baseline is None else self.baseline
            self.baseline = self.baseline_decay * base + (1 - self.baseline_decay) * reward_mean
        self.version += 1
        self.applied.add(round_id)
        return Applied(self.version, staleness, applied=True)

    def state_dict(self) -> dict[str, Any]:
        return {
            "params": {n: p.detach().clone() for n, p in self.params.items()},
            "optimizer": self.optimizer.state_dict(),
            "version": self.version,
            "applied": sorted(self.applied),
            "baseline": self.baseline,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state["params"]) != set(self.params):
            raise ValueError("the stored shard holds other parameters than this one")
        with torch.no_grad():
            for name, param in self.params.items():
                param.copy_(state["params"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.version = int(state["version"])
        self.applied = {int(r) for r in state["applied"]}
        baseline = state["baseline"]
        self.baseline = None if baseline is None else float(baseline)


def make_shards(strategy: Reinforce, count: int) -> list[ParameterShard]:
    """The shards of a fresh controller: `strategy`'s initial weights and Adam settings."""
    named = dict(strategy.policy.named_parameters())
    groups = split_parameters({n: p.numel() for n, p in named.items()}, count)
    adam = {k: v for k, v in strategy.optimizer.param_groups[0].items() if k != "params"}
    return [
        ParameterShard(
            {n: named[n] for n in names},
            adam,
            baseline_decay=strategy.options.baseline_decay if index == 0 else None,
        )
        for index, names in enumerate(groups)
    ]


def dump(value: Any) -> bytes:
    """torch.save bytes (weights, generator states, shard states travel and are stored so)."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def load(blob: bytes) -> Any:
    return torch.load(io.BytesIO(blob), weights_only=True)


@dataclass(frozen=True)
class Gradient:
    grads: Weights
    reward_mean: float
    stats: dict[str, float]


class ReplicaCore:
    """A controller replica's work, given the weights: sample a round, compute its gradient."""

    def __init__(self, space: Space, *, seed: int, options: dict[str, Any]) -> None:
        self.strategy = Reinforce(space, seed=seed, **options)

    def _load(self, weights: Weights) -> None:
        with torch.no_grad():
            for name, param in self.strategy.policy.named_parameters():
                param.copy_(weights[name])

    def sample(
        self, weights: Weights, generator: Tensor, n: int, depth: int | None
    ) -> tuple[list[Proposal], Tensor]:
        """n proposals drawn with `weights` from `generator`'s state; the state after."""
        self._load(weights)
        self.strategy.generator.set_state(generator)
        proposals = self.strategy.ask(n, depth=depth)
        return proposals, self.strategy.generator.get_state()

    def gradient(
        self,
        weights: Weights,
        proposals: Sequence[Proposal],
        rewards: Sequence[float],
        baseline: float | None,
    ) -> Gradient:
        """The REINFORCE gradient of a round, with the weights that sampled it."""
        self._load(weights)
        strategy = self.strategy
        reward = strategy._rewards(proposals, rewards)
        advantages = strategy.advantages(reward, baseline)
        loss, entropy = strategy.loss(proposals, advantages)
        norm = strategy.backward(loss)
        grads = {
            name: param.grad.detach().clone()
            for name, param in strategy.policy.named_parameters()
            if param.grad is not None  # None: a slot no proposal of the round reached
        }
        stats = {
            "loss": float(loss.detach()),
            "entropy": float(entropy),
            "reward_mean": float(reward.mean()),
            "grad_norm": norm,
            "baseline": float(baseline if baseline is not None else reward.mean()),
        }
        return Gradient(grads, float(reward.mean()), stats)


def replica_seed(seed: int, replica: int) -> int:
    """Replica k's sampling seed: replica 0 samples as the local controller seeded `seed` does."""
    if replica == 0:
        return seed
    return (seed * 1_000_003 + replica * 0x9E3779B97F4A7C15) % 2**63


def initial_generator(seed: int, replica: int) -> Tensor:
    return torch.Generator().manual_seed(replica_seed(seed, replica)).get_state()
