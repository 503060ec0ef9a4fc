"""Options several commands share (net building, scenario, output format) and their parsing."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional, TextIO

from ..errors import UserError, did_you_mean, shown
from .. import argtypes
from ..units import SIZE_HELP, parse_size

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


#: the two sides of a comparison (diff, two-net plot): options --old-X / --new-X, dests old_X / new_X
SIDES = ("old", "new")


class TypedSize(int):
    """A size in bytes (exact int) that remembers how the user typed it, so that a picture
    labels ``--gpu-mem 8G`` as the user wrote it."""

    typed: str

    def __new__(cls, nbytes: int, typed: str):
        v = super().__new__(cls, nbytes)
        v.typed = typed.strip()
        return v


def typed_size(text: str, option: str = "--gpu-mem") -> TypedSize:
    """``--gpu-mem``: the one size parser (binary units; card makers' GB), as typed.  A bad
    size is a UserError naming ``option`` (the CLI prints it in one line, exit 1)."""
    return TypedSize(parse_size(text, option), text)


def _phase(text: str) -> str:
    up = text.strip().upper()
    if up not in ("TRAIN", "TEST"):
        raise argparse.ArgumentTypeError(f"{shown(text)}: the phase is TRAIN or TEST"
                                         + did_you_mean(up, ("TRAIN", "TEST"), cutoff=0.6))
    return up


def _net_option_specs():
    """(name, kwargs) of the options that say how to build a net, as analyze has them."""
    return [
        ("input", dict(action="append", default=[], metavar="BLOB=N,C,H,W",
                       help="shape of a top by name, overriding what the prototxt gives (repeatable); "
                            "needed for data layers whose image size lives in a database, Python "
                            "layers, or unsupported layer types; '*' as N keeps the layer's batch "
                            "size (default: none)")),
        ("test-input", dict(action="append", default=[], metavar="BLOB=N,C,H,W",
                            help="like --input, for a solver's test nets only, winning over "
                                 "--input there (repeatable): a top whose shape differs between "
                                 "the train and test databases, e.g. SSD's label boxes: --input "
                                 "label=1,1,7,8 --test-input label=1,1,2,8 (default: none)")),
        ("batch", dict(type=argtypes.integer(1, argtypes.INT32_MAX), metavar="N",
                       help="batch size of every data layer (Data, ImageData, Input, ...) "
                            "(default: the prototxt's)")),
        ("test-batch", dict(type=argtypes.integer(1, argtypes.INT32_MAX), metavar="N",
                            help="batch size of the test nets' data layers only (default: the "
                                 "prototxt's)")),
        ("phase", dict(type=_phase, metavar="TRAIN|TEST",
                       help="for a net file: the phase to build (default TRAIN; a solver decides "
                            "itself)")),
        ("stage", dict(action="append", default=[], metavar="NAME",
                       help="NetState stage for include/exclude rules (repeatable; default: none)")),
        ("level", dict(type=argtypes.integer(argtypes.INT32_MIN, argtypes.INT32_MAX,
                                             "Caffe's NetState.level is an int32"), metavar="N",
                       help="NetState level for include/exclude rules (default 0)")),
        ("until", dict(metavar="LAYER",
                       help="build each net only up to this layer, as if the net ended there "
                            "(default: the whole net)")),
    ]


def _memory_side_specs():
    """(name, kwargs) of the memory-model options that describe how a net is run (per side in
    a comparison); the machine's options (--gpu-mem, --context-mib, ...) are shared."""
    return [
        ("scenario", dict(choices=["train", "time", "test"],
                          help="train: solver (forward, backward, update) plus its test nets; "
                               "time: what 'caffe time' does (one forward and backward, no "
                               "solver); test: forward only. Default: train for a solver or a "
                               "net with a loss layer, test for a net without one (a deploy "
                               "net) or built in phase TEST")),
        ("mode", dict(choices=["gpu", "cpu"],
                      help="gpu: device bytes and pinned host bytes reported apart; cpu: the "
                           "heap (default gpu; a solver says its own solver_mode)")),
        ("engine", dict(choices=["cudnn", "caffe"],
                        help="convolution/pooling/... engine: cudnn (a Caffe built with cuDNN) "
                             "or caffe (im2col; a build without cuDNN) (default cudnn in gpu "
                             "mode); a layer's own 'engine:' field wins, as in Caffe")),
        ("solver-type", dict(metavar="TYPE",
                             help="SGD, Nesterov, AdaGrad, RMSProp, AdaDelta or Adam, for a net "
                                  "file (default SGD; a solver prototxt says its own)")),
        ("gpus", dict(type=argtypes.integer(1), metavar="N",
                      help="GPUs in data-parallel training, each holding a full solver "
                           "(default 1)")),
    ]


def _side_help(text: str, side: str) -> str:
    return f"like --{text}, for the {side} net only (default: the shared option)"


def add_net_options(p, sides: tuple = ()) -> None:
    """The options that build a net: --input, --batch, --test-batch, --phase, --stage,
    --level, --until; with ``sides``, also --old-X/--new-X for each (a side's own value wins
    over the shared one; --input merges, the side's shapes winning)."""
    group = isinstance(p, argparse.ArgumentParser)
    g = p.add_argument_group("building the net") if group else p
    for name, kw in _net_option_specs():
        g.add_argument(f"--{name}", **kw)
    for side in sides:
        gs = p.add_argument_group(f"building the {side} net only") if group else p
        for name, kw in _net_option_specs():
            kw = dict(kw, help=_side_help(name, side))
            gs.add_argument(f"--{side}-{name}", **kw)


def _get(args: argparse.Namespace, name: str, side: str = ""):
    """A side's own option when given, else the shared one."""
    if side:
        v = getattr(args, f"{side}_{name}", None)
        if v not in (None, []):
            return v
    return getattr(args, name, None)


def analysis_options(args: argparse.Namespace, side: str = "") -> AnalysisOptions:
    """The build options for one net (``side`` 'old'/'new' in a comparison)."""
    from ..analysis import AnalysisOptions

    side = side.rstrip("_")
    inputs = dict(parse_input(t) for t in getattr(args, "input", []) or [])
    test_inputs = dict(parse_input(t) for t in getattr(args, "test_input", []) or [])
    if side:
        inputs.update(parse_input(t) for t in getattr(args, f"{side}_input", []) or [])
        test_inputs.update(parse_input(t) for t in getattr(args, f"{side}_test_input", []) or [])
    batch = _get(args, "batch", side)
    for what in ("batch", "test_batch"):
        v = _get(args, what, side)
        if v is not None and v <= 0:
            raise UserError(f"--{what.replace('_', '-')} must be positive")
    phase = _get(args, "phase", side)
    return AnalysisOptions(
        phase=phase.upper() if phase else None, stages=tuple(_get(args, "stage", side) or ()),
        level=_get(args, "level", side), inputs=inputs, test_inputs=test_inputs, batch=batch,
        test_batch=_get(args, "test_batch", side), until=_get(args, "until", side))


def add_memory_options(p: argparse.ArgumentParser, sides: tuple = ()) -> None:
    """Scenario, mode, engine and solver options of the allocation model (per side too, with
    ``sides``), and the machine's: --gpu-mem, --cudnn-workspace-mib, --context-mib."""
    from ..buffers import DEFAULT_CONTEXT_MIB, DEFAULT_CUDA

    g = p.add_argument_group("memory model")
    for name, kw in _memory_side_specs():
        g.add_argument(f"--{name}", **kw)
    for name, what in (
            ("gpu-mem", "GPU capacity, e.g. 8G, 8GiB, 11GB, 12000MiB: says whether it fits, by "
                        "how much and the largest batch that fits; exit status 3 when it does "
                        "not fit (default: no check). " + SIZE_HELP),
            ("host-mem", "host RAM for the run, e.g. 32G: says whether the pinned and heap "
                         "bytes fit, and when host RAM, not the card, is the limit; exit status "
                         "3 when they do not fit (default: no check)")):
        g.add_argument(f"--{name}", metavar="SIZE", help=what,
                       type=lambda text, option=f"--{name}": typed_size(text, option))
    g.add_argument("--cudnn-workspace-mib", metavar="MIB",
                   type=argtypes.number(0, 8, "Caffe's limit per cuDNN op"),
                   help="workspace per cuDNN convolution op, in MiB: Caffe's limit, an upper "
                        "bound (cuDNN often needs less); 0 models the zero-workspace algorithms "
                        "(default 8)")
    g.add_argument("--context-mib", type=argtypes.integer(0, 2**40), metavar="MIB",
                   help="CUDA context per GPU, in MiB (default: by --cuda, %s MiB for CUDA %s; "
                        "measure an idle process with nvidia-smi on your setup)"
                        % (DEFAULT_CONTEXT_MIB, DEFAULT_CUDA))
    g.add_argument("--cuda", type=argtypes.integer(1, 99), metavar="MAJOR",
                   help="CUDA major version of the Caffe build (8-12): the default CUDA context "
                        "and whether cuBLAS keeps a workspace (default %s)" % DEFAULT_CUDA)
    for side in sides:
        gs = p.add_argument_group(f"memory model, the {side} net only")
        for name, kw in _memory_side_specs():
            gs.add_argument(f"--{side}-{name}", **dict(kw, help=_side_help(name, side)))


def add_format_option(p: argparse.ArgumentParser, choices=("text", "json", "csv", "markdown")) -> None:
    p.add_argument("--format", choices=list(choices), default="text",
                   help="output format: " + ", ".join(choices) + " (default %(default)s; json for "
                        "scripts)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the output to FILE (default: stdout)")


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


NO_LOSS_NOTE = ("no loss layer and no solver: modeled for inference (forward only); give the "
                "solver, or --scenario train, to model training")


def scenario_for(args: argparse.Namespace, loaded, nets=None, side: str = "") -> tuple[Optional[str], str]:
    """The scenario to model (None: the model's default, train) and why, in a few words.

    A solver trains; a net file built in phase TEST runs forward only, as ``caffe test``; a
    net file with no loss layer (a deploy net) is modeled for inference, since a person who
    passes a deploy.prototxt wants inference unless they say otherwise."""
    chosen = _get(args, "scenario", side)
    if chosen:
        return chosen, "--scenario"
    if loaded.solver is not None:
        return None, "a solver: training"
    if (_get(args, "phase", side) or "").upper() == "TEST":
        return "test", "a TEST-phase net runs forward only, as 'caffe test'"
    if nets is not None and not any(w for n in nets for l in n.layers for w in l.loss_weights):
        return "test", NO_LOSS_NOTE
    return None, "a net with a loss layer: training; --scenario test models inference"


def memory_env(args: argparse.Namespace, loaded, nets=None, side: str = "") -> MemoryEnv:
    """The allocation model's environment from the command line and the loaded file.

    A solver prototxt implies the train scenario with its own solver type, regularization,
    test schedule and solver_mode; a net file trains with SGD (``--solver-type``) when it has
    a loss layer and runs forward only when it has none (see :func:`scenario_for`)."""
    from ..memory import MemoryEnv

    kw = {}
    scenario, _ = scenario_for(args, loaded, nets, side)
    if scenario:
        kw["scenario"] = scenario
    for name in ("mode", "engine", "solver_type"):
        v = _get(args, name, side)
        if v:
            kw[name] = v
    kw["gpus"] = _get(args, "gpus", side) or 1
    mib = getattr(args, "context_mib", None)
    if mib is not None:
        if mib < 0:
            raise UserError("--context-mib must be 0 or more")
        kw["context_bytes"] = mib * 2**20
    if getattr(args, "cuda", None) is not None:
        kw["cuda"] = args.cuda
    ws = getattr(args, "cudnn_workspace_mib", None)
    if ws is not None:
        if not 0 <= ws <= 8:
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


def memory_report(args: argparse.Namespace, loaded, nets, side: str = ""):
    """Run the allocation model for the built nets."""
    from ..memory import model_memory

    return model_memory(nets, memory_env(args, loaded, nets, side))


@dataclass
class Modeled:
    """One file built and modeled as the command line says: what every command starts from."""

    loaded: object
    nets: list
    options: object
    env: object
    report: object
    scenario_why: str
    #: a net Caffe refuses (``trunk=True``): the figures are of the trunk before it, and the
    #: error is raised once they are shown
    refusal: object = None
    error: Optional[Exception] = None
    #: the model's replay of the run (``caffemem.memory.model.replay``): the HTML report's
    #: timeline and card table read it
    replayed: object = None
    #: the nets' models by env (``caffemem.memory.model.Models``), shared by the engine
    #: check and any remodeling of the same nets
    models: object = None

    def costs(self):
        """Per-layer bytes by kind from the model (for diffs and plots)."""
        from ..report.memview import layer_costs

        return layer_costs(self.report, self.nets)

    def verdict(self, capacity=None, search_batch: bool = True, host_capacity=None):
        from ..verdict import verdict_of

        v = verdict_of(self.loaded, self.nets, self.options, self.env, self.report,
                       self.scenario_why, capacity, search_batch=search_batch,
                       host_capacity=host_capacity, models=self.models)
        if self.scenario_why == NO_LOSS_NOTE:
            v.notes.append(NO_LOSS_NOTE[0].upper() + NO_LOSS_NOTE[1:] + ".")
        if self.options.until:
            v.scope.append(f"Up to layer '{self.options.until}' (--until): each net as if it "
                           f"ended there.")
        if self.refusal is not None:
            r = self.refusal
            v.scope.append(f"Caffe refuses {r.net}{' at layer ' + repr(r.layer) if r.layer else ''}: "
                           f"the figures are the trunk before it (the reason is the last line).")
        return v


def model_file(args: argparse.Namespace, path: str, side: str = "", trunk: bool = False) -> Modeled:
    """Load, build and model ``path`` with the options of ``side`` ('old'/'new' in a
    comparison, '' otherwise).  With ``trunk``, a net Caffe refuses at a late layer is
    modeled up to the layer before (the caller shows it, then raises ``error``)."""
    from ..loader import load

    options = analysis_options(args, side)
    loaded = load(path, phase=options.phase, stages=options.stages, level=options.level)
    return model_loaded(args, loaded, side, trunk)


def model_loaded(args: argparse.Namespace, loaded, side: str = "", trunk: bool = False,
                 nets=None, models=None, keep_models: bool = False) -> Modeled:
    """:func:`model_file` for a file already loaded (a path, prototxt text or a NetParameter,
    see :func:`caffemem.api.analyze`); ``nets``: nets already built from it with these
    options (to model them again under other memory options), ``models``: their
    :class:`~caffemem.memory.model.Models` (what is already modeled of them; with
    ``keep_models`` each model the verdict makes is kept whole, for a caller that asks for
    the nets under the other engine next)."""
    from ..analysis import build_trunks
    from ..memory.model import Models

    options = analysis_options(args, side)
    refusal = error = None
    if nets is None:
        nets, refusal, error = build_trunks(loaded, options)
        if error is not None and (not trunk or not nets):
            raise error
    _, why = scenario_for(args, loaded, nets, side)
    env = memory_env(args, loaded, nets, side)
    if models is None or models.nets is not nets:
        models = Models(nets, keep=keep_models)
    return Modeled(loaded, nets, options, env, models.report(env), why, refusal, error,
                   models.replay(env), models)
