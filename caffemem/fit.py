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
                    limit: int = 1 << 20, what: str = "batch", guess: Optional[int] = None,
                    known: Optional[dict[int, Optional[int]]] = None) -> FitResult:
    """Largest ``v >= start`` with ``total_at(v) <= capacity``; ``total_at`` returns None for a
    value that does not build (the search then treats it as not fitting).

    ``guess`` (e.g. from an affine extrapolation of two probes) only speeds the bracketing up:
    the bracket grows from it by doubling steps, so the answer is exact whatever the guess.
    ``known`` holds totals the caller has already computed (value -> total)."""
    probes: dict[int, Optional[int]] = dict(known or {})

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
    if guess is not None and start < guess <= limit:
        step = 1  # an exact guess (an affine model) is then confirmed in two probes
        if ok(guess):
            lo, hi = guess, guess + step
            while hi <= limit and ok(hi):
                step *= 2
                lo, hi = hi, hi + step
        else:
            hi, lo = guess, max(start, guess - step)
            while lo > start and not ok(lo):
                step *= 2
                hi, lo = lo, max(start, lo - step)
    else:
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
    # verification: the answer fits, the next step does not (asked of total_at again; the
    # model being a pure function of the value, fit_batch and fit_scale answer from its runs)
    probes.pop(lo, None)
    probes.pop(lo + 1, None)
    if not ok(lo) or ok(lo + 1):
        raise UserError("the model is not monotone in this parameter here; the search cannot "
                        "give a reliable answer (please report this net)")
    return FitResult(what, lo, total(lo), lo + 1, total(lo + 1), capacity, probes)


def _once(total_at: Callable[[int], int]) -> Callable[[int], int]:
    """``total_at`` with each value's answer kept: the model is a pure function of the value,
    so a value asked again (the search's final check) is not modeled again."""
    known: dict[int, int] = {}

    def total(v: int) -> int:
        if v not in known:
            known[v] = total_at(v)
        return known[v]

    return total


def data_batch(net) -> Optional[int]:
    """The batch size of a net's first data layer (its first top's first dimension)."""
    for layer in net.layers:
        if layer.rule is not None and layer.rule.is_data and layer.tops:
            shape = net.blobs[layer.tops[0]].shape
            return shape[0] if shape else None
    return None


def fit_batch(loaded, options, env, capacity: int, built=None) -> FitResult:
    """Largest batch of the train net (test nets keep theirs) whose modeled peak fits;
    ``built``: the nets already built with ``options``, which the probe at their own batch
    then uses instead of building them again."""
    from dataclasses import replace

    from .analysis import build_loaded
    from .batchcurve import same_as_probe
    from .memory.model import needed_bytes

    @_once
    def total(b: int) -> int:
        if built and same_as_probe(options, built[0], b):
            nets = built
        else:
            nets = build_loaded(loaded, replace(options, batch=b, batch_train_only=True))
        if b == 1:
            _refuse_recurrent(nets)
        return needed_bytes(nets, env)

    known: dict[int, Optional[int]] = {1: total(1)}
    guess = None
    if known[1] <= capacity:  # else batch 1 is the answer's evidence already
        guess = _secant_guess(total, capacity, known)
    return largest_fitting(total, capacity, guess=guess, what="batch", known=known)


#: the first slope is taken over this many batches, so that a card's allocation rounding
#: (2 MiB pages: memory/card) cannot hide the per-sample bytes in the difference
SLOPE_SPAN = 64


def _secant_guess(total, capacity: int, known: dict) -> Optional[int]:
    """Where the need crosses ``capacity``, from the secant through batch 1 and batch
    ``SLOPE_SPAN``, refined once through batch 1 and that first guess (the need is nearly
    affine in the batch; rounding makes it a staircase).  It only speeds the search up:
    :func:`largest_fitting` finds the exact answer whatever the guess.  The totals computed
    are left in ``known``."""
    t1, b = known[1], SLOPE_SPAN
    for _ in range(2):
        try:
            known[b] = tb = total(b)
        except NetError:  # this batch does not build: no slope from it
            known[b] = None
            return None
        if tb is None or tb <= t1:
            return None
        guess = max(1, 1 + (capacity - t1) * (b - 1) // (tb - t1))
        if guess == b or guess in known:
            return guess
        b = guess
    return b


def _refuse_recurrent(nets) -> None:
    """A recurrent layer (RNN, LSTM) reads (T, N, ...) blobs: the data layers' first axis is
    its time steps, not the batch, and Caffe unrolls the net once per step, so scaling the
    first axis searches the sequence length (and unrolls millions of steps).  Say so."""
    for net in nets:
        for layer in net.layers:
            if layer.inner_nets:
                raise UserError(
                    f"fit cannot search the batch of a net with a recurrent layer: layer "
                    f"'{layer.name}' ({layer.type}) reads its bottoms as (T time steps, N streams, "
                    f"...), so the data's first axis is T, not the batch; use 'caffemem analyze' "
                    f"with --input to try sizes (--input TOP=T,N,... for its data)")


def _spatial_inputs(net) -> dict[str, tuple]:
    """Data-layer tops with spatial dims (4-D): the blobs an input scale changes."""
    out = {}
    for layer in net.layers:
        if layer.rule is not None and layer.rule.is_data:
            for t in layer.tops:
                shape = net.blobs[t].shape
                if len(shape) == 4:
                    out[net.blobs[t].name] = shape
    return out


def alignment(net) -> int:
    """The net's overall stride: input height over the smallest feature height (a power of
    two for the usual nets); scaled inputs keep heights that are multiples of it, so that
    pooling/upsampling pairs still line up."""
    inputs = _spatial_inputs(net)
    if not inputs:
        return 1
    h0 = max(s[2] for s in inputs.values())
    smallest = min((net.blobs[t].shape[2] for l in net.layers for t in l.tops
                    if len(net.blobs[t].shape) == 4 and net.blobs[t].shape[2] > 1), default=h0)
    ratio = max(1, round(h0 / smallest))
    p = 1
    while p * 2 <= ratio:
        p *= 2
    return p


def fit_scale(loaded, options, env, capacity: int, base_nets) -> tuple[FitResult, int, dict]:
    """Largest input height (a multiple of the net's alignment; width and every other
    spatial data top scaled with it, aspect kept) whose modeled peak fits.

    The search starts at the net's smallest valid height: heights below it make some layer
    refuse its input (a pooling window larger than its bottom, a crop larger than the
    image...), and the first of those refusals is kept to say why.  Returns the result over
    heights (in units of the alignment), the alignment, and the base shapes, the smallest
    valid height and why the one below it is invalid."""
    from dataclasses import replace

    from .analysis import build_loaded
    from .memory.model import needed_bytes

    base = {}
    for net in base_nets:
        label = net.display_label
        base[label] = _spatial_inputs(net)
    if not any(base.values()):
        raise UserError("no data layer with a 4-D (N,C,H,W) top: nothing to scale")
    main = base_nets[0]
    align = alignment(main)
    h0 = max(s[2] for s in base[main.display_label].values())

    def shapes_at(h: int) -> dict:
        per_net = {}
        for label, tops in base.items():
            per_net[label] = {name: (s[0], s[1], max(1, round(s[2] * h / h0)), max(1, round(s[3] * h / h0)))
                              for name, s in tops.items()}
        return per_net

    def build(m: int):
        return build_loaded(loaded, replace(options, inputs_per_net=shapes_at(m * align)))

    @_once
    def total(m: int) -> int:
        return needed_bytes(build(m), env)

    # the smallest valid height: every multiple of the alignment below the base size, upwards
    first, invalid = None, None
    for m in range(1, max(1, h0 // align) + 1):
        try:
            build(m)
        except NetError as e:
            invalid = (m * align, str(e))
            continue
        first = m
        break
    if first is None:  # not even the base height rounded to the alignment: the net's own
        first = max(1, h0 // align)
    result = largest_fitting(total, capacity, start=first, guess=max(first, h0 // align), what="scale")
    return result, align, {"h0": h0, "shapes_at": shapes_at, "smallest_valid": first * align,
                           "invalid": invalid}
