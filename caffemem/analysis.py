"""The library's front door: file in, built nets out (and, from there, the memory model).

:func:`build_all` loads a net or solver prototxt and builds every net Caffe would build from
it, in Caffe's order, with the user's shape overrides.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional

from .errors import NetError, UserError
from .loader import Loaded, NetSpec, load
from .net import BuildOptions, Net, build_net, check_inputs_used
from .netfilter import filter_layers

Shape = tuple


@dataclass
class AnalysisOptions:
    """What the user says about how to build the nets (CLI flags map onto these)."""

    phase: Optional[str] = None  # for a net file: TRAIN (default) or TEST
    stages: tuple[str, ...] = ()
    level: Optional[int] = None
    inputs: dict[str, Shape] = field(default_factory=dict)  # --input, all nets
    #: --test-input: a solver's test nets only, winning over ``inputs`` there
    test_inputs: dict[str, Shape] = field(default_factory=dict)
    #: overrides for one net only, keyed by its label ("net", "train net", "test net #0")
    inputs_per_net: dict[str, dict[str, Shape]] = field(default_factory=dict)
    batch: Optional[int] = None  # --batch: every data layer
    test_batch: Optional[int] = None  # --test-batch: data layers of test nets only
    #: ``batch`` applies to the train net (or the one net) only; test nets keep their own
    batch_train_only: bool = False
    #: --until: build each net only up to (and including) this layer, as if the net ended there
    until: Optional[str] = None


@dataclass
class Refusal:
    """A net Caffe would refuse at ``layer``: the trunk before it was built instead."""

    net: str  # the net's label
    layer: str
    message: str


def _cut(param, kept_upto):
    """A copy of NetParameter ``param`` ending with LayerParameter ``kept_upto`` (None: no
    layers), so that filtering it again keeps exactly the layers up to that one."""
    from .pb import caffe_pb2

    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    del out.layer[:]
    if kept_upto is not None:
        for p in param.layer:
            out.layer.add().CopyFrom(p)
            if p is kept_upto:
                break
    return out


def until_param(spec: NetSpec, layer: str):
    """``spec``'s NetParameter cut after the first layer named ``layer`` that its state
    keeps, or None when this net has no such layer."""
    for p in filter_layers(spec.param.layer, spec.state):
        if p.name == layer:
            return _cut(spec.param, p)
    return None


def _is_test_net(label: str) -> bool:
    """A solver's test net (labels "test net #0", ...; a net file's one net is "net")."""
    return label.startswith("test")


def _check_inputs(options: AnalysisOptions, nets: list[Net]) -> None:
    """Every --input names a top of some net, every --test-input a top of a test net."""
    check_inputs_used(options.inputs, nets)
    if options.test_inputs:
        tests = [n for n in nets if _is_test_net(n.label)]
        if not tests:
            raise UserError("--test-input applies to a solver's test nets, and this file builds "
                            "none; use --input")
        check_inputs_used(options.test_inputs, tests, "--test-input")


def _build_one(spec: NetSpec, options: AnalysisOptions, param=None) -> Net:
    inputs = dict(options.inputs)
    if _is_test_net(spec.label):
        inputs.update(options.test_inputs)
    inputs.update(options.inputs_per_net.get(spec.label, {}))
    batch = options.batch
    if _is_test_net(spec.label) and (options.test_batch is not None or options.batch_train_only):
        batch = options.test_batch
    bo = BuildOptions(inputs=inputs, batch=batch, net_dir=spec.net_dir, strict_inputs=False)
    try:
        net = build_net(spec.param if param is None else param, spec.state, bo, source=spec.source)
    except NetError as e:
        _locate(e, spec)
        raise
    net.label = spec.label
    net.warnings[:0] = spec.notes
    return net


_LAYER_NAMED = re.compile(r"^layer '((?:[^'\\]|\\.)*)'")
_TOKENS = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*|(\w+)\s*:?\s*\{|\}'
                     r'|\bname\s*:\s*("(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')')


def _locate(e: NetError, spec: NetSpec) -> None:
    """``e.where = "file:line:col"`` for a refusal that names its layer ("layer 'conv1' ..."):
    where that layer's ``name:`` is in the file (the one of this net's phase when several
    layers share the name); the command line prints it before the message (the message
    itself stays as it is: fit --scale quotes it).  Not set when the file or the layer
    cannot be found."""
    msg = str(e)
    m = _LAYER_NAMED.match(msg)
    if not m or getattr(e, "where", None) or not os.path.isfile(spec.source):
        return
    name = m.group(1)
    same = [l for l in spec.param.layer if l.name == name]
    mine = next((l for l in filter_layers(spec.param.layer, spec.state) if l.name == name), None)
    if mine is None:
        return
    k = next(i for i, l in enumerate(same) if l is mine)
    try:
        with open(spec.source, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return
    blocks: list[str] = []
    seen = 0
    for t in _TOKENS.finditer(text):
        if t.group(1):
            blocks.append(t.group(1))
        elif t.group(0) == "}":
            blocks = blocks[:-1]
        elif t.group(2) and blocks and blocks[-1] in ("layer", "layers") and t.group(2)[1:-1] == name:
            if seen == k:
                line = text.count("\n", 0, t.start()) + 1
                col = t.start() - (text.rfind("\n", 0, t.start()) + 1) + 1
                e.where = f"{spec.source}:{line}:{col}"
                return
            seen += 1


def _params(loaded: Loaded, options: AnalysisOptions) -> list:
    """Each net's NetParameter to build: whole, or cut at ``options.until``."""
    if not options.until:
        return [None] * len(loaded.nets)
    cuts = [until_param(spec, options.until) for spec in loaded.nets]
    if all(c is None for c in cuts):
        names = sorted({p.name for spec in loaded.nets for p in filter_layers(spec.param.layer, spec.state)})
        import difflib

        close = difflib.get_close_matches(options.until, names, n=1)
        raise UserError(f"--until {options.until}: no such layer in {loaded.path}"
                        + (f"; did you mean '{close[0]}'?" if close else ""))
    return cuts


def build_loaded(loaded: Loaded, options: AnalysisOptions) -> list[Net]:
    """Build every net of an already loaded file (each cut at ``options.until`` if given)."""
    nets = [_build_one(spec, options, param) for spec, param in zip(loaded.nets, _params(loaded, options))]
    if not options.until:
        _check_inputs(options, nets)
    return nets


def build_trunks(loaded: Loaded, options: AnalysisOptions) -> tuple[list[Net], Optional[Refusal], Optional[NetError]]:
    """Like :func:`build_loaded`, but a net Caffe refuses is built up to the layer before
    the refusal (the longest prefix of its layers that builds, found by bisection: a prefix
    builds exactly when each of its layers does), and building stops there.  Returns the
    nets built, the refusal and its error (None, None when everything builds)."""
    nets: list[Net] = []
    for spec, param in zip(loaded.nets, _params(loaded, options)):
        try:
            nets.append(_build_one(spec, options, param))
            continue
        except NetError as e:
            error = e
        whole = spec.param if param is None else param
        kept = filter_layers(whole.layer, spec.state)
        lo, hi = 0, len(kept)  # prefix of lo layers builds; of hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                _build_one(spec, options, _cut(whole, kept[mid - 1]))
                lo = mid
            except NetError:
                hi = mid
        if lo:
            nets.append(_build_one(spec, options, _cut(whole, kept[lo - 1])))
        return nets, Refusal(spec.label, kept[lo].name if lo < len(kept) else "", str(error)), error
    if not options.until:
        _check_inputs(options, nets)
    return nets, None, None


def analyze_file(path: str, options: Optional[AnalysisOptions] = None) -> tuple[Loaded, list[Net]]:
    """Load ``path`` (net or solver prototxt) and build its nets; also return what was loaded
    (the solver, when there is one, decides the memory model's solver and schedule)."""
    options = options or AnalysisOptions()
    loaded = load(path, phase=options.phase, stages=options.stages, level=options.level)
    return loaded, build_loaded(loaded, options)


def build_all(path: str, options: Optional[AnalysisOptions] = None) -> list[Net]:
    """Load ``path`` (net or solver prototxt) and build its nets."""
    return analyze_file(path, options)[1]
