"""Benchmark: parsing a large generated training log, against a per-line regex parser in the
style of Caffe's tools/extra/parse_log.py.  Prints throughput and peak RSS of each, each run
in its own process.  Asserts nothing.

    python bench/bench_log.py [--mb 200]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

BASELINE = r'''
import re, sys
it_re = re.compile(r"Iteration (\d+)")
out_re = re.compile(r"(Train|Test) net output #(\d+): (\S+) = ([.\deE+-]+)")
lr_re = re.compile(r"lr = ([-+]?[.\deE+-]+)")
rows = []
it = -1
with open(sys.argv[1], errors="replace") as f:
    for line in f:
        m = it_re.search(line)
        if m:
            it = int(m.group(1))
        m = out_re.search(line)
        if m:
            rows.append((it, m.group(3), float(m.group(4))))
        m = lr_re.search(line)
        if m:
            rows.append((it, "lr", float(m.group(1))))
print(len(rows))
'''

OURS = r'''
import sys
from caffemem.logparse import summarize
s = summarize(sys.argv[1])
print(len(s.train) + len(s.test))
'''


def generate(path: str, mb: int) -> None:
    block = []
    for i in range(0, 1000, 20):
        block.append(f"I1122 10:00:{i % 60:02d}.000000  1000 solver.cpp:218] Iteration {{it}} (5 iter/s, 4.0s/20 iters), loss = 1.2345\n")
        block.append("I1122 10:00:00.000001  1000 solver.cpp:237]     Train net output #0: loss = 1.2345 (* 1 = 1.2345 loss)\n")
        block.append("I1122 10:00:00.000002  1000 sgd_solver.cpp:105] Iteration {it}, lr = 0.01\n")
    text = "".join(block)
    target = mb * 2**20
    written, it = 0, 0
    with open(path, "w") as f:
        while written < target:
            chunk = text.replace("{it}", str(it))
            f.write(chunk)
            written += len(chunk)
            it += 20
            if it % 2000 == 0:
                t = (f"I1122 10:00:00.000003  1000 solver.cpp:330] Iteration {it}, Testing net (#0)\n"
                     "I1122 10:00:00.000004  1000 solver.cpp:397]     Test net output #0: accuracy = 0.5\n")
                f.write(t)
                written += len(t)


def run(code: str, path: str) -> tuple[float, int]:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, path], check=True, stdout=subprocess.DEVNULL,
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    secs = time.perf_counter() - t
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return secs, rss_kb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "train.log")
        generate(path, args.mb)
        size = os.path.getsize(path) / 2**20
        for label, code in (("per-line regex baseline", BASELINE), ("caffemem", OURS)):
            secs, rss = run(code, path)
            print(f"{label:24s} {size:7.0f} MiB in {secs:6.2f} s = {size / secs:6.1f} MiB/s; "
                  f"peak RSS (max over runs so far) {rss / 1024:6.0f} MiB")


if __name__ == "__main__":
    main()
