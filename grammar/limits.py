"""Size limits that stop absurd architectures before anything is built.

Each limit is generous next to the published networks (the NAS paper's largest
CIFAR-10 network has 39 layers and 7x7 kernels; NASNet-A Large has 4032
penultimate filters) and small enough that nothing checked here can exhaust
memory while it is parsed, validated or costed.
"""

from __future__ import annotations

MAX_SOURCE_CHARS = 65_536  # an architecture text; the largest example is under 2 KB
MAX_NUMBER_DIGITS = 9  # any integer literal, so int() never sees a huge string
MAX_NUMBER_CHARS = 32  # a decimal literal such as an lr

# cnn family
MAX_LAYERS = 256
MAX_FILTERS = 4_096
MAX_KERNEL = 15
MAX_STRIDE = 8
MAX_INPUT_CHANNELS = 64
MAX_INPUT_SIZE = 1_024  # height and width of the input image
MAX_CLASSES = 100_000
MIN_LR = 1e-6
MAX_LR = 10.0

# rnn family
MAX_BASE = 64  # leaves of the tree; base 64 has 127 nodes

# cells family
MAX_CELL_NODES = 16  # new nodes per cell
MAX_CELL_EDGES = 16  # (op, input) pairs per node
