"""Benchmark: ``caffemem log`` on large training logs, every output format, against a
per-line parser, in one run.

Two logs of ``--mb`` MiB (default 200):

- *generated*: a BVLC training log written here (per 20 iterations the rate-and-loss line,
  two train outputs and the lr line; a test pass every 1000 iterations), nothing else;
- *real format*: a real training log's training part repeated, its iterations carried on,
  so the line mix is Caffe's own (a data thread's "Waiting for data" and "Restarting data
  prefetching" lines between the solver's, test passes, snapshots).  The source is
  ``--real``, else ../shared/realworld's CaffeNet log when it is there, else
  ``bench/data/bvlc_train_sample.log`` (a log of our own making in BVLC Caffe's format:
  ``--write-sample`` writes it again).

On each log, each in a process of its own and interleaved ``--repeat`` times (the median
counts): the per-line regex baseline in the style of Caffe's tools/extra/parse_log.py
(three searches per line, rows kept as tuples), then ``caffemem log`` with ``--format
text``, ``csv`` and ``json`` (output to /dev/null).  Prints time, throughput, the speed-up
over the baseline, CPU time (user + system, every thread) and its ratio (the fairer figure
when other work shares the machine), and peak RSS (per process, from wait4).  ``--big-mb N`` also runs every
format once on an N MiB generated log, for memory.  Asserts nothing.

Every child runs with Python's bytecode cached (in the bench's temporary folder, after one
untimed run of each command), as an installed caffemem has it, whatever
PYTHONDONTWRITEBYTECODE says.  The first line says which scanner ``caffemem`` runs here:
"c" when the extension is built (``pip install .``, or ``python setup.py build_ext
--inplace`` for this checkout), else "numpy".

    python bench/bench_log.py [--mb 200] [--repeat 3] [--real LOG] [--big-mb 1024]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "bench", "data", "bvlc_train_sample.log")
SHARED_REAL = os.path.join(os.path.dirname(ROOT), "shared", "realworld", "paired", "cb_caffenet128_bn_after_elu",
                           "caffenet128_BatchNormAfterELU.log")

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


def generate(path: str, mb: int) -> None:
    """A BVLC training log: solver header, then per 20 iterations the rate-and-loss line,
    two train outputs and the lr line, with a two-output test pass every 1000 iterations."""
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


def write_sample(path: str) -> None:
    """A small training log in BVLC Caffe's format (2017 and later), with its line mix: the
    solver and net set-up, then the solver's lines with a data thread's chatter between
    them, test passes with their prefetch restarts, and snapshots.  Values are seeded."""
    rng = random.Random(15)
    clock = [9 * 3600 + 12 * 60 + 5.0]

    def line(tid: int, src: str, text: str, sev: str = "I", dt: float = 0.0) -> str:
        clock[0] += dt
        c = clock[0]
        return (f"{sev}0311 {int(c) // 3600 % 24:02d}:{int(c) // 60 % 60:02d}:{int(c) % 60:02d}."
                f"{int(c * 1e6) % 1000000:06d} {tid:5d} {src}] {text}\n")

    main, data, test_data = 7021, 7033, 7040
    out = [line(main, "caffe.cpp:204", "Using GPUs 0"),
           line(main, "caffe.cpp:209", "GPU 0: GeForce GTX 1080 Ti"),
           line(main, "solver.cpp:45", "Initializing solver from parameters: "),
           "test_iter: 100\ntest_interval: 500\nbase_lr: 0.01\ndisplay: 20\nmax_iter: 3000\n"
           "lr_policy: \"step\"\ngamma: 0.1\nmomentum: 0.9\nweight_decay: 0.0005\nstepsize: 1000\n"
           "snapshot: 1000\nsnapshot_prefix: \"snapshots/cifar_quick\"\nsolver_mode: GPU\n"
           "net: \"train_val.prototxt\"\ntrain_state {\n  level: 0\n  stage: \"\"\n}\n",
           line(main, "solver.cpp:102", "Creating training net from net file: train_val.prototxt")]
    for phase, batch, tid in (("TRAIN", 100, data), ("TEST", 50, test_data)):
        if phase == "TEST":
            out.append(line(main, "solver.cpp:190", "Creating test net (#0) specified by net file: train_val.prototxt"))
        out.append(line(main, "net.cpp:51", "Initializing net from parameters: "))
        out.append(f'name: "CIFAR10_quick"\nstate {{\n  phase: {phase}\n}}\nlayer {{\n  name: "cifar"\n'
                   f'  type: "Data"\n  top: "data"\n  top: "label"\n  data_param {{\n    source: "cifar_lmdb"\n'
                   f'    batch_size: {batch}\n    backend: LMDB\n  }}\n}}\nlayer {{\n  name: "conv1"\n'
                   '  type: "Convolution"\n  bottom: "data"\n  top: "conv1"\n  convolution_param {\n'
                   '    num_output: 32\n    pad: 2\n    kernel_size: 5\n  }\n}\nlayer {\n  name: "ip1"\n'
                   '  type: "InnerProduct"\n  bottom: "conv1"\n  top: "ip1"\n  inner_product_param {\n'
                   '    num_output: 10\n  }\n}\nlayer {\n  name: "accuracy"\n  type: "Accuracy"\n'
                   '  bottom: "ip1"\n  bottom: "label"\n  top: "accuracy"\n}\nlayer {\n  name: "loss"\n'
                   '  type: "SoftmaxWithLoss"\n  bottom: "ip1"\n  bottom: "label"\n  top: "loss"\n}\n')
        memory = 0
        for name, tops, shape in (("cifar", ("data", "label"), None), ("conv1", ("conv1",), (32, 32, 32)),
                                  ("ip1", ("ip1",), (10,)), ("accuracy", ("accuracy",), ()),
                                  ("loss", ("loss",), ())):
            out.append(line(main, "layer_factory.hpp:77", f"Creating layer {name}"))
            out.append(line(main, "net.cpp:84", f"Creating Layer {name}"))
            for t in tops:
                out.append(line(main, "net.cpp:380", f"{name} -> {t}"))
            if name == "cifar":
                out.append(line(tid, "db_lmdb.cpp:35", "Opened lmdb cifar_lmdb"))
                out.append(line(main, "data_layer.cpp:45", f"output data size: {batch},3,32,32"))
            out.append(line(main, "net.cpp:122", f"Setting up {name}"))
            shapes = [(batch, 3, 32, 32), (batch,)] if shape is None else [(batch, *shape) if shape else ()]
            for s in shapes:
                count = 1
                for d in s:
                    count *= d
                memory += 4 * count
                out.append(line(main, "net.cpp:129", f"Top shape: {' '.join(map(str, s))} ({count})"))
            out.append(line(main, "net.cpp:137", f"Memory required for data: {memory}"))
        out.append(line(main, "net.cpp:255", "Network initialization done."))
    out.append(line(main, "solver.cpp:57", "Solver scaffolding done."))
    out.append(line(main, "caffe.cpp:239", "Starting Optimization"))
    out.append(line(main, "solver.cpp:293", "Solving CIFAR10_quick"))
    out.append(line(main, "solver.cpp:294", "Learning Rate Policy: step"))
    loss = 2.303
    for it in range(0, 3001, 20):
        if it % 500 == 0:
            out.append(line(main, "solver.cpp:330", f"Iteration {it}, Testing net (#0)", dt=0.4))
            out.append(line(test_data, "data_layer.cpp:73", "Restarting data prefetching from start.", dt=1.1))
            acc = min(0.8, 0.1 + it / 4000 + rng.uniform(-0.01, 0.01))
            out.append(line(main, "solver.cpp:397", f"    Test net output #0: accuracy = {acc:.6g}", dt=0.3))
            tl = loss * rng.uniform(0.95, 1.1)
            out.append(line(main, "solver.cpp:397", f"    Test net output #1: loss = {tl:.6g} (* 1 = {tl:.6g} loss)"))
        loss = max(0.3, loss * rng.uniform(0.97, 1.005))
        secs = rng.uniform(1.9, 2.3)
        rate = 20 / secs
        if it % 140 == 60:
            out.append(line(data, "blocking_queue.cpp:49", "Waiting for data", dt=0.2))
        if it % 260 == 100:
            out.append(line(main, "blocking_queue.cpp:50", "Data layer prefetch queue empty", dt=0.1))
        out.append(line(main, "solver.cpp:218", f"Iteration {it} ({rate:.6g} iter/s, {secs:.6g}s/20 iters), "
                                                f"loss = {loss:.6g}", dt=secs))
        out.append(line(main, "solver.cpp:237", f"    Train net output #0: accuracy = {rng.uniform(0.1, 0.9):.6g}"))
        out.append(line(main, "solver.cpp:237", f"    Train net output #1: loss = {loss:.6g} (* 1 = {loss:.6g} loss)"))
        lr = 0.01 * 0.1 ** (it // 1000)
        out.append(line(main, "sgd_solver.cpp:105", f"Iteration {it}, lr = {lr:.6g}"))
        if it and it % 1000 == 0:
            out.append(line(main, "solver.cpp:447", f"Snapshotting to binary proto file snapshots/cifar_quick_iter_{it}.caffemodel"))
            out.append(line(main, "sgd_solver.cpp:273", "Snapshotting solver state to binary proto file "
                                                        f"snapshots/cifar_quick_iter_{it}.solverstate"))
    out.append(line(main, "solver.cpp:310", "Iteration 3000, loss = 0.412"))
    out.append(line(main, "solver.cpp:315", "Optimization Done."))
    out.append(line(main, "caffe.cpp:250", "Optimization Done."))
    with open(path, "w") as f:
        f.write("".join(out))


def real_format(source: str, path: str, mb: int) -> None:
    """``source``'s training part (its first curve line to its last) repeated, iterations
    carried on, to ``mb`` MiB; what comes before and after it is written once."""
    with open(source, "rb") as f:
        lines = f.read().replace(b"\r\n", b"\n").splitlines(keepends=True)
    curve = [i for i, l in enumerate(lines) if b"] Iteration " in l or b"net output #" in l]
    head, tail = b"".join(lines[:curve[0]]), b"".join(lines[curve[-1] + 1:])
    body = b"".join(lines[curve[0]:curve[-1] + 1])
    its = [int(m) for m in re.findall(rb"Iteration (\d+)", body)]
    step = max(its) + max(1, min((b - a for a, b in zip(its, its[1:]) if b > a), default=1))
    number = re.compile(rb"Iteration (\d+)")
    with open(path, "wb") as f:
        f.write(head)
        written, k = len(head), 0
        while written < mb * 2**20:
            off = k * step
            part = body if not off else number.sub(lambda m: b"Iteration %d" % (int(m.group(1)) + off), body)
            f.write(part)
            written += len(part)
            k += 1
        f.write(tail)


#: the children's environment: Python's bytecode cached (in the bench's temporary folder), as
#: an installed package has it, whatever PYTHONDONTWRITEBYTECODE says here (else every run
#: of caffemem would compile its modules again, and the baseline's one-liner has none)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, all threads) and peak RSS (KiB) of one
    child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, cwd=ROOT, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"{argv[:4]} failed with status {status}")
    return secs, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def _runners(path: str, parse_log: str | None, d: str) -> list[tuple[str, list[str]]]:
    py = sys.executable
    runs = [("per-line regex baseline", [py, "-c", BASELINE, path])]
    if parse_log:
        runs.append(("Caffe parse_log.py", [py, parse_log, path, d]))
    runs += [(f"caffemem log --format {fmt}", [py, "-m", "caffemem", "log", path, "--format", fmt, "--quiet"])
             for fmt in ("text", "csv", "json")]
    return runs


def bench(label: str, path: str, repeat: int, parse_log: str | None, d: str) -> None:
    size = os.path.getsize(path) / 2**20
    with open(path, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    print(f"\n{label}: {size:.0f} MiB, {lines:,} lines; median of {repeat} interleaved runs")
    runs = _runners(path, parse_log, d)
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    cpus: dict[str, list[float]] = {name: [] for name, _ in runs}
    rss: dict[str, int] = {name: 0 for name, _ in runs}
    for _ in range(repeat):
        for name, argv in runs:
            secs, cpu, kib = run(argv)
            times[name].append(secs)
            cpus[name].append(cpu)
            rss[name] = max(rss[name], kib)
    base, base_cpu = statistics.median(times[runs[0][0]]), statistics.median(cpus[runs[0][0]])
    print(f"| {'run':28s} | wall    | MiB/s | vs baseline | CPU     | vs baseline | peak RSS |")
    print(f"|{'-' * 30}|---------|-------|-------------|---------|-------------|----------|")
    for name, _ in runs:
        t, c = statistics.median(times[name]), statistics.median(cpus[name])
        print(f"| {name:28s} | {t:5.2f} s | {size / t:5.0f} | x{base / t:10.2f} | {c:5.2f} s | x{base_cpu / c:10.2f} "
              f"| {rss[name] / 1024:4.0f} MiB |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="size of both logs in MiB [200]")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs of each; the median counts [3]")
    ap.add_argument("--real", metavar="LOG", help="the real log whose training part is repeated")
    ap.add_argument("--big-mb", type=int, default=0, help="also run every format once on a generated log "
                                                          "this big, for peak RSS")
    ap.add_argument("--parse-log", metavar="PATH", help="Caffe's tools/extra/parse_log.py, to time it too")
    ap.add_argument("--write-sample", metavar="PATH", help="write the small BVLC-format sample log and stop")
    ap.add_argument("--keep", action="store_true", help="leave the logs in the temporary folder")
    args = ap.parse_args()
    if args.write_sample:
        write_sample(args.write_sample)
        return
    source = args.real or (SHARED_REAL if os.path.exists(SHARED_REAL) else SAMPLE)
    d = tempfile.mkdtemp(prefix="caffemem-bench-")
    ENV["PYTHONPYCACHEPREFIX"] = os.path.join(d, "pycache")
    gen, real = os.path.join(d, "generated.log"), os.path.join(d, "real_format.log")
    generate(gen, args.mb)
    real_format(source, real, args.mb)
    engine = subprocess.run([sys.executable, "-c", "from caffemem.logparse import fastscan; print(fastscan.engine())"],
                            cwd=ROOT, env=ENV, capture_output=True, text=True).stdout.strip()
    print(f"{os.cpu_count()} CPUs; real-format source: {os.path.relpath(source, ROOT)}; scanner: {engine}"
          + ("" if engine == "c" else " (the C extension is not built here: python setup.py build_ext --inplace)"))
    for _, argv in _runners(SAMPLE, None, d):  # a first run of each caches its bytecode
        run(argv)
    try:
        bench("generated log", gen, args.repeat, args.parse_log, d)
        bench("real-format log", real, args.repeat, args.parse_log, d)
        if args.big_mb:
            big = os.path.join(d, "big.log")
            generate(big, args.big_mb)
            size = os.path.getsize(big) / 2**20
            print(f"\ngenerated log of {size:.0f} MiB, once each:")
            for name, argv in _runners(big, None, d)[1:]:
                secs, _, kib = run(argv)
                print(f"| {name:28s} | {secs:6.2f} s | {size / secs:5.0f} MiB/s | peak RSS {kib / 1024:4.0f} MiB |")
    finally:
        if args.keep:
            print(f"kept {d}")
        else:
            shutil.rmtree(d)


if __name__ == "__main__":
    main()
