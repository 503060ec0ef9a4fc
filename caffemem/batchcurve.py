"""The modeled peak as an exact function of the train batch: the largest batch for many cards
at the cost of three model runs.

The replay of a run (:func:`caffemem.memory.model.replay`) touches the same memories in the
same order whatever the batch; only their sizes change, and each size is an affine function
of the batch (a blob's count is N x C x H x W; parameters, im2col buffers and workspaces do
not depend on N).  So the live bytes after each allocation are ``a_k + (N - 1) * b_k`` and the
peak is ``max_k`` of them: a convex, non-decreasing piecewise-linear function of N, and
"the largest N that fits" is a minimum of floor divisions.

That is checked, not assumed: the replays at batch 1, 2 and at the largest answer must have
the same allocation sequence, and every allocation's size at the largest answer must be
exactly what the line through batch 1 and 2 says.  When the check fails (a size that is not
affine, a net that refuses a batch, several GPUs) the answers come from
:func:`caffemem.fit.largest_fitting`, the bisection ``caffemem fit`` runs, with the model's
totals shared between the cards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

from .errors import NetError
from .forked import warm
from .memory.card import LARGE_STEP, SMALL_LIMIT, SMALL_STEP, fixed_bytes

GiB = 1 << 30
#: the card sizes the report answers for (GiB)
CARDS_GIB = (4, 6, 8, 11, 12, 16, 24, 32, 48, 80)
#: largest batch the table searches (a card holding more says "at least"); fit searches to 2^20
LIMIT = 1 << 16
#: model runs the bisection fallback may spend on the whole table
SEARCH_BUDGET = 48


class NoCardTable(Exception):
    """The table cannot be had cheaply for this net (the reason says why and what to run)."""


@dataclass
class CardFit:
    """The largest train batch whose modeled peak fits ``capacity`` (None: not even 1) and
    the peak at it; ``how``: "affine" (exact formula, checked) or "search" (bisection)."""

    capacity: int
    largest: Optional[int]
    total_at_largest: Optional[int]
    how: str

    @property
    def at_least(self) -> bool:
        """The search stopped at :data:`LIMIT`: that batch fits, larger ones were not tried."""
        return self.largest == LIMIT

    def to_dict(self) -> dict:
        return {"capacity_bytes": self.capacity, "largest_batch": self.largest,
                "at_least": self.at_least, "total_bytes_at_largest": self.total_at_largest,
                "how": self.how}


def _sizes(loaded, options, env, batch: int):
    """(allocation sequence signature, signed sizes) of the replay at ``batch``."""
    from .analysis import build_loaded
    from .memory.model import replay

    nets = build_loaded(loaded, replace(options, batch=batch, batch_train_only=True))
    return _signature(replay(nets, env, pinned_bookkeeping=not env.gpu), env)


def same_as_probe(options, net, batch: Optional[int]) -> bool:
    """Would a probe at ``batch`` build exactly ``net`` (the train net of a run without
    ``--batch``)?  Only when every data layer of it already has that batch."""
    if options.batch is not None or not batch:
        return False
    for layer in net.layers:
        if layer.rule is not None and getattr(layer.rule, "is_data", False):
            if any(not net.blobs[t].shape or net.blobs[t].shape[0] != batch for t in layer.tops):
                return False
    return True


def card_fits(loaded, options, env, capacities: Sequence[int], known=None, nets=()) -> list[CardFit]:
    """The largest train batch (test nets keep theirs) that fits each capacity, as
    ``caffemem fit --gpu-mem CAPACITY`` answers it (up to :data:`LIMIT`).  ``known``:
    ``(batch, replay)`` of a run already replayed with exactly the nets a probe at that
    batch builds (a free first point); ``nets``: the built nets, to refuse early what the
    table cannot answer cheaply (:class:`NoCardTable`)."""
    if any(l.inner_nets for net in nets for l in net.layers):
        raise NoCardTable("a recurrent layer's data batch is its time axis, and every probe "
                          "unrolls it again: ask caffemem fit --gpu-mem SIZE for one card")
    # a GPU's total: the peak of the allocations as a real card takes them (rounded), plus
    # the context and cuBLAS's workspace (caffemem.memory.card)
    overhead = fixed_bytes(env) if env.gpu else 0
    if not (env.gpu and env.gpus > 1):
        try:
            got = _affine(loaded, options, env, capacities, overhead, known)
            if got is not None:
                return got
        except NetError:
            pass
    return _search(loaded, options, env, capacities)


def _signature(rp, env):
    events = rp.memory.events("gpu" if env.gpu else "host", gpu=0 if env.gpu else None)
    # the allocations in order (not their clock ticks: a probe leaves out what never
    # reaches the device, the known run does not)
    return [(d > 0, m.name) for _, d, m in events], [d for _, d, _ in events]


class _Curve:
    """Each allocation's size as the largest of lines in the batch, each the secant through
    two adjacent probed batches (exact for sizes that are affine in the batch, or the max of
    affine terms, like Scale's ``sum_multiplier`` of max(inner, outer) floats; for such
    convex sizes every secant is a lower bound, so a predicted answer is never too small);
    the live bytes after every allocation and their peak."""

    def __init__(self, signs, rounding: bool = False) -> None:
        import numpy as np

        self.signs = np.array(signs, dtype=np.int64)
        self.lines: list = []  # [(sizes at batch p, growth per sample, p)]
        #: take each allocation as a real card does (caffemem.memory.card.rounded)
        self.rounding = rounding

    def sizes(self, n: int):
        import numpy as np

        return np.max([a + (n - p) * b for a, b, p in self.lines], axis=0)

    def peak(self, n: int, overhead: int) -> int:
        import numpy as np

        sizes = self.sizes(n)
        if self.rounding:
            step = np.where(sizes < SMALL_LIMIT, SMALL_STEP, LARGE_STEP)
            sizes = -(-sizes // step) * step
        return int(np.cumsum(self.signs * sizes).max(initial=0)) + overhead


def _affine(loaded, options, env, capacities, overhead, known=None) -> Optional[list[CardFit]]:
    """The first line through the known run's batch and the next (or through batches 2 and
    3; batch 1 can be degenerate, a buffer of N - 1 rows being empty); then the smallest and
    largest answers are replayed: where an allocation's size differs from the curve, the
    secant there is added and the answers recomputed (three rounds at most).  Batch 1 is
    only read when 2 does not fit.  The probes of a step are made at once on several cores
    (and batch 1 with the first when the smallest card does not hold the known run)."""
    import numpy as np

    from .memory.model import replay_needed

    probed: dict[int, tuple] = {}
    at_one: list[Optional[int]] = []

    def probe(n: int):
        if n not in probed:
            probed[n] = _sizes(loaded, options, env, n)
        return probed[n]

    def prefetch(batches, one: bool = False) -> None:
        """Make the probes the next step reads (and, with ``one``, the need at batch 1) at
        once, on several cores (:func:`caffemem.forked.warm`): the same pure functions, so
        the same figures; what fails here is made again where it is read, and raises there."""
        jobs: list = [(n, lambda n=n: _sizes(loaded, options, env, n)) for n in dict.fromkeys(batches)
                      if n not in probed]
        if one and not at_one:
            jobs.append(("batch 1", lambda: _total(loaded, options, env, 1)))
        if len(jobs) < 2:
            return
        for key, got in warm(jobs).items():
            if key == "batch 1":
                at_one.append(got)
            else:
                probed[key] = got

    if known is not None and known[0] and known[0] >= 2:
        probed[known[0]] = _signature(known[1], env)
        start = known[0]
    else:
        start = 2
    # batch 1 is read when the smallest card does not hold 2: likely when it does not hold
    # the known run's batch
    prefetch([start, start + 1], one=known is not None and replay_needed(known[1], env) > min(capacities))
    sig = probe(start)[0]
    curve = _Curve([1 if up else -1 for up, _ in sig], rounding=env.gpu and env.card_addons)

    def add_line(p: int) -> bool:
        (s0, z0), (s1, z1) = probe(p), probe(p + 1)
        if s0 != sig or s1 != sig:
            return False
        a0, a1 = np.abs(np.array(z0, dtype=np.int64)), np.abs(np.array(z1, dtype=np.int64))
        if (a1 < a0).any():
            return False
        curve.lines.append((a0, a1 - a0, p))
        return True

    if not add_line(start):
        return None

    def fits_at(n: int, cap: int) -> bool:
        if n == 1:
            if not at_one:
                at_one.append(_total(loaded, options, env, 1))
            return at_one[0] is not None and at_one[0] <= cap
        return curve.peak(n, overhead) <= cap

    def from_two(cap: int) -> Optional[int]:
        """The largest batch from 2 on that the curve fits (None: not even 2)."""
        if not fits_at(2, cap):
            return None
        lo, hi = 2, 4
        while hi <= LIMIT and fits_at(hi, cap):
            lo, hi = hi, hi * 2
        if hi > LIMIT:
            return lo
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits_at(mid, cap) else (lo, mid)
        return lo

    for _ in range(3):
        # the probes this round reads: at the smallest and largest answer from 2 on, and at
        # batch 1 when some card does not hold 2
        ups = [from_two(c) for c in capacities]
        ends = [n for n in ups if n is not None]
        prefetch([min(ends), max(ends)] if ends else [], one=None in ups)
        answers = [n if n is not None else 1 if fits_at(1, c) else None for c, n in zip(capacities, ups)]
        found = [n for n in answers if n is not None and n >= 2]
        wrong = []
        for n in sorted({min(found), max(found)}) if found else []:
            s_n, z_n = probe(n)
            if s_n != sig:
                return None
            if not np.array_equal(np.abs(np.array(z_n, dtype=np.int64)), curve.sizes(n)):
                wrong.append(n)
        if not wrong:
            return [CardFit(c, n, (at_one[0] if n == 1 else curve.peak(n, overhead)) if n is not None else None,
                            "affine") for c, n in zip(capacities, answers)]
        prefetch([k for n in wrong for k in (n, n + 1)])
        for n in wrong:
            if not add_line(n):
                return None
    return None


def _total(loaded, options, env, batch: int) -> Optional[int]:
    """The modeled need at ``batch`` as ``caffemem fit`` measures it (None: does not build)."""
    from .analysis import build_loaded
    from .memory.model import needed_bytes

    try:
        nets = build_loaded(loaded, replace(options, batch=batch, batch_train_only=True))
    except NetError:
        return None
    return needed_bytes(nets, env)


def _search(loaded, options, env, capacities) -> list[CardFit]:
    from .fit import largest_fitting

    totals: dict[int, Optional[int]] = {}

    def total(n: int) -> Optional[int]:
        if n not in totals:
            if len(totals) >= SEARCH_BUDGET:
                raise NoCardTable(f"the card table would need more than {SEARCH_BUDGET} model runs "
                                  f"for this net: ask caffemem fit --gpu-mem SIZE for one card")
            totals[n] = _total(loaded, options, env, n)
        return totals[n]

    out = []
    for cap in capacities:
        r = largest_fitting(total, cap, limit=LIMIT)
        out.append(CardFit(cap, r.best, r.best_total, "search"))
    return out
