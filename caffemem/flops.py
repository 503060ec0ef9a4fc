"""What one forward pass of a layer computes, counted by kind of operation.

The categories are those of netscope's analyzer (the dgschwend/cwlacewe fork's
``analyzer.coffee``: ``macc``, ``comp``, ``add``, ``div``, ``exp``), each named here for
what it counts:

- ``macs``: multiply-adds -- a multiply and the add it feeds count as one; a lone multiply
  (a scale, an element-wise product) counts as one too.  Convolution and inner product live
  here, and the figures people publish for a net (AlexNet's ~0.72 G) are these;
- ``comparisons``: max/min, thresholds, the comparisons of MAX pooling and ReLU;
- ``adds``: additions and subtractions that no multiply goes with (sums, biases, the mean
  subtracted);
- ``divides``: divisions;
- ``exps``: transcendental evaluations -- exp, log, pow, sqrt, tanh.

Caffe often writes an add as a GEMM/GEMV with a vector of ones (the bias, BatchNorm's and
Softmax's sums); such a product is counted as the add it implements, not as a multiply-add.

Each layer rule says what its type computes (``LayerRule.flops``, in
``caffemem/layers/<family>.py``), like fvcore's table of FLOP handlers; ``None`` there means
caffemem does not count that type (its work depends on the data, or is user code).

A leaf: imports nothing of caffemem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

#: the categories, in the order every output shows them
CATEGORIES = ("macs", "comparisons", "adds", "divides", "exps")
#: short column names for tables
SHORT = {"macs": "MACs", "comparisons": "cmp", "adds": "add", "divides": "div", "exps": "exp"}


@dataclass(frozen=True)
class Flops:
    """Operations of one forward pass, by category (exact integers)."""

    macs: int = 0
    comparisons: int = 0
    adds: int = 0
    divides: int = 0
    exps: int = 0

    def __add__(self, other: "Flops") -> "Flops":
        if not isinstance(other, Flops):
            return NotImplemented
        return Flops(*(getattr(self, f) + getattr(other, f) for f in CATEGORIES))

    def __mul__(self, n: int) -> "Flops":
        """Every category ``n`` times (``per_element * count``)."""
        if not isinstance(n, int):
            return NotImplemented
        return Flops(*(getattr(self, f) * n for f in CATEGORIES))

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return any(getattr(self, f) for f in CATEGORIES)

    @property
    def other(self) -> int:
        """Every operation that is not a multiply-add: comparisons, adds, divides, exps."""
        return self.comparisons + self.adds + self.divides + self.exps

    def to_dict(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in CATEGORIES}


#: nothing computed: the layer moves or shares memory only
NONE = Flops()


def total(items: Iterable[Optional[Flops]]) -> Flops:
    """The sum of ``items``; ``None`` (not counted) adds nothing."""
    out = NONE
    for f in items:
        if f is not None:
            out = out + f
    return out


__all__ = ["Flops", "CATEGORIES", "SHORT", "NONE", "total"]
