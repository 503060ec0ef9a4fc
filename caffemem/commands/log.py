"""``caffemem log``: parse a Caffe training log; if it died, say why and what would fit."""

from __future__ import annotations

import argparse
import json

from ..errors import UserError
from .common import add_memory_options, emit

HELP = "parse a Caffe log: nets, curves, and for a crash its kind, phase, culprit and fixes"


def add_parser(sub) -> None:
    p = sub.add_parser("log", help=HELP, description=HELP + ".",
                       epilog="The nets are rebuilt from the log's own echoes, so no prototxt is "
                              "needed; give --gpu-mem when the log does not print the GPU's size.")
    p.add_argument("logfile", help="a Caffe/glog log (BVLC, NVCaffe, forks; prefixes optional)")
    p.add_argument("--net", metavar="PROTOTXT",
                   help="cross-check the log against this net or solver prototxt")
    p.add_argument("--format", choices=["text", "json", "csv"], default="text",
                   help="text [default]; json: everything; csv: training curves like parse_log.py")
    p.add_argument("--plot", metavar="OUT", help="draw loss, outputs and learning rate (.png/.svg/.pdf)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the output to FILE")
    add_memory_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..logparse import classify, summarize
    from ..logparse.render import curves_csv, plot_curves, text, to_dict

    try:
        s = summarize(args.logfile)
    except FileNotFoundError:
        raise UserError(f"{args.logfile}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{args.logfile}: is a directory") from None
    failure = classify(s)
    diag, diag_text, cross = None, "", None
    if failure is not None and failure.is_oom and s.nets:
        diag, diag_text = _diagnose(s, failure, args)
    if args.net:
        cross = crosscheck(s, args.net)
        diag_text = (cross + "\n\n" + diag_text).strip()
    if args.plot:
        plot_curves(s, args.plot)
    if args.format == "json":
        doc = to_dict(s, failure, diag)
        if cross:
            doc["crosscheck"] = cross
        emit(args, json.dumps(doc, indent=1))
    elif args.format == "csv":
        emit(args, curves_csv(s))
    else:
        emit(args, text(s, failure, diag_text))
    return 0


def _diagnose(s, failure, args):
    from ..diagnose import LoggedNet, diagnose
    from ..memory import MemoryEnv

    nets = [LoggedNet(n.label if n.label.startswith(("train", "test")) else "net", n.echo,
                      n.top_shapes(), [(l.name, l.bottoms, l.tops) for l in n.layers])
            for n in s.nets if n.echo]
    # one net of each label (a multi-run log repeats them; the last run is the one that died)
    seen, last_run = set(), []
    for n in reversed(nets):
        if n.label not in seen:
            seen.add(n.label)
            last_run.insert(0, n)
    capacity = args.gpu_mem or failure.gpu_total_bytes
    mode = args.mode or ("cpu" if failure.kind == "host allocation failure" else "gpu")
    engine = args.engine or ("caffe" if failure.allocation and "im2col" in failure.allocation else "cudnn")
    kw = dict(mode=mode, engine=engine if mode == "gpu" else "caffe")
    if args.solver_type:
        kw["solver_type"] = args.solver_type
    from ..pb import caffe_pb2
    from ..prototxt import parse_text

    try:
        if s.solver_echo:
            sp = parse_text(s.solver_echo, caffe_pb2.SolverParameter(), "<solver echo>")
            env = MemoryEnv.for_solver(sp, **kw)
        else:
            env = MemoryEnv(scenario="train" if any(n.label.startswith("train") for n in last_run) else "test", **kw)
        d = diagnose(last_run, s.solver_echo or None, env, capacity)
    except UserError as e:
        return {"error": str(e)}, f"diagnosis: the logged nets could not be rebuilt: {e}"
    return d.to_dict(), "diagnosis (allocation model, " + f"{env.scenario}, {env.mode}, engine {env.engine}):\n" + d.text()


def crosscheck(s, prototxt: str) -> str:
    """Compare the log's nets with the prototxt's, layer by layer: names, top shapes and the
    running "Memory required for data"; names the first layer that differs and how."""
    from ..analysis import build_all

    nets = build_all(prototxt)
    lines = []
    for logged, built in zip(s.nets, nets):
        ours = [l for l in built.layers]
        for i, (a, b) in enumerate(zip(logged.layers, ours)):
            shapes = [built.blobs[t].shape for t in b.tops]
            if a.name != b.name:
                lines.append(f"{logged.label}: layer {i} is '{a.name}' in the log, '{b.name}' in {prototxt}")
                break
            if a.shapes and [tuple(x) for x in a.shapes] != shapes:
                lines.append(f"{logged.label}: layer '{a.name}' tops {a.shapes} in the log, {shapes} in "
                             f"{prototxt} (different input shapes? --input/--batch)")
                break
            if a.memory_after is not None and a.memory_after != b.memory_after:
                lines.append(f"{logged.label}: after layer '{a.name}' the log says {a.memory_after:,} "
                             f"bytes, caffemem {b.memory_after:,}")
                break
        else:
            lines.append(f"{logged.label}: agrees with {prototxt} "
                         f"({min(len(logged.layers), len(ours))} layers compared)")
    return "\n".join(lines)
