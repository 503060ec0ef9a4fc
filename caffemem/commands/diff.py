"""``caffemem diff OLD NEW``: where the extra bytes come from."""

from __future__ import annotations

import argparse
import json

from ..units import human
from .common import (add_format_option, add_memory_options, add_net_options, analysis_options, emit,
                     model_costs)

HELP = "compare two nets (or solvers): per-layer and per-kind deltas, and why"


def add_parser(sub) -> None:
    p = sub.add_parser("diff", help=HELP, description=HELP + ".",
                       epilog="Each side takes its own shape overrides: --old-input/--new-input, "
                              "--old-batch/--new-batch.")
    p.add_argument("old", help="the net that works (net or solver prototxt)")
    p.add_argument("new", help="the net to compare with it")
    add_net_options(p, prefix="old-")
    add_net_options(p, prefix="new-")
    add_memory_options(p)
    add_format_option(p, choices=("text", "json"))
    p.add_argument("--top", type=int, default=15, metavar="N", help="contributors to list (default 15)")
    p.add_argument("--plot", metavar="OUT", help="also draw both nets per layer, side by side, and the deltas (.png/.svg/.pdf)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import analyze_file
    from ..diff import diff_costs
    from ..fit import data_batch
    from ..report.netview import format_table

    old_loaded, old_nets = analyze_file(args.old, analysis_options(args, "old_"))
    new_loaded, new_nets = analyze_file(args.new, analysis_options(args, "new_"))
    (old_costs, old_total) = model_costs(args, old_loaded, old_nets)
    (new_costs, new_total) = model_costs(args, new_loaded, new_nets)
    d = diff_costs(old_costs, new_costs,
                   sum(n.memory_required_for_data for n in old_nets),
                   sum(n.memory_required_for_data for n in new_nets), old_total, new_total)
    ob, nb = data_batch(old_nets[0]), data_batch(new_nets[0])
    if args.plot:
        from ..plot import plot_diff

        plot_diff(old_costs, new_costs, d.pairs, args.plot, title=f"{args.old} vs {args.new}")
    if args.format == "json":
        emit(args, json.dumps({
            "old": args.old, "new": args.new,
            "old_total_bytes": d.old_total, "new_total_bytes": d.new_total,
            "delta_bytes": d.delta_bytes,
            "old_memory_required_for_data": d.old_log_figure,
            "new_memory_required_for_data": d.new_log_figure,
            "headline": d.headline(),
            "old_batch": ob, "new_batch": nb,
            "changes": [{"status": s, "layer": l, "what": w} for s, l, w in d.changes()],
            "contributors": [{"layer": c.layer, "kind": c.kind, "delta_bytes": c.delta_bytes,
                              "status": c.status} for c in d.contributors],
        }, indent=1))
        return 0
    out = [d.headline(), ""]
    out.append(f"log figure (Memory required for data): {d.old_log_figure:,} -> {d.new_log_figure:,} bytes")
    out.append(f"total: {human(d.old_total)} -> {human(d.new_total)}  (delta {human(d.delta_bytes)})")
    if ob and nb and ob != nb:
        def per_sample(costs):
            return sum(c.bytes.get("activations", 0) + c.bytes.get("diffs", 0) for c in costs)
        out.append(f"per sample (batch {ob} -> {nb}): activations + diffs "
                   f"{human(per_sample(old_costs) // ob)} -> {human(per_sample(new_costs) // nb)} per image")
    changes = d.changes()
    if changes:
        out += ["", "layers:"] + [f"  {s:8s} {l}: {w}" for s, l, w in changes]
    if d.contributors:
        out += ["", "largest per-layer, per-kind changes:"]
        rows = [[c.layer, c.kind, c.status, ("+" if c.delta_bytes > 0 else "") + human(c.delta_bytes)]
                for c in d.contributors[:args.top]]
        out.append(format_table(["layer", "kind", "status", "delta"], rows, right={3}))
    emit(args, "\n".join(out))
    return 0
