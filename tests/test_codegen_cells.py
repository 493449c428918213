"""Codegen for the cells family: NASNet (TF slim), DARTS and NAS-Bench-201 skeletons.

Every example generates a formatted, deterministic, torch-only file that runs
forward and backward; the cost model equals the built model's parameter count
for the examples and for random cells of every skeleton (built small and run
for real, so the plan's shapes are checked too); and the published parameter
and multiply-add counts come out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import black
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nasforge.codegen import generate, load_source
from nasforge.codegen.cells import plan_cells
from nasforge.codegen.cost import cost
from nasforge.grammar import ops, parse
from strategies import small_cells_archs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {p.stem: p for p in sorted((ROOT / "examples").glob("*.arch"))}
CELLS = [n for n in EXAMPLES if parse(EXAMPLES[n].read_text()).family == "cells"]
IMAGENET = {"nasnet_a_mobile", "nasnet_a_large"}


def _arch(name: str):
    return parse(EXAMPLES[name].read_text(encoding="utf-8"), str(EXAMPLES[name]))


_modules: dict[str, object] = {}


def _module(name: str):
    if name not in _modules:
        _modules[name] = load_source(generate(_arch(name)))
    return _modules[name]


def _built_params(module, **overrides) -> int:
    with torch.device("meta"):
        model = module.build_model(**overrides)
    return sum(p.numel() for p in model.parameters())


# --- every example ------------------------------------------------------------------


def test_the_cells_examples_are_all_here() -> None:
    assert set(CELLS) >= {
        "nasnet_a_cifar",
        "nasnet_a_mobile",
        "nasnet_a_large",
        "darts_v2",
        "nb201_best",
        "nb201_index1",
    }


@pytest.mark.parametrize("name", CELLS)
def test_file_is_formatted_deterministic_and_imports_only_torch(name: str) -> None:
    source = generate(_arch(name))
    assert source == generate(parse(EXAMPLES[name].read_text(encoding="utf-8")))
    assert black.format_str(source, mode=black.Mode()) == source
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {"torch", "torch.nn", "torch.nn.functional", "math"}
    uses_f = any(isinstance(n, ast.Name) and n.id == "F" for n in ast.walk(tree))
    assert ("torch.nn.functional" in imported) == uses_f


@pytest.mark.parametrize("name", [n for n in CELLS if n not in IMAGENET])
def test_example_runs_forward_and_backward(name: str) -> None:
    module = _module(name)
    torch.manual_seed(0)
    model = module.build_model()
    out = model(torch.randn(2, *module.INPUT_SHAPE))
    assert out.shape == (2, module.NUM_CLASSES)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert cost(_arch(name)).params == sum(p.numel() for p in model.parameters())


def test_nasnet_mobile_runs_on_a_small_input() -> None:
    """The ImageNet networks pool globally, so a 32x32 image runs them quickly."""
    module = _module("nasnet_a_mobile")
    model = module.build_model(num_classes=7)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7)
    out.sum().backward()
    assert cost(_arch("nasnet_a_mobile"), num_classes=7).params == sum(
        p.numel() for p in model.parameters()
    )


def test_nasnet_large_builds_and_runs() -> None:
    """At full size (88.9M parameters, about 360 MB of weights): about 1.5 s."""
    module = _module("nasnet_a_large")
    model = module.build_model().eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 96, 96))
    assert out.shape == (1, 1000)
    assert sum(p.numel() for p in model.parameters()) == 88_753_150


@pytest.mark.parametrize("name", CELLS)
def test_cost_equals_built_with_overrides(name: str) -> None:
    arch, module = _arch(name), _module(name)
    assert cost(arch).params == _built_params(module)
    assert cost(arch, num_classes=3).params == _built_params(module, num_classes=3)
    if arch.skeleton != "nb201":
        with_aux = cost(arch, aux_head=True, drop_path=0.1)
        assert with_aux.params == _built_params(module, aux_head=True, drop_path=0.1)
        assert with_aux.params > cost(arch).params
        assert any(part.name == "aux_head" for part in with_aux.parts)
    else:
        with pytest.raises(TypeError):
            module.build_model(aux_head=True)
        with pytest.raises(TypeError):
            cost(arch, aux_head=True)


# --- published numbers ----------------------------------------------------------------


def _close(value: float, published: float, tolerance: float = 0.01) -> bool:
    return abs(value - published) / published <= tolerance


def test_nasnet_a_cifar_has_3_3m_parameters() -> None:
    # 3,346,538 is 1.4% above 3.3M: the paper prints two significant digits, and
    # this count rounds to 3.3M (the interval [3.25M, 3.35M)). It follows slim's
    # cifar_config exactly (the same code gives timm's NASNet-A Large count, below).
    params = cost(_arch("nasnet_a_cifar")).params
    assert params == 3_346_538
    assert round(params / 1e6, 1) == 3.3


def test_nasnet_a_mobile_has_5_3m_parameters_and_564m_mult_adds() -> None:
    c = cost(_arch("nasnet_a_mobile"))
    assert c.params == 5_289_978 and _close(c.params, 5.3e6)
    assert c.macs == 563_638_816 and _close(c.macs, 564e6)


def test_nasnet_a_large_has_88_9m_parameters() -> None:
    c = cost(_arch("nasnet_a_large"))
    # Exactly timm's nasnetalarge (num_classes=1000), a port of slim's checkpoint:
    # 88,753,150; with slim's 1001 classes 88,757,183. Both are 0.17% under 88.9M.
    assert c.params == 88_753_150
    assert cost(_arch("nasnet_a_large"), num_classes=1001).params == 88_757_183
    assert _close(c.params, 88.9e6)
    assert _close(c.macs, 23.8e9)  # the paper's 23.8B mult-adds at 331x331


def test_darts_v2_has_3_3m_parameters() -> None:
    # 3,349,342 without the auxiliary head: 1.5% above 3.3M, which the paper
    # rounds to two digits. The same skeleton reproduces the P-DARTS cell's
    # count of 3,433,798 (3,910,224 with the auxiliary head) that the DARTS
    # model code gives (chenxin061/pdarts issue 7), so the difference is rounding.
    params = cost(_arch("darts_v2")).params
    assert params == 3_349_342
    assert round(params / 1e6, 1) == 3.3


PDARTS = """cells darts input 3x32x32 classes 10 n 6 filters 36 stem cifar
normal:
  S2 = add(skip(S0), dil3x3(S1))
  S3 = add(skip(S0), sep3x3(S1))
  S4 = add(sep3x3(S1), sep3x3(S3))
  S5 = add(sep3x3(S0), dil5x5(S4))
  out = concat(S2, S3, S4, S5)
reduction:
  S2 = add(avgpool3x3(S0), sep5x5(S1))
  S3 = add(sep3x3(S0), dil5x5(S2))
  S4 = add(maxpool3x3(S0), dil3x3(S1))
  S5 = add(dil3x3(S1), dil5x5(S3))
  out = concat(S2, S3, S4, S5)
"""


def test_darts_skeleton_reproduces_the_pdarts_count() -> None:
    arch = parse(PDARTS)
    assert cost(arch).params == 3_433_798
    assert cost(arch, aux_head=True).params == 3_910_224


# --- structure: the skeletons as their references stack cells -------------------------


def _forward_lines(name: str) -> list[str]:
    source = generate(_arch(name))
    body = source[source.index("    def forward(self, x: torch.Tensor)") :]
    return [line.strip() for line in body.splitlines()]


def test_nasnet_cifar_skeleton() -> None:
    plan = plan_cells(_arch("nasnet_a_cifar"))
    cells = [s for s in plan.steps if s.module == "cell"]
    assert [s.kind for s in cells] == ["normal"] * 6 + ["reduction"] + ["normal"] * 6 + [
        "reduction"
    ] + ["normal"] * 6
    assert [s.c for s in cells if s.kind == "reduction"] == [64, 128]
    assert plan.head_channels == 768  # 6@768
    first = cells[0]
    # slim: prev_layer None -> the first cell reads the stem's raw output as S0
    assert first.inputs == ("stem", "stem") and not first.reduction_prev
    assert not first.project_prev
    assert plan.aux is not None and plan.aux.after == "cell_11"
    lines = _forward_lines("nasnet_a_cifar")
    assert "cell_6 = self.cell_6(cell_5, reduction_cell_0)  # (N, 384, 16, 16)" in lines


def test_nasnet_large_skips_the_reduction_input() -> None:
    plan = plan_cells(_arch("nasnet_a_large"))
    assert plan.head_channels == 4032
    names = [s.name for s in plan.steps]
    assert names[:3] == ["conv0", "cell_stem_0", "cell_stem_1"]
    by_name = {s.name: s for s in plan.steps}
    # skip_reduction_input 1: the cell after a reduction reads the cell before its input
    assert by_name["cell_6"].inputs == ("cell_4", "reduction_cell_0")
    assert by_name["cell_6"].reduction_prev
    assert by_name["cell_stem_0"].c == 42 and by_name["cell_stem_1"].c == 84
    mobile = {s.name: s for s in plan_cells(_arch("nasnet_a_mobile")).steps}
    assert mobile["cell_4"].inputs == ("cell_3", "reduction_cell_0")
    assert mobile["conv0"].out_shape == (32, 111, 111)


def test_darts_skeleton() -> None:
    plan = plan_cells(_arch("darts_v2"))
    cells = [s for s in plan.steps if s.module == "cell"]
    assert len(cells) == 20
    assert [i for i, s in enumerate(cells) if s.kind == "reduction"] == [6, 13]
    assert cells[7].reduction_prev and cells[14].reduction_prev
    assert plan.aux is not None and plan.aux.after == "cell_13"
    assert plan.aux.features == 768  # AuxiliaryHeadCIFAR's 8x8 -> 2x2 -> 1x1
    assert plan.head_channels == 576


def test_nb201_skeleton() -> None:
    plan = plan_cells(_arch("nb201_best"))
    blocks = [s.module for s in plan.steps[1:]]
    assert blocks == ["cell"] * 5 + ["resblock"] + ["cell"] * 5 + ["resblock"] + ["cell"] * 5
    assert plan.head_channels == 64
    assert [s.out_shape for s in plan.steps if s.module == "resblock"] == [
        (32, 16, 16),
        (64, 8, 8),
    ]


def test_auxiliary_head_and_drop_path() -> None:
    module = _module("darts_v2")
    torch.manual_seed(0)
    model = module.build_model(aux_head=True, drop_path=0.5)
    x = torch.randn(2, *module.INPUT_SHAPE)
    logits, aux = model(x)
    assert logits.shape == aux.shape == (2, 10)
    model.eval()
    with torch.no_grad():
        a = model(x)
        b = module.build_model(aux_head=True).eval()
        b.load_state_dict(model.state_dict())
        assert torch.equal(a, b(x))  # drop-path is off in evaluation
    drop = module.DropPath(0.5).train()
    y = drop(torch.ones(64, 2, 3, 3))
    kept = y.flatten(1).amax(1)
    assert set(kept.tolist()) <= {0.0, 2.0} and 0 < kept.count_nonzero() < 64


# --- random architectures of every skeleton, built small and run ---------------------


@pytest.mark.parametrize("skeleton", sorted(ops.SKELETONS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_cells_run_and_cost_equals_built(skeleton: str, data) -> None:
    arch = data.draw(small_cells_archs(skeleton))
    source = generate(arch, black=False)
    module = load_source(source)
    overrides = {} if skeleton == "nb201" else {"aux_head": True, "drop_path": 0.2}
    torch.manual_seed(0)
    model = module.build_model(**overrides)
    plan = plan_cells(arch)
    seen: dict[str, tuple[int, ...]] = {}
    for step in plan.steps:
        getattr(model, step.name).register_forward_hook(
            lambda _m, _i, out, name=step.name: seen.__setitem__(name, tuple(out.shape[1:]))
        )
    out = model(torch.randn(2, *arch.input_shape))
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (2, arch.classes)
    (logits.sum() + (out[1].sum() if isinstance(out, tuple) else 0)).backward()
    for step in plan.steps:
        assert seen[step.name] == step.out_shape, step.name
    assert cost(arch, **overrides).params == sum(p.numel() for p in model.parameters())
    assert cost(arch).params == sum(p.numel() for p in module.build_model().parameters())


def test_nb201_matches_the_benchmarks_cost_table() -> None:
    """NAS-Bench-201's CIFAR-10 cost table spans 0.073306M-1.531546M parameters and
    7.78305M-220.11969M FLOPs (all-none and all-conv3x3 cells); its FLOPs count the
    classifier's 10 bias additions, which this cost model's convention leaves out."""
    from nasforge.grammar.nb201 import from_nb201

    conv = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    largest, smallest = cost(from_nb201(conv)), cost(from_nb201(none))
    assert (largest.params, largest.macs + 10) == (1_531_546, 220_119_690)
    assert (smallest.params, smallest.macs + 10) == (73_306, 7_783_050)
    assert cost(from_nb201(none, classes=100)).params == 79_156  # CIFAR-100: 0.079156M
