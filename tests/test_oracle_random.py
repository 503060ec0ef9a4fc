"""caffemem against ../shared/oracle-random: 100 random nets run by real Caffe (CPU build).

Each numbered folder holds ``net.prototxt``, ``solver.prototxt`` and two runs (see the
folder's README): ``time/`` (``caffe time``: the net in TRAIN phase, forward and backward) and
``train/`` (``caffe train -solver solver.prototxt``: the solver's type, CPU mode, and a test
net when the generator made one).  For every run (``NNNN/time``, ``NNNN/train``):

- **log**: when Caffe built and ran the net, caffemem's reproduction of the setup lines
  (``Setting up``, every ``Top shape``, ``with loss weight``, every ``Memory required for
  data``) equals the log's, for every net the command built (train and test nets, and the
  unrolled nets of recurrent layers), line for line;
- **refusal**: when Caffe refused the net (a check failed in a layer's set-up, or ``caffe
  time`` died in a layer with no Backward), caffemem refuses it too: its message names the
  same layer (or, for a missing Backward, a layer of the same type) and gives the same
  reason, compared by meaning (``caffe_runs.REASONS``) and by the value the reason carries
  (the negative dimension, the out-of-range axis, the shared param's name);
- **heap**: caffemem's CPU model of the run (``mode cpu``, ``engine caffe``; for ``train`` the
  solver's type, regularization and test schedule) is within 2% (or 1 MiB for nets under
  50 MiB) of ``heap.txt`` PEAK minus the README's baseline for that command
  (``BASELINES``: the same build's peak on the tiny baseline net, process overhead).

A run that failed today is listed in ``EXPECTED_FAILURES`` below with its diagnosed cause
(the diagnosis of issue 14); it runs as ``xfail(strict=True)``, so the fix of a
cause turns exactly its cases into unexpected passes, which fail until the entry is removed.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from caffemem.analysis import AnalysisOptions, build_all
from caffemem.errors import UserError
from caffemem.loader import load
from caffemem.memory import MemoryEnv, model_memory
from caffemem.report.caffelog import net_lines

from caffe_runs import Outcome, outcome, reason_of
from conftest import shared_or_skip
from conformance import log_setup_lines

ORACLE = Path(__file__).resolve().parents[1].parent / "shared" / "oracle-random"
MiB = 1 << 20
SCENARIOS = ("time", "train")

#: "NNNN/scenario" -> cause, per check; each entry is one diagnosed failure of today
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "log": {},
    "refusal": {},
    "heap": {},
}


def _skip_without_oracle() -> None:
    shared_or_skip("oracle-random")


def _runs() -> list[str]:
    if not ORACLE.is_dir():
        return []
    return [f"{d.name}/{s}" for d in sorted(ORACLE.iterdir())
            if (d / "net.prototxt").is_file() for s in SCENARIOS if (d / s / "rc.txt").is_file()]


@functools.lru_cache(maxsize=None)
def caffe(run: str) -> Outcome:
    return outcome(ORACLE / run)


def _source(run: str) -> Path:
    folder, scenario = run.split("/")
    return ORACLE / folder / ("net.prototxt" if scenario == "time" else "solver.prototxt")


def _env(run: str) -> MemoryEnv:
    scenario = run.split("/")[1]
    if scenario == "time":
        return MemoryEnv(scenario="time", mode="cpu", engine="caffe")
    solver = load(str(_source(run))).solver
    return MemoryEnv.for_solver(solver, mode="cpu", engine="caffe", scenario="train")


@functools.lru_cache(maxsize=None)
def caffemem(run: str):
    """(nets, modeled CPU peak) for a run, or the UserError with which caffemem refuses it
    (building the nets, or modeling the command: ``caffe time`` runs every Backward)."""
    try:
        nets = build_all(str(_source(run)), AnalysisOptions())
        return nets, model_memory(nets, _env(run)).total_bytes
    except UserError as e:
        return e


def _cases(check: str, wanted) -> list:
    runs = [r for r in _runs() if wanted(caffe(r))]
    if not runs:
        return [pytest.param("(no oracle)", id="no-oracle")]
    table = EXPECTED_FAILURES[check]
    return [pytest.param(r, id=r.replace("/", "-"),
                         marks=[pytest.mark.xfail(strict=True, reason=table[r])] if r in table else [])
            for r in runs]


def _built(run: str):
    got = caffemem(run)
    if isinstance(got, UserError):
        pytest.fail(f"{run}: Caffe ran this net, caffemem refuses it: {got}")
    return got


@pytest.mark.parametrize("run", _cases("log", lambda o: o.ran))
def test_setup_lines_match_caffe(run):
    """Top shapes, loss weights and every 'Memory required for data', line for line."""
    _skip_without_oracle()
    nets, _ = _built(run)
    expected = log_setup_lines(ORACLE / run / "caffe.log")
    got = [line for net in nets for line in net_lines(net)]
    for i, (ours, theirs) in enumerate(zip(got, expected)):
        if ours != theirs:
            layer = next((e for e in reversed(expected[:i + 1]) if e.startswith("Setting up")), "?")
            pytest.fail(f"{run}: setup line {i} (in '{layer}'): caffemem '{ours}', Caffe '{theirs}'")
    assert len(got) == len(expected), f"{run}: caffemem gives {len(got)} setup lines, Caffe {len(expected)}"


@pytest.mark.parametrize("run", _cases("refusal", lambda o: not o.ran))
def test_refuses_where_caffe_refused(run):
    """Same layer (a layer of the same type, for a missing Backward), same reason."""
    _skip_without_oracle()
    theirs = caffe(run)
    reason = theirs.reason
    assert reason is not None, (f"{run}: Caffe's failure '{theirs.check}' ({theirs.where}) has no "
                                f"normalized reason yet: add one to caffe_runs.REASONS")
    got = caffemem(run)
    if not isinstance(got, UserError):
        pytest.fail(f"{run}: Caffe refused ({theirs.where}: {theirs.check}); caffemem does not refuse")
    message = str(got)
    ours = reason_of(message, "caffemem")
    assert ours == reason, (f"{run}: Caffe's reason {reason} ({theirs.check}), caffemem's "
                            f"{ours} ({message})")
    if theirs.kind == "no_backward":
        named = re.findall(r"'([^']+)'", message)
        types = {l.name: l.type for net in build_all(str(_source(run))) for l in net.layers}
        assert any(types.get(n) == theirs.layer_type for n in named), \
            f"{run}: Caffe died in a {theirs.layer_type} Backward; caffemem's message names no such layer: {message}"
    else:
        assert f"'{theirs.layer}'" in message, \
            f"{run}: Caffe refused layer '{theirs.layer}'; caffemem's message: {message}"


def tolerance(real: int) -> int:
    return MiB if real < 50 * MiB else real * 2 // 100


@functools.lru_cache(maxsize=None)
def baselines() -> dict[str, int]:
    lines = (ORACLE / "BASELINES").read_text().split("\n")
    return {k: int(v) for k, v in (line.split() for line in lines if line.strip())}


@pytest.mark.parametrize("run", _cases("heap", lambda o: o.ran))
def test_cpu_heap_matches_caffe(run):
    _skip_without_oracle()
    heap = ORACLE / run / "heap.txt"
    if not heap.is_file():
        pytest.skip(f"{run}: no heap.txt (the run {caffe(run).kind.replace('_', ' ')}; the "
                    f"heap counter writes its figures only at a normal exit)")
    real = int(heap.read_text().split()[0]) - baselines()[run.split("/")[1]]
    _, modeled = _built(run)
    err = modeled - real
    assert abs(err) <= tolerance(real), (f"{run}: modeled {modeled:,} B, Caffe {real:,} B (PEAK "
                                         f"minus baseline): off by {err:+,} B, tolerance {tolerance(real):,} B")


def test_oracle_outcomes_are_all_understood():
    """Every run is one of: ran, crashed after finishing, refused with a known reason."""
    _skip_without_oracle()
    unknown = [f"{r}: {caffe(r).check}" for r in _runs()
               if not caffe(r).ran and caffe(r).reason is None]
    assert not unknown, "Caffe failures with no normalized reason:\n" + "\n".join(unknown)
