"""Folding a log's events into a summary: solver, nets, training curves, the failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import events as ev
from . import fastscan as fs
from .curves import MISSING, CurveTable
from .parser import Stop
from .stream import iter_events, join


@dataclass
class LayerSeen:
    name: str
    bottoms: list[str] = field(default_factory=list)
    tops: list[str] = field(default_factory=list)
    shapes: list[tuple] = field(default_factory=list)
    memory_after: Optional[int] = None
    loss_weights: list[float] = field(default_factory=list)
    needs_backward: Optional[bool] = None
    #: a data layer's "output data size: N,C,H,W" (data_layer.cpp), logged during its SetUp
    data_size: Optional[tuple] = None


@dataclass
class NetSeen:
    label: str
    echo: str = ""
    line: int = 0
    layers: list[LayerSeen] = field(default_factory=list)
    done: bool = False
    #: the last "Memory required for data" seen (for a net whose layer lines are not logged)
    figure: Optional[int] = None
    #: "Network initialization done" was logged (``done`` is also set when the solver runs)
    finished: bool = False

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
        return figs[-1] if figs else self.figure

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
    #: one row per "Iteration N, loss" line: seconds since the solver started (from glog's
    #: clock, as parse_log.py counts them), the last display interval's seconds ("Ss/K
    #: iters"), lr, loss, then the train outputs
    train: CurveTable = field(default_factory=lambda: CurveTable(("seconds", "interval_seconds", "lr", "loss")))
    #: one row per test pass: seconds since the solver started, the test net's number, outputs
    test: CurveTable = field(default_factory=lambda: CurveTable(("seconds", "net"), whole=("net",)))
    #: glog's clock when the solver started ("Solving"; else the first timed curve line)
    start_time: Optional[int] = None
    gpus: list[str] = field(default_factory=list)
    gpu_total_bytes: Optional[int] = None
    failures: list[ev.Failure] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)
    foreign: list[ev.ForeignOOM] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    last_iteration: Optional[int] = None
    testing_at_failure: bool = False
    #: a net was being set up when the log ended or failed (wiring/setup lines, no "done")
    init_open: bool = False
    solving: bool = False  # "Solving NAME": the solver's loop started
    #: trained weights were read into the built net (then it ran): the event
    weights: Optional[ev.WeightsLoaded] = None
    #: the last allocation size a debugging print showed before the failure
    allocation_print: Optional[int] = None
    #: every allocation size such prints showed before the failure (capped)
    allocation_prints: list[int] = field(default_factory=list)
    #: lines that say which tool or script ran, before the failure (caffe time/test/train,
    #: Python, several GPUs on a command line): what -> its first line's event
    run_lines: dict = field(default_factory=dict)
    #: host memory exhausted outside Caffe's checks (killed, bad_alloc, ...), the first
    host_memory: Optional[ev.HostMemory] = None
    #: Caffe's E lines before the failure (e.g. "Cannot create Cublas handle"), the first few
    errors: list[str] = field(default_factory=list)
    #: DIGITS' "memory required" figures (bytes, one per net)
    digits_memory: list[int] = field(default_factory=list)
    #: the kind of the last curve line before the failure: "loss" (Iteration N, loss), "lr"
    #: (printed by ApplyUpdate, just before the solver's update), "test" (a test pass)
    last_curve: str = ""
    #: the line where a later run starts after a fatal failure (several runs appended to one
    #: log): the failure is not the log's end, and the classifier's state stays the failing run's
    resumed_at: Optional[int] = None
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


def _last(mask: np.ndarray) -> int:
    """Index of the last True, -1 if none."""
    if not len(mask):
        return -1
    at = len(mask) - 1 - int(np.argmax(mask[::-1]))
    return at if mask[at] else -1


def _fill(table: CurveTable, b: ev.CurveBatch, sel: np.ndarray, rows: np.ndarray) -> None:
    """Outputs of the batch (``sel``) into their rows, by name."""
    ids, values, text = b.name[sel], b.value[sel], _text(b, sel)
    present = np.flatnonzero(np.bincount(ids)).tolist()
    if len(present) == 1:
        table.assign(b.names[present[0]], rows, values, text)
        return
    for i in present:
        same = np.flatnonzero(ids == i)
        table.assign(b.names[i], rows[same], values[same], text.take(same) if text is not None else None)


def _text(b: ev.CurveBatch, sel, interval: bool = False):
    t = b.interval_text if interval else b.text
    return t.take(sel) if t is not None else None


_YEAR = 365 * 86400 * 10**6


def _elapsed(s: LogSummary, times: np.ndarray) -> np.ndarray:
    """Seconds since the solver started, from glog clocks in microseconds (MISSING where the
    line had no clock).  A clock before the start is a new year (glog's short date omits it)."""
    known = times >= 0
    if s.start_time is not None and known.all():  # the common case: every line has its clock
        t = times - s.start_time
        return np.where(t < 0, t + _YEAR, t) / 1e6
    out = np.full(len(times), MISSING)
    if not known.any() or s.start_time is None:
        return out
    t = times[known] - s.start_time
    t = np.where(t < 0, t + _YEAR, t)
    out[known] = t / 1e6
    return out


def add_curves(s: LogSummary, b: ev.CurveBatch) -> None:
    """Fold a batch of curve lines into the tables, as Caffe's order implies: an
    "Iteration N, loss" line opens a train row that the train outputs and the "lr" line of
    the same iteration fill in; "Testing net" opens a test row for the test outputs."""
    k = b.kind
    is_iter, is_lr, is_ts = k == fs.ITER, k == fs.LR, k == fs.TEST_START
    train_out, test_out = k == fs.TRAIN_OUT, k == fs.TEST_OUT
    if s.start_time is None:  # no "Solving" line: the clock starts at the first timed line
        timed = (is_iter | is_ts) & (b.time >= 0)
        if timed.any():
            s.start_time = int(b.time[np.argmax(timed)])
    row = len(s.train) - 1 + np.cumsum(is_iter)  # the train row each line belongs to
    its = np.flatnonzero(is_iter)  # (indices gather faster than a mask that alternates)
    interval = b.interval[its]
    interval = np.where(np.isnan(interval), MISSING, interval)  # no "(... iter/s ...)" part
    s.train.append(b.iteration[its], {"loss": b.value[its], "interval_seconds": interval,
                                      "seconds": _elapsed(s, b.time[its])},
                   {"loss": _text(b, its), "interval_seconds": _text(b, its, interval=True)})
    lr = np.flatnonzero(is_lr & (row >= 0))
    if len(lr):
        same = np.flatnonzero(s.train.iterations_at(row[lr]) == b.iteration[lr])
        s.train.assign("lr", row[lr][same], b.value[lr][same], _text(b, lr[same]))
    out = np.flatnonzero(train_out & (row >= 0))
    if len(out):
        _fill(s.train, b, out, row[out])
    trow = len(s.test) - 1 + np.cumsum(is_ts)
    tss = np.flatnonzero(is_ts)
    s.test.append(b.iteration[tss], {"net": b.index[tss].astype(np.float64),
                                     "seconds": _elapsed(s, b.time[tss])})
    out = np.flatnonzero(test_out & (trow >= 0))
    if len(out):
        _fill(s.test, b, out, trow[out])
    s.train.settle()
    s.test.settle()
    if s.resumed_at is not None:  # a later run's curves: the failing run's state stays
        return
    # the state the failure classifier reads, as the lines in order would leave it
    moves = is_iter | is_lr
    last_move, last_ts, last_tout = _last(moves), _last(is_ts), _last(test_out)
    if last_move >= 0:
        later_ts = b.iteration[tss[tss > last_move]]
        s.last_iteration = int(max([b.iteration[last_move], *later_ts.tolist()]))
    elif last_ts >= 0:
        s.last_iteration = int(max([s.last_iteration or 0, *b.iteration[tss].tolist()]))
    if last_move >= 0 or last_ts >= 0:
        for n in s.nets:  # the solver runs: every net was built (an excerpt may skip the line)
            n.done = True
    if not s.failures:
        if last_move >= 0 or last_ts >= 0:
            s.init_open = False
        ends_testing = max(last_tout, last_move)
    else:
        ends_testing = last_tout
    if not s.failures and len(k):
        last = int(k[-1])
        s.last_curve = {fs.ITER: "loss", fs.LR: "lr", fs.TRAIN_OUT: "loss"}.get(last, "test")
    if last_ts > ends_testing:
        s.testing_at_failure = True
    elif ends_testing >= 0:
        s.testing_at_failure = False


def summarize(path: str, fast: bool = True, workers: Optional[int] = None, chunk: int = 0,
              progress=None, texts: bool = True) -> LogSummary:
    """Read a log once, streaming, and fold it.  Memory holds the nets' set-up and the
    curves' open blocks only (:mod:`.curves`), whatever the log's length.  The options are
    :func:`~.stream.iter_events`'s."""
    s = LogSummary(path)
    net: Optional[NetSeen] = None
    layer: Optional[LayerSeen] = None
    pending_label = ""
    by_name: dict[str, LayerSeen] = {}
    held: list[ev.CurveBatch] = []  # curve batches not folded yet (see _COMMUTES)
    rows = 0
    for e in iter_events(path, s.stop, fast, workers, chunk, progress, texts, _COMMUTES):
        t = type(e)
        if t is ev.CurveBatch:
            held.append(e)
            rows += len(e)
            if rows >= _HOLD_ROWS:
                add_curves(s, join(held))
                held, rows = [], 0
            continue
        if held and t not in _COMMUTES:
            add_curves(s, join(held))
            held, rows = [], 0
        if (t is ev.NetEcho or t is ev.SolveStart) and s.resumed_at is None and s.failures \
                and s.failures[0].severity == "F":  # the process died: another run starts
            s.resumed_at = e.line
        if not s.failures:
            if t in (ev.LayerWire, ev.LayerCreate, ev.SettingUp, ev.TopShape, ev.MemoryRequired, ev.NetEcho):
                s.init_open = True
            elif t is ev.NetDone:
                s.init_open = False
        if net is None and t in (ev.LayerWire, ev.LayerCreate, ev.SettingUp, ev.DataSize, ev.MemoryRequired):
            # a net being set up whose echo is not in the log (an excerpt): its layers still count
            net = NetSeen(pending_label or "net", "", e.line)
            s.nets.append(net)
            by_name, layer, pending_label = {}, None, ""
        if t is ev.TopShape:
            if net is not None and layer is not None:
                layer.shapes.append(e.shape)
        elif t is ev.LayerWire:
            l = _layer_of(net, by_name, e.layer)
            (l.bottoms if e.direction == "bottom" else l.tops).append(e.blob)
            layer = layer if layer is not None and layer.name == e.layer else l
        elif t is ev.SettingUp or t is ev.LayerCreate:
            layer = _layer_of(net, by_name, e.layer)
        elif t is ev.DataSize:
            if layer is not None:
                layer.data_size = e.shape
        elif t is ev.MemoryRequired:
            net.figure = e.bytes
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
            if net is not None and net.layers:  # the next net's lines start a net of their own
                net, layer, by_name = None, None, {}
        elif t is ev.NetEcho:
            label = pending_label or ("net" if not s.nets else f"net #{len(s.nets)}")
            if any(n.label == label for n in s.nets):  # a later run, or a worker's copy
                label = f"{label} ({sum(n.label.startswith(label) for n in s.nets) + 1})"
            net = NetSeen(label, e.text, e.line)
            s.nets.append(net)
            by_name, layer, pending_label = {}, None, ""
        elif t is ev.NetDone:
            if net is not None:
                net.done = net.finished = True
        elif t is ev.SolverEcho:
            s.solver_echo = s.solver_echo or e.text
        elif t is ev.Failure:
            if e.severity == "F" or "out of memory" in e.message or "Check failed" in e.message:
                s.failures.append(e)
            elif not s.failures and len(s.errors) < 20:
                s.errors.append(e.message)
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
            if e.time >= 0 and not len(s.train) and not len(s.test):
                s.start_time = e.time
            s.init_open = False
        elif t is ev.Snapshot:
            s.snapshots.append(e.path)
        elif t is ev.WeightsLoaded:
            s.weights = e
            for n in s.nets:  # weights are copied into nets already built
                n.done = True
            if not s.failures:
                s.init_open = False
        elif t is ev.AllocationPrint:
            if not s.failures:
                s.allocation_print = e.bytes
                if len(s.allocation_prints) < 10000:
                    s.allocation_prints.append(e.bytes)
        elif t is ev.RunLine:  # after the failure too: a script's or shell's own lines
            s.run_lines.setdefault(e.what, e)
        elif t is ev.HostMemory:
            if s.host_memory is None:
                s.host_memory = e
            if not s.failures:  # the run ends here: the kernel or the allocator stopped it
                s.failures.append(ev.Failure(e.line, "F", "", e.text))
        elif t is ev.DigitsMemory:
            if len(s.digits_memory) < 64:
                s.digits_memory.append(e.bytes)
        elif t is ev.NvTopMemory:
            if net is not None:  # NVCaffe's own per-net figure: its forward tops' bytes
                net.figure = e.data_bytes
    if held:
        add_curves(s, join(held))
    return s


#: events whose folding neither reads nor changes what :func:`add_curves` does: the curve
#: batches around them are folded together (a snapshot every few hundred iterations would
#: otherwise cut a long log's curves into thousands of small folds)
_COMMUTES = (ev.Snapshot, ev.StackFrame, ev.GpuInfo, ev.ForeignOOM)
_HOLD_ROWS = 1 << 16  # curve lines held before folding (memory stays flat)
