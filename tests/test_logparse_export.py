"""The curves' CSV and JSON (logparse/export.py): value for value what a per-line reference
parser reads from the same logs, and byte for byte what writing the rows one by one with
Python's csv and json modules gives."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, shared_or_skip
from reference_log_parser import parse

from caffemem.logparse import export, summarize

DATA = Path(__file__).with_name("data") / "logs"
SAMPLE = ROOT / "bench" / "data" / "bvlc_train_sample.log"


@pytest.fixture(autouse=True)
def _each_engine(log_engine):
    """Every test here runs with the numpy scanner and writers and with the C extension's."""
    return log_engine


def _csv_rows(path: Path) -> list[dict]:
    s = summarize(str(path))
    out = io.StringIO()
    export.write_csv(out, s.train, s.test)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _check_against_reference(path: Path) -> int:
    train, test = parse(str(path))
    rows = _csv_rows(path)
    assert [r["phase"] for r in rows] == ["train"] * len(train) + ["test"] * len(test), path
    for got, want in zip(rows, train + test):
        want = {k: v for k, v in want.items() if k != "net"}  # a test row's net is not a CSV column
        cells = {k: v for k, v in got.items() if k != "phase" and v != ""}
        assert set(cells) == set(want), (path, got, want)
        for k, v in want.items():
            assert _same(float(cells[k]), float(v)), (path, k, cells[k], v)
    return len(rows)


def test_csv_matches_the_reference_parser_on_our_real_format_log():
    assert _check_against_reference(SAMPLE) == 152 + 7
    assert _check_against_reference(DATA / "train_ok.log") == 3


def test_csv_matches_the_reference_parser_on_every_paired_real_log():
    paired = shared_or_skip("realworld", "paired")
    logs = sorted(paired.rglob("*.log"))
    assert len(logs) >= 15
    rows = sum(_check_against_reference(p) for p in logs)
    assert rows > 50_000  # the long runs are all there


def _cell(v) -> str:
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)


def _rowwise_csv(s) -> str:
    out = io.StringIO()
    fixed = ("iteration", "seconds", "lr", "loss")
    keys = [k for k in s.train.outputs + s.test.outputs if k not in fixed]
    columns = fixed + tuple(dict.fromkeys(keys)) + ("interval_seconds",)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["phase", *columns])
    for phase, table in (("train", s.train), ("test", s.test)):
        for r in table.rows():
            w.writerow([phase] + [_cell(r.get(k)) for k in columns])
    return out.getvalue()


def _rowwise_json(table) -> str:
    rows = [json.dumps({k: (v if v == v and v not in (math.inf, -math.inf) else None) for k, v in r.items()})
            for r in table.rows()]
    return "[" + "".join(("\n  " if i == 0 else ",\n  ") + r for i, r in enumerate(rows)) + "\n ]"


def _check_rowwise(path: Path) -> None:
    s = summarize(str(path))
    out = io.StringIO()
    export.write_csv(out, s.train, s.test)
    assert out.getvalue() == _rowwise_csv(s), path
    for table in (s.train, s.test):
        out = io.StringIO()
        export.write_json_rows(out, table)
        assert out.getvalue() == _rowwise_json(table), path


def test_columnar_writers_equal_row_by_row_writing_on_our_logs():
    for path in sorted(DATA.glob("*.log")) + [SAMPLE]:
        _check_rowwise(path)


def test_columnar_writers_equal_row_by_row_writing_on_every_shared_log():
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is absent: ../shared (real Caffe logs) is not next to this checkout; "
                    f"CI always has it")
    logs = [p for p in SHARED.rglob("*.log") if p.is_file()]
    assert len(logs) > 100
    for path in logs:
        _check_rowwise(path)


def test_spilled_blocks_write_the_same_as_one_block(monkeypatch):
    """Tables spilled to disk in blocks of 5 rows, folded 7 curve lines at a time, give
    the same text as one block held in memory."""
    from caffemem.logparse import summary
    from caffemem.logparse.curves import CurveTable

    class Small(CurveTable):
        def __init__(self, fixed, block_rows=5, whole=()):
            super().__init__(fixed, 5, whole)

    whole = summarize(str(SAMPLE))
    monkeypatch.setattr(summary, "CurveTable", Small)
    monkeypatch.setattr(summary, "_HOLD_ROWS", 7)
    small = summary.summarize(str(SAMPLE), chunk=4096)
    assert len(small.train._blocks) > 10
    for fmt in ("csv", "json"):
        a, b = io.StringIO(), io.StringIO()
        if fmt == "csv":
            export.write_csv(a, whole.train, whole.test)
            export.write_csv(b, small.train, small.test)
        else:
            export.write_json_rows(a, whole.train)
            export.write_json_rows(b, small.train)
        assert a.getvalue() == b.getvalue()


def test_without_kept_texts_the_writers_format_every_value_the_same():
    """A summary read for its text report keeps no number texts; written out anyway, the
    values are formatted and the CSV and JSON are the same."""
    for path in (SAMPLE, DATA / "curves_edge.log"):
        kept, formatted = summarize(str(path)), summarize(str(path), texts=False)
        assert kept.train._text and not formatted.train._text
        o1, o2 = io.StringIO(), io.StringIO()
        export.write_csv(o1, kept.train, kept.test)
        export.write_csv(o2, formatted.train, formatted.test)
        assert o1.getvalue() == o2.getvalue()
        o1, o2 = io.StringIO(), io.StringIO()
        export.write_json_rows(o1, kept.train)
        export.write_json_rows(o2, formatted.train)
        assert o1.getvalue() == o2.getvalue()
