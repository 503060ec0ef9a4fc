"""Typed events of a Caffe (glog) log, one per meaningful line or block.

Every event carries ``line``: the 1-based line number where it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class Event:
    line: int


@dataclass
class SolverEcho(Event):
    text: str  # SolverParameter, protobuf text format


@dataclass
class NetCreate(Event):
    label: str  # "train net", "test net #0" (from the solver's line), "" if not said
    source: str = ""


@dataclass
class NetEcho(Event):
    text: str  # the filtered NetParameter Caffe echoes before building a net


@dataclass
class LayerWire(Event):
    layer: str
    blob: str
    direction: str  # "bottom" (X <- b) or "top" (X -> t)
    in_place: bool = False


@dataclass
class LayerCreate(Event):
    """"Creating Layer X" (net.cpp) or "Creating layer X" (layer_factory): before its SetUp."""
    layer: str


@dataclass
class SettingUp(Event):
    layer: str


@dataclass
class TopShape(Event):
    shape: tuple
    count: int
    layer: Optional[str] = None  # NVCaffe names it on the line


@dataclass
class DataSize(Event):
    """A data layer's batch shape as its SetUp logs it ("output data size: N,C,H,W")."""
    shape: tuple


@dataclass
class LossWeight(Event):
    weight: float


@dataclass
class MemoryRequired(Event):
    bytes: int


@dataclass
class NvTopMemory(Event):
    phase: str
    data_bytes: int
    diff_bytes: int


@dataclass
class BackwardNeed(Event):
    layer: str
    needs: bool


@dataclass
class NetDone(Event):
    pass


@dataclass
class GpuInfo(Event):
    text: str
    total_bytes: Optional[int] = None
    free_bytes: Optional[int] = None


@dataclass
class Iteration(Event):
    iteration: int
    loss: Optional[float] = None
    interval: Optional[float] = None  # "Ss/K iters": seconds of the last display interval
    time: int = -1  # glog's clock, microseconds (fastscan.glog_time); -1 if not printed


@dataclass
class LearningRate(Event):
    iteration: int
    lr: float


@dataclass
class Output(Event):
    phase: str  # "train" or "test"
    index: int
    name: str
    value: float


@dataclass
class TestStart(Event):
    iteration: int
    net: int
    time: int = -1


@dataclass
class SolveStart(Event):
    net: str
    time: int = -1


@dataclass
class Snapshot(Event):
    path: str


@dataclass
class WeightsLoaded(Event):
    """Trained weights were read into a built net: a script says so (py-faster-rcnn's demos:
    "Loaded network X", an inference run), or protobuf warns while reading a big
    .caffemodel ("The total number of bytes read was N")."""
    path: str
    inference: bool = False
    bytes: Optional[int] = None


@dataclass
class AllocationPrint(Event):
    """An allocation size printed by a debugging patch in SyncedMemory ("Memory need is N")."""
    bytes: int


@dataclass
class RunLine(Event):
    """A line of Caffe's tool (or of a script around it) that says what the run is doing:
    ``what`` is "time_forward"/"time_backward"/"time_loop" (``caffe time``: "Performing
    Forward", "Performing Backward", "*** Benchmark begins ***"), "test_run" (``caffe test``:
    "Running for N iterations."), "train" ("Starting Optimization", "Resuming from"),
    "python" (a Python script or IDE ran Caffe: a traceback, "Process finished with exit
    code"), "multi_gpu" (a command line with several GPUs, ``-gpu 0,1`` or ``-gpu all``)."""
    what: str
    text: str = ""


@dataclass
class HostMemory(Event):
    """Host memory ran out outside Caffe's own checks: ``how`` is "killed" (the kernel's OOM
    killer: "Killed", "Out of memory: Kill process"), "bad_alloc" (``std::bad_alloc``),
    "cannot_allocate" ("Cannot allocate memory", errno 12) or "nvmap" (a Jetson board's
    shared memory allocator, "NvMapMemAlloc... error 12")."""
    how: str
    text: str


@dataclass
class DigitsMemory(Event):
    """DIGITS' reading of a net's "Memory required for data" ("memory required: 793 MB")."""
    bytes: int


@dataclass
class Failure(Event):
    severity: str  # "F" or "E"
    source: str  # e.g. "syncedmem.cpp:71"
    message: str


@dataclass
class StackFrame(Event):
    function: str


@dataclass
class ForeignOOM(Event):
    framework: str  # "tensorflow" or "pytorch"
    message: str
    shape: Optional[tuple] = None
    requested_bytes: Optional[int] = None
    limit_bytes: Optional[int] = None
    in_use_bytes: Optional[int] = None
    total_bytes: Optional[int] = None


@dataclass
class CurveBatch(Event):
    """A run of consecutive curve lines (Iteration, LearningRate, Output, TestStart) as
    columns: numpy arrays, one entry per line, in log order.  ``kind`` holds the codes of
    :mod:`.fastscan`; ``index`` is the output number or the test net; ``name`` indexes
    ``names`` for outputs (-1 otherwise).  The line parser's one-line curve events are
    gathered into batches the same way (:func:`~.stream._batch`).  ``text`` and
    ``interval_text`` (:class:`~.fastscan.Text`, or None) hold ``value``'s and ``interval``'s
    text as Python writes it, where the log's token is that text."""

    lines: Any
    kind: Any
    iteration: Any
    value: Any
    interval: Any
    time: Any
    index: Any
    name: Any
    names: list
    text: Any = None
    interval_text: Any = None

    def __len__(self) -> int:
        return len(self.kind)


@dataclass
class Junk(Event):
    """Binary or unreadable lines (counted, not kept)."""
    count: int = 1


ALL = [SolverEcho, NetCreate, NetEcho, LayerWire, LayerCreate, SettingUp, TopShape, LossWeight,
       MemoryRequired, NvTopMemory, DataSize, BackwardNeed, NetDone, GpuInfo, Iteration, LearningRate,
       Output, TestStart, CurveBatch, SolveStart, Snapshot, WeightsLoaded, AllocationPrint, RunLine, HostMemory, DigitsMemory, Failure, StackFrame, ForeignOOM, Junk]
__all__ = [c.__name__ for c in ALL] + ["Event"]
