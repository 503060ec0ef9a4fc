"""A log summary for people (text), for scripts (JSON), as curves (CSV) and as a picture."""

from __future__ import annotations

import json
import re
from typing import Optional, TextIO

import numpy as np

from ..units import human
from . import export
from .failure import FailureReport
from .summary import LogSummary


def to_dict(s: LogSummary, failure: Optional[FailureReport], diagnosis: Optional[dict],
            fixes: Optional[list] = None) -> dict:
    """Everything but the curves (which :func:`write_json` streams in); the schema is
    caffemem/log_schema.json."""
    return {
        "path": s.path,
        "nets": [{"label": n.label, "name": n.name, "phase": n.phase, "line": n.line,
                  "initialized": n.done, "memory_required_for_data": n.memory_required_for_data,
                  "layers": [{"name": l.name, "bottoms": l.bottoms, "tops": l.tops,
                              "top_shapes": [list(x) for x in l.shapes],
                              "memory_required_for_data": l.memory_after,
                              "loss_weights": l.loss_weights, "needs_backward": l.needs_backward}
                             for l in n.layers]} for n in s.nets],
        "gpus": s.gpus, "snapshots": s.snapshots,
        "failure": failure.to_dict() if failure else None,
        "diagnosis": diagnosis,
        "fixes": [f.to_dict() for f in fixes or []],
        "stopped_at": {"lines": s.stop.lines, "bytes": s.stop.bytes,
                       "last_line_cut": s.stop.cut_last_line, "junk_lines": s.stop.junk_lines,
                       "inside": s.stop.inside},
        "later_run_line": s.resumed_at,
    }


def write_json(out: TextIO, doc: dict, s: LogSummary) -> None:
    """``doc`` with the train and test curves added as lists of rows, streamed a block at a
    time (:mod:`.export`: a 1 GB log gives millions of rows; they are never all in memory)."""
    head = json.dumps(doc, indent=1)
    out.write(head[:-2] + ",\n")
    for i, (key, table) in enumerate((("train", s.train), ("test", s.test))):
        out.write(f' "{key}": ')
        export.write_json_rows(out, table)
        out.write(",\n" if i == 0 else "\n")
    out.write("}\n")


def write_csv(out: TextIO, s: LogSummary) -> None:
    """The curves as one CSV in parse_log.py's layout with a leading ``phase`` column (see
    :mod:`.export`), streamed a block at a time."""
    export.write_csv(out, s.train, s.test)


def _article(word: str) -> str:
    """'an' before a vowel sound: 'an Unpooling', and 'an LRN', 'an SPP', 'an HDF5Data' (an
    initialism read letter by letter; 'a' before 'a Convolution', 'a Pooling')."""
    spelled = len(word) > 1 and word[:2].isupper()
    return "an" if word[0] in "AEIOU" or (spelled and word[0] in "FHLMNRSX") else "a"


def text(s: LogSummary, failure: Optional[FailureReport], diagnosis_text: str = "",
         fixes: Optional[list] = None) -> str:
    out = [f"{s.path}: {s.stop.lines:,} lines"
           + (f", {s.stop.junk_lines} unreadable (binary) lines skipped" if s.stop.junk_lines else "")
           + ("; the last line is cut (truncated file)" if s.stop.cut_last_line else "")
           + (f"; the log ends during {s.stop.inside}" if s.stop.inside else "")]
    gpus = list(dict.fromkeys(s.gpus))  # a log of several runs says "Using GPUs 0" in each
    for g in gpus[:4]:
        out.append(f"  {g}")
    if len(gpus) > 4:
        out.append(f"  ... and {len(gpus) - 4} more GPU line(s) (--format json lists them)")
    for n in s.nets:
        fig = n.memory_required_for_data
        what = f"{n.name or '(unnamed)'} ({n.phase})" if n.echo else "(its echo is not in the log)"
        out.append(f"{n.label}: {what}, {len(n.layers)} layers"
                   + (f", Memory required for data {fig:,} bytes ({human(fig)})" if fig is not None else "")
                   + ("" if n.done else ", initialization not finished"))
    if len(s.train):
        last = s.train.last()
        n = len(s.train)
        out.append(f"training: {n:,} logged iteration{'s' if n != 1 else ''}, last {last['iteration']}"
                   + (f" (loss {last['loss']:g})" if "loss" in last else "")
                   + (f", {_duration(last['seconds'])} after the solver started" if "seconds" in last else ""))
    if len(s.test):
        last = s.test.last()
        outs = ", ".join(f"{k} {last[k]:g}" for k in s.test.outputs if k in last)
        n = len(s.test)
        out.append(f"testing: {n:,} test pass{'es' if n != 1 else ''}" + (f", last: {outs}" if outs else ""))
        for key, best in _best_tests(s):
            out.append(f"  best {key}: {best}")
    if failure is None:
        out.append("no failure in the log")
    else:
        out.append("")
        when = failure.phase_text  # "not shown in the log (...)" is no moment to be "during"
        when = f"when: {when}" if when.startswith("not shown") else f"during {when}"
        out.append(f"FAILURE: {failure.kind}, {when} [phase: {failure.phase}]")
        out.append(f"  {failure.source + ': ' if failure.source else ''}{failure.message}")
        if failure.layer or failure.layer_class:
            kind = f"{_article(failure.layer_class or 'x')} {failure.layer_class} layer"
            where = failure.layer or kind
            if failure.candidates and not failure.layer:
                where += f" ({len(failure.candidates)} candidates: {', '.join(failure.candidates[:6])}"
                where += " ...)" if len(failure.candidates) > 6 else ")"
            elif failure.layer and len(failure.candidates) > 1:
                where += f" ({kind}; the net has {len(failure.candidates)})"
            out.append(f"  at: {where}")
        if failure.buffer:
            b = failure.buffer
            out.append(f"  the buffer that failed: {b['name']} ({b['kind']}, {b['bytes']:,} bytes = "
                       f"{human(b['bytes'])}) in {b['net']}, {b['layer'] or 'the solver'} {b['call']}")
        elif failure.buffer_candidates:
            out.append(f"  the buffer that failed is one of ({len(failure.buffer_candidates)} by the model, "
                       f"largest first):")
            for b in failure.buffer_candidates[:5]:
                out.append(f"    {b['name']} ({b['kind']}, {human(b['bytes'])}) in {b['net']}, "
                           f"{b['layer'] or 'the solver'} {b['call']}")
        for e in failure.explanation:
            out.append(f"  {e}")
        evidence = [x for x in (failure.scenario and f"scenario: {failure.scenario} ({failure.scenario_evidence})",
                                failure.engine and f"engine: {failure.engine} ({failure.engine_evidence})",
                                failure.card and f"GPU: {failure.card.describe()}",
                                failure.gpus > 1 and "GPUs: several (multi-GPU run)") if x]
        for e in evidence:
            out.append(f"  {e}")
        if s.resumed_at is not None:
            out.append(f"  the log goes on: another run starts at line {s.resumed_at:,} (runs appended to "
                       "one log); this failure ended an earlier run, and the nets and curves above "
                       "include the later runs")
    if diagnosis_text:
        out.append("")
        out.append(diagnosis_text)
    if fixes:
        out.append("")
        out.append("fixes, most likely first:")
        for i, f in enumerate(fixes, 1):
            saves = f", saves {human(f.saves_bytes)}" if f.saves_bytes and f.saves_bytes > 0 else ""
            out.append(f"  {i}. [{f.action}] {f.detail} ({f.confidence} confidence{saves})")
    return "\n".join(out)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def output_kind(key: str) -> Optional[str]:
    """``"accuracy"`` for an accuracy-like output (named acc..., map, eval, precision, recall,
    iou, top-k), ``"loss"`` for a loss, None otherwise.  The name's last part decides:
    GoogLeNet's ``loss1/top-1`` is an accuracy that lives under a loss layer's prefix."""
    low = key.lower().rsplit("/", 1)[-1]
    if (any(w in low for w in ("acc", "map", "eval", "precision", "recall", "iou"))
            or re.match(r"top[-_]?\d", low)):
        return "accuracy"
    return "loss" if "loss" in low else None


def _best_tests(s: LogSummary) -> list[tuple[str, str]]:
    """The best value of each test output over the run (:func:`output_kind`): highest for
    accuracy-like outputs, lowest for losses; others left out."""
    out = []
    for key in s.test.outputs:
        kind = output_kind(key)
        higher = kind == "accuracy"
        if kind is None:
            continue
        its, values = s.test.column(key, max_points=len(s.test) or 1)
        finite = np.isfinite(values)
        if finite.sum() < 2:
            continue
        i = int(np.flatnonzero(finite)[np.argmax(values[finite]) if higher else np.argmin(values[finite])])
        out.append((key, f"{values[i]:g} at iteration {int(its[i])}"))
    return out


def plot_curves(s: LogSummary, out_path: str):
    """Loss, accuracy-like outputs and learning rate against iterations (drawn by
    :func:`caffemem.plot.plot_curves`, with the other pictures)."""
    from ..plot import plot_curves as draw

    return draw(s, out_path)
