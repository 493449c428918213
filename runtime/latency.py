"""Measured latency: a trained child exported to ONNX and timed in onnxruntime on this machine.

MnasNet's objective (Tan et al. 2019) trades accuracy against latency measured on the
target device, not a proxy. Here the device is this machine's CPU: the child is exported
as `nasforge export` exports it (runtime/onnx_export.py), loaded into an onnxruntime
session with one intra-op and one inter-op thread (so that the figure does not depend on
how many other trials share the cores, and is the single-stream latency of one request),
run WARMUP times, then timed over RUNS runs of batch 1; the median of those is the
latency. Image children take one seeded random image; language models one sequence of
SEQUENCE tokens.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

WARMUP = 10
RUNS = 50
THREADS = 1
SEQUENCE = 35  # tokens of a language model's timed input (the NAS paper's unroll length)


@dataclass(frozen=True)
class Latency:
    median_ms: float
    runs: int
    warmup: int
    threads: int

    def metrics(self) -> dict[str, Any]:
        """What a trial's metrics record."""
        return {
            "latency_ms": self.median_ms,
            "latency": {
                "runs": self.runs,
                "warmup": self.warmup,
                "threads": self.threads,
            },
        }


def measure_latency(model: Any, arch: Any, *, warmup: int = WARMUP, runs: int = RUNS) -> Latency:
    """The median onnxruntime latency of `model` (generated from `arch`) at batch 1, in ms."""
    import onnxruntime

    from .onnx_export import onnx_bytes

    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, not {runs} and {warmup}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = THREADS
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    session = onnxruntime.InferenceSession(
        onnx_bytes(model, arch), options, providers=["CPUExecutionProvider"]
    )
    feed = _inputs(session, arch)
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - began)
    return Latency(statistics.median(times) * 1000.0, runs, warmup, THREADS)


def _inputs(session: Any, arch: Any) -> dict[str, Any]:
    """One batch-1 input for each of the graph's inputs."""
    import numpy as np

    generator = np.random.default_rng(0)
    if arch.family != "rnn":
        (image,) = session.get_inputs()
        return {image.name: generator.standard_normal((1, *arch.input_shape), dtype=np.float32)}
    (tokens,) = session.get_inputs()
    return {tokens.name: np.zeros((SEQUENCE, 1), dtype=np.int64)}
