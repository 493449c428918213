"""The names the command line offers as choices, importable without torch.

`nasforge --help` lists every command's options, so the modules that define the
commands import their choices from here, not from the torch-backed registries
(runtime/data.py's DATASETS, runtime/devices.py) that must agree with them.
"""

DATASET_NAMES = ("digits", "mnist5k", "cifar10", "ptb", "ptb-char")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
