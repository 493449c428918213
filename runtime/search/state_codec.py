"""A strategy's state as bytes that can only ever be data: JSON for the structure, raw
bytes for the tensors. No pickle is involved, so a checkpoint read from a store that
came from elsewhere cannot run code, whatever its bytes are.

A state is built from None, bools, ints, floats, strings, lists, tuples, dicts (keys of
those scalar types) and torch tensors (on the CPU, of the dtypes in `_DTYPES`): what
the strategies' `state_dict()`s hold (module and optimizer state, torch generator
states as uint8 tensors, random.Random states as tuples, counters, lists of rewards).

Layout: MAGIC, the JSON header's length (8 bytes, little-endian), the header, then the
tensors' bytes one after another. Containers are tagged in the header
(``{"t": "tuple", "v": [...]}``) so tuples, int dict keys and tensors come back as they
went in.
"""

from __future__ import annotations

import json
from typing import Any

MAGIC = b"nasforge-state 1\n"

# Checkpoints written by nasforge before this format: torch.save's zip archive.
TORCH_ZIP_MAGIC = b"PK\x03\x04"

_DTYPES = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "bool",
)


class StateFormatError(ValueError):
    """The bytes are not a state in this format (damaged, or something else)."""


def encode_state(state: Any) -> bytes:
    """`state` as bytes; TypeError (naming where) for a value this format does not hold."""
    chunks: list[bytes] = []
    header = _encode(state, chunks, "state")
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return b"".join([MAGIC, len(text).to_bytes(8, "little"), text, *chunks])


def decode_state(blob: bytes) -> Any:
    """The state `encode_state` wrote; StateFormatError for anything else."""
    if not blob.startswith(MAGIC):
        raise StateFormatError("it does not start with the nasforge state marker")
    start = len(MAGIC) + 8
    if len(blob) < start:
        raise StateFormatError("it is cut short")
    length = int.from_bytes(blob[len(MAGIC) : start], "little")
    if start + length > len(blob):
        raise StateFormatError("its header is cut short")
    try:
        header = json.loads(blob[start : start + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise StateFormatError(f"its header is not JSON ({err})") from None
    data = memoryview(blob)[start + length :]
    try:
        return _decode(header, data)
    except RecursionError:
        raise StateFormatError("its header nests too deeply") from None


def _encode(value: Any, chunks: list[bytes], where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        tag = "list" if isinstance(value, list) else "tuple"
        items = [_encode(v, chunks, f"{where}[{i}]") for i, v in enumerate(value)]
        return {"t": tag, "v": items}
    if isinstance(value, dict):
        pairs = []
        for key, item in value.items():
            if not (key is None or isinstance(key, (bool, int, float, str))):
                raise TypeError(f"{where}: a key of type {type(key).__name__} cannot be stored")
            pairs.append([key, _encode(item, chunks, f"{where}[{key!r}]")])
        return {"t": "dict", "v": pairs}
    return _encode_tensor(value, chunks, where)


def _encode_tensor(value: Any, chunks: list[bytes], where: str) -> dict[str, Any]:
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{where}: a {type(value).__name__} cannot be stored in a checkpoint")
    dtype = str(value.dtype).removeprefix("torch.")
    if dtype not in _DTYPES:
        raise TypeError(f"{where}: a tensor of dtype {dtype} cannot be stored in a checkpoint")
    flat = value.detach().cpu().contiguous().reshape(-1)
    raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
    offset = sum(len(c) for c in chunks)
    chunks.append(raw)
    return {"t": "tensor", "dtype": dtype, "shape": list(value.shape), "at": offset, "n": len(raw)}


def _decode(node: Any, data: memoryview) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if not isinstance(node, dict) or not isinstance(node.get("v", []), list):
        raise StateFormatError(f"its header holds a malformed entry {str(node)[:80]}")
    tag = node.get("t")
    if tag == "list":
        return [_decode(v, data) for v in node["v"]]
    if tag == "tuple":
        return tuple(_decode(v, data) for v in node["v"])
    if tag == "dict":
        return dict(_decode_pair(pair, data) for pair in node["v"])
    if tag == "tensor":
        return _decode_tensor(node, data)
    raise StateFormatError(f"its header holds an unknown entry {str(tag)[:40]!r}")


def _decode_pair(pair: Any, data: memoryview) -> tuple[Any, Any]:
    if not isinstance(pair, list) or len(pair) != 2 or isinstance(pair[0], (dict, list)):
        raise StateFormatError(f"its header holds a malformed dict item {str(pair)[:80]}")
    return pair[0], _decode(pair[1], data)


def _decode_tensor(node: dict[str, Any], data: memoryview) -> Any:
    import torch

    dtype, shape, at, n = (node.get(k) for k in ("dtype", "shape", "at", "n"))
    if dtype not in _DTYPES or not isinstance(shape, list):
        raise StateFormatError(f"its header holds a malformed tensor {str(node)[:80]}")
    if not all(isinstance(x, int) and x >= 0 for x in [*shape, at, n]):
        raise StateFormatError(f"its header holds a malformed tensor {str(node)[:80]}")
    kind = getattr(torch, dtype)
    count = 1
    for size in shape:
        count *= size
    itemsize = torch.empty((), dtype=kind).element_size()
    if count * itemsize != n or at + n > len(data):
        raise StateFormatError(f"a tensor's bytes do not match its shape {shape} ({dtype})")
    if n == 0:
        return torch.empty(shape, dtype=kind)
    raw = torch.frombuffer(bytearray(data[at : at + n]), dtype=torch.uint8)
    return raw.view(kind).reshape(shape)
