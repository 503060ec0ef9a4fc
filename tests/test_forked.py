"""caffemem/forked.py: jobs run at once in forked children give what they give run here, and
a job that fails in any way is simply left out (the caller makes it again)."""

from __future__ import annotations

import os
import threading

import pytest

import caffemem.forked as forked
from caffemem.errors import notice, take_notices
from caffemem.cli import main

from conftest import SAMPLES

needs_fork = pytest.mark.skipif(not forked.can_fork(), reason="needs os.fork and more than one CPU")


def _raise():
    raise ValueError("no")


def _noted():
    notice("a warning noted in a child")
    return 7


@needs_fork
def test_results_are_those_of_the_jobs_and_failures_are_left_out():
    take_notices()
    jobs = [("here", lambda: os.getpid()), ("child", lambda: os.getpid()), ("raises", _raise),
            ("dies", lambda: os._exit(3)), ("unpicklable", lambda: threading.Lock()),
            ("noted", _noted), ("big", lambda: list(range(300_000)))]
    got = forked.warm(jobs)
    assert got["here"] == os.getpid() and got["child"] != os.getpid()  # the rest ran elsewhere
    assert set(got) == {"here", "child", "noted", "big"}
    assert got["noted"] == 7 and got["big"] == list(range(300_000))
    assert take_notices() == ["a warning noted in a child"]


def test_without_fork_every_job_runs_here(monkeypatch):
    monkeypatch.setattr(forked, "can_fork", lambda: False)
    got = forked.warm([("a", lambda: os.getpid()), ("b", lambda: os.getpid()), ("c", _raise)])
    assert got == {"a": os.getpid(), "b": os.getpid()}
    assert forked.warm([]) == {}


@pytest.mark.parametrize("args", [[], ["--batch", "1"], ["--engine", "caffe", "--batch", "300"]])
def test_card_table_is_the_same_made_serially(tmp_path, monkeypatch, args):
    """The report's card table probes several batches at once: the same page as one by one."""
    solver = str(SAMPLES / "small_cnn_solver.prototxt")
    can, spawn, spawned = forked.can_fork(), forked._spawn, []
    monkeypatch.setattr(forked, "_spawn", lambda fn: spawned.append(1) or spawn(fn))
    pages = []
    for fork in (True, False):
        if not fork:
            monkeypatch.setattr(forked, "can_fork", lambda: False)
        out = tmp_path / f"r{fork}.html"
        assert main(["report", solver, *args, "-o", str(out)]) == 0
        pages.append(out.read_bytes())
    assert pages[0] == pages[1]
    assert spawned or not can  # the first page was made with children
