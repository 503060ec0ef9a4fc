"""Reading a log as chunks of whole lines: line ends of every kind, a cut last line, binary
junk without line ends, and chunk edges that fall anywhere."""

from __future__ import annotations

import io

import pytest

from caffemem.logparse import reader
from caffemem.logparse.parser import Stop


def _lines(data: bytes, chunk: int) -> tuple[list[bytes], Stop]:
    stop = Stop()
    out = []
    for c in reader.read_chunks(io.BytesIO(data), stop, chunk):
        out += [b"<junk>"] * c.junk
        if c.size:
            out += c.data[:c.size].tobytes().split(b"\n")[:-1]
    return out, stop


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 0])
def test_line_ends_of_every_kind_give_the_same_lines(chunk):
    for data in (b"a\nbb\n\nccc\n", b"a\r\nbb\r\n\r\nccc\r\n", b"a\rbb\r\rccc\r"):
        lines, stop = _lines(data, chunk)
        assert lines == [b"a", b"bb", b"", b"ccc"], (data, chunk)
        assert not stop.cut_last_line


@pytest.mark.parametrize("chunk", [2, 5, 0])
def test_a_cut_last_line_is_kept_and_reported(chunk):
    lines, stop = _lines(b"one\ntwo\nthr", chunk)
    assert lines == [b"one", b"two", b"thr"] and stop.cut_last_line
    assert stop.bytes == len(b"one\ntwo\nthr")


def test_a_line_longer_than_max_line_is_one_junk_line(monkeypatch):
    monkeypatch.setattr(reader, "MAX_LINE", 50)
    lines, stop = _lines(b"start\n" + b"\x00\x01" * 200 + b"\nend\n", 16)
    assert lines == [b"start", b"<junk>", b"end"] and stop.junk_lines == 1


def test_chunks_are_padded_with_zeros():
    for c in reader.read_chunks(io.BytesIO(b"x" * 30 + b"\n" + b"y" * 30), Stop(), 8):
        assert not c.data[c.size:c.size + reader.PAD].any()


@pytest.mark.parametrize("chunk", [1, 5, 64, 0])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-8"])
def test_a_byte_order_mark_decides_the_encoding(chunk, encoding):
    """PowerShell's ``>`` saves a log as UTF-16 with a byte-order mark; editors add a UTF-8
    one: the lines read the same as the plain file's."""
    text = "I1122 10:00:00.000000  1 solver.cpp:218] Iteration 0, loss = 2.5\r\nnamé: \"x\"\r\n"
    mark = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-8": b"\xef\xbb\xbf"}[encoding]
    lines, stop = _lines(mark + text.encode(encoding), chunk)
    assert lines == [l.encode() for l in text.split("\r\n")[:-1]] and not stop.cut_last_line
