"""Byte counts for people: binary units out, one parser for every size typed in.

Sizes inside caffemem are exact Python ints (bytes).  Only these helpers turn them into text
and back.  Every size a user types (``--gpu-mem`` and any other size option) goes through
:func:`parse_size`, with one meaning for every unit: ``K``/``M``/``G``/``T``/``P``, with or
without ``B``/``iB``/``i``, are powers of 1024 -- memory is sold that way (a card sold as
"8 GB" holds 8 GiB: nvidia-smi says 8192 MiB), so ``8G`` = ``8GB`` = ``8GiB`` = ``8Gi``.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from .errors import UserError, shown

_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
_POWER = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}
# number (1, 1.5, .5, 1e10, 1.5e9), then an optional unit: K, KB, KiB, Ki (any case), B
_SIZE_RE = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*"
                      r"(?:([kKmMgGtTpPeE])(?:[iI])?)?([bB])?$")
#: the largest size caffemem takes: a signed 64-bit byte count
SIZE_MAX = 2**63 - 1
#: below this a bare number is surely a typo for a unit (no GPU holds less than a MiB)
SMALLEST = 1 << 20
SIZE_HELP = ("K, M, G, T with or without B, iB or i are powers of 1024: 8G = 8GB = 8GiB = 8Gi "
             "(card makers' GB: an '8 GB' card holds 8 GiB = 8192 MiB); also 11.5G, 8192M, "
             "or a byte count")


def human(nbytes: int, digits: int = 1) -> str:
    """``1536 -> '1.5 KiB'``; exact below 1 KiB; negative numbers keep their sign."""
    sign = "-" if nbytes < 0 else ""
    n = abs(int(nbytes))
    if n < 1024:
        return f"{sign}{n} B"
    unit = 0
    value = n
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{sign}{value:.{digits}f} {_UNITS[unit]}"


def exact(nbytes: int) -> str:
    """A size as a person reads it and to the byte: ``'8.00 GiB = 8,589,934,592 B'``."""
    return f"{human(nbytes, 2)} = {int(nbytes):,} B"


def capacity_phrase(nbytes: int, what: str = "GPU") -> str:
    """How ``--gpu-mem`` was understood, for the output: ``'GPU: 8.00 GiB = 8,589,934,592 B'``."""
    return f"{what}: {exact(nbytes)}"


def _suggest(n: int) -> str:
    """The size a bare small number most likely meant: ``8`` -> ``8G``, ``8192`` -> ``8192M``."""
    return f"{n}G" if n < 1024 else f"{n}M"


def parse_size(text: str, option: str = "size") -> int:
    """Bytes from ``8G``, ``8GB``, ``8GiB``, ``8Gi``, ``11.5G``, ``8192M``, ``8192MiB``,
    ``1e10`` or a plain byte count (at least 1 MiB).  Every unit is binary (see the module
    docstring).  Anything else -- zero, negative, NaN, infinite, too large, junk, a bare
    number too small to be a memory -- is a :class:`UserError` naming ``option`` and saying
    what was probably meant."""
    raw = text if isinstance(text, str) else str(text)
    t = raw.strip().replace("_", "").replace(",", "") if raw.strip() else ""
    head = f"{option} {shown(raw)}"
    if not t:
        raise UserError(f"{head}: empty size; {_EXAMPLE}")
    m = _SIZE_RE.match(t)
    if not m:
        low = t.lower()
        if low.lstrip("+-") in ("nan", "inf", "infinity"):
            raise UserError(f"{head}: not a number of bytes; {_EXAMPLE}")
        raise UserError(f"{head}: cannot read this size; {_EXAMPLE}")
    number, prefix, byte = m.group(1), (m.group(2) or "").lower(), m.group(3)
    exp = re.search(r"[eE]([+-]?[0-9]+)$", number)
    if len(number) > 40 or (exp and abs(int(exp.group(1))) > 40):
        raise UserError(f"{head}: out of range; {_EXAMPLE}")
    value = Fraction(number)
    nbytes = math.floor(value * (1024 ** _POWER[prefix]))
    if value < 0:
        raise UserError(f"{head}: a size cannot be negative; {_EXAMPLE}")
    if nbytes == 0:
        raise UserError(f"{head}: a size must be more than 0 bytes; {_EXAMPLE}")
    if nbytes > SIZE_MAX:
        raise UserError(f"{head}: larger than caffemem takes (at most 8 EiB); {_EXAMPLE}")
    if not prefix and not byte and nbytes < SMALLEST:
        raise UserError(f"{head}: `{number}` is {nbytes:,} byte{'s' if nbytes != 1 else ''}; "
                        f"did you mean {_suggest(nbytes)}? (a bare number is bytes; sizes under "
                        f"1 MiB need a unit)")
    return nbytes


_EXAMPLE = "use e.g. 8G (= 8GB = 8GiB, card makers' GB), 11.5G, 12000M or a byte count"
