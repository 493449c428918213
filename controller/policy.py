"""The controller's policy: an LSTM that writes a space's decision sequence (NAS paper §3.2-3.3).

A 2-layer LSTM (35 hidden units in the paper) takes one step per decision.
A choice slot is a softmax over its choices, read from the LSTM's output; the
choice taken is embedded and becomes the next step's input. cnn spaces add
one step at each layer's start, the paper's anchor point: its output h_i is
layer i's key, and every earlier layer j feeds layer i with probability
sigmoid(v^T tanh(W_prev h_j + W_curr h_i)) (§3.3). The input after an anchor
point is the mean of the chosen layers' keys, so the rest of the layer is
conditioned on what it reads.

Every slot position has its own softmax weights and embeddings. The slots of a
smaller depth are a prefix of the full depth's (see Space.slots), so one set
of weights serves the whole depth schedule.

The same code samples (decisions drawn from a torch.Generator) and scores
(decisions given): a batch of m sequences runs as one batch through the LSTM,
so sampling 10,000 strings is a few hundred small matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

from .space import Space


@dataclass(frozen=True)
class Step:
    """One LSTM step of a depth's program."""

    kind: str  # "choice": one slot; "anchor": a layer's anchor point
    slot: int = 0  # choice: the slot's index in the sequence
    offset: int = 0  # choice: where its choices start in the packed head/embedding tables
    count: int = 0  # choice: how many choices
    layer: int = 0  # anchor: the layer number
    slots: tuple[int, ...] = ()  # anchor: the indices of its anchor slots ...
    sources: tuple[int, ...] = ()  # ... and the layer each one asks about


@dataclass(frozen=True)
class Rollout:
    """Decisions of a batch with their log-probabilities and entropies (one per sequence)."""

    decisions: Tensor  # [batch, slots], int64
    log_prob: Tensor  # [batch]
    entropy: Tensor  # [batch]
    # P(anchor slot taken), [batch, anchor slots] in slot order (ENAS' skip penalty);
    # None for a space without anchor slots.
    anchor_prob: Tensor | None = None


class LSTMPolicy(nn.Module):
    """The LSTM controller over one space.

    `temperature` divides the logits; `tanh_constant`, when set, squashes them to
    c * tanh(logits / c) (as ENAS does) so no choice's probability saturates early.
    """

    def __init__(
        self,
        space: Space,
        *,
        hidden: int = 35,
        layers: int = 2,
        init_range: float = 0.08,
        temperature: float = 1.0,
        tanh_constant: float | None = None,
    ) -> None:
        super().__init__()
        self.space = space
        self.hidden = hidden
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        full = space.slots()
        self.offsets: list[int] = []
        total = 0
        for slot in full:
            self.offsets.append(total)
            total += len(slot.choices) if slot.kind == "choice" else 0
        self.cells = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(layers))
        self.start = nn.Parameter(torch.empty(hidden))  # the first step's input
        self.no_anchor = nn.Parameter(torch.empty(hidden))  # input after reading no layer
        self.head_weight = nn.Parameter(torch.empty(max(total, 1), hidden))
        self.head_bias = nn.Parameter(torch.empty(max(total, 1)))
        self.embedding = nn.Parameter(torch.empty(max(total, 1), hidden))
        self.w_prev = nn.Linear(hidden, hidden, bias=False)
        self.w_curr = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Parameter(torch.empty(hidden))
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -init_range, init_range)
        self._programs: dict[int | None, tuple[Step, ...]] = {}

    # --- the program of a depth ---------------------------------------------------------

    def program(self, depth: int | None) -> tuple[Step, ...]:
        """The LSTM steps that write `space.slots(depth)`, in order."""
        depth = self.space.check_depth(depth)
        if depth not in self._programs:
            self._programs[depth] = self._compile(depth)
        return self._programs[depth]

    def _compile(self, depth: int | None) -> tuple[Step, ...]:
        slots = self.space.slots(depth)
        full = self.space.slots()
        if [s.name for s in full[: len(slots)]] != [s.name for s in slots]:
            raise ValueError(f"the slots at depth {depth} are not a prefix of the full depth's")
        starts = self.space.layer_starts(depth)
        steps: list[Step] = []
        for position in range(len(slots) + 1):
            for layer, start in enumerate(starts, start=1):
                if start == position:
                    mine = [
                        i for i, s in enumerate(slots) if s.kind == "anchor" and s.target == layer
                    ]
                    sources = tuple(int(slots[i].source or 0) for i in mine)
                    steps.append(Step("anchor", layer=layer, slots=tuple(mine), sources=sources))
            if position == len(slots):
                break
            slot = slots[position]
            if slot.kind == "anchor":
                if slot.target is None or slot.target > len(starts):
                    raise ValueError(f"anchor slot {slot.name} has no anchor point")
                continue
            steps.append(Step("choice", position, self.offsets[position], len(slot.choices)))
        return tuple(steps)

    # --- running it -------------------------------------------------------------------

    def sample(self, n: int, depth: int | None, generator: torch.Generator) -> Rollout:
        """Draw `n` decision sequences (no gradient)."""
        with torch.no_grad():
            return self._run(n, depth, None, generator)

    def score(self, decisions: Tensor, depth: int | None) -> Rollout:
        """Log-probabilities and entropies of given decisions (with gradient)."""
        if decisions.dim() != 2:
            raise ValueError("decisions must be a [batch, slots] tensor")
        return self._run(decisions.shape[0], depth, decisions.long(), None)

    def _logits(self, raw: Tensor) -> Tensor:
        if self.tanh_constant is not None:
            raw = self.tanh_constant * torch.tanh(raw / self.tanh_constant)
        return raw if self.temperature == 1.0 else raw / self.temperature

    def _run(
        self,
        batch: int,
        depth: int | None,
        given: Tensor | None,
        generator: torch.Generator | None,
    ) -> Rollout:
        steps = self.program(depth)
        width = len(self.space.slots(depth))
        if given is not None and given.shape[1] != width:
            raise ValueError(f"expected {width} decisions per sequence, got {given.shape[1]}")
        zeros = self.start.new_zeros(batch, self.hidden)
        state = [(zeros, zeros) for _ in self.cells]
        x = self.start.expand(batch, self.hidden)
        columns: dict[int, Tensor] = {}
        log_prob = self.start.new_zeros(batch)
        entropy = self.start.new_zeros(batch)
        anchor_probs: dict[int, Tensor] = {}  # anchor slot -> P(taken)
        keys: dict[int, Tensor] = {}  # layer -> W_prev h_j
        outputs: dict[int, Tensor] = {}  # layer -> h_j
        for step in steps:
            for k, cell in enumerate(self.cells):
                h, c = cell(x, state[k])
                state[k] = (h, c)
                x = h
            out = x
            if step.kind == "choice":
                lo, hi = step.offset, step.offset + step.count
                raw = functional.linear(out, self.head_weight[lo:hi], self.head_bias[lo:hi])
                log_p = torch.log_softmax(self._logits(raw), dim=-1)
                p = log_p.exp()
                if given is None:
                    assert generator is not None
                    u = torch.rand(batch, 1, generator=generator)
                    cdf = p.cumsum(-1)
                    choice = (cdf < u).sum(-1).clamp(max=step.count - 1)
                else:
                    choice = given[:, step.slot]
                columns[step.slot] = choice
                log_prob = log_prob + log_p.gather(1, choice[:, None]).squeeze(1)
                entropy = entropy - (p * log_p).sum(-1)
                x = self.embedding[lo + choice]
                continue
            # An anchor point: this layer's key, then one sigmoid per earlier layer.
            outputs[step.layer] = out
            keys[step.layer] = self.w_prev(out)
            if not step.slots:
                x = self.no_anchor.expand(batch, self.hidden)
                continue
            query = self.w_curr(out)
            prev = torch.stack([keys[j] for j in step.sources], dim=1)  # [batch, n, hidden]
            raw = torch.tanh(prev + query[:, None, :]) @ self.v  # [batch, n]
            logits = self._logits(raw)
            if given is None:
                assert generator is not None
                u = torch.rand(batch, len(step.slots), generator=generator)
                taken = (u < torch.sigmoid(logits)).long()
            else:
                taken = given[:, list(step.slots)]
            for i, slot in enumerate(step.slots):
                columns[slot] = taken[:, i]
                anchor_probs[slot] = torch.sigmoid(logits[:, i])
            on = taken.to(logits.dtype)
            log_on, log_off = functional.logsigmoid(logits), functional.logsigmoid(-logits)
            log_prob = log_prob + (on * log_on + (1 - on) * log_off).sum(-1)
            entropy = entropy - (log_on.exp() * log_on + log_off.exp() * log_off).sum(-1)
            read = torch.stack([outputs[j] for j in step.sources], dim=1)
            count = on.sum(-1, keepdim=True)
            mean = (on[:, :, None] * read).sum(1) / count.clamp(min=1)
            x = torch.where(count > 0, mean, self.no_anchor.expand(batch, self.hidden))
        if given is not None:
            decisions = given
        elif width:
            decisions = torch.stack([columns[i] for i in range(width)], dim=1)
        else:
            decisions = torch.zeros(batch, 0, dtype=torch.long)
        anchor_prob = (
            torch.stack([anchor_probs[i] for i in sorted(anchor_probs)], dim=1)
            if anchor_probs
            else None
        )
        return Rollout(decisions, log_prob, entropy, anchor_prob)
