"""Benchmark: whole-process time of ``caffemem analyze`` on big generated nets.

Targets: a ResNet-152-sized train_val (about 1,000 layers with splits) under 0.5 s and a
generated 10,000-layer net under 3 s (issue 2); ``caffemem fit`` on the ResNet-152-sized net
under 2 s (issue 6).  Prints the figures; asserts nothing.

``--baseline TREE`` (another checkout of caffemem, e.g. ``git worktree add /tmp/before
ca4b8af``) also times ``analyze`` of the ResNet-152-sized net from that tree, the two runs
taking turns, and prints the median of the pairwise ratios (issue 13: no slower than before
the layer-rule redesign).  ``--big`` adds the robustness cases of
``../shared/robustness/14-hang-big-nets`` (chains of ReLU layers: ``analyze --format json``
on 100,000 layers, ``plot`` on 10,000, ``fit`` on 30,000; each must stay under 20 s), each
also run in the ``--baseline`` tree when one is given.

    python bench/bench_analyze.py [--repeat 3] [--baseline TREE] [--big]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Optional


def resnet(blocks=(3, 8, 36, 3), batch=32) -> str:
    """A ResNet-152-shaped train_val: bottleneck blocks with BatchNorm+Scale, eltwise sums."""
    out = ['name: "resnet152_like"',
           f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: {batch} dim: 3 dim: 224 dim: 224 }} }} }}',
           f'layer {{ name: "label" type: "Input" top: "label" input_param {{ shape {{ dim: {batch} }} }} }}']

    def conv(name, bottom, nout, k, s, p):
        out.append(f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
                   f'convolution_param {{ num_output: {nout} kernel_size: {k} stride: {s} pad: {p} bias_term: false }} }}')
        out.append(f'layer {{ name: "bn_{name}" type: "BatchNorm" bottom: "{name}" top: "{name}" }}')
        out.append(f'layer {{ name: "scale_{name}" type: "Scale" bottom: "{name}" top: "{name}" scale_param {{ bias_term: true }} }}')
        return name

    x = conv("conv1", "data", 64, 7, 2, 3)
    out.append(f'layer {{ name: "conv1_relu" type: "ReLU" bottom: "{x}" top: "{x}" }}')
    out.append(f'layer {{ name: "pool1" type: "Pooling" bottom: "{x}" top: "pool1" pooling_param {{ pool: MAX kernel_size: 3 stride: 2 }} }}')
    x, width = "pool1", 64
    for stage, n in enumerate(blocks, 2):
        for b in range(n):
            pre = f"res{stage}_{b}"
            stride = 2 if b == 0 and stage > 2 else 1
            if b == 0:
                short = conv(f"{pre}_proj", x, width * 4, 1, stride, 0)
            else:
                short = x
            y = conv(f"{pre}_a", x, width, 1, stride, 0)
            out.append(f'layer {{ name: "{pre}_a_relu" type: "ReLU" bottom: "{y}" top: "{y}" }}')
            y = conv(f"{pre}_b", y, width, 3, 1, 1)
            out.append(f'layer {{ name: "{pre}_b_relu" type: "ReLU" bottom: "{y}" top: "{y}" }}')
            y = conv(f"{pre}_c", y, width * 4, 1, 1, 0)
            out.append(f'layer {{ name: "{pre}" type: "Eltwise" bottom: "{short}" bottom: "{y}" top: "{pre}" }}')
            out.append(f'layer {{ name: "{pre}_relu" type: "ReLU" bottom: "{pre}" top: "{pre}" }}')
            x = pre
        width *= 2
    out.append(f'layer {{ name: "pool5" type: "Pooling" bottom: "{x}" top: "pool5" pooling_param {{ pool: AVE global_pooling: true }} }}')
    out.append('layer { name: "fc1000" type: "InnerProduct" bottom: "pool5" top: "fc1000" inner_product_param { num_output: 1000 } }')
    out.append('layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc1000" bottom: "label" top: "loss" }')
    out.append('layer { name: "acc" type: "Accuracy" bottom: "fc1000" bottom: "label" top: "acc" }')
    return "\n".join(out) + "\n"


def chain(n: int) -> str:
    out = ['name: "chain"', 'layer { name: "data" type: "Input" top: "b0" input_param { shape { dim: 8 dim: 16 dim: 32 dim: 32 } } }']
    for i in range(1, n):
        kind = i % 3
        if kind == 0:
            out.append(f'layer {{ name: "c{i}" type: "Convolution" bottom: "b{i-1}" top: "b{i}" '
                       f'convolution_param {{ num_output: 16 kernel_size: 3 pad: 1 }} }}')
        elif kind == 1:
            out.append(f'layer {{ name: "r{i}" type: "ReLU" bottom: "b{i-1}" top: "b{i}" }}')
        else:
            out.append(f'layer {{ name: "s{i}" type: "Scale" bottom: "b{i-1}" top: "b{i}" scale_param {{ bias_term: true }} }}')
    return "\n".join(out) + "\n"


def relu_chain(n: int) -> str:
    """The robustness reproducer's net: an Input and ``n`` ReLU layers in a chain."""
    out = ['layer { name: "d" type: "Input" top: "b0" input_param { shape { dim: 1 dim: 2 dim: 3 dim: 3 } } }']
    out += [f'layer {{ name: "r{i}" type: "ReLU" bottom: "b{i - 1}" top: "b{i}" }}' for i in range(1, n + 1)]
    return "\n".join(out) + "\n"


def once(args: list[str], cwd: str = ".") -> float:
    """Seconds of one whole ``python -m caffemem ARGS`` process run in ``cwd``."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "caffemem", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    secs = time.perf_counter() - t
    if p.returncode not in (0, 3):
        raise SystemExit(f"caffemem {' '.join(args)} failed in {cwd}: {p.stderr}")
    return secs


def against_baseline(path: str, tree: str, repeat: int, args=None, label: str = "resnet152-like",
                     target: float = 1.0) -> None:
    """``caffemem ARGS`` (default ``analyze PATH --format json``) here and in ``tree``, in
    turns; the median pairwise ratio against ``target``."""
    args = args or ["analyze", path, "--format", "json"]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    once(args, here), once(args, tree)  # warm-up (file cache, bytecode)
    pairs = [(once(args, here), once(args, tree)) for _ in range(max(repeat, 5))]
    ratios = sorted(a / b for a, b in pairs)
    now, before = sorted(a for a, _ in pairs), sorted(b for _, b in pairs)
    mid = len(pairs) // 2
    print(f"{label + ', this tree':34s} {now[mid]:6.3f} s median of {len(pairs)}")
    print(f"{label + ', baseline':34s} {before[mid]:6.3f} s median ({tree})")
    print(f"{'ratio this/baseline':34s} {ratios[mid]:6.3f} median of pairwise ratios "
          f"({ratios[0]:.3f}-{ratios[-1]:.3f}); target <= {target:g}: "
          f"{'met' if ratios[mid] <= target else 'NOT met'}")


def big(d: str, tree: Optional[str] = None) -> None:
    """The robustness cases: analyze --format json on 100,000 layers, plot on 10,000, fit on
    30,000 (one run each; each under 20 s); with ``tree``, each also run there right after."""
    net = {n: os.path.join(d, f"chain{n}.prototxt") for n in (10_000, 30_000, 100_000)}
    for n, path in net.items():
        with open(path, "w") as f:
            f.write(relu_chain(n))
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for label, args in (("analyze json, 100,000 ReLU", ["analyze", net[100_000], "--format", "json"]),
                        ("plot, 10,000 ReLU", ["plot", net[10_000], "-o", os.path.join(d, "out.png")]),
                        ("fit 8G, 30,000 ReLU", ["fit", net[30_000], "--gpu-mem", "8G"])):
        secs = once(args, here)
        line = f"{label:34s} {secs:6.3f} s whole process; limit 20 s: {'met' if secs < 20 else 'NOT met'}"
        if tree:
            line += f"  (baseline {once(args, tree):6.3f} s)"
        print(line)


def timed(path: str, repeat: int) -> tuple[float, int]:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "caffemem", "analyze", path, "--format", "json"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        best = min(best, time.perf_counter() - t)
        if p.returncode:
            raise SystemExit(f"analyze failed on {path}: {p.stderr}")
    with open(path) as f:
        layers = sum(1 for line in f if line.startswith("layer"))
    return best, layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", metavar="TREE", help="another caffemem checkout to time analyze against")
    ap.add_argument("--big", action="store_true", help="also the robustness cases (a minute or more)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cases = [("resnet152-like train_val", resnet(), 0.5), ("10,000-layer chain", chain(10_000), 3.0)]
        for label, text, target in cases:
            path = os.path.join(d, "net.prototxt")
            with open(path, "w") as f:
                f.write(text)
            secs, layers = timed(path, args.repeat)
            print(f"{label:28s} {layers:6d} layers  {secs:6.3f} s whole process (best of {args.repeat}); "
                  f"target < {target} s: {'met' if secs < target else 'NOT met'}")
        path = os.path.join(d, "resnet.prototxt")
        with open(path, "w") as f:
            f.write(resnet())
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "caffemem", "fit", path, "--gpu-mem", "11GB"],
                               capture_output=True, text=True)
            best = min(best, time.perf_counter() - t)
        print(f"{'fit, resnet152-like':28s} {'':13s} {best:6.3f} s whole process; target < 2 s: "
              f"{'met' if best < 2 else 'NOT met'}  [{p.stdout.strip() or p.stderr.strip()}]")
        if args.baseline:
            against_baseline(path, os.path.abspath(args.baseline), args.repeat)
        if args.big:
            big(d, os.path.abspath(args.baseline) if args.baseline else None)


if __name__ == "__main__":
    main()
