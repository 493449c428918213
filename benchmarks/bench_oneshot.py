"""One-shot search costs, as ratios measured in one run on this machine.

1. DARTS' search step on the generated `darts` supernet (8 cells, C=16, 14 mixed
   edges of 8 ops per cell) against the same network written by hand from the
   paper's description (handwritten_darts.py), after checking that with the same
   weights (the state_dict copied through a name map) both give the same logits
   and the same architecture gradients. Timed in one process, taking turns with a
   control (a second hand-written instance: its distance from 1.00 is this run's
   noise): the weight step (SGD), the architecture step first and second order
   (the project's `Architect`, runtime/oneshot/architect.py). Batch 16, one thread.
2. Peak resident memory (and step times) of a process per configuration: each
   implementation x {weight step, first-order search step, second-order search
   step}, NNI 3.0's DARTS included when its venv is given (`--nni-python` or
   $NNI_PYTHON; nni_darts_worker.py; skipped, saying so, otherwise).
3. ENAS: evaluating one sampled child on a validation batch through the supernet
   (its one-hot weights) against the same child compiled standalone with the
   inherited weights (standalone_state_dict), after checking equal outputs; the
   `nb201` and `darts` spaces.

Run: .venv/bin/python benchmarks/bench_oneshot.py [--json PATH] [--quick] [--only NAME]
    [--nni-python PATH] [--threads 1] [--batch 16] [--child-batch 128]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from nasforge.codegen import generate, load_source
from nasforge.codegen.supernet import generate_supernet, one_hot, standalone_state_dict
from nasforge.controller.oneshot import supernet_spec
from nasforge.controller.space import Space, SpaceError, load_space
from nasforge.grammar import to_text
from nasforge.runtime.oneshot.architect import Architect, softmax_rows
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # handwritten_darts.py, darts_steps.py

import darts_steps as ds  # noqa: E402
from handwritten_darts import SearchNetwork, from_supernet_names  # noqa: E402

ATOL = 1e-5  # the supernet tests' tolerance for equal outputs
IMPLS = ("generated", "hand")


# --- the two DARTS networks ----------------------------------------------------------


def generated_darts(seed: int = 0) -> nn.Module:
    spec = supernet_spec(load_space("darts"))
    torch.manual_seed(seed)
    return load_source(generate_supernet(spec)).build_model()


def hand_copy(generated: nn.Module) -> nn.Module:
    """The hand-written network holding the generated supernet's weights (strict load)."""
    hand = SearchNetwork()
    hand.load_state_dict(from_supernet_names(generated.state_dict()))
    return hand


def initial_alphas(seed: int = 0) -> torch.Tensor:
    """DARTS' initial architecture parameters: 1e-3 x standard normal, (28 edges, 8 ops)."""
    generator = torch.Generator().manual_seed(seed)
    return 1e-3 * torch.randn(28, 8, generator=generator)


def equivalence(generated: nn.Module, hand: nn.Module, batch: int) -> dict[str, float]:
    """Largest differences of the logits and the alphas' gradients, train and eval mode.

    In float64 the two networks agree to rounding (the assertion's tolerance is
    ATOL); float32's figures are reported too: there the alphas' gradient sums many
    terms that nearly cancel, so the two summation orders differ by about 1e-4.
    """
    batches = ds.cifar_batches(batch, seed=1)
    found = {}
    for dtype in (torch.float64, torch.float32):
        pair = [copy.deepcopy(model).to(dtype) for model in (generated, hand)]
        for mode in ("train", "eval"):
            grads, outputs = [], []
            for model in pair:
                model.train(mode == "train")
                alphas = initial_alphas().to(dtype).requires_grad_()
                logits = model(batches.x_valid.to(dtype), torch.softmax(alphas, dim=-1))
                F.cross_entropy(logits, batches.y_valid).backward()
                outputs.append(logits.detach())
                grads.append(alphas.grad)
            name = str(dtype).removeprefix("torch.")
            found[f"{name}_logits_{mode}"] = (outputs[0] - outputs[1]).abs().max().item()
            found[f"{name}_alpha_grad_{mode}"] = (grads[0] - grads[1]).abs().max().item()
    return found


# --- DARTS' search step ----------------------------------------------------------------


class Search:
    """One network with its architecture parameters and the paper's optimisers, as the
    engine (runtime/oneshot) holds them: the alphas are a normal and a reduction table,
    the weight step sees the mixture detached."""

    def __init__(self, model: nn.Module, batches: ds.Batches) -> None:
        self.model = model.train()
        self.alphas = [a.clone().requires_grad_() for a in initial_alphas().split(14)]
        self.batches = batches
        self.optimizer = ds.weight_optimizer(list(model.parameters()))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.model(x, softmax_rows(self.alphas).detach()), y)

    def weight_step(self) -> Callable[[], None]:
        return ds.weight_step(self.loss, self.optimizer, self.batches)

    def arch_step(self, order: int) -> Callable[[], None]:
        """The project's architecture step (runtime/oneshot/architect.py)."""
        architect = Architect(self.model, self.alphas, self.optimizer, second_order=order == 2)
        b = self.batches
        return lambda: architect.step(b.x_train, b.y_train, b.x_valid, b.y_valid)


def compare(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, object]:
    """Time the functions taking turns, each round starting with the next one.

    Each call's wall time and the CPU time of this thread (one torch thread: the ops
    and the CPU autograd engine run in it), which other jobs on a shared machine
    disturb far less than the wall time. Ratios are of medians (`ratio`, `cpu_ratio`)
    and the median of the per-round ratios (`ratio_paired`), each function over
    "hand"; "control" is a second instance of "hand", so its ratio shows this run's
    noise.
    """
    names = list(fns)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for i in range(len(names)):
            name = names[(round_ + i) % len(names)]
            start, start_cpu = time.perf_counter(), time.thread_time()
            fns[name]()
            cpu[name].append(time.thread_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    result: dict[str, object] = {
        "median_s": {name: statistics.median(ts) for name, ts in wall.items()},
        "median_cpu_s": {name: statistics.median(ts) for name, ts in cpu.items()},
        "seconds": wall,
        "cpu_seconds": cpu,
    }
    for name in names:
        if name != "hand":
            result[f"{name}_ratio"] = _ratio(wall[name], wall["hand"])
            result[f"{name}_cpu_ratio"] = _ratio(cpu[name], cpu["hand"])
            result[f"{name}_ratio_paired"] = statistics.median(
                t / h for t, h in zip(wall[name], wall["hand"], strict=True)
            )
    return result


def _ratio(times: list[float], reference: list[float]) -> float:
    return statistics.median(times) / statistics.median(reference)


def bench_darts_steps(repeats: int, batch: int) -> dict[str, object]:
    generated = generated_darts()
    searches = {
        "generated": Search(generated, ds.cifar_batches(batch)),
        "hand": Search(hand_copy(generated), ds.cifar_batches(batch)),
        "control": Search(hand_copy(generated), ds.cifar_batches(batch)),
    }
    result: dict[str, object] = {
        "batch": batch,
        "parameters": sum(p.numel() for p in generated.parameters()),
        "equivalence": equivalence(generated, searches["hand"].model, batch=4),
    }
    exact = [v for k, v in result["equivalence"].items() if k.startswith("float64")]
    assert max(exact) <= ATOL, result["equivalence"]
    kinds: dict[str, Callable[[Search], Callable[[], None]]] = {
        "weight_step": Search.weight_step,
        "arch_step_first_order": lambda search: search.arch_step(1),
        "arch_step_second_order": lambda search: search.arch_step(2),
    }
    for kind, make in kinds.items():
        progress(f"darts: {kind}")
        fns = {name: make(search) for name, search in searches.items()}
        for fn in fns.values():
            fn()  # warm-up: the allocator's first pass, the optimisers' state
        result[kind] = compare(fns, repeats)
    return result


# --- peak memory: a process per configuration ----------------------------------------


def worker(impl: str, kind: str, batch: int, repeats: int) -> None:
    """One configuration in this process (see darts_steps.py); prints its JSON line."""
    generated = generated_darts()
    model = generated if impl == "generated" else hand_copy(generated)
    del generated
    search = Search(model, ds.cifar_batches(batch))
    steps = {}
    if kind != "weight":
        steps["arch"] = search.arch_step(1 if kind == "darts1" else 2)
    steps["weight"] = search.weight_step()
    info = {"impl": impl, "kind": kind, "batch": batch}
    ds.run_configuration(steps, repeats, info)


def run_worker(command: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"failed": f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"}
    return json.loads(lines[-1])


def bench_memory(
    repeats: int, batch: int, threads: int, nni_python: str | None
) -> dict[str, object]:
    """Every configuration in a fresh process, implementations taking turns per kind."""
    common = ["--batch", str(batch), "--repeats", str(repeats), "--threads", str(threads)]
    result: dict[str, object] = {}
    nni_skip = nni_missing(nni_python)
    if nni_skip:
        result["nni_skipped"] = nni_skip
    for kind in ds.KINDS:
        for impl in IMPLS:
            progress(f"memory: {impl}/{kind}")
            command = [sys.executable, __file__, "--worker", impl, kind, *common]
            result[f"{impl}/{kind}"] = run_worker(command)
        if nni_python and not nni_skip and kind != "darts2":
            progress(f"memory: nni/{kind}")
            command = [nni_python, str(HERE / "nni_darts_worker.py"), "--kind", kind, *common]
            result[f"nni/{kind}"] = run_worker(command)
    return result


def nni_missing(nni_python: str | None) -> str | None:
    if not nni_python:
        return "no NNI venv given (--nni-python or $NNI_PYTHON): NNI's rows are skipped"
    if not Path(nni_python).exists():
        return f"{nni_python} does not exist: NNI's rows are skipped"
    return None


# --- ENAS: a child through the supernet against the child compiled ---------------------


def random_child(space: Space, rng: random.Random) -> list[int]:
    """Uniform decisions; a node's two inputs are distinct states (one supernet edge each)."""
    decisions: list[int] = []
    for slot in space.slots():
        count = len(slot.choices)
        if slot.name.endswith(".in1"):
            decisions.append(rng.choice([i for i in range(count) if i != decisions[-1]]))
        else:
            decisions.append(rng.randrange(count))
    return decisions


ENAS_SPACES = ("nb201", "darts", "enas_macro")


def bench_enas_child(space_name: str, children: int, repeats: int, batch: int) -> dict:
    try:
        space = load_space(space_name)
    except SpaceError as error:
        return {"skipped": f"no {space_name} space on this branch ({error})"}
    spec = supernet_spec(space)
    torch.manual_seed(0)
    supernet = load_source(generate_supernet(spec)).build_model().eval()
    x = torch.randn(batch, *spec.input_shape, generator=torch.Generator().manual_seed(1))
    rng = random.Random(0)
    rows = []
    for child in range(children):
        progress(f"enas: {space_name} child {child}")
        arch = space.to_arch(random_child(space, rng))
        weights = torch.tensor(one_hot(spec, arch))
        source = generate(arch)
        state = standalone_state_dict(spec, supernet.state_dict(), arch)
        standalone, control = (load_source(source).build_model().eval() for _ in range(2))
        for model in (standalone, control):
            model.load_state_dict(state)
        with torch.no_grad():
            difference = (supernet(x, weights) - standalone(x)).abs().max().item()
        assert difference <= ATOL, (space_name, difference)

        def evaluate(model: nn.Module, *args: torch.Tensor) -> Callable[[], None]:
            def run() -> None:
                with torch.no_grad():
                    model(x, *args)

            return run

        fns = {
            "supernet": evaluate(supernet, weights),
            "hand": evaluate(standalone),  # `compare` divides by "hand"
            "control": evaluate(control),
        }
        for fn in fns.values():
            fn()
        timing = compare(fns, repeats)
        rows.append({"arch": to_text(arch, one_line=True), "max_abs_diff": difference, **timing})
    return {
        "batch": batch,
        "children": rows,
        "supernet_ratio_median": statistics.median(r["supernet_ratio"] for r in rows),
        "supernet_cpu_ratio_median": statistics.median(r["supernet_cpu_ratio"] for r in rows),
    }


def progress(message: str) -> None:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{time.strftime('%H:%M:%S')} (load {load}) {message}", file=sys.stderr, flush=True)


# --- main ------------------------------------------------------------------------------


def machine_state() -> dict[str, object]:
    return {
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", choices=("darts", "memory", "enas"), help="run one measurement")
    parser.add_argument(
        "--nni-python",
        default=os.environ.get("NNI_PYTHON"),
        help="the Python of a venv with NNI 3.0 (default $NNI_PYTHON); without it NNI's "
        "rows are skipped",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--batch", type=int, default=16, help="DARTS batch (default 16)")
    parser.add_argument(
        "--child-batch", type=int, default=128, help="ENAS validation batch (default 128)"
    )
    parser.add_argument("--repeats", type=int, help="timed repeats (default 5, quick 2)")
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (2 if args.quick else 5)
    if args.worker:
        worker(*args.worker, batch=args.batch, repeats=repeats)
        return
    results: dict[str, object] = {"machine_at_start": machine_state()}
    if args.only in (None, "darts"):
        results["darts_steps"] = bench_darts_steps(repeats, args.batch)
    if args.only in (None, "memory"):
        results["memory"] = bench_memory(
            max(1, repeats // 2), args.batch, args.threads, args.nni_python
        )
    if args.only in (None, "enas"):
        results["enas_child"] = {
            name: bench_enas_child(name, 1 if args.quick else 3, 2 * repeats, args.child_batch)
            for name in ENAS_SPACES
        }
    results["machine_at_end"] = machine_state()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
