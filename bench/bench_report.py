"""Benchmark: ``caffemem report`` on a ResNet-152-sized train_val, against ``caffemem analyze
--format json`` on the same net in the same run (the baseline: the report models the net,
the other engine's variant and, unless --no-cards, a few more batches for the card table),
and how fast headless Chromium has the page ready (when a chromium is installed).

Targets (issue 16): report generation under 1 s; page under 3 MB, ready under 2 s.
Prints the figures; asserts nothing.  ``--baseline TREE`` (another checkout of caffemem,
e.g. ``git worktree add /tmp/before main``) also times ``report`` there, the two runs
taking turns (median of the pairwise ratios).

    python bench/bench_report.py [--repeat 3] [--baseline TREE]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from bench_analyze import against_baseline, resnet  # noqa: E402


def best_of(cmd: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        best = min(best, time.perf_counter() - t)
        if p.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr}")
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", metavar="TREE", help="another caffemem checkout to time report against")
    args = ap.parse_args()
    py = [sys.executable, "-m", "caffemem"]
    with tempfile.TemporaryDirectory() as d:
        net = os.path.join(d, "resnet152.prototxt")
        with open(net, "w") as f:
            f.write(resnet())
        page = os.path.join(d, "report.html")
        rows = [("analyze --format json (baseline)", best_of(py + ["analyze", net, "--format", "json"], args.repeat)),
                ("report --no-cards", best_of(py + ["report", net, "--no-cards", "-o", page], args.repeat)),
                ("report", best_of(py + ["report", net, "-o", page], args.repeat))]
        for label, secs in rows:
            print(f"{label:34s} {secs:6.3f} s whole process (best of {args.repeat})")
        size = os.path.getsize(page)
        print(f"{'page size':34s} {size:,} bytes; target < 3 MB: {'met' if size < 3e6 else 'NOT met'}")
        print(f"{'report generation':34s} target < 1 s: {'met' if rows[2][1] < 1 else 'NOT met'} "
              f"({rows[2][1] / rows[0][1]:.1f}x analyze)")
        if args.baseline:
            against_baseline(net, os.path.abspath(args.baseline), args.repeat,
                             ["report", net, "-o", page], "report resnet152-like")
        from cdp import Browser, find_chromium

        exe = find_chromium()
        if exe is None:
            print("no chromium: page readiness not measured")
            return
        b = Browser(exe)
        try:
            ready = []
            for _ in range(args.repeat):
                ready.append(b.open("file://" + page))
                b.page("Page.navigate", url="about:blank")
                b.pump(0.2)
            ready.sort()
            print(f"{'ready in headless chromium':34s} {ready[len(ready) // 2]:6.3f} s median of {len(ready)}; "
                  f"target < 2 s: {'met' if ready[len(ready) // 2] < 2 else 'NOT met'}")
        finally:
            b.close()


if __name__ == "__main__":
    main()
