"""``caffemem report``: the whole picture in one self-contained, offline HTML page."""

from __future__ import annotations

import argparse

from ..errors import UserError
from .common import add_memory_options, add_net_options, analysis_options

HELP = "one offline HTML page: verdict, graph, per-layer table, timeline, diff and log"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help=HELP, description=HELP + ". The page fetches nothing (inline CSS, "
        "script and SVG under a Content-Security-Policy); the same inputs give the same bytes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  caffemem report train_val.prototxt -o report.html --gpu-mem 11GiB\n"
               "  caffemem report solver.prototxt --log train.log -o report.html\n"
               "  caffemem report new.prototxt --old old.prototxt -o diff.html")
    p.add_argument("prototxt", metavar="NET_OR_SOLVER", help="a net or solver prototxt")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write")
    p.add_argument("--log", metavar="LOG", help="a Caffe log of this net: curves, and a failure with its fixes (default: none)")
    p.add_argument("--old", metavar="OLD_NET", help="an older net or solver: one merged graph of both, and the diff (default: none)")
    p.add_argument("--variants", choices=["engines", "all"], default="engines",
                   help="what the page can switch between: engines [default] (cuDNN and CAFFE, "
                        "gpu mode) or all (every scenario, train/time/test, with each engine)")
    p.add_argument("--no-cards", action="store_true",
                   help="leave out the largest batch per card size (4..80 GiB), which models a few more batches")
    add_net_options(p, sides=("old",))
    add_memory_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import report_args

    analysis_options(args, "old")  # the same checks on --old-input/--old-batch
    page, error = report_args(args, args.prototxt, log=args.log, old=args.old,
                              old_input=args.old_input, old_batch=args.old_batch,
                              cards=not args.no_cards, variants=args.variants, trunk=True)
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as e:
        raise UserError(f"cannot write {args.output}: {e.strerror}") from None
    print(f"wrote {args.output} ({len(page.encode()):,} bytes)")
    if error is not None:
        raise error  # a net Caffe refuses: the page shows the layers before; the reason last
    return 0
