"""One line of a Caffe log into typed events: :class:`LineParser`.

Bytes that are not UTF-8 are replaced; lines holding NUL bytes are counted as junk.  Each
line loses its decorations first: a markdown quote (``> ``), the indentation of a log pasted
as a code block (spaces or tabs before a glog prefix), glog's prefix
(``I1122 12:31:06.245188 29034 net.cpp:131] ``, with or without the year), and is then
dispatched on glog's source tag or, for lines without a prefix, on its first words.
Multi-line blocks (the solver and net echoes) are the unprefixed lines that follow.  The
scripts around Caffe (DIGITS, py-faster-rcnn's demos) and other frameworks' out-of-memory
reports (TensorFlow, PyTorch) are recognised too.  :mod:`.stream` feeds it every line the
vectorized :mod:`.fastscan` does not take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

from . import events as ev
from . import fastscan as fs

#: glog's prefix: severity, date (MMDD or YYYYMMDD), clock, thread id, file:line
_PREFIX = re.compile(rb"^([IWEF])(\d{4}|\d{8}) ([\d:.]+) +\d+ +([\w.\-]+):(\d+)\] ?")
#: an info line whose prefix is damaged between the date and the "]" (a garbled clock or
#: thread id): still an info line, exactly as :mod:`.fastscan` decides it is one
_LOOSE = re.compile(rb"^(I)(\d{4}|\d{8}) ([^\s\]]*)[^\]]*?(?:([\w.\-]+):(\d+)|\d)\] ")
_QUOTE = re.compile(rb"^(?:> ?)+")
_TOP = re.compile(r"^Top shape: ((?:\d+ )*)\((\d+)\)")
_NV_TOP = re.compile(r"^(TRAIN|TEST) Top shape for layer \d+ '([^']*)' ((?:\d+ )*)\((\d+)\)")
_WIRE = re.compile(r"^(\S+) (<-|->) (\S+)( \(in-place\))?$")
#: "Iteration N, loss = X" (BVLC before 2017), "Iteration N (R iter/s, Ss/K iters), loss = X"
#: (BVLC), "... Ss/K iter), loss = X" (NVCaffe, DIGITS' Caffe), "Iteration N (S s), loss = X"
#: (NVCaffe's first iterations): the seconds are the last display interval's
_ITER = re.compile(r"^Iteration (\d+)(?: \((?:\S+ iter/s, (\S+?)s/\d+ iters?|(\S+) s)\))?, loss = (\S+)")
_LR = re.compile(r"^Iteration (\d+), lr = (\S+)")
_OUT = re.compile(r"^\s*(Train|Test) net output #(\d+): (\S+) = (\S+)")
_TEST = re.compile(r"^Iteration (\d+), Testing net \(#(\d+)\)")
_CREATE = re.compile(r"^Creating (training|test) net(?: \(#(\d+)\))?(?: specified by| from)? ?(.*)$")
_GPU_MEM = re.compile(r"Total memory: (\d+), Free: (\d+)")
_FRAME = re.compile(rb"^\s*@\s+0x[0-9a-f]+\s+(.*)$")
_PROTO_LINE = re.compile(r"^\s*(?:[\w.\[\]/]+\s*[:{]|\}|#|$)")
_BARE_TAG = re.compile(r"^([\w.\-]+\.(?:cpp|hpp|cu|cc|h)):(\d+)\] ?(.*)$")
_TF_SHAPE = re.compile(r"OOM when allocating tensor with shape\s*\[?([\d, ]+)\]?")
_TORCH = re.compile(r"CUDA out of memory\. Tried to allocate ([\d.]+) ([KMGT]i?B)")
_DIGITS = re.compile(r"^\d{4}-\d\d-\d\d [\d:]+ \[[^\]]*\] \[(\w+) *\] (.*)$")
_LOADED = re.compile(r"^\s*Loaded network (\S+)")
_PROTOBUF_READ = re.compile(r"libprotobuf WARNING .*The total number of bytes read was (\d+)")
_NEED = re.compile(r"(?i)^\s*mem[eo]ry need(?:ed)? is\s*(\d+)\s*$")
#: the kernel's OOM killer: the shell's "Killed" (alone, or "line 6: 1234 Killed  caffe ..."),
#: dmesg's "Out of memory: Kill(ed) process N (caffe)"
_KILLED = re.compile(r"(?:^|\s)Killed(?:\s|$)|Out of memory: Kill(?:ed)? process")
_BAD_ALLOC = re.compile(r"std::bad_alloc|^\s*MemoryError\b")
_NVMAP = re.compile(r"NvMap\w*Alloc\w*.*error 12|NvRmMemAlloc.*(?:error|fail)", re.I)
#: a shell command running Caffe's tool or a training script (echoed by the user or a script)
_COMMAND = re.compile(r"(?:^|[\s/$}])caffe(?:\.bin|\.exe|\})?\s+(train|test|time)\b|\s--?solver[= ]\S")
_GPU_FLAG = re.compile(r"(?:^|\s)--?gpu[= ]+(all|\d+(?:\s*,\s*\d+)+)\b")
_DIGITS_MEM = re.compile(r"^memory required: ([\d.]+) ?([KMG]i?B)\s*$")
_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "KB": 2**10, "MB": 2**20,
          "GB": 2**30, "TB": 2**40}


@dataclass
class Stop:
    """Where parsing stopped, for the report: lines read, bytes, whether the last line was
    cut, and how many lines were junk."""

    lines: int = 0
    bytes: int = 0
    cut_last_line: bool = False
    junk_lines: int = 0
    inside: str = ""  # "net initialization" when the log ends while a net is being built


def _size(num: str, unit: str) -> Optional[int]:
    try:
        return int(float(num) * _UNITS.get(unit, 1))
    except ValueError:  # "1.2.3 GiB": a damaged line
        return None


_INT64_MAX = (1 << 63) - 1


def _fits_int64(*numbers: str) -> bool:
    """Curve columns are int64: an iteration or index beyond it (a damaged line) is junk."""
    return all(int(x) <= _INT64_MAX for x in numbers)


_QUIET_MAX = 4096  # distinct quiet lines remembered (memory stays flat)


class LineParser:
    """The per-line state machine: glog prefix, echo blocks, failure lines wrapped by a
    console.  ``feed`` takes one raw line (no newline) and yields its events."""

    def __init__(self, stop: Stop) -> None:
        self.stop = stop
        self.block_kind, self.block_start, self.block = None, 0, []
        self.in_net = False
        self.pending = None
        #: the pending failure's line was cut by a console at its width (Windows: 80
        #: columns): the next bare line continues its message
        self.pending_wrap = False
        self.carry = ""  # a bare line as wide as a console, that matched nothing
        #: glog lines known to mean nothing ("src:N] body" after the clock and thread id):
        #: :func:`_dispatch` is a function of the source tag and the body alone, so a line that
        #: gave no event once never will (a data thread's chatter repeats by the thousand)
        self.quiet: set[bytes] = set()

    def interrupt(self) -> Iterator[ev.Event]:
        """A prefixed line arrives: it ends an echo block and a wrapped failure."""
        if self.block_kind is not None:
            yield _flush(self.block_kind, self.block_start, self.block)
            self.block_kind = None
        if self.pending is not None:
            yield self.pending
            self.pending = None

    def feed(self, raw: bytes, n: int) -> Iterator[ev.Event]:
        if b"\x00" in raw:
            self.stop.junk_lines += 1
            return
        raw = _QUOTE.sub(b"", raw, count=1) if raw[:1] == b">" else raw
        if raw[:1] in b" \t" and raw[:1]:  # a log pasted as an indented (code) block
            bare = raw.lstrip(b" \t")
            if _PREFIX.match(bare) or (bare[:1] == b"I" and _LOOSE.match(bare)):
                raw = bare
        m = _PREFIX.match(raw) or (_LOOSE.match(raw) if raw[:1] == b"I" else None)
        if m is None:
            fm = _FRAME.match(raw)
            if fm:
                if self.pending is not None:
                    yield self.pending
                    self.pending = None
                if self.block_kind:
                    yield _flush(self.block_kind, self.block_start, self.block)
                    self.block_kind = None
                yield ev.StackFrame(n, fm.group(1).decode("utf-8", "replace").strip())
                return
            text = raw.decode("utf-8", "replace")
            if self.block_kind is not None:
                if _PROTO_LINE.match(text):
                    self.block.append(text)
                    return
                yield _flush(self.block_kind, self.block_start, self.block)  # an unprefixed log's next line
                self.block_kind = None
            if self.pending is not None:  # a failure line wrapped by a console: its message follows
                if text.strip():
                    if self.pending_wrap:
                        self.pending.message += text.rstrip("\r\n")
                    else:
                        self.pending.message = text.strip()
                    yield self.pending
                    self.pending = None
                return
            foreign = _foreign(n, text) or _around_caffe(n, text)
            if foreign is None and self.carry:  # the rest of a line a console wrapped
                foreign = _around_caffe(n, self.carry + text.rstrip("\r\n"))
            self.carry = text.rstrip("\r\n") if foreign is None and len(text.rstrip("\r\n")) in _CONSOLE_WIDTHS else ""
            if foreign is not None:
                yield foreign
                return
            dm = _DIGITS.match(text)
            if dm:  # a DIGITS job log line: the message, without DIGITS' wrapper
                text = dm.group(2)
                if text.endswith("task started."):
                    yield ev.SolveStart(n, text.split(" task started")[0])
                    return
                mm = _DIGITS_MEM.match(text.strip())
                if mm:  # DIGITS' reading of "Memory required for data", in MB (2**20)
                    size = _size(mm.group(1), mm.group(2))
                    if size is not None:
                        yield ev.DigitsMemory(n, size)
                    return
                text = text.split(": ", 1)[1] if "Check failed" in text and ": " in text else text
            tm = _BARE_TAG.match(text.strip())
            if tm and ("Check failed" in tm.group(3) or "out of memory" in tm.group(3)):
                yield ev.Failure(n, "F", f"{tm.group(1)}:{tm.group(2)}", tm.group(3).strip())
            elif "Check failed" in text or "out of memory" in text.lower() or "failed to allocate" in text:
                yield ev.Failure(n, "F", "", text.strip())
            else:  # a log without glog prefixes: the same lines, bare
                body = tm.group(3) if tm else text.rstrip()
                if body.startswith("Initializing net from parameters"):
                    self.block_kind, self.block_start, self.block, self.in_net = "net", n, [], True
                elif body.startswith("Initializing solver from parameters"):
                    self.block_kind, self.block_start, self.block = "solver", n, []
                else:
                    e = _dispatch(n, tm.group(1) if tm else "net.cpp", body)
                    if e is None and not tm:
                        e = _dispatch(n, "", body)
                    if e is not None:
                        if isinstance(e, ev.NetDone):
                            self.in_net = False
                        yield e
            return
        if self.block_kind is not None:
            yield _flush(self.block_kind, self.block_start, self.block)
            self.block_kind = None
        if self.pending is not None:
            yield self.pending
            self.pending = None
        sev = chr(m.group(1)[0])
        key = raw[m.start(4):] if sev not in "FE" and m.start(4) >= 0 else None
        if key is not None and key in self.quiet:
            return
        src = (m.group(4) or b"").decode("utf-8", "replace")
        body = raw[m.end():].decode("utf-8", "replace")
        if sev in "FE":
            f = ev.Failure(n, sev, f"{src}:{(m.group(5) or b'').decode()}", body.strip())
            width = len(raw.rstrip(b"\r\n"))
            if body.strip() and width not in _CONSOLE_WIDTHS:
                yield f
            else:
                self.pending, self.pending_wrap = f, bool(body.strip())
                if self.pending_wrap:
                    f.message = body.rstrip("\r\n")
            return
        if body.startswith("Initializing net from parameters"):
            self.block_kind, self.block_start, self.block = "net", n, []
            self.in_net = True
            return
        if body.startswith("Initializing solver from parameters"):
            rest = body.split(":", 1)[1] if ":" in body else ""  # NVCaffe puts the first field here
            self.block_kind, self.block_start, self.block = "solver", n, [rest] if rest.strip() else []
            return
        e = _dispatch(n, src, body)
        if e is None:
            if key is not None and len(self.quiet) < _QUIET_MAX:
                self.quiet.add(key)
        else:
            if isinstance(e, ev.NetDone):
                self.in_net = False
            elif isinstance(e, _TIMED):
                e.time = fs.glog_time(m.group(2).decode(), m.group(3).decode("utf-8", "replace"))
            yield e

    def finish(self) -> Iterator[ev.Event]:
        yield from self.interrupt()
        self.stop.inside = "net initialization" if self.in_net else ""


#: a console wraps a long line at its width; Windows' console is 80 columns wide
_CONSOLE_WIDTHS = (80,)
_TIMED = (ev.Iteration, ev.TestStart, ev.SolveStart)  # the events whose glog clock is kept


def _flush(kind: str, start: int, lines: list[str]) -> ev.Event:
    text = "\n".join(lines)
    return ev.NetEcho(start, text) if kind == "net" else ev.SolverEcho(start, text)


def _dispatch(n: int, src: str, body: str):
    c = body[:1]
    if src.startswith("net.cpp"):
        if c == "T":
            m = _TOP.match(body)
            if m:
                return ev.TopShape(n, tuple(int(x) for x in m.group(1).split()), int(m.group(2)))
            m = _NV_TOP.match(body)
            if m:
                return ev.TopShape(n, tuple(int(x) for x in m.group(3).split()), int(m.group(4)), m.group(2))
            mm = re.match(r"^Top memory \((\w+)\) required for data: (\d+) diff: (\d+)", body)
            if mm:
                return ev.NvTopMemory(n, mm.group(1), int(mm.group(2)), int(mm.group(3)))
        if body.startswith("Memory required for data: "):
            figure = body[26:].strip()
            return ev.MemoryRequired(n, int(figure)) if figure.isdigit() else None
        if body.startswith("Setting up "):
            return ev.SettingUp(n, body[11:].strip())
        if body.startswith("Creating Layer "):
            return ev.LayerCreate(n, body[15:].strip())
        if body.startswith("    with loss weight "):
            return ev.LossWeight(n, _float(body[21:]))
        if body.endswith("needs backward computation."):
            return ev.BackwardNeed(n, body[:-len(" needs backward computation.")], True)
        if body.endswith("does not need backward computation."):
            return ev.BackwardNeed(n, body[:-len(" does not need backward computation.")], False)
        if body.startswith("Network initialization done"):
            return ev.NetDone(n)
        m = _WIRE.match(body)
        if m:
            return ev.LayerWire(n, m.group(1), m.group(3), "bottom" if m.group(2) == "<-" else "top",
                                bool(m.group(4)))
        return None
    if c == "I" and body.startswith("Iteration"):
        m = _TEST.match(body)
        if m and _fits_int64(m.group(1), m.group(2)):
            return ev.TestStart(n, int(m.group(1)), int(m.group(2)))
        m = _LR.match(body)
        if m and _fits_int64(m.group(1)):
            return ev.LearningRate(n, int(m.group(1)), _float(m.group(2)))
        m = _ITER.match(body)
        if m and _fits_int64(m.group(1)):
            secs = m.group(2) or m.group(3)
            return ev.Iteration(n, int(m.group(1)), _float(m.group(4)), _float(secs) if secs else None)
        return None
    if "net output #" in body:
        m = _OUT.match(body)
        if m and _fits_int64(m.group(2)):
            return ev.Output(n, m.group(1).lower(), int(m.group(2)), m.group(3), _float(m.group(4)))
    if body.startswith("output data size: "):
        dims = body[18:].strip().split(",")
        if all(d.strip().isdigit() for d in dims):
            return ev.DataSize(n, tuple(int(d) for d in dims))
    if body.startswith("Creating layer "):  # layer_factory, just before the layer exists
        return ev.LayerCreate(n, body[15:].strip())
    if body.startswith("Creating "):
        m = _CREATE.match(body)
        if m:
            label = "train net" if m.group(1) == "training" else f"test net #{m.group(2) or 0}"
            return ev.NetCreate(n, label, m.group(3).strip())
    if body.startswith("Solving ") or body.rstrip() == "Solving":
        return ev.SolveStart(n, body[7:].strip())
    if body.startswith("Snapshotting"):  # "... to binary proto file X", "... to HDF5 file X"
        return ev.Snapshot(n, body.rsplit(" file ", 1)[-1].strip() if " file " in body
                           else body.split(" to ", 1)[-1].strip())
    if "Total memory" in body or body.startswith("GPU ") or "Using GPUs" in body or "Device id" in body:
        m = _GPU_MEM.search(body)
        return ev.GpuInfo(n, body.strip(), int(m.group(1)) if m else None, int(m.group(2)) if m else None)
    run = _run_line(n, body)
    if run is not None:
        return run
    return _foreign(n, body)


#: caffe.cpp's lines that say which tool runs (tools/caffe.cpp: time(), test(), train())
_RUN_LINES = (("Performing Forward", "time_forward"), ("Performing Backward", "time_backward"),
              ("*** Benchmark begins ***", "time_loop"), ("Starting Optimization", "train"),
              ("Resuming from", "train"))


def _run_line(n: int, body: str):
    for start, what in _RUN_LINES:
        if body.startswith(start):
            return ev.RunLine(n, what, body.strip())
    if body.startswith("Running for ") and body.rstrip().endswith("iterations."):
        return ev.RunLine(n, "test_run", body.strip())
    return None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _around_caffe(n: int, text: str):
    """Lines printed around Caffe: py-faster-rcnn's demos after building the net ("Loaded
    network X.caffemodel"), protobuf's warning after reading a big .caffemodel, and the
    allocation sizes people print from SyncedMemory::to_gpu when they hunt an out-of-memory
    error ("Memory need is N")."""
    m = _LOADED.match(text)
    if m:
        return ev.WeightsLoaded(n, m.group(1), inference=True)
    m = _PROTOBUF_READ.search(text)
    if m:
        return ev.WeightsLoaded(n, "", bytes=int(m.group(1)))
    m = _NEED.match(text)
    if m:
        return ev.AllocationPrint(n, int(m.group(1)))
    if _KILLED.search(text):
        return ev.HostMemory(n, "killed", text.strip())
    if _BAD_ALLOC.search(text):
        return ev.HostMemory(n, "bad_alloc", text.strip())
    if _NVMAP.search(text):
        return ev.HostMemory(n, "nvmap", text.strip())
    if text.startswith("Traceback (most recent call last)") or text.startswith("Process finished with exit code"):
        return ev.RunLine(n, "python", text.strip())
    m = _GPU_FLAG.search(text)
    if m and ("caffe" in text or "train" in text):
        return ev.RunLine(n, "multi_gpu", text.strip())
    m = _COMMAND.search(text)
    if m:
        what = {"train": "train", "test": "test_run", "time": "time_cmd"}.get(m.group(1) or "train")
        return ev.RunLine(n, what, text.strip())
    return None


def _foreign(n: int, text: str):
    """TensorFlow's BFC allocator and PyTorch's caching allocator OOM reports."""
    if "ran out of memory trying to allocate" in text:
        m = re.search(r"trying to allocate ([\d.]+)\s*([KMGT]i?B)", text)
        return ev.ForeignOOM(n, "tensorflow", text.strip(), None, _size(m.group(1), m.group(2)) if m else None)
    if "OOM when allocating tensor" in text:
        m = _TF_SHAPE.search(text)
        shape = tuple(int(x) for x in m.group(1).replace(" ", "").split(",") if x) if m else None
        return ev.ForeignOOM(n, "tensorflow", text.strip(), shape)
    if "CUDA out of memory" in text:
        m = _TORCH.search(text)
        e = ev.ForeignOOM(n, "pytorch", text.strip())
        if m:
            e.requested_bytes = _size(m.group(1), m.group(2))
        gm = re.search(r"([\d.]+) ([KMGT]i?B) total capacity", text)
        if gm:
            e.total_bytes = _size(gm.group(1), gm.group(2))
        am = re.search(r"([\d.]+) ([KMGT]i?B) (?:already allocated|reserved in total by PyTorch)", text)
        if am:
            e.in_use_bytes = _size(am.group(1), am.group(2))
        return e
    if "CUDA_ERROR_OUT_OF_MEMORY" in text:
        m = re.search(r"failed to allocate ([\d.]+)([KMGT]?i?B?)\s*\((\d+) bytes\)", text)
        e = ev.ForeignOOM(n, "tensorflow", text.strip())
        if m:
            e.requested_bytes = int(m.group(3))
        return e
    if text.lstrip().startswith("Limit:") or text.lstrip().startswith("InUse:") or text.lstrip().startswith("MaxInUse:"):
        m = re.match(r"\s*(Limit|InUse|MaxInUse):\s+(\d+)", text)
        if m:
            e = ev.ForeignOOM(n, "tensorflow", text.strip())
            if m.group(1) == "Limit":
                e.limit_bytes = int(m.group(2))
            else:
                e.in_use_bytes = int(m.group(2))
            return e
    return None
