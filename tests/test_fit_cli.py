"""`caffemem fit` answers, re-checked with `caffemem analyze` at the answer and one above."""

from __future__ import annotations

import json

from conftest import SAMPLES

from caffemem.analysis import AnalysisOptions, analyze_file
from caffemem.cli import main
from caffemem.memory import MemoryEnv, fits, model_memory

SOLVER = str(SAMPLES / "small_cnn_solver.prototxt")


def needed(batch: int, cap: int, engine: str) -> int:
    loaded, nets = analyze_file(SOLVER, AnalysisOptions(batch=batch, batch_train_only=True))
    env = MemoryEnv.for_solver(loaded.solver, engine=engine)
    return fits(model_memory(nets, env), cap).needed


def test_fit_batch_verified_by_reanalysis(tmp_path, capsys):
    cap = 3 * 2**30
    out = tmp_path / "fit.json"
    assert main(["fit", SOLVER, "--gpu-mem", "3GiB", "--engine", "both", "--format", "json", "-o", str(out)]) == 0
    answers = json.loads(out.read_text())["answers"]
    assert {a["engine"] for a in answers} == {"caffe", "cudnn"}
    for a in answers:
        b = a["largest"]
        assert b and b > 32
        assert needed(b, cap, a["engine"]) <= cap < needed(b + 1, cap, a["engine"])
        assert a["total_bytes_at_largest"] == needed(b, cap, a["engine"])


def test_fit_scale_keeps_alignment(tmp_path):
    out = tmp_path / "s.json"
    assert main(["fit", str(SAMPLES / "small_cnn_train.prototxt"), "--gpu-mem", "2GiB", "--scale",
                 "--format", "json", "-o", str(out)]) == 0
    a = json.loads(out.read_text())["answers"][0]
    assert a["largest_height"] % a["alignment"] == 0 and a["alignment"] == 4
    assert a["total_bytes_at_largest"] <= 2 * 2**30 < a["total_bytes_at_next"]


def test_fit_needs_capacity():
    assert main(["fit", SOLVER]) == 1
