"""Pictures: per-layer memory as stacked bars by kind, net-vs-net comparisons, training curves.

matplotlib is imported here only, lazily, with the Agg backend; the output format follows
the file's extension (.png, .svg, .pdf).  Per-layer inputs are lists of
:class:`~caffemem.diff.LayerCost` (bytes by kind per layer).

What a person must be able to read off every picture:

- the title: the net file's name, batch, scenario, mode and engine;
- the total, in a panel of its own, stacked by the same kinds as the text total (CUDA context
  and cuDNN workspace included), so picture and text agree; the GPU capacity is a labeled
  horizontal line on that panel, in the units the user typed;
- at most :data:`MAX_BARS` bars: longer nets are folded by module name prefix
  (``inception_3a/...``; never across nets), then into runs of consecutive modules.
"""

from __future__ import annotations

import os
import re
import textwrap
from typing import Optional, Sequence

from .diff import LayerCost
from .errors import UserError
from .grouping import bins, fold, module_prefix

#: more bars than this are folded (by module, then by runs of modules)
MAX_BARS = 60
KIND_ORDER = ["activations", "diffs", "params", "param_diffs", "history", "im2col",
              "internal", "workspace", "prefetch", "bookkeeping", "solver_copies", "card_addons",
              "context"]
KIND_COLORS = {
    "activations": "#4C72B0", "diffs": "#55A868", "params": "#C44E52", "param_diffs": "#DD8452",
    "history": "#8172B3", "im2col": "#937860", "internal": "#DA8BC3", "workspace": "#8C8C8C",
    "prefetch": "#CCB974", "bookkeeping": "#8DA0CB", "card_addons": "#D3D3D3", "context": "#64B5CD",
    "solver_copies": "#FFD92F",
}
#: the deltas of a diff: colours no memory kind uses
DELTA_COLORS = {"increase": "#222222", "decrease": "#FFFFFF"}
#: distinct colours for curves (train and test series never share one)
SERIES_COLORS = ["#1F77B4", "#D62728", "#2CA02C", "#FF7F0E", "#9467BD", "#8C564B", "#E377C2",
                 "#17BECF", "#BCBD22", "#7F7F7F"]
_UNITS = [(2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")]
_TYPED_UNIT = {"t": "TiB", "g": "GiB", "m": "MiB", "k": "KiB"}


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


def typed_unit(capacity) -> Optional[tuple[int, str]]:
    """The unit the user typed the capacity in (``8G`` -> GiB), when it names one."""
    typed = getattr(capacity, "typed", "") or ""
    m = re.match(r"^[0-9.]+\s*([a-zA-Z])", typed)
    if not m or m.group(1).lower() not in _TYPED_UNIT:
        return None
    name = _TYPED_UNIT[m.group(1).lower()]
    return dict((n, d) for d, n in _UNITS)[name], name


def capacity_label(capacity) -> str:
    from .units import human

    typed = getattr(capacity, "typed", None)
    return f"GPU capacity --gpu-mem {typed} ({human(capacity)})" if typed else f"GPU capacity {human(capacity)}"


def check_output(path: str) -> None:
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".svg", ".pdf"):
        raise UserError(f"{path}: the picture format follows the extension; use .png, .svg or .pdf")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{path}: folder {folder} does not exist")


def _merged(name: str, costs: Sequence[LayerCost], index: int) -> LayerCost:
    out = LayerCost(name, costs[0].type if len(costs) == 1 else "", index, [], [], {})
    for c in costs:
        for k, v in c.bytes.items():
            out.bytes[k] = out.bytes.get(k, 0) + v
    return out


def _net_of(name: str) -> str:
    return name.partition("@")[2]


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[:width - 1] + "\u2026"


def _display(name: str, width: int = 26) -> str:
    """A bar's label: the layer (or module) name, without its net (the net is named over
    its bars, see :func:`_net_dividers`)."""
    return _short(name.partition("@")[0], width)


def _net_dividers(ax, names: list[str]) -> None:
    """A vertical rule where one net's bars end and the next one's begin, each net named."""
    nets = [_net_of(n) for n in names]
    starts = [i for i in range(len(nets)) if i == 0 or nets[i] != nets[i - 1]]
    if len(starts) < 2:
        return
    for i in starts:
        if i:
            ax.axvline(i - 0.5, color="#444444", linestyle=":", linewidth=1.2)
        ax.text(i - 0.4, 0.98, nets[i] or "train net", transform=ax.get_xaxis_transform(),
                ha="left", va="top", fontsize=8, style="italic", color="#444444")


def group_costs(costs: Sequence[LayerCost], top: Optional[int] = None,
                group_by_prefix: bool = False, most: Optional[int] = None) -> list[LayerCost]:
    """Make long nets readable: merge layers by module name prefix (``res4b12_branch2a`` ->
    ``res4b12``; inserted splits go with the blob they copy; never across nets), then, while
    more than ``most`` bars remain, runs of consecutive modules of one net; and/or keep the
    ``top`` largest (the rest summed into one ``(other N layers)`` bar, in network order)."""
    items = list(costs)
    if group_by_prefix:
        items = [(_merged(key, cs, i) if len(cs) > 1 else cs[0])
                 for i, (key, cs) in enumerate(fold(items, lambda c: module_prefix(c.name)))]
    if most is not None and len(items) > most:
        per_net = fold(items, lambda c: _net_of(c.name))
        out = []
        for _, cs in per_net:
            share = max(1, most * len(cs) // len(items))
            for run in bins(cs, share):
                label = run[0].name if len(run) == 1 else \
                    f"{_short(run[0].name.partition('@')[0], 14)}\u2026{_short(run[-1].name, 14)}"
                out.append(run[0] if len(run) == 1 else _merged(label, run, len(out)))
        items = out
    if top is not None and len(items) > top:
        keep = {id(c) for c in sorted(items, key=lambda c: -c.total)[:top]}
        rest = [c for c in items if id(c) not in keep]
        other = _merged(f"(other {len(rest)} layers)", rest, len(items))
        items = [c for c in items if id(c) in keep] + [other]
    return items


def _stacked(ax, costs: Sequence[LayerCost], div: int, offset: float = 0.0, width: float = 0.8,
             alpha: float = 1.0, label_kinds: bool = True, kinds: Optional[list] = None):
    kinds = kinds or [k for k in KIND_ORDER if any(c.bytes.get(k) for c in costs)]
    kinds += sorted({k for c in costs for k in c.bytes} - set(kinds))
    xs = [i + offset for i in range(len(costs))]
    bottoms = [0.0] * len(costs)
    for k in kinds:
        vals = [c.bytes.get(k, 0) / div for c in costs]
        if not any(vals):
            continue
        ax.bar(xs, vals, width, bottom=bottoms, color=KIND_COLORS.get(k), alpha=alpha,
               label=k if label_kinds else None)
        bottoms = [b + v for b, v in zip(bottoms, vals)]
    return kinds


def _totals_panel(ax, totals: list[tuple[str, dict[str, int]]], capacity=None) -> None:
    """One stacked bar per total (by kind, as the text total), the capacity as a labeled
    horizontal line, both in the unit the user typed the capacity in."""
    from .units import human

    peak = max([sum(b.values()) for _, b in totals] + [capacity or 0, 1])
    div, unit = typed_unit(capacity) if capacity and typed_unit(capacity) else unit_for(peak)
    costs = [LayerCost(name, "", i, [], [], dict(b)) for i, (name, b) in enumerate(totals)]
    _stacked(ax, costs, div, width=0.6, label_kinds=False)
    for i, c in enumerate(costs):
        ax.text(i, c.total / div, human(c.total), ha="center", va="bottom", fontsize=8,
                fontweight="bold")
    if capacity:
        label = capacity_label(capacity)
        ax.axhline(capacity / div, color="red", linestyle="--", linewidth=1.4, label=label)
        ax.text((len(costs) - 1) / 2, capacity / div, label.replace(" --", "\n--").replace(" (", "\n("),
                color="red", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(costs)))
    ax.set_xticklabels([c.name for c in costs], fontsize=8)
    ax.set_xlim(-0.6, len(costs) - 0.4)
    ax.set_ylim(0, peak / div * 1.22)
    ax.set_ylabel(f"total ({unit})")
    ax.yaxis.set_label_position("right")
    ax.yaxis.tick_right()


def _ticks(ax, labels: list[str]) -> None:
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([_display(x) for x in labels], rotation=90,
                       fontsize=7 if len(labels) > 40 else 8)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def _bottom(labels: Sequence[str], height_in: float) -> float:
    """Room under the axes for the rotated tick labels and the axis title, as a fraction."""
    longest = max([len(_display(x)) for x in labels] + [4])
    return min(0.4, (0.075 * longest + 0.6) / height_in)


def _kind_legend(fig, kinds, y: float) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=KIND_COLORS.get(k, "#333333"), label=k) for k in KIND_ORDER if k in kinds]
    if not handles:  # nothing allocated (a trunk of data layers, no context): no legend
        return
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, y), ncol=len(handles),
               fontsize=8, frameon=False)


def _heading(fig, title: str, lines: Sequence[str], width_in: float) -> float:
    """The title and, under it, ``lines`` wrapped to the figure's width; returns the figure
    height fraction below them."""
    fig.suptitle(title, fontsize=12, y=0.99, va="top")
    wrapped = [w for line in lines for w in textwrap.wrap(line, int(width_in * 15))]
    y = 0.99 - 0.4 / fig.get_figheight()
    if wrapped:
        fig.text(0.5, y, "\n".join(wrapped), ha="center", va="top", fontsize=8.5, linespacing=1.3)
    return y - (len(wrapped) * 0.17 + 0.05) / fig.get_figheight()


def plot_layers(costs: Sequence[LayerCost], out: str, title: str = "", gpu_mem: Optional[int] = None,
                total: Optional[int] = None, log_scale: bool = False, top: Optional[int] = None,
                group: Optional[bool] = None, by_kind: Optional[dict[str, int]] = None,
                subtitle: Sequence[str] = ()):
    """Per-layer stacked bars by kind and, beside them, the total by kind (``by_kind``, the
    text total's split: context and workspace included) against the capacity.

    ``group``: True folds layers by module prefix, False never folds, None (default) folds
    when there are more than :data:`MAX_BARS` layers; ``subtitle``: lines under the title
    (the verdict)."""
    check_output(out)
    plt = _pyplot()
    fold_modules = group if group is not None else len(costs) > MAX_BARS
    items = group_costs(costs, top=top, group_by_prefix=fold_modules,
                        most=None if group is False else MAX_BARS)
    folded = len(items) < len(costs)
    empty = sum(1 for c in items if not c.total) if folded else 0
    if empty:  # modules that hold nothing at the peak (in-place ReLUs...) only take room
        items = [c for c in items if c.total]
    by_kind = dict(by_kind) if by_kind else _merged("", list(costs), 0).bytes if costs else {}
    peak = max([c.total for c in items] + [1])
    div, unit = unit_for(peak)
    width = max(10.0, min(24.0, 0.26 * len(items) + 6))
    fig = plt.figure(figsize=(width, 7.8))
    below = _heading(fig, title or "memory per layer", subtitle, width)
    _kind_legend(fig, set(by_kind) | {k for c in items for k in c.bytes}, below)
    gs = fig.add_gridspec(1, 2, width_ratios=[max(4, len(items)), max(2.4, 0.1 * len(items))],
                          wspace=0.06, left=0.07, right=0.92, top=below - 0.55 / 7.8,
                          bottom=_bottom([c.name for c in items], 7.8))
    ax, axt = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    _stacked(ax, items, div, label_kinds=False)
    _ticks(ax, [c.name for c in items])
    _net_dividers(ax, [c.name for c in items])
    ax.set_ylabel(f"per-layer memory ({unit})")
    ax.set_ylim(0, peak / div * 1.08)
    ax.set_xlabel(f"{'module' if folded else 'layer'} (network order"
                  + (f"; {len(costs)} layers folded into {len(items)} bars" if folded else "")
                  + (f"; {empty} module{'s' if empty > 1 else ''} holding nothing left out"
                     if empty else "") + ")",
                  fontsize=9)
    if log_scale:
        ax.set_yscale("log")
    _totals_panel(axt, [("total", by_kind)], gpu_mem)
    fig.savefig(out)
    plt.close(fig)
    return fig


def plot_diff(old: Sequence[LayerCost], new: Sequence[LayerCost], pairs, out: str,
              title: str = "", top: Optional[int] = None, old_by_kind: Optional[dict] = None,
              new_by_kind: Optional[dict] = None, capacity: Optional[int] = None,
              headline: Sequence[str] = (), group: Optional[bool] = None, why: str = ""):
    """Both nets' per-layer bars side by side (aligned layers; old faded), both totals by
    kind against the capacity, and the per-layer deltas in colours of their own.
    ``headline``: lines under the title (the verdict); ``why``: over the deltas."""
    check_output(out)
    plt = _pyplot()
    from matplotlib.patches import Patch

    empty = LayerCost("", "", 0, [], [], {})
    rows = [(o or empty, n or empty, (n or o).name) for o, n in pairs]
    layer_pairs = len(rows)
    if group if group is not None else len(rows) > MAX_BARS:
        rows = [(_merged(k, [r[0] for r in rs], 0), _merged(k, [r[1] for r in rs], 0), k)
                for k, rs in fold(rows, lambda r: module_prefix(r[2]))]
        if len(rows) > MAX_BARS:
            rows = [(_merged("", [r[0] for r in run], 0), _merged("", [r[1] for r in run], 0),
                     run[0][2] if len(run) == 1 else f"{_short(run[0][2], 14)}\u2026{_short(run[-1][2], 14)}")
                    for run in bins(rows, MAX_BARS)]
    if top is not None and len(rows) > top:
        order = {id(r): i for i, r in enumerate(rows)}
        rows = sorted(rows, key=lambda r: -abs(r[1].total - r[0].total))[:top]
        rows.sort(key=lambda r: order[id(r)])
    olds, news, labels = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    peak = max([c.total for c in olds + news] + [1])
    div, unit = unit_for(peak)
    width = max(10.0, min(24.0, 0.3 * len(rows) + 6))
    fig = plt.figure(figsize=(width, 11))
    below = _heading(fig, title or "old vs new", headline, width)
    old_by_kind = old_by_kind or _merged("", list(old), 0).bytes
    new_by_kind = new_by_kind or _merged("", list(new), 0).bytes
    _kind_legend(fig, set(old_by_kind) | set(new_by_kind) | {k for r in rows for c in r[:2] for k in c.bytes},
                 below)
    gs = fig.add_gridspec(2, 2, width_ratios=[max(4, len(rows)), max(3.0, 0.12 * len(rows))],
                          height_ratios=[3, 2], wspace=0.06, hspace=0.28, left=0.07, right=0.92,
                          top=below - 0.55 / 11, bottom=_bottom(labels, 11))
    ax, axt = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
    axd = fig.add_subplot(gs[1, 0], sharex=ax)
    _stacked(ax, olds, div, offset=-0.2, width=0.4, alpha=0.4, label_kinds=False)
    _stacked(ax, news, div, offset=0.2, width=0.4, label_kinds=False)
    ax.set_ylim(0, peak / div * 1.08)
    ax.set_ylabel(f"per-layer memory ({unit})")
    ax.set_title("per layer: old (faded, left bar) vs new (right bar)", fontsize=9, loc="left")
    ax.tick_params(labelbottom=False)
    _totals_panel(axt, [("old", old_by_kind), ("new", new_by_kind)], capacity)
    deltas = [(n.total - o.total) for o, n in zip(olds, news)]
    ddiv, dunit = unit_for(max([abs(d) for d in deltas] + [1]))
    axd.bar(range(len(rows)), [d / ddiv for d in deltas], 0.7, edgecolor="#222222", linewidth=0.6,
            color=[DELTA_COLORS["increase" if d > 0 else "decrease"] for d in deltas])
    axd.axhline(0, color="black", linewidth=0.8)
    axd.set_ylabel(f"new \u2212 old ({dunit})")
    axd.legend(handles=[Patch(facecolor=DELTA_COLORS["increase"], edgecolor="#222222", label="new uses more"),
                        Patch(facecolor=DELTA_COLORS["decrease"], edgecolor="#222222", label="new uses less")],
               fontsize=8, loc="best")
    if why:
        axd.set_title("\n".join(textwrap.wrap(why, int(width * 15))[:3]), fontsize=8, loc="left")
    _ticks(axd, labels)
    folded = len(rows) < layer_pairs
    axd.set_xlabel(f"{'module' if folded else 'layer'} (new net's order; removed layers last"
                   + (f"; {layer_pairs} layer pairs folded into {len(rows)} bars" if folded else "")
                   + ")", fontsize=9)
    fig.savefig(out)
    plt.close(fig)
    return fig


def plot_curves(s, out_path: str):
    """Loss, accuracy-like outputs and learning rate against iterations: every series its
    own colour; train series solid, test series dashed with markers, named in the legend."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    from .logparse.render import output_kind

    check_output(out_path)
    if not len(s.train) and not len(s.test):  # empty axes from -0.05 to 0.05 say nothing
        raise UserError(f"{s.path}: no training curves to draw (no 'Iteration N, loss' or 'Test "
                        f"net output' line); 'caffemem log {s.path}' says what the log holds")
    plt = _pyplot()
    fig, (ax, axlr) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    colors = iter(SERIES_COLORS * 4)
    handles, losses = [], []
    acc_ax = None

    def draw(axis, x, values, label, test: bool):
        few = len(x) < 50
        (h,) = axis.plot(x, values, color=next(colors), label=label,
                         linestyle="--" if test else "-", linewidth=1.6 if test else 1.1,
                         marker=("o" if test else ".") if few or test else None, markersize=3.5)
        handles.append(h)

    its, loss = s.train.column("loss")
    if len(its):
        draw(ax, its, loss, "train loss", False)
        losses.append(loss)
    for key in s.test.outputs:
        x, values = s.test.column(key)
        if not len(x):
            continue
        kind = output_kind(key)  # by name; an unnamed output in [0, 1] is taken as a rate
        if kind == "accuracy" or (kind is None and ((values >= 0) & (values <= 1)).all()):
            acc_ax = acc_ax or ax.twinx()
            draw(acc_ax, x, values, f"test {key}", True)  # the right axis says "accuracy"
        else:
            draw(ax, x, values, f"test {key}", True)
            losses.append(values)
    every = np.concatenate(losses) if losses else np.array([])
    positive = every[every > 0]
    if len(positive) and positive.max() / positive.min() > 50:
        ax.set_yscale("log")  # an early spike would flatten everything else
    ax.set_ylabel("loss")
    if acc_ax is not None:
        acc_ax.set_ylabel("accuracy")
        acc_ax.set_ylim(0, 1.02)
    if handles:  # above the plot, where no curve runs under it
        ax.legend(handles=handles, fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.01),
                  ncol=min(4, len(handles)), frameon=False, title="solid: train, dashed: test",
                  title_fontsize=8, alignment="left")
    lr_its, lr = s.train.column("lr")
    axlr.plot(lr_its, lr, color="#555555", label="learning rate", marker="o" if len(lr_its) < 50 else None,
              markersize=3)
    axlr.set_ylabel("learning rate")
    axlr.set_xlabel("iteration")
    axlr.xaxis.set_major_locator(MaxNLocator(integer=True))  # no iteration 0.25
    fig.suptitle(f"{os.path.basename(s.path)}: training curves")
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return fig
