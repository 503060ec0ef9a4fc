#!/usr/bin/env python3
"""Seeded mutation fuzz of caffemem: damaged nets, solvers and logs through every command.

Each case is a set of files made from the project's own samples and test logs by one or more
mutations -- truncation, byte flips, deleted or doubled lines (duplicate tops), huge, zero and
negative dimensions and counts, cycles, unknown fields and types, encodings (BOM, UTF-16,
CRLF, Latin-1, NULs), garbage and binary files -- and one command line (analyze in every
format, fit, diff, plot, report, log with and without --net).  A run is good when it:

- exits 0, 1 (the input is wrong) or 3 (does not fit), never 2 or a signal;
- on exit 1, writes exactly one line on stderr, ``caffemem: error: ...``, with no traceback
  and no raw control character;
- finishes within the time limit (no hang);
- in JSON output, gives every byte count and element count as a non-negative integer (no
  wrong sign, no float sizes).

``tests/test_fuzz.py`` runs a few hundred cases in-process in CI; this script runs as many
as asked, each in its own process under a time limit and an address-space cap, as the fuzz
that found ../shared/robustness did::

    python tools/fuzz.py --seed 1 --cases 2000 --timeout 20 --mem-gb 4 --keep failures/
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
LOGS = ROOT / "tests" / "data" / "logs"

SMALL_NETS = [
    'name: "chain"\nlayer { name: "d" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }\n'
    'layer { name: "c" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }\n'
    'layer { name: "r" type: "ReLU" bottom: "c" top: "c" }\n'
    'layer { name: "p" type: "Pooling" bottom: "c" top: "p" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
    'layer { name: "fc" type: "InnerProduct" bottom: "p" top: "fc" inner_product_param { num_output: 5 } }\n'
    'layer { name: "y" type: "Input" top: "y" input_param { shape { dim: 2 } } }\n'
    'layer { name: "l" type: "SoftmaxWithLoss" bottom: "fc" bottom: "y" top: "loss" }\n',
    'name: "v0"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 16\ninput_dim: 16\n'
    'layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 3 } }\n'
    'layers { name: "relu" type: RELU bottom: "conv" top: "conv" }\n',
    'name: "phases"\nlayer { name: "d" type: "DummyData" top: "x" dummy_data_param { shape { dim: 4 dim: 2 } } '
    'include { phase: TRAIN } }\nlayer { name: "t" type: "DummyData" top: "x" dummy_data_param { shape { dim: 2 dim: 2 } } '
    'include { phase: TEST } }\nlayer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip" '
    'inner_product_param { num_output: 3 } }\nlayer { name: "e" type: "Eltwise" bottom: "ip" bottom: "ip" top: "e" }\n',
]
SOLVER = 'net: "{net}"\ntest_iter: 1\ntest_interval: 10\nbase_lr: 0.01\nmax_iter: 100\nsolver_mode: GPU\n'
HUGE = ["0", "-1", "-7", "2147483647", "2147483648", "4294967296", "-2147483648", "9223372036854775807",
        "-9223372036854775809", "99999999999999999999999", "1e30", "nan", "inf", "3.5"]
WORDS = ["layer {", "}", "top: \"x\"", "bottom: \"x\"", "type: \"Convolutoin\"", "type: \"MyForkLayer\"",
         "my_fork_param { a: 1 }", "include { phase: TEST }", "exclude { stage: \"deploy\" }",
         "dim: -3", "num_output: 0", "kernel_size: 99999", "\x1b[2J", "\r", "\x00", "\ufeff",
         "name: \"" + "n" * 300 + "\"", "force_backward: true", "propagate_down: false"]
CONTROL = b"\x00\x01\x07\x08\x0b\x0c\x0d\x1b\x7f\x80\x9f\xff\xfe"
SIZE_KEY = re.compile(r"(bytes|_count|^count|memory_required_for_data|total|needed|capacity)$")
COMMANDS = ("analyze", "analyze-json", "analyze-csv", "fit", "diff", "log", "log-json", "log-csv",
            "log-net", "plot", "report")


@dataclass
class Case:
    """Files to write and one command to run in their folder."""

    number: int
    files: dict[str, bytes]
    argv: list[str]
    mutations: list[str] = field(default_factory=list)

    @property
    def json_output(self) -> bool:
        return "--format" in self.argv and self.argv[self.argv.index("--format") + 1] == "json"


def _mutate_text(rng: random.Random, text: str, notes: list[str]) -> str:
    """One structural mutation of a prototxt's text."""
    lines = text.split("\n")
    op = rng.randrange(9)
    if op == 0 and len(lines) > 1:  # delete a line
        i = rng.randrange(len(lines))
        notes.append(f"delete line {i + 1}")
        del lines[i]
    elif op == 1:  # double a line (duplicate tops, fields given twice)
        i = rng.randrange(len(lines))
        notes.append(f"double line {i + 1}")
        lines.insert(i, lines[i])
    elif op == 2:  # a number made huge, zero, negative or not a number
        nums = [m for m in re.finditer(r"(?<=: )-?\d+(\.\d+)?", text)]
        if nums:
            m = rng.choice(nums)
            v = rng.choice(HUGE)
            notes.append(f"number {m.group(0)} -> {v}")
            return text[:m.start()] + v + text[m.end():]
    elif op == 3:  # a cycle or a dangling blob: one bottom renamed to another blob
        names = re.findall(r'(?:top|bottom): "([^"]+)"', text)
        bottoms = list(re.finditer(r'bottom: "([^"]+)"', text))
        if names and bottoms:
            m = rng.choice(bottoms)
            new = rng.choice(names + ["nowhere"])
            notes.append(f"bottom {m.group(1)} -> {new}")
            return text[:m.start(1)] + new + text[m.end(1):]
    elif op == 4:  # a fork's field or type, or a typo
        i = rng.randrange(len(lines))
        w = rng.choice(WORDS)
        notes.append(f"insert {w[:30]!r}")
        lines.insert(i, w)
    elif op == 5:  # a type replaced
        types = list(re.finditer(r'type: "([^"]+)"', text))
        if types:
            m = rng.choice(types)
            new = rng.choice(["Convolutoin", "relu", "ReLU6", "MultiStageMeanfield", "Proposal", "", "Input",
                              "Data", "Python", "LSTM", "RNN", "Split", "Concat", "Slice", "Reshape"])
            notes.append(f"type {m.group(1)} -> {new}")
            return text[:m.start(1)] + new + text[m.end(1):]
    elif op == 6:  # every layer filtered out, or some
        notes.append("include rules on every layer")
        return text.replace("layer {", 'layer { include { stage: "deploy" }')
    elif op == 7:  # a deep nest
        k = rng.choice([50, 500, 5000])
        notes.append(f"nest {k}")
        return text + "layer { " * k
    else:  # the net repeated (many layers, duplicate names)
        notes.append("repeat body")
        return text + "\n" + text
    return "\n".join(lines)


def _mutate_bytes(rng: random.Random, data: bytes, notes: list[str]) -> bytes:
    """One byte-level mutation: truncation, flips, encodings, garbage."""
    op = rng.randrange(9)
    if op == 0 and data:
        cut = rng.randrange(len(data))
        notes.append(f"truncate at {cut}")
        return data[:cut]
    if op == 1 and data:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.choice(CONTROL + b"{}:\"#0123456789abc")
        notes.append("byte flips")
        return bytes(b)
    if op == 2:
        notes.append("UTF-8 BOM")
        return b"\xef\xbb\xbf" + data
    if op == 3:
        notes.append("UTF-16")
        return data.decode("utf-8", "replace").encode("utf-16")
    if op == 4:
        notes.append("CRLF")
        return data.replace(b"\n", b"\r\n")
    if op == 5:
        notes.append("Latin-1 comment")
        return b"# caf\xe9 \x93net\x94\n" + data
    if op == 6:
        notes.append("binary garbage")
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 3000)))
    if op == 7:
        notes.append("empty")
        return rng.choice([b"", b"   \n", b"# nothing\n"])
    magic = rng.choice([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\x89HDF\r\n\x1a\n", b"\x1f\x8b\x08"])
    notes.append(f"magic {magic[:4]!r}")
    return magic + data[:200]


def _net(rng: random.Random, sources: list[str], notes: list[str]) -> bytes:
    text = rng.choice(sources)
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        text = _mutate_text(rng, text, notes)
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.45:
        data = _mutate_bytes(rng, data, notes)
    return data


def _log(rng: random.Random, sources: list[bytes], notes: list[str]) -> bytes:
    data = bytearray(rng.choice(sources))
    op = rng.randrange(6)
    if op == 0:  # numbers made huge or negative inside Caffe's lines
        text = data.decode("latin-1")
        nums = list(re.finditer(r"\d+", text))
        for m in rng.sample(nums, min(len(nums), rng.randint(1, 6))):
            text = text[:m.start()] + rng.choice(["99999999999999999999999", "-1", "0", "1e400"]) + text[m.end():]
        notes.append("log numbers")
        return text.encode("latin-1")
    if op == 1:  # a net echo with doubled top lines
        notes.append("log doubled lines")
        lines = bytes(data).split(b"\n")
        for _ in range(rng.randint(1, 5)):
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
        return b"\n".join(lines)
    if op == 2:
        notes.append("log indented")
        return b"\n".join(b"    " + l for l in bytes(data).split(b"\n"))
    return _mutate_bytes(rng, bytes(data), notes)


def cases(seed: int, count: int, plots: bool = True) -> Iterator[Case]:
    """``count`` cases from ``seed``: the same seed gives the same cases."""
    rng = random.Random(seed)
    nets = [p.read_text() for p in sorted(SAMPLES.glob("*.prototxt")) if "solver" not in p.name] + SMALL_NETS
    logs = [p.read_bytes() for p in sorted(LOGS.glob("*.log"))]
    commands = [c for c in COMMANDS if plots or c not in ("plot", "report")]
    for n in range(count):
        notes: list[str] = []
        command = commands[n % len(commands)] if rng.random() < 0.7 else rng.choice(commands)
        files: dict[str, bytes] = {}
        if command.startswith("log"):
            files["train.log"] = _log(rng, logs, notes)
            argv = ["log", "train.log"]
            if command == "log-json":
                argv += ["--format", "json"]
            elif command == "log-csv":
                argv += ["--format", "csv"]
            elif command == "log-net":
                files["net.prototxt"] = _net(rng, nets, notes)
                argv += ["--net", "net.prototxt"]
            if rng.random() < 0.3:
                argv += ["--gpu-mem", rng.choice(["2G", "8GiB", "512M"])]
        else:
            files["net.prototxt"] = _net(rng, nets, notes)
            target = "net.prototxt"
            if rng.random() < 0.15:  # through a solver
                files["solver.prototxt"] = SOLVER.format(
                    net=rng.choice(["net.prototxt", "net.prototxt", "missing.prototxt", "solver.prototxt"])).encode()
                target = "solver.prototxt"
                notes.append("via a solver")
            if command == "analyze":
                argv = ["analyze", target]
            elif command == "analyze-json":
                argv = ["analyze", target, "--format", "json"]
            elif command == "analyze-csv":
                argv = ["analyze", target, "--format", rng.choice(["csv", "markdown"])]
            elif command == "fit":
                argv = ["fit", target, "--gpu-mem", rng.choice(["1G", "8G", "64M"])]
            elif command == "diff":
                files["old.prototxt"] = SMALL_NETS[0].encode()
                argv = ["diff", "old.prototxt", target] + (["--format", "json"] if rng.random() < 0.5 else [])
            elif command == "report":
                argv = ["report", target, "-o", "out.html"]
                if rng.random() < 0.3:
                    files["train.log"] = _log(rng, logs, notes)
                    argv += ["--log", "train.log"]
            else:
                argv = ["plot", target, "-o", "out.png"]
            if rng.random() < 0.25:
                opt = rng.choice([["--batch", rng.choice(["1", "0", "-1", "99999999999"])],
                                  ["--input", rng.choice(["x=1,3,8,8", "x=*,3,8,8", "zz=1,2", "x=0,1"])],
                                  ["--phase", rng.choice(["TEST", "train"])], ["--stage", "deploy"],
                                  ["--level", rng.choice(["3", "-2147483648", "2147483648"])],
                                  ["--gpus", rng.choice(["2", "8"])], ["--context-mib", "0"],
                                  ["--cudnn-workspace-mib", rng.choice(["0", "8", "0.5"])],
                                  ["--scenario", rng.choice(["test", "time"])], ["--mode", "cpu"]])
                if argv[0] != "diff" or opt[0] not in ("--batch", "--input", "--phase", "--stage", "--level"):
                    argv += opt
        yield Case(n, files, argv, notes)


def problems(case: Case, code: int, out: str, err: str) -> list[str]:
    """What is wrong with one run's result (empty when it is good)."""
    found = []
    if code not in (0, 1, 3):
        found.append(f"exit status {code}")
    if "Traceback" in err or "internal error" in err:
        found.append("internal error: " + err.strip().splitlines()[-1][:300] if err.strip() else "traceback")
    if code == 1:
        lines = err.splitlines()
        if len(lines) != 1 or not lines[0].startswith("caffemem: error: "):
            found.append(f"{len(lines)} stderr lines: {err[:300]!r}")
        if any(c in err[:-1] for c in "\r\x1b\x00\x07\x08\x0b\x0c"):
            found.append(f"raw control character in {err[:200]!r}")
    if code == 0 and case.json_output and "-o" not in case.argv:
        try:
            doc = json.loads(out)
        except ValueError as e:
            found.append(f"JSON does not parse: {e}")
        else:  # a log's curves are the log's own numbers: only the diagnosis is ours
            found += _bad_sizes(doc.get("diagnosis") if case.argv[0] == "log" else doc, "")
    return found


def _bad_sizes(node, path: str) -> list[str]:
    """Byte and element counts that are floats or negative (deltas may be negative)."""
    bad = []
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}"
            if SIZE_KEY.search(k) and "delta" not in k and not isinstance(v, (dict, list)) and v is not None:
                if isinstance(v, bool) or not isinstance(v, int):
                    bad.append(f"{p} = {v!r} is not an integer")
                elif v < 0:
                    bad.append(f"{p} = {v} is negative")
            bad += _bad_sizes(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node[:2000]):
            bad += _bad_sizes(v, f"{path}[{i}]")
    return bad


def write(case: Case, folder: Path) -> None:
    for name, data in case.files.items():
        (folder / name).write_bytes(data)


def run_process(case: Case, folder: Path, timeout: float, mem_gb: float) -> tuple[int, str, str, float]:
    """One case in its own process, under a time limit and an address-space cap."""
    def limit():  # pragma: no cover - runs in the child
        import resource

        cap = int(mem_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    env.pop("CAFFEMEM_DEBUG", None)
    t = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "caffemem", *case.argv], cwd=folder, env=env,
                           capture_output=True, timeout=timeout, preexec_fn=limit if mem_gb else None)
        return (p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"),
                time.monotonic() - t)
    except subprocess.TimeoutExpired:
        return 124, "", f"hang: no answer in {timeout} s", time.monotonic() - t


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per run (default 20)")
    ap.add_argument("--mem-gb", type=float, default=4.0, help="address-space cap per run (default 4)")
    ap.add_argument("--keep", metavar="DIR", help="copy each failing case's folder here, with CMD.txt")
    args = ap.parse_args(argv)
    bad = 0
    t0 = time.monotonic()
    slowest = (0.0, None)
    for case in cases(args.seed, args.cases):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write(case, folder)
            code, out, err, took = run_process(case, folder, args.timeout, args.mem_gb)
            if took > slowest[0]:
                slowest = (took, case)
            found = problems(case, code, out, err)
            if code == 124:
                found.append(err)
            if found:
                bad += 1
                print(f"case {case.number}: caffemem {' '.join(case.argv)}  [{'; '.join(case.mutations)}]")
                for f in found:
                    print(f"    {f}")
                if args.keep:
                    dest = Path(args.keep) / f"case{case.number}"
                    shutil.copytree(folder, dest, dirs_exist_ok=True)
                    (dest / "CMD.txt").write_text("caffemem " + " ".join(case.argv) + "\n")
    took, case = slowest
    print(f"{args.cases} cases (seed {args.seed}) in {time.monotonic() - t0:.0f} s: {bad} bad; slowest "
          f"{took:.1f} s" + (f" (case {case.number}: {' '.join(case.argv)})" if case else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
