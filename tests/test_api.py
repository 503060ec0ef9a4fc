"""The public Python API (``caffemem.api``): its results equal the command line's JSON, it
accepts a path, prototxt text or a NetParameter, ``import caffemem`` stays cheap, and the
README's example runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import caffemem
from caffemem.cli import main
from caffemem.errors import EXIT_NOFIT, UserError

from conftest import ROOT, SAMPLES, shared_or_skip

SOLVER = str(SAMPLES / "small_cnn_solver.prototxt")
TRAIN = str(SAMPLES / "small_cnn_train.prototxt")
CASES = json.loads((Path(__file__).with_name("conformance_cases.json")).read_text())["cases"]


def cli_json(tmp_path: Path, *argv: str) -> dict:
    """What ``caffemem ARGV --format json`` prints, run in this process."""
    out = tmp_path / "out.json"
    assert main([*argv, "--format", "json", "-o", str(out)]) == 0
    return json.loads(out.read_text())


def test_import_is_cheap():
    code = ("import sys, caffemem; heavy = [m for m in ('google.protobuf', 'numpy', "
            "'matplotlib', 'caffemem.api', 'caffemem.net') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_analyze_equals_cli_json(tmp_path):
    a = caffemem.analyze(SOLVER, gpu_mem="1GiB", engine="caffe")
    assert a.to_dict() == cli_json(tmp_path, "analyze", SOLVER, "--gpu-mem", "1GiB", "--engine", "caffe")
    d = a.to_dict()
    assert a.total_bytes == d["total_bytes"]
    assert a.log_memory_required_for_data == sum(n["memory_required_for_data"] for n in d["nets"])
    assert a.fits is d["fit"]["fits"]
    assert [l.name for l in a.layers] == [l["name"] for n in d["nets"] for l in n["layers"]]
    conv = a.layer("conv1", net="train net")
    assert conv.bytes == d["nets"][0]["layers"][conv.index]["bytes"]
    assert conv.tops[0].shape == tuple(d["nets"][0]["layers"][conv.index]["tops"][0]["shape"])
    assert (a.scenario, a.mode, a.engine) == ("train", "gpu", "caffe")


def test_analyze_accepts_path_text_and_netparameter():
    from caffemem.pb import caffe_pb2
    from caffemem.prototxt import parse_text

    text = Path(TRAIN).read_text()
    by_path = caffemem.analyze(TRAIN)
    by_text = caffemem.analyze(text)
    param = parse_text(text, caffe_pb2.NetParameter())
    by_param = caffemem.analyze(param)
    assert by_text.source == "<prototxt text>" and by_param.source == "<NetParameter>"
    for other in (by_text, by_param):
        assert other.total_bytes == by_path.total_bytes
        assert [(l.name, l.bytes) for l in other.layers] == [(l.name, l.bytes) for l in by_path.layers]


def test_analyze_options_are_the_cli_options(tmp_path):
    a = caffemem.analyze(TRAIN, input={"data": (4, 3, 40, 40)}, batch=4, scenario="time",
                         mode="cpu")
    assert a.to_dict() == cli_json(tmp_path, "analyze", TRAIN, "--input", "data=4,3,40,40",
                                   "--batch", "4", "--scenario", "time", "--mode", "cpu")
    assert a.layers[0].tops[0].shape[0] == 4


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="scenario"):
        caffemem.analyze(TRAIN, scenario="training")
    with pytest.raises(UserError, match="no such file"):
        caffemem.analyze("no_such_net.prototxt")
    with pytest.raises(UserError, match="gpu_mem"):
        caffemem.fit(TRAIN, 0)


def test_diff_equals_cli_json(tmp_path):
    old, new = str(SAMPLES / "segnet_old.prototxt"), str(SAMPLES / "segnet_new.prototxt")
    d = caffemem.diff(old, new, old_input={"data": "*,4,384,512"}, engine="caffe")
    assert d.to_dict() == cli_json(tmp_path, "diff", old, new, "--old-input", "data=*,4,384,512",
                                   "--engine", "caffe")
    assert d.delta_bytes == d.new_total_bytes - d.old_total_bytes > 0
    assert d.contributors[0]["layer"] == "conv1"


def test_fit_equals_cli_json(tmp_path):
    f = caffemem.fit(SOLVER, "2GiB", engine="both")
    assert f.to_dict() == cli_json(tmp_path, "fit", SOLVER, "--gpu-mem", "2GiB", "--engine", "both")
    assert f.largest == f.answers[0]["largest"] and f.largest > 1


def test_diff_and_fit_take_host_mem_and_cuda_as_analyze_does(tmp_path):
    from caffemem.memory.card import cublas_workspace_bytes

    d = caffemem.diff(SOLVER, SOLVER, host_mem="10MiB", cuda=12)
    out = tmp_path / "d.json"  # the new net's host RAM does not fit: exit status 3
    assert main(["diff", SOLVER, SOLVER, "--host-mem", "10MiB", "--cuda", "12", "--format", "json",
                 "-o", str(out)]) == EXIT_NOFIT
    assert d.to_dict() == json.loads(out.read_text())
    assert d.old.verdict["host_capacity_bytes"] == 10 << 20 and d.new.verdict["host_fits"] is False
    addons = {x["name"]: x["bytes"] for x in d.new.to_dict()["memory"]["addons"]}
    assert addons["cuBLAS workspace"] == cublas_workspace_bytes(12)
    f = caffemem.fit(SOLVER, "2GiB", cuda=12)
    assert f.to_dict() == cli_json(tmp_path, "fit", SOLVER, "--gpu-mem", "2GiB", "--cuda", "12")
    with pytest.raises(UserError, match="host_mem"):  # fit searches --gpu-mem only: refused
        caffemem.fit(SOLVER, "2GiB", host_mem="64GiB")
    assert f.largest != caffemem.fit(SOLVER, "2GiB").largest  # CUDA 12's context is smaller


def test_read_log_curves_failure_and_json(tmp_path):
    log = Path(__file__).with_name("data") / "logs"
    path = sorted(log.glob("*.log"))[0]
    r = caffemem.read_log(path)
    assert r.to_dict() == cli_json(tmp_path, "log", str(path))
    rows = r.to_dict()["train"]
    assert len(r.train["iteration"]) == len(rows)
    if rows and "loss" in rows[-1]:
        assert r.train["loss"][-1] == rows[-1]["loss"]


def test_read_log_oom_diagnosis():
    log = shared_or_skip("oracle-gpu", "alexnet_oom_3000000000", "caffe.log")
    r = caffemem.read_log(log, gpu_mem=3_000_000_000)
    assert r.oom and r.failure["phase_text"] == "first forward"
    assert r.diagnosis["capacity_bytes"] == 3_000_000_000
    assert r.fixes == r.to_dict()["fixes"] and any(f.get("fits") for f in r.fixes)


def test_api_names_survive_submodule_imports():
    import caffemem.diff  # noqa: F401  (the internal modules of the same names)
    import caffemem.fit  # noqa: F401
    from caffemem.fit import largest_fitting

    assert callable(largest_fitting)
    assert caffemem.fit is caffemem.api.fit and caffemem.diff is caffemem.api.diff


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S)
    assert m, "README.md has a '## Python API' section with a ```python example"
    return m.group(1)


def test_readme_example_runs():
    out = subprocess.run([sys.executable, "-c", _readme_example()], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fits" in out.stdout


def _oracle_cases():
    shared = ROOT.parent / "shared" / "oracle"
    if not shared.is_dir():
        return []
    cases = []
    inputs = {c["folder"]: c.get("inputs") or {} for c in CASES}
    for cmd in sorted(shared.glob("**/CMD.txt")):
        words = cmd.read_text().split()
        flag = "-solver" if "-solver" in words else "-model" if "-model" in words else None
        if flag is None:
            continue
        rel = "oracle/" + str(cmd.parent.relative_to(shared))
        per_net = inputs.get(rel, {})
        given = next(iter(per_net.values()), {})
        cases.append(pytest.param(str(cmd.parent / words[words.index(flag) + 1]), given, id=rel))
    return cases


@pytest.mark.parametrize("path,inputs", _oracle_cases() or [pytest.param(None, None, id="no-oracle")])
def test_api_dict_equals_cli_json_on_oracle_nets(tmp_path, path, inputs):
    if path is None:
        shared_or_skip("oracle")
    argv = ["analyze", path, "--mode", "cpu"] + [a for k, v in inputs.items() for a in ("--input", f"{k}={v}")]
    try:
        expected = cli_json(tmp_path, *argv)
    except AssertionError:  # the command refused the net: the API must refuse it too
        with pytest.raises(UserError):
            caffemem.analyze(path, input=inputs, mode="cpu")
        return
    assert caffemem.analyze(path, input=inputs, mode="cpu").to_dict() == expected
