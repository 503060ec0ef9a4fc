"""A seeded mutation fuzz through every command (tools/fuzz.py has the generator and the
long run): damaged, hostile and junk nets, solvers and logs never give a traceback, a
multi-line error, a hang, or a negative or fractional byte count."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import signal
import sys
from pathlib import Path

import pytest

from caffemem.cli import main

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("caffemem_fuzz", ROOT / "tools" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
sys.modules["caffemem_fuzz"] = fuzz
_spec.loader.exec_module(fuzz)

CASES = 300
SECONDS_PER_CASE = 20


class Hang(BaseException):
    """Raised by the alarm; not an Exception, so the CLI's own handler does not take it."""


def _alarm(signum, frame):
    raise Hang()


def _run(case, folder: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS_PER_CASE)
    try:
        os.chdir(folder)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(case.argv))
    except Hang:
        code = 124
        err.write(f"hang: no answer in {SECONDS_PER_CASE} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


def test_cases_are_seeded_and_cover_every_command():
    a = [(c.argv, c.files) for c in fuzz.cases(7, 40)]
    assert a == [(c.argv, c.files) for c in fuzz.cases(7, 40)]
    assert {c.argv[0] for c in fuzz.cases(7, 40)} == {"analyze", "fit", "diff", "plot", "report", "log"}


def test_checker_catches_what_it_must():
    case = fuzz.Case(0, {}, ["analyze", "n", "--format", "json"])
    assert fuzz.problems(case, 2, "", "caffemem: internal error: X\n")
    assert fuzz.problems(case, 1, "", "caffemem: error: a\nb\n")
    assert fuzz.problems(case, 1, "", "caffemem: error: \x1b[2J\n")
    assert fuzz.problems(case, 0, '{"total_bytes": -24}', "")
    assert fuzz.problems(case, 0, '{"nets": [{"count": 1.5}]}', "")
    assert not fuzz.problems(case, 0, '{"total_bytes": 24, "delta_bytes": -3}', "")
    assert not fuzz.problems(case, 1, "", "caffemem: error: n: empty file\n")


@pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs SIGALRM for the time limit")
def test_mutated_inputs_through_every_command(tmp_path):
    bad = []
    for case in fuzz.cases(2026, CASES, plots=True):
        folder = tmp_path / f"c{case.number}"
        folder.mkdir()
        fuzz.write(case, folder)
        code, out, err = _run(case, folder)
        found = fuzz.problems(case, code, out, err) + ([err] if code == 124 else [])
        if found:
            bad.append(f"case {case.number}: caffemem {' '.join(case.argv)} "
                       f"[{'; '.join(case.mutations)}]: {'; '.join(found)}")
    assert not bad, "\n".join(bad[:20])
