"""A log file as chunks of whole lines, in flat memory.

A log saved as UTF-16 (PowerShell's ``>`` writes it so, with a byte-order mark) is decoded
to UTF-8 as it is read, by its mark; a UTF-8 mark is dropped.  The file is read in binary,
``chunk`` bytes at a time into one reused buffer; each chunk
ends at its last line end and the cut line is carried to the next.  Line ends are LF, CRLF
or CR (the last two are normalized to LF in a copy); a file whose last line has no end was
cut, and gets one; a "line" longer than :data:`MAX_LINE` with no end in sight is binary junk
and is skipped as one line.  Every chunk is followed by :data:`~.fastscan.PAD` zero bytes,
which the vectorized scanner reads past the end.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from .fastscan import PAD

CHUNK = 1 << 22
#: a "line" longer than this (binary junk without newlines) is dropped as one junk line
MAX_LINE = 1 << 24


@dataclass
class Chunk:
    """Whole lines: ``data[:size]`` (a view of the reader's buffer, valid until the next
    chunk is read), ``junk``: over-long junk lines skipped just before them, and ``nul``:
    whether a NUL byte is among them (such lines are binary junk)."""

    data: np.ndarray
    size: int
    junk: int = 0
    nul: bool = True


class _Utf8From16:
    """A UTF-16 file read as UTF-8 bytes (``readinto`` only), in flat memory."""

    def __init__(self, f: BinaryIO, encoding: str) -> None:
        self.text = codecs.getreader(encoding)(f, errors="replace")
        self.left = b""

    def readinto(self, view) -> int:
        want = len(view)
        data = self.left
        while len(data) < want:
            more = self.text.read(max(want // 2, 4096))
            if not more:
                break
            data += more.encode("utf-8", "surrogatepass")
        got, self.left = data[:want], data[want:]
        view[:len(got)] = got
        return len(got)


class _Rest:
    """The bytes already read from the head of a file, then the file."""

    def __init__(self, head: bytes, f: BinaryIO) -> None:
        self.head, self.f = head, f

    def readinto(self, view) -> int:
        if self.head:
            k = min(len(view), len(self.head))
            view[:k] = self.head[:k]
            self.head = self.head[k:]
            return k
        return self.f.readinto(view)

    def read(self, size: int = -1) -> bytes:
        if self.head:
            k = len(self.head) if size < 0 else min(size, len(self.head))
            got, self.head = self.head[:k], self.head[k:]
            return got
        return self.f.read(size)


def decoded(f: BinaryIO):
    """The file as UTF-8 bytes: UTF-16 decoded by its byte-order mark, a UTF-8 mark dropped."""
    head = f.read(3) or b""
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return _Utf8From16(_Rest(head[2:], f), "utf-16-le" if head[:2] == codecs.BOM_UTF16_LE else "utf-16-be")
    return _Rest(head[3:] if head == codecs.BOM_UTF8 else head, f)


def read_chunks(f: BinaryIO, stop, chunk: int = 0, ring: int = 1) -> Iterator[Chunk]:
    """Chunks of the file, in order, updating ``stop`` (bytes read, cut last line, junk).
    Chunks are read into ``ring`` buffers in turn: a chunk's data stays valid until ``ring``
    more chunks have been read (scanning threads hold a few at a time, without copies)."""
    chunk = chunk or CHUNK
    f = decoded(f)
    bufs = [bytearray(chunk + (1 << 16) + PAD) for _ in range(max(ring, 1))]
    k = 0
    buf = bufs[0]
    filled = 0  # bytes of a cut line carried to the front of buf
    skipping = False  # inside an over-long junk line
    while True:
        if len(buf) < filled + chunk + PAD:  # a long cut line: a bigger buffer (the old
            grown = bytearray(2 * filled + chunk + PAD)  # one may still be viewed)
            grown[:filled] = buf[:filled]
            buf = bufs[k] = grown
        got = f.readinto(memoryview(buf)[filled:filled + chunk])
        end = filled + (got or 0)
        if not got:
            if not filled:
                return
            if buf[end - 1] != 13:  # the last line has no line end: the file was cut
                buf[end:end + 1] = b"\n"
                end += 1
                stop.cut_last_line = True
                stop.bytes -= 1
        cut = buf.rfind(b"\n", 0, end)
        if cut < 0:  # old Mac line ends; a CR last in the buffer may start a CRLF: not yet
            cut = buf.rfind(b"\r", 0, end if not got else end - 1)
        if cut < 0:
            if end > MAX_LINE:  # no line end in sight: binary junk
                stop.bytes += end
                if not skipping:
                    stop.junk_lines += 1
                    yield Chunk(np.zeros(PAD, np.uint8), 0, junk=1)
                skipping, filled = True, 0
            else:
                filled = end
            continue
        size = cut + 1
        stop.bytes += size
        tail = bytes(buf[size:end])  # the cut line, carried to the next read
        lo = 0
        if skipping:  # the rest of an over-long junk line
            lo = buf.find(b"\n", 0, size) + 1
            skipping = False
        nul = buf.find(b"\x00", lo, size) >= 0
        if buf.find(b"\r", lo, size) >= 0:  # CRLF or CR line ends: a normalized copy
            data = bytes(buf[lo:size]).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            arr, n = np.frombuffer(data + bytes(PAD), np.uint8), len(data)
        else:  # the common case reads the buffer in place
            if lo:
                buf[:size - lo] = buf[lo:size]
            n = size - lo
            buf[n:n + PAD] = bytes(PAD)
            arr = np.frombuffer(buf, np.uint8)
        if n:
            yield Chunk(arr, n, nul=nul)
        del arr
        k = (k + 1) % len(bufs)
        buf = bufs[k]
        if len(buf) < len(tail) + chunk + PAD:
            buf = bufs[k] = bytearray(2 * len(tail) + chunk + PAD)
        buf[:len(tail)] = tail
        filled = len(tail)
