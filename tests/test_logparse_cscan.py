"""The optional C extension (caffemem/logparse/_cscan.c) against numpy's path, which stays
the reference and the fallback: the same lines, values, texts and names, column for column
and bit for bit, and CSV and JSON byte for byte, on our logs and on every real log of
../shared; odd buffers refused or read safely; and caffemem working the same where the
extension is not built.

The extension is built for the session from this checkout's source (conftest.build_cscan),
so CI, whose checkout has no built module, tests the C code too; only where no C compiler
is at hand are these tests skipped, saying so."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, damaged_logs, shared_or_skip
from test_logparse_fastscan import PREFIX, _tokens

from caffemem.logparse import export
from caffemem.logparse import fastscan as fs
from caffemem.logparse import summarize

DATA = Path(__file__).with_name("data") / "logs"
SAMPLE = ROOT / "bench" / "data" / "bvlc_train_sample.log"
OUR_LOGS = sorted(DATA.glob("*.log")) + [SAMPLE]


def _chunks(data: bytes, chunk: int):
    """``data`` cut into chunks of whole lines of about ``chunk`` bytes (the last one as the
    file ends, newline or not), each followed by PAD zero bytes as the reader gives them."""
    at = 0
    while at < len(data):
        cut = data.rfind(b"\n", at, at + chunk) + 1 or data.find(b"\n", at) + 1 or len(data)
        part = data[at:cut]
        at = cut
        yield np.frombuffer(part + bytes(fs.PAD), np.uint8), len(part)


def _scans_agree(data: bytes, cscan, chunk: int) -> int:
    """Both scanners on ``data`` in chunks (:func:`_chunks`): every column, name and text
    the same, floats bit for bit.  Returns the lines taken."""
    taken = 0
    for a, size in _chunks(data, chunk):
        if a[size - 1] != 10:  # a last line cut short: the reader ends it with a newline
            cscan.scan(a, size)  # (only read safely as it is: numpy's scan wants the newline)
            a, size = np.frombuffer(a[:size].tobytes() + b"\n" + bytes(fs.PAD), np.uint8), size + 1
        for texts in (True, False):
            want = fs.scan_numpy(a, size, True, texts)
            got = fs._from_c(cscan.scan(a, size, True, texts), texts)
            for f in ("ends", "lines", "kind", "iteration", "value", "interval", "time", "index", "name", "quiet"):
                x, y = getattr(got, f), getattr(want, f)
                assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f
                if x.dtype.kind == "f":
                    assert (x.view(np.uint64) == y.view(np.uint64)).all(), f"{f}: not bit for bit"
            assert got.names == want.names
            for f in ("text", "interval_text"):
                if not texts:
                    assert getattr(got, f) is None and getattr(want, f) is None
                    continue
                for g in ("lo", "hi", "size"):
                    assert np.array_equal(getattr(getattr(got, f), g), getattr(getattr(want, f), g)), (f, g)
        taken += len(want.lines)
    return taken


def test_the_c_scanner_finds_what_the_numpy_scanner_finds(built_cscan):
    """Our logs whole and cut small, seeded damage, every number form of the fastscan
    tests, output names of every length, and lines as they come off a disk: CRLF, a last
    line cut short, NUL bytes, huge numbers, a line of 5 MiB."""
    taken = 0
    for log in OUR_LOGS:
        for chunk in (97, 4096, 1 << 22):
            taken += _scans_agree(log.read_bytes(), built_cscan, chunk)
    assert taken > 500
    for data in damaged_logs(15, 300):
        _scans_agree(data, built_cscan, 1 << 22)
    tokens = _tokens() + ["1.#QNAN", "12345678901234567890", "1e", "1e+", "--1", "1.2.3", "nana", "infinity",
                          "-Infinity", "1e-400", "1e400", "0x10", "5e-324", ".", "-.5", "+.5e-7",
                          "999999999999999", "9999999999999999", "1" * 40, "1e9999999999", "0." + "0" * 30 + "1"]
    numbers = "".join(f"{PREFIX}Iteration {i}, lr = {t}\n{PREFIX}    Test net output #{i % 5}: n{i % 3} = {t} x\n"
                      f"{PREFIX}Iteration {i} ({t} iter/s, {t}s/20 iters), loss = {t}\n"
                      f"{PREFIX}Iteration {i} ({t} s), loss = {t}\n" for i, t in enumerate(tokens))
    assert _scans_agree(numbers.encode(), built_cscan, 1 << 22) > 10_000  # tokens over 15 bytes: left
    names = "".join(f"{PREFIX}    Train net output #{i % 7}: {n} = 0.5\n" for i, n in enumerate(
        ["loss", "acc", "loss", "x" * 31, "y" * 32, "z" * 33, "top-5", "b\xe9", "loss", "acc", "q", "r", "s",
         "\t", ""] * 3))
    assert _scans_agree(names.encode(), built_cscan, 1 << 22) > 20  # one number, several names: byte order
    line = f"{PREFIX}Iteration 20, loss = 1.5\n"
    iterations = [0, 1, 10**14, 10**15 - 1, 10**15, 10**16, 2**63, 10**40]
    odd = "".join(line.replace("20", str(i)) for i in iterations)
    odd += line.replace("\n", "\r\n") + line.replace("1.5", "1.5\x00") + line[:-1].replace("5", "\x00")
    odd += f"{PREFIX}Iteration 20, Testing net (#{10**15})\n{PREFIX}    Test net output #{2**64}: a = 1\n"
    odd += PREFIX[:-17] + "x" * (5 << 20) + PREFIX[-17:] + "Iteration 1, loss = 2\n"  # a line of 5 MiB
    odd += "I" + "1" * (5 << 20) + "] Iteration 1, loss = 2\n"
    odd += line + line[:-1]  # the last line cut short: no newline
    data = odd.encode()
    for cut in (len(data), len(data) - 3, len(data) - len(line) + 1):
        _scans_agree(data[:cut], built_cscan, 1 << 22)
    assert _scans_agree(data, built_cscan, 1 << 22) >= 6


def _shared_logs() -> list[Path]:
    realworld = shared_or_skip("realworld")
    logs = sorted(p for p in realworld.rglob("*") if p.is_file() and "log" in p.name and p.suffix in (".log", ".txt"))
    assert len(logs) >= 15, realworld
    return logs


def test_the_c_scanner_finds_what_the_numpy_scanner_finds_on_every_real_log(built_cscan):
    """Every real log of ../shared/realworld, as its bytes are (CRLF included) and with
    line ends made LF (as the reader gives the scanner a CRLF file)."""
    taken = 0
    for p in _shared_logs():
        data = p.read_bytes()
        taken += _scans_agree(data.replace(b"\r\n", b"\n"), built_cscan, 1 << 22)
        if b"\r" in data:
            _scans_agree(data, built_cscan, 1 << 22)
    assert taken > 100_000


def _outputs(path: Path, cscan) -> tuple[bytes, bytes]:
    """The curves' CSV and JSON rows of the log, with the C extension (``cscan``, the values
    formatted by its writer and no number texts kept, as ``caffemem log`` runs it) or with
    numpy (None: the texts kept for numpy's writers)."""
    saved = fs.cscan
    fs.cscan = cscan
    try:
        s = summarize(str(path), texts=cscan is None)
        csv_out, json_out = io.StringIO(), io.StringIO()
        export.write_csv(csv_out, s.train, s.test)
        for table in (s.train, s.test):
            export.write_json_rows(json_out, table)
    finally:
        fs.cscan = saved
    return csv_out.getvalue().encode(), json_out.getvalue().encode()


def _writers_agree(paths: list[Path], cscan) -> int:
    rows = 0
    for p in paths:
        (c_csv, c_json), (n_csv, n_json) = _outputs(p, cscan), _outputs(p, None)
        assert c_csv == n_csv, f"{p}: the CSV differs"
        assert c_json == n_json, f"{p}: the JSON differs"
        rows += c_csv.count(b"\n") - 1
    return rows


def test_csv_and_json_are_byte_for_byte_numpy_s_on_our_logs(built_cscan):
    assert _writers_agree(OUR_LOGS, built_cscan) > 150


def test_csv_and_json_are_byte_for_byte_numpy_s_on_every_real_log(built_cscan):
    assert _writers_agree(_shared_logs(), built_cscan) > 50_000


def test_the_log_command_writes_the_same_with_either(built_cscan, monkeypatch, tmp_path):
    """``caffemem log --format csv|json`` end to end (the C path asks for no number texts)."""
    from caffemem.cli import main

    monkeypatch.setattr(built_cscan, "tune_allocator", lambda: False)  # not in the test process
    for log in (SAMPLE, DATA / "train_ok_crlf_noprefix.log", DATA / "curves_edge.log"):
        for fmt in ("csv", "json"):
            out = {}
            for name, module in (("c", built_cscan), ("numpy", None)):
                monkeypatch.setattr(fs, "cscan", module)
                target = tmp_path / f"{name}.{fmt}"
                assert main(["log", str(log), "--format", fmt, "-o", str(target), "--quiet"]) == 0
                out[name] = target.read_bytes()
            assert out["c"] == out["numpy"] and len(out["c"]) > 100, (log, fmt)


def test_scan_refuses_a_buffer_without_its_zero_padding(built_cscan):
    """The scanner reads up to PAD bytes past the chunk: a buffer without them, or with
    anything but zeros there, is refused rather than read out of bounds."""
    part = f"{PREFIX}Iteration 20, loss = 1.5\n".encode()
    for buf, size in ((part, len(part)), (part + bytes(fs.PAD - 1), len(part)), (part + bytes(fs.PAD), -1),
                      (part + b"1" * fs.PAD, len(part)), (part + bytes(fs.PAD), len(part) + 1)):
        with pytest.raises(ValueError):
            built_cscan.scan(np.frombuffer(buf, np.uint8), size)
    got = fs._from_c(built_cscan.scan(np.frombuffer(part + bytes(fs.PAD), np.uint8), len(part)), True)
    assert got.value.tolist() == [1.5]


def test_render_refuses_short_columns_and_never_copies_a_bad_text_size(built_cscan):
    values = np.array([0.5, 2.0])
    with pytest.raises(ValueError):
        built_cscan.render([(2, None, values, None, None, 0)], 3)
    with pytest.raises(ValueError):
        built_cscan.render([(2, np.ones(1, bool), values, None, None, 0)], 2)
    words = np.zeros((2, 2), np.uint64)
    for size in (17, 100, 127):  # a kept text is at most 16 bytes: anything longer is formatted
        sizes = np.array([size, 0], np.int8)
        assert built_cscan.render([(2, None, values, words, sizes, 0), (0, None, b";")], 2) == b"0.5;2.0;"


def test_the_numpy_path_serves_where_the_extension_is_not_built(monkeypatch):
    """No module (no compiler at install), or one of another build (its PAD differs):
    numpy's scanner and writers, said by ``engine()``."""
    import types

    import caffemem.logparse

    monkeypatch.delattr(caffemem.logparse, "_cscan", raising=False)  # not imported yet
    monkeypatch.setitem(sys.modules, "caffemem.logparse._cscan", None)  # and its import fails
    assert fs._load_c() is None
    monkeypatch.setitem(sys.modules, "caffemem.logparse._cscan", types.SimpleNamespace(PAD=fs.PAD + 1))
    assert fs._load_c() is None
    monkeypatch.setattr(fs, "cscan", None)
    assert fs.engine() == "numpy"
    monkeypatch.setitem(sys.modules, "caffemem.logparse._cscan", types.SimpleNamespace(PAD=fs.PAD))
    assert fs._load_c() is not None  # the check above is the PAD's, not the import's


def test_the_log_command_runs_without_the_extension(tmp_path):
    """A fresh process where importing the extension fails, as after an install without a C
    compiler: numpy's path, the CSV of numpy's writers (the C extension's, byte for byte,
    as the tests above hold)."""
    block = ("import sys; sys.modules['caffemem.logparse._cscan'] = None\n"
             "from caffemem.logparse import fastscan\n"
             "assert fastscan.engine() == 'numpy', fastscan.engine()\n"
             "from caffemem.cli import main\n"
             "sys.exit(main(sys.argv[1:]))\n")
    target = tmp_path / "numpy.csv"
    done = subprocess.run([sys.executable, "-c", block, "log", str(SAMPLE), "--format", "csv", "-o", str(target)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == _outputs(SAMPLE, None)[0] and target.stat().st_size > 1000
