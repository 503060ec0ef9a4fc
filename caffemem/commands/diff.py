"""``caffemem diff OLD NEW``: where the extra bytes come from, and which net fits."""

from __future__ import annotations

import argparse
import json

from ..errors import EXIT_NOFIT
from ..units import human
from .common import SIDES, add_format_option, add_memory_options, add_net_options, emit, model_file

HELP = "compare two nets (or solvers): per-layer and per-kind deltas, and why"


def add_parser(sub) -> None:
    p = sub.add_parser("diff", help=HELP, description=HELP + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n"
                              "  caffemem diff old.prototxt new.prototxt                 where the extra memory comes from\n"
                              "  caffemem diff old.prototxt new.prototxt --gpu-mem 11G   do both fit?\n"
                              "  caffemem diff net.prototxt net.prototxt --new-batch 64  the same net at another batch\n"
                              "Every net option applies to both nets, and each has its --old-X and --new-X\n"
                              "form for one side (e.g. --old-input data=*,4,384,512 --new-engine caffe).\n"
                              "The header comes first: both totals, both fits in --gpu-mem, and whether\n"
                              "Caffe's engine (cuDNN or its own) decides the verdict.\n\n"
                              "exit status: 0 ok, 1 bad input, 2 a bug in caffemem, 3 the new net does not "
                              "fit in --gpu-mem (or --host-mem).")
    p.add_argument("old", help="the net that works (net or solver prototxt)")
    p.add_argument("new", help="the net to compare with it")
    add_net_options(p, sides=SIDES)
    add_memory_options(p, sides=SIDES)
    add_format_option(p)
    p.add_argument("--top", type=int, default=15, metavar="N",
                   help="contributors to list (default %(default)s)")
    p.add_argument("--plot", metavar="OUT",
                   help="also draw both nets per layer and the deltas (.png/.svg/.pdf; default: no picture)")
    p.set_defaults(run=run)


def compare(args: argparse.Namespace, old=None, new=None):
    """Both files modeled, their diff and the verdict over both (what every format renders);
    ``old``/``new``: sides already modeled (``caffemem.diff`` in the Python API)."""
    from ..diff import diff_costs
    from ..verdict import _engine_layers, diff_verdict

    old = old or model_file(args, args.old, "old")
    new = new or model_file(args, args.new, "new")
    old_costs, new_costs = old.costs(), new.costs()
    d = diff_costs(old_costs, new_costs,
                   sum(n.memory_required_for_data for n in old.nets),
                   sum(n.memory_required_for_data for n in new.nets),
                   old.report.total_bytes, new.report.total_bytes)
    host = getattr(args, "host_mem", None)
    ov = old.verdict(args.gpu_mem, search_batch=False, host_capacity=host)
    nv = new.verdict(args.gpu_mem, search_batch=False, host_capacity=host)
    v = diff_verdict(ov, nv, ov.engines and ov.engines.totals[""], nv.engines and nv.engines.totals[""],
                     _engine_layers(old.nets)[1] + _engine_layers(new.nets)[1])
    return old, new, d, v


def run(args: argparse.Namespace) -> int:
    from ..diff import forward_flops
    from ..report.netview import flops_change, format_table

    from ..api import diff_args

    r = diff_args(args, args.old, args.new)  # the Python API's caffemem.diff
    old, new, d, v = r.old._modeled, r.new._modeled, r._diff, r._verdict
    if args.plot:
        from .plot import draw_diff

        draw_diff(old, new, d, v, args.plot)
    status = EXIT_NOFIT if False in (v.fits, v.new.host_fits) else 0
    if args.format == "json":
        emit(args, json.dumps(r._doc, indent=1))
        return status
    if args.format == "csv":
        emit(args, _csv(d))
        return status
    md = args.format == "markdown"
    out = [("**" + line + "**" if md and i == 0 else line) + ("  " if md else "")
           for i, line in enumerate(v.header_lines())]
    out += ["", d.headline(totals=False),
            flops_change(forward_flops([o for o, _ in d.pairs if o]),
                         forward_flops([n for _, n in d.pairs if n]), v.old.batch, v.new.batch),
            ""]
    ob, nb = v.old.batch, v.new.batch
    if ob and nb and ob != nb:
        def per_sample(costs):
            return sum(c.bytes.get("activations", 0) + c.bytes.get("diffs", 0) for c in costs)
        out.append(f"per sample (batch {ob} -> {nb}): activations + diffs "
                   f"{human(per_sample(old.costs()) // ob)} -> {human(per_sample(new.costs()) // nb)} per image")
    changes = d.changes()
    if changes:
        out += ["", "layers:"] + [f"{'- ' if md else '  '}{s:8s} {l}: {w}" for s, l, w in changes]
    if d.contributors:
        out += ["", "largest per-layer, per-kind changes:", ""]
        headers = ["layer", "kind", "status", "delta"]
        rows = [[c.layer, c.kind, c.status, ("+" if c.delta_bytes > 0 else "") + human(c.delta_bytes)]
                for c in d.contributors[:args.top]]
        if md:
            out += ["| " + " | ".join(headers) + " |", "|---|---|---|---:|"]
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        else:
            out.append(format_table(headers, rows, right={3}))
    emit(args, "\n".join(out))
    return status


def json_document(d, v) -> dict:
    """``--format json``: the verdict over both nets (totals, fits, engine sensitivity,
    assumptions), the headline, the layer changes and the contributors; built from the
    diff and the verdict alone (no command line).  ``flops``: the first net's forward pass
    on each side, by category."""
    from ..diff import forward_flops

    doc = {"old": v.old.source, "new": v.new.source, "verdict": v.to_dict(),
           "old_total_bytes": d.old_total, "new_total_bytes": d.new_total,
           "delta_bytes": d.delta_bytes,
           "old_memory_required_for_data": d.old_log_figure,
           "new_memory_required_for_data": d.new_log_figure,
           "headline": d.headline(), "old_batch": v.old.batch, "new_batch": v.new.batch,
           "assumptions": v.to_dict()["assumptions"],
           "changes": [{"status": s, "layer": l, "what": w} for s, l, w in d.changes()],
           "contributors": [{"layer": c.layer, "kind": c.kind, "delta_bytes": c.delta_bytes,
                             "status": c.status} for c in d.contributors],
           "flops": {"old": forward_flops([o for o, _ in d.pairs if o]).to_dict(),
                     "new": forward_flops([n for _, n in d.pairs if n]).to_dict()}}
    return doc


def _csv(d) -> str:
    """One row per aligned layer pair: exact bytes on each side and the delta, then each
    side's forward FLOPs by category (empty where not counted)."""
    import csv
    import io

    from ..flops import CATEGORIES

    def ops(c) -> list:
        f = c.flops if c is not None else None
        return [getattr(f, k) for k in CATEGORIES] if f is not None else [""] * len(CATEGORIES)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["old_layer", "new_layer", "old_type", "new_type", "status", "old_bytes",
                "new_bytes", "delta_bytes"] + [f"old_{k}" for k in CATEGORIES]
               + [f"new_{k}" for k in CATEGORIES])
    for o, n in d.pairs:
        status = "added" if o is None else "removed" if n is None else "same" if o.bytes == n.bytes else "changed"
        ob, nb = (o.total if o else 0), (n.total if n else 0)
        w.writerow([o.name if o else "", n.name if n else "", o.type if o else "", n.type if n else "",
                    status, ob, nb, nb - ob] + ops(o) + ops(n))
    return buf.getvalue()
