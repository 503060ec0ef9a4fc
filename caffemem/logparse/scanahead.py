"""Scanning the next chunks for curve lines while this one is being parsed.

:func:`~.fastscan.scan_chunk` is numpy through and through, and numpy lets go of Python's
global lock inside its loops, so on a machine with two cores or more the chunks of a big log
are scanned by a couple of threads ahead of the line parser.  Chunks in flight stay in the
reader's buffers, which it takes in turn (``read_chunks(ring=workers + 3)``: at most
``workers`` chunks are in flight, one is with the line parser); results are taken in order, so the events are the same as
scanning in line, which is what happens for small files, on one core, or with
``workers=0``.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Iterator, Optional

from . import fastscan as fs
from .reader import Chunk
from .threads import Workers

#: files smaller than this are scanned in line: threads would not pay for themselves
MIN_BYTES = 32 << 20
MAX_WORKERS = 2


def default_workers(path: Optional[str]) -> int:
    """Scanning threads worth starting for this file (0: scan in line)."""
    try:
        if path is None or os.path.getsize(path) < MIN_BYTES:
            return 0
    except OSError:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # the C scanner needs one thread to keep ahead of the parser; more only wait on each
    # other, which a busy machine makes worse (measured: more CPU and wall time, not less)
    limit = 1 if fs.cscan is not None else MAX_WORKERS
    return min(cores, limit) if cores >= 2 else 0


def scanned(chunks: Iterator[Chunk], workers: int, texts: bool = True) -> Iterator[tuple[Chunk, Optional[fs.ChunkScan]]]:
    """Each chunk with its scan (None for an empty chunk), in order (``texts``: as
    :func:`~.fastscan.scan_chunk`'s)."""
    if workers <= 0:
        for c in chunks:
            yield c, fs.scan_chunk(c.data, c.size, c.nul, texts) if c.size else None
        return
    flight: deque = deque()
    with Workers(workers, "caffemem-scan") as pool:
        for c in chunks:  # the reader keeps each chunk's buffer for workers + 3 reads
            flight.append((c, pool.submit(fs.scan_chunk, c.data, c.size, c.nul, texts) if c.size else None))
            while len(flight) > workers:
                yield _done(*flight.popleft())
        while flight:
            yield _done(*flight.popleft())


def _done(c: Chunk, job) -> tuple[Chunk, Optional[fs.ChunkScan]]:
    return c, job.result() if job is not None else None
