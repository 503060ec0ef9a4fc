"""Pictures: per-layer memory as stacked bars by kind, and net-vs-net comparisons.

matplotlib is imported here only, lazily, with the Agg backend; the output format follows
the file's extension (.png, .svg, .pdf).  Inputs are lists of
:class:`~caffemem.diff.LayerCost` (bytes by kind per layer), so the same code draws shape-only
costs and the full allocation model.
"""

from __future__ import annotations

import os
import re
from typing import Optional, Sequence

from .diff import LayerCost
from .errors import UserError

KIND_ORDER = ["activations", "diffs", "params", "param_diffs", "history", "im2col",
              "internal", "workspace", "prefetch", "context"]
KIND_COLORS = {
    "activations": "#4C72B0", "diffs": "#55A868", "params": "#C44E52", "param_diffs": "#DD8452",
    "history": "#8172B3", "im2col": "#937860", "internal": "#DA8BC3", "workspace": "#8C8C8C",
    "prefetch": "#CCB974", "context": "#64B5CD",
}
_UNITS = [(2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")]


def _pyplot():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        raise UserError("plotting needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def unit_for(max_bytes: int) -> tuple[int, str]:
    """The binary unit that makes ``max_bytes`` read as a number between 1 and 1024."""
    for div, name in _UNITS:
        if max_bytes >= div:
            return div, name
    return 1, "B"


def check_output(path: str) -> None:
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".svg", ".pdf"):
        raise UserError(f"{path}: the picture format follows the extension; use .png, .svg or .pdf")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{path}: folder {folder} does not exist")


def group_costs(costs: Sequence[LayerCost], top: Optional[int] = None,
                group_by_prefix: bool = False) -> list[LayerCost]:
    """Make long nets readable: merge layers by name prefix (``res4b12_branch2a`` -> ``res4b12``;
    inserted splits go with their producer) and/or keep the ``top`` largest (the rest summed
    into one ``(other N layers)`` bar, kept in network order)."""
    items = list(costs)
    if group_by_prefix:
        merged: dict[str, LayerCost] = {}
        for c in items:
            key = _prefix(c.name)
            m = merged.get(key)
            if m is None:
                merged[key] = m = LayerCost(key, c.type, len(merged), [], [], {})
            for k, v in c.bytes.items():
                m.bytes[k] = m.bytes.get(k, 0) + v
        items = list(merged.values())
    if top is not None and len(items) > top:
        keep = {id(c) for c in sorted(items, key=lambda c: -c.total)[:top]}
        rest = [c for c in items if id(c) not in keep]
        other = LayerCost(f"(other {len(rest)} layers)", "", len(items), [], [], {})
        for c in rest:
            for k, v in c.bytes.items():
                other.bytes[k] = other.bytes.get(k, 0) + v
        items = [c for c in items if id(c) in keep] + [other]
    return items


def _prefix(name: str) -> str:
    m = re.match(r"^(.*?)_\d+_split$", name)
    if m:
        name = m.group(1).rsplit("_", 1)[0] if "_" in m.group(1) else m.group(1)
    for sep in ("/", "_", "."):
        if sep in name:
            return name.split(sep)[0]
    return name


def _stacked(ax, costs: Sequence[LayerCost], div: int, offset: float = 0.0, width: float = 0.8,
             alpha: float = 1.0, label_kinds: bool = True):
    kinds = [k for k in KIND_ORDER if any(c.bytes.get(k) for c in costs)]
    kinds += sorted({k for c in costs for k in c.bytes} - set(kinds))
    xs = [i + offset for i in range(len(costs))]
    bottoms = [0.0] * len(costs)
    for k in kinds:
        vals = [c.bytes.get(k, 0) / div for c in costs]
        ax.bar(xs, vals, width, bottom=bottoms, color=KIND_COLORS.get(k), alpha=alpha,
               label=k if label_kinds else None)
        bottoms = [b + v for b, v in zip(bottoms, vals)]
    return kinds


def plot_layers(costs: Sequence[LayerCost], out: str, title: str = "", gpu_mem: Optional[int] = None,
                total: Optional[int] = None, log_scale: bool = False, top: Optional[int] = None,
                group: bool = False):
    """Stacked per-layer bars by kind, the cumulative total as a line, the GPU as a limit."""
    check_output(out)
    plt = _pyplot()
    items = group_costs(costs, top=top, group_by_prefix=group)
    cumulative, run = [], 0
    for c in items:
        run += c.total
        cumulative.append(run)
    peak = max([cumulative[-1] if cumulative else 0, gpu_mem or 0, total or 0, 1])
    div, unit = unit_for(peak)
    fig, ax = plt.subplots(figsize=(max(8, min(40, 0.28 * len(items) + 4)), 6))
    _stacked(ax, items, div)
    ax.set_xticks(range(len(items)))
    ax.set_xticklabels([c.name for c in items], rotation=90, fontsize=7 if len(items) > 40 else 8)
    ax.set_ylabel(f"per-layer memory ({unit})")
    ax.set_xlabel("layer (network order)")
    ax2 = ax.twinx()
    ax2.plot(range(len(items)), [v / div for v in cumulative], color="black", linewidth=1.5,
             label="cumulative")
    ax2.set_ylabel(f"cumulative ({unit})")
    if gpu_mem:
        ax2.axhline(gpu_mem / div, color="red", linestyle="--", linewidth=1.2,
                    label=f"GPU capacity {gpu_mem / div:.1f} {unit}")
    ax2.set_ylim(0, peak / div * 1.08)
    if log_scale:
        ax.set_yscale("log")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=6, fontsize=8,
              frameon=False)
    fig.suptitle(title or "memory per layer")
    fig.tight_layout()
    fig.savefig(out)
    return fig


def plot_diff(old: Sequence[LayerCost], new: Sequence[LayerCost], pairs, out: str,
              title: str = "", top: Optional[int] = None):
    """Two panels: both nets' per-layer bars side by side (aligned layers), and the deltas."""
    check_output(out)
    plt = _pyplot()
    rows = [(o, n) for o, n in pairs]
    if top is not None and len(rows) > top:
        rows = sorted(rows, key=lambda p: -abs((p[1].total if p[1] else 0) - (p[0].total if p[0] else 0)))[:top]
        order = {id(p): i for i, p in enumerate(pairs)}
        rows.sort(key=lambda p: order.get(id(p), 0))
    empty = LayerCost("", "", 0, [], [], {})
    olds = [o or empty for o, _ in rows]
    news = [n or empty for _, n in rows]
    labels = [(n or o).name for o, n in rows]
    peak = max([c.total for c in olds + news] + [1])
    div, unit = unit_for(peak)
    fig, (ax, axd) = plt.subplots(2, 1, figsize=(max(8, min(40, 0.4 * len(rows) + 4)), 9), sharex=True)
    _stacked(ax, olds, div, offset=-0.2, width=0.4, alpha=0.45, label_kinds=False)
    _stacked(ax, news, div, offset=0.2, width=0.4)
    ax.set_ylabel(f"per-layer memory ({unit})")
    fig.suptitle(title or "old (faded, left) vs new (right), per layer")
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=6, frameon=False)
    ax.set_title("old (faded, left bar) vs new (right bar)", fontsize=9, loc="right")
    deltas = [(n.total - o.total) for o, n in zip(olds, news)]
    ddiv, dunit = unit_for(max([abs(d) for d in deltas] + [1]))
    axd.bar(range(len(rows)), [d / ddiv for d in deltas],
            color=["#C44E52" if d > 0 else "#55A868" for d in deltas])
    axd.axhline(0, color="black", linewidth=0.8)
    axd.set_ylabel(f"new - old ({dunit})")
    axd.set_xticks(range(len(rows)))
    axd.set_xticklabels(labels, rotation=90, fontsize=8)
    axd.set_xlabel("layer (new net's order; removed layers last)")
    fig.tight_layout()
    fig.savefig(out)
    return fig
