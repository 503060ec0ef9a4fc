"""``caffemem log``: parse a Caffe training log; if it died, say why and what would fit."""

from __future__ import annotations

import argparse

from ..errors import UserError
from .common import add_memory_options, add_net_options, emit, output_stream

HELP = "parse a Caffe log: nets, curves, and for a crash its kind, phase, culprit and fixes"


def add_parser(sub) -> None:
    p = sub.add_parser("log", help=HELP, description=HELP + ".",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n"
                              "  caffemem log train.log                             what ran; for a crash: why, and the fixes\n"
                              "  caffemem log train.log --gpu-mem 8G                the card, when the log does not name it\n"
                              "  caffemem log train.log --net train_val.prototxt    cross-check it; model the crash\n"
                              "  caffemem log train.log --format csv -o curves.csv  the curves, like parse_log.py\n"
                              "  caffemem log train.log --plot curves.png           loss, outputs and learning rate\n"
                              "The nets are rebuilt from the log's own echoes, so no prototxt is needed.\n"
                              "The JSON output's schema: caffemem/log_schema.json.")
    p.add_argument("logfile", help="a Caffe/glog log (BVLC, NVCaffe, forks; prefixes optional)")
    p.add_argument("--net", metavar="PROTOTXT",
                   help="a net or solver prototxt: cross-check the log against it, and model it "
                        "for the diagnosis of a crash (the log's shapes size its data layers "
                        "unless --input is given)")
    p.add_argument("--format", choices=["text", "json", "csv"], default="text",
                   help="text [default]; json: everything; csv: training curves like parse_log.py")
    p.add_argument("--plot", metavar="OUT", help="draw loss, outputs and learning rate (.png/.svg/.pdf)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the output to FILE")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress on stderr (shown for logs that take over a second, on a terminal)")
    add_net_options(p.add_argument_group(
        "building the --net prototxt", "(as for analyze; the log's own nets are rebuilt as they ran)"))
    add_memory_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # (the cycle collector is off while any command runs: caffemem.cli.main; reading a log
    # makes next to no reference cycles)
    from ..api import read_log_args
    from ..logparse import fastscan
    from ..logparse.render import plot_curves, text, write_csv, write_json

    if fastscan.cscan is not None:  # this process reads one log and exits: keep freed memory
        fastscan.cscan.tune_allocator()
    r = read_log_args(args)  # the Python API's caffemem.read_log
    s, failure, diag, diag_text, cross, fixes = r._examined
    if args.plot and not len(s.train) and not len(s.test):  # the report stays; no empty picture
        from ..errors import notice

        notice(f"--plot {args.plot}: not written: the log has no training curves to draw")
    elif args.plot:
        plot_curves(s, args.plot)
    if args.format == "json":
        with output_stream(args) as out:
            write_json(out, r._head, s)
    elif args.format == "csv":
        with output_stream(args) as out:
            write_csv(out, s)
    else:
        emit(args, text(s, failure, diag_text, fixes))
    return 0


def examine(args: argparse.Namespace):
    """The log's summary, its failure, the model's diagnosis (dict and text), the cross-check
    against ``--net`` and the fixes: what every output of ``caffemem log`` (and
    ``caffemem.read_log``) starts from."""
    from ..logparse import classify, fastscan, summarize
    from ..progress import Progress
    from ..sniff import check_caffe_log, check_log, check_path

    check_log(args.logfile)  # missing, directory, empty, binary: named before reading
    if getattr(args, "net", None):  # a mistyped path is the user's to fix; a net that cannot be
        check_path(args.net, "prototxt")  # modeled is not (the log's diagnosis stays)
    progress = Progress(args.logfile, quiet=getattr(args, "quiet", False))
    # number texts are kept for the curves' CSV and JSON only, and only for numpy's writers
    # (the C extension's writes each value as fast as it would copy its text)
    texts = getattr(args, "format", "text") != "text" and fastscan.cscan is None
    try:
        s = summarize(args.logfile, progress=progress, texts=texts)
    except FileNotFoundError:
        raise UserError(f"{args.logfile}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{args.logfile}: is a directory") from None
    finally:
        progress.done()
    check_caffe_log(s)
    failure = classify(s)
    diag, diag_text, cross, fixes = None, "", None, []
    if failure is not None and failure.is_oom:
        from ..diagnose import diagnose_failure

        diag, diag_text, fixes = diagnose_failure(s, failure, args)
    if args.net:
        from ..logparse.crosscheck import crosscheck

        cross = crosscheck(s, args.net, args)
        diag_text = (cross + "\n\n" + diag_text).strip()
    return s, failure, diag, diag_text, cross, fixes


def document(s, failure, diag, cross, fixes) -> dict:
    """``--format json`` without the curves (``write_json`` streams them in after it)."""
    from ..logparse.render import to_dict

    doc = to_dict(s, failure, diag, fixes)
    if cross:
        doc["crosscheck"] = cross
    return doc
