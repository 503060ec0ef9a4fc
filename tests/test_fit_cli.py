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


def _zoo_cases():
    from conformance import load_cases

    return [c for c in load_cases() if c["folder"].startswith("oracle/") and c["folder"].count("/") == 1]


def test_fit_scale_on_every_model_zoo_net(tmp_path):
    """fit --scale answers for every model-zoo net of ../shared/oracle: an input at least the
    net's smallest valid size, with why the sizes below it are invalid."""
    from conftest import shared_or_skip

    shared_or_skip("oracle")
    cases = _zoo_cases()
    assert len(cases) >= 12  # lenet ... rcnn_ilsvrc13_deploy
    for case in cases:
        folder = shared_or_skip(*case["folder"].split("/"))
        inputs = {k: v for per_net in (case.get("inputs") or {}).values() for k, v in per_net.items()}
        out = tmp_path / "s.json"
        argv = ["fit", str(folder / case["load"]), "--scale", "--gpu-mem", "16GiB", "--format", "json",
                "-o", str(out)] + [a for k, v in inputs.items() for a in ("--input", f"{k}={v}")]
        assert main(argv) == 0, case["folder"]
        a = json.loads(out.read_text())["answers"][0]
        assert a["largest_height"] is not None and a["largest_height"] >= a["smallest_valid_height"], case["folder"]
        assert a["smallest_valid_height"] <= a["base_height"] and a["largest_height"] % a["alignment"] == 0
        assert a["total_bytes_at_largest"] <= 16 * 2**30 < a["total_bytes_at_next"]
        if a["smallest_valid_height"] > a["alignment"]:  # smaller sizes exist and are refused
            assert a["invalid_below"]["height"] < a["smallest_valid_height"]
            assert a["invalid_below"]["why"].startswith("layer '"), case["folder"]
