"""The bytes on the socket: msgpack with numpy arrays, in the layout openpi's client uses.

openpi-client (https://github.com/Physical-Intelligence/openpi, packages/openpi-client, msgpack_numpy.py)
sends an array as a msgpack map with binary keys: ``__ndarray__: true``, ``data`` (the raw C-order bytes),
``dtype`` (numpy's dtype string, e.g. ``"|u1"``, ``"<f4"``) and ``shape``; a numpy scalar as
``__npgeneric__: true``, ``data`` (the Python value), ``dtype``. Object, void and complex dtypes are not sent.
This module writes and reads that layout with msgpack alone (numpy for the arrays), so a client built on
openpi-client and one built on msgpack + numpy understand the server alike.

Decoding checks what it is given: a map that claims to be an array but whose bytes do not fill its shape, or
whose dtype is not a plain number, raises WireError instead of reaching the policy.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

ND = b"__ndarray__"
SCALAR = b"__npgeneric__"
_REFUSED_KINDS = "OVcMm"  # objects, raw structs, complex, datetimes: no plain meaning on the robot's side


class WireError(ValueError):
    """A message that is not valid msgpack, or an array map that does not describe an array."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in _REFUSED_KINDS:
        raise TypeError(f"cannot send a numpy array of dtype {obj.dtype}")
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        return {ND: True, b"data": arr.tobytes(), b"dtype": arr.dtype.str, b"shape": list(arr.shape)}
    if isinstance(obj, np.generic):
        return {SCALAR: True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot send a {type(obj).__name__}")


def _dtype(raw: Any) -> np.dtype[Any]:
    try:
        dtype = np.dtype(raw.decode() if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError) as e:
        raise WireError(f"array dtype {raw!r} is not a numpy dtype") from e
    if dtype.kind in _REFUSED_KINDS:
        raise WireError(f"array dtype {dtype} is not accepted (numbers and booleans only)")
    return dtype


def _decode(obj: dict[Any, Any]) -> Any:
    if obj.get(ND) is True:
        dtype, data, shape = _dtype(obj.get(b"dtype")), obj.get(b"data"), obj.get(b"shape")
        if not isinstance(data, bytes) or not isinstance(shape, (list, tuple)) or not all(
                isinstance(n, int) and n >= 0 for n in shape):
            raise WireError("an array map needs binary data and a shape of non-negative integers")
        if len(data) != math.prod(shape) * dtype.itemsize:
            raise WireError(f"array of shape {tuple(shape)} and dtype {dtype} needs "
                            f"{math.prod(shape) * dtype.itemsize} bytes, got {len(data)}")
        return np.frombuffer(data, dtype=dtype).reshape(shape)
    if obj.get(SCALAR) is True:
        try:
            return _dtype(obj.get(b"dtype")).type(obj.get(b"data"))
        except (TypeError, ValueError, OverflowError) as e:
            raise WireError(f"bad numpy scalar: {e}") from e
    return obj


def packb(obj: Any) -> bytes:
    """msgpack bytes of ``obj`` (dicts, lists, str, numbers, None, numpy arrays and scalars)."""
    out: bytes = msgpack.packb(obj, default=_encode, use_bin_type=True)
    return out


def unpackb(data: bytes) -> Any:
    """The object ``packb`` (or openpi-client's packer) wrote.

    Raises:
        WireError: the bytes are not one msgpack object, or an array inside is malformed.
    """
    try:
        return msgpack.unpackb(data, object_hook=_decode, raw=False, strict_map_key=False)
    except WireError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as e:  # ExtraData, FormatError, StackError, ...
        why = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise WireError(f"not a msgpack message ({why})") from e
