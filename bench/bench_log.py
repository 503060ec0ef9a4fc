"""Benchmark: parsing a large generated training log.

Runs, each in a process of its own, on the same generated log (``--mb``, default 200):

- a per-line regex parser in the style of Caffe's tools/extra/parse_log.py (three searches
  per line, rows kept as tuples): the baseline the issue calibrates against;
- Caffe's own parse_log.py, if you point ``--parse-log`` at a copy (it is not shipped here);
- caffemem's summarize() as ``caffemem log`` runs it (scanning threads on a multi-core
  machine), and with the threads turned off;
- the whole ``caffemem log`` command (text report).

Prints wall time, throughput, the speed-up over the baseline and each process's peak RSS
(from wait4, so per process, not a maximum over runs).  Asserts nothing.

    python bench/bench_log.py [--mb 200] [--parse-log path/to/parse_log.py] [--keep]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
s = summarize(sys.argv[1], workers=None if sys.argv[2] == "auto" else int(sys.argv[2]))
print(len(s.train), len(s.test))
'''


def generate(path: str, mb: int) -> None:
    """A BVLC training log: solver header, then per 20 iterations the rate-and-loss line, two
    train outputs and the lr line, with a two-output test pass every 1000 iterations."""
    target = mb * 2**20
    written, it = 0, 0
    with open(path, "w") as f:
        head = ("I1122 09:59:58.000000  1000 caffe.cpp:218] Using GPUs 0\n"
                "I1122 09:59:59.000000  1000 solver.cpp:44] Initializing solver from parameters: \n"
                "base_lr: 0.01\ndisplay: 20\nmax_iter: 100000000\nlr_policy: \"fixed\"\n"
                "I1122 09:59:59.500000  1000 solver.cpp:294] Solving LeNet\n"
                "I1122 09:59:59.500001  1000 solver.cpp:295] Learning Rate Policy: fixed\n")
        f.write(head)
        written += len(head)
        while written < target:
            parts = []
            for _ in range(50):
                t = f"10:{it // 1200 % 60:02d}:{it // 20 % 60:02d}.{it % 1000000:06d}"
                parts.append(
                    f"I1122 {t}  1000 solver.cpp:218] Iteration {it} (5.01 iter/s, 3.992s/20 iters), "
                    f"loss = {1 + (it % 977) / 1000:.5g}\n"
                    f"I1122 {t}  1000 solver.cpp:237]     Train net output #0: accuracy = {(it % 89) / 89:.4g}\n"
                    f"I1122 {t}  1000 solver.cpp:237]     Train net output #1: loss = 1.2345 (* 1 = 1.2345 loss)\n"
                    f"I1122 {t}  1000 sgd_solver.cpp:105] Iteration {it}, lr = 0.01\n")
                it += 20
                if it % 1000 == 0:
                    parts.append(f"I1122 {t}  1000 solver.cpp:330] Iteration {it}, Testing net (#0)\n"
                                 f"I1122 {t}  1000 solver.cpp:397]     Test net output #0: accuracy = 0.5\n"
                                 f"I1122 {t}  1000 solver.cpp:397]     Test net output #1: loss = 0.9 (* 1 = 0.9 loss)\n")
            text = "".join(parts)
            f.write(text)
            written += len(text)


def run(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"{argv[:3]} failed with status {status}")
    return secs, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="size of the generated log in MiB [200]")
    ap.add_argument("--parse-log", metavar="PATH", help="Caffe's tools/extra/parse_log.py, to time it too")
    ap.add_argument("--keep", action="store_true", help="leave the generated log in the temporary folder")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="caffemem-bench-")
    path = os.path.join(d, "train.log")
    generate(path, args.mb)
    size = os.path.getsize(path) / 2**20
    py = sys.executable
    runs = [("per-line regex baseline", [py, "-c", BASELINE, path])]
    if args.parse_log:
        runs.append(("Caffe parse_log.py", [py, args.parse_log, path, d]))
    runs += [("caffemem summarize", [py, "-c", OURS, path, "auto"]),
             ("caffemem, no threads", [py, "-c", OURS, path, "0"]),
             ("caffemem log (CLI)", [py, "-m", "caffemem", "log", path])]
    print(f"log: {size:.0f} MiB, {sum(1 for _ in open(path, 'rb')):,} lines, {os.cpu_count()} CPUs")
    base = None
    for label, argv in runs:
        secs, rss = run(argv)
        base = base or secs
        print(f"{label:26s} {secs:7.2f} s {size / secs:7.1f} MiB/s  x{base / secs:5.2f}  "
              f"peak RSS {rss / 1024:6.0f} MiB")
    if args.keep:
        print(f"kept {path}")
    else:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        os.rmdir(d)


if __name__ == "__main__":
    main()
