"""The report's charts as finished SVG: live bytes through the first iteration, and training
curves.

- :func:`timeline`: the allocation model's replay (every first touch of a SyncedMemory, in
  Caffe's order: set-up, test pass, forward, backward, update...), stacked by kind, with the
  modeled peak, Caffe's log figure and the card's capacity as lines.  Caffe never frees
  (except shared parameters' own copies), so the curve is a staircase: the view that shows
  why "Memory required for data" is not what a run needs.
- :func:`curves`: a log's train loss, test outputs and learning rate against iterations, each
  series thinned to at most ``2 * buckets`` points by keeping each bucket's minimum and
  maximum (so every spike and the global extremes survive), on a linear and a log axis.
"""

from __future__ import annotations

import math
from typing import Optional

from ..units import human
from .htmlgraph import esc

KIND_COLORS = {
    "context": "#9e9e9e", "prefetch": "#8c6d31", "params": "#3182bd", "param_diffs": "#6baed6",
    "history": "#9ecae1", "activations": "#31a354", "diffs": "#a1d99b", "im2col": "#e6550d",
    "workspace": "#fd8d3c", "internal": "#756bb1", "card_addons": "#c7c7c7", "bookkeeping": "#d9d9d9",
    "solver_copies": "#e7ba52",
}
KIND_ORDER = ("context", "card_addons", "prefetch", "params", "param_diffs", "history", "activations",
              "diffs", "im2col", "internal", "workspace", "bookkeeping", "solver_copies")


def kind_color(kind: str) -> str:
    return KIND_COLORS.get(kind, "#bdbdbd")


def _ticks(top: float, n: int = 5) -> list[float]:
    if top <= 0:
        return [0.0]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=10 * mag)
    return [i * step for i in range(int(top // step) + 1)]


def _byte_ticks(top: int) -> list[int]:
    """Round binary steps (MiB/GiB multiples) for a bytes axis."""
    if top <= 0:
        return [0]
    unit = 1 << 30 if top >= 4 << 30 else 1 << 20 if top >= 4 << 20 else 1 << 10
    return [int(t * unit) for t in _ticks(top / unit)]


def live_by_kind(replay, side: str, context: int) -> tuple[list[int], list[dict], list[tuple[int, str]]]:
    """(event index of each step, live bytes by kind after it, moments as (first step, label))."""
    events = replay.memory.events(side, gpu=0 if side == "gpu" else None)
    live: dict[str, int] = {"context": context} if context else {}
    steps, stacks = [], []
    moments = list(replay.memory.moments)
    mi, marks = 0, []
    last_t = None
    for k, (t, delta, mem) in enumerate(events):
        while mi < len(moments) and moments[mi][0] <= t:
            marks.append((len(steps), moments[mi][1]))
            mi += 1
        live[mem.kind] = live.get(mem.kind, 0) + delta
        if t == last_t and steps:
            stacks[-1] = dict(live)
        else:
            steps.append(k)
            stacks.append(dict(live))
        last_t = t
    return steps, stacks, marks


def timeline(analysis, gpu_mem: Optional[int], width: int = 1100, height: int = 300,
             max_steps: int = 700) -> str:
    """The stacked live-bytes staircase of ``analysis``' scenario (see the module docstring)."""
    report = analysis._report
    env = report.env
    side = "gpu" if env.gpu else "host"
    rp = analysis._replay
    _, stacks, marks = live_by_kind(rp, side, report.context_bytes if env.gpu else 0)
    if not stacks:
        return '<p class="note">nothing is allocated in this scenario</p>'
    totals = [sum(s.values()) for s in stacks]
    # thin to max_steps columns, each the step where its bucket's total is highest
    n = len(stacks)
    if n > max_steps:
        keep = []
        for b in range(max_steps):
            lo, hi = b * n // max_steps, max((b + 1) * n // max_steps, b * n // max_steps + 1)
            keep.append(max(range(lo, hi), key=lambda i: (totals[i], -i)))
        mark_keep = [(next((j for j, i in enumerate(keep) if i >= s), len(keep) - 1), label) for s, label in marks]
    else:
        keep = list(range(n))
        mark_keep = marks
    peak = report.total_bytes
    log_fig = analysis.log_memory_required_for_data
    top = max([peak, log_fig, gpu_mem or 0, max(totals)]) * 1.08
    L, R, T, B = 70, 12, 34, 24
    pw, ph = width - L - R, height - T - B
    m = len(keep)

    def X(j: float) -> float:
        return L + pw * j / max(1, m)

    def Y(v: float) -> float:
        return T + ph * (1 - v / top)

    out = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="live bytes through the first iteration">']
    for v in _byte_ticks(int(top)):
        out.append(f'<line class="grid" x1="{L}" x2="{L + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}"/>'
                   f'<text class="ax" x="{L - 4}" y="{Y(v) + 3:.1f}" text-anchor="end">{esc(human(v, 0))}</text>')
    kinds = [k for k in KIND_ORDER if any(stacks[i].get(k) for i in keep)]
    kinds += [k for k in sorted({k for i in keep for k in stacks[i]}) if k not in kinds]
    base = [0] * m
    for kind in kinds:
        upper = [base[j] + max(0, stacks[i].get(kind, 0)) for j, i in enumerate(keep)]
        pts = []
        for j in range(m):  # a staircase: each column is flat
            pts.append(f"{X(j):.1f},{Y(upper[j]):.1f}")
            pts.append(f"{X(j + 1):.1f},{Y(upper[j]):.1f}")
        for j in range(m - 1, -1, -1):
            pts.append(f"{X(j + 1):.1f},{Y(base[j]):.1f}")
            pts.append(f"{X(j):.1f},{Y(base[j]):.1f}")
        out.append(f'<polygon class="band" data-kind="{esc(kind)}" fill="{kind_color(kind)}" points="{" ".join(pts)}">'
                   f'<title>{esc(kind)}</title></polygon>')
        base = upper
    # phase marks
    last_x = -1e9
    row = 0
    for j, label in mark_keep:
        x = X(j)
        out.append(f'<line class="phase" x1="{x:.1f}" x2="{x:.1f}" y1="{T - 2}" y2="{T + ph}"/>')
        row = row + 1 if x - last_x < 150 else 0
        out.append(f'<text class="phase-label" x="{x + 2:.1f}" y="{T - 22 + (row % 3) * 9}">{esc(label)}</text>')
        last_x = x
    if gpu_mem:  # where a run with that capacity runs out, per the model
        over = next((j for j, i in enumerate(keep) if totals[i] > gpu_mem), None)
        if over is not None:
            out.append(f'<line class="mark runout" x1="{X(over):.1f}" x2="{X(over):.1f}" y1="{T}" y2="{T + ph}"/>'
                       f'<text class="mark-label capacity" x="{X(over) - 3:.1f}" y="{T + 12}" text-anchor="end">'
                       f'runs out here</text>')
    lines = [("peak", peak, f"modeled peak {human(peak)} ({peak:,} B)")]
    if log_fig:
        lines.append(("logfig", log_fig, f"Caffe's log figure {human(log_fig)} ({log_fig:,} B)"))
    if gpu_mem:
        lines.append(("capacity", gpu_mem, f"capacity {human(gpu_mem)}"))
    for cls, v, text in lines:
        out.append(f'<line class="mark {cls}" x1="{L}" x2="{L + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" data-bytes="{v}"/>'
                   f'<text class="mark-label {cls}" x="{L + pw - 4}" y="{Y(v) - 3:.1f}" text-anchor="end">{esc(text)}</text>')
    out.append(f'<line class="axis" x1="{L}" x2="{L}" y1="{T}" y2="{T + ph}"/>'
               f'<line class="axis" x1="{L}" x2="{L + pw}" y1="{T + ph}" y2="{T + ph}"/>'
               f'<text class="ax" x="{L + pw / 2:.0f}" y="{height - 6}" text-anchor="middle">allocations, in the order '
               f'Caffe makes them ({n:,})</text></svg>')
    legend = "".join(f'<span class="key"><i style="background:{kind_color(k)}"></i>{esc(k)}</span>' for k in kinds)
    return "".join(out) + f'<div class="legend">{legend}</div>'


def thin(x, y, buckets: int = 1000):
    """At most ``2 * buckets`` points of a series, each bucket's minimum and maximum in x
    order: spikes and the global extremes are kept."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) <= 2 * buckets:
        return x, y
    edges = np.linspace(0, len(x), buckets + 1).astype(int)
    keep = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a:
            continue
        seg = y[a:b]
        i, j = a + int(np.argmin(seg)), a + int(np.argmax(seg))
        keep.extend(sorted({i, j}))
    keep = np.array(keep)
    return x[keep], y[keep]


CURVE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def curves(log, width: int = 1100, height: int = 240) -> str:
    """Training curves of a :class:`caffemem.api.LogResult`: losses, other outputs, and the
    learning rate, each chart drawn twice (linear and log axis; the page toggles)."""
    charts = []
    train, test = log.train, log.test
    loss_series = []
    if len(train.get("iteration", [])) and "loss" in train:
        loss_series.append(("train loss", train["iteration"], train["loss"]))
    other = []
    for key in test:
        if key in ("iteration", "seconds", "net"):
            continue
        target = loss_series if "loss" in key.lower() else other
        nets = sorted(set(test["net"].astype(int).tolist())) if "net" in test and len(test["net"]) else [0]
        for net in nets:
            sel = test["net"] == net if "net" in test and len(test["net"]) else slice(None)
            label = f"test{'' if len(nets) == 1 else f' #{net}'} {key}"
            target.append((label, test["iteration"][sel], test[key][sel]))
    for key in train:
        if key in ("iteration", "seconds", "interval_seconds", "lr", "loss"):
            continue
        (loss_series if "loss" in key.lower() else other).append((f"train {key}", train["iteration"], train[key]))
    if loss_series:
        charts.append(("loss", loss_series))
    if other:
        charts.append(("outputs", other))
    if "lr" in train and len(train["lr"]):
        charts.append(("learning rate", [("lr", train["iteration"], train["lr"])]))
    if not charts:
        return '<p class="note">the log has no training curves</p>'
    return "".join(_chart(title, series, width, height) for title, series in charts)


def _chart(title: str, series, width: int, height: int) -> str:
    import numpy as np

    thinned = [(label, *thin(x, y)) for label, x, y in series]
    xs = [x for _, x, _ in thinned if len(x)]
    if not xs:
        return ""
    if max(len(x) for x in xs) < 2:  # one logged value per series: a line says more than a chart
        vals = "; ".join(f"{esc(label)} {float(y[0]):.6g} at iteration {int(x[0])}" for label, x, y in thinned if len(x))
        return f'<p class="chart-note" data-chart="{esc(title)}">{esc(title)}: {vals}</p>'
    x0 = min(float(x.min()) for x in xs)
    x1 = max(float(x.max()) for x in xs)
    if x1 <= x0:
        x1 = x0 + 1
    L, R, T, B = 64, 12, 22, 22
    pw, ph = width - L - R, height - T - B
    out = [f'<figure class="chart"><svg class="curves" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{esc(title)}">'
           f'<text class="title" x="{L}" y="14">{esc(title)}</text>']
    for scale in ("linear", "log"):
        ys = [y for _, _, y in thinned if len(y)]
        if scale == "log":
            ys = [y[y > 0] for y in ys]
            ys = [y for y in ys if len(y)]
            if not ys:
                continue
            lo = math.log10(min(float(y.min()) for y in ys))
            hi = math.log10(max(float(y.max()) for y in ys))
        else:
            lo = min(0.0, min(float(y.min()) for y in ys))
            hi = max(float(y.max()) for y in ys)
        if hi <= lo:
            hi = lo + 1

        def Y(v: float) -> float:
            return T + ph * (1 - (v - lo) / (hi - lo))

        def X(v: float) -> float:
            return L + pw * (v - x0) / (x1 - x0)

        out.append(f'<g class="scale-{scale}">')
        if scale == "log":
            for e in range(math.floor(lo), math.ceil(hi) + 1):
                if lo <= e <= hi:
                    out.append(f'<line class="grid" x1="{L}" x2="{L + pw}" y1="{Y(e):.1f}" y2="{Y(e):.1f}"/>'
                               f'<text class="ax" x="{L - 4}" y="{Y(e) + 3:.1f}" text-anchor="end">1e{e}</text>')
        else:
            for v in _ticks(hi - lo):
                out.append(f'<line class="grid" x1="{L}" x2="{L + pw}" y1="{Y(lo + v):.1f}" y2="{Y(lo + v):.1f}"/>'
                           f'<text class="ax" x="{L - 4}" y="{Y(lo + v) + 3:.1f}" text-anchor="end">{lo + v:.4g}</text>')
        for k, (label, x, y) in enumerate(thinned):
            if scale == "log":
                pos = y > 0
                x, y = x[pos], np.log10(y[pos])
            if not len(x):
                continue
            pts = " ".join(f"{X(a):.1f},{Y(b):.1f}" for a, b in zip(x.tolist(), y.tolist()))
            color = CURVE_COLORS[k % len(CURVE_COLORS)]
            out.append(f'<polyline class="series" data-series="{esc(label)}" data-points="{len(x)}" '
                       f'stroke="{color}" points="{pts}"/>')
            if len(x) < 40:
                out.extend(f'<circle cx="{X(a):.1f}" cy="{Y(b):.1f}" r="2" fill="{color}"/>'
                           for a, b in zip(x.tolist(), y.tolist()))
        out.append('</g>')
    for v in _ticks(x1 - x0):
        xv = L + pw * v / (x1 - x0)
        out.append(f'<text class="ax" x="{xv:.1f}" y="{height - 6}" text-anchor="middle">{x0 + v:.6g}</text>')
    out.append(f'<line class="axis" x1="{L}" x2="{L}" y1="{T}" y2="{T + ph}"/>'
               f'<line class="axis" x1="{L}" x2="{L + pw}" y1="{T + ph}" y2="{T + ph}"/></svg>')
    legend = "".join(f'<span class="key"><i style="background:{CURVE_COLORS[k % len(CURVE_COLORS)]}"></i>{esc(label)}</span>'
                     for k, (label, _, _) in enumerate(thinned))
    out.append(f'<figcaption class="legend">{legend}</figcaption></figure>')
    return "".join(out)
