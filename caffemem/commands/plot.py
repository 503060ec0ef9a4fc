"""``caffemem plot``: per-layer memory, net diffs and training curves as pictures."""

from __future__ import annotations

import argparse

from ..errors import UserError
from .common import add_memory_options, add_net_options, analysis_options, model_costs

HELP = "draw per-layer memory (one net), a diff (two nets) or training curves (a log)"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plot", help=HELP, description=HELP + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  caffemem plot train_val.prototxt -o memory.png --gpu-mem 8GiB\n"
               "  caffemem plot old.prototxt new.prototxt -o diff.png\n"
               "  caffemem plot train.log -o curves.png\n"
               "The format follows the extension: .png, .svg or .pdf.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="one net/solver prototxt, two of them (a diff), or a Caffe training log")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="picture to write (.png/.svg/.pdf)")
    p.add_argument("--what", choices=["layers", "diff", "curves"],
                   help="what to draw (default: from the files given)")
    p.add_argument("--top", type=int, metavar="N", help="only the N largest layers (the rest summed)")
    p.add_argument("--group", action="store_true", help="merge layers by name prefix (for 500+ layer nets)")
    p.add_argument("--log-scale", action="store_true", help="logarithmic memory axis")
    add_net_options(p)
    add_memory_options(p)
    p.set_defaults(run=run)


def _looks_like_log(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    return b"] " in head and (b".cpp:" in head or b".hpp:" in head)


def run(args: argparse.Namespace) -> int:
    from ..analysis import analyze_file
    from ..diff import diff_costs

    what = args.what or ("diff" if len(args.files) == 2 else
                         "curves" if _looks_like_log(args.files[0]) else "layers")
    if what == "curves":
        from ..logparse import summarize
        from ..logparse.render import plot_curves

        plot_curves(summarize(args.files[0]), args.output)
    elif what == "diff":
        if len(args.files) != 2:
            raise UserError("a diff plot takes two files: OLD NEW")
        from ..plot import plot_diff

        opts = analysis_options(args)
        (oc, ot) = model_costs(args, *analyze_file(args.files[0], opts))
        (nc, nt) = model_costs(args, *analyze_file(args.files[1], opts))
        d = diff_costs(oc, nc, 0, 0, ot, nt)
        plot_diff(oc, nc, d.pairs, args.output, top=args.top,
                  title=f"{args.files[0]} vs {args.files[1]}")
    else:
        if len(args.files) != 1:
            raise UserError("per-layer plots take one net or solver prototxt")
        from ..plot import plot_layers

        costs, total = model_costs(args, *analyze_file(args.files[0], analysis_options(args)))
        plot_layers(costs, args.output, title=f"{args.files[0]}: memory per layer", gpu_mem=args.gpu_mem,
                    total=total, log_scale=args.log_scale, top=args.top, group=args.group)
    print(f"wrote {args.output}")
    return 0
