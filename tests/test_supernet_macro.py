"""The generated supernet of ENAS's macro space (controller/spaces/enas_macro.toml).

As for the cell supernets: for random architectures of the space, the supernet at the
architecture's one-hot op rows and 0/1 anchor rows, and the compiled standalone file
loaded with the supernet's weights (sliced to the layers each layer reads), give the
same outputs in eval and train mode and leave the same batch-norm running statistics;
only the chosen ops run.
"""

from __future__ import annotations

import random

import pytest
import torch
from nasforge.codegen import generate, load_source
from nasforge.codegen.supernet import generate_supernet, one_hot, standalone_state_dict
from nasforge.codegen.supernet_macro import MacroSupernetSpec
from nasforge.controller.oneshot import supernet_spec
from nasforge.controller.reinforce import Reinforce
from nasforge.controller.space import SpaceError, load_space
from nasforge.grammar import parse, to_text
from torch import nn

ATOL = 1e-5


def _macro(input_shape=(3, 16, 16)):
    """The macro space on a smaller image (the equivalence does not depend on its size)."""
    space = load_space("enas_macro").with_data(input_shape, 10)
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


def _random_arch(space, seed: int):
    rng = random.Random(seed)
    return space.to_arch([rng.randrange(len(slot.choices)) for slot in space.slots()])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_macro_supernet_at_one_hot_equals_the_compiled_file(seed: int) -> None:
    space, spec, module = _macro()
    supernet = module.build_model()
    _randomize(supernet, seed)
    arch = _random_arch(space, seed)
    rows = torch.tensor(one_hot(spec, arch))
    model = load_source(generate(arch, black=False)).build_model()
    model.load_state_dict(standalone_state_dict(spec, supernet.state_dict(), arch))  # strict
    torch.manual_seed(100 + seed)
    x = torch.randn(4, *module.INPUT_SHAPE)
    found = {}
    for mode in ("eval", "train"):
        supernet.train(mode == "train")
        model.train(mode == "train")
        with torch.no_grad():
            found[mode] = (supernet(x, rows) - model(x)).abs().max().item()
    mapped = standalone_state_dict(spec, supernet.state_dict(), arch)
    found["state"] = max(
        (mapped[k].double() - v.double()).abs().max().item() for k, v in model.state_dict().items()
    )
    assert max(found.values()) <= ATOL, (found, to_text(arch, one_line=True))


def test_the_map_slices_the_blocks_of_the_layers_read() -> None:
    space, spec, module = _macro((1, 8, 8))
    supernet = module.build_model()
    text = to_text(_random_arch(space, 0), one_line=True)
    # L4 reads L1 and L3 (not L2) with a sep 5x5: its depthwise filters and pointwise
    # inputs are the blocks 0 and 2 of the widest input L1 L2 L3.
    layers = text.split("; ")
    layers[4] = "L4: sep 5x5 n36 <- L1 L3"
    arch = parse("; ".join(layers))
    state = supernet.state_dict()
    mapped = standalone_state_dict(spec, state, arch)
    blocks = [*range(0, 36), *range(72, 108)]
    assert torch.equal(mapped["l4.0.weight"], state["l4.3.0.weight"][blocks])
    assert torch.equal(mapped["l4.1.weight"], state["l4.3.1.weight"][:, blocks])
    assert torch.equal(mapped["l4.2.running_var"], state["l4.3.2.running_var"])
    assert not any(key.startswith("l4.3.") for key in mapped)


def test_one_hot_runs_only_the_chosen_ops() -> None:
    space, spec, module = _macro((1, 8, 8))
    supernet = module.build_model().eval()
    arch = _random_arch(space, 5)
    rows = torch.tensor(one_hot(spec, arch))
    ran: set[tuple[int, int]] = set()
    for i in range(spec.layers):
        for k, op in enumerate(getattr(supernet, f"l{i + 1}")):
            op.register_forward_hook(lambda *_, key=(i, k): ran.add(key))
    with torch.no_grad():
        supernet(torch.randn(2, *module.INPUT_SHAPE), rows)
    chosen = rows[:, : len(spec.ops)].argmax(1).tolist()
    assert ran == set(enumerate(chosen))


def test_one_hot_rows_are_the_op_then_the_layers_read() -> None:
    space, spec, _ = _macro()
    arch = _random_arch(space, 6)
    rows = one_hot(spec, arch)
    assert one_hot(spec, to_text(arch)) == rows
    n = len(spec.ops)
    for layer, row in zip(arch.layers, rows, strict=True):
        op = f"{layer.kind} {layer.kernel[0]}x{layer.kernel[1]}"
        assert row[:n] == [float(o == op) for o in spec.ops]
        reads = {ref.index for ref in layer.inputs}
        assert row[n:] == [float(j in reads) for j in range(1, spec.layers + 1)]


def test_a_mixed_op_row_is_the_weighted_sum_and_trains_the_weights() -> None:
    space, spec, module = _macro((1, 8, 8))
    supernet = module.build_model().eval()
    _randomize(supernet, 7)
    rows = torch.tensor(one_hot(spec, _random_arch(space, 7)))
    alphas = torch.randn(spec.layers, len(spec.ops), requires_grad=True)
    weights = torch.softmax(alphas, dim=-1)
    arch = torch.cat([weights, rows[:, len(spec.ops) :]], dim=1)
    x = torch.randn(2, 36, 8, 8)
    layer = supernet.l2
    expected = sum(weights[1, k] * op(x) for k, op in enumerate(layer))
    assert torch.allclose(layer([x], [1.0], weights[1], None), expected, atol=1e-6)
    supernet(torch.randn(2, *module.INPUT_SHAPE), arch).sum().backward()
    assert alphas.grad is not None and bool((alphas.grad != 0).all())


def test_sampled_children_run_through_the_supernet() -> None:
    space, spec, module = _macro((1, 8, 8))
    supernet = module.build_model()
    controller = Reinforce(space, seed=1)
    for proposal in controller.ask(8):
        assert space.decisions_of(parse(proposal.arch)) == (proposal.decisions, 12)
        logits = supernet(torch.randn(2, 1, 8, 8), torch.tensor(one_hot(spec, proposal.arch)))
        assert logits.shape == (2, 10)


def test_the_map_refuses_what_the_supernet_cannot_hold() -> None:
    space, spec, _ = _macro()
    text = to_text(_random_arch(space, 8), one_line=True)
    cases = {
        text.replace("classes 10", "classes 9"): "header",
        text.replace("L12: ", "L12: ", 1).rsplit("; L12", 1)[0]: "11 layers, not 12",
        text.replace("L2: conv 3x3 n36", "L2: conv 7x7 n36")
        .replace("L2: sep 3x3 n36", "L2: conv 7x7 n36")
        .replace("L2: conv 5x5 n36", "L2: conv 7x7 n36")
        .replace("L2: sep 5x5 n36", "L2: conv 7x7 n36")
        .replace("L2: avgpool 3x3 n36", "L2: conv 7x7 n36")
        .replace("L2: maxpool 3x3 n36", "L2: conv 7x7 n36"): "not one of the supernet's",
    }
    for bad, message in cases.items():
        with pytest.raises(ValueError, match=message):
            one_hot(spec, bad)
    reads_l2_not = "; ".join(
        part.replace("<- L1 L2", "<- L1") if part.startswith("L3:") else part
        for part in text.split("; ")
    )
    with pytest.raises(ValueError, match="L2 feeds no layer"):
        standalone_state_dict(spec, {}, reads_l2_not)


def test_only_macro_like_cnn_spaces_have_a_supernet() -> None:
    for name in ("digits", "cifar10_v3"):
        with pytest.raises(SpaceError, match="has no supernet: a cnn space's supernet needs"):
            supernet_spec(load_space(name))
    with pytest.raises(SpaceError, match="a fixed depth"):
        supernet_spec(load_space("enas_macro").with_schedule(start=6))
    with pytest.raises(ValueError, match="distinct layer ops"):
        generate_supernet(MacroSupernetSpec("x", (3, 8, 8), 2, 4, (), ((),), ((1, 1),)))
