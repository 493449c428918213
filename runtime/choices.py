"""The names and defaults the command line offers, importable without torch.

`nasforge --help` lists every command's options, so the modules that define the
commands import their choices and defaults from here, not from the torch-backed
modules that use them (runtime/data.py's DATASETS registry, runtime/devices.py,
runtime/onnx_export.py).
"""

DATASET_NAMES = ("digits", "mnist5k", "cifar10", "ptb", "ptb-char")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
# ONNX parity, as numpy.allclose: |onnxruntime - PyTorch| <= atol + rtol * |PyTorch|
DEFAULT_TOLERANCE = 1e-4  # atol
DEFAULT_RTOL = 1e-4  # float32 keeps about 7 digits; kernels that sum in another order differ
DEFAULT_CHECKS = 3  # ONNX parity: random inputs compared
