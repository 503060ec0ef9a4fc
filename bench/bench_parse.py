"""Benchmark: reading a prototxt, protobuf's text parser (the baseline) against caffemem's
(``caffemem.prototxt.parse_text``: a one-pass fast path, protobuf's parser for anything
unusual), in the same run, on the generated nets of bench_analyze.py and on the chains of
../shared/robustness/14 (an Input and N ReLUs); then the whole ``analyze --format json`` and
``fit`` processes on those chains, CPU seconds (robust to a loaded machine).

    python bench/bench_parse.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_analyze import chain as mixed_chain, resnet  # noqa: E402

from caffemem.pb import caffe_pb2, text_format  # noqa: E402
from caffemem.prototxt import parse_text  # noqa: E402


def relu_chain(n: int) -> str:
    out = ['layer { name: "d" type: "Input" top: "b0" input_param { shape { dim: 1 dim: 2 dim: 3 dim: 3 } } }']
    out += [f'layer {{ name: "r{i}" type: "ReLU" bottom: "b{i - 1}" top: "b{i}" }}' for i in range(1, n + 1)]
    return "\n".join(out) + "\n"


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def cpu_of(args: list[str], cwd: str) -> tuple[float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([sys.executable, "-m", "caffemem", *args], cwd=cwd, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), p.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    nets = [("resnet152-like", resnet()), ("mixed chain 10^4", mixed_chain(10_000)),
            ("ReLU chain 10^4", relu_chain(10_000)), ("ReLU chain 10^5", relu_chain(100_000))]
    print(f"{'net':18s} {'protobuf':>10s} {'caffemem':>10s} {'speed-up':>9s}  same message")
    for label, text in nets:
        slow_msg, fast_msg = caffe_pb2.NetParameter(), caffe_pb2.NetParameter()
        rep = 1 if len(text) > 5_000_000 else args.repeat
        slow = best_of(rep, lambda: text_format.Parse(text, slow_msg.__class__()))
        fast = best_of(rep, lambda: parse_text(text, fast_msg.__class__()))
        text_format.Parse(text, slow_msg)
        parse_text(text, fast_msg)
        same = slow_msg.SerializeToString() == fast_msg.SerializeToString()
        print(f"{label:18s} {slow:9.2f}s {fast:9.2f}s {slow / fast:8.1f}x  {same}")
    with tempfile.TemporaryDirectory() as d:
        for n in (10_000, 30_000, 100_000):
            Path(d, f"chain{n}.prototxt").write_text(relu_chain(n))
        print("\nwhole process, CPU seconds (robustness 14: nothing past 20 s)")
        for cmd in (["analyze", "chain100000.prototxt", "--format", "json", "-o", "out.json"],
                    ["fit", "chain30000.prototxt", "--gpu-mem", "8G"],
                    ["plot", "chain10000.prototxt", "-o", "out.png"]):
            cpu, code = cpu_of(cmd, d)
            print(f"  caffemem {' '.join(cmd):58s} {cpu:6.1f} s  (exit {code})")


if __name__ == "__main__":
    main()
