"""A log's training curves as CSV and JSON, written a block of rows at a time.

The curves come out of :class:`~.curves.CurveTable` as column blocks; each column becomes
a column of text cells (:mod:`.textcols`: the log's own token where it is Python's ``repr``
of the value, else the value formatted the same way), and a block's rows are laid out in
one buffer.  No Python object per row or per cell, so writing millions of rows costs
about what reading them did.

CSV: the layout of Caffe's ``tools/extra/parse_log.py`` (one row per displayed iteration,
one per test pass, values as Python writes floats) in one file with a leading ``phase``
column: ``phase, iteration, seconds, lr, loss``, every output of either phase by name, then
``interval_seconds`` (the seconds of the last display interval, as Caffe prints them).  A
cell the log did not print is empty; a test row's ``loss`` is the test net's loss output.

JSON: each row an object of the cells the log printed (``nan``/``inf`` as null), the
iteration and a test row's ``net`` as integers.
"""

from __future__ import annotations

import json
import os
from collections import deque
from typing import Iterator, TextIO

import numpy as np

from . import fastscan
from .curves import CurveTable, missing
from .textcols import Cells, float_cells, int_cells, join_rows, micro_cells
from .threads import Workers

_FIXED = ("iteration", "seconds", "lr", "loss")


def _value_cells(values: np.ndarray, words: np.ndarray, sizes: np.ndarray) -> Cells:
    """A value column as cells: the kept text where there is one, the value formatted
    where not (a missing cell's text is never written)."""
    need = np.flatnonzero((sizes == 0) & ~missing(values))
    if not len(need):
        return Cells(words, sizes.astype(np.int64))
    made = float_cells(values[need])
    width = max(2, made.words.shape[1] if int(made.lens.max()) > 16 else 2)
    out = np.zeros((len(values), width), np.uint64)
    out[:, :2] = words
    out[need] = made.words[:, :width]
    lens = sizes.astype(np.int64)
    lens[need] = made.lens
    return Cells(out, lens)


def _seconds_cells(values: np.ndarray) -> Cells:
    """The ``seconds`` column: differences of glog clocks in whole microseconds."""
    known = ~missing(values)
    k = np.rint(np.where(known, values, 0) * 1e6)
    exact = known & (k / 1e6 == values)
    cells = micro_cells(np.where(exact, k, 0).astype(np.int64))
    other = np.flatnonzero(known & ~exact)
    if len(other):
        made = float_cells(values[other])
        cells.words[other], cells.lens[other] = made.words, made.lens
    return cells


def _cells(table: CurveTable, name: str, values: np.ndarray, texts: dict) -> Cells:
    if name == "iteration" or name in table.whole:
        return int_cells(np.where(missing(values), 0, values).astype(np.int64)
                         if values.dtype.kind == "f" else values)
    if name == "seconds":
        return _seconds_cells(values)
    words, sizes = texts[name]
    return _value_cells(values, words, sizes)


def _blocks(table: CurveTable) -> Iterator[tuple[dict, dict]]:
    for values, texts in table.text_blocks():
        if len(values["iteration"]):
            yield values, texts


#: threads laying out blocks of rows (numpy lets go of Python's lock inside its loops):
#: while one block is being written, the next ones are being made
WORKERS = 2


def _rendered(blocks: Iterator, render) -> Iterator[bytes]:
    """``render(block)`` of each block, in order, made ahead in threads on a multi-core
    machine (at most ``WORKERS + 1`` blocks in flight, so memory stays flat) when numpy
    renders them; the C extension's writer is quicker than handing blocks to threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2 or WORKERS < 2 or fastscan.cscan is not None:
        for b in blocks:
            yield render(b)
        return
    with Workers(WORKERS, "caffemem-export") as pool:
        flight: deque = deque()
        for b in blocks:
            flight.append(pool.submit(render, b))
            if len(flight) > WORKERS:
                yield flight.popleft().result()
        while flight:
            yield flight.popleft().result()


def write_csv(out: TextIO, train: CurveTable, test: CurveTable) -> None:
    """Both tables as one CSV (see the module docstring), streamed a block at a time."""
    keys = [k for k in train.outputs + test.outputs if k not in _FIXED]
    columns = list(_FIXED) + list(dict.fromkeys(keys)) + ["interval_seconds"]
    out.write(",".join(_csv_field(c) for c in ["phase", *columns]) + "\n")
    for phase, table in (("train", train), ("test", test)):
        def render(block, phase=phase, table=table) -> bytes:
            values, texts = block
            if fastscan.cscan is not None:
                return _csv_block_c(fastscan.cscan, phase, columns, table, values, texts)
            pieces: list = [phase.encode() + b","]
            run = b""  # separators of the columns this table does not have
            for i, c in enumerate(columns):
                sep = b"\n" if i == len(columns) - 1 else b","
                if c not in values:
                    run += sep
                    continue
                if run:
                    pieces.append(run)
                    run = b""
                keep = None if c == "iteration" else ~missing(values[c])
                pieces.append(_cells(table, c, values[c], texts).then(sep, keep))
            if run:
                pieces.append(run)
            return join_rows(pieces)

        for text in _rendered(_blocks(table), render):
            _write(out, text)


def _c_piece(table: CurveTable, name: str, values: dict, texts: dict, present, json_null: bool = False) -> tuple:
    """A column as a piece of the C renderer (``_cscan.render``): integers, or values with
    their kept texts (the renderer formats the others as repr does)."""
    v = values[name]
    if name == "iteration" or name in table.whole:
        return 1, present, (np.where(missing(v), 0, v).astype(np.int64) if v.dtype.kind == "f"
                            else np.ascontiguousarray(v, np.int64))
    flags = 2 if json_null else 0
    if name == "seconds":
        return 2, present, v, None, None, flags | 1
    words, sizes = texts[name]
    return 2, present, v, np.ascontiguousarray(words), np.ascontiguousarray(sizes), flags


#: rows rendered into one piece of text: a megabyte or so, which the allocator reuses
#: (pieces of several MiB would be mapped afresh each time, a page fault every 4 KiB)
_C_ROWS = 8192


def _c_render(cscan, pieces: list, n: int) -> list[bytes]:
    """Consecutive constant pieces joined, then the rows rendered in C, a piece of text
    every :data:`_C_ROWS` rows."""
    merged: list = []
    for p in pieces:
        if p[0] == 0 and p[1] is None and merged and merged[-1][0] == 0 and merged[-1][1] is None:
            merged[-1] = (0, None, merged[-1][2] + p[2])
        else:
            merged.append(p)
    return [cscan.render(merged, n, lo, lo + _C_ROWS) for lo in range(0, n, _C_ROWS)]


def _csv_block_c(cscan, phase: str, columns: list, table: CurveTable, values: dict, texts: dict) -> list[bytes]:
    """A block of CSV rows (as ``write_csv``'s numpy rendering lays them out), in C."""
    pieces: list = [(0, None, phase.encode() + b",")]
    for i, c in enumerate(columns):
        sep = b"\n" if i == len(columns) - 1 else b","
        if c in values:
            present = None if c == "iteration" else ~missing(values[c])
            pieces.append(_c_piece(table, c, values, texts, present))
        pieces.append((0, None, sep))
    return _c_render(cscan, pieces, len(values["iteration"]))


def _json_block_c(cscan, table: CurveTable, values: dict, texts: dict) -> list[bytes]:
    """A block of JSON rows (as ``write_json_rows``' numpy rendering lays them out), in C."""
    pieces: list = [(0, None, b",\n  {" + json.dumps("iteration").encode() + b": "),
                    _c_piece(table, "iteration", values, texts, None)]
    for name in table.names[1:]:
        keep = ~missing(values[name])
        pieces += [(0, keep, b", " + json.dumps(name).encode() + b": "),
                   _c_piece(table, name, values, texts, keep, json_null=True)]
    pieces.append((0, None, b"}"))
    return _c_render(cscan, pieces, len(values["iteration"]))


def _write(out: TextIO, data) -> None:
    """UTF-8 text (bytes, or a list of them) into ``out``: straight into its byte stream when
    it has one that takes UTF-8 as is (stdout, a file opened for text: no decoding and
    encoding again)."""
    parts = [data] if isinstance(data, bytes) else data
    raw = getattr(out, "buffer", None)
    encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if raw is not None and encoding == "utf8" and os.linesep == "\n" and getattr(out, "errors", "strict") in (
            "strict", "surrogateescape"):
        out.flush()
        for part in parts:
            raw.write(part)
    else:
        for part in parts:
            out.write(part.decode("utf-8"))


def _csv_field(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if any(ch in name for ch in ',"\n\r') else name


def write_json_rows(out: TextIO, table: CurveTable) -> None:
    """The table's rows as JSON objects, ``[`` to ``]``: the first preceded by a newline and
    two spaces, the others by a comma too (json.dumps' spacing inside each object)."""

    def render(block) -> bytes:
        values, texts = block
        if fastscan.cscan is not None:
            return _json_block_c(fastscan.cscan, table, values, texts)
        pieces: list = [b",\n  {", json.dumps("iteration").encode() + b": ",
                        _cells(table, "iteration", values["iteration"], texts)]
        present: list = [None, None, None]
        for name in table.names[1:]:
            v = values[name]
            cells = _cells(table, name, v, texts)
            if name not in table.whole and name != "iteration":
                cells = cells.where(np.isnan(v) & ~missing(v) | np.isinf(v), b"null")
            keep = ~missing(v)
            pieces += [b", " + json.dumps(name).encode() + b": ", cells]
            present += [keep, keep]
        pieces.append(b"}")
        present.append(None)
        return join_rows(pieces, present)

    out.write("[")
    first = True
    for text in _rendered(_blocks(table), render):
        if first:  # the first row has no comma before it
            text = [text[1:]] if isinstance(text, bytes) else [text[0][1:], *text[1:]]
        _write(out, text)
        first = False
    out.write("\n ]")
