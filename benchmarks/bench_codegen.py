"""Codegen costs, as ratios measured in one run on this machine.

1. String -> loaded module -> instantiated model for the NAS paper's 15-layer
   network, with and without black, against instantiating the same generated
   class directly (the unavoidable cost).
2. Forward+backward step time of generated models against hand-written
   equivalents: the 15-layer network, NASNet-A CIFAR (hand-written from TF slim's
   description), and generated NASNet-A Large forward against timm's
   `nasnetalarge` (timm installed for this benchmark only).

Run: .venv/bin/python benchmarks/bench_codegen.py [--json PATH] [--quick] [--only NAME]
    [--threads 1]
The machine is a noisy VM: each figure is the best of several timed repeats; a
generated model, its reference and a control (a second instance of the reference)
take turns, so control / reference shows how far noise alone moves a ratio in
the same run; the median of the per-round ratios is reported beside the ratio
of the best times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from lark import Lark
from nasforge.codegen import generate, load_source
from nasforge.grammar import parse, to_text
from nasforge.grammar.parser import GRAMMAR_FILE
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # handwritten_*.py

from handwritten_nas15 import HandNas15  # noqa: E402


def best_of(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best time per function; the functions take turns so drift hits all of them."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(ts) for name, ts in times.items()}


def compare(
    generated: Callable[[], object],
    reference: Callable[[], object],
    control: Callable[[], object],
    repeats: int,
) -> dict[str, float]:
    """Time a generated model against its reference, with a control.

    `control` is a second, separately built instance of the reference: the same
    code, so control / reference shows how far this machine's noise alone moves a
    ratio in this run. The three take turns, each round starting with the next
    one, so none always runs first. `ratio` is generated / reference of the best
    times, `ratio_median` the median of the ratios within each round.
    """
    fns = (generated, reference, control)
    times: list[list[float]] = [[], [], []]
    for round_ in range(repeats):
        for i in range(3):
            which = (round_ + i) % 3
            start = time.perf_counter()
            fns[which]()
            times[which].append(time.perf_counter() - start)
    gen, ref, ctl = times
    return {
        "generated_ms": min(gen) * 1e3,
        "reference_ms": min(ref) * 1e3,
        "ratio": min(gen) / min(ref),
        "ratio_median": statistics.median(g / r for g, r in zip(gen, ref, strict=True)),
        "control_ratio": min(ctl) / min(ref),
        "control_ratio_median": statistics.median(c / r for c, r in zip(ctl, ref, strict=True)),
    }


def step_fn(model: nn.Module, batch: torch.Tensor) -> Callable[[], None]:
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        out = model(batch)
        out = out[0] if isinstance(out, tuple) else out
        out.float().pow(2).mean().backward()
        optimizer.step()

    return step


def bench_loading(repeats: int) -> dict[str, float]:
    text = to_text(parse((ROOT / "examples" / "nas_cifar15.arch").read_text()))
    arch = parse(text)
    source = generate(arch, black=False)
    net_class = load_source(generate(arch)).Net
    # Lark's lexer alone over the same text (no parser, no IR), and CPython compiling the
    # generated source (no exec): the two steps no string -> model path can skip.
    lexer = Lark(GRAMMAR_FILE.read_text(encoding="utf-8"), parser="lalr", lexer="basic")
    times = best_of(
        {
            # The parts of string -> model, each alone, to show where the time goes.
            "parse": lambda: parse(text),
            "render_no_black": lambda: generate(arch, black=False),
            "load_source": lambda: load_source(source),
            "instantiate": lambda: net_class(),
            "string_to_model_black": lambda: load_source(generate(parse(text))).Net(),
            "string_to_model_no_black": lambda: load_source(
                generate(parse(text), black=False)
            ).Net(),
            "lex_only": lambda: list(lexer.lex(text)),
            "compile_only": lambda: compile(source, "<generated>", "exec"),
        },
        repeats,
    )
    floor = times["instantiate"] + times["lex_only"] + times["compile_only"]
    return {
        **{f"{k}_ms": v * 1e3 for k, v in times.items()},
        "ratio_black": times["string_to_model_black"] / times["instantiate"],
        "ratio_no_black": times["string_to_model_no_black"] / times["instantiate"],
        # What the no-black ratio would be if parsing cost only Lark's lexing, and
        # rendering and exec cost nothing.
        "ratio_floor": floor / times["instantiate"],
    }


def bench_nas15_step(repeats: int, batch_size: int) -> dict[str, float]:
    arch = parse((ROOT / "examples" / "nas_cifar15.arch").read_text())
    torch.manual_seed(0)
    generated = load_source(generate(arch)).build_model()
    hand = HandNas15()
    assert sum(p.numel() for p in hand.parameters()) == sum(
        p.numel() for p in generated.parameters()
    )
    batch = torch.randn(batch_size, 3, 32, 32)
    return _compare_steps(generated, hand, HandNas15(), batch, repeats)


def bench_nasnet_cifar_step(repeats: int, batch_size: int) -> dict[str, float]:
    from handwritten_nasnet import NASNetACifar

    arch = parse((ROOT / "examples" / "nasnet_a_cifar.arch").read_text())
    torch.manual_seed(0)
    generated = load_source(generate(arch)).build_model()
    hand = NASNetACifar()
    count = sum(p.numel() for p in generated.parameters())
    assert count == sum(p.numel() for p in hand.parameters()), "not the same network"
    batch = torch.randn(batch_size, 3, 32, 32)
    control = NASNetACifar()
    return {"parameters": count, **_compare_steps(generated, hand, control, batch, repeats)}


def _compare_steps(
    generated: nn.Module, hand: nn.Module, control: nn.Module, batch: torch.Tensor, repeats: int
) -> dict[str, float]:
    steps = [step_fn(model, batch) for model in (generated, hand, control)]
    for fn in steps:
        fn()  # warm-up: the allocator's first pass and lazy initialisation
    return compare(*steps, repeats)


def bench_nasnet_large_forward(repeats: int) -> dict[str, object]:
    try:
        import timm
    except ImportError:
        return {"skipped": "timm is not installed (pip install timm)"}
    arch = parse((ROOT / "examples" / "nasnet_a_large.arch").read_text())
    torch.manual_seed(0)
    generated = load_source(generate(arch)).build_model().eval()
    reference = timm.create_model("nasnetalarge", pretrained=False).eval()
    control = timm.create_model("nasnetalarge", pretrained=False).eval()
    batch = torch.randn(1, 3, 331, 331)

    def forward(model: nn.Module) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                model(batch)

        return run

    runs = [forward(model) for model in (generated, reference, control)]
    for run in runs:
        run()  # warm-up
    return {
        "generated_parameters": sum(p.numel() for p in generated.parameters()),
        "timm_parameters": sum(p.numel() for p in reference.parameters()),
        **compare(*runs, repeats),
    }


BENCHES: dict[str, Callable[[int], dict[str, object]]] = {
    "loading": lambda repeats: bench_loading(repeats * 2),
    "nas15_step": lambda repeats: bench_nas15_step(repeats, batch_size=8),
    "nasnet_cifar_step": lambda repeats: bench_nasnet_cifar_step(repeats, batch_size=16),
    "nasnet_large_forward": bench_nasnet_large_forward,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", choices=sorted(BENCHES), help="run one measurement")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: with two threads on a 2-core VM every op waits for "
        "the slower core, and 15-layer step times moved between 1.5 and 2.1 s across runs)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 9
    results: dict[str, object] = {"torch_threads": torch.get_num_threads()}
    for name, bench in BENCHES.items():
        if args.only in (None, name):
            results[name] = bench(repeats)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
