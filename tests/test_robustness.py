"""Every reproducer in ../shared/robustness behaves as its EXPECT.txt says.

Each folder there is one crash, hang, traceback, wrong figure, multi-line error or silent
report on junk that a mutation fuzz found, with the commands that show it (CMD.txt) and what
a good tool does (EXPECT.txt).  The table below turns each EXPECT.txt into assertions on the
exit status, stderr (one line, no traceback, no raw control character), what the message
names, and time.  A reproducer whose fix belongs to another issue's branch is marked with ``owner=N``
(``xfail(strict=True)``): it flips to a failure, to be unmarked, when that work merges.
A folder without an entry here fails :func:`test_every_reproducer_has_an_entry`.
"""

from __future__ import annotations

import csv
import io
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROBUSTNESS = ROOT.parent / "shared" / "robustness"

pytestmark = pytest.mark.skipif(not ROBUSTNESS.is_dir(),
                                reason="../shared/robustness is absent (CI has it)")


@dataclass
class Result:
    code: int
    out: str
    err: str
    cpu: float  # seconds of CPU the command used (user + sys), robust to a loaded machine
    wall: float


def _run_here(folder: Path, args: list[str]) -> Result:
    """``caffemem ARGS`` run from ``folder`` in this process (for the quick, harmless steps)."""
    from contextlib import redirect_stderr, redirect_stdout

    from caffemem.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    t, c = time.monotonic(), time.process_time()
    try:
        os.chdir(folder)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # --help and --version only
                code = int(e.code or 0)
    finally:
        os.chdir(cwd)
    return Result(code, out.getvalue(), err.getvalue(), time.process_time() - c, time.monotonic() - t)


def _run(folder: Path, args: list[str], timeout: float = 60) -> Result:
    """``caffemem ARGS`` run from ``folder`` as a user runs it (a subprocess)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CAFFEMEM_DEBUG", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "caffemem", *args], cwd=folder, env=env,
                           capture_output=True, text=True, timeout=timeout)
        code, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        code, out, err = 124, "", f"timeout after {timeout} s {e.stderr or ''}"
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Result(code, out, err, cpu, time.monotonic() - t)


def one_line_error(r: Result, *says: str) -> None:
    """Exit 1, exactly one line on stderr naming what it must, nothing raw or internal."""
    assert r.code == 1, (r.code, r.err[-2000:])
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("caffemem: error: "), r.err[-2000:]
    assert "Traceback" not in r.err and "internal error" not in r.err
    assert not any(c in r.err[:-1] for c in "\r\x1b\x07\x08\x0b\x0c"), repr(r.err)
    for s in says:
        assert s in lines[0], lines[0]


def answered(r: Result, cpu_limit: float = 20.0) -> None:
    """Exit 0 within the fuzzer's 20 s (CPU seconds: the machine may be loaded)."""
    assert r.code == 0, (r.code, r.err[-2000:])
    assert "Traceback" not in r.err and "internal error" not in r.err
    assert r.cpu < cpu_limit, f"{r.cpu:.1f} s of CPU"


def _csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@dataclass
class Step:
    args: list[str]
    check: Callable[[Result], None]
    timeout: float = 60
    #: run as a separate process (what may crash, hang or take seconds); else in this one
    process: bool = False
    #: the issue whose branch fixes it (the step is an expected failure until that merges)
    owner: Optional[int] = None


@dataclass
class Repro:
    steps: list[Step]
    make_input: bool = False
    extra: dict = field(default_factory=dict)


def _neg(*names):
    return lambda r: one_line_error(r, *names, "negative dimension", "shape[i] >= 0")


def _plain_rows(folder: Path) -> list[dict]:
    return _csv_rows(_run_here(folder, ["log", "plain.log", "--format", "csv"]).out)


def _same_rows_or_named(problem: str):
    """EXPECT 19: the same rows as plain.log, or exit 1 naming the problem."""
    def check(r: Result, folder: Path) -> None:
        if r.code == 0:
            rows = _csv_rows(r.out)
            assert rows and rows == _plain_rows(folder), r.out
        else:
            one_line_error(r, problem)
    check.needs_folder = True
    return check


REPROS: dict[str, Repro] = {
    "01-crash-fit-recurrent": Repro([
        Step(["fit", "rand49.prototxt", "--gpu-mem", "8G"],
             lambda r: (one_line_error(r, "recurrent", "rnn_16") if r.code else answered(r), None)[1],
             timeout=40, process=True),
        Step(["fit", "rnn.prototxt", "--gpu-mem", "8G"],
             lambda r: (one_line_error(r, "recurrent", "'rnn'") if r.code else answered(r), None)[1],
             timeout=40, process=True),
        Step(["analyze", "rand49.prototxt"], answered),
    ]),
    "02-wrong-negative-dims": Repro([
        Step(["analyze", "neg_dim.prototxt", "--format", "json"], _neg("layer 'd'", "(-1)")),
        Step(["analyze", "v0_neg.prototxt"], _neg()),
        Step(["fit", "neg_dim.prototxt", "--gpu-mem", "8G"], _neg("layer 'd'")),
        Step(["diff", "neg_dim.prototxt", "v0_neg.prototxt"], _neg()),
        Step(["plot", "neg_dim.prototxt", "-o", "out.png"], _neg()),
    ]),
    "03-traceback-same-top-twice": Repro([
        Step(["analyze", "net.prototxt"],
             lambda r: one_line_error(r, "layer 'd'", "top blob 'x' produced by multiple sources",
                                      "twice by layer 'd'")),
    ]),
    "04-traceback-log-bottomless-layer": Repro([
        Step(["log", "crash.log"],
             lambda r: (one_line_error(r, "ReLU") if r.code else answered(r), None)[1], process=True),
    ]),
    "05-traceback-log-huge-iteration": Repro([
        Step(["log", "train.log", "--format", "json"], answered),
        Step(["log", "train.log", "--format", "csv"], answered),
        Step(["log", "train.log"], answered),
    ]),
    "06-traceback-log-huge-test-index": Repro([Step(["log", "train.log"], answered)]),
    "07-hang-log-echo-quadratic": Repro([
        Step(["log", "deep_echo.log"], lambda r: answered(r, cpu_limit=5), timeout=20, process=True),
    ], make_input=True),
    "08-wrong-negative-context-mib": Repro([
        Step(["analyze", "net.prototxt", "--context-mib", "-1000", "--gpu-mem", "8G"],
             lambda r: one_line_error(r, "--context-mib")),
        Step(["fit", "net.prototxt", "--context-mib", "-1", "--gpu-mem", "8G"],
             lambda r: one_line_error(r, "--context-mib")),
    ]),
    "09-traceback-gpu-mem-unparsable": Repro([
        Step(["analyze", "net.prototxt", "--gpu-mem", v], lambda r: one_line_error(r, "--gpu-mem"))
        for v in ("nan", "inf", "1e400", "", "99999999999999999999999PiB", "0")
    ] + [Step(["fit", "net.prototxt", "--gpu-mem", "nan"], lambda r: one_line_error(r, "--gpu-mem"))]),
    "10-traceback-level-out-of-range": Repro([
        Step([cmd, "net.prototxt", "--level", v] + extra, lambda r: one_line_error(r, "--level"))
        for v in ("99999999999999999999", "-9223372036854775809")
        for cmd, extra in (("analyze", []), ("fit", ["--gpu-mem", "8G"]), ("plot", ["-o", "o.png"]))
    ]),
    "11-traceback-workspace-nan": Repro([
        Step(["analyze", "net.prototxt", "--cudnn-workspace-mib", "nan"],
             lambda r: one_line_error(r, "--cudnn-workspace-mib", "between 0 and 8")),
    ]),
    "12-hang-many-gpus": Repro([
        Step(["analyze", "net.prototxt", "--gpus", "1000000"],
             lambda r: (one_line_error(r, "--gpus") if r.code else answered(r, cpu_limit=5), None)[1],
             timeout=5, process=True),
    ]),
    "13-hang-plot-long-name": Repro([
        Step(["plot", "long_name.prototxt", "-o", "out.png"], answered, timeout=40, process=True),
        Step(["analyze", "long_name.prototxt"], answered),
    ], make_input=True),
    "14-hang-big-nets": Repro([
        Step(["analyze", "chain100000.prototxt", "--format", "json", "-o", "out.json"], answered, timeout=90, process=True),
        Step(["fit", "chain30000.prototxt", "--gpu-mem", "8G"], answered, timeout=90, process=True),
        Step(["plot", "chain10000.prototxt", "-o", "out.png"], answered, timeout=90, process=True),
    ], make_input=True),
    "15-multiline-error-raw-echo": Repro([
        # the BOM is read as a BOM: what is left is a net without layers, named as such
        Step(["analyze", "bom_crlf.prototxt"], lambda r: one_line_error(r, "bom_crlf.prototxt", "no layers")),
        Step(["analyze", "escape.prototxt"],
             lambda r: one_line_error(r, "escape.prototxt:1:9:", "'layer { \\x1b[2J")),
    ]),
    "16-silent-junk-empty-net": Repro([
        Step(["analyze", "empty.prototxt"], lambda r: one_line_error(r, "empty.prototxt", "empty file")),
        Step(["fit", "comments.prototxt", "--gpu-mem", "8G"],
             lambda r: one_line_error(r, "comments.prototxt", "no layers")),
        Step(["analyze", "solver.prototxt"], lambda r: one_line_error(r, "empty.prototxt", "empty file")),
        Step(["diff", "empty.prototxt", "comments.prototxt"], lambda r: one_line_error(r, "empty.prototxt")),
        Step(["plot", "comments.prototxt", "-o", "o.png"], lambda r: one_line_error(r, "comments.prototxt")),
    ]),
    "17-silent-junk-all-layers-filtered": Repro([
        Step(["analyze", "net.prototxt"],
             lambda r: one_line_error(r, "no layer of net.prototxt is in the TRAIN net",
                                      'stage: "deploy"', "try --stage deploy")),
        Step(["analyze", "net.prototxt", "--stage", "deploy"], answered),
    ]),
    "18-silent-junk-garbage-log": Repro([
        Step(["log", "text.log"], lambda r: one_line_error(r, "text.log: not a Caffe log")),
        Step(["log", "empty.log", "--format", "csv"], lambda r: one_line_error(r, "empty.log", "empty")),
        Step(["log", "image.log", "--format", "json"], lambda r: one_line_error(r, "image.log", "PNG image")),
        Step(["log", "text.log", "--net", "text.log"], lambda r: one_line_error(r, "text.log")),
    ]),
    "19-silent-junk-unread-log-encodings": Repro([
        Step(["log", "plain.log", "--format", "csv"], lambda r: (answered(r), _rows2(r))[1]),
        Step(["log", "utf16.log", "--format", "csv"], _same_rows_or_named("UTF-16")),
        Step(["log", "indented.log", "--format", "csv"], _same_rows_or_named("indented")),
    ]),
}


def _rows2(r: Result) -> None:
    assert len(_csv_rows(r.out)) == 2, r.out


def _params():
    for name, repro in REPROS.items():
        for i, step in enumerate(repro.steps):
            marks = [pytest.mark.xfail(strict=True, reason=f"fixed on the issue-{step.owner} branch")] \
                if step.owner else []
            yield pytest.param(name, i, id=f"{name}:{' '.join(step.args)[:60]}", marks=marks)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A writable copy of every reproducer folder, inputs made once (make_input.py)."""
    base = tmp_path_factory.mktemp("robustness")
    made = {}

    def get(name: str) -> Path:
        if name not in made:
            d = base / name
            shutil.copytree(ROBUSTNESS / name, d)
            for p in d.rglob("*"):
                p.chmod(0o755 if p.is_dir() else 0o644)
            if REPROS[name].make_input:
                subprocess.run([sys.executable, "make_input.py"], cwd=d, check=True, timeout=120)
            made[name] = d
        return made[name]
    return get


@pytest.mark.parametrize("name, index", list(_params()))
def test_reproducer_behaves_as_expected(name, index, workdir):
    folder = workdir(name)
    step = REPROS[name].steps[index]
    r = _run(folder, step.args, timeout=step.timeout) if step.process else _run_here(folder, step.args)
    if getattr(step.check, "needs_folder", False):
        step.check(r, folder)
    else:
        step.check(r)


def test_every_reproducer_has_an_entry():
    folders = sorted(p.name for p in ROBUSTNESS.iterdir() if p.is_dir())
    assert folders and set(folders) <= set(REPROS), sorted(set(folders) - set(REPROS))
