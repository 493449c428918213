"""One-shot supernets generated from the nb201 and darts cell spaces.

The crispest check of the design: for random architectures of a space, the
supernet at that architecture's one-hot weights and the architecture's compiled
standalone file, loaded with the supernet's weights through the name map, give
the same outputs, in eval mode and in train mode (batch statistics), and leave
the same batch-norm running statistics behind.
"""

from __future__ import annotations

import ast
import random
import sys
from pathlib import Path

import pytest
import torch
from nasforge.codegen import generate, load_source
from nasforge.codegen.supernet import (
    SupernetSpec,
    generate_supernet,
    one_hot,
    plan_supernet,
    standalone_state_dict,
)
from nasforge.controller.oneshot import supernet_spec
from nasforge.controller.space import SpaceError, load_space
from nasforge.grammar import to_text
from torch import nn

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from regen import SUPERNET_SPACES, supernet_golden  # noqa: E402

ATOL = 1e-5


def _supernet(space_name: str):
    space = load_space(space_name)
    spec = supernet_spec(space)
    return space, spec, load_source(generate_supernet(spec, black=False))


def _randomize(model: nn.Module, seed: int) -> None:
    """Weights and running statistics far from their initial values, so a wrong map shows."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)


def _random_decisions(space, rng: random.Random) -> list[int]:
    """Random decisions; the two inputs of a darts node differ (a supernet has one edge per
    pair of states, as DARTS' derived cells do)."""
    decisions: list[int] = []
    for slot in space.slots():
        count = len(slot.choices)
        if slot.name.endswith(".in1"):
            decisions.append((decisions[-1] + 1 + rng.randrange(count - 1)) % count)
        else:
            decisions.append(rng.randrange(count))
    return decisions


def _max_differences(space_name: str, seed: int) -> dict[str, float]:
    space, spec, module = _supernet(space_name)
    supernet = module.build_model()
    _randomize(supernet, seed)
    arch = space.to_arch(_random_decisions(space, random.Random(seed)))
    weights = torch.tensor(one_hot(spec, arch))
    model = load_source(generate(arch, black=False)).build_model()
    model.load_state_dict(standalone_state_dict(spec, supernet.state_dict(), arch))  # strict
    torch.manual_seed(100 + seed)
    x = torch.randn(4, *module.INPUT_SHAPE)
    found = {}
    for mode in ("eval", "train"):
        supernet.train(mode == "train")
        model.train(mode == "train")
        with torch.no_grad():
            found[mode] = (supernet(x, weights) - model(x)).abs().max().item()
    # Train mode updated the running statistics of the chosen ops alike.
    mapped = standalone_state_dict(spec, supernet.state_dict(), arch)
    found["state"] = max(
        (mapped[k].double() - v.double()).abs().max().item() for k, v in model.state_dict().items()
    )
    return found


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nb201_supernet_at_one_hot_equals_the_compiled_file(seed: int) -> None:
    found = _max_differences("nb201", seed)
    assert max(found.values()) <= ATOL, found


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_darts_supernet_at_one_hot_equals_the_compiled_file(seed: int) -> None:
    found = _max_differences("darts", seed)
    assert max(found.values()) <= ATOL, found


@pytest.mark.parametrize("space", SUPERNET_SPACES)
def test_golden_supernet(space: str) -> None:
    source, golden = supernet_golden(space)
    assert golden.exists(), "run tests/golden/regen.py"
    assert source == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("space", SUPERNET_SPACES)
def test_supernet_file_is_deterministic_formatted_and_imports_only_torch(space: str) -> None:
    import black

    spec = supernet_spec(load_space(space))
    first, second = generate_supernet(spec), generate_supernet(spec)
    assert first == second
    assert black.format_str(first, mode=black.Mode()) == first
    imported = set()
    for node in ast.walk(ast.parse(first)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported == {"torch"}


def test_one_hot_runs_only_the_chosen_ops() -> None:
    space, spec, module = _supernet("nb201")
    supernet = module.build_model().eval()
    arch = space.to_arch(_random_decisions(space, random.Random(3)))
    weights = torch.tensor(one_hot(spec, arch))
    chosen = weights.argmax(1).tolist()
    ran: set[tuple[int, int]] = set()
    cell = supernet.cell_0
    for row, edge in enumerate(plan_supernet(spec).edges):
        for k, op in enumerate(getattr(cell, edge.name)):
            op.register_forward_hook(lambda *_, key=(row, k): ran.add(key))
    with torch.no_grad():
        supernet(torch.randn(2, *module.INPUT_SHAPE), weights)
    assert ran == {(row, k) for row, k in enumerate(chosen)}


def test_mixture_is_the_weighted_sum_of_every_op_and_trains_the_weights() -> None:
    _, _, module = _supernet("nb201")
    supernet = module.build_model().eval()
    _randomize(supernet, 4)
    edge = supernet.cell_0.s2_1
    x = torch.randn(2, 16, 32, 32)
    alphas = torch.randn(len(module.EDGES), len(module.OPS), requires_grad=True)
    weights = torch.softmax(alphas, dim=-1)
    expected = sum(weights[2, k] * op(x) for k, op in enumerate(edge))
    assert torch.allclose(edge(x, weights[2], None), expected, atol=1e-6)
    supernet(torch.randn(2, *module.INPUT_SHAPE), weights).sum().backward()
    assert alphas.grad is not None and bool((alphas.grad != 0).all())


def test_one_hot_choices_reads_each_row() -> None:
    _, _, module = _supernet("nb201")
    rows = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    assert module.one_hot_choices(rows) == [1, None, 2, None]


def test_the_weight_map_refuses_what_the_supernet_cannot_hold() -> None:
    space, spec, _ = _supernet("darts")
    arch = space.to_arch([0] * len(space.slots()))  # both edges of every node read S0
    with pytest.raises(ValueError, match="reads S0 twice"):
        one_hot(spec, arch)
    other = load_space("nb201").to_arch([0] * 6)
    with pytest.raises(ValueError, match="not a cells darts architecture"):
        standalone_state_dict(spec, {}, other)
    nb201_space, nb201_spec, _ = _supernet("nb201")
    bigger = to_text(nb201_space.to_arch([1] * 6)).replace("filters 16", "filters 8")
    with pytest.raises(ValueError, match="header"):
        one_hot(nb201_spec, bigger)


def test_a_string_selects_the_same_weights_as_its_ir() -> None:
    space, spec, _ = _supernet("nb201")
    arch = space.to_arch([3, 1, 0, 4, 2, 3])
    assert one_hot(spec, to_text(arch)) == one_hot(spec, arch)
    assert [row.index(1.0) for row in one_hot(spec, arch)] == [3, 1, 0, 4, 2, 3]


def test_only_add_cell_spaces_of_nb201_and_darts_have_a_supernet() -> None:
    for name in ("nasnet", "digits", "ptb_rnn"):
        with pytest.raises(SpaceError, match="has no supernet"):
            supernet_spec(load_space(name))
    with pytest.raises(ValueError, match="no supernet for the skeleton"):
        generate_supernet(SupernetSpec("x", "nasnet", (3, 8, 8), 2, (), 1, ("skip",)))
    with pytest.raises(ValueError, match="distinct op-table names"):
        generate_supernet(SupernetSpec("x", "nb201", (3, 8, 8), 2, (), 1, ("skip", "zap")))
