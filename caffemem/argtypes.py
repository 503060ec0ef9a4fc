"""Checked values for command-line options: argparse ``type=`` callables.

Each one turns a bad value into :class:`argparse.ArgumentTypeError`, which the CLI's parser
prints as one line naming the option (``caffemem: error: ... argument --level: ...``), exit 1.
Ranges follow what Caffe itself accepts (``NetState.level`` is an int32, a cuDNN workspace
is at most 8 MiB per op, ...), so a value Caffe would refuse never reaches the model.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable, Optional

from .errors import UserError, shown
from .units import parse_size

INT32_MIN, INT32_MAX = -2**31, 2**31 - 1


def size(option: str) -> Callable[[str], int]:
    """A memory size (``8G``, ``11.5GiB``, ``12000M``...), see :func:`caffemem.units.parse_size`."""
    def parse(text: str) -> int:
        try:
            return parse_size(text, option)
        except UserError as e:
            raise argparse.ArgumentTypeError(str(e)[len(option) + 1:]) from None
    parse.__name__ = "size"
    return parse


def integer(lo: Optional[int] = None, hi: Optional[int] = None, why: str = "") -> Callable[[str], int]:
    """A whole number in ``[lo, hi]``; ``why`` says where the bounds come from."""
    def parse(text: str) -> int:
        t = text.strip().replace("_", "")
        try:
            v = int(t, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not a whole number") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{shown(text)} is out of range: {_bounds(lo, hi)}"
                                             + (f" ({why})" if why else ""))
        return v
    parse.__name__ = "integer"
    return parse


def number(lo: Optional[float] = None, hi: Optional[float] = None, why: str = "") -> Callable[[str], float]:
    """A finite real number in ``[lo, hi]`` (NaN and infinities refused)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not a number") from None
        if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{shown(text)} is out of range: {_bounds(lo, hi)}"
                                             + (f" ({why})" if why else ""))
        return v
    parse.__name__ = "number"
    return parse


def _bounds(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"must be between {lo:,} and {hi:,}"
    if lo is not None:
        return f"must be at least {lo:,}"
    return f"must be at most {hi:,}"
