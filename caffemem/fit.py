"""What-ifs on the model: the largest batch (or input scale) that fits a GPU.

The search is exact on the model: the modeled total is non-decreasing in the batch size, so
an exponential probe brackets the answer and a bisection finds it; the answer is then checked
again (it fits) together with the next step (it does not).  Every probe is a full rebuild of
the nets and a full run of the model, so the answer is what ``caffemem analyze`` would say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import NetError, UserError


@dataclass
class FitResult:
    """The largest value that fits (None if even the smallest does not) and the evidence."""

    what: str  # "batch" or "scale"
    best: Optional[int]
    best_total: Optional[int]
    next_value: Optional[int]
    next_total: Optional[int]
    capacity: int
    probes: dict[int, Optional[int]] = field(default_factory=dict)  # value -> total (None: invalid)

    @property
    def fits_at_all(self) -> bool:
        return self.best is not None


def largest_fitting(total_at: Callable[[int], Optional[int]], capacity: int, start: int = 1,
                    limit: int = 1 << 20, what: str = "batch") -> FitResult:
    """Largest ``v >= start`` with ``total_at(v) <= capacity``; ``total_at`` returns None for a
    value that does not build (the search then treats it as not fitting)."""
    probes: dict[int, Optional[int]] = {}

    def total(v: int) -> Optional[int]:
        if v not in probes:
            try:
                probes[v] = total_at(v)
            except NetError:
                probes[v] = None
        return probes[v]

    def ok(v: int) -> bool:
        t = total(v)
        return t is not None and t <= capacity

    if not ok(start):
        return FitResult(what, None, None, start, total(start), capacity, probes)
    lo, hi = start, start * 2
    while hi <= limit and ok(hi):
        lo, hi = hi, hi * 2
    if hi > limit:
        return FitResult(what, lo, total(lo), None, None, capacity, probes)
    while hi - lo > 1:  # invariant: ok(lo), not ok(hi)
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    # verification: the answer fits, the next step does not (re-evaluated, not cached)
    probes.pop(lo, None)
    probes.pop(lo + 1, None)
    if not ok(lo) or ok(lo + 1):
        raise UserError("the model is not monotone in this parameter here; the search cannot "
                        "give a reliable answer (please report this net)")
    return FitResult(what, lo, total(lo), lo + 1, total(lo + 1), capacity, probes)
