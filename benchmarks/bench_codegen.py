"""Codegen costs, as ratios measured in one run on this machine.

1. String -> loaded module -> instantiated model for the NAS paper's 15-layer
   network, with and without black, against instantiating the same generated
   class directly (the unavoidable cost).
2. Forward+backward step time of generated models against hand-written
   equivalents: the 15-layer network, NASNet-A CIFAR (hand-written from TF slim's
   description), and generated NASNet-A Large forward against timm's
   `nasnetalarge` (timm installed for this benchmark only).

Run: .venv/bin/python benchmarks/bench_codegen.py [--json PATH] [--quick] [--only NAME]
The machine is a noisy VM: each figure is the best of several timed repeats,
and the compared variants are interleaved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from nasforge.codegen import generate, load_source
from nasforge.grammar import parse, to_text
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
        },
        repeats,
    )
    return {
        **{f"{k}_ms": v * 1e3 for k, v in times.items()},
        "ratio_black": times["string_to_model_black"] / times["instantiate"],
        "ratio_no_black": times["string_to_model_no_black"] / times["instantiate"],
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
    steps = {"generated": step_fn(generated, batch), "hand": step_fn(hand, batch)}
    for fn in steps.values():
        fn()  # warm-up
    times = best_of(steps, repeats)
    # The same modules either way; timing them again with the hand-written one first
    # shows how much of the ratio is the order and the VM's drift.
    swapped = best_of({"hand": steps["hand"], "generated": steps["generated"]}, repeats)
    return {
        "generated_ms": times["generated"] * 1e3,
        "hand_ms": times["hand"] * 1e3,
        "ratio": times["generated"] / times["hand"],
        "ratio_hand_first": swapped["generated"] / swapped["hand"],
        "ratio_best_of_both": min(times["generated"], swapped["generated"])
        / min(times["hand"], swapped["hand"]),
    }


def bench_nasnet_cifar_step(repeats: int, batch_size: int) -> dict[str, float]:
    from handwritten_nasnet import NASNetACifar

    arch = parse((ROOT / "examples" / "nasnet_a_cifar.arch").read_text())
    torch.manual_seed(0)
    generated = load_source(generate(arch)).build_model()
    hand = NASNetACifar()
    count = sum(p.numel() for p in generated.parameters())
    assert count == sum(p.numel() for p in hand.parameters()), "not the same network"
    batch = torch.randn(batch_size, 3, 32, 32)
    steps = {"generated": step_fn(generated, batch), "hand": step_fn(hand, batch)}
    for fn in steps.values():
        fn()
    times = best_of(steps, repeats)
    return {
        "parameters": count,
        "generated_ms": times["generated"] * 1e3,
        "hand_ms": times["hand"] * 1e3,
        "ratio": times["generated"] / times["hand"],
    }


def bench_nasnet_large_forward(repeats: int) -> dict[str, object]:
    try:
        import timm
    except ImportError:
        return {"skipped": "timm is not installed (pip install timm)"}
    arch = parse((ROOT / "examples" / "nasnet_a_large.arch").read_text())
    torch.manual_seed(0)
    generated = load_source(generate(arch)).build_model().eval()
    reference = timm.create_model("nasnetalarge", pretrained=False).eval()
    batch = torch.randn(1, 3, 331, 331)

    def forward(model: nn.Module) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                model(batch)

        return run

    steps = {"generated": forward(generated), "timm": forward(reference)}
    for fn in steps.values():
        fn()
    times = best_of(steps, repeats)
    return {
        "generated_parameters": sum(p.numel() for p in generated.parameters()),
        "timm_parameters": sum(p.numel() for p in reference.parameters()),
        "generated_ms": times["generated"] * 1e3,
        "timm_ms": times["timm"] * 1e3,
        "ratio": times["generated"] / times["timm"],
    }


BENCHES: dict[str, Callable[[int], dict[str, object]]] = {
    "loading": lambda repeats: bench_loading(repeats * 2),
    "nas15_step": lambda repeats: bench_nas15_step(repeats, batch_size=8),
    "nasnet_cifar_step": lambda repeats: bench_nasnet_cifar_step(repeats, batch_size=16),
    "nasnet_large_forward": lambda repeats: bench_nasnet_large_forward(max(repeats // 3, 2)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", choices=sorted(BENCHES), help="run one measurement")
    args = parser.parse_args()
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
