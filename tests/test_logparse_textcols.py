"""Numbers to text a column at a time (logparse/textcols.py): exactly Python's repr and str,
and rows laid out as joining the pieces one by one would."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from caffemem.logparse import textcols as tc


def _floats() -> list[float]:
    rng = random.Random(5)
    out = [0.0, -0.0, 1e-05, 1234500.0, 1e16, 1e22, 3.0, float("nan"), float("inf"), -float("inf"),
           0.0001, 9.99e-05, 1e-5 / 3, 123456789012345678.0, 5e-324, 1.7976931348623157e308, 0.1, 0.01,
           9.999999999999999e15, 1e15, 999999999999999.9, 0.00012, 1.05, 100.0, 2.2250738585072014e-308]
    for _ in range(20000):
        pick = rng.random()
        if pick < 0.3:  # Caffe's six digits over every magnitude
            x = float("%.6g" % (10 ** rng.uniform(-12, 20)))
        elif pick < 0.5:  # clock differences
            x = rng.randint(0, 10 ** 12) / 1e6
        elif pick < 0.7:  # any double at all
            x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        else:
            x = float("%.*g" % (rng.randint(1, 17), rng.uniform(-1e5, 1e5)))
        out.append(x)
    return out


def test_float_cells_are_repr():
    values = _floats()
    got = tc.float_cells(np.array(values)).texts()
    assert got == [repr(v).encode() for v in values]


def test_int_cells_are_str():
    values = [0, 1, -1, 9, 10, 99999999, 100000000, 123456789012345, 10 ** 16 - 1, 10 ** 16, -2 ** 63, 2 ** 63 - 1]
    values += random.Random(3).sample(range(-10 ** 15, 10 ** 15), 2000)
    assert tc.int_cells(np.array(values, np.int64)).texts() == [str(v).encode() for v in values]


def test_micro_cells_are_repr_of_seconds():
    rng = random.Random(4)
    ks = [0, 1, 99, 100, 1000, 10 ** 6, 1234567, 10 ** 14 - 1, 10 ** 14, 999999, 1000001]
    ks += [rng.randint(0, 10 ** 12) for _ in range(5000)] + [rng.randint(0, 10 ** 7) * 10 ** rng.randint(0, 5)
                                                             for _ in range(2000)]
    assert tc.micro_cells(np.array(ks)).texts() == [repr(k / 1e6).encode() for k in ks]


def test_rows_are_the_pieces_joined_and_absent_cells_leave_nothing():
    rng = random.Random(6)
    n = 9000  # more than one internal block of rows
    a = [rng.choice([0.5, 1e-05, 123.25, float("nan"), 7.0]) for _ in range(n)]
    b = list(range(n))
    keep = np.array([rng.random() < 0.7 for _ in range(n)])
    long_key = b', "a_key_much_longer_than_a_few_words_of_eight_bytes": '
    ca, cb = tc.float_cells(np.array(a)), tc.int_cells(np.array(b))
    got = tc.join_rows([b"{", cb, long_key, ca, b"}\n"], [None, None, keep, keep, None])
    want = b"".join(b"{" + str(j).encode() + ((long_key + repr(x).encode()) if k else b"") + b"}\n"
                    for x, j, k in zip(a, b, keep.tolist()))
    assert got == want
    got = tc.join_rows([cb.then(b","), ca.then(b"\n", keep)])
    assert got == b"".join(str(j).encode() + b"," + (repr(x).encode() if k else b"") + b"\n"
                           for x, j, k in zip(a, b, keep.tolist()))


def test_the_c_writer_formats_every_double_as_repr(built_cscan):
    """The C extension's writer formats values itself (no kept texts): the shortest decimal
    for values of 15 digits or fewer, repr's own function for the rest."""
    if built_cscan is None:
        pytest.skip("the C extension cannot be built here (no C compiler?)")
    rng = random.Random(21)
    values = [0.0, -0.0, 1.0, 0.1, 1e-4, 9.999e-5, 1e16, 9999999999999998.0, 1e15, 123456789012345.0, 1e22,
              1e23, 5e-324, 1.7976931348623157e308, 1 / 3, 1234500.0, float("nan"), float("inf"), -float("inf")]
    for _ in range(50000):
        c = rng.random()
        v = (float("%.6g" % 10 ** rng.uniform(-12, 18)) if c < 0.4
             else float("%.*g" % (rng.randint(1, 17), 10 ** rng.uniform(-30, 30))) if c < 0.7
             else struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0])
        values.append(-v if rng.random() < 0.5 else v)
    got = built_cscan.render([(2, None, np.array(values), None, None, 0), (0, None, b"\n")], len(values))
    assert got.decode().split("\n")[:-1] == [repr(v) for v in values]
    nulls = built_cscan.render([(2, None, np.array([float("nan"), 1.5, -float("inf")]), None, None, 2),
                                (0, None, b",")], 3)
    assert nulls == b"null,1.5,null,"
