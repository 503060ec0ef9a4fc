"""Streaming a Caffe log into typed events.

The file is read in binary, line by line (LF, CRLF or CR), so memory stays flat whatever its
size; bytes that are not UTF-8 are replaced, lines holding NUL bytes are counted as junk.
Each line loses its decorations first: a markdown quote (``> ``), glog's prefix
(``I1122 12:31:06.245188 29034 net.cpp:131] ``, with or without the year), and is then
dispatched on glog's source tag or, for lines without a prefix, on its first words.
Multi-line blocks (the solver and net echoes) are the unprefixed lines that follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Union

from . import events as ev

_PREFIX = re.compile(rb"^([IWEF])(\d{4}|\d{8}) +[\d:.]+ +\d+ +([\w.\-]+):(\d+)\] ?")
_QUOTE = re.compile(rb"^(?:> ?)+")
_TOP = re.compile(r"^Top shape: ((?:\d+ )*)\((\d+)\)")
_NV_TOP = re.compile(r"^(TRAIN|TEST) Top shape for layer \d+ '([^']*)' ((?:\d+ )*)\((\d+)\)")
_WIRE = re.compile(r"^(\S+) (<-|->) (\S+)( \(in-place\))?$")
_ITER = re.compile(r"^Iteration (\d+)(?: \(([\d.]+) iter/s, ([\d.]+)s/\d+ iters\))?, loss = ([-\d.eE+naif]+)")
_LR = re.compile(r"^Iteration (\d+), lr = ([-\d.eE+]+)")
_OUT = re.compile(r"^\s*(Train|Test) net output #(\d+): (\S+) = ([-\d.eE+naif]+)")
_TEST = re.compile(r"^Iteration (\d+), Testing net \(#(\d+)\)")
_CREATE = re.compile(r"^Creating (training|test) net(?: \(#(\d+)\))?(?: specified by| from)? ?(.*)$")
_GPU_MEM = re.compile(r"Total memory: (\d+), Free: (\d+)")
_FRAME = re.compile(rb"^\s*@\s+0x[0-9a-f]+\s+(.*)$")
_PROTO_LINE = re.compile(r"^\s*(?:[\w.\[\]/]+\s*[:{]|\}|#|$)")
_BARE_TAG = re.compile(r"^([\w.\-]+\.(?:cpp|hpp|cu|cc|h)):(\d+)\] ?(.*)$")
_TF_SHAPE = re.compile(r"OOM when allocating tensor with shape\s*\[?([\d, ]+)\]?")
_TORCH = re.compile(r"CUDA out of memory\. Tried to allocate ([\d.]+) ([KMGT]i?B)")
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


def _size(num: str, unit: str) -> int:
    return int(float(num) * _UNITS.get(unit, 1))


def iter_events(source: Union[str, BinaryIO], stop: Stop = None) -> Iterator[ev.Event]:
    """Events of a log file (path or binary file object), in order."""
    stop = stop if stop is not None else Stop()
    if isinstance(source, str):
        with open(source, "rb") as f:
            yield from _iter(f, stop)
    else:
        yield from _iter(source, stop)


class LineParser:
    """The per-line state machine: glog prefix, echo blocks, failure lines wrapped by a
    console.  ``feed`` takes one raw line (no newline) and yields its events."""

    def __init__(self, stop: Stop) -> None:
        self.stop = stop
        self.block_kind, self.block_start, self.block = None, 0, []
        self.in_net = False
        self.pending = None

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
        m = _PREFIX.match(raw)
        if m is None:
            fm = _FRAME.match(raw)
            if fm:
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
                    self.pending.message = text.strip()
                    yield self.pending
                    self.pending = None
                return
            foreign = _foreign(n, text)
            if foreign is not None:
                yield foreign
                return
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
        sev, src, body = chr(m.group(1)[0]), m.group(3).decode(), raw[m.end():].decode("utf-8", "replace")
        if self.pending is not None:
            yield self.pending
            self.pending = None
        if sev in "FE":
            f = ev.Failure(n, sev, f"{src}:{m.group(4).decode()}", body.strip())
            if body.strip():
                yield f
            else:
                self.pending = f
            return
        if body.startswith("Initializing net from parameters"):
            self.block_kind, self.block_start, self.block = "net", n, []
            self.in_net = True
            return
        if body.startswith("Initializing solver from parameters"):
            self.block_kind, self.block_start, self.block = "solver", n, [body.split(":", 1)[1]] if body.rstrip().endswith(":") is False else []
            return
        e = _dispatch(n, src, body)
        if e is not None:
            if isinstance(e, ev.NetDone):
                self.in_net = False
            yield e

    def finish(self) -> Iterator[ev.Event]:
        yield from self.interrupt()
        self.stop.inside = "net initialization" if self.in_net else ""


_CURVE = re.compile(
    rb"^(?:> ?)?I\d{4,8} +[\d:.]+ +\d+ +[\w.]+:\d+\] (?:"
    rb"Iteration (\d+)(?: \([\d.]+ iter/s, ([\d.]+)s/\d+ iters\))?, loss = ([-\d.eE+naifNAIF]+)"
    rb"|Iteration (\d+), lr = ([-\d.eE+]+)"
    rb"|\s*(Train|Test) net output #(\d+): (\S+) = ([-\d.eE+naifNAIF]+)[^\n]*"
    rb")[ \t]*$", re.M)


def _iter(f: BinaryIO, stop: Stop, chunk: int = 1 << 22) -> Iterator[ev.Event]:
    """Chunks of the file; the curve lines that dominate training logs are matched in bulk
    by one regex (C speed), everything between them goes through :class:`LineParser`."""
    p = LineParser(stop)
    n = 0
    rest = b""
    eof = False
    while not eof:
        block = f.read(chunk)
        if not block:
            eof = True
            if not rest:
                break
            data, rest = rest + b"\n", b""
            stop.cut_last_line = True
            stop.bytes -= 1
        else:
            data = rest + block
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            data, rest = data[:cut + 1], data[cut + 1:]
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        stop.bytes += len(data)
        pos = 0
        for m in _CURVE.finditer(data):
            if m.start() > pos:
                for raw in data[pos:m.start() - 1].split(b"\n"):
                    n += 1
                    yield from p.feed(raw, n)
            n += 1
            yield from p.interrupt()
            g = m.groups()
            if g[0] is not None:
                yield ev.Iteration(n, int(g[0]), _float(g[2].decode()), float(g[1]) if g[1] else None)
            elif g[3] is not None:
                yield ev.LearningRate(n, int(g[3]), float(g[4]))
            else:
                yield ev.Output(n, g[5].decode().lower(), int(g[6]), g[7].decode("utf-8", "replace"),
                                _float(g[8].decode()))
            pos = m.end() + 1
        if pos < len(data):
            for raw in data[pos:len(data) - 1].split(b"\n"):
                n += 1
                yield from p.feed(raw, n)
        stop.lines = n
    yield from p.finish()
    stop.lines = n


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
            return ev.MemoryRequired(n, int(body[26:].strip()))
        if body.startswith("Setting up "):
            return ev.SettingUp(n, body[11:].strip())
        if body.startswith("    with loss weight "):
            return ev.LossWeight(n, float(body[21:]))
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
        if m:
            return ev.TestStart(n, int(m.group(1)), int(m.group(2)))
        m = _LR.match(body)
        if m:
            return ev.LearningRate(n, int(m.group(1)), float(m.group(2)))
        m = _ITER.match(body)
        if m:
            return ev.Iteration(n, int(m.group(1)), _float(m.group(4)),
                                float(m.group(3)) if m.group(3) else None)
        return None
    if "net output #" in body:
        m = _OUT.match(body)
        if m:
            return ev.Output(n, m.group(1).lower(), int(m.group(2)), m.group(3), _float(m.group(4)))
    if body.startswith("Creating "):
        m = _CREATE.match(body)
        if m:
            label = "train net" if m.group(1) == "training" else f"test net #{m.group(2) or 0}"
            return ev.NetCreate(n, label, m.group(3).strip())
    if body.startswith("Solving ") or body.rstrip() == "Solving":
        return ev.SolveStart(n, body[7:].strip())
    if body.startswith("Snapshotting to"):
        return ev.Snapshot(n, body.split(" ", 3)[-1])
    if "Total memory" in body or body.startswith("GPU ") or "Using GPUs" in body or "Device id" in body:
        m = _GPU_MEM.search(body)
        return ev.GpuInfo(n, body.strip(), int(m.group(1)) if m else None, int(m.group(2)) if m else None)
    return _foreign(n, body)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


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
