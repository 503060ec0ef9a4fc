"""``caffemem analyze``: shapes, Caffe's log figure and the real allocation of a net or solver."""

from __future__ import annotations

import argparse
import json

from ..analysis import build_all
from ..report.caffelog import header, net_lines
from ..report.netview import net_summary, net_table, net_to_dict, nets_csv, nets_markdown
from .common import add_format_option, add_memory_options, add_net_options, analysis_options, emit

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
    nets = build_all(args.prototxt, analysis_options(args))
    if args.caffe_log:
        lines = []
        for net in nets:
            if len(nets) > 1:
                lines.append(header(getattr(net, "label", "net"), net))
            lines.extend(net_lines(net))
        emit(args, "\n".join(lines))
        return 0
    report = _memory(nets, args)
    if args.format == "json":
        doc = {"source": args.prototxt, "nets": [net_to_dict(n) for n in nets]}
        if report is not None:
            doc.update(report.to_dict())
        emit(args, json.dumps(doc, indent=1))
    elif args.format == "csv":
        emit(args, nets_csv(nets))
    elif args.format == "markdown":
        emit(args, nets_markdown(nets))
    else:
        parts = []
        for net in nets:
            parts.append(f"== {getattr(net, 'label', 'net')}: {net.name or '(unnamed)'} "
                         f"(phase {net.phase}) ==")
            parts.append(net_table(net))
            parts.append(net_summary(net))
            parts.extend(f"warning: {w}" for w in net.warnings)
            parts.append("")
        if report is not None:
            parts.append(report.render_text(args))
        emit(args, "\n".join(parts))
    return 0


def _memory(nets, args):
    """The allocation model's report, when the model is available."""
    try:
        from ..memory import api as memory_api  # noqa: F401
    except ImportError:
        return None
    return memory_api.report_for(nets, args)
