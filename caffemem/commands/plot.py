"""``caffemem plot``: per-layer memory, net diffs and training curves as pictures."""

from __future__ import annotations

import argparse
import os

from ..errors import UserError
from .common import SIDES, add_memory_options, add_net_options, model_file

HELP = "draw per-layer memory (one net), a diff (two nets) or training curves (a log)"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plot", help=HELP, description=HELP + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  caffemem plot train_val.prototxt -o memory.png --gpu-mem 8G\n"
               "  caffemem plot old.prototxt new.prototxt -o diff.png --old-input data=*,3,224,224\n"
               "  caffemem plot train.log -o curves.png\n"
               "The format follows the extension: .png, .svg or .pdf.  Nets of more than 60 layers\n"
               "are folded by module name prefix (inception_3a/..., never across nets); the total,\n"
               "by kind as the text total, stands beside the layers with the capacity on its axis.\n"
               "Two nets take every net option for both, or --old-X / --new-X for one side.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="one net/solver prototxt, two of them (a diff), or a Caffe training log")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="picture to write (.png/.svg/.pdf)")
    p.add_argument("--what", choices=["layers", "diff", "curves"],
                   help="what to draw (default: from the files given)")
    p.add_argument("--top", type=int, metavar="N",
                   help="only the N largest bars, the rest summed (default: all)")
    fold = p.add_mutually_exclusive_group()
    fold.add_argument("--group", action="store_true", default=None,
                      help="fold layers by module name prefix (default: when more than 60 layers)")
    fold.add_argument("--no-group", dest="group", action="store_false",
                      help="one bar per layer, however many")
    p.add_argument("--log-scale", action="store_true", help="logarithmic per-layer axis (default linear)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress on stderr while a long log is read (shown on a terminal only)")
    add_net_options(p, sides=SIDES)
    add_memory_options(p, sides=SIDES)
    p.set_defaults(run=run)


def _looks_like_log(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    return b"] " in head and (b".cpp:" in head or b".hpp:" in head)


def draw_diff(old, new, d, v, out: str, top=None, group=None) -> None:
    """The two-net picture of a comparison (``diff --plot`` and ``plot OLD NEW``): the
    verdict's lines (totals, fits, what the engine decides) under the title."""
    from ..plot import plot_diff

    title = f"{os.path.basename(v.old.source)} vs {os.path.basename(v.new.source)}: {v.setting()}"
    lines = v.header_lines()[2:4]
    if v.engines is not None and v.engines.sensitive:
        lines.append(v.engines.short() + "; your Caffe build decides (--engine).")
    plot_diff(old.costs(), new.costs(), d.pairs, out, title=title, top=top,
              old_by_kind=old.report.by_kind, new_by_kind=new.report.by_kind,
              capacity=v.new.capacity, headline=lines, group=group,
              why=d.headline(totals=False))


def run(args: argparse.Namespace) -> int:
    what = args.what or ("diff" if len(args.files) == 2 else
                         "curves" if _looks_like_log(args.files[0]) else "layers")
    if what == "curves":
        from ..logparse import summarize
        from ..plot import plot_curves
        from ..progress import Progress
        from ..sniff import check_caffe_log, check_log

        check_log(args.files[0])
        progress = Progress(args.files[0], quiet=args.quiet)
        try:
            s = summarize(args.files[0], progress=progress, texts=False)
        finally:
            progress.done()
        check_caffe_log(s)
        plot_curves(s, args.output)
    elif what == "diff":
        if len(args.files) != 2:
            raise UserError("a diff plot takes two files: OLD NEW")
        from .diff import compare

        args.old, args.new = args.files
        old, new, d, v = compare(args)
        draw_diff(old, new, d, v, args.output, top=args.top, group=args.group)
    else:
        if len(args.files) != 1:
            raise UserError("per-layer plots take one net or solver prototxt")
        from ..plot import plot_layers

        m = model_file(args, args.files[0], trunk=True)
        v = m.verdict(args.gpu_mem, search_batch=False)
        sub = v.scope + [v.header_lines()[1 + len(v.scope)]] + ([v.fit_line()] if v.capacity is not None else [])
        if v.engines is not None and v.engines.sensitive:
            sub.append(v.engines.short() + "; your Caffe build decides (--engine).")
        sub += v.notes + [a.text() for a in v.data_assumptions]
        title = f"{os.path.basename(args.files[0])} ({v.net_name or 'unnamed'}): {v.setting()}"
        plot_layers(m.costs(), args.output, title=title, gpu_mem=args.gpu_mem,
                    total=m.report.total_bytes, log_scale=args.log_scale, top=args.top,
                    group=args.group, by_kind=m.report.by_kind, subtitle=sub)
        if m.error is not None:
            print(f"wrote {args.output} (the trunk before the refusal)")
            raise m.error
    print(f"wrote {args.output}")
    return 0
