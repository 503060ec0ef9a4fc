"""Nets written for forks caffemem does not know get an answer, marked approximate.

A CRF-as-RNN-like net: a top-level field of its fork's own, a layer type caffemem has no
rule for with as many tops as bottoms, and that layer's own parameter message.  Every
command answers; every output says which fields were skipped (by line) and that the
unknown layer was assumed shape-preserving, with the ``--input`` that corrects it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caffemem.cli import main

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "tests" / "data" / "logs" / "oom_bare.log"

FORK = """name: "crfasrnn"
my_fork_option: 3
layer { name: "data" type: "Input" top: "data" top: "im"
  input_param { shape { dim: 1 dim: 3 dim: 32 dim: 32 } shape { dim: 1 dim: 3 dim: 32 dim: 32 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "crf" type: "MultiStageMeanfield" bottom: "conv" bottom: "im" top: "crf" top: "im2"
  multi_stage_meanfield_param { num_iterations: 5 compatibility_mode: POTTS } }
layer { name: "relu" type: "ReLU" bottom: "crf" top: "crf" }
"""
SKIPPED = "skipped 2 fields that Caffe's schema does not know (a fork's own, or a typo): " \
          "my_fork_option (line 2), multi_stage_meanfield_param (line 8)"
APPROX = "approximate: 1 layer of unknown type (MultiStageMeanfield) assumed shape-preserving (crf)"


@pytest.fixture
def fork(tmp_path) -> str:
    f = tmp_path / "fork.prototxt"
    f.write_text(FORK)
    return str(f)


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_answers_with_its_warnings(fork, capsys):
    code, out, err = _run(capsys, "analyze", fork)
    assert code == 0, err
    assert "MultiStageMeanfield" in out and "crf 1x8x32x32, im2 1x3x32x32" in out
    assert SKIPPED in out and APPROX in out  # in the report itself
    assert "correct it with --input crf=N,C,H,W --input im2=N,C,H,W" in out  # beside the figures
    warnings = err.splitlines()
    assert len(warnings) == 2 and all(w.startswith("caffemem: warning: ") for w in warnings)
    assert SKIPPED in warnings[0] and APPROX in warnings[1]


def test_analyze_json_counts_the_approximation(fork, capsys):
    code, out, _ = _run(capsys, "analyze", fork, "--format", "json")
    doc = json.loads(out)
    net = doc["nets"][0]
    assert code == 0 and net["approximate_layers"] == ["crf"]
    assert any(APPROX in w for w in net["warnings"]) and any(SKIPPED in w for w in net["warnings"])
    assert [a["fix"] for a in doc["assumptions"] if a["layer"] == "crf"] == \
        ["--input crf=N,C,H,W --input im2=N,C,H,W"]


def test_input_corrects_it(fork, capsys):
    code, out, err = _run(capsys, "analyze", fork, "--input", "crf=1,21,32,32", "--input", "im2=1,3,32,32")
    assert code == 0 and "crf 1x21x32x32" in out and "assumed shape-preserving" not in err + out
    code, out, err = _run(capsys, "analyze", fork, "--input", "crf=1,21,32,32")
    assert code == 0 and "correct it with --input im2=N,C,H,W" in out


@pytest.mark.parametrize("argv", [["fit", "{f}", "--gpu-mem", "1G"], ["diff", "{f}", "{f}"],
                                  ["plot", "{f}", "-o", "{d}/p.png"]])
def test_every_command_answers_and_says_so(fork, capsys, argv):
    code, out, err = _run(capsys, *[a.replace("{f}", fork).replace("{d}", str(Path(fork).parent))
                                    for a in argv])
    assert code == 0, err
    assert APPROX in err and SKIPPED in err


def test_log_with_a_fork_net(fork, capsys):
    code, out, err = _run(capsys, "log", str(LOG), "--net", fork, "--gpu-mem", "2G")
    assert code == 0, err
    assert f"model ({fork}, scenario train" in out and "modeled peak: 324.1 MiB" in out
    assert APPROX in err and SKIPPED in err
