"""Codegen for every family: golden files, standalone files that run, safety, determinism."""

from __future__ import annotations

import ast
import linecache
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch
from nasforge.codegen import generate, load_source
from nasforge.codegen.cost import cost
from nasforge.grammar import ArchError, parse

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.arch"))
GOLDEN = ROOT / "tests" / "golden"
sys.path.insert(0, str(GOLDEN))
from regen import golden_pairs  # noqa: E402

# NASNet-A Large and Mobile run at ImageNet sizes: too slow to train a step in unit tests.
LARGE = {"nasnet_a_large", "nasnet_a_mobile"}


def _arch(path: Path):
    return parse(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.parametrize("arch_path, golden_path", golden_pairs(), ids=lambda p: p.stem)
def test_golden(arch_path: Path, golden_path: Path) -> None:
    assert golden_path.exists(), "run tests/golden/regen.py"
    assert generate(_arch(arch_path)) == golden_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_generated_file_is_deterministic_and_formatted(path: Path) -> None:
    import black

    arch = _arch(path)
    first, second = generate(arch), generate(parse(path.read_text(encoding="utf-8")))
    assert first == second
    assert black.format_str(first, mode=black.Mode()) == first
    assert first.startswith('"""') and ARCH_LINE(arch) in first


def ARCH_LINE(arch) -> str:
    from nasforge.grammar import to_text

    return 'ARCH = """\\\n' + to_text(arch) + '"""'


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.stem not in LARGE], ids=lambda p: p.stem)
def test_generated_model_runs_forward_and_backward(path: Path) -> None:
    arch = _arch(path)
    module = load_source(generate(arch, black=False))
    torch.manual_seed(0)
    if arch.family == "rnn":
        model = module.build_model(vocab_size=50, embed_size=16, hidden_size=16)
        logits, _ = model(torch.randint(0, 50, (6, 3)))
        assert logits.shape == (6, 3, 50)
        logits.sum().backward()
    else:
        model = module.build_model()
        x = torch.randn(2, *module.INPUT_SHAPE)
        out = model(x)
        assert out.shape == (2, module.NUM_CLASSES)
        out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert cost(arch).params == sum(p.numel() for p in module.build_model().parameters())


def test_generated_file_imports_only_torch() -> None:
    for path in EXAMPLES:
        tree = ast.parse(generate(_arch(path), black=False))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] in {"torch", "math"} for a in node.names), path
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] in {"torch", "math", "__future__"}, path


def test_generated_file_runs_as_a_script(tmp_path: Path) -> None:
    source = generate(_arch(ROOT / "examples" / "v2_strides.arch"))
    script = tmp_path / "model.py"
    script.write_text(source, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert "parameters: 151,446" in result.stdout
    assert "output shape: (2, 10)" in result.stdout


def test_traceback_shows_the_generated_line() -> None:
    module = load_source(generate(_arch(ROOT / "examples" / "fig2_plain.arch")))
    model = module.build_model()
    with pytest.raises(RuntimeError) as info:
        model(torch.randn(1, 5, 32, 32))  # 5 channels where the file expects 3
    text = "".join(traceback.format_exception(info.value))
    assert "l1 = self.l1(x)  # (N, 36, 32, 32)" in text
    filename = module.__file__
    assert linecache.getline(filename, 1).startswith('"""')


def test_the_15_layer_network_has_4_2m_parameters() -> None:
    arch = _arch(ROOT / "examples" / "nas_cifar15.arch")
    params = cost(arch).params
    assert params == 4_201_630  # the paper reports 4.2M
    assert abs(params - 4.2e6) / 4.2e6 < 0.01


# --- the NAS cell against TensorFlow's published NASCell formula -----------------


def _tf_nascell(x, h, c, kernel, recurrent_kernel, bias):
    """tf.contrib.rnn.NASCell.call, written out independently from its published formula."""
    inputs = (x @ kernel).chunk(8, dim=-1)
    m = (h @ recurrent_kernel + bias).chunk(8, dim=-1)
    sig, tanh, relu = torch.sigmoid, torch.tanh, torch.relu
    layer1 = [
        sig(inputs[0] + m[0]),
        relu(inputs[1] + m[1]),
        sig(inputs[2] + m[2]),
        relu(inputs[3] * m[3]),
        tanh(inputs[4] + m[4]),
        sig(inputs[5] + m[5]),
        tanh(inputs[6] + m[6]),
        sig(inputs[7] + m[7]),
    ]
    l2_0 = tanh(layer1[0] * layer1[1])
    l2_1 = tanh(layer1[2] + layer1[3])
    l2_2 = tanh(layer1[4] * layer1[5])
    l2_3 = sig(layer1[6] + layer1[7])
    l2_0 = tanh(l2_0 + c)
    l3_0 = l2_0 * l2_1
    new_c = l3_0
    l3_1 = tanh(l2_2 + l2_3)
    new_m = tanh(l3_0 * l3_1)
    return new_m, new_c


def test_base8_example_computes_tensorflow_nascell() -> None:
    module = load_source(generate(_arch(ROOT / "examples" / "rnn_nascell_ptb.arch"), black=False))
    torch.manual_seed(1)
    cell = module.Cell(input_size=7, hidden_size=5)
    for p in cell.parameters():
        torch.nn.init.uniform_(p, -1.0, 1.0)
    x, h, c = torch.randn(4, 7), torch.randn(4, 5), torch.randn(4, 5)
    ours_h, (ours_h2, ours_c) = cell(x, (h, c))
    ref_h, ref_c = _tf_nascell(
        x, h, c, cell.input_proj.weight.T, cell.hidden_proj.weight.T, cell.hidden_proj.bias
    )
    torch.testing.assert_close(ours_h, ref_h)
    torch.testing.assert_close(ours_c, ref_c)
    assert ours_h2 is ours_h


def test_fig5_cell_follows_the_paper() -> None:
    module = load_source(generate(_arch(ROOT / "examples" / "rnn_fig5_base2.arch"), black=False))
    cell = module.Cell(input_size=3, hidden_size=4, bias=False)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    w1, w3 = cell.input_proj.weight.chunk(2)
    w2, w4 = cell.hidden_proj.weight.chunk(2)
    a0 = torch.tanh(x @ w1.T + h @ w2.T)
    a1 = torch.relu((x @ w3.T) * (h @ w4.T))
    a0_new = torch.relu(a0 + c)
    a2 = torch.sigmoid(a0_new * a1)
    h_t, (_, c_t) = cell(x, (h, c))
    torch.testing.assert_close(h_t, a2)
    torch.testing.assert_close(c_t, (x @ w3.T) * (h @ w4.T))


# --- nothing from the input text becomes code ------------------------------------

HOSTILE = [
    'cnn input 3x32x32 classes 10\nL1: conv 3x3 n36 # """; import os; os.system("echo pwned")',
    "cnn input 3x32x32 classes 10\nL1: conv 3x3 n36 __import__",
    "cnn input 3x32x32 classes 10\nL1: conv 3x3 n36 <- L0\\\nimport os",
    "cnn input 3x32x32 classes 10\nL1: conv 3x3 n36 lambda",
    'cnn input 3x32x32 classes 10\nL1: conv"" 3x3 n36',
    "cnn input 3x32x32 classes 10\nL1: import 3x3 n36",
    "cnn input 3x32x32 classes 10\nL1: conv 3x3 n36\nL2: conv 3x3 n36 <- L1 # \u202e\u0000 exec('x')",
    "rnn base 2\nN0: add exec\nN1: mul relu\nN2: mul sigmoid\ninject N0: add relu\ncell N1",
    "rnn base 2\nN0: add tanh\nN1: mul relu\nN2: mul sigmoid # '''\ninject N0: add relu\ncell N1",
    "rnn base 2\nN0: add tanh\nN1: mul relu\nN2: mul sigmoid\ninject N0: add relu\ncell N1\nos: system",
    "cells nb201 input 3x32x32 classes 10\ncell:\n  S1 = add(eval(S0))\n  out = S1",
    "cells nb201 input 3x32x32 classes 10\ncell:\n  S1 = add(skip(S0))\n  out = S1  # \\\nimport os",
    "cells nb201 input 3x32x32 classes 10 stem __import__\ncell:\n  S1 = add(skip(S0))\n  out = S1",
    "cells darts input 3x32x32 classes 10 stem cifar\nnormal:\n  S2 = add(skip(S0), print(S1))",
]
FORBIDDEN_NAMES = {
    "os",
    "sys",
    "eval",
    "exec",
    "__import__",
    "open",
    "compile",
    "getattr",
    "print_",
}
FORBIDDEN_ATTRIBUTES = {"system", "popen", "__import__", "__globals__", "__builtins__"}


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_never_becomes_code(text: str) -> None:
    try:
        arch = parse(text)
    except ArchError:
        return  # rejected by the grammar: nothing generated
    source = generate(arch, black=False)
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree, clean=False)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id not in FORBIDDEN_NAMES
        elif isinstance(node, ast.Attribute):
            assert node.attr not in FORBIDDEN_ATTRIBUTES
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value == docstring:
                continue
            assert all(ch.isascii() and (ch.isprintable() or ch == "\n") for ch in node.value)
            assert "import" not in node.value and "system" not in node.value
    for word in ("pwned", "os.system", "exec(", "__import__"):
        assert word not in source


def test_generated_code_is_ruff_clean(tmp_path: Path) -> None:
    """Generated files pass ruff's default rules plus bugbear, pyupgrade and import order.

    The one exception: a line of the canonical architecture text (in the docstring
    and ARCH) may be longer than 88 columns, since that text is one line per statement.
    """
    import json

    from nasforge.grammar import to_text

    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed next to this Python")
    canonical: dict[str, set[str]] = {}
    for path in EXAMPLES:
        arch = _arch(path)
        (tmp_path / f"{path.stem}.py").write_text(generate(arch), encoding="utf-8")
        canonical[f"{path.stem}.py"] = set(to_text(arch).splitlines())
    result = subprocess.run(
        [
            str(ruff),
            "check",
            "--isolated",
            "--no-cache",
            "--select",
            "E,F,W,B,UP,I",
            "--output-format",
            "json",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    problems = []
    for item in json.loads(result.stdout):
        name = Path(item["filename"]).name
        line = (tmp_path / name).read_text().splitlines()[item["location"]["row"] - 1]
        if item["code"] == "E501" and line in canonical[name]:
            continue
        problems.append(f"{name}:{item['location']['row']}: {item['code']} {item['message']}")
    assert problems == []


class _Code(str):
    """A str subclass, as a lark Token is: still only a plain name may pass."""


def test_template_context_guard_refuses_anything_but_numbers_and_plain_names() -> None:
    from collections import OrderedDict, namedtuple
    from dataclasses import dataclass

    from nasforge.codegen.render import ArchText, check_context

    @dataclass(frozen=True)
    class Plan:
        name: str
        sizes: tuple[int, ...]

    pair = namedtuple("pair", "a b")
    check_context(
        {"plan": Plan("l3", (3, 3)), "x": [1, 2.5, True, None], "t": ArchText("cnn L1: conv 3x3")}
    )
    check_context({"p": pair("nn.Conv2d", 3), "c": _Code("relu"), "d": OrderedDict(a=1)})
    bad = [
        Plan("l3; import os", (1,)),
        Plan("l3", ("a b",)),  # type: ignore[arg-type]
        {"x": _Code("os.system('x')")},
        {"k'": 1},
        pair("print(1)", 3),
        [["ok", ["still_ok", "no!"]]],
        OrderedDict(a="x y"),
    ]
    for value in bad:
        with pytest.raises(ValueError, match="not a plain name"):
            check_context(value)
    for value in (object(), {1, 2}, b"bytes", Plan):
        with pytest.raises(TypeError, match="may not hold"):
            check_context(value)
    with pytest.raises(ValueError, match="never should"):
        ArchText('x """ y')
