"""The command line: exit codes, messages without tracebacks, output formats."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import SAMPLES

from caffemem.cli import main


def run(*argv: str):
    """Run the CLI in a subprocess: what a user sees (stdout, stderr, exit code)."""
    p = subprocess.run([sys.executable, "-m", "caffemem", *argv], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_help_teaches_and_lists_commands(capsys):
    code, out, _ = run("--help")
    assert code == 0 and "Memory required for data" in out and "analyze" in out


def test_analyze_sample_table():
    code, out, err = run("analyze", str(SAMPLES / "small_cnn_train.prototxt"))
    assert code == 0, err
    assert "conv1" in out and "Memory required for data" in out


def test_analyze_json_schema():
    code, out, err = run("analyze", str(SAMPLES / "small_cnn_solver.prototxt"), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert [n["phase"] for n in doc["nets"]] == ["TRAIN", "TEST"]
    net = doc["nets"][0]
    assert isinstance(net["memory_required_for_data"], int)
    layer = next(l for l in net["layers"] if l["name"] == "conv1")
    assert layer["type"] == "Convolution" and layer["bottoms"] == ["data"]
    assert layer["tops"][0] == {"name": "conv1", "shape": [32, 32, 64, 64], "count": 32 * 32 * 64 * 64,
                                "in_place": False}
    assert layer["param_shapes"] == [[32, 3, 3, 3], [32]]
    # the figure is the sum over every top entry, in-place ones included
    total = sum(t["count"] for l in net["layers"] for t in l["tops"]) * 4
    assert net["memory_required_for_data"] == total


def test_caffe_log_lines_for_v1_file():
    code, out, _ = run("analyze", str(SAMPLES / "legacy_v1_deploy.prototxt"), "--caffe-log")
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == ["Setting up input", "Top shape: 1 3 32 32 (3072)", "Memory required for data: 12288"]
    # conv 5x5 on 32 -> 28; pool 3/2 ceil on 28 -> 14
    assert "Top shape: 1 16 14 14 (3136)" in lines


def test_csv_and_markdown():
    code, out, _ = run("analyze", str(SAMPLES / "small_cnn_train.prototxt"), "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("net,phase,layer_index")
    code, out, _ = run("analyze", str(SAMPLES / "small_cnn_train.prototxt"), "--format", "markdown")
    assert code == 0 and "| conv1 |" in out.replace("  ", " ")


def test_user_errors_exit_1_without_traceback(tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer {\n  name: "a"\n  tpye: "ReLU"\n}\n')
    code, out, err = run("analyze", str(bad))
    assert code == 1 and "Traceback" not in err and len(err.splitlines()) == 1
    # an unknown field is skipped (forks add their own), but a close one is named as a typo
    assert "has no type" in err and "tpye (line 3; did you mean type?)" in err
    code, _, err = run("analyze", str(tmp_path / "missing.prototxt"))
    assert code == 1 and "no such file" in err and "Traceback" not in err


def test_unknown_layer_type_message(tmp_path):
    f = tmp_path / "n.prototxt"
    f.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }\n'
                 'layer { name: "odd" type: "NoSuchLayer" bottom: "x" top: "y" top: "z" }\n')
    code, _, err = run("analyze", str(f))
    assert code == 1 and "'odd'" in err and "NoSuchLayer" in err and "--input y=N,C,H,W" in err
    code, out, err = run("analyze", str(f), "--input", "y=1,5", "--input", "z=1,5")
    assert code == 0, err


def test_bad_input_syntax_is_user_error():
    assert main(["analyze", str(SAMPLES / "small_cnn_train.prototxt"), "--input", "data=a,b"]) == 1


def test_input_star_keeps_batch(tmp_path):
    f = tmp_path / "d.prototxt"
    f.write_text('layer { name: "d" type: "Data" top: "data" top: "label" data_param { source: "nowhere" batch_size: 7 } }\n')
    code, _, err = run("analyze", str(f))
    assert code == 1 and "--input data=*,C,H,W" in err
    code, out, err = run("analyze", str(f), "--input", "data=*,3,5,5", "--caffe-log")
    assert code == 0, err
    assert "Top shape: 7 3 5 5 (525)" in out and "Top shape: 7 (7)" in out


def test_every_command_has_teaching_help():
    for cmd in ("analyze", "diff", "plot", "fit", "layers"):
        code, out, err = run(cmd, "--help")
        assert code == 0 and "usage: caffemem " + cmd in out, err
        assert len(out.splitlines()) > 5


def test_layers_lists_bvlc_and_fork_types():
    code, out, _ = run("layers", "--format", "json")
    types = {d["type"]: d["fork"] for d in json.loads(out)}
    assert types["Convolution"] == "BVLC" and types["PriorBox"] == "ssd" and types["Upsample"] == "segnet"


def test_input_naming_no_top_is_refused():
    code, _, err = run("analyze", str(SAMPLES / "small_cnn_train.prototxt"), "--input", "dta=1,3,8,8")
    assert code == 1 and "dta" in err and "data" in err
