"""A per-line reference parser of Caffe training curves, for tests only.

Written apart from caffemem's parser (regular expressions, one line at a time, a dict per
row) so the CSV caffemem writes can be checked against it value for value.  It reads
glog-prefixed logs as Caffe writes them (solver.cpp, sgd_solver.cpp) and follows
parse_log.py's rows: one train row per "Iteration N ..., loss = X" line, filled by the
train outputs that follow and the "Iteration N, lr = X" line of the same iteration; one
test row per "Iteration N, Testing net (#K)" line, filled by the test outputs.  Seconds
are glog clock differences since "Solving" (the last before the curves: each GPU's solver
says it), else since the first iteration or test line; a clock before the start is the
next year's.
"""

from __future__ import annotations

import re

_PREFIX = re.compile(r"^([IW])(\d{4}|\d{8}) (\d\d):(\d\d):(\d\d)\.(\d{1,6}) +\d+ [\w.\-]+:\d+\] (.*)$")
_SOLVING = re.compile(r"^Solving\b")
_ITER = re.compile(r"^Iteration (\d+)(?: \((?:\S+ iter/s, (\S+?)s/\d+ iters?|(\S+) s)\))?, loss = (\S+)")
_LR = re.compile(r"^Iteration (\d+), lr = (\S+)")
_TEST = re.compile(r"^Iteration (\d+), Testing net \(#(\d+)\)")
_OUT = re.compile(r"^    (Train|Test) net output #(\d+): (\S+) = (\S+)(?: .*)?$")
_DAYS = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
_YEAR = 365 * 86400 * 10**6


def _micros(date: str, hh: str, mm: str, ss: str, frac: str) -> int:
    month, day = int(date[-4:-2]), int(date[-2:])
    days = _DAYS[month - 1] + day
    if len(date) == 8:  # with the year: days since year 1, as the calendar counts them
        import datetime

        days = datetime.date(int(date[:4]), month, day).toordinal()
    return ((days * 24 + int(hh)) * 60 + int(mm)) * 60 * 10**6 + int(ss) * 10**6 + int(frac.ljust(6, "0"))


def parse(path: str) -> tuple[list[dict], list[dict]]:
    """(train rows, test rows) of a log: dicts of the cells the log printed."""
    train: list[dict] = []
    test: list[dict] = []
    start = None
    with open(path, encoding="utf-8", errors="replace", newline=None) as f:
        for line in f:
            m = _PREFIX.match(line.rstrip("\n"))
            if not m:
                continue
            body = m.group(7)
            clock = _micros(*m.group(2, 3, 4, 5, 6))
            if _SOLVING.match(body) and not train and not test:  # the last one (one per GPU)
                start = clock
                continue

            def seconds() -> float:
                t = clock - start
                return (t + _YEAR if t < 0 else t) / 1e6

            it = _ITER.match(body)
            if it:
                start = clock if start is None else start
                row = {"iteration": int(it.group(1)), "seconds": seconds(), "loss": float(it.group(4))}
                if it.group(2) or it.group(3):
                    row["interval_seconds"] = float(it.group(2) or it.group(3))
                train.append(row)
                continue
            lr = _LR.match(body)
            if lr:
                if train and train[-1]["iteration"] == int(lr.group(1)):
                    train[-1]["lr"] = float(lr.group(2))
                continue
            ts = _TEST.match(body)
            if ts:
                start = clock if start is None else start
                test.append({"iteration": int(ts.group(1)), "seconds": seconds(), "net": int(ts.group(2))})
                continue
            out = _OUT.match(body)
            if out:
                rows = train if out.group(1) == "Train" else test
                if rows:
                    rows[-1][out.group(3)] = float(out.group(4))
    return train, test
