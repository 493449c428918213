"""REINFORCE and PPO over the LSTM policy: the search strategies that learn.

REINFORCE (Williams 1992, as the NAS paper uses it, §3.2): after the rewards
of m proposals come back, one gradient step on
    -mean_k (R_k - b) log p(a_k) - entropy_weight * mean_k H_k,
where b is an exponential moving average of earlier batches' mean rewards
(the first batch's mean starts it). PPO (Schulman et al. 2017, as NASNet
uses it): a few epochs of the clipped objective over the same batch. With the
`screen` option a reward model chooses which of the policy's samples to
propose; `ReinforceScreen` is that search under its own name.

All randomness comes from the strategy's own torch.Generator (seeded by
`seed`), never from global RNGs, so `state_dict()` (weights, optimizer,
baseline, schedule position, sample count, generator state, and the
architectures told so far, which screen's reward model is fitted to) restores
the exact sequence of proposals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
from torch import Tensor

from .policy import LSTMPolicy, Rollout
from .space import Space
from .strategy import Proposal, Strategy, StrategyDiverged, check_option
from .surrogate import KernelRidge


@dataclass(frozen=True)
class ReinforceOptions:
    """Reinforce's options and their defaults (what each does: Reinforce's docstring).

    An unknown name is a TypeError; a value outside RANGES (inclusive; the options
    whose default is None may also be None) a ValueError, so a controller never starts
    with settings that make it diverge or exhaust memory (whether depth and the
    schedule's fields fit the space is the space's check)."""

    # name -> (least, most, integer)
    RANGES: ClassVar[dict[str, tuple[float, float, bool]]] = {
        "lr": (0.0, 1.0, False),  # 0 freezes the policy
        "hidden": (1, 4096, True),
        "layers": (1, 16, True),
        "init_range": (0.0, 1.0, False),
        "entropy_weight": (0.0, 10.0, False),
        "baseline_decay": (0.0, 1.0, False),
        "screen": (0, 10_000, True),  # each ask samples screen * n candidates
        "screen_warmup": (1, 1_000_000, True),
        "screen_ridge": (0.0, 1e9, False),  # KernelRidge refuses 0
        "screen_memory": (1, 10_000, True),  # the reward model solves a memory^2 system
        "temperature": (0.01, 100.0, False),
        "tanh_constant": (0.01, 100.0, False),
        "grad_clip": (1e-9, 1e9, False),
        "depth": (1, 1_000_000, True),
        "depth_start": (1, 1_000_000, True),
        "depth_step": (0, 1_000_000, True),
        "depth_every": (1, 10**12, True),
        "max_depth": (1, 1_000_000, True),
    }

    lr: float = 6e-4
    hidden: int = 35
    layers: int = 2
    init_range: float = 0.08
    entropy_weight: float = 1e-4
    baseline_decay: float = 0.95
    screen: int = 0
    screen_warmup: int = 10
    screen_ridge: float = 0.1
    screen_memory: int = 1000
    temperature: float = 1.0
    tanh_constant: float | None = None
    grad_clip: float | None = None
    depth: int | None = None
    depth_start: int | None = None
    depth_step: int | None = None
    depth_every: int | None = None
    max_depth: int | None = None

    def __post_init__(self) -> None:
        for name, (least, most, integer) in self.RANGES.items():
            value = getattr(self, name)
            if value is not None or _DEFAULTS[name] is not None:
                check_option(name, value, least, most, integer=integer)

    def scheduled(self, space: Space) -> Space:
        """`space`, with the depth schedule's fields these options override."""
        schedule = {
            "start": self.depth_start,
            "step": self.depth_step,
            "every": self.depth_every,
            "max_depth": self.max_depth,
        }
        if all(value is None for value in schedule.values()):
            return space
        return space.with_schedule(**schedule)


_DEFAULTS = {f.name: f.default for f in fields(ReinforceOptions)}


class Reinforce(Strategy):
    """The NAS paper's controller: an LSTM policy trained with REINFORCE.

    Options (keyword arguments of the constructor, the fields of ReinforceOptions;
    the batch size m is `ask(n)`'s n, one update per `tell`):

    - lr (6e-4): Adam learning rate.
    - hidden (35), layers (2), init_range (0.08): the LSTM's size and its
      uniform initialisation range.
    - entropy_weight (1e-4): weight of the entropy bonus (higher explores more).
    - baseline_decay (0.95): b <- decay * b + (1 - decay) * mean reward of a tell.
    - screen (0), screen_warmup (10), screen_ridge (0.1), screen_memory (1000): screen
      candidates with a reward model before paying for them (as PNAS, Liu et al. 2018,
      ranks candidates with a predictor). `ask(n)` samples screen * n candidates from
      the policy, fits kernel ridge regression (controller/surrogate.py, regulariser
      screen_ridge) to the rewards of the last screen_memory distinct architectures
      told at that depth, and proposes the n distinct candidates not told yet with the
      highest predicted rewards (then, if too few are new, the remaining samples in
      their drawn order). Until screen_warmup distinct architectures have been told,
      it proposes the first n samples as usual. The policy learns from the rewards of
      what it proposes; its samples are the pool the model chooses from. 0 turns it off;
      ReinforceScreen (the `reinforce-screen` strategy) turns it on at 100.
    - temperature (1.0), tanh_constant (None): logits / temperature, and
      c * tanh(logits / c) when tanh_constant is c.
    - grad_clip (None): clip the gradient norm to this value.
    - depth (None): sample this many layers always (cnn spaces), instead of
      the space's schedule; depth_start, depth_step, depth_every, max_depth
      override the schedule's fields (start at depth_start layers, add
      depth_step every depth_every samples, up to max_depth).

    Beyond the Strategy interface: `ask(n, depth=d)` samples at depth d once;
    `sample(n, depth)` draws without counting (no proposals built);
    `log_prob(decisions, depth)` / `log_probs(...)` score decisions, e.g. those
    `space.decisions_of(parse(text))` recovers from a string; `last_log_probs`
    holds the log-probabilities of the latest ask's proposals.
    """

    name = "reinforce"

    def __init__(self, space: Space, *, seed: int = 0, **options: Any) -> None:
        self.options = opts = ReinforceOptions(**options)
        self.space = opts.scheduled(space)
        self.fixed_depth = None if opts.depth is None else self.space.check_depth(opts.depth)
        # The weights are drawn from a generator of their own, so building a
        # controller neither reads nor disturbs torch's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.policy = LSTMPolicy(
                self.space,
                hidden=opts.hidden,
                layers=opts.layers,
                init_range=opts.init_range,
                temperature=opts.temperature,
                tanh_constant=opts.tanh_constant,
            )
        # foreach: one fused update (per-tensor Python overhead is most of a tiny one's cost)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=opts.lr, foreach=True)
        self.generator = torch.Generator().manual_seed(seed)
        self.surrogate = KernelRidge(opts.screen_ridge)
        # screen's memory: (decisions, depth) -> the first reward told for that architecture
        self.told: dict[tuple[tuple[int, ...], int | None], float] = {}
        self.baseline: float | None = None
        self.samples = 0  # proposals handed out: the depth schedule's clock
        self.updates = 0
        self.last_log_probs: Tensor | None = None  # of the latest ask, for checks and logs

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The constructor's own options, then ReinforceOptions' fields."""
        own = super().option_names()
        return tuple(dict.fromkeys((*own, *(f.name for f in fields(ReinforceOptions)))))

    # --- asking -----------------------------------------------------------------------

    def depth(self) -> int | None:
        """The depth the next ask samples at."""
        if self.fixed_depth is not None:
            return self.fixed_depth
        return self.space.depth_at(self.samples)

    def sample(self, n: int, depth: int | None = None) -> Rollout:
        """Draw n decision sequences at `depth` (default: the schedule's) without counting them."""
        return self.policy.sample(n, depth if depth is not None else self.depth(), self.generator)

    def ask(self, n: int, *, depth: int | None = None) -> list[Proposal]:
        """The next n proposals, at the schedule's depth unless `depth` says otherwise."""
        depth = self.depth() if depth is None else self.space.check_depth(depth)
        screen = self.options.screen
        rollout = self.policy.sample(n * max(screen, 1), depth, self.generator)
        if screen:
            rollout = self._screened(rollout, n, depth)
        self.samples += n
        self.last_log_probs = rollout.log_prob
        rows = rollout.decisions.tolist()
        return [Proposal(self.space.to_text(row, depth), tuple(row), depth) for row in rows]

    def _screened(self, candidates: Rollout, n: int, depth: int | None) -> Rollout:
        """screen: the n candidates to pay for, best predicted first among the new ones."""
        told = [(key[0], r) for key, r in self.told.items() if key[1] == depth]
        told = told[-self.options.screen_memory :]
        if len(told) < self.options.screen_warmup:
            chosen = list(range(n))
        else:
            rows = candidates.decisions.tolist()
            fresh: dict[tuple[int, ...], int] = {}  # first index of each new distinct row
            for i, row in enumerate(rows):
                key = tuple(row)
                if key not in fresh and (key, depth) not in self.told:
                    fresh[key] = i
            chosen = []
            if fresh:
                index = torch.tensor(list(fresh.values()))
                self.surrogate.fit([d for d, _ in told], [r for _, r in told])
                predicted = self.surrogate.predict(candidates.decisions[index])
                best_first = torch.argsort(predicted, descending=True, stable=True)
                chosen = index[best_first[:n]].tolist()
            taken = set(chosen)
            chosen += [i for i in range(len(rows)) if i not in taken][: n - len(chosen)]
        index = torch.tensor(chosen)
        return Rollout(
            candidates.decisions[index], candidates.log_prob[index], candidates.entropy[index]
        )

    def log_prob(self, decisions: Sequence[int], depth: int | None = None) -> float:
        """The policy's log-probability of one decision sequence (e.g. from decisions_of)."""
        return float(self.log_probs([decisions], depth)[0])

    def log_probs(self, decisions: Sequence[Sequence[int]], depth: int | None = None) -> Tensor:
        """Log-probabilities of several decision sequences of the same depth."""
        depth = self.space.check_depth(depth)
        width = len(self.space.slots(depth))
        table = torch.tensor([list(d) for d in decisions], dtype=torch.long).reshape(-1, width)
        with torch.no_grad():
            return self.policy.score(table, depth).log_prob

    # --- learning -----------------------------------------------------------------------

    def _score(self, proposals: Sequence[Proposal]) -> tuple[Tensor, Tensor]:
        """Log-probabilities and entropies (with gradient) of proposals, in their order."""
        log_prob = torch.zeros(len(proposals))
        entropy = torch.zeros(len(proposals))
        by_depth: dict[int | None, list[int]] = {}
        for i, proposal in enumerate(proposals):
            by_depth.setdefault(proposal.depth, []).append(i)
        for depth, rows in by_depth.items():
            table = torch.tensor([proposals[i].decisions for i in rows], dtype=torch.long)
            rollout = self.policy.score(table, depth)
            index = torch.tensor(rows)
            log_prob = log_prob.index_put((index,), rollout.log_prob)
            entropy = entropy.index_put((index,), rollout.entropy)
        return log_prob, entropy

    def advantages(self, rewards: Tensor, baseline: float | None) -> Tensor:
        """R - b for a batch's rewards (b: the batch mean when there is no baseline yet)."""
        return rewards - (float(rewards.mean()) if baseline is None else baseline)

    def next_baseline(self, baseline: float | None, rewards: Tensor) -> float:
        """The moving average after a batch: decay * b + (1 - decay) * mean reward."""
        mean = float(rewards.mean())
        if baseline is None:
            baseline = mean
        decay = self.options.baseline_decay
        return decay * baseline + (1 - decay) * mean

    def _advantages(self, rewards: Tensor) -> Tensor:
        advantages = self.advantages(rewards, self.baseline)
        self.baseline = self.next_baseline(self.baseline, rewards)
        return advantages

    def loss(self, proposals: Sequence[Proposal], advantages: Tensor) -> tuple[Tensor, Tensor]:
        """The REINFORCE loss of a batch (with gradient) and the batch's mean entropy."""
        log_prob, entropy = self._score(proposals)
        loss = -(advantages * log_prob).mean() - self.options.entropy_weight * entropy.mean()
        return loss, entropy.detach().mean()

    def _remember(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> None:
        """With screen, note the architectures told and their first rewards."""
        if not self.options.screen:
            return
        for proposal, reward in zip(proposals, rewards, strict=True):
            key = (tuple(proposal.decisions), proposal.depth)
            if key not in self.told:
                # the reward at the float32 precision of the tensor the policy learns from
                self.told[key] = float(torch.tensor(float(reward), dtype=torch.float32))

    def backward(self, loss: Tensor) -> float:
        """Fill the policy's .grad with d loss (clipped to grad_clip); the norm before clipping.

        Split from the optimizer step so a distributed replica can push the gradient
        to parameter servers instead (runtime/search/ray_search.py)."""
        self.optimizer.zero_grad()
        self._check_finite("loss", float(loss.detach()))
        loss.backward()
        clip = self.options.grad_clip or float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(self.policy.parameters(), clip))
        self._check_finite("gradient norm", norm)
        return norm

    def _step(self, loss: Tensor) -> float:
        norm = self.backward(loss)
        self.optimizer.step()
        return norm

    def _check_finite(self, what: str, value: float) -> None:
        """StrategyDiverged (before any update) when `value` is nan or infinite.

        Checking the loss and the gradient before each step keeps the parameters finite:
        Adam's step is bounded by lr (at most 1) whatever the finite gradient."""
        if not math.isfinite(value):
            self.optimizer.zero_grad()
            raise StrategyDiverged(
                f"the controller's {what} is {value:g} at update {self.updates + 1}"
                f"{self._settings()}"
            )

    def _settings(self) -> str:
        opts = self.options
        return (
            f" (lr {opts.lr:g}, entropy_weight {opts.entropy_weight:g}); the rewards told "
            "or these options drive it out of range"
        )

    def _rewards(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> Tensor:
        if len(proposals) != len(rewards):
            raise ValueError(f"{len(proposals)} proposals but {len(rewards)} rewards")
        if not proposals:
            raise ValueError("tell needs at least one proposal")
        return torch.tensor([float(r) for r in rewards])

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        reward = self._rewards(proposals, rewards)
        self._remember(proposals, rewards)
        advantages = self._advantages(reward)
        loss, entropy = self.loss(proposals, advantages)
        norm = self._step(loss)
        self.updates += 1
        return {
            "loss": float(loss.detach()),
            "baseline": float(self.baseline or 0.0),
            "entropy": float(entropy),
            "reward_mean": float(reward.mean()),
            "grad_norm": norm,
        }

    # --- checkpoints ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
            "told": [(list(decisions), depth, r) for (decisions, depth), r in self.told.items()],
            "samples": self.samples,
            "updates": self.updates,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict()`; keys it does not know are ignored."""
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        baseline = state["baseline"]
        self.baseline = None if baseline is None else float(baseline)
        self.told = {
            (tuple(int(d) for d in decisions), None if depth is None else int(depth)): float(r)
            for decisions, depth, r in state.get("told", [])
        }
        self.samples = int(state["samples"])
        self.updates = int(state["updates"])
        self.generator.set_state(state["generator"])


class PPO(Reinforce):
    """The controller trained with PPO's clipped objective (NASNet's choice).

    Options: those of Reinforce, plus
    - clip (0.2, in [1e-6, 1]): the ratio p_new / p_old is clipped to [1 - clip, 1 + clip].
    - epochs (4, 1 to 1000): passes over each told batch.

    p_old is the policy as it stands when `tell` is called, i.e. the one that
    sampled the batch when the loop tells each batch before asking the next.
    """

    name = "ppo"

    def __init__(
        self, space: Space, *, seed: int = 0, clip: float = 0.2, epochs: int = 4, **options: Any
    ) -> None:
        check_option("clip", clip, 1e-6, 1.0)
        check_option("epochs", epochs, 1, 1000, integer=True)
        super().__init__(space, seed=seed, **options)
        self.clip = clip
        self.epochs = epochs

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        reward = self._rewards(proposals, rewards)
        self._remember(proposals, rewards)
        advantages = self._advantages(reward)
        with torch.no_grad():
            old, _ = self._score(proposals)
        stats: dict[str, float] = {}
        for _ in range(self.epochs):
            log_prob, entropy = self._score(proposals)
            ratio = torch.exp(log_prob - old)
            clipped = torch.clamp(ratio, 1 - self.clip, 1 + self.clip)
            objective = torch.minimum(ratio * advantages, clipped * advantages)
            loss = -objective.mean() - self.options.entropy_weight * entropy.mean()
            norm = self._step(loss)
            stats = {
                "loss": float(loss.detach()),
                "entropy": float(entropy.detach().mean()),
                "ratio_max": float(ratio.detach().max()),
                "grad_norm": norm,
            }
        self.updates += 1
        stats.update(baseline=float(self.baseline or 0.0), reward_mean=float(reward.mean()))
        return stats


class ReinforceScreen(Reinforce):
    """REINFORCE whose samples a reward model screens: the `reinforce-screen` strategy.

    Each `ask(n)` draws screen * n samples from the policy (screen 100 unless
    overridden), fits a kernel-ridge reward model (controller/surrogate.py) to the
    rewards of the architectures told so far, and proposes only the n new ones it
    predicts best: only those are paid for. The policy learns from their rewards as
    plain REINFORCE does. The defaults are benchmarks/bench_nb201.py's measured row:
    the paper's lr 6e-4, no tanh bound, screen 100 (screen_warmup 10, screen_ridge
    0.1). The gain over plain REINFORCE is the reward model's, not the policy
    gradient's: in the benchmark's ablation a policy frozen at its initialisation,
    screened alike, scored the same (94.09; benchmarks/README.md). The policy
    supplies varied candidates; the model chooses among them.

    Options: those of Reinforce, every one overridable; screen must stay >= 1.
    """

    name = "reinforce-screen"

    def __init__(self, space: Space, *, seed: int = 0, screen: int = 100, **options: Any) -> None:
        if screen < 1:
            raise ValueError("reinforce-screen needs screen >= 1 (screen 0 is plain reinforce)")
        super().__init__(space, seed=seed, screen=screen, **options)
