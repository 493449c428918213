"""Parameter-server arithmetic (controller/param_server.py), without Ray: sharding, idempotent
pushes, checkpoints, and one replica over shards equal to the local REINFORCE controller."""

from __future__ import annotations

import pytest
import torch
from nasforge.controller.param_server import (
    Layout,
    ReplicaCore,
    dump,
    initial_generator,
    load,
    make_shards,
    split_parameters,
)
from nasforge.controller.reinforce import Reinforce
from nasforge.controller.space import load_space
from search_doubles import hidden_reward

OPTIONS = {"lr": 0.05, "entropy_weight": 0.01}


def _pull(shards):
    weights, versions = {}, []
    for shard in shards:
        version, part, _ = shard.pull()
        weights.update(part)
        versions.append(version)
    return weights, versions


def _distributed_strings(space, shard_count: int, rounds: int, m: int) -> list[str]:
    template = Reinforce(space, seed=7, **OPTIONS)
    shards = make_shards(template, shard_count)
    replica = ReplicaCore(space, seed=7, options=OPTIONS)
    generator = initial_generator(7, 0)
    strings = []
    for round_id in range(rounds):
        weights, versions = _pull(shards)
        proposals, generator = replica.sample(weights, generator, m, None)
        rewards = [hidden_reward(p.arch) for p in proposals]
        gradient = replica.gradient(weights, proposals, rewards, shards[0].baseline)
        for shard, version in zip(shards, versions, strict=True):
            part = {n: g for n, g in gradient.grads.items() if n in shard.params}
            shard.apply(round_id, part, version, gradient.reward_mean)
        strings += [p.arch for p in proposals]
    return strings


@pytest.mark.parametrize("shard_count", [1, 3])
def test_one_replica_over_shards_samples_what_the_local_controller_samples(shard_count):
    space = load_space("nb201")
    local = Reinforce(space, seed=7, **OPTIONS)
    expected = []
    for _ in range(40):
        proposals = local.ask(2)
        local.tell(proposals, [hidden_reward(p.arch) for p in proposals])
        expected += [p.arch for p in proposals]
    assert _distributed_strings(space, shard_count, 40, 2) == expected
    assert len(set(expected)) > 10  # the controller did move


def test_split_parameters_balances_and_covers_every_tensor():
    sizes = {"a": 100, "b": 60, "c": 50, "d": 10}
    groups = split_parameters(sizes, 2)
    assert sorted(n for g in groups for n in g) == ["a", "b", "c", "d"]
    assert [sum(sizes[n] for n in g) for g in groups] == [110, 110]
    with pytest.raises(ValueError, match="only 4 parameter tensors"):
        split_parameters(sizes, 5)


def test_a_repeated_push_is_skipped_and_staleness_counts_versions():
    space = load_space("nb201")
    template = Reinforce(space, seed=0)
    (shard,) = make_shards(template, 1)
    replica = ReplicaCore(space, seed=0, options={})
    version, weights, _ = shard.pull()
    proposals, _ = replica.sample(weights, initial_generator(0, 0), 2, None)
    gradient = replica.gradient(weights, proposals, [0.5, 0.9], None)
    first = shard.apply(1, gradient.grads, version, gradient.reward_mean)
    assert shard.baseline == pytest.approx(0.7)  # the first batch's mean starts the average
    after = {n: p.detach().clone() for n, p in shard.params.items()}
    again = shard.apply(1, gradient.grads, version, gradient.reward_mean)
    assert (first.version, first.staleness, first.applied) == (1, 0, True)
    assert (again.version, again.applied) == (1, False)
    assert all(torch.equal(after[n], p) for n, p in shard.params.items())
    stale = shard.apply(2, gradient.grads, version, 0.3)
    assert (stale.version, stale.staleness) == (2, 1)
    assert shard.baseline == pytest.approx(0.95 * 0.7 + 0.05 * 0.3)


def test_a_shard_checkpoint_restores_weights_moments_version_and_applied_rounds():
    space = load_space("nb201")
    template = Reinforce(space, seed=0)
    shard, fresh = make_shards(template, 1)[0], make_shards(template, 1)[0]
    replica = ReplicaCore(space, seed=0, options={})
    version, weights, _ = shard.pull()
    proposals, _ = replica.sample(weights, initial_generator(0, 0), 3, None)
    gradient = replica.gradient(weights, proposals, [0.1, 0.2, 0.3], None)
    shard.apply(4, gradient.grads, version, gradient.reward_mean)
    fresh.load_state_dict(load(dump(shard.state_dict())))
    assert (fresh.version, fresh.applied, fresh.baseline) == (1, {4}, shard.baseline)
    assert not fresh.apply(4, gradient.grads, 0, 0.0).applied
    shard.apply(5, gradient.grads, 1, 0.2)
    fresh.apply(5, gradient.grads, 1, 0.2)
    assert all(torch.equal(shard.params[n], fresh.params[n]) for n in shard.params)


def test_replicas_other_than_the_first_draw_other_strings():
    assert not torch.equal(initial_generator(3, 0), initial_generator(3, 1))
    assert torch.equal(initial_generator(3, 0), torch.Generator().manual_seed(3).get_state())


def test_a_layout_packs_named_tensors_and_unpacks_any_subset_of_them():
    tensors = {"a": torch.randn(2, 3), "b": torch.randn(4), "c": torch.randn(1, 1, 2)}
    layout = Layout.of(tensors)
    packed = layout.pack(tensors)
    assert packed.shape == (12,) and packed.dtype.name == "float32"
    assert all(torch.equal(layout.unpack(packed)[n], t) for n, t in tensors.items())
    some = layout.unpack(layout.pack({"a": tensors["a"], "c": tensors["c"]}), ["a", "c"])
    assert sorted(some) == ["a", "c"] and torch.equal(some["c"], tensors["c"])
    with pytest.raises(ValueError, match="a packed vector of 12 values for 6"):
        layout.unpack(packed, ["a"])
