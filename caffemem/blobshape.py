"""Blob shape arithmetic, as Caffe's ``Blob`` does it (``include/caffe/blob.hpp``).

A leaf module: it imports nothing of caffemem, so the layer rules (:mod:`caffemem.layers`),
the net builder and the memory model (:mod:`caffemem.memory`) all use the same arithmetic
without importing each other.  Errors are :class:`ShapeError` (a ``ValueError``); a layer
rule turns them into a message naming its layer (:meth:`caffemem.layers.base.LayerCtx.fail`).
"""

from __future__ import annotations

import math
import struct
from typing import Sequence

Shape = tuple[int, ...]
_F32 = struct.Struct("f")


class ShapeError(ValueError):
    """A shape an accessor refuses (Caffe CHECK-fails there)."""


def count(shape: Sequence[int]) -> int:
    """``Blob::count``: the number of elements (a Python int, exact: no 32-bit overflow)."""
    n = 1
    for d in shape:
        n *= d
    return n


def float32(x: float) -> float:
    """``x`` rounded to the nearest float32 (C's ``(float)x``), as Caffe's shape arithmetic
    in ``float`` does it (a pooled size's division, an SSD prior's step): an operation on
    float32 operands done in double and rounded so is exactly float32's, since a double has
    more than 2 x 24 + 2 bits.  Beyond float32's range: an infinity, as a cast gives."""
    try:
        return _F32.unpack(_F32.pack(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def canonical_axis(axis: int, num_axes: int) -> int:
    """``Blob::CanonicalAxisIndex``: a negative axis counts from the end (blob.hpp:78-89)."""
    if not -num_axes <= axis < max(num_axes, 1):
        raise ShapeError(f"axis {axis} out of range for a {num_axes}-axis blob")
    return axis + num_axes if axis < 0 else axis


def legacy_shape(shape: Sequence[int], index: int) -> int:
    """``Blob::LegacyShape``: num/channels/height/width of a blob of at most 4 axes; a
    missing axis counts as 1 (blob.hpp:138-149)."""
    if len(shape) > 4:
        raise ShapeError(f"cannot use legacy accessors (num/channels/height/width) on a blob of "
                         f"more than 4 axes: {list(shape)} (blob.hpp:140-141)")
    if index >= len(shape) or index < -len(shape):
        return 1
    return shape[index]


def legacy_shape4(shape: Sequence[int]) -> Shape:
    """``(num(), channels(), height(), width())``: the 4-D shape a layer gets when it reshapes
    through the legacy accessors (blob.hpp:138-151); a missing axis counts as 1."""
    return tuple(legacy_shape(shape, i) for i in range(4))
