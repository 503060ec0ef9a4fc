"""``caffemem analyze``: shapes, Caffe's log figure and the real allocation of a net or solver."""

from __future__ import annotations

import argparse
import json

from .common import (add_format_option, add_memory_options, add_net_options, analysis_options, emit,
                     memory_report)

HELP = "every blob's shape, Caffe's log figure to the byte, and the real allocation per layer"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze", help=HELP, description=HELP + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="A solver prototxt builds its train net and each test net, as Caffe does.\n"
               "Data layers that read a database need their image shape: --input data=*,3,227,227")
    p.add_argument("prototxt", help="a net prototxt (train_val, deploy; V1 files too) or a solver prototxt")
    add_net_options(p)
    add_memory_options(p)
    add_format_option(p)
    p.add_argument("--caffe-log", action="store_true",
                   help="print the lines Caffe logs while setting up each net (Setting up / Top "
                        "shape / Memory required for data), exactly, without glog prefixes")
    p.add_argument("--compare-estimates", action="store_true",
                   help="show the naive estimates people use next to the modeled total")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import analyze_file
    from ..report.caffelog import header, net_lines
    from ..report.memview import render
    from ..report.netview import net_summary, net_table, nets_csv, nets_markdown

    loaded, nets = analyze_file(args.prototxt, analysis_options(args))
    if args.caffe_log:
        lines = []
        for net in nets:
            if len(nets) > 1:
                lines.append(header(net.display_label, net))
            lines.extend(net_lines(net))
        emit(args, "\n".join(lines))
        return 0
    report = memory_report(args, loaded, nets)
    if args.format == "json":
        doc = json_document(args, nets, report)
        # json's indenting encoder is pure Python; big nets get the fast compact form
        layers = sum(len(n["layers"]) for n in doc["nets"])
        emit(args, json.dumps(doc, indent=1 if layers <= 2000 else None))
    elif args.format == "csv":
        emit(args, nets_csv(nets))
    elif args.format == "markdown":
        emit(args, nets_markdown(nets))
    else:
        parts = []
        for net in nets:
            parts.append(f"== {net.display_label}: {net.name or '(unnamed)'} "
                         f"(phase {net.phase}) ==")
            parts.append(net_table(net))
            parts.append(net_summary(net))
            parts.extend(f"warning: {w}" for w in net.warnings)
            parts.append("")
        parts.append(render(report, nets, args.gpu_mem, args.compare_estimates))
        emit(args, "\n".join(parts))
    return 0


def json_document(args, nets, report) -> dict:
    """``--format json``: the nets (shapes, log figures) with each layer's modeled bytes by
    kind, and the model's totals at the top level (``total_bytes``)."""
    from ..memory import bridge, fits, naive_estimates
    from ..report.netview import net_to_dict

    mem = report.to_dict()
    for n in mem["nets"]:  # per-layer bytes go into the layers of "nets" below
        n.pop("layers", None)
    doc = {"source": args.prototxt, "total_bytes": report.total_bytes,
           "bytes": mem["bytes"], "memory": mem, "nets": []}
    for net in nets:
        d = net_to_dict(net)
        label = net.display_label
        try:
            mnet = report.net(label)
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
    if args.gpu_mem:
        doc["fit"] = fits(report, args.gpu_mem).to_dict()
    if args.compare_estimates:
        doc["estimates"] = [e.to_dict() for e in naive_estimates(nets)]
    return doc
