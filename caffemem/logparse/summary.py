"""Folding a log's events into a summary: solver, nets, training curves, the failure."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Optional

from . import events as ev
from .parser import Stop, iter_events


@dataclass
class LayerSeen:
    name: str
    bottoms: list[str] = field(default_factory=list)
    tops: list[str] = field(default_factory=list)
    shapes: list[tuple] = field(default_factory=list)
    memory_after: Optional[int] = None
    loss_weights: list[float] = field(default_factory=list)
    needs_backward: Optional[bool] = None


@dataclass
class NetSeen:
    label: str
    echo: str = ""
    line: int = 0
    layers: list[LayerSeen] = field(default_factory=list)
    done: bool = False

    @property
    def name(self) -> str:
        for l in self.echo.splitlines():
            if l.startswith("name:"):
                return l.split(":", 1)[1].strip().strip('"')
        return ""

    @property
    def phase(self) -> str:
        return "TEST" if "phase: TEST" in self.echo.split("layer {")[0] else "TRAIN"

    @property
    def memory_required_for_data(self) -> Optional[int]:
        figs = [l.memory_after for l in self.layers if l.memory_after is not None]
        return figs[-1] if figs else None

    def top_shapes(self) -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        for l in self.layers:
            for t, s in zip(l.tops, l.shapes):
                out.setdefault(t, s)
        return out


@dataclass
class LogSummary:
    path: str
    solver_echo: str = ""
    nets: list[NetSeen] = field(default_factory=list)
    train: list[dict] = field(default_factory=list)  # rows: iteration, seconds, lr, outputs
    test: list[dict] = field(default_factory=list)
    gpus: list[str] = field(default_factory=list)
    gpu_total_bytes: Optional[int] = None
    failures: list[ev.Failure] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)
    foreign: list[ev.ForeignOOM] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    last_iteration: Optional[int] = None
    testing_at_failure: bool = False
    events_before_failure: list[str] = field(default_factory=list)  # the last few kinds seen
    #: a net was being set up when the log ended or failed (wiring/setup lines, no "done")
    init_open: bool = False
    solving: bool = False  # "Solving NAME": the solver's loop started
    stop: Stop = field(default_factory=Stop)

    @property
    def failure(self) -> Optional[ev.Failure]:
        return self.failures[0] if self.failures else None


def _layer_of(net: NetSeen, by_name: dict[str, LayerSeen], name: str) -> LayerSeen:
    """The net's layer of that name, created (in log order) the first time it is seen."""
    layer = by_name.get(name)
    if layer is None:
        layer = by_name[name] = LayerSeen(name)
        net.layers.append(layer)
    return layer


def summarize(path: str) -> LogSummary:
    """Read a log once, streaming, and fold it (memory grows with nets and curves only)."""
    s = LogSummary(path)
    net: Optional[NetSeen] = None
    layer: Optional[LayerSeen] = None
    pending_label = ""
    by_name: dict[str, LayerSeen] = {}
    recent: deque = deque(maxlen=8)
    train_row: Optional[dict] = None
    test_row: Optional[dict] = None
    for e in iter_events(path, s.stop):
        t = type(e)
        # the curve events, which make up most of a training log, first and cheaply
        if t is ev.Output:
            if e.phase == "test":
                s.testing_at_failure = False  # Test() prints its outputs when it has finished
            row = train_row if e.phase == "train" else test_row
            if row is not None:
                row[e.name] = e.value
            continue
        if t is ev.Iteration or t is ev.LearningRate:
            s.last_iteration = e.iteration
            if not s.failures:
                s.init_open = False
                if test_row is not None:
                    s.testing_at_failure = False
            if t is ev.Iteration:
                train_row = {"iteration": e.iteration, "loss": e.loss}
                if e.seconds is not None:
                    train_row["seconds"] = e.seconds
                s.train.append(train_row)
            elif train_row is not None and train_row["iteration"] == e.iteration:
                train_row["lr"] = e.lr
            continue
        if not s.failures:
            recent.append(t.__name__)
            if t in (ev.LayerWire, ev.SettingUp, ev.TopShape, ev.MemoryRequired, ev.NetEcho):
                s.init_open = True
            elif t in (ev.NetDone, ev.TestStart):
                s.init_open = False
        if t is ev.TopShape:
            if net is not None and layer is not None:
                layer.shapes.append(e.shape)
        elif t is ev.LayerWire:
            if net is not None:
                l = _layer_of(net, by_name, e.layer)
                (l.bottoms if e.direction == "bottom" else l.tops).append(e.blob)
        elif t is ev.SettingUp:
            if net is not None:
                layer = _layer_of(net, by_name, e.layer)
        elif t is ev.MemoryRequired:
            if layer is not None:
                layer.memory_after = e.bytes
        elif t is ev.LossWeight:
            if layer is not None:
                layer.loss_weights.append(e.weight)
        elif t is ev.BackwardNeed:
            l = by_name.get(e.layer)
            if l is not None:
                l.needs_backward = e.needs
        elif t is ev.NetCreate:
            pending_label = e.label
        elif t is ev.NetEcho:
            label = pending_label or ("net" if not s.nets else f"net #{len(s.nets)}")
            if any(n.label == label for n in s.nets):  # a later run, or a worker's copy
                label = f"{label} ({sum(n.label.startswith(label) for n in s.nets) + 1})"
            net = NetSeen(label, e.text, e.line)
            s.nets.append(net)
            by_name, layer, pending_label = {}, None, ""
        elif t is ev.NetDone:
            if net is not None:
                net.done = True
        elif t is ev.SolverEcho:
            s.solver_echo = s.solver_echo or e.text
        elif t is ev.TestStart:
            s.testing_at_failure = True
            s.last_iteration = max(s.last_iteration or 0, e.iteration)
            test_row = {"iteration": e.iteration, "net": e.net}
            s.test.append(test_row)
        elif t is ev.Failure:
            if e.severity == "F" or "out of memory" in e.message or "Check failed" in e.message:
                if not s.failures:
                    s.events_before_failure = list(recent)
                s.failures.append(e)
        elif t is ev.StackFrame:
            if len(s.frames) < 200:
                s.frames.append(e.function)
        elif t is ev.GpuInfo:
            if len(s.gpus) < 64:
                s.gpus.append(e.text)
            if e.total_bytes:
                s.gpu_total_bytes = e.total_bytes
        elif t is ev.ForeignOOM:
            s.foreign.append(e)
        elif t is ev.SolveStart:
            s.solving = True
            s.init_open = False
        elif t is ev.Snapshot:
            s.snapshots.append(e.path)
    return s
