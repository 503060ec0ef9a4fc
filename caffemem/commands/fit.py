"""``caffemem fit``: the largest batch (or input scale) that fits a GPU, on the model."""

from __future__ import annotations

import argparse
import json

from ..errors import EXIT_NOFIT
from ..units import human
from .common import add_format_option, add_memory_options, add_net_options, emit, memory_env

HELP = "largest batch size (or input scale) that fits a GPU, searched exactly on the model"


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help=HELP, description=HELP + ". The answer is checked again: "
                       "it fits, and one step more does not.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n"
                              "  caffemem fit train_val.prototxt --gpu-mem 11GB           the largest batch\n"
                              "  caffemem fit solver.prototxt --gpu-mem 8G --engine both  for cuDNN and Caffe's engine\n"
                              "  caffemem fit deploy.prototxt --gpu-mem 4G --scale        the largest input size instead\n"
                              "--scale keeps the input at least the net's smallest valid size and says\n"
                              "why the sizes below it are invalid.\n\n"
                              "exit status: 0 ok, 1 bad input, 2 a bug in caffemem, 3 nothing fits "
                              "(not even batch 1, or the smallest valid input).")
    p.add_argument("prototxt", help="net or solver prototxt")
    add_net_options(p)
    add_memory_options(p)
    for a in p._actions:  # --engine here also takes 'both'
        if a.dest == "host_mem":  # refused in one line (api.fit_args), said here too
            a.help = ("refused: fit searches against --gpu-mem only; check host RAM at the "
                      "answer with analyze --batch B --host-mem SIZE (default: none)")
        if a.dest == "engine":
            a.choices = ["cudnn", "caffe", "both"]
            a.help += "; 'both' answers for CAFFE and cuDNN side by side"
    p.add_argument("--scale", action="store_true",
                   help="search the input size (aspect kept, multiples of the net's stride) "
                        "instead of the batch (default: the batch)")
    add_format_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import fit_args

    r = fit_args(args, args.prototxt)  # the Python API's caffemem.fit
    doc, answers, assumed = r._doc, r.answers, r._assumed
    if args.format == "json":
        emit(args, json.dumps(doc, indent=1))
    elif args.format in ("csv", "markdown"):
        emit(args, _table(answers, args.format))
    else:
        emit(args, "\n".join([_text(a, args.gpu_mem) for a in answers] + [a.text() for a in assumed]
                             + [_ENGINE_HINT] * any(a.get("engine_defaulted") for a in answers[:1])))
    return EXIT_NOFIT if not doc["fits"] else 0


def search(args: argparse.Namespace, loaded, options, nets) -> tuple[list[dict], list]:
    """The search for every engine asked (``--engine both``: CAFFE, then cuDNN) and the
    assumptions that stand in for data; ``caffemem.fit`` in the Python API calls this too."""
    from ..fit import data_batch, fit_batch, fit_scale
    from ..verdict import net_assumptions

    from ..verdict import _engine_layers

    engines = ["caffe", "cudnn"] if args.engine == "both" else [args.engine]
    answers = []
    for engine in engines:
        env = memory_env(argparse.Namespace(**{**vars(args), "engine": engine}), loaded, nets)
        # the engine by default, with layers whose engine the build decides: the text says
        # the answer is cuDNN's and how to get Caffe's (a second search would double the time)
        defaulted = engine is None and env.gpu and _engine_layers(nets)[0] > 0
        if args.scale:
            r, align, info = fit_scale(loaded, options, env, args.gpu_mem, nets)
            answers.append(_scale_answer(r, align, info, env))
        else:
            r = fit_batch(loaded, options, env, args.gpu_mem, nets)
            answers.append(_batch_answer(r, data_batch(nets[0]), env,
                                         data_batch(nets[1]) if len(nets) > 1 else None))
        answers[-1]["engine_defaulted"] = defaulted
    return answers, net_assumptions(nets)


def json_document(args: argparse.Namespace, answers: list[dict], assumed=()) -> dict:
    """``--format json``: one answer per engine; ``fits`` is false when nothing fits; the
    assumptions that stand in for data (as ``analyze`` lists them)."""
    return {"source": args.prototxt, "capacity_bytes": int(args.gpu_mem),  # as analyze's verdict
            "capacity_typed": getattr(args.gpu_mem, "typed", None),
            "fits": all(a["largest" if a["what"] == "batch" else "largest_height"] is not None
                        for a in answers),
            "answers": answers, "assumptions": [a.to_dict() for a in assumed]}


_COLUMNS = ["engine", "mode", "scenario", "what", "largest", "total_bytes_at_largest", "next",
            "total_bytes_at_next"]


def _table(answers: list[dict], fmt: str) -> str:
    """One row per answer, exact bytes (csv) or people's units (markdown)."""
    from ..units import human

    rows = []
    for a in answers:
        batch = a["what"] == "batch"
        rows.append([a["engine"], a["mode"], a["scenario"], "batch" if batch else "input height",
                     a["largest"] if batch else a["largest_height"], a["total_bytes_at_largest"],
                     a["next"] if batch else a["next_height"], a["total_bytes_at_next"]])
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(_COLUMNS)
        w.writerows([["" if c is None else c for c in r] for r in rows])
        return buf.getvalue()
    out = ["| " + " | ".join(_COLUMNS) + " |", "|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        cells = [("" if c is None else human(c) if i in (5, 7) else str(c)) for i, c in enumerate(r)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _batch_answer(r, current, env, test_batch=None) -> dict:
    return {"what": "batch", "engine": env.engine if env.gpu else "caffe", "mode": env.mode,
            "scenario": env.scenario, "current": current, "largest": r.best,
            "total_bytes_at_largest": r.best_total, "next": r.next_value,
            "total_bytes_at_next": r.next_total, "probes": len(r.probes),
            # the search sizes the train net; a solver's test nets keep their batch (this)
            "test_batch": test_batch}


def _scale_answer(r, align, info, env) -> dict:
    h = r.best * align if r.best else None
    shapes = info["shapes_at"](h) if h else {}
    return {"what": "scale", "engine": env.engine if env.gpu else "caffe", "mode": env.mode,
            "scenario": env.scenario, "alignment": align, "base_height": info["h0"],
            "smallest_valid_height": info["smallest_valid"],
            "invalid_below": ({"height": info["invalid"][0], "why": info["invalid"][1]}
                              if info["invalid"] else None),
            "largest_height": h, "scale": (h / info["h0"]) if h else None,
            "input_shapes": {k: {b: list(s) for b, s in v.items()} for k, v in shapes.items()},
            "total_bytes_at_largest": r.best_total,
            "next_height": r.next_value * align if r.next_value else None,
            "total_bytes_at_next": r.next_total, "probes": len(r.probes)}


_ENGINE_HINT = ("the engine is cuDNN's by default: a Caffe built without cuDNN runs its im2col "
                "engine, whose answer may differ; --engine caffe answers for it, --engine both for each")


def _text(a: dict, cap: int) -> str:
    eng = f"{a['mode']}, engine {a['engine']}, scenario {a['scenario']}"
    if a["what"] == "batch":
        if a["largest"] is None:
            return (f"[{eng}] even batch 1 does not fit in {human(cap)}: it needs "
                    f"{human(a['total_bytes_at_next'] or 0)}")
        which = "train batch" if a.get("test_batch") else "batch"
        line = (f"[{eng}] largest {which} that fits in {human(cap)} ({cap:,} B): {a['largest']} "
                f"(needs {a['total_bytes_at_largest']:,} B")
        if a["next"] is not None:
            line += f"; batch {a['next']} would need {a['total_bytes_at_next']:,} B"
        line += ")"
        if a["current"]:
            line += f"; the prototxt's batch is {a['current']}"
        if a.get("test_batch"):
            line += (f"; the test nets keep theirs, {a['test_batch']} (this total is analyze "
                     f"--batch {a['largest']} --test-batch {a['test_batch']})")
        return line
    floor = ""
    if a["invalid_below"]:
        floor = (f"\n  heights below {a['smallest_valid_height']} are invalid: at height "
                 f"{a['invalid_below']['height']}, {a['invalid_below']['why']}")
    if a["largest_height"] is None:
        return (f"[{eng}] not even the smallest valid input height ({a['smallest_valid_height']}) fits "
                f"in {human(cap)}: it needs {human(a['total_bytes_at_next'] or 0)}" + floor)
    shapes = "; ".join(f"{b}={'x'.join(map(str, s))}" for v in a["input_shapes"].values() for b, s in v.items())
    return (f"[{eng}] largest input that fits in {human(cap)}: height {a['largest_height']} "
            f"(scale {a['scale']:.3f} of {a['base_height']}, multiples of {a['alignment']}): {shapes}; "
            f"needs {a['total_bytes_at_largest']:,} B ({human(a['total_bytes_at_largest'])})"
            + (f"; height {a['next_height']} would need {a['total_bytes_at_next']:,} B"
               if a["next_height"] else "") + floor)
