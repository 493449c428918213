"""Ray actors of the distributed search: parameter-server shards and controller replicas.

- `ShardActor` holds one `ParameterShard` (controller/param_server.py).
- `ReplicaActor` pulls the current weights from every shard, samples a round, and
  later pushes the round's gradient to every shard. It keeps no state between calls
  (the driver hands it the generator state and the weights it sampled with), so Ray
  may restart it after it dies and retry the call: a sample is drawn from the same
  generator state and a retried push is skipped by the shards that applied it.

Shards and replicas ask for no CPU (`num_cpus=0`): they do little work and the
cores belong to the children (runtime/search/ray_children.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
import torch
from nasforge.controller.param_server import (
    Layout,
    ParameterShard,
    ReplicaCore,
    Weights,
    dump,
    load,
)
from nasforge.controller.space import Space
from nasforge.controller.strategy import Proposal

# Ray restarts a dead replica this many times in a search (and retries the call that
# was running on it); beyond that the driver stops with an error (--resume continues).
REPLICA_RESTARTS = 8


@ray.remote(num_cpus=0)
class ShardActor:
    """One parameter-server shard; weights and gradients travel packed (param_server.Layout)."""

    def __init__(
        self,
        weights: Weights,
        adam: dict[str, Any],
        baseline_decay: float | None,
        state: bytes | None,
    ) -> None:
        torch.set_num_threads(1)
        self.shard = ParameterShard(weights, adam, baseline_decay=baseline_decay)
        self.layout = Layout.of(weights)
        if state is not None:
            self.shard.load_state_dict(load(state))

    def pull(self) -> tuple[int, np.ndarray, float | None]:
        version, weights, baseline = self.shard.pull()
        return version, self.layout.pack(weights), baseline

    def baseline(self) -> float | None:
        return self.shard.baseline

    def apply(
        self,
        round_id: int,
        names: list[str],
        grads: np.ndarray,
        pulled_version: int,
        reward_mean: float,
    ) -> tuple[int, int, bool]:
        done = self.shard.apply(
            round_id, self.layout.unpack(grads, names), pulled_version, reward_mean
        )
        return done.version, done.staleness, done.applied

    def checkpoint(self) -> tuple[int, bytes, list[int]]:
        """(version, the state as bytes, the rounds applied)."""
        return self.shard.version, dump(self.shard.state_dict()), sorted(self.shard.applied)


@dataclass(frozen=True)
class Sampled:
    proposals: list[Proposal]
    generator: torch.Tensor  # the generator state after sampling
    versions: tuple[int, ...]  # each shard's version of the weights used
    weights: bytes  # those weights, packed in the replica's layout (float32 bytes)


@ray.remote(num_cpus=0, max_restarts=REPLICA_RESTARTS, max_task_retries=REPLICA_RESTARTS)
class ReplicaActor:
    """A controller replica: pulls weights, samples rounds, pushes their gradients."""

    def __init__(
        self,
        space: Space,
        seed: int,
        options: dict[str, Any],
        shard_names: list[str],
        layouts: list[Layout],
    ) -> None:
        torch.set_num_threads(1)
        self.core = ReplicaCore(space, seed=seed, options=options)
        # Looked up by name: handles as constructor arguments would keep a restart from
        # finding them once the driver's references go (ray-project/ray#53727).
        self.shards = [ray.get_actor(name) for name in shard_names]
        self.layouts = layouts  # what each shard holds
        self.layout = Layout(
            tuple(n for layout in layouts for n in layout.names),
            tuple(shape for layout in layouts for shape in layout.shapes),
        )

    def sample(self, generator: torch.Tensor, n: int, depth: int | None) -> Sampled:
        pulled = ray.get([shard.pull.remote() for shard in self.shards])
        packed = np.concatenate([vector for _, vector, _ in pulled])
        proposals, after = self.core.sample(self.layout.unpack(packed), generator, n, depth)
        return Sampled(proposals, after, tuple(v for v, _, _ in pulled), packed.tobytes())

    def update(
        self,
        round_id: int,
        proposals: list[Proposal],
        rewards: list[float],
        weights: bytes,
        versions: tuple[int, ...],
    ) -> dict[str, float]:
        """Push round `round_id`'s gradient to every shard; the update's statistics."""
        baseline = ray.get(self.shards[0].baseline.remote())
        packed = np.frombuffer(weights, dtype=np.float32)
        gradient = self.core.gradient(self.layout.unpack(packed), proposals, rewards, baseline)
        pushes = [
            shard.apply.remote(
                round_id,
                [n for n in layout.names if n in gradient.grads],
                layout.pack(gradient.grads),
                version,
                gradient.reward_mean,
            )
            for shard, layout, version in zip(self.shards, self.layouts, versions, strict=True)
        ]
        applied = ray.get(pushes)
        return {
            **gradient.stats,
            "staleness": float(max(staleness for _, staleness, _ in applied)),
            "version": float(max(version for version, _, _ in applied)),
        }
