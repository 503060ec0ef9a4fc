"""Byte counts for people: binary units out, human sizes in.

Sizes inside caffemem are exact Python ints (bytes).  Only these helpers turn them into text.
"""

from __future__ import annotations

import re

from .errors import UserError

_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
_SUFFIX = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1 << 10,
    "m": 1000**2, "mb": 1000**2, "mib": 1 << 20,
    "g": 1000**3, "gb": 1000**3, "gib": 1 << 30,
    "t": 1000**4, "tb": 1000**4, "tib": 1 << 40,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*$")


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


def parse_size(text: str) -> int:
    """Parse ``8GiB``, ``8 GB``, ``8192MiB``, ``12e9``-free plain ints; returns bytes.

    ``GB`` means 10^9 and ``GiB`` 2^30, as written; a bare ``G`` is taken as decimal too,
    matching how GPU vendors label cards.
    """
    m = _SIZE_RE.match(text)
    if not m or m.group(2).lower() not in _SUFFIX:
        raise UserError(f"cannot read size '{text}': use e.g. 8GiB, 11GB, 12000MiB or a byte count")
    number, suffix = m.group(1), m.group(2).lower()
    mult = _SUFFIX[suffix]
    if "." in number:
        whole, frac = number.split(".")
        frac = frac or "0"
        return int(whole) * mult + (int(frac) * mult) // (10 ** len(frac))
    return int(number) * mult
