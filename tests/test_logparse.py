"""The log parser, summary and failure classifier, on our own small logs and on ../shared."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import damaged_logs, shared_or_skip

from caffemem.logparse import classify, iter_events, summarize
from caffemem.logparse import events as ev
from caffemem.logparse.failure import CUDNN, GPU_OOM, HOST_ALLOC, INT_MAX, NOT_OOM, OTHER, SHAPE

DATA = Path(__file__).with_name("data") / "logs"


def test_training_log_nets_curves_and_echo():
    s = summarize(str(DATA / "train_ok.log"))
    (net,) = s.nets
    assert (net.label, net.name, net.phase, net.done) == ("train net", "tiny", "TRAIN", True)
    assert [(l.name, l.shapes, l.memory_after) for l in net.layers] == [
        ("data", [(2, 3)], 24), ("ip", [(2, 4)], 56)]
    assert 'num_output: 4' in net.echo and 'type: "SGD"' in s.solver_echo
    assert [(r["iteration"], r["loss"], r.get("lr")) for r in s.train] == [(0, 2.30, 0.01), (2, 1.90, 0.01)]
    assert list(s.test) == [{"iteration": 2, "seconds": 1.0, "net": 0, "accuracy": 0.5}]
    assert [r["seconds"] for r in s.train] == [0.0, 1.000002]  # no "Solving": from the first clock
    assert classify(s) is None


def test_crlf_without_glog_prefixes_gives_the_same_summary():
    a, b = summarize(str(DATA / "train_ok.log")), summarize(str(DATA / "train_ok_crlf_noprefix.log"))
    assert [(l.name, l.shapes, l.memory_after) for l in a.nets[0].layers] == \
        [(l.name, l.shapes, l.memory_after) for l in b.nets[0].layers]
    def clockless(t):  # a log without glog prefixes has no clock
        return [{k: v for k, v in r.items() if k != "seconds"} for r in t]

    assert all("seconds" not in r for r in b.train) and clockless(a.train) == list(b.train) and a.nets[0].echo.strip() == b.nets[0].echo.strip()


def test_truncated_binary_log_parses_as_far_as_it_goes():
    s = summarize(str(DATA / "truncated_binary.log"))
    assert s.stop.junk_lines == 1 and s.stop.cut_last_line
    assert s.nets and not s.nets[0].done and s.stop.inside == "net initialization"


def test_oom_in_forward_im2col():
    r = classify(summarize(str(DATA / "oom_forward_im2col.log")))
    assert (r.kind, r.phase, r.phase_text, r.layer_class) == (GPU_OOM, "forward", "first forward", "Convolution")
    assert "im2col" in r.allocation and r.engine == "CAFFE" and "forward_gpu_gemm" in r.engine_evidence


@pytest.mark.parametrize("line,kind", [(0, HOST_ALLOC), (1, CUDNN), (2, INT_MAX), (3, NOT_OOM)])
def test_each_failure_kind(tmp_path, line, kind):
    f = tmp_path / "one.log"
    f.write_bytes((DATA / "other_failures.log").read_bytes().splitlines(keepends=True)[line])
    assert classify(summarize(str(f))).kind == kind


def test_shape_check_and_other(tmp_path):
    f = tmp_path / "s.log"
    f.write_text("F1122 11:00:00.000000  1 softmax_loss_layer.cpp:47] Check failed: outer_num_ * inner_num_ "
                 "== bottom[1]->count() (65536 vs. 4) Number of labels must match number of predictions\n")
    assert classify(summarize(str(f))).kind == SHAPE
    f.write_text("F1122 11:00:00.000000  1 layer_factory.hpp:81] Check failed: registry.count(type) == 1 "
                 "(0 vs. 1) Unknown layer type: Python\n")
    assert classify(summarize(str(f))).kind == OTHER


def test_tensorflow_bfc_report_explained():
    r = classify(summarize(str(DATA / "tensorflow_oom.log")))
    assert r.kind == GPU_OOM and r.requested_bytes == 144 * 2**20
    text = " ".join(r.explanation)
    assert "37,748,736 elements" in text and "taken outside" in text


def test_pytorch_report_explained():
    r = classify(summarize(str(DATA / "pytorch_oom.log")))
    assert r.kind == GPU_OOM and r.requested_bytes == 2 * 2**30
    assert "taken outside" not in " ".join(r.explanation)  # it held most of the GPU itself


def test_events_stream_lazily_from_a_file_object():
    with open(DATA / "train_ok.log", "rb") as f:
        it = iter_events(f)
        first = next(it)
    assert isinstance(first, ev.GpuInfo)


def test_cli_log_json_csv_and_diagnosis(tmp_path):
    out = tmp_path / "o.json"
    p = subprocess.run([sys.executable, "-m", "caffemem", "log", str(DATA / "oom_forward_im2col.log"),
                        "--gpu-mem", "1MiB", "--format", "json", "-o", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    d = json.loads(out.read_text())
    assert d["failure"]["kind"] == GPU_OOM and d["diagnosis"]["capacity_bytes"] == 2**20
    p = subprocess.run([sys.executable, "-m", "caffemem", "log", str(DATA / "train_ok.log"), "--format", "csv"],
                       capture_output=True, text=True)
    rows = p.stdout.splitlines()
    assert rows[0].startswith("phase,iteration,seconds,lr,loss") and len(rows) == 4


def test_every_realworld_log_parses_and_is_classified_as_the_thread_concluded():
    root = shared_or_skip("realworld")
    expected = json.loads((DATA / "realworld_expected.json").read_text())["cases"]
    logs = sorted(root.glob("*/*/log*.txt"))
    assert len(logs) == len(expected)
    for log in logs:
        key = str(log.relative_to(root))
        r = classify(summarize(str(log)))
        assert r is not None, key
        assert r.kind == expected[key]["kind"], key
        if "phase" in expected[key]:
            assert r.phase_text.startswith(expected[key]["phase"]), key
        if "phase_enum" in expected[key]:
            assert r.phase == expected[key]["phase_enum"], key
        if "requested_bytes" in expected[key]:
            assert r.requested_bytes == expected[key]["requested_bytes"], key
        if "layer" in expected[key]:
            assert r.layer == expected[key]["layer"], key
        if key.startswith("controls/") and key.endswith("log.txt"):
            assert not r.is_oom, key


def test_oracle_oom_runs_match_expected_phase():
    root = shared_or_skip("oracle", "oom")
    expected = json.loads((root / "EXPECTED.json").read_text())
    words = {"first test pass": ("test_pass", "first test pass"), "first train forward": ("forward", "first forward"),
             "first train backward": ("backward", "first backward")}
    for name, e in expected.items():
        r = classify(summarize(str(root / f"{name}.log")))
        assert r.kind == HOST_ALLOC and (r.phase, r.phase_text) == words[e["phase"]], name
        assert r.requested_bytes == e["bytes"], name
        assert r.layer == e["layer"], name  # pinned by the failed size, or left open
        if e["layer"] is None:  # several layers' tops have that size: they are named
            assert len(r.candidates) > 1 and f"{e['bytes']:,} bytes match" in " ".join(r.explanation)


def test_oracle_failures_are_classified():
    root = shared_or_skip("oracle", "failures")
    kinds = {d.name: classify(summarize(str(d / "caffe.log"))).kind for d in root.iterdir()}
    assert kinds["absval_inplace"] == SHAPE and kinds["softmax_loss"] == SHAPE
    assert kinds["threshold"] == OTHER


def test_curves_plot_has_loss_accuracy_and_lr(tmp_path):
    from caffemem.logparse.render import plot_curves

    fig = plot_curves(summarize(str(DATA / "train_ok.log")), str(tmp_path / "c.png"))
    ax, axlr = fig.axes[0], fig.axes[1]
    assert [l.get_label() for l in ax.get_lines()] == ["train loss"]
    assert list(ax.get_lines()[0].get_ydata()) == [2.30, 1.90]
    labels = [l.get_label() for a in fig.axes for l in a.get_lines()]
    assert sorted(labels) == ["learning rate", "test accuracy", "train loss"]  # no clock columns
    acc = [l for a in fig.axes for l in a.get_lines() if l.get_label() == "test accuracy"]
    assert acc and list(acc[0].get_ydata()) == [0.5]
    assert list(axlr.get_lines()[0].get_ydata()) == [0.01, 0.01]


def test_crosscheck_agrees_with_the_prototxt_that_made_the_log():
    from caffemem.logparse.crosscheck import crosscheck

    folder = shared_or_skip("oracle", "caffenet_deploy")
    s = summarize(str(folder / "caffe.log"))
    assert crosscheck(s, str(folder / "deploy.prototxt")).startswith("net: agrees")
    other = shared_or_skip("oracle", "googlenet_deploy", "deploy.prototxt")
    assert "in the log" in crosscheck(s, str(other))


def test_json_is_strict_and_streams_every_curve_row(tmp_path):
    out = tmp_path / "edge.json"
    p = subprocess.run([sys.executable, "-m", "caffemem", "log", str(DATA / "curves_edge.log"),
                        "--format", "json", "-o", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    d = json.loads(out.read_text(), parse_constant=no_constants)
    assert [r["iteration"] for r in d["train"]][:3] == [0, 20, 40]
    assert d["train"][0]["loss"] is None and d["train"][0]["lr"] == 1e-05  # logged -nan: null
    assert "lr" not in d["train"][2]  # not logged: left out
    assert d["test"][1] == {"iteration": 0, "seconds": 1.0, "net": 1, "top5": 0.5}
    assert d["failure"] is None and d["stopped_at"]["lines"] == 31


def test_csv_has_one_row_per_train_and_test_row(tmp_path):
    p = subprocess.run([sys.executable, "-m", "caffemem", "log", str(DATA / "curves_edge.log"),
                        "--format", "csv"], capture_output=True, text=True)
    rows = list(csv.reader(io.StringIO(p.stdout)))
    head = rows[0]
    assert head[:5] == ["phase", "iteration", "seconds", "lr", "loss"] and "top5" in head
    assert [r[0] for r in rows[1:]].count("train") == 10 and [r[0] for r in rows[1:]].count("test") == 3
    first = dict(zip(head, rows[1]))
    assert (first["iteration"], first["seconds"], first["lr"], first["loss"]) == ("0", "1.0", "1e-05", "nan")
    assert first["interval_seconds"] == "0.118" and head[-1] == "interval_seconds"


def test_a_bare_oom_line_is_diagnosed_from_the_net_given(tmp_path):
    """A log cut down to its F line says nothing of the run; --net supplies the nets."""
    log = str(DATA / "oom_bare.log")
    r = classify(summarize(log))
    assert r.kind == GPU_OOM and r.phase == "unknown" and r.phase_text.startswith("not shown")
    assert any("SyncedMemory::to_gpu" in e for e in r.explanation)
    net = str(Path(__file__).resolve().parents[1] / "samples" / "small_cnn_train.prototxt")
    out = tmp_path / "d.json"
    for cap, fits in (("8GiB", True), ("200MiB", False)):
        p = subprocess.run([sys.executable, "-m", "caffemem", "log", log, "--net", net, "--gpu-mem", cap,
                            "--format", "json", "-o", str(out)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        d = json.loads(out.read_text())["diagnosis"]
        assert d["capacity_bytes"] == (8 << 30 if fits else 200 << 20)
        assert (d["modeled_total_bytes"] <= d["capacity_bytes"]) == fits
        assert any("taken outside this run" in n for n in d["notes"]) == fits


def test_lines_of_the_scripts_around_caffe(tmp_path):
    f = tmp_path / "demo.log"
    f.write_text("Loaded network /models/vgg16_faster_rcnn.caffemodel\n"
                 "Memory need is 426752000\nMemery need is106752000\n"
                 "F1010 11:27:03.680461  8528 syncedmem.cpp:57] Check failed: error == cudaSuccess (2 vs. 0)  out of memory\n")
    r = classify(summarize(str(f)))
    assert (r.kind, r.phase, r.phase_text, r.requested_bytes) == (GPU_OOM, "forward", "inference forward", 106752000)
    assert r.scenario == "inference"
    f.write_text("2015-03-22 14:01:32 [20150322-140130-3826] [INFO ] Train Caffe Model task started.\n"
                 "2015-03-22 14:01:47 [20150322-140130-3826] [ERROR] Train Caffe Model: Check failed: "
                 "error == cudaSuccess (2 vs. 0) out of memory\n")
    s = summarize(str(f))
    assert s.solving and s.failure.message.startswith("Check failed")
    assert (classify(s).phase, classify(s).phase_text) == ("unknown", "first iteration")
    f.write_text("I0217 00:02:05.946698 13030 net.cpp:222] Memory required for data: 1192246208\n"
                 "[libprotobuf WARNING google/protobuf/io/coded_stream.cc:78] The total number of bytes read was 544614056\n"
                 "F0217 00:02:07.073874 13030 syncedmem.cpp:51] Check failed: error == cudaSuccess (2 vs. 0)  out of memory\n")
    s = summarize(str(f))
    r = classify(s)
    assert s.nets[0].memory_required_for_data == 1192246208 and s.weights.bytes == 544614056
    assert (r.phase, r.phase_text) == ("forward", "first forward")  # built, its weights read: then it ran
    assert any("519.4 MiB" in x and "counts only the forward top blobs" in x for x in r.explanation)


def test_damaged_logs_never_give_an_internal_error(tmp_path, capsys):
    """Seeded random damage to our logs, through the whole command (text and JSON, with the
    diagnosis): exit 0, or 1 with "not a Caffe log" when the damage leaves nothing Caffe wrote
    (a PyTorch report with its key words garbled); never 2."""
    from caffemem.cli import main

    f = tmp_path / "m.log"
    for data in damaged_logs(5, 60):
        f.write_bytes(data)
        for fmt in ("text", "json"):
            code = main(["log", str(f), "--format", fmt, "--gpu-mem", "2GiB"])
            err = capsys.readouterr().err
            assert code == 0 or (code == 1 and "not a Caffe log" in err), err


def test_text_report_gives_duration_and_best_test_values():
    from caffemem.logparse.render import text

    out = text(summarize(str(DATA / "curves_edge.log")), None)
    assert "10 logged iterations, last 180 (loss -0.5), 0:00:01 after the solver started" in out
    assert "  best accuracy: 0.875 at iteration 160" in out and "best top5" not in out


def test_data_layer_batches_failing_at_set_up_without_an_echo(tmp_path):
    f = tmp_path / "b.log"
    f.write_text("I0303 20:08:32.148350 42944 net.cpp:86] Creating Layer data\n"
                 "I0303 20:08:32.148350 42944 net.cpp:382] data -> data\n"
                 "I0303 20:08:32.149355 42944 net.cpp:382] data -> label\n"
                 "I0303 20:08:32.177494 42944 data_layer.cpp:45] output data size: 5000,3,200,200\n"
                 "F0303 20:08:36.003052 42944 syncedmem.cpp:78] Check failed: error == cudaSuccess (2 vs. 0)  out of memory\n")
    s = summarize(str(f))
    (net,) = s.nets
    assert (net.echo, net.done, net.layers[0].data_size) == ("", False, (5000, 3, 200, 200))
    r = classify(s)
    assert (r.phase, r.phase_text, r.layer, r.allocation) == (
        "net_setup_train", "net initialization", "data", "the data layer's prefetch batches")
    assert "2,400,000,000 bytes" in " ".join(r.explanation)
    from caffemem.logparse.crosscheck import crosscheck

    net_file = str(Path(__file__).resolve().parents[1] / "samples" / "small_cnn_train.prototxt")
    assert "tops [(5000, 3, 200, 200)] in the log, [(32, 3, 64, 64)]" in crosscheck(s, net_file)
    f.write_text(f.read_text().replace("F0303", "I0303 20:09:00.000000 42944 sgd_solver.cpp:105] Iteration 0, lr = 0.1\nF0303"))
    s = summarize(str(f))
    # the solver ran (the net was built) and its first update began: ApplyUpdate logs the lr
    # line, then allocates the history (sgd_solver.cpp:113-120)
    assert s.nets[0].done and classify(s).phase == "solver_update"


@pytest.mark.parametrize("source,layer_type", [
    ("cudnn_conv_layer.cu:65", "Convolution"), ("softmax_loss_layer.cpp:47", "SoftmaxWithLoss"),
    ("roi_pooling_layer.cu:10", "ROIPooling"), ("inner_product_layer.cpp:1", "InnerProduct"),
    ("lrn_layer.cu:2", "LRN"), ("hdf5_data_layer.cpp:2", "HDF5Data"), ("threshold_layer.hpp:56", "Threshold"),
    ("syncedmem.cpp:71", None), ("im2col_layer.cu:1", None)])
def test_the_failing_check_s_file_names_the_layer_type(source, layer_type):
    from caffemem.logparse.failure import layer_type_of_source

    assert layer_type_of_source(source) == layer_type


def test_oracle_failures_name_their_layer():
    root = shared_or_skip("oracle", "failures")
    for d in root.iterdir():  # each net's one layer of the failing type is called "l"
        r = classify(summarize(str(d / "caffe.log")))
        assert r.layer == "l", d.name


def _variants(tmp_path) -> dict:
    plain = (DATA / "train_ok.log").read_text()
    files = {"plain": plain.encode(), "utf16": b"\xff\xfe" + plain.replace("\n", "\r\n").encode("utf-16-le"),
             "spaces": "".join("    " + l for l in plain.splitlines(keepends=True)).encode(),
             "tab": "".join("\t" + l for l in plain.splitlines(keepends=True)).encode()}
    for name, data in files.items():
        (tmp_path / f"{name}.log").write_bytes(data)
    return {name: summarize(str(tmp_path / f"{name}.log")) for name in files}


def test_utf16_and_indented_logs_read_as_the_plain_one(tmp_path):
    """A log saved by PowerShell (UTF-16 with its mark) or pasted as a code block (indented
    by four spaces or a tab) means what the plain log means."""
    got = _variants(tmp_path)
    plain = got.pop("plain")
    assert len(plain.train) == 2 and plain.nets
    for name, s in got.items():
        assert list(s.train) == list(plain.train) and list(s.test) == list(plain.test), name
        assert [(n.label, len(n.layers), n.memory_required_for_data) for n in s.nets] == \
            [(n.label, len(n.layers), n.memory_required_for_data) for n in plain.nets], name
        assert s.stop.junk_lines == 0, name


def test_robustness_19_encodings_and_indentation_are_read():
    case = shared_or_skip("robustness", "19-silent-junk-unread-log-encodings")
    want = list(summarize(str(case / "plain.log")).train)
    assert len(want) == 2
    for name in ("utf16.log", "indented.log"):
        assert list(summarize(str(case / name)).train) == want, name
