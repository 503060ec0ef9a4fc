"""The allocation side of a report, for people: per-layer bytes by kind, totals, the bridge
from Caffe's log figure, the fit against a GPU, and the naive estimates for comparison."""

from __future__ import annotations

from typing import Optional

from ..diff import LayerCost, cost_name
from ..units import human
from .netview import format_table

SHORT = {"activations": "act", "diffs": "diff", "params": "param", "param_diffs": "pdiff",
         "history": "hist", "im2col": "im2col", "internal": "buf", "workspace": "wksp",
         "prefetch": "prefetch", "bookkeeping": "book", "solver_copies": "copies",
         "card_addons": "card", "context": "ctx"}


def memory_rows(report, net_label: str, group: bool = False,
                show_zero: bool = False, host: bool = False) -> tuple[list[str], list[list], list[str]]:
    """One net's per-layer bytes by kind (device bytes in gpu mode, heap in cpu mode) as
    (headers, rows of exact ints, kinds); ``group`` folds rows by module name prefix.  The
    last row is the net's TOTAL.  ``host`` (gpu mode) appends each row's pinned host bytes."""
    from ..grouping import fold, module_prefix

    net = report.net(net_label)
    side = "device" if report.gpu else "host"
    layers = net.layers
    kinds = [k for k in SHORT if any((l.device if side == "device" else l.host).get(k) for l in layers)]
    if group:
        headers = ["module", "layers"]
        units = [(name, str(len(ls)), ls) for name, ls in fold(layers, lambda l: module_prefix(l.name))]
    else:
        headers = ["layer", "type", "engine"]
        units = [(l.name, l.type, [l]) for l in layers]
    host = host and report.gpu
    rows = []
    sums = dict.fromkeys(kinds, 0)
    host_sum = 0
    for unit in units:
        ls = unit[-1]
        b = {k: sum((l.device if side == "device" else l.host).get(k, 0) for l in ls) for k in kinds}
        h = sum(l.host_bytes for l in ls)
        for k in kinds:
            sums[k] += b[k]
        host_sum += h
        if not sum(b.values()) and not (host and h) and not show_zero:
            continue
        label = list(unit[:2]) if group else [unit[0], unit[1], ls[0].engine or "-"]
        rows.append(label + [b[k] for k in kinds] + [sum(b.values())] + ([h] if host else []))
    total_label = ["TOTAL", str(len(layers))] if group else ["TOTAL", "", ""]
    rows.append(total_label + [sums[k] for k in kinds] + [sum(sums.values())]
                + ([host_sum] if host else []))
    return (headers + [SHORT[k] for k in kinds] + ["total"] + (["host"] if host else []),
            rows, kinds)


def layer_table(report, net_label: str, show_zero: bool = False, group: bool = False) -> str:
    """Per-layer (or, with ``group``, per-module) bytes by kind for one net, with a TOTAL."""
    headers, rows, kinds = memory_rows(report, net_label, group, show_zero)
    if len(rows) == 1 and not rows[0][-1]:
        return "(nothing allocated)"
    first = len(headers) - len(kinds) - 1
    text = [r[:first] + [human(v) if v else "" for v in r[first:]] for r in rows]
    text.insert(len(text) - 1, ["-" * len(h) for h in headers])
    return format_table(headers, text, right=set(range(first, len(headers))))


def memory_markdown(report, group: bool = False) -> str:
    """Every net's per-layer (or per-module) table as Markdown, with TOTAL rows."""
    out = []
    for n in report.nets:
        headers, rows, kinds = memory_rows(report, n.label, group)
        first = len(headers) - len(kinds) - 1
        out.append(f"#### memory: {n.label} ({n.phase})\n")
        out.append("| " + " | ".join(headers) + " |")
        out.append("|" + "|".join("---:" if i >= first else "---" for i in range(len(headers))) + "|")
        for r in rows:
            cells = [str(c).replace("|", "\\|") for c in r[:first]] + [human(v) if v else "" for v in r[first:]]
            if r[0] == "TOTAL":
                cells = [f"**{c}**" if c else c for c in cells]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def memory_csv(report, group: bool = False, flops: Optional[dict] = None) -> str:
    """Every net's per-layer (or per-module) bytes by kind as CSV, exact bytes, TOTAL rows;
    ``flops`` ({(net label, row name): Flops}) adds each FLOP category before the bytes, and
    keeps the rows that hold no bytes (a ReLU in place still computes)."""
    import csv
    import io

    from ..flops import CATEGORIES

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    kinds = [k for k in SHORT if k in report.by_kind or k in ("activations",)]
    host = report.gpu  # the pinned host bytes beside the device bytes
    w.writerow(["net", "module" if group else "layer", "layers" if group else "type"]
               + (list(CATEGORIES) if flops is not None else [])
               + [f"{k}_bytes" for k in kinds] + (["host_pinned_bytes"] if host else [])
               + ["total_bytes"])
    for n in report.nets:
        headers, rows, nk = memory_rows(report, n.label, group, show_zero=flops is not None,
                                        host=host)
        first = len(headers) - len(nk) - 1 - int(host)
        for r in rows:
            by = dict(zip(nk, r[first:first + len(nk)]))
            total, pinned = r[first + len(nk)], r[first + len(nk) + 1:]
            ops = []
            if flops is not None:
                f = flops.get((n.label, r[0]))
                ops = [getattr(f, c) for c in CATEGORIES] if f is not None else [""] * len(CATEGORIES)
            w.writerow([n.label, r[0], r[1]] + ops + [by.get(k, 0) for k in kinds] + pinned
                       + [total])
    return buf.getvalue()


def render(report, nets, gpu_mem: Optional[int] = None, compare: bool = False,
           group: bool = False) -> str:
    """The breakdown: per-net tables by kind, the total split by kind once (in the bridge
    from Caffe's log figure), and the naive estimates on request.  The verdict (total, fit)
    is the caller's header; ``gpu_mem`` adds the fit's top contributors."""
    from ..memory import bridge, fits, naive_estimates

    e = report.env
    out = []
    where = "per GPU, device memory" if report.gpu else "heap"
    head = (f"== memory model: scenario {e.scenario}, mode {e.mode}"
            + (f", engine {e.engine}" if report.gpu else "")
            + (f", solver {e.solver_type}" if e.scenario == "train" else "")
            + (f", {e.gpus} GPUs" if e.gpus > 1 and e.scenario == "train" else "") + " ==")
    out.append(head)
    for n in report.nets:
        side = "device" if report.gpu else "host"
        out.append(f"-- {n.label}: {n.name or '(unnamed)'} ({n.phase}{'' if n.runs else ', built but never run'}): "
                   f"{human(n.total(side))} --")
        out.append(layer_table(report, n.label, group=group))
    out.append("")
    out.append(f"Total ({where}, at {report.peak_moment}): {report.total_bytes:,} bytes = {human(report.total_bytes)}")
    if report.gpu:
        if len(report.gpus) > 1:
            out.append("  per GPU: " + _per_gpu(report.gpus))
    out.append("")
    out.append(bridge(report))
    if gpu_mem:
        out.append("")
        out.append("GPU " + fits(report, gpu_mem).message())
    if compare:
        out.append("")
        out.append("What the usual estimates say, against the model:")
        rows = [[est.name, human(est.bytes), est.how] for est in naive_estimates(nets)]
        rows.append(["caffemem model", human(report.total_bytes), f"{e.scenario}, {e.mode}: every allocation Caffe makes"])
        out.append(format_table(["estimate", "bytes", "how"], rows, right={1}))
    for w in report.warnings:
        out.append(f"warning: {w}")
    return "\n".join(out)  # the assumptions are part of the bridge text


def layer_costs(report, nets=()) -> list[LayerCost]:
    """The model's per-layer bytes as diff/plot costs (device bytes in gpu mode), with each
    layer's top and parameter shapes and FLOPs taken from the built ``nets``."""
    shapes = {}
    for net in nets:
        label = net.display_label
        for l in net.layers:
            shapes[(label, l.name)] = ([net.blobs[t].shape for t in l.tops], [p.shape for p in l.params],
                                       l.flops)
    out = []
    for n in report.nets:
        for l in n.layers:
            b = dict(l.device if report.gpu else l.host)
            tops, params, flops = shapes.get((n.label, l.name), ([], [], None))
            out.append(LayerCost(cost_name(l.name, n.label), l.type, len(out), tops, params, b, flops))
    # the CUDA context is not a layer's: it stays in the totals, out of the per-layer bars
    return out


def _per_gpu(gpus) -> str:
    """``GPU0 (root) X, GPU1 (worker) Y``; workers that hold the same bytes (every
    data-parallel worker holds the same model) are said once, with "x N"."""
    workers = [g for g in gpus if g.role == "worker"]
    parts = [f"GPU{g.index} ({g.role}) {human(g.total)}" for g in gpus if g.role != "worker"]
    if len(workers) > 1 and len({g.total for g in workers}) == 1:
        parts.append(f"GPU{workers[0].index}-GPU{workers[-1].index} (worker) "
                     f"{human(workers[0].total)} each (x {len(workers)})")
    else:
        parts += [f"GPU{g.index} ({g.role}) {human(g.total)}" for g in workers]
    return ", ".join(parts)
