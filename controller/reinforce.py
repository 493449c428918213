"""REINFORCE and PPO over the LSTM policy: the search strategies that learn.

REINFORCE (Williams 1992, as the NAS paper uses it, §3.2): after the rewards
of m proposals come back, one gradient step on
    -mean_k (R_k - b) log p(a_k) - entropy_weight * mean_k H_k,
where b is an exponential moving average of earlier batches' mean rewards
(the first batch's mean starts it). PPO (Schulman et al. 2017, as NASNet
uses it): a few epochs of the clipped objective over the same batch.

All randomness comes from the strategy's own torch.Generator (seeded by
`seed`), never from global RNGs, so `state_dict()` (weights, optimizer,
baseline, schedule position, sample count, generator state, and what the
options keep: the advantages' mean square, top_k's queue, the architectures
told so far) restores the exact sequence of proposals.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .policy import LSTMPolicy, Rollout
from .space import Space
from .strategy import Proposal, Strategy
from .surrogate import KernelRidge


class Reinforce(Strategy):
    """The NAS paper's controller: an LSTM policy trained with REINFORCE.

    Options (all keyword arguments of the constructor; the batch size m is
    `ask(n)`'s n, one update per `tell`):

    - lr (6e-4): Adam learning rate.
    - hidden (35), layers (2), init_range (0.08): the LSTM's size and its
      uniform initialisation range.
    - entropy_weight (1e-4): weight of the entropy bonus (higher explores more).
    - baseline_decay (0.95): b <- decay * b + (1 - decay) * mean reward of a tell.
    - advantage_norm (False): divide the advantages R - b by their standard
      deviation within the batch (scale-free rewards).
    - advantage_rms_decay (None): when set to d, divide the advantages by the root of
      a moving mean square of earlier advantages, s <- d * s + (1 - d) * mean (R - b)^2
      (this batch included; `tell` advances s). Adam alone divides by the mean square
      gradient since the start, so the small reward differences among good cells late
      in a search give ever smaller steps; this keeps the step size steady instead.
    - top_k (0), top_k_weight (1.0): priority-queue training (Abolafia et al. 2018,
      "Neural program synthesis with priority queue training"): `tell` keeps the
      top_k best distinct proposals told so far, and `loss` adds
      -top_k_weight * mean log p(a) over them, pulling the policy towards the best
      architectures found, whose neighbours it then samples (the objective of a search
      is the best reward it finds, not the mean). 0 turns it off.
    - resample_repeats (0): sampling (nearly) without replacement. `ask` re-draws, up to
      this many times, each sampled architecture that the controller has already been
      told about or that an earlier proposal of the same ask already is. A search pays
      for an architecture once (a repeat reuses its result), so a sharpened policy that
      keeps re-proposing the cells it paid for learns nothing new from them but
      re-reinforces them; with this option each step proposes an unseen cell while
      unseen ones stay likely enough to be drawn. `tell` records what it is told (the
      set is in `state_dict`). Re-draws use the controller's generator, so a run stays
      deterministic given its seed. 0 turns it off.
    - reward_rank (False): learn from each reward's rank instead of its value: a told
      reward R becomes its mid-rank quantile (#{r < R} + #{r <= R}) / 2N among the
      rewards of the N distinct architectures told so far (this batch's included), a
      number in (0, 1) that the baseline and the advantages then use. Raw rewards
      weigh a bad cell's loss (a valid12 of 10% against a baseline of 80%) hundreds of
      times more than a small gain among the good cells late in a search; ranks weigh
      every place in the order alike, which stretches the top of the reward range.
    - screen (0), screen_warmup (10), screen_ridge (0.1), screen_memory (1000): screen
      candidates with a reward model before paying for them (as PNAS, Liu et al. 2018,
      ranks candidates with a predictor). `ask(n)` samples screen * n candidates from
      the policy, fits kernel ridge regression (controller/surrogate.py, regulariser
      screen_ridge) to the rewards of the last screen_memory distinct architectures
      told at that depth, and proposes the n distinct candidates not told yet with the
      highest predicted rewards (then, if too few are new, the remaining samples in
      their drawn order). Until screen_warmup distinct architectures have been told,
      it proposes the first n samples as usual. The policy still learns from the
      rewards of what it proposes (its samples are the pool the model chooses from),
      but under NAS-Bench-201's budget (about 95 cells) the gain is the model's: a
      frozen policy screened alike does as well, and a policy that concentrates (lr
      0.01) does worse (benchmarks/README.md). 0 turns it off; it excludes
      resample_repeats.
    - screen_imagine (0.0): with screen, also learn from the model (Dyna, Sutton 1990):
      each screened ask first takes one policy-gradient step, weighted by this value,
      on the predicted rewards of all its new candidates (standardised among them), so
      the policy learns from a prediction for every sample it drew, not only from the
      rewards paid for. `last_log_probs` are then those the samples were drawn with.
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

    def __init__(
        self,
        space: Space,
        *,
        seed: int = 0,
        lr: float = 6e-4,
        hidden: int = 35,
        layers: int = 2,
        init_range: float = 0.08,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.95,
        advantage_norm: bool = False,
        advantage_rms_decay: float | None = None,
        top_k: int = 0,
        top_k_weight: float = 1.0,
        resample_repeats: int = 0,
        reward_rank: bool = False,
        screen: int = 0,
        screen_warmup: int = 10,
        screen_ridge: float = 0.1,
        screen_memory: int = 1000,
        screen_imagine: float = 0.0,
        temperature: float = 1.0,
        tanh_constant: float | None = None,
        grad_clip: float | None = None,
        depth: int | None = None,
        depth_start: int | None = None,
        depth_step: int | None = None,
        depth_every: int | None = None,
        max_depth: int | None = None,
    ) -> None:
        schedule = {
            "start": depth_start,
            "step": depth_step,
            "every": depth_every,
            "max_depth": max_depth,
        }
        if any(v is not None for v in schedule.values()):
            space = space.with_schedule(**schedule)
        self.space = space
        self.fixed_depth = space.check_depth(depth) if depth is not None else None
        # The weights are drawn from a generator of their own, so building a
        # controller neither reads nor disturbs torch's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.policy = LSTMPolicy(
                space,
                hidden=hidden,
                layers=layers,
                init_range=init_range,
                temperature=temperature,
                tanh_constant=tanh_constant,
            )
        # foreach: one fused update for all tensors (the controller is tiny; per-tensor
        # Python overhead is most of an update's cost).
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=lr, foreach=True)
        self.generator = torch.Generator().manual_seed(seed)
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.advantage_norm = advantage_norm
        if advantage_rms_decay is not None and not 0 <= advantage_rms_decay < 1:
            raise ValueError("advantage_rms_decay must be in [0, 1)")
        self.advantage_rms_decay = advantage_rms_decay
        self.advantage_ms: float | None = None  # the moving mean square of R - b
        if top_k < 0:
            raise ValueError("top_k must be >= 0")
        self.top_k = top_k
        self.top_k_weight = top_k_weight
        # top_k's queue: (reward, decisions, depth) of the best distinct proposals, best first
        self.top: list[tuple[float, tuple[int, ...], int | None]] = []
        if resample_repeats < 0:
            raise ValueError("resample_repeats must be >= 0")
        self.resample_repeats = resample_repeats
        self.reward_rank = bool(reward_rank)
        if screen < 0 or screen_warmup < 1 or screen_memory < 1 or screen_imagine < 0:
            raise ValueError(
                "screen and screen_imagine must be >= 0, screen_warmup and screen_memory >= 1"
            )
        if screen and resample_repeats:
            raise ValueError("screen and resample_repeats exclude each other")
        self.screen = screen
        self.screen_warmup = screen_warmup
        self.screen_memory = screen_memory
        self.screen_imagine = screen_imagine
        self.surrogate = KernelRidge(screen_ridge)  # checks screen_ridge > 0
        # resample_repeats', reward_rank's and screen's memory: (decisions, depth) -> reward
        # of every architecture told so far (the first reward told for it), and
        # reward_rank's sorted rewards of them
        self.told: dict[tuple[tuple[int, ...], int | None], float] = {}
        self.ranked: list[float] = []
        self.grad_clip = grad_clip
        self.baseline: float | None = None
        self.samples = 0  # proposals handed out: the depth schedule's clock
        self.updates = 0
        self.last_log_probs: Tensor | None = None  # of the latest ask, for checks and logs

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
        rollout = self.policy.sample(n * max(self.screen, 1), depth, self.generator)
        if self.screen:
            rollout = self._screened(rollout, n, depth)
        if self.resample_repeats:
            rollout = self._redraw_repeats(rollout, depth)
        self.samples += n
        self.last_log_probs = rollout.log_prob
        rows = rollout.decisions.tolist()
        return [Proposal(self.space.to_text(row, depth), tuple(row), depth) for row in rows]

    def _redraw_repeats(self, rollout: Rollout, depth: int | None) -> Rollout:
        """resample_repeats: re-draw the rows already told (or earlier in this batch)."""
        rows = rollout.decisions.tolist()
        log_prob = rollout.log_prob.clone()
        entropy = rollout.entropy.clone()
        taken: set[tuple[int, ...]] = set()
        for i, row in enumerate(rows):
            key = tuple(row)
            tries = 0
            while tries < self.resample_repeats and (key in taken or (key, depth) in self.told):
                again = self.policy.sample(1, depth, self.generator)
                key = tuple(again.decisions[0].tolist())
                log_prob[i], entropy[i] = again.log_prob[0], again.entropy[0]
                tries += 1
            rows[i] = list(key)
            taken.add(key)
        return Rollout(torch.tensor(rows, dtype=torch.long), log_prob, entropy)

    def _screened(self, candidates: Rollout, n: int, depth: int | None) -> Rollout:
        """screen: the n candidates to pay for, best predicted first among the new ones."""
        told = [(key[0], r) for key, r in self.told.items() if key[1] == depth]
        told = told[-self.screen_memory :]
        if len(told) < self.screen_warmup:
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
                if self.screen_imagine and len(index) > 1:
                    self._imagine(candidates.decisions[index], predicted, depth)
                best_first = torch.argsort(predicted, descending=True, stable=True)
                chosen = index[best_first[:n]].tolist()
            taken = set(chosen)
            chosen += [i for i in range(len(rows)) if i not in taken][: n - len(chosen)]
        index = torch.tensor(chosen)
        return Rollout(
            candidates.decisions[index], candidates.log_prob[index], candidates.entropy[index]
        )

    def _imagine(self, decisions: Tensor, predicted: Tensor, depth: int | None) -> None:
        """screen_imagine: one policy-gradient step on the model's predicted rewards of the
        new candidates, standardised among them."""
        advantages = (predicted - predicted.mean()) / (predicted.std() + 1e-12)
        log_prob = self.policy.score(decisions, depth).log_prob
        self._step(-self.screen_imagine * (advantages.to(log_prob.dtype) * log_prob).mean())

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
        raw = rewards - (float(rewards.mean()) if baseline is None else baseline)
        advantages = raw
        if self.advantage_norm and len(rewards) > 1:
            advantages = advantages / (rewards.std() + 1e-8)
        if self.advantage_rms_decay is not None:
            advantages = advantages / (self._next_advantage_ms(raw) ** 0.5 + 1e-8)
        return advantages

    def _next_advantage_ms(self, advantages: Tensor) -> float:
        """advantage_rms_decay's moving mean square after a batch's advantages."""
        assert self.advantage_rms_decay is not None
        mean_square = float((advantages**2).mean())
        if not self.advantage_ms:  # none yet (or only the first batch's zero R - mean R)
            return mean_square
        decay = self.advantage_rms_decay
        return decay * self.advantage_ms + (1 - decay) * mean_square

    def next_baseline(self, baseline: float | None, rewards: Tensor) -> float:
        """The moving average after a batch: decay * b + (1 - decay) * mean reward."""
        mean = float(rewards.mean())
        if baseline is None:
            baseline = mean
        return self.baseline_decay * baseline + (1 - self.baseline_decay) * mean

    def _advantages(self, rewards: Tensor) -> Tensor:
        advantages = self.advantages(rewards, self.baseline)
        if self.advantage_rms_decay is not None:
            raw = rewards - (float(rewards.mean()) if self.baseline is None else self.baseline)
            self.advantage_ms = self._next_advantage_ms(raw)
        self.baseline = self.next_baseline(self.baseline, rewards)
        return advantages

    def loss(self, proposals: Sequence[Proposal], advantages: Tensor) -> tuple[Tensor, Tensor]:
        """The REINFORCE loss of a batch (with gradient) and the batch's mean entropy.

        With top_k, plus top_k_weight times the queue's mean negative log-probability."""
        queue = self._queue() if self.top_k else []
        # The batch and the queue through the LSTM in one pass (most of a step's cost).
        log_prob, entropy = self._score([*proposals, *queue])
        n = len(proposals)
        loss = -(advantages * log_prob[:n]).mean() - self.entropy_weight * entropy[:n].mean()
        if queue:
            loss = loss - self.top_k_weight * log_prob[n:].mean()
        return loss, entropy[:n].detach().mean()

    def remember(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> None:
        """Note told proposals: the architectures and rewards resample_repeats and
        reward_rank keep, and top_k's queue (no-ops when those are off); `tell` calls it."""
        if self.resample_repeats or self.reward_rank or self.screen:
            for proposal, reward in zip(proposals, rewards, strict=True):
                key = (tuple(proposal.decisions), proposal.depth)
                if key not in self.told:
                    # as float32, the precision `utilities` compares the told rewards in
                    value = float(torch.tensor(float(reward), dtype=torch.float32))
                    self.told[key] = value
                    bisect.insort(self.ranked, value)
        if not self.top_k:
            return
        best: dict[tuple[tuple[int, ...], int | None], float] = {
            (decisions, depth): reward for reward, decisions, depth in self.top
        }
        for proposal, reward in zip(proposals, rewards, strict=True):
            key = (tuple(proposal.decisions), proposal.depth)
            best[key] = max(float(reward), best.get(key, float("-inf")))
        ranked = sorted(best.items(), key=lambda item: -item[1])  # stable: earlier first on ties
        self.top = [(reward, key[0], key[1]) for key, reward in ranked[: self.top_k]]

    def utilities(self, rewards: Tensor) -> Tensor:
        """What the advantages are computed from: the rewards, or with reward_rank their
        mid-rank quantiles among the distinct architectures' rewards told so far."""
        if not self.reward_rank:
            return rewards
        n = len(self.ranked)
        return torch.tensor(
            [
                (bisect.bisect_left(self.ranked, r) + bisect.bisect_right(self.ranked, r)) / (2 * n)
                for r in rewards.tolist()
            ]
        )

    def _queue(self) -> list[Proposal]:
        return [Proposal("", decisions, depth) for _, decisions, depth in self.top]

    def _top_k_loss(self) -> Tensor:
        log_prob, _ = self._score(self._queue())
        return -self.top_k_weight * log_prob.mean()

    def backward(self, loss: Tensor) -> float:
        """Fill the policy's .grad with d loss (clipped to grad_clip); the norm before clipping.

        Split from the optimizer step so a distributed replica can push the gradient
        to parameter servers instead (runtime/ray_search.py)."""
        self.optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            self.policy.parameters(), self.grad_clip if self.grad_clip else float("inf")
        )
        return float(norm)

    def _step(self, loss: Tensor) -> float:
        norm = self.backward(loss)
        self.optimizer.step()
        return norm

    def _rewards(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> Tensor:
        if len(proposals) != len(rewards):
            raise ValueError(f"{len(proposals)} proposals but {len(rewards)} rewards")
        if not proposals:
            raise ValueError("tell needs at least one proposal")
        return torch.tensor([float(r) for r in rewards])

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        reward = self._rewards(proposals, rewards)
        self.remember(proposals, rewards)
        advantages = self._advantages(self.utilities(reward))
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
            "advantage_ms": self.advantage_ms,
            "top": [(reward, list(decisions), depth) for reward, decisions, depth in self.top],
            "told": [(list(decisions), depth, r) for (decisions, depth), r in self.told.items()],
            "samples": self.samples,
            "updates": self.updates,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        baseline = state["baseline"]
        self.baseline = None if baseline is None else float(baseline)
        advantage_ms = state.get("advantage_ms")
        self.advantage_ms = None if advantage_ms is None else float(advantage_ms)
        self.top = [
            (float(reward), tuple(int(d) for d in decisions), None if depth is None else int(depth))
            for reward, decisions, depth in state.get("top", [])
        ]
        self.told = {
            (tuple(int(d) for d in decisions), None if depth is None else int(depth)): float(r)
            for decisions, depth, r in state.get("told", [])
        }
        self.ranked = sorted(self.told.values())
        self.samples = int(state["samples"])
        self.updates = int(state["updates"])
        self.generator.set_state(state["generator"])


class PPO(Reinforce):
    """The controller trained with PPO's clipped objective (NASNet's choice).

    Options: those of Reinforce, plus
    - clip (0.2): the ratio p_new / p_old is clipped to [1 - clip, 1 + clip].
    - epochs (4): passes over each told batch.

    p_old is the policy as it stands when `tell` is called, i.e. the one that
    sampled the batch when the loop tells each batch before asking the next.
    """

    name = "ppo"

    def __init__(
        self, space: Space, *, seed: int = 0, clip: float = 0.2, epochs: int = 4, **options: Any
    ) -> None:
        super().__init__(space, seed=seed, **options)
        if clip <= 0 or epochs < 1:
            raise ValueError("PPO needs clip > 0 and epochs >= 1")
        self.clip = clip
        self.epochs = epochs

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        reward = self._rewards(proposals, rewards)
        self.remember(proposals, rewards)
        advantages = self._advantages(self.utilities(reward))
        with torch.no_grad():
            old, _ = self._score(proposals)
        stats: dict[str, float] = {}
        for _ in range(self.epochs):
            log_prob, entropy = self._score(proposals)
            ratio = torch.exp(log_prob - old)
            clipped = torch.clamp(ratio, 1 - self.clip, 1 + self.clip)
            objective = torch.minimum(ratio * advantages, clipped * advantages)
            loss = -objective.mean() - self.entropy_weight * entropy.mean()
            if self.top_k and self.top:
                loss = loss + self._top_k_loss()
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
