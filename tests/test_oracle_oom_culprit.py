"""Real Caffe's own out-of-memory failures, against ``caffemem log``: the phase, the buffer
that failed and its size, the model's replay against the allocation trace, and the batch
fix checked under the model.

- ../shared/oracle-gpu/alexnet_oom_*: AlexNet trained on a CUDA build of Caffe whose
  cudaMalloc refuses to go over a limit (the folder name); trace.txt.gz lists every
  cudaMalloc and the one refused ("oom SIZE live N").
- ../shared/oracle/oom: GoogLeNet trained on the CPU under a heap limit; EXPECTED.json says
  where each run died.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import shared_or_skip

from caffemem.cli import main

MiB = 2**20
#: the phase each GPU run died in, read from its stack trace (Net::Init from
#: BasePrefetchingDataLayer::LayerSetUp; Solver::Test; Net::Forward from Solver::Step;
#: SGDSolver::ComputeUpdateValue)
GPU_PHASES = {600000000: "net_setup_train", 1150000000: "test_pass", 3000000000: "forward",
              5100000000: "solver_update"}


def run_log(argv: list[str], tmp_path: Path) -> dict:
    out = tmp_path / "log.json"
    assert main(["log", *argv, "--format", "json", "-o", str(out)]) == 0
    return json.loads(out.read_text())


def trace(folder: Path) -> tuple[list[int], int, int]:
    """(sizes of the cudaMallocs of 1 MiB or more before the refused one, its size, the live
    bytes when it was refused)."""
    rows = [line.split() for line in gzip.open(folder / "trace.txt.gz", "rt")]
    i = next(k for k, r in enumerate(rows) if r[0] == "oom")
    big = [int(r[1]) for r in rows[:i] if r[0] == "malloc" and int(r[1]) >= MiB]
    return big, int(rows[i][1]), int(rows[i][3])


@pytest.mark.parametrize("limit", sorted(GPU_PHASES))
def test_gpu_oom_phase_buffer_size_and_replay(limit, tmp_path):
    folder = shared_or_skip("oracle-gpu", f"alexnet_oom_{limit}")
    doc = run_log([str(folder / "caffe.log"), "--gpu-mem", str(limit), "--context-mib", "0"], tmp_path)
    f = doc["failure"]
    big, size, live = trace(folder)
    assert f["phase"] == GPU_PHASES[limit]
    b = f["buffer"]
    assert b is not None and b["bytes"] == size  # the refused request, named
    assert abs(b["live_before_bytes"] - live) <= MiB  # what the card held then
    # the replay's allocations of 1 MiB or more before the failing one are the trace's, in order
    from caffemem.analysis import build_loaded
    from caffemem.culprit import allocations
    from caffemem.diagnose import loaded_from_log, nets_from_summary
    from caffemem.logparse import summarize
    from caffemem.memory import MemoryEnv, replay

    s = summarize(str(folder / "caffe.log"))
    loaded, options = loaded_from_log(nets_from_summary(s), s.solver_echo)
    env = MemoryEnv.for_solver(loaded.solver, engine=doc["diagnosis"]["engine"], context_bytes=0)
    allocs = allocations(replay(build_loaded(loaded, options), env))
    (failing,) = [a for a in allocs if a.what == b["name"] and a.net == b["net"]][:1]
    assert [a.nbytes for a in allocs[:failing.order] if a.nbytes >= MiB] == big


@pytest.mark.parametrize("limit", sorted(GPU_PHASES))
def test_gpu_oom_batch_fix_holds_under_the_model(limit, tmp_path):
    folder = shared_or_skip("oracle-gpu", f"alexnet_oom_{limit}")
    doc = run_log([str(folder / "caffe.log"), "--gpu-mem", str(limit), "--context-mib", "0"], tmp_path)
    from caffemem.analysis import AnalysisOptions, analyze_file
    from caffemem.commands.common import parse_input
    from caffemem.memory import MemoryEnv, fits, model_memory

    inputs = dict(parse_input(a) for a in (folder / "CAFFEMEM_ARGS.txt").read_text().split()[1::2])
    engine = doc["diagnosis"]["engine"]

    def need(batch: int, test_batch=None) -> int:
        loaded, nets = analyze_file(str(folder / "solver.prototxt"), AnalysisOptions(
            inputs=inputs, batch=batch, test_batch=test_batch, batch_train_only=True))
        env = MemoryEnv.for_solver(loaded.solver, engine=engine, context_bytes=0)
        return fits(model_memory(nets, env), limit).needed

    batch_fixes = [f for f in doc["fixes"] if f["action"] == "reduce_batch" and f["confidence"] == "high"]
    if not batch_fixes:  # 600 MB: not even batch 1 trains AlexNet (parameters x3 alone)
        first = doc["fixes"][0]
        assert first["action"] == "larger_gpu" and first["values"]["needs_at_least_bytes"] > limit
        assert need(1, 1) > limit
        return
    fix = batch_fixes[0]
    assert doc["fixes"][0] is not None and fix["fits"] and fix["total_bytes"] <= limit
    v = fix["values"]
    assert need(v["batch_size"], v.get("test_batch")) <= limit
    assert v["batch_size"] * v["iter_size"] >= 256  # the effective batch is kept


def test_cpu_heap_limit_runs_phase_and_culprit(tmp_path):
    root = shared_or_skip("oracle", "oom")
    expected = json.loads((root / "EXPECTED.json").read_text())
    phases = {"first test pass": "test_pass", "first train forward": "forward",
              "first train backward": "backward"}
    for name, e in expected.items():
        f = run_log([str(root / f"{name}.log")], tmp_path)["failure"]
        assert f["kind"] == e["kind"] and f["phase"] == phases[e["phase"]], name
        kind = "diffs" if "diff" in e["what"] else "activations"
        if e["layer"] is not None:
            assert f["layer"] == e["layer"], name
            assert (f["buffer"]["bytes"], f["buffer"]["kind"], f["buffer"]["layer"]) == (e["bytes"], kind, e["layer"]), name
        else:  # several layers' tops have that size: the candidates, each of it
            assert f["buffer"] is None and len(f["buffer_candidates"]) > 1, name
            assert all((c["bytes"], c["kind"]) == (e["bytes"], kind) for c in f["buffer_candidates"]), name


def test_cpu_solver_update_failure_names_the_history(tmp_path):
    """A CPU run that dies in its first update (synthetic: the L4400 run's log up to its
    iteration-0 outputs, then the failure real Caffe gives when the Adam solver's state
    cannot be allocated; the size is that of inception_4c/3x3's weights, 256 x 128 x 3 x 3,
    the only parameter of that size in GoogLeNet)."""
    root = shared_or_skip("oracle", "oom")
    lines = (root / "L4400.log").read_text().splitlines()
    head = lines[:next(i for i, l in enumerate(lines) if l.startswith("F"))]
    size = 256 * 128 * 3 * 3 * 4
    log = tmp_path / "update.log"
    log.write_text("\n".join(head + [
        "I20261122 12:34:12.000000 31413 sgd_solver.cpp:112] Iteration 0, lr = 0.01",
        f"F20261122 12:34:12.100000 31413 syncedmem.hpp:33] Check failed: *ptr host allocation of size {size} failed",
        "*** Check failure stack trace: ***",
        "    @     0x7f4ee1640dd9  caffe::SyncedMemory::mutable_cpu_data()",
        "    @     0x7f4ee15ba2c4  caffe::AdamSolver<>::ComputeUpdateValue()",
        "    @     0x7f4ee15ba2c5  caffe::SGDSolver<>::ApplyUpdate()",
        "    @     0x7f4ee1627b2d  caffe::Solver<>::Step()"]) + "\n")
    f = run_log([str(log)], tmp_path)["failure"]
    assert f["phase"] == "solver_update" and f["pass"] == "update"
    # Adam keeps three buffers per parameter (m, v and a temporary on the CPU): the log cannot
    # say which of the three, all of that size, failed; the parameter is named
    found = [f["buffer"]] if f["buffer"] else f["buffer_candidates"]
    assert found and all((c["kind"], c["bytes"], c["owner"]) == ("history", size, "inception_4c/3x3")
                         for c in found)
    assert f["layer"] == "inception_4c/3x3"


def test_batch_estimate_from_the_log_alone_is_near_the_model_s(tmp_path):
    """The 3 GB run's log without its net and solver echoes (as most posted logs are): the
    largest batch is estimated from Caffe's figures (train net 2.0 GiB at batch 256, test net
    397 MiB) and says so; it is within 30 % of what the model finds with the nets."""
    import re

    folder = shared_or_skip("oracle-gpu", "alexnet_oom_3000000000")
    kept, echo = [], False
    for line in (folder / "caffe.log").read_text().splitlines():
        if "Initializing net from parameters" in line or "Initializing solver from parameters" in line:
            echo = True
            continue
        if echo and not re.match(r"^[IWEF]\d{4}", line):
            continue
        echo = False
        kept.append(line)
    log = tmp_path / "no_echo.log"
    log.write_text("\n".join(kept) + "\n")
    args = ["--gpu-mem", "3000000000", "--context-mib", "0"]
    alone = run_log([str(log), *args], tmp_path)
    assert "error" in alone["diagnosis"]  # nothing to model: the log's own figures only
    estimate = next(f for f in alone["fixes"] if f["action"] == "reduce_batch")
    assert estimate["confidence"] == "medium" and "estimate from the log" in estimate["detail"]
    modeled = next(f for f in run_log([str(folder / "caffe.log"), *args], tmp_path)["fixes"]
                   if f["action"] == "reduce_batch")
    b, m = estimate["values"]["batch_size"], modeled["values"]["batch_size"]
    assert abs(b - m) <= 0.3 * m, (b, m)


def test_a_model_that_runs_out_between_the_candidates_says_so(tmp_path):
    """The 3 GB run died in one of the two LRN layers (the log does not say which); with the
    default 300 MiB CUDA context the model runs out at conv2, which Caffe runs between norm1
    and norm2: neither 'later' nor 'earlier' than the log, and the note says that."""
    folder = shared_or_skip("oracle-gpu", "alexnet_oom_3000000000")
    doc = run_log([str(folder / "caffe.log"), "--gpu-mem", "3000000000"], tmp_path)
    order = [c["layer"] for c in doc["failure"]["buffer_candidates"]]
    note = doc["diagnosis"]["culprit_note"]
    assert {"norm1", "norm2"} <= set(order)
    assert "runs out between the log's candidates (conv2 data in train net, Forward)" in note, note
