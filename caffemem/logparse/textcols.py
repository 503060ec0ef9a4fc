"""Numbers written as text a whole column at a time, and rows of text cells joined, with numpy.

A training log's curves run to millions of rows; writing them as CSV or JSON one Python
object per cell costs more than reading the log.  Here a column of numbers becomes a column
of *cells*: each cell's text from the first byte of a few little-endian uint64 words per row
(``words``; what lies past its length is never read) and its length.  Floats are written as Python's ``repr`` writes
them (the shortest text that reads back to the same double), so the CSV holds what Caffe's
``parse_log.py`` (Python's csv module) would write; integers in decimal.  :func:`join_rows`
lays cells and constant pieces (separators, JSON keys) out row after row in one buffer.

How a float gets its digits: a double that is a decimal of at most 15 significant digits
(every value Caffe prints with its default precision of 6, and every clock difference in
microseconds) is ``D * 10**(e - 14)`` for exactly one 15-digit ``D``, found by one scaling
by an exact power of ten and checked by scaling back (Clinger: both steps round exactly
once).  Its shortest text is ``D`` without its trailing zeros, placed as ``repr`` places it
(positional for exponents -4 to 15, else ``d.ddde-XX``).  Anything else (more digits,
exponents beyond 10**±22) goes through ``repr`` itself, one by one.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

_U = np.uint64
_I4 = np.arange(10000, dtype=np.uint64)  # "0000".."9999" as 4 ASCII bytes, first digit low
_LUT4 = sum(((_I4 // _U(10 ** (3 - j)) % _U(10) + _U(48)) << _U(8 * j)) for j in range(4))
_P10 = np.array([10 ** k for k in range(19)], np.int64)
_F10 = np.array([10.0 ** k for k in range(23)])
_SLOT = 4  # uint64 words per cell slot: texts up to 24 bytes, 8 bytes of slack for the writes


class Cells:
    """A column of texts: ``words`` (n, k) uint64 holding each row's text from its first byte
    (past ``lens`` anything), and ``lens``."""

    __slots__ = ("words", "lens")

    def __init__(self, words: np.ndarray, lens: np.ndarray) -> None:
        self.words, self.lens = words, lens

    def __len__(self) -> int:
        return len(self.lens)

    def texts(self) -> list[bytes]:
        """Each cell as bytes (for tests and small tables)."""
        raw = self.words.view(np.uint8).reshape(len(self), -1)
        return [bytes(raw[i, :k]) for i, k in enumerate(self.lens.tolist())]

    def then(self, sep: bytes, present: np.ndarray = None) -> "Cells":
        """These cells followed by one separator byte (a cell not ``present``: the separator
        alone), so a row needs one piece per cell, not two.  The words are changed in place
        (what lies past a cell's length is never read)."""
        lens = self.lens if present is None else np.where(present, self.lens, 0)
        words = self.words
        if int(lens.max(initial=0)) + 1 > 8 * words.shape[1]:
            words = np.concatenate([words, np.zeros((len(lens), 1), np.uint64)], axis=1)
        raw = words.view(np.uint8).reshape(len(lens), -1)
        raw[np.arange(len(lens)), lens] = sep[0]
        return Cells(words, lens + 1)

    def where(self, mask: np.ndarray, text: bytes) -> "Cells":
        """These cells with ``text`` in the rows of ``mask``."""
        if not mask.any():
            return self
        words, lens = self.words.copy(), self.lens.copy()
        words[mask] = _const_words(text)[:words.shape[1]]
        lens[mask] = len(text)
        return Cells(words, lens)


def _const_words(text: bytes) -> np.ndarray:
    return np.frombuffer(text.ljust(8 * _SLOT, b"\0")[:8 * _SLOT], np.uint64)


def _lut8(x: np.ndarray) -> np.ndarray:
    """Integers below 10**8 as 8 ASCII digits (zero-padded), first digit in the low byte."""
    return _LUT4[x // 10000] | (_LUT4[x % 10000] << _U(32))


def _left(word: np.ndarray, width: np.ndarray) -> np.ndarray:
    """The last ``width`` (0..8) characters of 8-character words, moved to the front."""
    return word >> (_U(8) * (8 - width).astype(np.uint64))


class _Slots:
    """Cell slots being written: pieces are put one after another in each row's slot."""

    def __init__(self, n: int) -> None:
        self.out = np.zeros((n, _SLOT), np.uint64)
        flat = self.out.view(np.uint8).reshape(-1)
        self.view = np.ndarray((max(len(flat) - 7, 0),), dtype="<u8", buffer=flat, offset=0, strides=(1,))
        self.at = np.arange(n, dtype=np.int64) * (8 * _SLOT)

    def put(self, rows, word: np.ndarray, width: np.ndarray) -> None:
        """One piece of up to 8 bytes per row (``rows``: the rows, or a slice of all)."""
        at = self.at[rows]
        self.view[at] = word
        self.at[rows] = at + width

    def digits(self, rows, x: np.ndarray, width: np.ndarray) -> None:
        """``x`` (below 10**16) in exactly ``width`` (0..24) digits, zero-padded."""
        for unit, lower in ((10 ** 16, 16), (10 ** 8, 8)):
            w = np.clip(width - lower, 0, 8)
            if w.any():
                self.put(rows, np.where(w > 0, _left(_lut8((x // unit) % 10 ** 8), w), _U(0)), w)
        w = np.minimum(width, 8)
        self.put(rows, _left(_lut8(x % 10 ** 8), w), w)


def _digits_words(x: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (below 10**16) in ``width`` (1..16) digits, left-aligned in two words."""
    hi, lo = _lut8(x // 100_000_000), _lut8(x % 100_000_000)
    wide = width > 8
    w = width.astype(np.uint64)
    # wide: the last (width - 8) characters of hi, then all 8 of lo
    head = _left(hi, np.where(wide, width - 8, 0))
    sh = _U(8) * np.where(wide, w - _U(8), _U(0))
    w0 = np.where(wide, head | (lo << sh), _left(lo, np.minimum(width, 8)))
    w1 = np.where(wide, (lo >> (_U(64) - sh)) * (sh > 0), _U(0))
    return w0, w1


def int_cells(x: np.ndarray) -> Cells:
    """Integers (int64) in decimal."""
    x = np.asarray(x, np.int64)
    n = len(x)
    neg = x < 0
    a = np.abs(x)
    fits = (a >= 0) & (a < 10 ** 15)  # int64's minimum has no absolute value
    a = np.where(fits, a, 0)
    width = np.searchsorted(_P10, a, side="right").clip(1, 16)
    w0, w1 = _digits_words(a, width)
    if neg.any():  # a minus first: everything one byte on
        w1 = np.where(neg, (w1 << _U(8)) | (w0 >> _U(56)), w1)
        w0 = np.where(neg, (w0 << _U(8)) | _U(ord("-")), w0)
    words = np.zeros((n, 2), np.uint64)
    words[:, 0], words[:, 1] = w0, w1
    cells = Cells(words, width + neg)
    rest = np.flatnonzero(~fits)
    if len(rest):
        cells.words = np.concatenate([words, np.zeros((n, 2), np.uint64)], axis=1)
        _put_texts(cells, rest, [str(v).encode() for v in x[rest].tolist()])
    return cells


def _put_texts(cells: Cells, rows: np.ndarray, texts: list[bytes]) -> None:
    cells.words[rows] = np.frombuffer(b"".join(t.ljust(8 * _SLOT, b"\0") for t in texts),
                                      np.uint64).reshape(-1, _SLOT)
    cells.lens[rows] = [len(t) for t in texts]


def decimal_cells(digits: np.ndarray, exp: np.ndarray, neg: np.ndarray) -> Cells:
    """``(-1)**neg * digits * 10**exp`` (digits: 1 to 15 significant digits, no trailing zero
    needed) written as ``repr`` writes that double."""
    n = len(digits)
    d = np.asarray(digits, np.int64)
    # strip trailing zeros: at most 14 (a 15-digit number keeps its first digit)
    for step in (8, 4, 2, 1):
        m = (d % _P10[step] == 0) & (d != 0)
        d = np.where(m, d // _P10[step], d)
        exp = exp + m * step
    s = np.searchsorted(_P10, d, side="right").clip(1, 16)  # digit count
    e = exp + s - 1  # decimal exponent of the first digit
    sci = (e < -4) | (e >= 16)
    small = ~sci & (e < 0)
    big = ~sci & (e >= 0)
    split = np.where(big, np.maximum(s - e - 1, 0), s - 1)  # digits after the point
    p = _P10[np.clip(split, 0, 18)]
    x_a = np.where(small, 0, np.where(big & (s <= e + 1), d * _P10[np.clip(e + 1 - s, 0, 18)], d // p))
    w_a = np.where(big, e + 1, 1)
    x_c = np.where(small, d, np.where(big & (s <= e + 1), 0, d % p))
    w_c = np.where(small, s - e - 1, np.where(big, np.maximum(split, 1), s - 1))
    slots = _Slots(n)
    every = slice(None)
    slots.put(every, np.full(n, ord("-"), np.uint64), neg.astype(np.int64))
    slots.digits(every, x_a, w_a)
    dot = ~sci | (s > 1)
    slots.put(every, np.full(n, ord("."), np.uint64), dot.astype(np.int64))
    has_c = w_c > 0
    slots.digits(every, np.where(has_c, x_c, 0), np.where(has_c, w_c, 0))
    if sci.any():
        ee = np.abs(e)
        ew = np.where(ee >= 100, 3, 2)
        word = (_U(ord("e")) | (np.where(e < 0, _U(ord("-")), _U(ord("+"))) << _U(8))
                | (_left(_lut8(ee), ew) << _U(16)))
        slots.put(every, np.where(sci, word, _U(0)), np.where(sci, ew + 2, 0))
    lens = slots.at - np.arange(n, dtype=np.int64) * (8 * _SLOT)
    return Cells(slots.out, lens)


def float_cells(v: np.ndarray) -> Cells:
    """Doubles as ``repr`` writes them ("1e-05", "0.01", "1234500.0", "nan", "-inf")."""
    v = np.asarray(v, np.float64)
    n = len(v)
    a = np.abs(v)
    finite = np.isfinite(v) & (a != 0)
    rows = np.flatnonzero(finite)
    ar = a[rows]
    with np.errstate(divide="ignore"):
        e = np.floor(np.log10(ar)).astype(np.int64)
    d = np.zeros(len(rows))
    k = np.zeros(len(rows), np.int64)
    for _ in range(2):  # log10 may be one off next to a power of ten: correct it
        k = 14 - e
        scale = _F10[np.clip(np.abs(k), 0, 22)]
        with np.errstate(over="ignore"):
            d = np.rint(np.where(k >= 0, ar * scale, ar / scale))
        e = e + (d >= 1e15) - (d < 1e14)
    exact = (np.abs(k) <= 22) & (d < 1e15) & (d >= 1e14)
    back = np.where(k >= 0, d / scale, d * scale)
    exact &= back == ar
    cells = Cells(np.zeros((n, _SLOT), np.uint64), np.zeros(n, np.int64))
    good = rows[exact]
    if len(good):
        dc = decimal_cells(d[exact].astype(np.int64), -k[exact], np.signbit(v[good]))
        cells.words[good], cells.lens[good] = dc.words, dc.lens
    rest = np.concatenate([np.flatnonzero(~finite), rows[~exact]])
    if len(rest):
        _put_texts(cells, rest, [repr(x).encode() for x in v[rest].tolist()])
    return cells


Piece = Union[Cells, bytes]


_ROWS = 4096  # rows laid out at a time: the work arrays stay in the processor's cache


def join_rows(pieces: Sequence[Piece], present: Sequence = ()) -> bytes:
    """Rows of text: per row, each piece in order (a column of :class:`Cells`, or constant
    bytes), and nothing at all for a piece whose ``present[i]`` row is False (``present``:
    one boolean array or None per piece).  Returns the bytes of all rows."""
    n = next(len(p) for p in pieces if isinstance(p, Cells))
    present = list(present) + [None] * (len(pieces) - len(present))
    if n <= _ROWS:
        return _join(pieces, present)
    parts = []
    for lo in range(0, n, _ROWS):
        sel = slice(lo, lo + _ROWS)
        parts.append(_join([Cells(p.words[sel], p.lens[sel]) if isinstance(p, Cells) else p for p in pieces],
                           [k[sel] if k is not None else None for k in present]))
    return b"".join(parts)


def _join(pieces: Sequence[Piece], present: list) -> bytes:
    n = next(len(p) for p in pieces if isinstance(p, Cells))
    lens = np.zeros((n, len(pieces)), np.int64)
    nwords = []
    for i, (p, keep) in enumerate(zip(pieces, present)):
        ln = p.lens if isinstance(p, Cells) else np.full(n, len(p), np.int64)
        if keep is not None:
            ln = np.where(keep, ln, 0)
        lens[:, i] = ln
        nwords.append(-(-int(ln.max()) // 8) if n else 0)
    ends = np.cumsum(lens.ravel()).reshape(n, len(pieces))
    starts = ends - lens
    total = int(ends[-1, -1]) if n else 0
    width = sum(nwords)
    pos = np.empty((n, width), np.int64)
    val = np.empty((n, width), np.uint64)
    c = 0
    for i, p in enumerate(pieces):
        for k in range(nwords[i]):
            pos[:, c] = starts[:, i] + 8 * k
            if isinstance(p, Cells):
                val[:, c] = p.words[:, k]
            else:
                val[:, c] = np.frombuffer(p[8 * k:8 * k + 8].ljust(8, b"\0"), np.uint64)[0]
            c += 1
    # every write covers 8 bytes from its piece's start; written in order, each byte ends up
    # with the piece it belongs to (what a write puts past its piece, a later one replaces)
    buf = np.zeros(total + 8 * max(nwords + [1]), np.uint8)  # a piece's words may pass the end
    view = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, offset=0, strides=(1,))
    view[pos.ravel()] = val.ravel()
    return buf[:total].tobytes()


def micro_cells(micros: np.ndarray) -> Cells:
    """Whole microseconds ``k`` (0 and up) as ``repr(k / 1e6)`` writes them: the clock's
    seconds since the solver started.  Below 1e-4 s and from 10**8 s, ``repr`` itself."""
    k = np.asarray(micros, np.int64)
    n = len(k)
    fine = (k >= 100) & (k < 10 ** 14)
    whole, frac = np.where(fine, k // 1_000_000, 0), k % 1_000_000
    tz = np.zeros(n, np.int64)  # trailing zeros of the six decimals (all six: "0" is shown)
    for step in (4, 2, 1):
        m = (frac % _P10[np.minimum(tz + step, 6)] == 0) & (tz + step <= 6)
        tz = np.where(m, tz + step, tz)
    shown = np.maximum(6 - tz, 1)
    width = np.searchsorted(_P10, whole, side="right").clip(1, 16)
    w0, w1 = _digits_words(whole, width)  # whole seconds below 10**8: one word
    six = (_lut8(frac) >> _U(16)) & ((_U(1) << (_U(8) * shown.astype(np.uint64))) - _U(1))
    tail = _U(ord(".")) | (six << _U(8))  # ".ddd", at most 7 bytes
    sh = _U(8) * width.astype(np.uint64)  # 8..64 bits
    w0 = w0 | np.where(sh < _U(64), tail << np.minimum(sh, _U(63)), _U(0))
    w1 = w1 | np.where(sh > _U(0), tail >> (_U(64) - np.maximum(sh, _U(1))), _U(0)) * (sh > _U(0))
    words = np.zeros((n, 4), np.uint64)
    words[:, 0], words[:, 1] = w0, w1
    cells = Cells(words, width + 1 + shown)
    rest = np.flatnonzero(~fine)
    if len(rest):
        _put_texts(cells, rest, [repr(x / 1e6).encode() for x in k[rest].tolist()])
    return cells
