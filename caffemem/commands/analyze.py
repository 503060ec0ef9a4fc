"""``caffemem analyze``: shapes, Caffe's log figure and the real allocation of a net or solver."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from ..errors import EXIT_NOFIT
from .common import add_format_option, add_memory_options, add_net_options, analysis_options, emit

HELP = "every blob's shape, Caffe's log figure to the byte, and the real allocation per layer"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze", help=HELP, description=HELP + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  caffemem analyze train_val.prototxt                      shapes, Caffe's log figure, memory per layer\n"
               "  caffemem analyze solver.prototxt --gpu-mem 8GiB          train and test nets: does it fit?\n"
               "  caffemem analyze net.prototxt --input data=*,3,224,224   a database-backed data layer\n"
               "  caffemem analyze deploy.prototxt --caffe-log             Caffe's own set-up lines\n"
               "  caffemem analyze net.prototxt --format json -o mem.json  for scripts (bytes)\n"
               "The first lines are the verdict: the modeled total for the scenario in force, Caffe's\n"
               "own log figure beside it, and with --gpu-mem whether it fits, by how much and the\n"
               "largest batch that fits.  The breakdown per net, layer and kind follows.\n"
               "A solver prototxt builds its train net and each test net, as Caffe does; a net\n"
               "without a loss layer (a deploy net) is modeled for inference unless --scenario says.\n"
               "Data layers that read a database need their image shape: --input data=*,3,227,227\n\n"
               "exit status: 0 ok (and it fits), 1 bad input (a net Caffe refuses: the trunk before\n"
               "the refusal is shown first), 2 a bug in caffemem, 3 it does not fit in --gpu-mem\n"
               "(or --host-mem).")
    p.add_argument("prototxt", help="a net prototxt (train_val, deploy; V1 files too) or a solver prototxt")
    add_net_options(p)
    add_memory_options(p)
    add_format_option(p)
    p.add_argument("--group", action="store_true",
                   help="fold the per-layer rows by name prefix (inception_3a/..., res4b12_...), "
                        "each net apart, with a TOTAL row (default: one row per layer)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="FLOPs in every category (MACs, comparisons, adds, divides, exps) in the "
                        "text tables (default: MACs and other ops; markdown, csv and json always "
                        "give every category)")
    p.add_argument("--caffe-log", action="store_true",
                   help="print the lines Caffe logs while setting up each net (Setting up / Top "
                        "shape / Memory required for data), exactly, without glog prefixes")
    p.add_argument("--compare-estimates", action="store_true",
                   help="show the naive estimates people use next to the modeled total")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import analyze_file
    from ..report.caffelog import header, net_lines

    options = analysis_options(args)
    if args.caffe_log:
        _, nets = analyze_file(args.prototxt, options)
        lines = []
        for net in nets:
            if len(nets) > 1:
                lines.append(header(net.display_label, net))
            lines.extend(net_lines(net))
        emit(args, "\n".join(lines))
        return 0
    from ..api import analyze_args

    a = analyze_args(args, args.prototxt, trunk=True)  # the Python API's caffemem.analyze
    emit(args, render_analysis(args, a._result, a._doc))
    if a.error is not None:
        raise a.error  # the one-line reason, after everything before it
    return EXIT_NOFIT if False in (a._result.verdict.fits, a._result.verdict.host_fits) else 0


@dataclass
class Analysis:
    """Everything ``analyze`` prints, computed once from the model; each format renders it."""

    nets: list
    report: object
    verdict: object
    refusal: object = None


def render_analysis(args: argparse.Namespace, a: Analysis, doc: dict = None) -> str:
    """The chosen ``--format`` of an analysis (``doc``: its JSON document, when built)."""
    from ..report.memview import render
    from ..report.netview import module_table, net_summary, net_table, nets_csv, nets_markdown

    if args.format == "json":
        doc = doc if doc is not None else json_document(a, args.compare_estimates)
        # json's indenting encoder is pure Python; big nets get the fast compact form
        layers = sum(len(n["layers"]) for n in doc["nets"])
        return json.dumps(doc, indent=1 if layers <= 2000 else None)
    if args.format == "csv":
        return nets_csv(a.nets, a.report, group=args.group)
    if args.format == "markdown":
        return "\n".join(["**" + line + "**  " if i == 0 else line + "  "
                          for i, line in enumerate(a.verdict.header_lines())]
                         + ["", nets_markdown(a.nets, a.report, group=args.group)])
    parts = a.verdict.header_lines() + [""]
    for net in a.nets:
        parts.append(f"== {net.display_label}: {net.name or '(unnamed)'} (phase {net.phase}) ==")
        verbose = getattr(args, "verbose", False)
        parts.append(module_table(net, verbose) if args.group else net_table(net, verbose))
        parts.append(net_summary(net))
        parts.extend(f"warning: {w}" for w in net.warnings)
        parts.append("")
    parts.append(render(a.report, a.nets, None, args.compare_estimates, group=args.group))
    return "\n".join(parts)


def json_document(a: Analysis, estimates: bool = False) -> dict:
    """``--format json``: the verdict (total, log figure, fit, engine sensitivity), the
    assumptions, the nets (shapes, log figures) with each layer's modeled bytes by kind, and
    the model's totals (``total_bytes``); built from the analysis alone (no command line),
    so that a report or a script gets the same document."""
    from ..memory import bridge, fits, naive_estimates
    from ..report.netview import net_to_dict

    report, nets = a.report, a.nets
    mem = report.to_dict()
    for n in mem["nets"]:  # per-layer bytes go into the layers of "nets" below
        n.pop("layers", None)
    doc = {"source": a.verdict.source, "verdict": a.verdict.to_dict(),
           "scenario": report.env.scenario, "mode": report.env.mode,
           "engine": a.verdict.engine, "total_bytes": report.total_bytes,
           "bytes": mem["bytes"], "assumptions": [x.to_dict() for x in a.verdict.assumptions],
           "memory": mem, "nets": []}
    if a.refusal is not None:
        doc["refusal"] = {"net": a.refusal.net, "layer": a.refusal.layer, "message": a.refusal.message}
    for net in nets:
        d = net_to_dict(net)
        try:
            mnet = report.net(net.display_label)
        except KeyError:
            mnet = None
        if mnet is not None:
            by_name = {l.name: l for l in mnet.layers}
            for layer in d["layers"]:
                lm = by_name.get(layer["name"])
                if lm is not None:
                    main = lm.device if report.gpu else lm.host
                    layer["bytes"] = {k: v for k, v in main.items() if v}
                    if report.gpu:
                        layer["host_bytes"] = {k: v for k, v in lm.host.items() if v}
        doc["nets"].append(d)
    doc["bridge"] = bridge(report)
    if a.verdict.capacity is not None:
        doc["fit"] = fits(report, a.verdict.capacity).to_dict()
    if estimates:
        doc["estimates"] = [e.to_dict() for e in naive_estimates(nets)]
    return doc
