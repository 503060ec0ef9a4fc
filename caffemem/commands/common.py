"""Options several commands share (net building, scenario, output format) and their parsing."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from typing import TYPE_CHECKING, Iterator, Optional, TextIO

from ..errors import UserError
from ..units import parse_size

if TYPE_CHECKING:
    from ..analysis import AnalysisOptions
    from ..memory import MemoryEnv

_INPUT = re.compile(r"^([^=]+)=([0-9*?]+(?:[,x ][0-9]+)*)$")


def parse_input(text: str) -> tuple[str, tuple]:
    """``data=32,3,224,224`` (or ``32x3x224x224``; ``*`` for the layer's own batch)."""
    m = _INPUT.match(text.strip())
    if not m:
        raise UserError(f"--input '{text}': expected BLOB=N,C,H,W (e.g. data=32,3,224,224; "
                        f"use * for the data layer's own batch size: data=*,3,224,224)")
    dims = re.split(r"[,x ]", m.group(2))
    shape = tuple(None if d in ("*", "?") else int(d) for d in dims)
    if any(d is None for d in shape[1:]):
        raise UserError(f"--input '{text}': only the first (batch) dimension may be '*'")
    if any(d is not None and d <= 0 for d in shape):
        raise UserError(f"--input '{text}': dimensions must be positive")
    return m.group(1).strip(), shape


def add_net_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """Shape-related options: --input, --batch, --phase, --stage, --level."""
    dash = f"--{prefix}" if prefix else "--"
    p.add_argument(f"{dash}input", action="append", default=[], metavar="BLOB=N,C,H,W",
                   help="shape of a top by name, overriding what the prototxt gives (repeatable); "
                        "needed for data layers whose image size lives in a database, Python "
                        "layers, or unsupported layer types; '*' as N keeps the layer's batch size")
    p.add_argument(f"{dash}batch", type=int, metavar="N",
                   help="batch size of every data layer (Data, ImageData, Input, ...)")
    if not prefix:
        p.add_argument("--test-batch", type=int, metavar="N",
                       help="batch size of the test nets' data layers only")
        p.add_argument("--phase", choices=["TRAIN", "TEST", "train", "test"],
                       help="for a net file: the phase to build (default TRAIN); a solver decides itself")
        p.add_argument("--stage", action="append", default=[], metavar="NAME",
                       help="NetState stage for include/exclude rules (repeatable)")
        p.add_argument("--level", type=int, help="NetState level for include/exclude rules")


def analysis_options(args: argparse.Namespace, prefix: str = "") -> AnalysisOptions:
    from ..analysis import AnalysisOptions

    inputs = dict(parse_input(t) for t in getattr(args, f"{prefix}input"))
    batch = getattr(args, f"{prefix}batch")
    if batch is not None and batch <= 0:
        raise UserError("--batch must be positive")
    phase = getattr(args, "phase", None)
    return AnalysisOptions(
        phase=phase.upper() if phase else None, stages=tuple(getattr(args, "stage", ()) or ()),
        level=getattr(args, "level", None), inputs=inputs, batch=batch,
        test_batch=getattr(args, "test_batch", None))


def add_memory_options(p: argparse.ArgumentParser) -> None:
    """Scenario, mode, engine and solver options of the allocation model."""
    g = p.add_argument_group("memory model")
    g.add_argument("--scenario", choices=["train", "time", "test"],
                   help="train: solver (forward, backward, update) plus its test nets [default "
                        "for a solver, and for a net file]; time: what 'caffe time' does (one "
                        "forward and backward, no solver); test: forward only")
    g.add_argument("--mode", choices=["gpu", "cpu"],
                   help="gpu [default; a solver says its own solver_mode]: device bytes and pinned host bytes reported apart; cpu: the heap")
    g.add_argument("--engine", choices=["cudnn", "caffe"],
                   help="convolution/pooling/... engine: cudnn [default in gpu mode] or caffe "
                        "(im2col); a layer's own 'engine:' field wins, as in Caffe")
    g.add_argument("--solver-type", metavar="TYPE",
                   help="SGD, Nesterov, AdaGrad, RMSProp, AdaDelta or Adam (for a net file; "
                        "default SGD; a solver prototxt says its own)")
    g.add_argument("--gpus", type=int, default=1, metavar="N",
                   help="GPUs in data-parallel training (each holds a full solver)")
    g.add_argument("--gpu-mem", metavar="SIZE", type=parse_size,
                   help="GPU capacity, e.g. 8GiB, 11GB, 12000MiB: says whether it fits and by how much")
    g.add_argument("--cudnn-workspace-mib", type=float, metavar="MIB",
                   help="workspace per cuDNN convolution op, in MiB: Caffe's limit is 8 (the "
                        "default, an upper bound; cuDNN often needs less); 0 models the "
                        "zero-workspace algorithms")
    g.add_argument("--context-mib", type=int, metavar="MIB",
                   help="CUDA context + cuDNN/cuBLAS handles per GPU, in MiB (default documented in README)")


def add_format_option(p: argparse.ArgumentParser, choices=("text", "json", "csv", "markdown")) -> None:
    p.add_argument("--format", choices=list(choices), default="text",
                   help="output format (default text; json for scripts)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the output to FILE instead of stdout")


@contextlib.contextmanager
def output_stream(args: argparse.Namespace) -> Iterator[TextIO]:
    """stdout, or the ``--output`` file (a user error if it cannot be written)."""
    out: Optional[str] = getattr(args, "output", None)
    if not out:
        yield sys.stdout
        return
    try:
        f = open(out, "w")
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror}") from None
    with f:
        yield f


def emit(args: argparse.Namespace, text: str) -> None:
    """Print ``text`` to stdout or the ``--output`` file."""
    with output_stream(args) as f:
        f.write(text if text.endswith("\n") else text + "\n")


def memory_env(args: argparse.Namespace, loaded) -> MemoryEnv:
    """The allocation model's environment from the command line and the loaded file.

    A solver prototxt implies the train scenario with its own solver type, regularization,
    test schedule and solver_mode; a net file defaults to train with SGD (``--solver-type``)."""
    from ..memory import DEFAULT_CONTEXT_MIB, MemoryEnv

    kw = {}
    if getattr(args, "scenario", None):
        kw["scenario"] = args.scenario
    elif loaded.solver is None and (getattr(args, "phase", None) or "").upper() == "TEST":
        kw["scenario"] = "test"  # a TEST-phase net file is run forward only, as `caffe test`
    if getattr(args, "mode", None):
        kw["mode"] = args.mode
    if getattr(args, "engine", None):
        kw["engine"] = args.engine
    if getattr(args, "solver_type", None):
        kw["solver_type"] = args.solver_type
    kw["gpus"] = getattr(args, "gpus", 1) or 1
    mib = getattr(args, "context_mib", None)
    kw["context_bytes"] = (DEFAULT_CONTEXT_MIB if mib is None else mib) * 2**20
    ws = getattr(args, "cudnn_workspace_mib", None)
    if ws is not None:
        if ws < 0 or ws > 8:
            raise UserError("--cudnn-workspace-mib must be between 0 and 8 (Caffe's limit per op)")
        kw["cudnn_workspace_bytes"] = int(ws * 2**20)
    try:
        if loaded.solver is not None:
            env = MemoryEnv.for_solver(loaded.solver, **kw)
        else:
            env = MemoryEnv(**kw)
        if env.mode == "cpu" and env.engine == "cudnn":
            env = env.with_(engine="caffe")  # no cuDNN on the CPU
    except ValueError as e:
        raise UserError(str(e)) from None
    return env


def memory_report(args: argparse.Namespace, loaded, nets):
    """Run the allocation model for the built nets."""
    from ..memory import model_memory

    return model_memory(nets, memory_env(args, loaded))


def model_costs(args: argparse.Namespace, loaded, nets):
    """Per-layer bytes by kind from the allocation model (for diffs and plots), and its total."""
    from ..report.memview import layer_costs

    report = memory_report(args, loaded, nets)
    return layer_costs(report, nets), report.total_bytes
