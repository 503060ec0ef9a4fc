"""The user story behind caffemem (issue 4): SegNet-basic fits an 8 GB GPU, a modified net
with a *smaller* "Memory required for data" does not.  Checked on samples/segnet_*.prototxt."""

from __future__ import annotations

import json

from conftest import SAMPLES

from caffemem.cli import main

OLD, NEW = str(SAMPLES / "segnet_old.prototxt"), str(SAMPLES / "segnet_new.prototxt")
OLD_INPUT = ["--old-input", "data=*,4,384,512"]  # 4-channel images (see the sample's header)
GiB = 2**30


def run_json(argv, tmp_path):
    out = tmp_path / "out.json"
    assert main(argv + ["--format", "json", "-o", str(out)]) == 0
    return json.loads(out.read_text())


def test_both_log_figures_reproduced(tmp_path, capsys):
    assert main(["analyze", OLD, "--input", "data=*,4,384,512", "--caffe-log"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Memory required for data: 1800929300"
    assert main(["analyze", NEW, "--caffe-log"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Memory required for data: 1175184180"


def test_caffe_engine_old_fits_8gib_new_does_not(tmp_path):
    d = run_json(["diff", OLD, NEW, *OLD_INPUT, "--engine", "caffe"], tmp_path)
    assert d["old_memory_required_for_data"] == 1800929300
    assert d["new_memory_required_for_data"] == 1175184180
    assert d["old_total_bytes"] < 8 * GiB < d["new_total_bytes"]
    assert d["delta_bytes"] == d["new_total_bytes"] - d["old_total_bytes"] > 0


def test_headline_blames_im2col_of_conv1_and_new_conv0(tmp_path):
    d = run_json(["diff", OLD, NEW, *OLD_INPUT, "--engine", "caffe"], tmp_path)
    top = d["contributors"][:3]
    assert (top[0]["layer"], top[0]["kind"]) == ("conv1", "im2col")
    assert any(c["layer"] == "conv0" and c["kind"] == "im2col" for c in top)
    # the bulk of the increase: im2col of conv1 and conv0 together exceed the net increase
    im2col = sum(c["delta_bytes"] for c in d["contributors"] if c["kind"] == "im2col")
    assert im2col > d["delta_bytes"]
    # conv1's column buffer: 64 channels x 7 x 7 over 384 x 512 outputs, one image, float32,
    # where it used to be 4 channels (4 x 49 x 384 x 512 x 4 bytes)
    conv1 = next(c for c in d["contributors"] if c["layer"] == "conv1" and c["kind"] == "im2col")
    assert conv1["delta_bytes"] == (64 - 4) * 49 * 384 * 512 * 4
    h = d["headline"]
    assert "log figure is smaller" in h and "conv1 im2col" in h and "conv0" in h


def test_diff_with_itself_and_swapped(tmp_path):
    same = run_json(["diff", NEW, NEW], tmp_path)
    assert same["delta_bytes"] == 0 and same["contributors"] == []
    fwd = run_json(["diff", OLD, NEW, *OLD_INPUT], tmp_path)
    back = run_json(["diff", NEW, OLD, "--new-input", "data=*,4,384,512"], tmp_path)
    assert fwd["delta_bytes"] == -back["delta_bytes"]
    f = {(c["layer"], c["kind"]): c["delta_bytes"] for c in fwd["contributors"]}
    b = {(c["layer"], c["kind"]): c["delta_bytes"] for c in back["contributors"]}
    assert f == {k: -v for k, v in b.items()}


def test_header_says_the_engine_decides_with_both_totals(capsys):
    """The acceptance command of issue 11: the header (before the first blank line) states
    that the engine decides the verdict, with both engines' totals, each equal to what diff
    says under that engine."""
    from caffemem.units import human

    argv = ["diff", OLD, NEW, *OLD_INPUT, "--gpu-mem", "8G"]
    code = main(argv)
    out = capsys.readouterr().out
    header = out.split("\n\n")[0]
    line = next(l for l in header.splitlines() if l.startswith("The engine decides"))
    assert "whether new fits" in line and "which net is larger" in line
    for engine, words in (("cudnn", "cuDNN"), ("caffe", "Caffe's engine")):
        assert main(argv + ["--engine", engine, "--format", "json"]) in (0, 3)
        d = json.loads(capsys.readouterr().out)
        v = d["verdict"]
        figures = f"{words} old {human(v['old']['needed_bytes'])} " \
                  f"{'>' if d['old_total_bytes'] > d['new_total_bytes'] else '<'} new {human(v['new']['needed_bytes'])}"
        assert figures in line
    # cuDNN: the new net is smaller and both fit; Caffe's engine: it is larger and does not fit
    assert "old fits, new fits" in line and "old fits, new does not fit" in line
    assert code == 0  # the modeled engine (cuDNN) fits; --engine caffe exits 3:
    assert main(argv + ["--engine", "caffe"]) == 3
