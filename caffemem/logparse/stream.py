"""A log file as a stream of typed events, in flat memory.

:mod:`.reader` cuts the file into chunks of whole lines; :mod:`.fastscan` recognises the
curve lines that make up most of a training log for a whole chunk at once (ahead, in
threads, for big files: :mod:`.scanahead`); every other line goes through
:class:`~.parser.LineParser`, in order.  Curves come out as :class:`~.events.CurveBatch`
events, whichever path read them.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator, Optional, Union

import numpy as np

from . import events as ev
from . import fastscan as fs
from .parser import LineParser, Stop
from .reader import read_chunks
from .scanahead import default_workers, scanned


def iter_events(source: Union[str, BinaryIO], stop: Stop = None, fast: bool = True,
                workers: Optional[int] = None, chunk: int = 0) -> Iterator[ev.Event]:
    """Events of a log file (path or binary file object), in order.  Curve lines come as
    :class:`~.events.CurveBatch` events.  ``fast=False`` sends every line through
    :class:`LineParser` (the reference the fast path is tested against); ``workers``
    threads scan a big file's chunks ahead (None: 2 on a multi-core machine for files of
    32 MiB and more; 0: none); ``chunk`` is the read size in bytes."""
    stop = stop if stop is not None else Stop()
    if isinstance(source, str):
        with open(source, "rb") as f:
            yield from _iter(f, stop, fast, chunk, source, workers)
    else:
        yield from _iter(source, stop, fast, chunk, None, 0 if workers is None else workers)


_CURVE_EVENTS = (ev.Iteration, ev.LearningRate, ev.Output, ev.TestStart)


def _batch(events: list) -> ev.CurveBatch:
    """One-line curve events (from :class:`LineParser`) as a :class:`~.events.CurveBatch`."""
    kinds, its, values, secs, times, index, name, names = [], [], [], [], [], [], [], []
    for e in events:
        t = type(e)
        clock = -1
        if t is ev.Iteration:
            k, it, v, sec, i, nm, clock = fs.ITER, e.iteration, e.loss, e.interval, -1, -1, e.time
        elif t is ev.LearningRate:
            k, it, v, sec, i, nm = fs.LR, e.iteration, e.lr, None, -1, -1
        elif t is ev.TestStart:
            k, it, v, sec, i, nm, clock = fs.TEST_START, e.iteration, None, None, e.net, -1, e.time
        else:
            if e.name not in names:
                names.append(e.name)
            k = fs.TRAIN_OUT if e.phase == "train" else fs.TEST_OUT
            it, v, sec, i, nm = -1, e.value, None, e.index, names.index(e.name)
        kinds.append(k)
        its.append(it)
        values.append(float("nan") if v is None else v)
        secs.append(float("nan") if sec is None else sec)
        times.append(clock)
        index.append(i)
        name.append(nm)
    return ev.CurveBatch(events[0].line, np.array([e.line for e in events], np.int64),
                         np.array(kinds, np.uint8), np.array(its, np.int64), np.array(values),
                         np.array(secs), np.array(times, np.int64), np.array(index, np.int64),
                         np.array(name, np.int64), names)


def _iter(f: BinaryIO, stop: Stop, fast: bool = True, chunk: int = 0, path: Optional[str] = None,
          workers: Optional[int] = None) -> Iterator[ev.Event]:
    """The file a chunk at a time (:mod:`.reader`).  The curve lines that make up most of a
    training log are recognised for the whole chunk at once (:mod:`.fastscan`, ahead in
    threads for big files: :mod:`.scanahead`) and come out as :class:`~.events.CurveBatch`
    events; every other line goes through :class:`LineParser`, in order.  Curve events the
    line parser finds (formats the fast path leaves to it) are batched the same way, so a
    consumer sees curves only as batches."""
    p = LineParser(stop)
    n = 0  # lines before the current chunk
    pending: list = []

    def lines_of(events):
        for e in events:
            if type(e) in _CURVE_EVENTS:
                pending.append(e)
                continue
            if pending:
                yield _batch(pending)
                pending.clear()
            yield e

    chunks = read_chunks(f, stop, chunk)
    if fast:
        if workers is None:
            workers = default_workers(path)
        pairs = scanned(chunks, workers)
    else:
        pairs = ((c, None) for c in chunks)
    for c, sc in pairs:
        n += c.junk
        if c.size:
            n += yield from _chunk_events(c.data, c.size, sc, n, p, lines_of, pending)
        stop.lines = n
    yield from lines_of(p.finish())
    if pending:
        yield _batch(pending)
    stop.lines = n


def _chunk_events(arr: np.ndarray, size: int, sc: Optional[fs.ChunkScan], n: int, p: LineParser,
                  lines_of, pending: list):
    """The events of one chunk (``arr[:size]``, whole lines, zero padding after) whose curve
    lines ``sc`` recognised (None: none were): the curve runs as batches, every other line
    through the line parser, in order.  Returns the chunk's number of lines."""
    if sc is not None:
        ends, curve = sc.ends, sc.lines
    else:
        ends, curve = np.flatnonzero(arr[:size] == 10), np.empty(0, np.int64)
    is_curve = np.zeros(len(ends), bool)
    is_curve[curve] = True
    others = np.flatnonzero(~is_curve)
    runs = np.searchsorted(curve, others).tolist()
    line_ends = ends[others].tolist()
    line_starts = np.where(others > 0, ends[others - 1] + 1, 0).tolist()
    done = 0  # curve lines of the chunk already given out

    def run_upto(upto: int):
        yield from lines_of(p.interrupt())
        if pending:
            yield _batch(pending)
            pending.clear()
        sel = slice(done, upto)
        yield ev.CurveBatch(n + int(curve[done]) + 1, n + curve[sel] + 1, sc.kind[sel],
                            sc.iteration[sel], sc.value[sel], sc.interval[sel], sc.time[sel],
                            sc.index[sel], sc.name[sel], sc.names)

    for j, upto, start, end in zip(others.tolist(), runs, line_starts, line_ends):
        if upto > done:
            yield from run_upto(upto)
            done = upto
        yield from lines_of(p.feed(arr[start:end].tobytes(), n + j + 1))
    if len(curve) > done:
        yield from run_upto(len(curve))
    return len(ends)
