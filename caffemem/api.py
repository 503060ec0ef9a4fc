"""The public Python API: what ``caffemem analyze``, ``diff``, ``fit`` and ``log`` answer, as
typed results for scripts and notebooks.

::

    import caffemem

    a = caffemem.analyze("train_val.prototxt", input={"data": "*,3,224,224"}, gpu_mem="11GiB")
    a.total_bytes                      # the modeled peak (bytes, exact int)
    a.log_memory_required_for_data    # Caffe's "Memory required for data", summed over nets
    a.fits                             # True/False with gpu_mem, else None
    a.layers[0].bytes                  # {"activations": ..., "diffs": ...} of one layer
    a.to_dict() == json.loads(`caffemem analyze ... --format json`)

Every function takes a net or solver as a path, as prototxt text, or as a
``caffe_pb2.NetParameter``; the keyword options are the command line's (``input``, ``batch``,
``phase``, ``stage``, ``scenario``, ``mode``, ``engine``, ``gpu_mem``...).  Each result's
``to_dict()`` is built by the same function that prints ``--format json``, so the two are
equal by construction (``tests/test_api.py`` checks it on every oracle net).

Errors in the input raise :class:`caffemem.errors.UserError` (one line, naming the file and
what to do), exactly where the command line prints that line and exits 1.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

from .errors import UserError

NetSource = Union[str, "os.PathLike[str]", Any]  # a path, prototxt text or a NetParameter
Size = Union[int, str]  # bytes, or text such as "11GiB"
InputShapes = Union[Mapping[str, Union[str, Sequence[Optional[int]]]], Sequence[str], None]

__all__ = ["analyze", "diff", "fit", "read_log", "html_report", "Analysis", "NetResult", "LayerResult", "Top",
           "DiffResult", "FitResult", "LogResult"]


# ---------------------------------------------------------------------------------------------
# options: the API's keywords become the command line's namespace, defaults and all


def _namespace(argv: list[str], **values) -> argparse.Namespace:
    """The namespace ``caffemem ARGV`` would parse (every default in place), with ``values``
    set on it: the API and the CLI then run the very same code."""
    from .cli import build_parser

    parser = build_parser()
    ns = parser.parse_args(argv)
    sub = parser._subparsers._group_actions[0].choices[argv[0]]  # the command's own parser
    choices = {a.dest: a.choices for a in sub._actions if a.choices}
    for k, v in values.items():
        if not hasattr(ns, k):
            raise TypeError(f"unknown option {k!r}")
        if v is not None and k in choices and v not in choices[k]:
            raise UserError(f"{k}={v!r}: expected one of {', '.join(map(str, choices[k]))}")
        setattr(ns, k, v)
    return ns


def _size(value: Optional[Size], what: str):
    """Bytes as the command line reads them (``TypedSize``: an int that remembers the text)."""
    from .commands.common import TypedSize, typed_size

    if value is None or isinstance(value, TypedSize):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UserError(f"{what}: expected bytes (an int) or a size such as '11GiB', not {value!r}")
    return typed_size(value if isinstance(value, str) else str(int(value)), what)


def _inputs(value: InputShapes) -> list[str]:
    """``input=`` as the command line's ``--input`` strings: a mapping of top name to
    ``"*,3,224,224"`` or ``(None, 3, 224, 224)`` (``None``/``"*"`` keeps the layer's batch),
    or a list of ``"data=*,3,224,224"``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        out = []
        for name, shape in value.items():
            dims = shape if isinstance(shape, str) else ",".join("*" if d is None else str(int(d)) for d in shape)
            out.append(f"{name}={dims}")
        return out
    return [str(v) for v in value]


def _stages(stage) -> list[str]:
    if stage is None:
        return []
    return [stage] if isinstance(stage, str) else list(stage)


def _source(src: NetSource) -> tuple[str, Optional[str]]:
    """(name, text): a path gives (path, None); prototxt text or a NetParameter give a
    pseudo-name and their text."""
    if hasattr(src, "SerializeToString") and hasattr(src, "layer"):
        from google.protobuf import text_format

        return "<NetParameter>", text_format.MessageToString(src)
    if isinstance(src, os.PathLike):
        return os.fspath(src), None
    if not isinstance(src, str):
        raise UserError(f"expected a path, prototxt text or a caffe_pb2.NetParameter, not {type(src).__name__}")
    if os.path.exists(src) or not any(c in src for c in "\n{:"):
        return src, None
    return "<prototxt text>", src


def _load(src: NetSource, options):
    from .loader import load, load_text

    name, text = _source(src)
    if text is None:
        return name, load(name, phase=options.phase, stages=options.stages, level=options.level)
    return name, load_text(text, name, phase=options.phase, stages=options.stages, level=options.level)


def _net_args(input, batch, test_batch, phase, stage, level, until=None, test_input=None) -> dict:
    if phase is not None and str(phase).upper() not in ("TRAIN", "TEST"):
        raise UserError(f"phase={phase!r}: the phase is TRAIN or TEST")
    return {"input": _inputs(input), "test_input": _inputs(test_input), "batch": batch,
            "test_batch": test_batch,
            "phase": phase.upper() if phase else None, "stage": _stages(stage), "level": level,
            "until": until}


def _memory_args(scenario, mode, engine, solver_type, gpus, gpu_mem, cudnn_workspace_mib,
                 context_mib) -> dict:
    return {"scenario": scenario, "mode": mode, "engine": engine, "solver_type": solver_type,
            "gpus": gpus, "gpu_mem": _size(gpu_mem, "gpu_mem"),
            "cudnn_workspace_mib": cudnn_workspace_mib, "context_mib": context_mib}


def _plain(doc: dict) -> dict:
    """A fresh copy of a document exactly as ``--format json`` writes it (ints, lists)."""
    return json.loads(json.dumps(doc))


# ---------------------------------------------------------------------------------------------
# analyze


@dataclass(frozen=True)
class Top:
    """One top blob of a layer: its name and shape as Caffe logs them."""

    name: str
    shape: tuple[int, ...]
    count: int
    in_place: bool


@dataclass(frozen=True)
class LayerResult:
    """One layer of a built net: tops, parameters and the bytes it holds at the peak, by kind
    (device bytes in gpu mode, heap in cpu mode; ``host_bytes``: pinned host bytes in gpu
    mode)."""

    net: str
    index: int
    name: str
    type: str
    bottoms: tuple[str, ...]
    tops: tuple[Top, ...]
    param_shapes: tuple[tuple[int, ...], ...]
    param_count: int
    flops: int
    bytes: Mapping[str, int]
    host_bytes: Mapping[str, int]
    memory_required_for_data: int
    notes: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


@dataclass(frozen=True)
class NetResult:
    """One net Caffe builds (the one net, the train net, or a test net)."""

    label: str
    name: str
    phase: str
    #: Caffe's own "Memory required for data" for this net, to the byte
    log_memory_required_for_data: int
    layers: tuple[LayerResult, ...]
    #: the net's bytes at the peak, by kind, and their sum
    bytes: Mapping[str, int]
    total_bytes: int
    #: does the scenario run this net (a test net may only be built)?
    runs: bool

    def layer(self, name: str) -> LayerResult:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)


@dataclass
class Analysis:
    """``caffemem.analyze``'s answer: see the module docstring."""

    source: str
    scenario: str
    mode: str
    engine: str
    #: the modeled peak: gpu mode, the busiest GPU's device bytes plus the CUDA context;
    #: cpu mode, the heap
    total_bytes: int
    #: ``total_bytes`` by kind
    bytes: Mapping[str, int]
    #: Caffe's "Memory required for data", summed over the nets the scenario models (as the
    #: bridge text sums them)
    log_memory_required_for_data: int
    nets: tuple[NetResult, ...]
    peak_moment: str
    #: with ``gpu_mem``: does it fit?  (None without)
    fits: Optional[bool]
    gpu_mem: Optional[int]
    #: the text that walks from Caffe's log figure to the modeled peak, kind by kind
    bridge: str
    #: what stands in for data, each {"what": ..., "fix": the option that corrects it, ...}
    assumptions: tuple[dict, ...]
    warnings: tuple[str, ...]
    _doc: dict = field(repr=False)
    #: internals the HTML report draws from (built nets, the memory report, the options)
    _built: list = field(repr=False)
    _report: Any = field(repr=False)
    _args: argparse.Namespace = field(repr=False)
    _loaded: Any = field(repr=False)
    _replay: Any = field(repr=False, default=None)
    _modeled: Any = field(repr=False, default=None)
    _result: Any = field(repr=False, default=None)

    @property
    def layers(self) -> list[LayerResult]:
        """Every layer of every net, in Caffe's order (train net first)."""
        return [l for n in self.nets for l in n.layers]

    def net(self, label: str) -> NetResult:
        for n in self.nets:
            if n.label == label:
                return n
        raise KeyError(label)

    def layer(self, name: str, net: Optional[str] = None) -> LayerResult:
        for n in self.nets:
            if net is None or n.label == net:
                for l in n.layers:
                    if l.name == name:
                        return l
        raise KeyError(name)

    @property
    def margin_bytes(self) -> Optional[int]:
        """With ``gpu_mem``: bytes to spare (negative: missing)."""
        fit = self._doc.get("fit")
        return fit["margin_bytes"] if fit else None

    @property
    def verdict(self) -> dict:
        """The verdict as ``--format json`` gives it: total beside Caffe's figure, fits, the
        largest batch, engine sensitivity, notes (``verdict_text`` for the lines)."""
        return _plain(self._doc["verdict"])

    @property
    def verdict_text(self) -> str:
        """The verdict as ``caffemem analyze`` prints it first."""
        return "\n".join(self._result.verdict.header_lines())

    @property
    def error(self) -> Optional[Exception]:
        """Caffe's refusal of a late layer (with ``trunk``): the figures are of the layers before."""
        return self._modeled.error

    def to_dict(self) -> dict:
        """Exactly what ``caffemem analyze ... --format json`` prints."""
        return _plain(self._doc)


def analyze(net_or_solver: NetSource, *, input: InputShapes = None, batch: Optional[int] = None,
            test_batch: Optional[int] = None, phase: Optional[str] = None, stage=None,
            level: Optional[int] = None, until: Optional[str] = None,
            scenario: Optional[str] = None, mode: Optional[str] = None,
            engine: Optional[str] = None, solver_type: Optional[str] = None, gpus: int = 1,
            gpu_mem: Optional[Size] = None, cudnn_workspace_mib: Optional[float] = None,
            context_mib: Optional[int] = None, compare_estimates: bool = False,
            host_mem: Optional[Size] = None, cuda: Optional[int] = None,
            test_input: InputShapes = None) -> Analysis:
    """Build the nets of a net or solver prototxt as Caffe would, and model their memory.

    The options are ``caffemem analyze``'s: ``input`` ({top: "N,C,H,W"} with ``*``/None for
    the layer's own batch), ``test_input`` (the same, for a solver's test nets only),
    ``batch``, ``test_batch``, ``phase`` ("TRAIN"/"TEST", net files
    only), ``stage``, ``level``, ``until`` (the trunk up to a layer), ``scenario``
    ("train"/"time"/"test"; default as the command: a deploy net is modeled for inference),
    ``mode`` ("gpu"/"cpu"), ``engine`` ("cudnn"/"caffe"), ``solver_type``, ``gpus``,
    ``gpu_mem`` (bytes or "11GiB"), ``cudnn_workspace_mib``, ``context_mib``, ``host_mem``
    (host RAM, bytes or "32GiB"), ``cuda`` (the CUDA major version)."""
    ns = _namespace(["analyze", "-"], compare_estimates=compare_estimates,
                    host_mem=_size(host_mem, "host_mem"), cuda=cuda,
                    **_net_args(input, batch, test_batch, phase, stage, level, until, test_input),
                    **_memory_args(scenario, mode, engine, solver_type, gpus, gpu_mem,
                                   cudnn_workspace_mib, context_mib))
    return analyze_args(ns, net_or_solver)


def analyze_args(ns: argparse.Namespace, source: NetSource, trunk: bool = False,
                 keep_models: bool = False) -> Analysis:
    """:func:`analyze` from the command line's namespace: ``caffemem analyze`` runs this.
    With ``trunk``, a net Caffe refuses at a late layer gives the analysis of the layers
    before it (``refusal`` in the JSON; the error is in ``Analysis.error``).  With
    ``keep_models`` the other engine's model the verdict makes is kept whole (the HTML
    report's variant)."""
    from .commands.common import analysis_options, model_loaded

    ns.prototxt, loaded = _load(source, analysis_options(ns))
    return _analysis(ns, model_loaded(ns, loaded, trunk=trunk, keep_models=keep_models))


def _remodel(a: Analysis, **memory) -> Analysis:
    """``a``'s nets modeled again with other memory options (e.g. the other engine): what
    ``analyze`` with those options gives, without parsing and building the nets again (the
    model only reads them)."""
    from .commands.common import model_loaded

    ns = argparse.Namespace(**{**vars(a._args), **memory})
    return _analysis(ns, model_loaded(ns, a._loaded, nets=a._built, models=a._modeled.models))


def _analysis(ns, m, search_batch: bool = True) -> Analysis:
    """The typed result of one modeled file, from the very document ``--format json`` prints."""
    from .commands.analyze import Analysis as Result
    from .commands.analyze import json_document

    verdict = m.verdict(ns.gpu_mem, search_batch=search_batch and m.refusal is None,
                        host_capacity=getattr(ns, "host_mem", None))
    result = Result(m.nets, m.report, verdict, m.refusal)
    doc = json_document(result, getattr(ns, "compare_estimates", False))
    mem = doc["memory"]
    by_label = {n["label"]: n for n in mem["nets"]}
    nets = []
    for nd in doc["nets"]:
        mn = by_label.get(nd["label"], {})
        layers = tuple(LayerResult(
            net=nd["label"], index=i, name=l["name"], type=l["type"], bottoms=tuple(l["bottoms"]),
            tops=tuple(Top(t["name"], tuple(t["shape"]), t["count"], t["in_place"]) for t in l["tops"]),
            param_shapes=tuple(tuple(x) for x in l["param_shapes"]), param_count=l["param_count"],
            flops=l["flops"], bytes=dict(l.get("bytes", {})), host_bytes=dict(l.get("host_bytes", {})),
            memory_required_for_data=l["memory_required_for_data"], notes=tuple(l["notes"]))
            for i, l in enumerate(nd["layers"]))
        nets.append(NetResult(nd["label"], nd["name"], nd["phase"], nd["memory_required_for_data"],
                              layers, dict(mn.get("bytes", {})), mn.get("total_bytes", 0),
                              mn.get("runs", True)))
    fit = doc.get("fit")
    return Analysis(
        source=doc["source"], scenario=mem["scenario"], mode=mem["mode"], engine=mem["engine"],
        total_bytes=doc["total_bytes"], bytes=dict(doc["bytes"]),
        # the nets the scenario models (a solver's test nets only when training)
        log_memory_required_for_data=sum(n["log_memory_required_for_data"] for n in mem["nets"]),
        nets=tuple(nets), peak_moment=mem["peak_moment"],
        fits=fit["fits"] if fit else None, gpu_mem=ns.gpu_mem, bridge=doc["bridge"],
        assumptions=tuple(doc.get("assumptions", mem["assumptions"])), warnings=tuple(mem["warnings"]),
        _doc=doc, _built=m.nets, _report=m.report, _args=ns, _loaded=m.loaded, _replay=m.replayed,
        _modeled=m, _result=result)


# ---------------------------------------------------------------------------------------------
# diff


@dataclass
class DiffResult:
    """``caffemem.diff``'s answer: totals of both nets, the headline, every change and the
    contributors (layer, kind, bytes gained or lost), largest first."""

    old: Analysis
    new: Analysis
    old_total_bytes: int
    new_total_bytes: int
    delta_bytes: int
    headline: str
    changes: list[dict]
    contributors: list[dict]
    _doc: dict = field(repr=False)
    _diff: Any = field(repr=False)
    _verdict: Any = field(repr=False, default=None)

    def to_dict(self) -> dict:
        """Exactly what ``caffemem diff OLD NEW --format json`` prints."""
        return _plain(self._doc)


def diff(old: NetSource, new: NetSource, *, input: InputShapes = None, batch: Optional[int] = None,
         old_input: InputShapes = None, new_input: InputShapes = None,
         old_batch: Optional[int] = None, new_batch: Optional[int] = None,
         scenario: Optional[str] = None, mode: Optional[str] = None, engine: Optional[str] = None,
         solver_type: Optional[str] = None, gpus: int = 1, gpu_mem: Optional[Size] = None,
         cudnn_workspace_mib: Optional[float] = None, context_mib: Optional[int] = None,
         host_mem: Optional[Size] = None, cuda: Optional[int] = None) -> DiffResult:
    """Where the extra bytes of ``new`` over ``old`` come from: ``caffemem diff``'s options,
    ``input``/``batch`` for both nets and ``old_*``/``new_*`` for one side (a side's shapes
    win over the shared ones); ``host_mem`` and ``cuda`` as in :func:`analyze`."""
    ns = _namespace(["diff", "-", "-"], input=_inputs(input), batch=batch,
                    old_input=_inputs(old_input), new_input=_inputs(new_input),
                    old_batch=old_batch, new_batch=new_batch,
                    host_mem=_size(host_mem, "host_mem"), cuda=cuda,
                    **_memory_args(scenario, mode, engine, solver_type, gpus, gpu_mem,
                                   cudnn_workspace_mib, context_mib))
    return diff_args(ns, old, new)


def diff_args(ns: argparse.Namespace, old: NetSource, new: NetSource) -> DiffResult:
    """:func:`diff` from the command line's namespace: ``caffemem diff`` runs this."""
    from .commands.common import analysis_options, model_loaded
    from .commands.diff import compare, json_document

    sides = []
    for side, src in (("old", old), ("new", new)):
        name, loaded = _load(src, analysis_options(ns, side))
        setattr(ns, side, name)
        sides.append(model_loaded(ns, loaded, side))
    mo, mn, d, v = compare(ns, *sides)
    doc = json_document(d, v)
    a, b = (_analysis(ns, m, search_batch=False) for m in (mo, mn))
    return DiffResult(a, b, doc["old_total_bytes"], doc["new_total_bytes"], doc["delta_bytes"],
                      doc["headline"], doc["changes"], doc["contributors"], doc, d, v)


# ---------------------------------------------------------------------------------------------
# fit


@dataclass
class FitResult:
    """``caffemem.fit``'s answer: per engine asked, the largest batch (or input height) whose
    modeled peak fits ``gpu_mem``, and the totals at it and one step beyond."""

    gpu_mem: int
    answers: list[dict]
    _doc: dict = field(repr=False)
    _assumed: list = field(repr=False, default_factory=list)

    @property
    def largest(self) -> Optional[int]:
        """The first answer's largest batch (``scale=True``: largest input height)."""
        a = self.answers[0]
        return a["largest"] if a["what"] == "batch" else a["largest_height"]

    def to_dict(self) -> dict:
        """Exactly what ``caffemem fit ... --format json`` prints."""
        return _plain(self._doc)


def fit(net_or_solver: NetSource, gpu_mem: Size, *, scale: bool = False, input: InputShapes = None,
        batch: Optional[int] = None, test_batch: Optional[int] = None, phase: Optional[str] = None,
        stage=None, level: Optional[int] = None, scenario: Optional[str] = None,
        mode: Optional[str] = None, engine: Optional[str] = None,
        solver_type: Optional[str] = None, gpus: int = 1,
        cudnn_workspace_mib: Optional[float] = None, context_mib: Optional[int] = None,
        host_mem: Optional[Size] = None, cuda: Optional[int] = None,
        test_input: InputShapes = None) -> FitResult:
    """The largest train batch (``scale=True``: input size) that fits ``gpu_mem``, searched
    exactly on the model; ``engine="both"`` answers for CAFFE and cuDNN.  ``cuda`` as in
    :func:`analyze` (it sets the default CUDA context, which the search counts); ``host_mem``
    is refused (a :class:`UserError`): the search is against ``gpu_mem`` only, so check host
    RAM at the answer with :func:`analyze`."""
    capacity = _size(gpu_mem, "gpu_mem")
    ns = _namespace(["fit", "-"], scale=scale, host_mem=_size(host_mem, "host_mem"), cuda=cuda,
                    **_net_args(input, batch, test_batch, phase, stage, level, test_input=test_input),
                    **_memory_args(scenario, mode, engine, solver_type, gpus, capacity,
                                   cudnn_workspace_mib, context_mib))
    return fit_args(ns, net_or_solver)


def fit_args(ns: argparse.Namespace, source: NetSource) -> FitResult:
    """:func:`fit` from the command line's namespace: ``caffemem fit`` runs this."""
    from .analysis import build_loaded
    from .commands.common import analysis_options
    from .commands.fit import json_document, search

    if not ns.gpu_mem:
        raise UserError("fit needs --gpu-mem SIZE (e.g. --gpu-mem 8GiB; gpu_mem= in Python)")
    if getattr(ns, "host_mem", None) is not None:
        raise UserError("fit searches against --gpu-mem only and cannot use --host-mem (host_mem= "
                        "in Python): drop it, then check host RAM at the answer with 'caffemem "
                        "analyze --batch B --host-mem SIZE'")
    options = analysis_options(ns)
    ns.prototxt, loaded = _load(source, options)
    answers, assumed = search(ns, loaded, options, build_loaded(loaded, options))
    doc = json_document(ns, answers, assumed)
    return FitResult(int(ns.gpu_mem), doc["answers"], doc, assumed)


# ---------------------------------------------------------------------------------------------
# read_log


@dataclass
class LogResult:
    """``caffemem.read_log``'s answer.

    - ``train``/``test``: the curves, one numpy array per column (``iteration``, ``lr``,
      ``loss``, every output; ``test`` also ``net``); a value the log did not print for a
      row is NaN (read from the parse on first use);
    - ``failure``: the failure's kind, phase, layer, explanation (a dict, or None);
    - ``diagnosis``: for an out-of-memory failure, the model's peak and where a run that size
      runs out (a dict, or None); ``fixes``: what would make it fit, ranked, with numbers.
    """

    path: str
    failure: Optional[dict]
    diagnosis: Optional[dict]
    #: ranked fixes (action, detail, saves_bytes, confidence; total_bytes and fits when modeled)
    fixes: list
    _summary: Any = field(repr=False)
    _head: dict = field(repr=False)  # the JSON document without the curves
    #: (summary, failure, diagnosis, its text, cross-check, fixes) as the command prints them
    _examined: tuple = field(repr=False, default=())

    @functools.cached_property
    def train(self) -> dict:
        return _columns(self._summary.train)

    @functools.cached_property
    def test(self) -> dict:
        return _columns(self._summary.test)

    @property
    def oom(self) -> bool:
        """Did the run die of out-of-memory (GPU or host)?"""
        return bool(self.failure and self.failure.get("is_oom"))

    def to_dict(self) -> dict:
        """Exactly what ``caffemem log ... --format json`` prints (curves as rows; built on
        each call, by the command's own writer)."""
        from .logparse.render import write_json

        buf = io.StringIO()
        write_json(buf, self._head, self._summary)
        return json.loads(buf.getvalue())


def _columns(table) -> dict:
    import numpy as np

    from .logparse.curves import missing

    cols: dict[str, list] = {name: [] for name in table.names}
    for block in table.blocks():
        for name in table.names:
            cols[name].append(block[name])
    out = {}
    for name, parts in cols.items():
        a = np.concatenate(parts) if parts else np.empty(0)
        if a.dtype.kind == "f":
            a = np.where(missing(a), np.nan, a)
        out[name] = a
    return out


def read_log(path: Union[str, "os.PathLike[str]"], *, net: Optional[NetSource] = None,
             gpu_mem: Optional[Size] = None, input: InputShapes = None, batch: Optional[int] = None,
             scenario: Optional[str] = None, mode: Optional[str] = None,
             engine: Optional[str] = None, context_mib: Optional[int] = None) -> LogResult:
    """Parse a Caffe training log: curves as numpy arrays, the failure and, for an
    out-of-memory failure, the diagnosis (with ``gpu_mem`` when the log does not print the
    GPU's size; ``net`` when the log does not echo its nets)."""
    net_path = None
    if net is not None:
        net_path, text = _source(net)
        if text is not None:
            raise UserError("read_log(net=...) takes the path of a net or solver prototxt")
    ns = _namespace(["log", os.fspath(path)], net=net_path, input=_inputs(input), batch=batch,
                    **_memory_args(scenario, mode, engine, None, 1, gpu_mem, None, context_mib))
    return read_log_args(ns)


def read_log_args(ns: argparse.Namespace) -> LogResult:
    """:func:`read_log` from the command line's namespace: ``caffemem log`` runs this."""
    from .commands.log import document, examine

    examined = examine(ns)
    s, failure, diag, _, cross, fixes = examined
    head = document(s, failure, diag, cross, fixes)
    plain = json.loads(json.dumps(head))  # as the JSON shows them (tuples as lists...)
    return LogResult(ns.logfile, plain["failure"], plain["diagnosis"], plain.get("fixes") or [],
                     s, head, examined)


# ---------------------------------------------------------------------------------------------
# the HTML report


def html_report(net_or_solver: NetSource, *, log: Optional[Union[str, "os.PathLike[str]"]] = None,
                old: Optional[NetSource] = None, old_input: InputShapes = None,
                old_batch: Optional[int] = None, input: InputShapes = None,
                batch: Optional[int] = None, test_batch: Optional[int] = None,
                phase: Optional[str] = None, stage=None, level: Optional[int] = None,
                until: Optional[str] = None, scenario: Optional[str] = None,
                mode: Optional[str] = None, engine: Optional[str] = None,
                solver_type: Optional[str] = None, gpus: int = 1, gpu_mem: Optional[Size] = None,
                cudnn_workspace_mib: Optional[float] = None, context_mib: Optional[int] = None,
                cards: bool = True, variants: str = "engines", test_input: InputShapes = None) -> str:
    """``caffemem report``: one self-contained HTML page (returned as text) with the verdict,
    the net as a graph, the per-layer table, the timeline of live bytes, and with ``old`` the
    merged diff, with ``log`` the curves and the failure.  In gpu mode the page can switch
    to the other engine (both are modeled here; ``variants="all"``: every scenario too,
    train, time and test); ``cards``: the largest batch on 4..80 GiB cards, for the options
    given (the first variant).  A net Caffe refuses raises, as :func:`analyze` does."""
    ns = _namespace(["analyze", "-"], **_net_args(input, batch, test_batch, phase, stage, level, until,
                                                  test_input),
                    **_memory_args(scenario, mode, engine, solver_type, gpus, gpu_mem,
                                   cudnn_workspace_mib, context_mib))
    page, _ = report_args(ns, net_or_solver, log=log, old=old, old_input=_inputs(old_input),
                          old_batch=old_batch, cards=cards, variants=variants)
    return page


def report_args(ns: argparse.Namespace, source: NetSource, *, log=None, old=None, old_input=(),
                old_batch: Optional[int] = None, cards: bool = True, variants: str = "engines",
                trunk: bool = False) -> tuple[str, Optional[Exception]]:
    """:func:`html_report` from the command line's namespace (``caffemem report`` runs this):
    the page and, with ``trunk``, Caffe's refusal of a late layer (the page then shows the
    layers before it and says so; the caller raises the error after writing it)."""
    from .batchcurve import CARDS_GIB, GiB, NoCardTable, card_fits, same_as_probe
    from .commands.common import analysis_options
    from .fit import data_batch
    from .report.htmlpage import render, variant_dict

    if variants not in ("engines", "all"):
        raise UserError(f"variants={variants!r}: expected 'engines' or 'all'")
    lg = None
    engine_line = ""
    if log is not None:
        lg = read_log(log, gpu_mem=ns.gpu_mem, scenario=ns.scenario, mode=ns.mode, engine=ns.engine,
                      context_mib=ns.context_mib)
        logged = (lg.failure or {}).get("engine")
        if logged and ns.engine is None and ns.mode in (None, "gpu"):
            # the crash's own stack names the engine the run used: the page models that one
            ns = argparse.Namespace(**{**vars(ns), "engine": logged.lower()})
            engine_line = (f"engine {logged}, read from the log ({lg.failure.get('engine_evidence')}), "
                           f"instead of the default CUDNN")
    main = analyze_args(ns, source, trunk=trunk, keep_models=True)
    engines = [main.engine] + ([e for e in ("cudnn", "caffe") if e != main.engine] if main.mode == "gpu" else [])
    scenarios = [main.scenario] + ([x for x in ("train", "time", "test") if x != main.scenario]
                                   if variants == "all" else [])
    runs = [main] + [_remodel(main, scenario=sc, engine=en) for sc in scenarios for en in engines
                     if (sc, en) != (main.scenario, main.engine)]
    capacities = [g * GiB for g in CARDS_GIB]
    pages, cards_note = [], ""
    if cards and main.error is not None:
        cards_note = "Caffe refuses the whole net, and the card table is for nets that build"
    for k, a in enumerate(runs):
        table, batch_now = [], data_batch(a._built[0])
        if cards and k == 0 and not cards_note:
            options = analysis_options(a._args)
            known = (batch_now, a._replay) if same_as_probe(options, a._built[0], batch_now) else None
            try:
                table = card_fits(a._loaded, options, a._report.env, capacities, known, a._built)
            except NoCardTable as e:
                cards_note = str(e)
        pages.append(variant_dict(a, table, batch_now))
    if cards_note:
        pages[0]["cards_note"] = cards_note
    if engine_line:
        pages[0]["verdict_lines"].insert(0, engine_line)
    d = None
    if old is not None:
        d = diff(old, source, old_input=old_input, old_batch=old_batch, new_input=ns.input,
                 new_batch=ns.batch, scenario=ns.scenario, mode=ns.mode, engine=main.engine,
                 solver_type=ns.solver_type, gpus=ns.gpus, gpu_mem=ns.gpu_mem,
                 cudnn_workspace_mib=ns.cudnn_workspace_mib, context_mib=ns.context_mib)
    page = render(main, pages, diff=d, log=lg, gpu_mem=main.gpu_mem, title=f"caffemem: {main.source}")
    return page, main.error
