"""The vectorized curve-line scanner: which lines it takes, and numbers read exactly as
Python's float() and int() read them.  Everything it leaves goes through the line parser,
so the summary must not depend on which path a line took (tested on every log we have)."""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED, damaged_logs

from caffemem.logparse import fastscan as fs
from caffemem.logparse import summarize

DATA = Path(__file__).with_name("data") / "logs"
PREFIX = "I1122 10:00:00.000000  4242 solver.cpp:218] "


@pytest.fixture(autouse=True)
def _each_engine(log_engine):
    """Every test here runs with the numpy scanner and with the C extension's."""
    return log_engine


def _scan(text: str) -> fs.ChunkScan:
    data = text.encode()
    return fs.scan_chunk(np.frombuffer(data + bytes(fs.PAD), np.uint8), len(data))


def _bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def _tokens() -> list[str]:
    rng = random.Random(7)
    out = ["0", "1", "0.5", ".5", "5.", "1.2345", "0.01", "2.30259", "1e-05", "5e-05", "1E+10",
           "-0", "-0.0", "-2.5", "+3", "1e-300", "1.5e+300", "nan", "-nan", "inf", "-inf",
           "123456789", "1234567", "0.0000001", "9007199254740993", "12345678.9", "1e22",
           "1e23", "4.9e-324", "2.2250738585072014e-308"]
    for _ in range(3000):
        x = rng.choice([rng.random(), rng.uniform(-1e6, 1e6), 10 ** rng.uniform(-12, 12),
                        rng.randint(0, 10 ** 7)])
        out.append(rng.choice(["%g", "%.6g", "%.3e", "%.4f", "%r"]) % x if not isinstance(x, int)
                   else str(x))
    return out


def test_numbers_are_read_bit_for_bit_as_float_reads_them():
    tokens = [t for t in _tokens() if len(t) <= 15]
    sc = _scan("".join(f"{PREFIX}Iteration {i}, lr = {t}\n" for i, t in enumerate(tokens)))
    assert len(sc.lines) == len(tokens), "every well-formed number is taken by the fast path"
    for i, t, v in zip(sc.iteration.tolist(), tokens, sc.value.tolist()):
        want = float(t)
        assert (math.isnan(want) and math.isnan(v)) or _bits(want) == _bits(v), (i, t, v)


@pytest.mark.parametrize("it", [0, 7, 1234567, 12345678, 99999999, 123456789012, 10 ** 15 - 1])
def test_iterations_of_any_width(it):
    sc = _scan(f"{PREFIX}Iteration {it}, loss = 1.5\n")
    assert sc.iteration.tolist() == [it] and sc.value.tolist() == [1.5]


def test_the_five_templates_and_their_fields():
    sc = _scan(f"{PREFIX}Iteration 20 (5.01 iter/s, 3.992s/20 iters), loss = 1.2345\n"
               f"{PREFIX}    Train net output #1: loss = 1.25 (* 1 = 1.25 loss)\n"
               f"{PREFIX}Iteration 20, lr = 0.01\n"
               f"{PREFIX}Iteration 1000, Testing net (#2)\n"
               f"{PREFIX}    Test net output #0: accuracy = 0.5\n")
    assert sc.kind.tolist() == [fs.ITER, fs.TRAIN_OUT, fs.LR, fs.TEST_START, fs.TEST_OUT]
    assert sc.iteration.tolist() == [20, -1, 20, 1000, -1]
    assert sc.interval[0] == 3.992 and sc.index.tolist()[1:] == [1, -1, 2, 0]
    assert [sc.names[i] for i in sc.name.tolist() if i >= 0] == ["loss", "accuracy"]


@pytest.mark.parametrize("line,interval", [
    ("Iteration 4900 (16.6261 iter/s, 6.01463s/100 iter), loss = 3.3266", 6.01463),  # NVCaffe
    ("Iteration 1 (0.635205 s), loss = 6.91663", 0.635205),  # NVCaffe's first iterations
    ("Iteration 0 (-1.12104e-44 iter/s, 0.118s/1 iters), loss = 2.41408", 0.118),
])
def test_iteration_line_variants_of_forks_both_ways(tmp_path, line, interval):
    sc = _scan(PREFIX + line + "\n")
    assert sc.kind.tolist() == [fs.ITER] and sc.interval.tolist() == [interval]
    f = tmp_path / "v.log"
    f.write_text(PREFIX + line + "\n")
    (row,) = summarize(str(f), fast=False).train
    assert row["interval_seconds"] == interval and row["loss"] == float(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize("line", [
    "Iteration 5, loss = 0.1 ",
    "Iteration 5 (0.5 s) loss = 0.1",
    "Iteration 5 (1 iter/s, 2s/3 iterss), loss = 0.1",  # trailing blank: the template ends the line
    "Iteration 5, loss = 1.#QNAN",  # Windows' NaN
    "Iteration 5, loss = 12345678901234567890",  # longer than the fast path reads
    "Iteration 5, lr = ",
    "Iteration x, lr = 0.1",
    "Iteration 5,  lr = 0.1",
    "Iteration 5, Testing net (#0) extra",
    "    Train net output #0: a_name_longer_than_the_thirty_one_bytes_read = 1",
    "    Train net output #0: loss = 1.5x",
    "    Train net output #: loss = 1.5",
])
def test_lines_off_the_templates_are_left_to_the_line_parser(line):
    assert len(_scan(PREFIX + line + "\n").lines) == 0


@pytest.mark.parametrize("prefix", ["W1122 10:00:00.000000  4242 solver.cpp:218] ", "> " + PREFIX,
                                    "I1122 no bracket ", "solver.cpp:218] "])
def test_only_glog_info_lines_are_taken(prefix):
    assert len(_scan(prefix + "Iteration 5, lr = 0.1\n").lines) == 0


def test_which_lines_of_the_edge_log_take_the_fast_path():
    text = (DATA / "curves_edge.log").read_text()
    sc = _scan(text)
    assert (sc.lines + 1).tolist() == [2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 17, 19, 20, 24, 25,
                                       26, 28, 29, 31]
    assert len(sc.ends) == text.count("\n")


def _same(a, b) -> None:
    def rows(t):
        return [{k: ("nan" if v != v else v) for k, v in r.items()} for r in t]

    assert rows(a.train) == rows(b.train) and rows(a.test) == rows(b.test)
    assert [(n.label, n.echo, [(l.name, l.bottoms, l.tops, l.shapes, l.memory_after) for l in n.layers])
            for n in a.nets] == [(n.label, n.echo, [(l.name, l.bottoms, l.tops, l.shapes, l.memory_after)
                                                   for l in n.layers]) for n in b.nets]
    assert [(f.line, f.message) for f in a.failures] == [(f.line, f.message) for f in b.failures]
    assert (a.last_iteration, a.testing_at_failure, a.init_open, a.solving, a.snapshots, a.frames) == \
        (b.last_iteration, b.testing_at_failure, b.init_open, b.solving, b.snapshots, b.frames)
    assert a.stop == b.stop


@pytest.mark.parametrize("chunk,workers", [(0, 0), (97, 0), (4096, 2), (1 << 16, 1)])
def test_fast_path_chunks_and_threads_change_nothing_on_our_logs(chunk, workers):
    for log in sorted(DATA.glob("*.log")):
        _same(summarize(str(log), chunk=chunk, workers=workers), summarize(str(log), fast=False))


def test_fast_path_changes_nothing_on_every_shared_log():
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is absent: ../shared (real Caffe logs) is not next to this "
                    f"checkout; CI always has it")
    logs = [p for p in SHARED.rglob("*") if p.is_file() and p.suffix in (".log", ".txt")
            and p.name not in ("SOURCE.md",) and "log" in p.name]
    assert len(logs) > 100
    for log in logs:
        _same(summarize(str(log)), summarize(str(log), fast=False))


def test_the_edge_log_means_what_it_says():
    s = summarize(str(DATA / "curves_edge.log"), chunk=97)
    rows = {r["iteration"]: r for r in s.train}
    assert rows[0]["interval_seconds"] == 0.118 and rows[0]["lr"] == 1e-05 and math.isnan(rows[0]["loss"])
    assert rows[0]["seconds"] == 1.0 and "interval_seconds" not in rows[20]
    assert rows[0]["name16bytes_abcd"] == 0.25
    assert rows[0]["a_very_long_output_name_that_is_longer_than_32_bytes"] == 0.5
    assert "lr" not in rows[80]  # its lr line says 79: not this row's
    assert rows[140]["lr"] == 0.25 and rows[140]["loss"] == 2.0  # a quoted line and a W line
    assert rows[123456789012]["loss"] == 0.5 and rows[180]["interval_seconds"] == 1.6
    assert [(r["iteration"], r["net"]) for r in s.test] == [(0, 0), (0, 1), (160, 0)]
    assert list(s.test)[1] == {"iteration": 0, "seconds": 1.0, "net": 1, "top5": 0.5}
    assert s.snapshots == ["edge_iter_160.caffemodel"]


def test_glog_clocks_read_the_same_both_ways_and_as_datetime_counts():
    import datetime

    rng = random.Random(3)
    stamps = []
    for _ in range(500):
        d = datetime.datetime(rng.randint(1999, 2031), 1, 1) + datetime.timedelta(
            seconds=rng.randint(0, 366 * 86400), microseconds=rng.randint(0, 999999))
        long = rng.random() < 0.5
        stamps.append((d.strftime("%Y%m%d" if long else "%m%d"), d.strftime("%H:%M:%S.%f"), d, long))
    text = "".join(f"I{date} {clock}  4242 solver.cpp:218] Iteration 1, loss = 1\n" for date, clock, _, _ in stamps)
    sc = _scan(text + "I1322 10:00:00.000000  4242 solver.cpp:218] Iteration 1, loss = 1\n")
    assert sc.time.tolist() == [fs.glog_time(date, clock) for date, clock, _, _ in stamps] + [-1]
    longs = [(t, d) for t, (_, _, d, long) in zip(sc.time.tolist(), stamps) if long]
    t0, d0 = longs[0]
    for t, d in longs:  # differences are exact microseconds, as datetime counts them
        assert t - t0 == (d - d0) // datetime.timedelta(microseconds=1)


def test_seconds_run_on_across_new_year(tmp_path):
    f = tmp_path / "ny.log"
    f.write_text("I1231 23:59:59.500000  1 solver.cpp:294] Solving Net\n"
                 "I1231 23:59:59.750000  1 solver.cpp:218] Iteration 0, loss = 1\n"
                 "I0101 00:00:01.000000  1 solver.cpp:218] Iteration 20, loss = 1\n")
    assert [r["seconds"] for r in summarize(str(f)).train] == [0.25, 1.5]


def test_mangled_logs_never_break_either_path_and_they_agree(tmp_path):
    """Seeded random damage (bytes changed, dropped, doubled; NULs; cut anywhere) to our logs:
    no exception, and the fast path still means what the line parser means."""
    rng = random.Random(11)
    f = tmp_path / "m.log"
    for data in damaged_logs(11, 200):
        f.write_bytes(data)
        chunk = rng.choice([0, 64, 257, 4096])
        _same(summarize(str(f), chunk=chunk, workers=rng.choice([0, 2])), summarize(str(f), fast=False))


def test_number_texts_kept_are_python_s_repr_of_the_value():
    """The scanner keeps a token's text where it is (or, plus a "0", becomes) what repr
    writes: the writers copy it instead of formatting the double.  Caffe's own forms all
    qualify; the others are left to be formatted."""
    tokens = [t for t in _tokens() if len(t) <= 15] + ["3", ".5", "5.", "0.50", "05", "1e-5", "1.0e-05",
                                                      "1E-05", "+3", "1e+06", "1.2345e+06", "0.00001"]
    sc = _scan("".join(f"{PREFIX}Iteration {i}, lr = {t}\n" for i, t in enumerate(tokens)))
    words = sc.text.words().view(np.uint8).reshape(-1, 16)
    kept = 0
    for i, t, size in zip(sc.iteration.tolist(), tokens, sc.text.size.tolist()):
        if size:
            assert bytes(words[i, :size]).decode() == repr(float(t)), t
            kept += 1
    sizes = dict(zip(tokens, sc.text.size.tolist()))
    assert all(sizes[t] for t in ("1.2345", "0.01", "1e-05", "5e-05", "3", ".5", "5.", "-2.5", "2.30259"))
    assert not any(sizes[t] for t in ("0.50", "05", "1e-5", "1.0e-05", "1E-05", "+3", "1.2345e+06", "0.00001",
                                      "-nan", "nan"))
    # Caffe prints with six significant digits: every such text that is repr's (or is with
    # ".0") is kept
    rng = random.Random(8)
    caffe = ["%.6g" % (rng.choice([1, -1]) * 10 ** rng.uniform(-12, 5.9)) for _ in range(3000)]
    sc = _scan("".join(f"{PREFIX}Iteration {i}, lr = {t}\n" for i, t in enumerate(caffe)))
    expected = [repr(float(t)) in (t, t + ".0") for t in caffe]
    assert (sc.text.size > 0).tolist() == expected and sum(expected) > 2500


def test_chatter_lines_are_taken_and_still_end_an_echo_block(tmp_path):
    """A data thread's "Waiting for data" is taken by the scan (no event) yet, being a glog
    line, ends the solver echo before it, as the line parser would have it."""
    f = tmp_path / "chatter.log"
    f.write_text("I1122 10:00:00.000000  1 solver.cpp:44] Initializing solver from parameters: \n"
                 "base_lr: 0.01\n"
                 "I1122 10:00:00.000000  7 blocking_queue.cpp:49] Waiting for data\n"
                 "display: 20\n"
                 "I1122 10:00:01.000000  1 solver.cpp:218] Iteration 0, loss = 2\n"
                 "I1122 10:00:01.000000  7 data_layer.cpp:73] Restarting data prefetching from start.\n"
                 "I1122 10:00:02.000000  1 solver.cpp:218] Iteration 20, loss = 1\n")
    sc = _scan(f.read_text())
    assert sc.quiet.tolist() == [2, 5] and sc.kind.tolist() == [fs.ITER, fs.ITER]
    fast, slow = summarize(str(f)), summarize(str(f), fast=False)
    _same(fast, slow)
    assert fast.solver_echo == "base_lr: 0.01" and len(fast.train) == 2

