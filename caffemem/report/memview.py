"""The allocation side of a report, for people: per-layer bytes by kind, totals, the bridge
from Caffe's log figure, the fit against a GPU, and the naive estimates for comparison."""

from __future__ import annotations

from typing import Optional

from ..diff import LayerCost, cost_name
from ..units import human
from .netview import format_table

SHORT = {"activations": "act", "diffs": "diff", "params": "param", "param_diffs": "pdiff",
         "history": "hist", "im2col": "im2col", "internal": "buf", "workspace": "wksp",
         "prefetch": "prefetch", "context": "ctx"}


def layer_table(report, net_label: str, show_zero: bool = False) -> str:
    """Per-layer bytes by kind for one net (device bytes in gpu mode, heap in cpu mode)."""
    net = report.net(net_label)
    side = "device" if report.gpu else "host"
    kinds = [k for k in SHORT if any((l.device if side == "device" else l.host).get(k) for l in net.layers)]
    rows = []
    for l in net.layers:
        b = l.device if side == "device" else l.host
        total = sum(b.values())
        if not total and not show_zero:
            continue
        rows.append([l.name, l.type, l.engine or "-"] + [human(b[k]) if b.get(k) else "" for k in kinds]
                    + [human(total)])
    headers = ["layer", "type", "engine"] + [SHORT[k] for k in kinds] + ["total"]
    if not rows:
        return "(nothing allocated)"
    return format_table(headers, rows, right=set(range(3, len(headers))))


def totals_line(by_kind: dict[str, int]) -> str:
    return ", ".join(f"{k} {human(v)}" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]))


def render(report, nets, gpu_mem: Optional[int] = None, compare: bool = False) -> str:
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
        out.append(layer_table(report, n.label))
    out.append("")
    out.append(f"Total ({where}, at {report.peak_moment}): {report.total_bytes:,} bytes = {human(report.total_bytes)}")
    out.append(f"  by kind: {totals_line(report.by_kind)}")
    if report.gpu:
        if report.context_bytes:
            out.append(f"  CUDA context (assumed, --context-mib): {human(report.context_bytes)}")
        out.append(f"  pinned host memory: {human(report.host_bytes)}")
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
    layer's top and parameter shapes taken from the built ``nets``."""
    shapes = {}
    for net in nets:
        label = net.display_label
        for l in net.layers:
            shapes[(label, l.name)] = ([net.blobs[t].shape for t in l.tops], [p.shape for p in l.params])
    out = []
    for n in report.nets:
        for l in n.layers:
            b = dict(l.device if report.gpu else l.host)
            tops, params = shapes.get((n.label, l.name), ([], []))
            out.append(LayerCost(cost_name(l.name, n.label), l.type, len(out), tops, params, b))
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
