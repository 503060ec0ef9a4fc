"""A log summary for people (text), for scripts (JSON), as curves (CSV) and as a picture."""

from __future__ import annotations

import csv
import io
from typing import Optional

from ..units import human
from .failure import FailureReport
from .summary import LogSummary


def to_dict(s: LogSummary, failure: Optional[FailureReport], diagnosis: Optional[dict]) -> dict:
    return {
        "path": s.path,
        "nets": [{"label": n.label, "name": n.name, "phase": n.phase, "line": n.line,
                  "initialized": n.done, "memory_required_for_data": n.memory_required_for_data,
                  "layers": [{"name": l.name, "bottoms": l.bottoms, "tops": l.tops,
                              "top_shapes": [list(x) for x in l.shapes],
                              "memory_required_for_data": l.memory_after,
                              "loss_weights": l.loss_weights, "needs_backward": l.needs_backward}
                             for l in n.layers]} for n in s.nets],
        "train": s.train, "test": s.test, "gpus": s.gpus, "snapshots": s.snapshots,
        "failure": failure.to_dict() if failure else None,
        "diagnosis": diagnosis,
        "stopped_at": {"lines": s.stop.lines, "bytes": s.stop.bytes,
                       "last_line_cut": s.stop.cut_last_line, "junk_lines": s.stop.junk_lines,
                       "inside": s.stop.inside},
    }


def curves_csv(s: LogSummary) -> str:
    """Two tables like Caffe's tools/extra/parse_log.py (train, then test), in one CSV with a
    leading ``phase`` column: phase, iteration, seconds, learning rate, then every output."""
    keys: list[str] = []
    for row in s.train + s.test:
        for k in row:
            if k not in ("iteration", "seconds", "lr", "net", "loss") and k not in keys:
                keys.append(k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["phase", "iteration", "seconds", "lr", "loss"] + keys)
    for phase, rows in (("train", s.train), ("test", s.test)):
        for r in rows:
            w.writerow([phase, r.get("iteration"), r.get("seconds", ""), r.get("lr", ""),
                        r.get("loss", "")] + [r.get(k, "") for k in keys])
    return buf.getvalue()


def text(s: LogSummary, failure: Optional[FailureReport], diagnosis_text: str = "") -> str:
    out = [f"{s.path}: {s.stop.lines:,} lines"
           + (f", {s.stop.junk_lines} unreadable (binary) lines skipped" if s.stop.junk_lines else "")
           + ("; the last line is cut (truncated file)" if s.stop.cut_last_line else "")
           + (f"; the log ends during {s.stop.inside}" if s.stop.inside else "")]
    for g in s.gpus[:4]:
        out.append(f"  {g}")
    for n in s.nets:
        fig = n.memory_required_for_data
        out.append(f"{n.label}: {n.name or '(unnamed)'} ({n.phase}), {len(n.layers)} layers"
                   + (f", Memory required for data {fig:,} bytes ({human(fig)})" if fig is not None else "")
                   + ("" if n.done else ", initialization not finished"))
    if s.train:
        last = s.train[-1]
        out.append(f"training: {len(s.train)} logged iterations, last {last.get('iteration')} "
                   f"(loss {last.get('loss')})")
    if s.test:
        out.append(f"testing: {len(s.test)} test passes")
    if failure is None:
        out.append("no failure in the log")
    else:
        out.append("")
        out.append(f"FAILURE: {failure.kind}, during {failure.phase}")
        out.append(f"  {failure.source + ': ' if failure.source else ''}{failure.message}")
        if failure.layer or failure.layer_class:
            where = failure.layer or f"a {failure.layer_class} layer"
            if failure.candidates:
                where += f" (the net has {len(failure.candidates)}: {', '.join(failure.candidates[:6])}"
                where += " ...)" if len(failure.candidates) > 6 else ")"
            out.append(f"  at: {where}")
        for e in failure.explanation:
            out.append(f"  {e}")
    if diagnosis_text:
        out.append("")
        out.append(diagnosis_text)
    return "\n".join(out)


def plot_curves(s: LogSummary, out_path: str):
    """Loss, accuracy-like outputs and learning rate against iterations."""
    from ..plot import _pyplot, check_output

    check_output(out_path)
    plt = _pyplot()
    fig, (ax, axlr) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    tr = [r for r in s.train if r.get("loss") is not None]
    losses = []
    if tr:
        ax.plot([r["iteration"] for r in tr], [r["loss"] for r in tr], label="train loss", color="#4C72B0")
        losses += [r["loss"] for r in tr]
    acc_ax = None
    for key in sorted({k for r in s.test for k in r if k not in ("iteration", "net")}):
        pts = [(r["iteration"], r[key]) for r in s.test if key in r]
        values = [p[1] for p in pts]
        if "acc" in key.lower() or (values and all(0 <= v <= 1 for v in values)):
            acc_ax = acc_ax or ax.twinx()
            acc_ax.plot([p[0] for p in pts], values, marker="o", markersize=3, color="#55A868",
                        label=f"test {key}")
        else:
            ax.plot([p[0] for p in pts], values, marker="o", markersize=3, label=f"test {key}")
            losses += values
    positive = [v for v in losses if v == v and v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_yscale("log")  # an early spike would flatten everything else
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    if acc_ax is not None:
        acc_ax.set_ylabel("accuracy")
        acc_ax.set_ylim(0, 1.02)
        h2, l2 = acc_ax.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=8, loc="center right")
    lr = [r for r in s.train if "lr" in r]
    axlr.plot([r["iteration"] for r in lr], [r["lr"] for r in lr], color="#C44E52", label="learning rate")
    axlr.set_ylabel("learning rate")
    axlr.set_xlabel("iteration")
    fig.suptitle(f"{s.path}: training curves")
    fig.tight_layout()
    fig.savefig(out_path)
    return fig
