"""The shape side of a report: nets as plain dicts, tables, CSV and Markdown.

Every renderer here starts from :func:`net_to_dict`, so the JSON, CSV, Markdown and text
outputs always agree.

FLOPs are shown by category (:mod:`caffemem.flops`): text tables give "MACs" (multiply-adds,
the figure people publish for a net) and "other ops" (comparisons, adds, divides and exps
together), or with ``verbose`` every category; Markdown, CSV and JSON give every category.
"?" marks a layer whose type caffemem does not count; the summary names them.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Optional

from ..flops import CATEGORIES, SHORT, Flops, total
from ..grouping import fold, module_prefix
from ..layers.base import count
from ..net import Net
from ..units import human

#: a layer whose type caffemem does not count (``LayerRule.flops`` gave None)
NOT_COUNTED = "?"


def net_flops(net: Net) -> tuple[Flops, list]:
    """The net's forward FLOPs by category, and the layers not counted in it."""
    return total(l.flops for l in net.layers), [l for l in net.layers if l.flops is None]


def flops_to_dict(f: Optional[Flops]) -> Optional[dict[str, int]]:
    """A layer's ``"flops"`` in JSON: every category (None: not counted)."""
    return None if f is None else f.to_dict()


def flops_headers(verbose: bool) -> list[str]:
    """Table columns for FLOPs: MACs and other ops, or (``verbose``) every category."""
    return [SHORT[c] for c in CATEGORIES] if verbose else ["MACs", "other ops"]


def flops_cells(f: Optional[Flops], verbose: bool) -> list[str]:
    if f is None:
        return [NOT_COUNTED] * len(flops_headers(verbose))
    values = [getattr(f, c) for c in CATEGORIES] if verbose else [f.macs, f.other]
    return [_si(v) if v else "-" for v in values]


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
            "flops": flops_to_dict(l.flops),
            "loss_weights": [w for w in l.loss_weights if w] and l.loss_weights,
            "need_backward": l.need_backward,
            "memory_required_for_data": l.memory_after,
            "inserted_split": l.inserted_split,
            "notes": list(l.notes),
            "inner_nets": [net_to_dict(n) for n in l.inner_nets],
        })
    flops, uncounted = net_flops(net)
    return {
        "name": net.name,
        "label": net.display_label,
        "phase": net.phase,
        "stages": list(net.state.stages),
        "memory_required_for_data": net.memory_required_for_data,
        "params": sum(p.count for p in net.learnable_params),
        "flops": flops.to_dict(),
        "flops_not_counted": [{"layer": l.name, "type": l.type} for l in uncounted],
        "outputs": list(net.outputs),
        "warnings": list(net.warnings),
        #: layers of unknown types modeled as shape-preserving: the figures are approximate
        "approximate_layers": net.approximate_layers,
        "layers": layers,
    }


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _si(n: int) -> str:
    for unit, div in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def table_rows(net: Net, show_splits: bool = True, verbose: bool = False) -> list[list[str]]:
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
                     (_si(params) if params else "-") + (" (shared)" if shared else "")]
                    + flops_cells(l.flops, verbose) + [human(l.memory_after)])
    return rows


def headers(verbose: bool = False) -> list[str]:
    """The shape table's columns (``verbose``: every FLOP category)."""
    return ["#", "layer", "type", "tops (* = in place)", "params"] + flops_headers(verbose) + \
        ["log figure"]


def _numeric(hs: list[str]) -> set[int]:
    return {i for i, h in enumerate(hs) if h in ("#", "params", "log figure", "layers", "other ops")
            or h in SHORT.values()}


def module_rows(net: Net, verbose: bool = False) -> list[list[str]]:
    """The shape table folded by module (``--group``): layers, params and FLOPs per module
    (:func:`caffemem.grouping.module_prefix`), then the net's TOTAL."""
    rows = []
    for name, ls in fold(net.layers, lambda l: module_prefix(l.name)):
        params = sum(p.count for l in ls for p in l.params if p.learnable)
        f = None if all(l.flops is None for l in ls) else total(l.flops for l in ls)
        rows.append([name, str(len(ls)), _si(params) if params else "-"] + flops_cells(f, verbose))
    params = sum(p.count for p in net.learnable_params)
    rows.append(["TOTAL", str(len(net.layers)), _si(params) if params else "-"]
                + flops_cells(net_flops(net)[0], verbose))
    return rows


def module_headers(verbose: bool = False) -> list[str]:
    return ["module", "layers", "params"] + flops_headers(verbose)


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


def net_table(net: Net, verbose: bool = False) -> str:
    hs = headers(verbose)
    return format_table(hs, table_rows(net, verbose=verbose), right=_numeric(hs))


def module_table(net: Net, verbose: bool = False) -> str:
    """:func:`module_rows` as a text table."""
    hs = module_headers(verbose)
    rows = module_rows(net, verbose)
    widths = [max(len(r[i]) for r in rows + [hs]) for i in range(len(hs))]
    rows.insert(len(rows) - 1, ["-" * w for w in widths])
    return format_table(hs, rows, right=_numeric(hs))


def input_batch(net: Net) -> Optional[int]:
    """The batch of the net's first data layer's first top (None without one)."""
    for l in net.layers:
        if l.rule is not None and l.rule.is_data and l.tops:
            shape = net.blobs[l.tops[0]].shape
            return shape[0] if shape else None
    return None


def flops_summary(net: Net) -> str:
    """One line: the forward pass's multiply-adds (and per image, as published figures give
    them), its other operations by category, and the layers not counted."""
    f, uncounted = net_flops(net)
    parts = [f"{_si(getattr(f, c))} {c}" for c in CATEGORIES[1:] if getattr(f, c)]
    batch = input_batch(net)
    per_image = f"; {_si(f.macs // batch)} per image" if batch and batch > 1 and f.macs else ""
    line = (f"Forward pass{f' (batch {batch})' if batch else ''}: {_si(f.macs)} MACs "
            f"(multiply-adds{per_image}), {_si(f.other)} other ops"
            + (f" ({', '.join(parts)})" if parts else "") + ".")
    if uncounted:
        types = sorted({l.type for l in uncounted})
        line += (f"  Not counted ({NOT_COUNTED}): {len(uncounted)} layer{'s' if len(uncounted) > 1 else ''} "
                 f"of type {', '.join(types)} (work that depends on the data or on user code).")
    return line


def flops_change(old: Flops, new: Flops, old_batch: Optional[int] = None,
                 new_batch: Optional[int] = None) -> str:
    """One line for ``diff``: the first net's forward MACs and other ops, old -> new (and
    the MACs per image when the batches differ)."""
    def delta(a: int, b: int) -> str:
        d = b - a
        return "no change" if not d else ("+" if d > 0 else "-") + _si(abs(d))
    line = (f"Forward pass (first net, as built): {_si(old.macs)} -> {_si(new.macs)} MACs "
            f"({delta(old.macs, new.macs)}), {_si(old.other)} -> {_si(new.other)} other ops "
            f"({delta(old.other, new.other)})")
    if old_batch and new_batch and old_batch != new_batch:
        line += (f"; per image (batch {old_batch} -> {new_batch}): {_si(old.macs // old_batch)} -> "
                 f"{_si(new.macs // new_batch)} MACs")
    return line + "."


def net_summary(net: Net) -> str:
    d = net.memory_required_for_data
    params = sum(p.count for p in net.learnable_params)
    return (f"Memory required for data: {d} bytes ({human(d)}), as Caffe logs it.  "
            f"Parameters: {params:,} ({human(params * 4)}).\n" + flops_summary(net))


def nets_csv(nets: list[Net], report=None, group: bool = False) -> str:
    """One row per top of every layer (shapes, counts, the log figure); with ``group`` and a
    memory ``report``, the per-module bytes by kind instead."""
    if group and report is not None:
        from .memview import memory_csv

        flops = {}
        for net in nets:
            for name, ls in fold(net.layers, lambda l: module_prefix(l.name)):
                flops[(net.display_label, name)] = total(l.flops for l in ls)
            flops[(net.display_label, "TOTAL")] = net_flops(net)[0]
        return memory_csv(report, group=True, flops=flops)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["net", "phase", "layer_index", "layer", "type", "top", "shape", "count",
                "in_place", "param_count"] + list(CATEGORIES) + ["memory_required_for_data"])
    for net in nets:
        for i, l in enumerate(net.layers):
            params = sum(p.count for p in l.params if p.learnable)
            tops = l.tops or [None]
            for j, t in enumerate(tops):
                b = net.blobs[t] if t is not None else None
                w.writerow([net.label or net.name, net.phase, i, l.name, l.type,
                            b.name if b else "", " ".join(map(str, b.shape)) if b else "",
                            b.count if b else 0, int(l.in_place[j]) if b else 0,
                            params if j == 0 else 0] + _flops_csv(l.flops, j == 0) + [l.memory_after])
    return buf.getvalue()


def _flops_csv(f: Optional[Flops], first: bool) -> list:
    """A CSV row's FLOP cells: exact counts on a layer's first row, 0 on its other tops'
    rows, empty when the type is not counted."""
    if f is None:
        return [""] * len(CATEGORIES)
    return [getattr(f, c) if first else 0 for c in CATEGORIES]


def _markdown_table(hs: list[str], rows: list[list[str]]) -> list[str]:
    right = _numeric(hs)
    out = ["| " + " | ".join(hs) + " |",
           "|" + "|".join("---:" if i in right else "---" for i in range(len(hs))) + "|"]
    for r in rows:
        cells = [c.replace("|", "\\|") for c in r]
        if r[0] == "TOTAL":
            cells = [f"**{c}**" for c in cells]
        out.append("| " + " | ".join(cells) + " |")
    return out


def nets_markdown(nets: list[Net], report=None, group: bool = False) -> str:
    """Each net's shape table (per module with ``group``), every FLOP category a column, and
    its summary; with a memory ``report``, its per-layer (per-module) bytes by kind."""
    out = []
    for net in nets:
        out.append(f"### {net.display_label}: {net.name or '(unnamed)'} ({net.phase})\n")
        if group:
            out += _markdown_table(module_headers(True), module_rows(net, True))
        else:
            out += _markdown_table(headers(True), table_rows(net, verbose=True))
        out.append("")
        out += [line + "  " for line in net_summary(net).splitlines()]
        out.append("")
    if report is not None:
        from .memview import memory_markdown

        out.append(memory_markdown(report, group))
    return "\n".join(out)


__all__ = ["net_to_dict", "net_table", "module_table", "net_summary", "flops_summary", "net_flops",
           "nets_csv", "nets_markdown", "count"]
