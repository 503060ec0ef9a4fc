"""Recognising a training log's curve lines a whole chunk at a time, with numpy.

Nearly every line of a long Caffe log is one of five lines the solver prints again and again
(solver.cpp, sgd_solver.cpp)::

    Iteration 20 (5.01 iter/s, 3.992s/20 iters), loss = 1.2345     (older Caffe: "Iteration 20, loss = 1.2345")
        Train net output #1: loss = 1.2345 (* 1 = 1.2345 loss)
    Iteration 20, lr = 0.01
    Iteration 1000, Testing net (#0)
        Test net output #0: accuracy = 0.5

with the iteration line's variants: "... 6.01463s/100 iter), loss = 3.3266" (NVCaffe, DIGITS'
Caffe) and "Iteration 1 (0.635205 s), loss = 6.91663" (NVCaffe's first iterations), as the
real logs of ../shared/realworld/paired show them.

Reading them one by one in Python is what makes log parsers slow, so this module finds them
for a whole chunk at once: newline and ``]`` positions give each line's glog body, 8-byte
words read at those positions are compared with the fixed texts, and numbers are parsed for
all lines together: plain ones (up to 7 digits and a dot) inside one word with SWAR
arithmetic (three multiplications turn 8 ASCII digits into an integer), the rest digit column
by digit column.  The glog clock of iteration and test lines is read the same way.

Only lines that match a template exactly (glog prefix ``I`` + date, every literal, every
number well formed, nothing left over where the template ends the line) are taken here;
anything else is left to :class:`~caffemem.logparse.parser.LineParser`, which understands
every line.  So this is purely a fast path: it never changes what a line means.

Where the C extension is built (``_cscan.c``, by ``pip install``), :func:`scan_chunk` runs
the same scan there, line by line without the GIL: the same lines, values, texts and names
(tested against :func:`scan_numpy` on every log), about ten times faster.

Decimal values are parsed exactly as Python's ``float`` would: a mantissa below 2**53 and a
power of ten up to 10**22 are both exact doubles, so one multiplication or division rounds
correctly (Clinger's fast path).  Values outside it (and ``nan``/``inf``) go through
``float`` one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ITER, LR, TRAIN_OUT, TEST_OUT, TEST_START = 1, 2, 3, 4, 5

#: zero bytes the caller leaves after the chunk, so reads past its end stay inside the buffer
PAD = 64

# character classes of a number token
_TERM, _DIGIT, _DOT, _EXP, _SIGN, _WORD = 0, 1, 2, 3, 4, 5
_NUM_CLASS = np.zeros(256, np.uint8)
_NUM_CLASS[48:58] = _DIGIT
_NUM_CLASS[ord(".")] = _DOT
for _c in b"eE":
    _NUM_CLASS[_c] = _EXP
for _c in b"+-":
    _NUM_CLASS[_c] = _SIGN
for _c in b"naifNAIFty":  # nan, inf, infinity
    _NUM_CLASS[_c] = _WORD
_POW10 = np.array([10.0 ** k for k in range(23)])
_POW10_INT = np.array([10 ** k for k in range(9)], np.int64)
_EXACT = 2 ** 53


@dataclass
class ChunkScan:
    """The recognised lines of one chunk, in line order (index = line number in the chunk)."""

    ends: np.ndarray  # offset of every line's newline in the chunk
    lines: np.ndarray  # chunk line index of each recognised line
    kind: np.ndarray  # ITER, LR, TRAIN_OUT, TEST_OUT, TEST_START
    iteration: np.ndarray  # ITER, LR, TEST_START; -1 otherwise
    value: np.ndarray  # loss, lr or the output's value; NaN for TEST_START
    interval: np.ndarray  # ITER with a rate: seconds of the last display interval; NaN otherwise
    time: np.ndarray  # ITER, TEST_START: glog's clock in microseconds (see glog_time); -1 otherwise
    index: np.ndarray  # output number (#k) or test net number
    name: np.ndarray  # outputs: index into ``names``; -1 otherwise
    names: list[str]
    text: "Text" = None  # ``value`` as repr writes it, where the token is that text
    interval_text: "Text" = None  # the same for ``interval``
    #: chunk line indices of glog info lines that mean nothing (:data:`QUIET`)
    quiet: np.ndarray = None


_U = np.uint64
_BITS = _U(0x0102040810204080)  # bytes that are 0 or 1 -> one bit per byte (byte j -> bit j)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], np.uint64)
_ZEROS_LOW = np.array([int.from_bytes(b"0" * k, "little") for k in range(9)], np.uint64)
_TRAILING_ONES = np.array([(v ^ (v + 1)).bit_length() - 1 for v in range(256)], np.int64)
_ONES = np.array([bin(v).count("1") for v in range(256)], np.int64)
_SHIFT8 = np.arange(9, dtype=np.uint64) * _U(8)


def _words(a: np.ndarray) -> np.ndarray:
    """Every 8-byte little-endian word of the buffer, one per byte offset (a strided view)."""
    return np.ndarray((len(a) - 7,), dtype="<u8", buffer=a, offset=0, strides=(1,))


def _lit(text: bytes) -> list[tuple[int, int, int]]:
    """A literal as (offset, mask, value) 8-byte pieces."""
    out = []
    for off in range(0, len(text), 8):
        piece = text[off:off + 8]
        out.append((off, (1 << (8 * len(piece))) - 1, int.from_bytes(piece, "little")))
    return out


def _is(a: np.ndarray, w: np.ndarray, pos: np.ndarray, lit: list, first: np.ndarray = None) -> np.ndarray:
    """Whether the literal stands at each position (``first``: the words at ``pos``, if
    already read).  One-byte pieces are read as bytes, which is cheaper."""
    ok = None
    for off, mask, value in lit:
        if mask == 0xFF:
            hit = a[pos + off] == value
        else:
            word = first if off == 0 and first is not None else w[pos + off]
            hit = (word & _U(mask)) == _U(value) if mask != 2**64 - 1 else word == _U(value)
        ok = hit if ok is None else ok & hit
    return ok


def _flags(mask8: np.ndarray) -> np.ndarray:
    """An (M, 8) boolean matrix as one byte per row, bit j = column j."""
    return ((mask8.view(np.uint64).ravel() * _BITS) >> _U(56)).astype(np.int64)


def _digits8(z: np.ndarray) -> np.ndarray:
    """Eight ASCII digits per word (first character most significant) as integers, by the
    SWAR trick: pairs, then quads, then the whole word, three multiplications in all."""
    v = z - _U(0x3030303030303030)
    v = ((v & _U(0x0F0F0F0F0F0F0F0F)) * _U(2561)) >> _U(8)
    v = ((v & _U(0x00FF00FF00FF00FF)) * _U(6553601)) >> _U(16)
    v = ((v & _U(0x0000FFFF0000FFFF)) * _U(42949672960001)) >> _U(32)
    return v.astype(np.int64)


def _int_run(x: np.ndarray):
    """The leading digits of each word: (their value, their count 0..8)."""
    n = _TRAILING_ONES[_flags((x.view(np.uint8).reshape(-1, 8) - 48) < 10)]
    k = np.maximum(n, 1).astype(np.uint64)
    z = ((x & _MASKS[k]) << _SHIFT8[8 - k]) | _ZEROS_LOW[8 - k]
    return np.where(n > 0, _digits8(z), 0), n


def _int_token(a: np.ndarray, w: np.ndarray, pos: np.ndarray):
    """Unsigned decimal integers of 1 to 15 digits at ``pos``: (values, end offsets, well
    formed)."""
    value, n = _int_run(w[pos])
    ok = (n > 0) & (n < 8)
    long = np.flatnonzero(n == 8)
    if len(long):  # eight digits and more: the next word continues the number
        v2, n2 = _int_run(w[pos[long] + 8])
        value[long] = value[long] * _POW10_INT[n2] + v2
        n[long] += n2
        ok[long] = n2 < 8
    return value, pos + n, ok


def _float_token(a: np.ndarray, w: np.ndarray, pos: np.ndarray, text: bool = False, make: bool = True):
    """Decimal numbers at ``pos``: (values, end offsets, well formed), and with ``text`` their
    :class:`Text` too (None unless ``make``).  A token ends at the first character no number has.  Plain ones
    (``0.01``, ``1.2345``: at most 7 digits and a dot) are read word-wise here; the others by
    :func:`_float_general`."""
    x = w[pos]
    xb = x.view(np.uint8).reshape(-1, 8)
    digit = (xb - 48) < 10
    dot = xb == 46
    n = _TRAILING_ONES[_flags(digit | dot)]  # length of the digits-and-dots run
    dots = _flags(dot)
    runmask = (1 << n) - 1
    ndots = _ONES[dots & runmask]
    ends = a[pos + n]
    plain = (n < 8) & (ndots <= 1) & (n > ndots) & (_NUM_CLASS[ends] == _TERM)
    p = np.where(ndots == 1, _TRAILING_ONES[~dots & 255], n)  # dot position (n if none)
    p = np.minimum(p, 7).astype(np.uint64)
    L = np.where(plain, n - ndots, 1).astype(np.uint64)
    lo = x & _MASKS[p]
    hi = (x >> _SHIFT8[np.minimum(p + _U(1), _U(7))]) << _SHIFT8[p]
    y = (lo | hi) & _MASKS[L]
    z = (y << _SHIFT8[8 - L]) | _ZEROS_LOW[8 - L]
    frac = np.where(ndots == 1, n - 1 - p.astype(np.int64), 0)
    value = _digits8(z) / _POW10[frac]
    end = pos + n
    ok = plain.copy()
    text_made = text and make
    tx = _plain_text(x, n, p.astype(np.int64), ndots == 1, value, plain) if text_made else None
    rest = np.flatnonzero(~plain)
    if len(rest):
        v2, e2, ok2, t2 = _float_general(w, pos[rest], text_made)
        value[rest], end[rest], ok[rest] = v2, e2, ok2
        if text_made:
            tx.put(rest, t2)
    return (value, end, ok, tx) if text else (value, end, ok)


@dataclass
class Text:
    """Each number's text as Python's ``repr`` writes its value (what parse_log.py's CSV
    holds), taken from the log's own token where the two agree or differ only by a "0"
    (Caffe prints ``3`` and ``.5`` where Python writes ``3.0`` and ``0.5``): ``lo`` and ``hi``
    are its bytes as two little-endian words, ``size`` its length, 0 where the token is not
    that text (``0.50``, ``1e+06``, ``-nan``...: the writers format the value instead)."""

    lo: np.ndarray
    hi: np.ndarray
    size: np.ndarray

    @classmethod
    def empty(cls, m: int) -> "Text":
        return cls(np.zeros(m, np.uint64), np.zeros(m, np.uint64), np.zeros(m, np.int8))

    def put(self, rows, other: "Text") -> None:
        self.lo[rows], self.hi[rows], self.size[rows] = other.lo, other.hi, other.size

    def take(self, rows) -> "Text":
        return Text(self.lo[rows], self.hi[rows], self.size[rows])

    @classmethod
    def concat(cls, texts: list) -> "Text":
        return cls(*(np.concatenate([getattr(t, f) for t in texts]) for f in ("lo", "hi", "size")))

    def words(self) -> np.ndarray:
        """(M, 2) uint64: the text's bytes, zeros after."""
        return np.stack([self.lo, self.hi], axis=1)


_CH_ZERO, _CH_DOT = _U(ord("0")), _U(ord("."))


def _plain_text(x, n, p, has_dot, value, plain) -> Text:
    """:class:`Text` of plain tokens (``x``: their first word, ``n`` characters, the dot at
    ``p``).  ``repr`` writes a plain decimal without leading or trailing zeros (but ``0.5``,
    ``5.0``), with a point, and values below 1e-4 in exponent form.  Caffe's tokens are
    nearly all that already; the few that want a "0" or ".0" added are mended apart."""
    nu = n.astype(np.uint64)
    last = (x >> (_U(8) * (nu - _U(1)))) & _U(255)
    lead_zero = ((x & _U(255)) == _CH_ZERO) & (n > 1) & ~(has_dot & (p == 1))
    good = plain & ~lead_zero & ~(has_dot & (last == _CH_ZERO) & (p != n - 2)) & ~((value > 0) & (value < 1e-4))
    lo = np.where(good, x & _MASKS[np.minimum(n, 8)], _U(0))
    hi = np.zeros(len(n), np.uint64)
    size = np.where(good, n, 0)
    mend = np.flatnonzero(good & ~(has_dot & (p > 0) & (p < n - 1)))  # "3", ".5", "5."
    if len(mend):
        b, k, dot, at = lo[mend], nu[mend], has_dot[mend], p[mend]
        sh = _U(8) * k
        lo[mend] = np.where(~dot, b | (_CH_DOT << sh) | (_CH_ZERO << (sh + _U(8))),
                            np.where(at == 0, (b << _U(8)) | _CH_ZERO, b | (_CH_ZERO << sh)))
        hi[mend] = np.where(~dot & (k == _U(7)), _CH_ZERO, _U(0))
        size[mend] = np.where(~dot, n[mend] + 2, n[mend] + 1)
    return Text(lo, hi, size.astype(np.int8))


def _bytes16(w: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The 16 bytes at each position, as an (M, 16) uint8 matrix."""
    m = np.empty((len(pos), 2), np.uint64)
    m[:, 0] = w[pos]
    m[:, 1] = w[pos + 8]
    return m.view(np.uint8)


def _float_general(w: np.ndarray, pos: np.ndarray, text: bool = False):
    """Any decimal token up to 15 characters (sign, exponent, nan, inf), column by column:
    (values, end offsets, well formed, :class:`Text` or None)."""
    t = _bytes16(w, pos)
    cls = _NUM_CLASS[t]
    n = np.argmin(cls != _TERM, axis=1)  # token length; 0 when 16 number characters in a row
    m = len(pos)
    ok = n > 0
    value = np.full(m, np.nan)
    if not m:
        return value, pos + n, ok, Text.empty(0) if text else None
    width = int(n.max())
    cols = np.arange(16)
    inside = cols[None, :] < n[:, None]
    neg = t[:, 0] == ord("-")
    start = (cls[:, 0] == _SIGN).astype(np.int64)
    is_exp = (cls == _EXP) & inside
    has_exp = is_exp.any(1)
    epos = np.where(has_exp, np.argmax(is_exp, axis=1), n)
    in_mant = inside & (cols[None, :] < epos[:, None]) & (cols[None, :] >= start[:, None])
    mant_cls = np.where(in_mant, cls, _DIGIT)
    dots = ((mant_cls == _DOT)).sum(1)
    mant_digits = (in_mant & (cls == _DIGIT)).sum(1)
    simple = (((mant_cls == _DIGIT) | (mant_cls == _DOT)).all(1) & (dots <= 1) & (mant_digits > 0)
              & (mant_digits <= 17) & ok)
    dpos = np.where(dots > 0, np.argmax(mant_cls == _DOT, axis=1), epos)
    mant = np.zeros(m, np.int64)
    frac = np.zeros(m, np.int64)
    for j in range(width):
        d = t[:, j].astype(np.int64) - 48
        take = in_mant[:, j] & (cls[:, j] == _DIGIT)
        mant = np.where(take, mant * 10 + d, mant)
        frac += take & (j > dpos)
    exp = np.zeros(m, np.int64)
    rows = np.flatnonzero(has_exp & simple)
    if len(rows):  # the exponent: "e", an optional sign, 1 to 3 digits ending the token
        te, end = t[rows], n[rows]
        e0 = epos[rows] + 1
        first = te[np.arange(len(rows)), np.minimum(e0, 15)]
        signed = _NUM_CLASS[first] == _SIGN
        d0 = e0 + signed
        e_ok = (end - d0 >= 1) & (end - d0 <= 3)
        ev = np.zeros(len(rows), np.int64)
        for j in range(width):
            take = (j >= d0) & (j < end)
            digit = te[:, j].astype(np.int64) - 48
            e_ok &= ~take | ((digit >= 0) & (digit <= 9))
            ev = np.where(take, ev * 10 + digit, ev)
        exp[rows] = np.where(signed & (first == ord("-")), -ev, ev)
        simple[rows[~e_ok]] = False
    k = exp - frac
    fast = simple & (mant < _EXACT) & (k >= -22) & (k <= 22)
    kk = np.clip(np.abs(k), 0, 22)
    scale = _POW10[kk]
    mf = mant.astype(np.float64)
    v = np.where(k >= 0, mf * scale, mf / scale)
    value = np.where(fast, np.where(neg, -v, v), value)
    slow = np.flatnonzero(ok & ~fast)
    for i in slow:  # nan, inf, long mantissas, large exponents: float() itself
        token = t[i, :n[i]].tobytes()
        try:
            value[i] = float(token)
        except ValueError:
            ok[i] = False
    if not text:
        return value, pos + n, ok, None
    # the token is repr's text: a signed plain decimal (as _plain_text says), or "d.ddde-XX"
    # for exponents repr writes that way (below -4, from 16), never a "+" sign or "E"
    rows = np.arange(m)
    unsigned = n - start
    first = t[rows, start]
    mant_end = np.where(has_exp, epos, n)
    lead_zero = (first == 48) & (mant_end - start > 1) & ~((dots == 1) & (dpos == start + 1))
    last_mant = t[rows, np.maximum(mant_end - 1, 0)]
    trail_zero = (dots == 1) & (last_mant == 48) & (dpos != mant_end - 2)
    good = fast & (t[:, 0] != ord("+")) & ~lead_zero & ~trail_zero & (unsigned > 0)
    good &= (dots == 0) | ((dpos > start) & (dpos < mant_end - 1))
    exp_digits = n - epos - 2
    e_sign = t[rows, np.minimum(epos + 1, 15)]
    shown = np.where(has_exp, exp, 0)  # the exponent as written, mantissa d.ddd
    sci_ok = (has_exp & (t[rows, np.minimum(epos, 15)] == ord("e")) & (_NUM_CLASS[e_sign] == _SIGN)
              & ((exp_digits == 2) | ((exp_digits == 3) & (t[rows, np.minimum(epos + 2, 15)] != 48)))
              & (first != 48) & (((dots == 0) & (epos - start == 1)) | ((dots == 1) & (dpos == start + 1)
                                                                          & (last_mant != 48)))
              & ((shown < -4) | (shown >= 16)))
    a = np.abs(value)
    pos_ok = ~has_exp & ((a >= 1e-4) | (a == 0)) & (a < 1e16) & (n + 2 * (dots == 0) <= 16)
    good &= np.where(has_exp, sci_ok, pos_ok)
    cols = np.arange(16)
    body = np.where(cols[None, :] < n[:, None], t, 0).astype(np.uint8)
    append = good & ~has_exp & (dots == 0)  # an integer: repr adds ".0"
    r = np.flatnonzero(append)
    body[r, n[r]] = ord(".")
    body[r, np.minimum(n[r] + 1, 15)] = ord("0")
    words = np.ascontiguousarray(body).view(np.uint64).reshape(m, 2)
    size = np.where(good, n + 2 * append, 0).astype(np.int8)
    return value, pos + n, ok, Text(np.where(good, words[:, 0], _U(0)), np.where(good, words[:, 1], _U(0)), size)


_ITERATION = _lit(b"Iteration ")
_LOSS = _lit(b", loss = ")
_LR = _lit(b", lr = ")
_RATE = _lit(b" (")
_ITERS_PER_S = _lit(b" iter/s, ")
_S_SLASH = _lit(b"s/")
_ITERS_LOSS = _lit(b" iters), loss = ")
_ITER_LOSS = _lit(b" iter), loss = ")
_S_LOSS = _lit(b" s), loss = ")
_TESTING = _lit(b", Testing net (#")
_TRAIN = _lit(b"    Train net output #")
_TEST = _lit(b"    Test net output #")
_EQUALS = _lit(b" = ")


_DAYS_BEFORE_MONTH = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365], np.int64)


def glog_time(date: str, clock: str) -> int:
    """glog's timestamp (``1122`` or ``20261122``, ``10:00:00.123456``) in microseconds since
    an epoch of its own: the proleptic Gregorian day when the year is printed, else the day
    of a non-leap year (the summary turns these into seconds since the solver started).
    -1 when it does not read as a date and a clock."""
    try:
        hh, mm, ss = clock.split(":")
        sec, _, frac = ss.partition(".")
        if not (1 <= len(frac) <= 6 and (hh + mm + sec + frac + date).isdigit()):
            return -1
        if len(date) == 8:
            year, month, day = int(date[:4]), int(date[4:6]), int(date[6:])
        elif len(date) == 4:
            year, month, day = 0, int(date[:2]), int(date[2:])
        else:
            return -1
        if not (1 <= month <= 12 and 1 <= day <= 31 and len(hh) == len(mm) == len(sec) == 2
                and frac.isdigit()):
            return -1
        days = _DAYS_BEFORE_MONTH[month] + day
        if year:
            y = year - 1
            leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
            days += 365 * y + y // 4 - y // 100 + y // 400 + (month > 2 and leap)
        micro = int(frac.ljust(6, "0"))
        return ((int(days) * 24 + int(hh)) * 60 + int(mm)) * 60_000_000 + int(sec) * 1_000_000 + micro
    except ValueError:
        return -1


def _two(a: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-digit numbers at ``pos`` and whether both characters are digits."""
    hi, lo = a[pos].astype(np.int64) - 48, a[pos + 1].astype(np.int64) - 48
    return hi * 10 + lo, (hi >= 0) & (hi <= 9) & (lo >= 0) & (lo <= 9)


def _clock(a: np.ndarray, w: np.ndarray, st: np.ndarray) -> np.ndarray:
    """:func:`glog_time` of the glog lines starting at ``st``, all at once (-1 where the
    prefix does not read as a date and a clock)."""
    long_date = a[st + 5] != 32  # "I20261122 ..." rather than "I1122 ..."
    c = st + np.where(long_date, 10, 6)  # the clock: HH:MM:SS.uuuuuu
    month, ok1 = _two(a, c - 5)
    day, ok2 = _two(a, c - 3)
    hh, ok3 = _two(a, c)
    mm, ok4 = _two(a, c + 3)
    ss, ok5 = _two(a, c + 6)
    micro, nmicro = _int_run(w[c + 9])
    ok = (ok1 & ok2 & ok3 & ok4 & ok5 & (a[c + 2] == 58) & (a[c + 5] == 58) & (a[c + 8] == 46)
          & (nmicro > 0) & (nmicro <= 6) & (a[c + 9 + nmicro] == 32)
          & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31))
    micro = micro * _POW10_INT[np.clip(6 - nmicro, 0, 6)]
    days = _DAYS_BEFORE_MONTH[np.clip(month, 0, 13)] + day
    if long_date.any():
        year = np.zeros(len(st), np.int64)
        for k in range(4):
            digit = a[st + 1 + k].astype(np.int64) - 48
            ok &= ~long_date | ((digit >= 0) & (digit <= 9))
            year = year * 10 + digit
        y = year - 1
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        days = np.where(long_date, days + 365 * y + y // 4 - y // 100 + y // 400
                        + ((month > 2) & leap), days)
    t = ((days * 24 + hh) * 60 + mm) * 60_000_000 + ss * 1_000_000 + micro
    return np.where(ok, t, -1)


def _name_ids(nw: np.ndarray, key: np.ndarray, names: list[str]):
    """Ids (into ``names``, extended as needed) of the output names whose masked words are
    the rows of ``nw`` (M, 4).  Caffe prints the same name for the same output number, so
    the number is tried as the key first and every row checked against it byte for byte;
    if that does not hold, the names are told apart by sorting."""
    if key.max() < 4096:
        ref = np.zeros((int(key.max()) + 1, 4), np.uint64)
        ref[key] = nw  # any row of each key serves as its reference
        if (ref[key] == nw).all():
            ids = np.full(len(ref), -1, np.int64)
            for k in np.flatnonzero(np.bincount(key)).tolist():
                ids[k] = _name_id(ref[k], names)
            return ids[key]
    uniq, inverse = np.unique(np.ascontiguousarray(nw).view(np.dtype((np.void, 32))).ravel(),
                              return_inverse=True)
    ids = np.array([_name_id(np.frombuffer(bytes(u), np.uint64), names) for u in uniq], np.int64)
    return ids[inverse.ravel()]


def _name_id(words: np.ndarray, names: list[str]) -> int:
    text = words.tobytes().rstrip(b"\x00").decode("utf-8", "replace")
    if text not in names:
        names.append(text)
    return names.index(text)


@dataclass
class _Lines:
    """Per candidate line (glog info lines, in order): where its body starts and ends, and
    what the templates found in it (kind 0: none)."""

    line: np.ndarray  # chunk line index
    body: np.ndarray  # offset of the text after "] "
    end: np.ndarray  # offset of the newline
    kind: np.ndarray = None
    iteration: np.ndarray = None
    value: np.ndarray = None
    interval: np.ndarray = None
    index: np.ndarray = None
    name: np.ndarray = None
    text: Text = None
    interval_text: Text = None
    texts: bool = True  # keep the numbers' texts (the CSV and JSON writers want them)

    def __post_init__(self) -> None:
        m = len(self.line)
        if self.texts:
            self.text, self.interval_text = Text.empty(m), Text.empty(m)
        self.kind = np.zeros(m, np.uint8)
        self.iteration = np.full(m, -1, np.int64)
        self.value = np.full(m, np.nan)
        self.interval = np.full(m, np.nan)
        self.index = np.full(m, -1, np.int64)
        self.name = np.full(m, -1, np.int64)


def _load_c():
    """The C scanner (``_cscan.c``, built by ``pip install`` where a compiler is at hand), or
    None: then the numpy scanner below does the same work."""
    try:
        from . import _cscan
    except ImportError:
        return None
    return _cscan if getattr(_cscan, "PAD", None) == PAD else None


#: the compiled scanner, or None (tests swap it for one they build, or for None)
cscan = _load_c()


def engine() -> str:
    """Which scanner :func:`scan_chunk` runs: "c" or "numpy"."""
    return "c" if cscan is not None else "numpy"


def scan_chunk(a: np.ndarray, size: int, nul: bool = True, texts: bool = True) -> ChunkScan:
    """Recognise the curve lines of ``a[:size]``, which ends with a newline and is followed by
    at least :data:`PAD` zero bytes.  ``nul``: the chunk may hold NUL bytes, whose lines are
    junk, not curve lines (False lets a caller that knows skip looking); ``texts``: keep
    the numbers' :class:`Text` (None in the result without).  The C scanner runs when it is
    built (the same lines, values and texts: tested on every log), else numpy's."""
    if cscan is not None:
        return _from_c(cscan.scan(a, size, nul, texts), texts)
    return scan_numpy(a, size, nul, texts)


def _from_c(got: tuple, texts: bool) -> ChunkScan:
    """:class:`ChunkScan` of the C scanner's columns (bytearrays, in its order)."""
    (ends, lines, kind, iteration, value, interval, time, index, name, lo, hi, size,
     ilo, ihi, isize, quiet, raw_names) = got
    i8 = np.int64
    name = np.frombuffer(name, i8)
    names = [n.decode("utf-8", "replace") for n in raw_names]
    if len(set(names)) < len(names):  # byte strings that decode alike: one name, as numpy's
        decoded, names = names, list(dict.fromkeys(names))
        remap = np.array([names.index(n) for n in decoded], i8)
        name = np.where(name >= 0, remap[np.maximum(name, 0)], -1)
    return ChunkScan(np.frombuffer(ends, i8), np.frombuffer(lines, i8), np.frombuffer(kind, np.uint8),
                     np.frombuffer(iteration, i8), np.frombuffer(value, np.float64),
                     np.frombuffer(interval, np.float64), np.frombuffer(time, i8), np.frombuffer(index, i8),
                     name, names,
                     Text(np.frombuffer(lo, np.uint64), np.frombuffer(hi, np.uint64), np.frombuffer(size, np.int8))
                     if texts else None,
                     Text(np.frombuffer(ilo, np.uint64), np.frombuffer(ihi, np.uint64), np.frombuffer(isize, np.int8))
                     if texts else None,
                     np.frombuffer(quiet, i8))


def scan_numpy(a: np.ndarray, size: int, nul: bool = True, texts: bool = True) -> ChunkScan:
    """:func:`scan_chunk` with numpy (the reference the C scanner is tested against)."""
    body = a[:size]
    marks = np.flatnonzero((body == 10) | (body == 93))  # line ends and "]", in one pass
    newline = a[marks] == 10
    ends, brackets = marks[newline], marks[~newline]
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    w = _words(a)
    c = _info_lines(a, w, body, ends, starts, nul, brackets, texts)
    first = w[c.body]  # the body's first 8 bytes, for every template
    _iteration_lines(a, w, c, first)
    names: list[str] = []
    _output_lines(a, w, c, first, names)
    quiet = c.line[_quiet_lines(a, w, c, first)]
    keep = np.flatnonzero(c.kind)
    time = np.full(len(keep), -1, np.int64)
    timed = np.flatnonzero((c.kind[keep] == ITER) | (c.kind[keep] == TEST_START))
    if len(timed):
        time[timed] = _clock(a, w, starts[c.line[keep[timed]]])
    return ChunkScan(ends, c.line[keep], c.kind[keep], c.iteration[keep], c.value[keep],
                     c.interval[keep], time, c.index[keep], c.name[keep], names,
                     c.text.take(keep) if texts else None, c.interval_text.take(keep) if texts else None,
                     quiet)


def _all_digits(x: np.ndarray, mask: int) -> np.ndarray:
    """Whether the bytes of ``mask`` in each word are all ASCII digits (a carry out of a
    byte only happens from a byte that is no digit, so the answer stands)."""
    hi, thirty = _U(0xF0F0F0F0F0F0F0F0 & mask), _U(0x3030303030303030 & mask)
    return ((x & hi) == thirty) & (((x + _U(0x0606060606060606 & mask)) & hi) == thirty)


def _info_lines(a, w, body, ends, starts, nul: bool, brackets, texts: bool = True) -> _Lines:
    """The lines with glog's info prefix: "I", 4 (or 8) date digits and a space, ..., then
    the line's first "] " after a digit (no NUL byte anywhere in the line)."""
    info = a[starts] == 73
    if nul:  # a line holding a NUL byte is binary junk
        zeros = np.flatnonzero(body == 0)
        if len(zeros):
            info[np.searchsorted(ends, zeros)] = False
    cand = np.flatnonzero(info)
    st = starts[cand]
    date = w[st + 1]
    cand = cand[_all_digits(date, 0xFFFFFFFF) & ((a[st + 5] == 32)
                                                 | (_all_digits(date, 2**64 - 1) & (a[st + 9] == 32)))]
    brackets = np.append(brackets, len(body))
    if len(brackets) == len(ends) + 1 and len(cand) == len(ends) and (brackets[:-1] < ends).all() \
            and (brackets[1:-1] > ends[:-1]).all():
        br = brackets[:-1]  # one "]" on every line: the k-th is line k's
    else:
        br = brackets[np.searchsorted(brackets, starts[cand])]
    line_end = ends[cand]
    good = (br < line_end) & (a[br + 1] == 32) & ((a[br - 1] - 48) < 10)
    return _Lines(cand[good], br[good] + 2, line_end[good], texts=texts)


def _iteration_lines(a, w, c: _Lines, first: np.ndarray) -> None:
    """ "Iteration N, loss = V", "Iteration N (R iter/s, Ss/K iters), loss = V",
    "Iteration N, lr = V" and "Iteration N, Testing net (#K)", each ending its line."""
    rows = np.flatnonzero(_is(a, w, c.body, _ITERATION[:1], first) & (a[c.body + 8] == ord("n"))
                          & (a[c.body + 9] == 32))
    if not len(rows):
        return
    it, p, ok = _int_token(a, w, c.body[rows] + 10)
    end = c.end[rows]
    after = w[p]  # what follows the number tells the four apart

    def found(sel, fine, kind, value=None, interval=None, index=None, text=None, interval_text=None):
        r = rows[sel[fine]]
        c.kind[r], c.iteration[r] = kind, it[sel][fine]
        if value is not None:
            c.value[r] = value[fine]
            if c.texts:
                c.text.put(r, text.take(fine))
        if interval is not None:
            c.interval[r] = interval[fine]
            if c.texts:
                c.interval_text.put(r, interval_text.take(fine))
        if index is not None:
            c.index[r] = index[fine]

    for lit, width, kind in ((_LOSS, 9, ITER), (_LR, 7, LR)):
        sel = np.flatnonzero(ok & _is(a, w, p, lit, after))
        if len(sel):
            v, e, vok, tx = _float_token(a, w, p[sel] + width, True, c.texts)
            found(sel, vok & (e == end[sel]), kind, v, text=tx)
    sel = np.flatnonzero(ok & _is(a, w, p, _RATE, after))
    if len(sel):
        first_num, e1, ok1, first_tx = _float_token(a, w, p[sel] + 2, True, c.texts)
        rate = ok1 & _is(a, w, e1, _ITERS_PER_S)
        secs, e2, ok2, secs_tx = _float_token(a, w, e1 + 9, True, c.texts)
        ok2 &= rate & _is(a, w, e2, _S_SLASH)
        _, e3, ok3 = _int_token(a, w, e2 + 2)
        ok3 &= ok2
        plural = ok3 & _is(a, w, e3, _ITERS_LOSS)
        singular = ok3 & ~plural & _is(a, w, e3, _ITER_LOSS)  # NVCaffe, DIGITS' Caffe: " iter)"
        # NVCaffe's first iterations: "Iteration 1 (0.635205 s), loss = 6.91663"
        lapse = ok1 & ~rate & _is(a, w, e1, _S_LOSS)
        at = np.where(plural, e3 + 16, np.where(singular, e3 + 15, e1 + 12))
        v, e4, ok4, tx = _float_token(a, w, at, True, c.texts)
        if c.texts:
            secs_tx.put(np.flatnonzero(lapse), first_tx.take(np.flatnonzero(lapse)))
        found(sel, (plural | singular | lapse) & ok4 & (e4 == end[sel]), ITER, v,
              np.where(lapse, first_num, secs), text=tx, interval_text=secs_tx)
    sel = np.flatnonzero(ok & _is(a, w, p, _TESTING, after))
    if len(sel):
        net, e, nok = _int_token(a, w, p[sel] + 16)
        found(sel, nok & (a[e] == ord(")")) & (e + 1 == end[sel]), TEST_START, index=net)


#: the data threads' chatter between the solver's lines (data_layer.cpp, blocking_queue.cpp;
#: NVCaffe's data_reader.cpp), which the line parser turns into no event: an info line whose
#: whole body is one of these is known to mean nothing without parsing it
QUIET = (b"Waiting for data", b"Data layer prefetch queue empty", b"Restarting data prefetching from start.",
         b"Restarting data pre-fetching")
_QUIET = [(_lit(text), len(text)) for text in QUIET]


def _quiet_lines(a, w, c: _Lines, first: np.ndarray) -> np.ndarray:
    """Indices (into ``c``) of the lines no template took whose body is one of :data:`QUIET`."""
    size = c.end - c.body
    hit = np.zeros(len(size), bool)
    for lit, k in _QUIET:
        rows = np.flatnonzero((size == k) & (c.kind == 0))
        if len(rows):
            hit[rows[_is(a, w, c.body[rows], lit, first[rows])]] = True
    return np.flatnonzero(hit)


def _output_lines(a, w, c: _Lines, first: np.ndarray, names: list[str]) -> None:
    """ "    Train net output #K: NAME = V" and the Test one (anything may follow V after a
    space: Caffe adds "(* weight = weighted loss)")."""
    for lit, width, kind in ((_TRAIN, 22, TRAIN_OUT), (_TEST, 21, TEST_OUT)):
        rows = np.flatnonzero(_is(a, w, c.body, lit[:1], first))
        if not len(rows):
            continue
        rows = rows[_is(a, w, c.body[rows], lit[1:])]
        idx, e, ok = _int_token(a, w, c.body[rows] + width)
        ok &= (a[e] == ord(":")) & (a[e + 1] == 32)
        ns = e + 2
        nw, nlen = _name_words(w, ns)
        ok &= nlen > 0
        v, ve, vok, tx = _float_token(a, w, ns + nlen + 3, True, c.texts)
        ok &= _is(a, w, ns + nlen, _EQUALS) & vok & ((a[ve] == 32) | (a[ve] == 10))
        fine = np.flatnonzero(ok)
        if not len(fine):
            continue
        nw, nlen = nw[fine], nlen[fine]
        for j in range(4):  # keep the name's bytes only
            nw[:, j] &= _MASKS[np.clip(nlen - 8 * j, 0, 8)]
        r = rows[fine]
        c.kind[r], c.value[r], c.index[r] = kind, v[fine], idx[fine]
        if c.texts:
            c.text.put(r, tx.take(fine))
        c.name[r] = _name_ids(nw, idx[fine], names)


def _name_words(w: np.ndarray, ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The output names starting at ``ns`` as 4 words each (up to 31 bytes) and their lengths
    (0: no end within 32 bytes); the last two words are read only for long names."""
    nw = np.zeros((len(ns), 4), np.uint64)
    nw[:, 0] = w[ns]
    nw[:, 1] = w[ns + 8]
    nb = nw.view(np.uint8)
    stop = (nb[:, :16] == 32) | (nb[:, :16] < 14)  # space, tab, CR, LF, NUL
    longer = np.flatnonzero(~stop.any(1))
    nlen = np.argmax(stop, axis=1)
    if len(longer):
        nw[longer, 2] = w[ns[longer] + 16]
        nw[longer, 3] = w[ns[longer] + 24]
        lb = nw[longer].view(np.uint8)
        lstop = (lb == 32) | (lb < 14)
        nlen[longer] = np.where(lstop.any(1), np.argmax(lstop, axis=1), 0)
    return nw, nlen
