"""Imported by the local pool's fork server (runtime/search/executors.py) to build, once, the
caches every trial needs: the architecture parser (Lark's tables, 0.2 s) and the code
generator's compiled templates. Each trial's process is forked from the server and
inherits them warm.

Pure Python only: no tensor is made here, so no torch (OpenMP) thread exists yet when
the server forks.
"""

from __future__ import annotations

from nasforge.codegen import generate
from nasforge.grammar import parse

WARM_ARCHS = (
    "cnn input 1x8x8 classes 10; L1: conv 3x3 n8; L2: maxpool 2x2 <- L1",
    "rnn base 2; N0: add tanh; N1: mul relu; N2: mul sigmoid; inject N0: add relu; cell N1",
    "cells nb201 input 3x32x32 classes 10 n 5 filters 16; cell: S1 = add(conv3x3(S0)); "
    "S2 = add(conv3x3(S0), conv3x3(S1)); S3 = add(skip(S0), conv3x3(S1), conv1x1(S2)); out = S3",
)


def warm() -> None:
    for text in WARM_ARCHS:
        generate(parse(text), black=False)


warm()
