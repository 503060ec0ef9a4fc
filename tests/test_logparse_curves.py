"""Columnar curves: rows, missing cells against logged nan, spilling to disk, thinning."""

from __future__ import annotations

import math

import numpy as np

from caffemem.logparse.curves import MISSING, CurveTable, missing


def test_rows_leave_out_missing_cells_but_keep_a_logged_nan():
    t = CurveTable(("lr", "loss"))
    t.append(np.array([0, 20]), {"loss": np.array([2.5, float("nan")])})
    t.assign("lr", np.array([1]), np.array([0.01]))
    rows = list(t)
    assert rows[0] == {"iteration": 0, "loss": 2.5}
    assert rows[1]["lr"] == 0.01 and math.isnan(rows[1]["loss"])
    assert missing(np.array([MISSING, float("nan"), 1.0])).tolist() == [True, False, False]


def test_a_column_first_seen_late_is_missing_before():
    t = CurveTable(())
    t.append(np.array([0, 1, 2]), {})
    t.assign("acc", np.array([2]), np.array([0.5]))
    assert list(t) == [{"iteration": 0}, {"iteration": 1}, {"iteration": 2, "acc": 0.5}]
    assert t.names == ["iteration", "acc"]


def test_spilled_blocks_read_back_whole_and_memory_holds_one_block():
    t = CurveTable(("loss",), block_rows=100)
    for start in range(0, 1000, 10):
        its = np.arange(start, start + 10)
        t.append(its, {"loss": its * 0.5})
        if start == 500:
            t.assign("acc", np.arange(len(t) - 10, len(t)), its / 1000.0)
        t.settle()
        assert t._n <= 101  # never more than a block (and the open row) in memory
    rows = list(t)
    assert len(rows) == len(t) == 1000
    assert [r["iteration"] for r in rows] == list(range(1000))
    assert all(r["loss"] == r["iteration"] * 0.5 for r in rows)
    assert [r["iteration"] for r in rows if "acc" in r] == list(range(500, 510))
    assert t.last() == {"iteration": 999, "loss": 499.5}
    t.close()


def test_the_open_row_can_still_be_filled_after_a_spill():
    t = CurveTable(("lr",), block_rows=4)
    t.append(np.arange(10), {})
    t.settle()
    t.assign("lr", np.array([9]), np.array([0.1]))
    assert list(t)[-1] == {"iteration": 9, "lr": 0.1}
    assert t.iterations_at(np.array([9])).tolist() == [9]


def test_column_thins_to_max_points_across_blocks():
    t = CurveTable(("loss",), block_rows=64)
    t.append(np.arange(1000), {"loss": np.arange(1000, dtype=float)})
    t.settle()
    t.append(np.arange(1000, 1001), {"loss": np.array([1000.0])})
    its, v = t.column("loss", max_points=100)
    assert len(its) <= 101 and its[0] == 0 and (np.diff(its) == 11).all()
    assert (v == its).all()
    assert t.column("nothing")[0].size == 0


def test_outputs_are_the_columns_the_log_brought():
    t = CurveTable(("seconds", "net"))
    t.append(np.array([0]), {"seconds": np.array([1.0])})
    t.assign("accuracy", np.array([0]), np.array([0.5]))
    assert t.outputs == ["accuracy"] and t.names == ["iteration", "seconds", "net", "accuracy"]
