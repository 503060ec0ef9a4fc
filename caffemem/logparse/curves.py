"""Training curves kept as columns, in flat memory.

A long training log holds millions of curve rows (one per displayed iteration, one per test
pass).  A :class:`CurveTable` keeps them as numpy columns: ``iteration`` (int64) and one
float64 column per value (``seconds``, ``lr``, ``loss``, every net output by name).  Rows
are appended in blocks; whenever more than ``block_rows`` are held, all but the last row
(the only one a later line can still fill in) go to a temporary file.  So memory is the same
for a 10 MB log and a 10 GB one; reading the table back streams the blocks.

A value the log did not print for a row is "missing", which is not the same as a logged
``nan`` (a diverged loss): missing cells hold a NaN with a payload of our own, told apart
bit by bit.

Beside each value column the table keeps the value's text (:class:`~.fastscan.Text`: the
log's token where it is what Python's ``repr`` writes, else nothing), so the CSV and JSON
writers (:mod:`.export`) copy the log's own digits instead of formatting millions of floats.
"""

from __future__ import annotations

import struct
import tempfile
from typing import IO, Iterator, Optional, Sequence

import numpy as np

_MISSING_BITS = 0x7FF8_CAFE_0000_0001
MISSING = struct.unpack("<d", struct.pack("<Q", _MISSING_BITS))[0]


def missing(values: np.ndarray) -> np.ndarray:
    """Which cells were never logged (as opposed to logged as nan)."""
    return values.view(np.uint64) == np.uint64(_MISSING_BITS)


class CurveTable:
    """Rows of one phase (train or test), as columns; see the module docstring."""

    def __init__(self, fixed: Sequence[str], block_rows: int = 1 << 15, whole: Sequence[str] = ()) -> None:
        """``fixed``: the columns every row may have, in order (outputs follow as the log
        brings them); ``whole``: those among them that hold integers (read back as int)."""
        self.names: list[str] = ["iteration", *fixed]
        self.fixed = tuple(fixed)
        self.whole = frozenset(whole)
        self.block_rows = block_rows
        self._cap = 1024
        self._cols: dict[str, np.ndarray] = {"iteration": np.zeros(self._cap, np.int64)}
        #: per column given texts (only then: a log read for its text report keeps none):
        self._text: dict[str, np.ndarray] = {}  # (rows, 2) uint64: the cell's text bytes
        self._size: dict[str, np.ndarray] = {}  # int8: its length (0: none)
        for name in fixed:
            self._column(name, new=True)
        self._n = 0  # rows held in memory
        self._base = 0  # rows spilled before them
        self._spill: Optional[IO[bytes]] = None
        self._blocks: list[tuple[list[str], int, int, list[str]]] = []  # names, rows, offset, texted

    def __len__(self) -> int:
        return self._base + self._n

    @property
    def outputs(self) -> list[str]:
        """The columns first seen in the log (net outputs), after the fixed ones."""
        return self.names[1 + len(self.fixed):]

    def _reserve(self, rows: int) -> None:
        if rows <= self._cap:
            return
        cap = max(rows, 2 * self._cap)
        for store, make in ((self._cols, None), (self._text, lambda: np.zeros((cap, 2), np.uint64)),
                            (self._size, lambda: np.zeros(cap, np.int8))):
            for name, col in store.items():
                if make is not None:
                    grown = make()
                else:
                    grown = np.zeros(cap, np.int64) if name == "iteration" else np.full(cap, MISSING)
                grown[:self._n] = col[:self._n]
                store[name] = grown
        self._cap = cap

    def _column(self, name: str, new: bool = False) -> np.ndarray:
        col = self._cols.get(name)
        if col is None:
            col = self._cols[name] = np.full(self._cap, MISSING)
            if not new:
                self.names.append(name)
        return col

    def _put_text(self, name: str, at, text) -> None:
        if text is None:
            if name in self._size:
                self._size[name][at] = 0
            return
        if name not in self._text:
            self._text[name] = np.zeros((self._cap, 2), np.uint64)
            self._size[name] = np.zeros(self._cap, np.int8)
        self._text[name][at, 0], self._text[name][at, 1], self._size[name][at] = text.lo, text.hi, text.size

    def append(self, iterations: np.ndarray, values: dict[str, np.ndarray], texts: dict = None) -> None:
        """New rows: their iterations and any columns they already have (``texts``: the
        :class:`~.fastscan.Text` of some of them)."""
        k = len(iterations)
        if not k:
            return
        self._reserve(self._n + k)
        self._cols["iteration"][self._n:self._n + k] = iterations
        at = slice(self._n, self._n + k)
        for name, v in values.items():
            self._column(name)[at] = v
            self._put_text(name, at, (texts or {}).get(name))
        self._n += k

    def iterations_at(self, rows: np.ndarray) -> np.ndarray:
        """Iterations of rows still in memory (the last row always is)."""
        return self._cols["iteration"][rows - self._base]

    def assign(self, name: str, rows: np.ndarray, values: np.ndarray, text=None) -> None:
        """Set a column in rows still in memory (with its :class:`~.fastscan.Text`, if
        known); a later value for the same row wins."""
        if len(rows):
            at = rows - self._base
            self._column(name)[at] = values
            self._put_text(name, at, text)

    def settle(self) -> None:
        """Spill all but the last row once more than ``block_rows`` are held."""
        if self._n <= self.block_rows:
            return
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(prefix="caffemem-curves-")
        keep = self._n - 1
        self._spill.seek(0, 2)
        texted = [name for name in self.names[1:] if name in self._text]
        self._blocks.append((list(self.names), keep, self._spill.tell(), texted))
        for name in self.names:  # raw bytes: the block's entry says what they are
            self._spill.write(self._cols[name][:keep])
        for name in texted:
            self._spill.write(self._text[name][:keep])
            self._spill.write(self._size[name][:keep])
        used = self._n  # rows past these were never written: they hold their fill still
        for name in self.names:
            col = self._cols[name]
            col[0] = col[keep]
            col[1:used] = 0 if name == "iteration" else MISSING
            if name in self._text:
                self._text[name][0] = self._text[name][keep]
                self._size[name][0] = self._size[name][keep]
                self._size[name][1:used] = 0
        self._base += keep
        self._n = 1

    def blocks(self) -> Iterator[dict[str, np.ndarray]]:
        """The whole table in row order, a block at a time, every block with every column."""
        for values, _ in self.text_blocks():
            yield values

    def text_blocks(self) -> Iterator[tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]]:
        """:meth:`blocks` with each value column's texts: (values, {name: (words, sizes)}),
        words (rows, 2) uint64 and sizes (0: no text kept, format the value)."""
        for names, rows, offset, texted in self._blocks:
            self._spill.seek(offset)
            got = {name: self._read((rows,), np.int64 if name == "iteration" else np.float64) for name in names}
            texts = {name: (self._read((rows, 2), np.uint64), self._read((rows,), np.int8)) for name in texted}
            empty = (np.zeros((rows, 2), np.uint64), np.zeros(rows, np.int8))
            yield ({name: got[name] if name in got else np.full(rows, MISSING) for name in self.names},
                   {name: texts.get(name, empty) for name in self.names[1:]})
        if self._n:
            n = self._n
            empty = (np.zeros((n, 2), np.uint64), np.zeros(n, np.int8))
            yield ({name: self._cols[name][:n] for name in self.names},
                   {name: (self._text[name][:n], self._size[name][:n]) if name in self._text else empty
                    for name in self.names[1:]})

    def _read(self, shape: tuple, dtype) -> np.ndarray:
        """The next array of the spill file (as :meth:`settle` wrote it)."""
        out = np.empty(shape, dtype)
        view = memoryview(out).cast("B")
        if self._spill.readinto(view) != len(view):
            raise OSError("the curves' temporary file was cut short")
        return out

    def rows(self) -> Iterator[dict]:
        """Each row as a dict of the values the log printed (missing cells left out)."""
        for block in self.blocks():
            yield from self._rows(block)

    def _rows(self, block: dict[str, np.ndarray]) -> Iterator[dict]:
        its = block["iteration"].tolist()
        cols = [(name, block[name].tolist(), missing(block[name]).tolist()) for name in self.names[1:]]
        for i, it in enumerate(its):
            row = {"iteration": it}
            for name, values, gone in cols:
                if not gone[i]:
                    row[name] = int(values[i]) if name in self.whole else values[i]
            yield row

    __iter__ = rows

    def last(self) -> Optional[dict]:
        """The last row, as :meth:`rows` gives it (it is always in memory)."""
        if not len(self):
            return None
        return next(self._rows({name: self._cols[name][self._n - 1:self._n] for name in self.names}))

    def column(self, name: str, max_points: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
        """(iterations, values) of the rows that logged ``name``, thinned to at most about
        ``max_points`` by keeping every k-th row (for plots: flat memory at any length)."""
        if name not in self.names:
            return np.empty(0, np.int64), np.empty(0)
        step = max(1, -(-len(self) // max_points))
        its, vals = [], []
        offset = 0
        for block in self.blocks():
            n = len(block["iteration"])
            take = np.arange((-offset) % step, n, step)
            offset += n
            v = block[name][take]
            keep = ~missing(v)
            its.append(block["iteration"][take][keep])
            vals.append(v[keep])
        if not its:
            return np.empty(0, np.int64), np.empty(0)
        return np.concatenate(its), np.concatenate(vals)

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None
