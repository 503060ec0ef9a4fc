"""From a file on disk to the nets Caffe would build from it.

A net prototxt gives one net (TRAIN unless told otherwise, like ``caffe time``/pycaffe with
a phase).  A solver prototxt gives the nets ``Solver::Init`` builds, in its order: the train
net, then one test net per ``test_iter`` entry, with states merged as Caffe merges them
(phase, then the net file's own ``state``, then ``train_state``/``test_state``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional

from .errors import UserError, did_you_mean, notice, shown
from .netfilter import NetState
from .pb import caffe_pb2
from .prototxt import looks_like_solver, parse_text, read_text, resolve_path, skipped_warning
from .upgrade import upgrade_net

SOLVER_TYPE_NAMES = {0: "SGD", 1: "Nesterov", 2: "AdaGrad", 3: "RMSProp", 4: "AdaDelta", 5: "Adam"}


@dataclass
class NetSpec:
    """One net to build: its (upgraded) parameters, state and where it came from."""

    label: str  # "net", "train net", "test net #0"
    param: "caffe_pb2.NetParameter"
    state: NetState
    source: str
    net_dir: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Loaded:
    """What a file amounts to: the solver (if any) and the nets it builds, in Caffe's order."""

    path: str
    solver: Optional["caffe_pb2.SolverParameter"]
    nets: list[NetSpec]

    @property
    def solver_type(self) -> str:
        """The solver's type (``SGD``, ``Adam``, ...), upgraded from the old enum."""
        if self.solver is None:
            return "SGD"
        if self.solver.HasField("solver_type") and not self.solver.HasField("type"):
            return SOLVER_TYPE_NAMES.get(self.solver.solver_type, "SGD")
        return self.solver.type or "SGD"


def _state(phase: str, *merge) -> NetState:
    st = caffe_pb2.NetState()
    st.phase = caffe_pb2.Phase.Value(phase)
    for m in merge:
        if m is not None:
            st.MergeFrom(m)
    return NetState.from_proto(st)


def _parse(text: str, message, path: str, notes: list[str]):
    """Parse ``text``; a warning naming the fields a fork added (skipped) joins ``notes``."""
    skipped: list = []
    parse_text(text, message, path, skipped)
    warning = skipped_warning(path, skipped)
    if warning:
        notes.append(warning)
        notice(warning)
    return message


def _net_param(text: str, path: str, where: str = "") -> tuple["caffe_pb2.NetParameter", list[str]]:
    """Parse and upgrade a net's text; a net with no layer at all is refused, naming why."""
    notes: list[str] = []
    param = _parse(text, caffe_pb2.NetParameter(), path, notes)
    notes += upgrade_net(param, path)
    check_has_layers(param, where or path, text)
    return param, notes


def check_has_layers(param: "caffe_pb2.NetParameter", where: str, text: Optional[str] = None) -> None:
    """A net without a single layer is not a net: say so instead of reporting on nothing."""
    if len(param.layer):
        return
    if text is not None and not re.sub(r"#[^\n]*", "", text).strip():
        what = "only comments"
    elif param.name:
        what = f"a net named '{param.name}' without any layer"
    else:
        what = "no layer { ... } block"
    raise UserError(f"{where}: no layers ({what}); expected a net prototxt (train_val, deploy) "
                    f"or a solver naming one")


def read_net(path: str) -> tuple["caffe_pb2.NetParameter", list[str]]:
    """Parse and upgrade one net file."""
    return _net_param(read_text(path), path)


def load(path: str, phase: Optional[str] = None, stages: tuple[str, ...] = (),
         level: Optional[int] = None) -> Loaded:
    """Load a net or solver prototxt.  ``phase``/``stages``/``level`` apply to a net file
    (as ``caffe time``/``caffe test``/pycaffe set them); a solver decides its own states."""
    return load_text(read_text(path), path, phase, stages, level)


def load_text(text: str, path: str, phase: Optional[str] = None, stages: tuple[str, ...] = (),
              level: Optional[int] = None) -> Loaded:
    """:func:`load` for prototxt text already in memory (``path`` names it in messages;
    a solver's relative net paths resolve against its directory)."""
    if looks_like_solver(text):
        notes: list[str] = []
        solver = _parse(text, caffe_pb2.SolverParameter(), path, notes)
        nets = solver_nets(solver, path)
        nets[0].notes[:0] = notes
        return Loaded(path, solver, nets)
    param, notes = _net_param(text, path)
    _check_stages(param, stages, path, notes)
    st = caffe_pb2.NetState()
    st.CopyFrom(param.state)
    st.phase = caffe_pb2.Phase.Value(phase or "TRAIN")
    st.stage.extend(stages)
    st.level = level or 0
    return Loaded(path, None, [NetSpec("net", param, NetState.from_proto(st), path,
                                       os.path.dirname(os.path.abspath(path)), notes)])


def _check_stages(param: "caffe_pb2.NetParameter", stages, path: str, notes: list[str]) -> None:
    """A ``--stage`` that no include/exclude rule of the net mentions changes nothing: a
    close spelling of one that does is a typo (refused, with did-you-mean); any other is
    said in a warning."""
    if not stages:
        return
    known = set(param.state.stage)
    for layer in param.layer:
        for rule in list(layer.include) + list(layer.exclude):
            known.update(rule.stage)
            known.update(rule.not_stage)
    for stage in stages:
        if stage in known:
            continue
        hint = did_you_mean(stage, known, cutoff=0.7)
        if hint:
            raise UserError(f"--stage {shown(stage, 40)}: no layer rule of {path} names this "
                            f"stage{hint}")
        warning = (f"--stage {shown(stage, 40)} changes nothing: no layer rule of {path} names it"
                   + (f" (stages named: {', '.join(sorted(known)[:8])})" if known else ""))
        notes.append(warning)
        notice(warning)


def _net_from(solver_path: str, ref: str) -> tuple["caffe_pb2.NetParameter", str, list[str]]:
    file = resolve_path(ref, solver_path)
    if os.path.abspath(file) == os.path.abspath(solver_path):
        raise UserError(f"{solver_path}: the solver names itself as its net ('{ref}'); "
                        f"point net: at the net prototxt (train_val)")
    text = read_text(file)
    if looks_like_solver(text):
        raise UserError(f"{file}: a solver prototxt, named as a net by {solver_path}; "
                        f"point net: at the net prototxt (train_val)")
    param, notes = _net_param(text, file)
    return param, file, notes


def _inline(msg: "caffe_pb2.NetParameter", solver_path: str, what: str) -> tuple:
    param = caffe_pb2.NetParameter()
    param.CopyFrom(msg)
    notes = upgrade_net(param, f"{solver_path} ({what})")
    check_has_layers(param, f"{solver_path} ({what})")
    return param, f"{solver_path} ({what})", notes


def solver_nets(solver: "caffe_pb2.SolverParameter", path: str) -> list[NetSpec]:
    """``Solver::InitTrainNet`` then ``Solver::InitTestNets``."""
    sdir = os.path.dirname(os.path.abspath(path))
    fields = [f for f in ("net", "net_param", "train_net", "train_net_param") if solver.HasField(f)]
    if not fields:
        raise UserError(f"{path}: the solver names no train net (one of net, net_param, "
                        f"train_net, train_net_param)")
    if len(fields) > 1:
        raise UserError(f"{path}: the solver names more than one train net ({', '.join(fields)}); "
                        f"Caffe refuses that")
    f = fields[0]
    if f in ("net_param", "train_net_param"):
        param, src, notes = _inline(getattr(solver, f), path, f)
    else:
        param, src, notes = _net_from(path, getattr(solver, f))
    train_state = solver.train_state if solver.HasField("train_state") else None
    nets = [NetSpec("train net", param, _state("TRAIN", param.state, train_state), src,
                    os.path.dirname(os.path.abspath(src)) if os.path.isfile(src) else sdir, notes)]

    generic = [g for g in ("net_param", "net") if solver.HasField(g)]
    specific: list[tuple] = []
    for i, p in enumerate(solver.test_net_param):
        specific.append(_inline(p, path, f"test_net_param #{i}"))
    for ref in solver.test_net:
        specific.append(_net_from(path, ref))
    n_iters = len(solver.test_iter)
    if generic:
        if n_iters < len(specific):
            raise UserError(f"{path}: test_iter must be specified for each test network")
    elif n_iters != len(specific):
        raise UserError(f"{path}: test_iter must be specified for each test network "
                        f"({n_iters} test_iter, {len(specific)} test nets)")
    instances = list(specific)
    for _ in range(n_iters - len(specific)):
        instances.append(_inline(solver.net_param, path, "net_param") if generic[0] == "net_param"
                         else _net_from(path, solver.net))
    if len(solver.test_state) and len(solver.test_state) != len(instances):
        raise UserError(f"{path}: test_state must be unspecified or specified once per test net "
                        f"({len(solver.test_state)} test_state, {len(instances)} test nets)")
    for i, (p, src, notes) in enumerate(instances):
        ts = solver.test_state[i] if len(solver.test_state) else None
        nets.append(NetSpec(f"test net #{i}", p, _state("TEST", p.state, ts), src,
                            os.path.dirname(os.path.abspath(src)) if os.path.isfile(src) else sdir,
                            notes))
    return nets
