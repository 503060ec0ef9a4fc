"""A log file as a stream of typed events, in flat memory.

:mod:`.reader` cuts the file into chunks of whole lines; :mod:`.fastscan` recognises the
curve lines that make up most of a training log for a whole chunk at once (ahead, in
threads, for big files: :mod:`.scanahead`); every other line goes through
:class:`~.parser.LineParser`, in order.  Curves come out as :class:`~.events.CurveBatch`
events, whichever path read them: one batch per chunk, cut only where another event must
come between two curve lines (a snapshot, a failure, a net being built).  Lines that mean
nothing to the summary (a data thread's "Restarting data prefetching", "Waiting for data")
do not cut a batch, so a real log, whose solver lines are interleaved with such chatter,
is folded a chunk at a time as a generated one is.
"""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterator, Optional, Union

import numpy as np

from . import events as ev
from . import fastscan as fs
from .parser import LineParser, Stop
from .reader import read_chunks
from .scanahead import default_workers, scanned


def iter_events(source: Union[str, BinaryIO], stop: Stop = None, fast: bool = True,
                workers: Optional[int] = None, chunk: int = 0,
                progress: Optional[Callable[[int], None]] = None, texts: bool = True,
                commute: tuple = ()) -> Iterator[ev.Event]:
    """Events of a log file (path or binary file object), in order.  Curve lines come as
    :class:`~.events.CurveBatch` events.  ``fast=False`` sends every line through
    :class:`LineParser` (the reference the fast path is tested against); ``workers``
    threads scan a big file's chunks ahead (None: 2 on a multi-core machine for files of
    32 MiB and more; 0: none); ``chunk`` is the read size in bytes; ``progress`` is called
    with the bytes read after each chunk; ``texts=False`` keeps no number texts in the
    batches (the text report does not write the curves out); events of the types in
    ``commute`` (those whose consumer does not care where they fall among curve lines, as
    :func:`~.summary.summarize` does not for snapshots) do not cut a batch: they may come
    before curve lines of the same chunk that were logged ahead of them."""
    stop = stop if stop is not None else Stop()
    if isinstance(source, str):
        with open(source, "rb") as f:
            yield from _iter(f, stop, fast, chunk, source, workers, progress, texts, commute)
    else:
        yield from _iter(source, stop, fast, chunk, None, 0 if workers is None else workers, progress, texts,
                         commute)


_CURVE_EVENTS = (ev.Iteration, ev.LearningRate, ev.Output, ev.TestStart)


def _columns(events: list) -> dict:
    """One-line curve events (from :class:`LineParser`) as the columns of a
    :class:`~.events.CurveBatch` (``names`` holds the output names in order of appearance)."""
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
    m = len(events)
    return {"kind": np.array(kinds, np.uint8), "iteration": np.array(its, np.int64),
            "value": np.array(values), "interval": np.array(secs), "time": np.array(times, np.int64),
            "index": np.array(index, np.int64), "name": np.array(name, np.int64),
            "text": fs.Text.empty(m), "interval_text": fs.Text.empty(m), "names": names}


_FIELDS = ("kind", "iteration", "value", "interval", "time", "index", "name", "text", "interval_text")


def _texts_of(sc) -> dict:
    return {"text": sc.text, "interval_text": sc.interval_text}


def _cat(parts: list):
    """Columns joined; texts only if every part has them."""
    if any(p is None for p in parts):
        return None
    return fs.Text.concat(parts) if isinstance(parts[0], fs.Text) else np.concatenate(parts)


def _pick(col, sel):
    if col is None:
        return None
    return col.take(sel) if isinstance(col, fs.Text) else col[sel]


def _curves(sc: Optional[fs.ChunkScan], extra: list, extra_lines: list) -> tuple[np.ndarray, dict]:
    """A chunk's curve lines, the scanned ones and those the line parser read (``extra``,
    at chunk lines ``extra_lines``), merged in line order: (chunk line indices, columns)."""
    if not extra:
        if sc is None:
            return np.empty(0, np.int64), {}
        return sc.lines, {f: getattr(sc, f) for f in _FIELDS[:7]} | _texts_of(sc) | {"names": sc.names}
    cols = _columns(extra)
    lines = np.array(extra_lines, np.int64)
    if sc is None or not len(sc.lines):
        return lines, cols
    names = list(sc.names)
    ids = np.array([names.index(n) if n in names else names.append(n) or len(names) - 1
                    for n in cols["names"]] or [0], np.int64)
    cols["name"] = np.where(cols["name"] >= 0, ids[np.maximum(cols["name"], 0)], -1)
    order = np.argsort(np.concatenate([sc.lines, lines]), kind="stable")
    scanned_cols = {f: getattr(sc, f) for f in _FIELDS[:7]} | _texts_of(sc)
    merged = {f: _pick(_cat([scanned_cols[f], cols[f]]), order) for f in _FIELDS}
    merged["names"] = names
    return np.concatenate([sc.lines, lines])[order], merged


def _iter(f: BinaryIO, stop: Stop, fast: bool = True, chunk: int = 0, path: Optional[str] = None,
          workers: Optional[int] = None, progress=None, texts: bool = True, commute: tuple = ()) -> Iterator[ev.Event]:
    """The file a chunk at a time (:mod:`.reader`), each chunk's events in line order."""
    p = LineParser(stop)
    n = 0  # lines before the current chunk
    if fast:
        if workers is None:
            workers = default_workers(path)
        # the chunks a scanning thread holds stay in the reader's buffers (see scanahead)
        pairs = scanned(read_chunks(f, stop, chunk, ring=workers + 3 if workers > 0 else 1), workers, texts)
    else:
        pairs = ((c, None) for c in read_chunks(f, stop, chunk))
    for c, sc in pairs:
        n += c.junk
        if c.size:
            n += yield from _chunk_events(c.data, c.size, sc, n, p, commute)
        stop.lines = n
        if progress is not None:
            progress(stop.bytes)
    yield from p.finish()
    stop.lines = n


def _chunk_events(arr: np.ndarray, size: int, sc: Optional[fs.ChunkScan], n: int, p: LineParser,
                  commute: tuple = ()):
    """The events of one chunk (``arr[:size]``, whole lines, zero padding after) whose curve
    lines ``sc`` recognised (None: none were).  Every other line goes through the line
    parser; a scanned line (a curve line, or chatter known to mean nothing) is a glog line,
    so it ends an echo block or a wrapped failure the parser holds open
    (:meth:`LineParser.interrupt`) as the line itself would.
    Events are ordered by line; curve lines between two other events form one batch (events
    of the ``commute`` types cut none: they come before the batch that holds curve lines
    logged ahead of them).
    Returns the chunk's number of lines."""
    if sc is not None:
        ends, curve = sc.ends, sc.lines
        quiet = sc.quiet if sc.quiet is not None else np.empty(0, np.int64)
    else:
        ends, curve, quiet = np.flatnonzero(arr[:size] == 10), np.empty(0, np.int64), np.empty(0, np.int64)
    # glog lines the scan took: curve lines, and chatter known to mean nothing (fastscan.QUIET)
    if len(curve) or len(quiet):
        is_taken = np.zeros(len(ends), bool)
        is_taken[curve] = True
        is_taken[quiet] = True
        taken = np.flatnonzero(is_taken) if len(quiet) else curve
        others = np.flatnonzero(~is_taken)
    else:
        taken, others = curve, np.arange(len(ends))
    # lines taken before each other line: a change means glog lines came in between
    before = np.searchsorted(taken, others).tolist() if len(taken) else [0] * len(others)
    line_ends = ends[others].tolist()
    line_starts = np.where(others > 0, ends[others - 1] + 1, 0).tolist()
    keys: list[int] = []  # 2 * line for a line's own events, 2 * line + 1 just after it
    events: list = []
    extra: list = []  # curve events the line parser read
    extra_lines: list[int] = []
    seen, prev = 0, -1
    buf = arr.data
    for j, k, start, end in zip(others.tolist(), before, line_starts, line_ends):
        if k > seen:
            if p.block_kind is not None or p.pending is not None:
                for e in p.interrupt():
                    keys.append(2 * prev + 1)
                    events.append(e)
            seen = k
        for e in p.feed(bytes(buf[start:end]), n + j + 1):
            if type(e) in _CURVE_EVENTS:
                extra.append(e)
                extra_lines.append(j)
            else:
                keys.append(2 * j)
                events.append(e)
        prev = j
    if len(taken) > seen and (p.block_kind is not None or p.pending is not None):
        for e in p.interrupt():
            keys.append(2 * prev + 1)
            events.append(e)
    lines, cols = _curves(sc, extra, extra_lines)
    done = 0
    if events:
        cuts = np.searchsorted(2 * lines, keys).tolist() if len(lines) else [0] * len(events)
        for cut, e in zip(cuts, events):
            if cut > done and type(e) not in commute:
                yield _batch(n, lines, cols, done, cut)
                done = cut
            yield e
    if len(lines) > done:
        yield _batch(n, lines, cols, done, len(lines))
    return len(ends)


def _batch(n: int, lines: np.ndarray, cols: dict, lo: int, hi: int) -> ev.CurveBatch:
    sel = slice(lo, hi)
    c = [_pick(cols[f], sel) for f in _FIELDS]
    return ev.CurveBatch(n + int(lines[lo]) + 1, n + lines[sel] + 1, *c[:7], cols["names"], *c[7:])


def join(batches: list) -> ev.CurveBatch:
    """Consecutive curve batches as one (their output names merged)."""
    if len(batches) == 1:
        return batches[0]
    names: list[str] = []
    ids = []
    for b in batches:
        remap = np.array([names.index(x) if x in names else names.append(x) or len(names) - 1
                          for x in b.names] or [0], np.int64)
        ids.append(np.where(b.name >= 0, remap[np.maximum(b.name, 0)], -1))
    cols = {f: _cat([getattr(b, f) for b in batches]) for f in _FIELDS if f != "name"}
    cols["name"] = np.concatenate(ids)
    return ev.CurveBatch(batches[0].line, np.concatenate([b.lines for b in batches]),
                         *(cols[f] for f in _FIELDS[:7]), names, cols["text"], cols["interval_text"])

