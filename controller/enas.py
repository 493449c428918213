"""ENAS' controller learner (Pham et al. 2018, §2.2): REINFORCE over the LSTM policy.

Pure: it samples decision sequences from its own generator and learns from the
rewards it is told; the runtime (runtime/oneshot/enas.py) measures the rewards, the
sampled children's accuracy through the shared weights.

Each update, as the reference computes it (melodyguan/enas,
src/cifar10/general_controller.py, `build_trainer`), over the m sequences of one
aggregated batch (controller_num_aggregate):

- reward R_k = accuracy_k + entropy_weight * H_k (the entropy of sequence k's
  decisions, no gradient): the entropy bonus is part of the reward;
- the moving-average baseline moves first, b <- decay * b + (1 - decay) * R_k, one
  sequence at a time, then advantage_k = R_k - b;
- loss = mean_k [ -advantage_k * log p(a_k) + skip_weight * skip_penalty_k ], where a
  space with anchor slots (ENAS' skip connections in the macro space) has
  skip_penalty_k = the mean over layers of the summed KL(Bernoulli(p) || Bernoulli(
  skip_target)) of that layer's anchors (the reference's `skip_penaltys`);
- one Adam step.

Settings and their sources: `EnasControllerSettings`. One choice differs from the
reference: the baseline starts at the first reward (the reference starts it at 0 and
moves it by 1% per sample, so over the hundred-odd samples of a CPU-scale epoch every
advantage would stay positive).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .policy import LSTMPolicy, Rollout
from .space import Space


@dataclass(frozen=True)
class EnasControllerSettings:
    """The controller's settings (defaults: ENAS' macro search, scripts/cifar10_macro_search.sh
    and src/cifar10/main.py; `for_cells()` gives the micro search's)."""

    lr: float = 0.001  # cifar10_macro_search.sh controller_lr (micro: 0.0035)
    hidden: int = 64  # main.py lstm_size=64
    layers: int = 1  # main.py lstm_num_layers=1
    init_range: float = 0.1  # general_controller.py: uniform initializer in [-0.1, 0.1]
    tanh_constant: float | None = 1.5  # cifar10_macro_search.sh (micro: 1.10)
    temperature: float = 1.0  # main.py controller_temperature None: no temperature
    entropy_weight: float = 1e-4  # cifar10_macro_search.sh / micro: controller_entropy_weight
    baseline_decay: float = 0.99  # main.py controller_bl_dec
    skip_target: float = 0.4  # cifar10_macro_search.sh controller_skip_target
    skip_weight: float = 0.8  # cifar10_macro_search.sh controller_skip_weight (micro: none)

    @classmethod
    def for_cells(cls) -> EnasControllerSettings:
        """ENAS' micro (cell) search: scripts/cifar10_micro_search.sh. Its op logits use
        tanh_constant / controller_op_tanh_reduce (2.5); the policy has one constant for
        every slot, so 1.10 applies to all."""
        return cls(lr=0.0035, tanh_constant=1.10, skip_weight=0.0)


class EnasController:
    """The LSTM policy over `space`, its Adam optimiser and REINFORCE's baseline."""

    def __init__(self, space: Space, settings: EnasControllerSettings, *, seed: int = 0) -> None:
        self.space = space
        self.settings = settings
        self.depth = space.check_depth(None)  # ENAS samples the whole network
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.policy = LSTMPolicy(
                space,
                hidden=settings.hidden,
                layers=settings.layers,
                init_range=settings.init_range,
                temperature=settings.temperature,
                tanh_constant=settings.tanh_constant,
            )
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=settings.lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.baseline: float | None = None
        self.updates = 0
        slots = space.slots(self.depth)
        layers = [slot.target for slot in slots if slot.kind == "anchor"]
        # anchor slot (in slot order) -> its layer's column, for the per-layer sums
        self._layer_of = torch.tensor([sorted(set(layers)).index(t) for t in layers])
        self._layers = len(set(layers))

    def sample(self, n: int) -> Rollout:
        """n decision sequences from the policy (no gradient)."""
        return self.policy.sample(n, self.depth, self.generator)

    def to_text(self, decisions: Sequence[int]) -> str:
        return self.space.to_text(decisions, self.depth)

    def update(self, decisions: Tensor, accuracies: Sequence[float]) -> dict[str, float]:
        """One REINFORCE step on sampled `decisions` ([m, slots]) and their accuracies."""
        if len(decisions) != len(accuracies) or not len(accuracies):
            raise ValueError(f"{len(decisions)} sequences but {len(accuracies)} accuracies")
        rollout = self.policy.score(decisions.long(), self.depth)
        entropy = rollout.entropy.detach()
        rewards = torch.tensor([float(a) for a in accuracies]) + (
            self.settings.entropy_weight * entropy
        )
        advantages = torch.empty_like(rewards)
        decay = self.settings.baseline_decay
        for k, reward in enumerate(rewards.tolist()):
            base = reward if self.baseline is None else self.baseline
            self.baseline = decay * base + (1 - decay) * reward
            advantages[k] = reward - self.baseline
        loss = -(advantages * rollout.log_prob).mean()
        penalty = self.skip_penalty(rollout)
        if penalty is not None:
            loss = loss + self.settings.skip_weight * penalty.mean()
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(
                f"the controller's loss is {float(loss)} at update {self.updates + 1}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        found = {
            "loss": float(loss.detach()),
            "entropy": float(entropy.mean()),
            "reward": sum(float(a) for a in accuracies) / len(accuracies),
            "baseline": float(self.baseline),
        }
        skip_rate = self.skip_rate(decisions)
        if skip_rate is not None:
            found["skip_rate"] = skip_rate
        return found

    def skip_penalty(self, rollout: Rollout) -> Tensor | None:
        """Per sequence: the mean over layers of each layer's summed anchor KL to the target."""
        if rollout.anchor_prob is None or not self._layers:
            return None
        p = rollout.anchor_prob.clamp(1e-7, 1 - 1e-7)
        t = self.settings.skip_target
        kl = p * torch.log(p / t) + (1 - p) * torch.log((1 - p) / (1 - t))
        per_layer = kl.new_zeros(len(kl), self._layers).index_add(1, self._layer_of, kl)
        return per_layer.mean(dim=1)

    def skip_rate(self, decisions: Tensor) -> float | None:
        """The share of anchor slots taken (ENAS' skip_rate), None without anchors."""
        anchors = [i for i, s in enumerate(self.space.slots(self.depth)) if s.kind == "anchor"]
        if not anchors:
            return None
        return float(decisions[:, anchors].float().mean())

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "baseline": self.baseline,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self.updates = int(state["updates"])
