"""The shape side of a report: nets as plain dicts, tables, CSV and Markdown.

Every renderer here starts from :func:`net_to_dict`, so the JSON, CSV, Markdown and text
outputs always agree.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from ..layers.base import count
from ..net import Net
from ..units import human


def net_to_dict(net: Net) -> dict[str, Any]:
    """A JSON-ready description of a built net (the ``nets[]`` entries of ``--format json``)."""
    layers = []
    for l in net.layers:
        layers.append({
            "name": l.name,
            "type": l.type,
            "bottoms": [net.blobs[b].name for b in l.bottoms],
            "tops": [{"name": net.blobs[t].name, "shape": list(net.blobs[t].shape),
                      "count": net.blobs[t].count, "in_place": l.in_place[j]}
                     for j, t in enumerate(l.tops)],
            "param_shapes": [list(p.shape) for p in l.params],
            "param_count": sum(p.count for p in l.params if p.learnable),
            "shared_params": [p.display_name for p in l.params if not p.learnable],
            "flops": l.flops,
            "loss_weights": [w for w in l.loss_weights if w] and l.loss_weights,
            "need_backward": l.need_backward,
            "memory_required_for_data": l.memory_after,
            "inserted_split": l.inserted_split,
            "notes": list(l.notes),
            "inner_nets": [net_to_dict(n) for n in l.inner_nets],
        })
    return {
        "name": net.name,
        "label": net.display_label,
        "phase": net.phase,
        "stages": list(net.state.stages),
        "memory_required_for_data": net.memory_required_for_data,
        "params": sum(p.count for p in net.learnable_params),
        "flops": sum(l.flops for l in net.layers),
        "outputs": list(net.outputs),
        "warnings": list(net.warnings),
        "layers": layers,
    }


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _si(n: int) -> str:
    for unit, div in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def table_rows(net: Net, show_splits: bool = True) -> list[list[str]]:
    rows = []
    for i, l in enumerate(net.layers):
        if l.inserted_split and not show_splits:
            continue
        tops = ", ".join(f"{net.blobs[t].name}{'*' if l.in_place[j] else ''} {_shape(net.blobs[t].shape)}"
                         for j, t in enumerate(l.tops)) or "-"
        if (len(l.tops) > 2 or l.inserted_split and len(l.tops) > 1) and len({net.blobs[t].shape for t in l.tops}) == 1:
            # a split's copies: one line, not a screen-wide list (JSON/CSV keep every top)
            tops = (f"{net.blobs[l.tops[0]].name} .. _{len(l.tops) - 1}: {len(l.tops)} tops of "
                    f"{_shape(net.blobs[l.tops[0]].shape)}")
        params = sum(p.count for p in l.params if p.learnable)
        shared = any(not p.learnable for p in l.params)
        rows.append([str(i), l.name, l.type, tops,
                     (_si(params) if params else "-") + (" (shared)" if shared else ""),
                     _si(l.flops) if l.flops else "-", human(l.memory_after)])
    return rows


HEADERS = ["#", "layer", "type", "tops (* = in place)", "params", "FLOPs", "log figure"]


def format_table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    def line(cells):
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                         for i, c in enumerate(cells)).rstrip()
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def net_table(net: Net) -> str:
    return format_table(HEADERS, table_rows(net), right={0, 4, 5, 6})


def net_summary(net: Net) -> str:
    d = net.memory_required_for_data
    params = sum(p.count for p in net.learnable_params)
    flops = sum(l.flops for l in net.layers)
    return (f"Memory required for data: {d} bytes ({human(d)}), as Caffe logs it.  "
            f"Parameters: {params:,} ({human(params * 4)}).  Forward multiply-adds: {_si(flops)}.")


def nets_csv(nets: list[Net], report=None, group: bool = False) -> str:
    """One row per top of every layer (shapes, counts, the log figure); with ``group`` and a
    memory ``report``, the per-module bytes by kind instead."""
    if group and report is not None:
        from .memview import memory_csv

        return memory_csv(report, group=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["net", "phase", "layer_index", "layer", "type", "top", "shape", "count",
                "in_place", "param_count", "flops", "memory_required_for_data"])
    for net in nets:
        for i, l in enumerate(net.layers):
            params = sum(p.count for p in l.params if p.learnable)
            tops = l.tops or [None]
            for j, t in enumerate(tops):
                b = net.blobs[t] if t is not None else None
                w.writerow([net.label or net.name, net.phase, i, l.name, l.type,
                            b.name if b else "", " ".join(map(str, b.shape)) if b else "",
                            b.count if b else 0, int(l.in_place[j]) if b else 0,
                            params if j == 0 else 0, l.flops if j == 0 else 0, l.memory_after])
    return buf.getvalue()


def nets_markdown(nets: list[Net], report=None, group: bool = False) -> str:
    """Each net's shape table (left out with ``group``) and summary; with a memory
    ``report``, its per-layer (per-module with ``group``) bytes by kind."""
    out = []
    for net in nets:
        if group:
            out.append(net_summary(net) + "\n")
            continue
        out.append(f"### {net.display_label}: {net.name or '(unnamed)'} ({net.phase})\n")
        out.append("| " + " | ".join(HEADERS) + " |")
        out.append("|" + "|".join("---:" if i in (0, 4, 5, 6) else "---" for i in range(len(HEADERS))) + "|")
        for r in table_rows(net):
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
        out.append("")
        out.append(net_summary(net))
        out.append("")
    if report is not None:
        from .memview import memory_markdown

        out.append(memory_markdown(report, group))
    return "\n".join(out)


__all__ = ["net_to_dict", "net_table", "net_summary", "nets_csv", "nets_markdown", "count"]
