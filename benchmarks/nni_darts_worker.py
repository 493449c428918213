"""NNI 3.0's DARTS supernet through DARTS' search step: one configuration, one process.

Run by `bench_oneshot.py` with the Python of a separate benchmark venv (NNI is no
dependency of nasforge; see benchmarks/README.md):

    /path/to/nni-venv/bin/python benchmarks/nni_darts_worker.py --kind weight|darts1

The supernet is NNI's own: the model space `nni.nas.hub.pytorch.DARTS(width=16,
num_cells=8, dataset='cifar')` converted by its DARTS strategy
(`nni.nas.strategy.DARTS().mutate_model`), whose mixed layers and inputs hold the
architecture parameters (`_arch_alpha`) and take their softmax in forward. The
loop is the one `darts_steps.py` times for nasforge's supernet: SGD on the weights,
Adam on the architecture parameters (DARTS' settings, as NNI's DartsLightningModule
configures them). NNI's DARTS is first order only ("Second order ... is not
supported yet", nni/nas/oneshot/pytorch/strategy.py), so there is no `darts2`.
The first-order architecture step is NNI's own (DartsLightningModule.training_step):
the loss on the validation batch, backward (every weight's gradient too), the Adam
step; `arch_alphas_only` times it as nasforge's Architect takes it (the gradient of
the alphas alone), to tell the network's cost from the step's. The weight step, as
NNI's, also computes the alphas' gradient (nasforge's engine detaches the mixture).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings

import darts_steps as ds
import torch
from torch.nn import functional as F


def build():
    from nni.nas.hub.pytorch import DARTS
    from nni.nas.strategy import DARTS as DartsStrategy

    space = DARTS(width=16, num_cells=8, dataset="cifar")
    return DartsStrategy().mutate_model(space)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("weight", "darts1"), required=True)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # NNI writes its experiments under ~/nni-experiments.
    os.environ["HOME"] = tempfile.mkdtemp(prefix="nni-home-")
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="nni")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build().train()
    named = dict(model.named_parameters())
    alphas = [p for name, p in named.items() if "_arch_alpha" in name]
    weights = [p for name, p in named.items() if "_arch_alpha" not in name]
    batches = ds.cifar_batches(args.batch, seed=args.seed)

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y)

    steps = {}
    if args.kind == "darts1":
        arch = torch.optim.Adam(
            alphas, lr=ds.ARCH_LR, betas=ds.ARCH_BETAS, weight_decay=ds.ARCH_DECAY
        )

        def arch_step() -> None:
            arch.zero_grad(set_to_none=True)
            loss(batches.x_valid, batches.y_valid).backward()
            arch.step()

        def arch_step_alphas_only() -> None:
            # As nasforge's Architect takes its first-order step: only the alphas' gradient.
            arch.zero_grad(set_to_none=True)
            grads = torch.autograd.grad(loss(batches.x_valid, batches.y_valid), alphas)
            for alpha, grad in zip(alphas, grads, strict=True):
                alpha.grad = grad
            arch.step()

        steps["arch"] = arch_step
        steps["arch_alphas_only"] = arch_step_alphas_only
    steps["weight"] = ds.weight_step(loss, ds.weight_optimizer(weights), batches)
    info = {
        "impl": "nni",
        "kind": args.kind,
        "batch": args.batch,
        "parameters": sum(p.numel() for p in weights),
        "arch_parameters": sum(p.numel() for p in alphas),
        "nni": __import__("nni").__version__,
    }
    ds.run_configuration(steps, args.repeats, info)


if __name__ == "__main__":
    sys.exit(main())
