"""``caffemem log``: parse a Caffe training log; if it died, say why and what would fit."""

from __future__ import annotations

import argparse

from ..errors import UserError
from .common import (add_memory_options, add_net_options, analysis_options, emit, memory_env,
                     output_stream)

HELP = "parse a Caffe log: nets, curves, and for a crash its kind, phase, culprit and fixes"


def add_parser(sub) -> None:
    p = sub.add_parser("log", help=HELP, description=HELP + ".",
                       epilog="The nets are rebuilt from the log's own echoes, so no prototxt is "
                              "needed; give --gpu-mem when the log does not print the GPU's size.")
    p.add_argument("logfile", help="a Caffe/glog log (BVLC, NVCaffe, forks; prefixes optional)")
    p.add_argument("--net", metavar="PROTOTXT",
                   help="cross-check the log against this net or solver prototxt; when the log "
                        "does not echo its nets, the diagnosis of a crash models this one")
    p.add_argument("--format", choices=["text", "json", "csv"], default="text",
                   help="text [default]; json: everything; csv: training curves like parse_log.py")
    p.add_argument("--plot", metavar="OUT", help="draw loss, outputs and learning rate (.png/.svg/.pdf)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the output to FILE")
    add_net_options(p.add_argument_group(
        "building the --net prototxt", "(used when the log does not echo its nets; the log's own "
        "nets are rebuilt as they ran)"))
    add_memory_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..logparse import classify, summarize
    from ..logparse.render import plot_curves, text, to_dict, write_csv, write_json

    try:
        s = summarize(args.logfile)
    except FileNotFoundError:
        raise UserError(f"{args.logfile}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{args.logfile}: is a directory") from None
    failure = classify(s)
    diag, diag_text, cross = None, "", None
    if failure is not None and failure.is_oom and (s.nets or args.net):
        diag, diag_text = _diagnose(s, failure, args)
    if args.net:
        from ..logparse.crosscheck import crosscheck

        cross = crosscheck(s, args.net)
        diag_text = (cross + "\n\n" + diag_text).strip()
    if args.plot:
        plot_curves(s, args.plot)
    if args.format == "json":
        doc = to_dict(s, failure, diag)
        if cross:
            doc["crosscheck"] = cross
        with output_stream(args) as out:
            write_json(out, doc, s)
    elif args.format == "csv":
        with output_stream(args) as out:
            write_csv(out, s)
    else:
        emit(args, text(s, failure, diag_text))
    return 0


def _diagnose(s, failure, args):
    """The model's diagnosis of an out-of-memory failure, with the command line's memory
    options; defaults follow the failure (CPU for a host allocation failure, the CAFFE engine
    when an im2col buffer failed, the test scenario for an inference run).  The nets are the
    log's own echoes, or the ``--net`` prototxt when the log has none."""
    from ..diagnose import diagnose_loaded, loaded_from_log, nets_from_summary

    nets = nets_from_summary(s)
    if not nets and not args.net:
        why = ("the log's net echoes are unreadable (cut or damaged)" if any(n.echo for n in s.nets)
               else "the log does not echo its nets (\"Initializing net from parameters\")")
        return {"error": why}, f"diagnosis: {why}; give the net with --net train_val.prototxt to model it"
    if args.mode is None:
        args.mode = "cpu" if failure.kind == "host allocation failure" else "gpu"
    if args.engine is None:
        args.engine = "caffe" if failure.allocation and "im2col" in failure.allocation else "cudnn"
    inference = failure.phase.startswith("inference")
    if args.scenario is None and (inference or (nets and not s.solver_echo
                                                and not any(n.label.startswith("train") for n in nets))):
        args.scenario = "test"
    try:
        if nets:
            source = "the log's nets"
            loaded, options = loaded_from_log(nets, s.solver_echo or None)
        else:
            from ..analysis import analyze_file

            source = args.net
            options = analysis_options(args)
            loaded, _ = analyze_file(args.net, options)
        env = memory_env(args, loaded)
        d = diagnose_loaded(loaded, options, env, args.gpu_mem or failure.gpu_total_bytes)
    except UserError as e:
        return {"error": str(e)}, f"diagnosis: the nets could not be rebuilt: {e}"
    return d.to_dict(), (f"diagnosis (allocation model of {source}, {env.scenario}, {env.mode}, "
                         f"engine {env.engine}):\n" + d.text())
