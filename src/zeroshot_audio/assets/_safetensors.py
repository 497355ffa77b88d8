"""Read safetensors data with numpy alone: the format holds tensors only, so reading it cannot run code.

Layout (https://github.com/huggingface/safetensors): an unsigned 64-bit little-endian header length ``N``,
``N`` bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``, then
the raw little-endian tensor data; the offsets count from the first byte after the header.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping

import numpy as np

from .._errors import CheckpointError

__all__ = ["read_safetensors"]

_DTYPES: Mapping[str, str] = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}


def read_safetensors(data: bytes | bytearray | memoryview, *, name: str = "safetensors data") -> dict[str, np.ndarray]:
    """The tensors of a safetensors file's bytes, as read-only numpy arrays viewing ``data``.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    name : str
        Names the data in error messages (e.g. the file path or wheel member).

    Returns
    -------
    dict of str to np.ndarray
        Tensor name -> array of the stored dtype and shape, in header order; ``__metadata__`` is left out.

    Raises
    ------
    CheckpointError
        The header is malformed, names an unsupported dtype (e.g. ``BF16``), or an offset does not fit the
        data or the tensor's shape.
    """
    view = memoryview(data)
    if len(view) < 8:
        raise CheckpointError(f"{name}: {len(view)} bytes, too short for a safetensors header")
    (size,) = struct.unpack("<Q", view[:8])
    if size > len(view) - 8:
        raise CheckpointError(f"{name}: header length {size} exceeds the {len(view) - 8} bytes after it")
    try:
        header = json.loads(bytes(view[8 : 8 + size]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{name}: the safetensors header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: the safetensors header is a {type(header).__name__}, expected an object")
    body = view[8 + size :]
    out: dict[str, np.ndarray] = {}
    for key, spec in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = np.dtype(_DTYPES[spec["dtype"]])
            shape = tuple(int(d) for d in spec["shape"])
            begin, end = (int(x) for x in spec["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{name}: tensor {key!r} has header {spec!r}; expected dtype (one of "
                                  f"{', '.join(_DTYPES)}), shape and data_offsets") from None
        if (min(shape, default=0) < 0 or not 0 <= begin <= end <= len(body)
                or end - begin != math.prod(shape) * dtype.itemsize):
            raise CheckpointError(f"{name}: tensor {key!r} ({spec['dtype']} {list(shape)}) has data_offsets "
                                  f"[{begin}, {end}], which do not fit its shape or the {len(body)} data bytes")
        out[key] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
    return out
