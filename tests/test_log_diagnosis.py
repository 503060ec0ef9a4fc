"""``caffemem log`` on a crash: the log's evidence (scenario, engine, card, GPUs, host memory,
cuDNN), the model it runs with it, and the ranked fixes.  Self-contained logs built from
real Caffe lines (tools/caffe.cpp, net.cpp, syncedmem.cpp and their stack frames)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES, shared_or_skip

from caffemem.cli import main
from caffemem.logparse import classify, summarize
from caffemem.logparse.cards import card_from_log, card_size

P = "I1201 10:00:00.000000  4242 "
GiB = 2**30
OOM = "F1201 10:00:01.000000  4242 syncedmem.cpp:71] Check failed: error == cudaSuccess (2 vs. 0)  out of memory"


def frames(*names: str) -> list[str]:
    return ["*** Check failure stack trace: ***"] + [f"    @     0x7f00000000{i:02d}  {n}" for i, n in enumerate(names)]


def run_log(path: Path, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "out.json"
    assert main(["log", str(path), *extra, "--format", "json", "-o", str(out)]) == 0
    return json.loads(out.read_text())


def segnet_time_log(tmp_path: Path, card: str = "GeForce GTX 1080") -> Path:
    """``caffe time`` of the SegNet sample on a named card, dying in the backward pass."""
    setup = subprocess.run([sys.executable, "-m", "caffemem", "analyze", str(SAMPLES / "segnet_new.prototxt"),
                            "--caffe-log"], capture_output=True, text=True, check=True).stdout.splitlines()
    lines = [P + "caffe.cpp:339] Use GPU with device ID 0", P + f"caffe.cpp:342] GPU device name: {card}",
             P + "net.cpp:51] Initializing net from parameters: ",
             "state {\n  phase: TRAIN\n}\n" + (SAMPLES / "segnet_new.prototxt").read_text()]
    lines += [P + "net.cpp:100] " + line for line in setup]
    lines += [P + "net.cpp:255] Network initialization done.", P + "caffe.cpp:351] Performing Forward",
              P + "caffe.cpp:356] Initial loss: 0", P + "caffe.cpp:357] Performing Backward", OOM]
    lines += frames("caffe::SyncedMemory::mutable_gpu_data()", "caffe::Blob<>::mutable_gpu_diff()",
                    "caffe::ConvolutionLayer<>::Backward_gpu()", "caffe::Net<>::BackwardFromTo()",
                    "caffe::Net<>::Backward()", "time()", "main")
    f = tmp_path / "time.log"
    f.write_text("\n".join(lines) + "\n")
    return f


def test_caffe_time_died_in_backward_is_modeled_with_backward(tmp_path):
    """SegNet under caffe time on an 8 GiB card, dead in Backward: modeled as caffe time does
    it (forward and backward), not as a forward-only test pass; the engine comes from the
    stack (ConvolutionLayer::Backward_gpu: Caffe's own) and the output says so."""
    d = run_log(segnet_time_log(tmp_path), tmp_path)
    f, m = d["failure"], d["diagnosis"]
    assert (f["scenario"], f["phase"], f["engine"]) == ("time", "backward", "CAFFE")
    assert f["card"]["total_bytes"] == 8 * GiB and f["diff"] is True
    assert (m["scenario"], m["engine"], m["capacity_bytes"]) == ("time", "caffe", 8 * GiB)
    assert m["modeled_total_bytes"] > 8 * GiB  # forward-only it would "fit"
    assert any("read from the log" in x and "instead of the default CUDNN" in x for x in m["decided"])
    assert d["fixes"][0]["action"] == "use_cudnn" and d["fixes"][0]["fits"]
    # every candidate is a gradient allocated in a Convolution layer's Backward
    assert f["buffer_candidates"] and all(
        (c["kind"], c["call"], c["layer_type"]) == ("diffs", "Backward", "Convolution") for c in f["buffer_candidates"])
    from caffemem.memory import MemoryEnv, model_memory
    from caffemem.analysis import analyze_file

    nets = analyze_file(str(SAMPLES / "segnet_new.prototxt"))[1]
    forward_only = model_memory(nets, MemoryEnv(scenario="test", engine="caffe")).total_bytes
    assert forward_only < m["modeled_total_bytes"]


def test_engine_from_cudnn_frames_overrides_a_caffe_default(tmp_path):
    f = tmp_path / "c.log"
    f.write_text("\n".join([OOM] + frames("caffe::SyncedMemory::mutable_gpu_data()",
                                          "caffe::CuDNNConvolutionLayer<>::Reshape()",
                                          "caffe::Net<>::ForwardFromTo()", "caffe::Solver<>::Step()")) + "\n")
    r = classify(summarize(str(f)))
    assert r.engine == "CUDNN" and "CuDNNConvolutionLayer" in r.engine_evidence
    assert r.allocation.startswith("a cuDNN convolution workspace")
    d = run_log(f, tmp_path)
    assert d["fixes"][0]["action"] == "cudnn_workspace"


@pytest.mark.parametrize("line,kind,how", [
    ("./train.sh: line 6: 31337 Killed                  caffe train -solver solver.prototxt",
     "host out-of-memory (process killed)", "killed"),
    ("Out of memory: Killed process 31337 (caffe) total-vm:31000000kB", "host out-of-memory (process killed)", "killed"),
    ("terminate called after throwing an instance of 'std::bad_alloc'", "host allocation failure", "bad_alloc"),
    ("NvMapMemAllocInternalTagged: 1075072515 error 12", "host allocation failure", "nvmap"),
])
def test_host_memory_outside_caffe_s_checks_keeps_the_phase(tmp_path, line, kind, how):
    """The OOM killer, std::bad_alloc, a Jetson's allocator: the kind is recognised, and the
    phase is where the log was (here: the iteration-0 test pass)."""
    f = tmp_path / "h.log"
    f.write_text("\n".join([P + "solver.cpp:289] Solving CaffeNet", P + "solver.cpp:347] Iteration 0, Testing net (#0)",
                            line]) + "\n")
    s = summarize(str(f))
    r = classify(s)
    assert s.host_memory.how == how and r.kind == kind and r.is_oom and r.host
    assert r.phase == "test_pass"
    d = run_log(f, tmp_path)
    assert {x["action"] for x in d["fixes"]} >= {"reduce_batch", "free_host_memory"}


def test_cannot_allocate_memory_is_host_memory(tmp_path):
    f = tmp_path / "c.log"
    f.write_text("F1201 10:00:01.000000  4242 db_lmdb.hpp:15] Check failed: mdb_status == 0 (12 vs. 0) "
                 "Cannot allocate memory\n")
    r = classify(summarize(str(f)))
    assert r.kind == "host allocation failure" and r.is_oom


def test_a_jetson_board_shares_its_memory(tmp_path):
    card = card_from_log(["GPU device name: NVIDIA Tegra X1"])
    assert card.shared_memory and card.total_bytes == 4 * GiB
    f = tmp_path / "j.log"
    f.write_text("\n".join([P + "caffe.cpp:342] GPU device name: NVIDIA Tegra X1", OOM]) + "\n")
    r = classify(summarize(str(f)))
    assert r.kind == "gpu out-of-memory" and r.host  # one memory: host advice applies
    d = run_log(f, tmp_path)
    assert "free_host_memory" in [x["action"] for x in d["fixes"]]


@pytest.mark.parametrize("status,phase", [
    ("(4 vs. 0)  CUDNN_STATUS_ALLOC_FAILED", "forward"),
    ("(1 vs. 0)  CUDNN_STATUS_NOT_INITIALIZED", "net_setup_train")])
def test_cudnn_statuses_that_mean_memory(tmp_path, status, phase):
    """ALLOC_FAILED in a forward pass; NOT_INITIALIZED at handle creation in a layer's set-up
    (cudnnCreate on a full card): out-of-memory kinds, with their phase."""
    f = tmp_path / "u.log"
    setup = phase.startswith("net_setup")
    body = [P + "net.cpp:86] Creating Layer conv1", P + "net.cpp:382] conv1 <- data",
            P + "net.cpp:382] conv1 -> conv1"] if setup else [P + "solver.cpp:289] Solving N"]
    fr = ["caffe::CuDNNConvolutionLayer<>::LayerSetUp()", "caffe::Net<>::Init()", "caffe::Solver<>::InitTrainNet()"] \
        if setup else ["caffe::CuDNNConvolutionLayer<>::Forward_gpu()", "caffe::Net<>::ForwardFromTo()",
                       "caffe::Solver<>::Step()"]
    f.write_text("\n".join(body + [f"F1201 10:00:01.000000  4242 cudnn_conv_layer.cpp:53] Check failed: "
                                   f"status == CUDNN_STATUS_SUCCESS {status}"] + frames(*fr)) + "\n")
    r = classify(summarize(str(f)))
    assert r.kind == "cuDNN status failure" and r.is_oom and r.phase == phase and r.engine == "CUDNN"
    d = run_log(f, tmp_path)
    assert d["fixes"] and "cudnn_workspace" in [x["action"] for x in d["fixes"][:3]]


def test_multi_gpu_run_keeps_the_per_gpu_need(tmp_path):
    f = tmp_path / "m.log"
    f.write_text("\n".join([P + "caffe.cpp:204] Using GPUs 0, 1", P + "caffe.cpp:209] GPU 0: GeForce GTX 1080 Ti",
                            P + "caffe.cpp:209] GPU 1: GeForce GTX 1080 Ti", OOM]
                           + frames("caffe::Blob<>::mutable_gpu_diff()", "caffe::PoolingLayer<>::Backward_gpu()",
                                    "caffe::Net<>::Backward()", "caffe::Solver<>::Step()", "caffe::P2PSync<>::Run()")) + "\n")
    r = classify(summarize(str(f)))
    assert r.gpus == 2 and r.card.total_bytes == 11 * GiB and r.phase == "backward"
    d = run_log(f, tmp_path)
    per = next(x for x in d["fixes"] if x["action"] == "per_gpu_batch")
    assert "more GPUs do not lower the need of one" in per["detail"]


def test_nvcaffe_and_digits_figures_are_read(tmp_path):
    f = tmp_path / "n.log"
    f.write_text("\n".join([
        P + "net.cpp:86] Created Layer data (0)", P + "net.cpp:382] data -> data",
        P + "net.cpp:150] TRAIN Top shape for layer 0 'data' 64 3 224 224 (9633792)",
        P + "net.cpp:294] Top memory (TRAIN) required for data: 1234567168 diff: 1234567168",
        "2015-03-22 14:01:33 [20150322-140130-3826] [DEBUG] memory required: 793 MB"]) + "\n")
    s = summarize(str(f))
    assert s.nets[0].memory_required_for_data == 1234567168 and s.digits_memory == [793 * 2**20]


def test_card_table():
    assert card_size("GeForce GTX 750 Ti")[0] == 2 * GiB
    assert card_size("Tesla P100-SXM2-16GB")[:2] == (16 * GiB, "its name")
    assert card_size("TITAN X (Pascal)")[0] == 12 * GiB
    size, source, _ = card_size("GeForce GTX 970M")
    assert size == 3 * GiB and "smallest of its sizes" in source
    assert card_size("Some Future Card")[0] is None
    assert card_from_log(["Total memory: 12799574016, Free: 21430272"], 12799574016).total_bytes == 12799574016


def test_log_net_takes_the_net_options_and_the_log_s_shapes(tmp_path):
    """--net with a Data layer: the log's own "output data size" sizes it without --input;
    --input, --batch and a solver are honoured; the cross-check uses the same options."""
    net = tmp_path / "net.prototxt"
    net.write_text('name: "d"\nlayer { name: "data" type: "Data" top: "data" top: "label"\n'
                   '  data_param { source: "/nowhere/lmdb" batch_size: 64 backend: LMDB } }\n'
                   'layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"\n'
                   '  convolution_param { num_output: 16 kernel_size: 3 } }\n'
                   'layer { name: "loss" type: "EuclideanLoss" bottom: "conv1" bottom: "conv1" top: "loss" }\n')
    log = tmp_path / "l.log"
    log.write_text("\n".join([P + "net.cpp:86] Creating Layer data", P + "net.cpp:382] data -> data",
                              P + "net.cpp:382] data -> label",
                              P + "data_layer.cpp:45] output data size: 64,3,100,100", OOM]) + "\n")
    d = run_log(log, tmp_path, "--net", str(net), "--gpu-mem", "1GiB")
    assert "error" not in d["diagnosis"], d["diagnosis"]
    assert d["diagnosis"]["source"] == str(net) and "agrees with" in d["crosscheck"]
    d2 = run_log(log, tmp_path, "--net", str(net), "--input", "data=*,3,50,50", "--gpu-mem", "1GiB")
    assert d2["diagnosis"]["modeled_total_bytes"] < d["diagnosis"]["modeled_total_bytes"]
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{net}"\nbase_lr: 0.01\nmax_iter: 10\ntype: "Adam"\n')
    d3 = run_log(log, tmp_path, "--net", str(solver), "--batch", "8", "--gpu-mem", "1GiB")
    assert "error" not in d3["diagnosis"] and d3["diagnosis"]["modeled_total_bytes"] < d["diagnosis"]["modeled_total_bytes"]


def test_a_net_that_cannot_be_modeled_leaves_the_log_s_diagnosis(tmp_path):
    net = tmp_path / "fork.prototxt"
    net.write_text('name: "f"\nlayer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
                   'layer { name: "x" type: "SomeForkLayer" bottom: "data" top: "x" top: "y" }\n')
    log = tmp_path / "l.log"
    log.write_text(OOM + "\n")
    d = run_log(log, tmp_path, "--net", str(net))
    assert "error" in d["diagnosis"] and d["fixes"]  # the log's own fixes stay
    p = subprocess.run([sys.executable, "-m", "caffemem", "log", str(log), "--net", str(net)],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "the fixes below come from the log alone" in p.stdout


def test_two_lrn_layers_ranked_then_decided_by_the_card_s_size(tmp_path):
    """AlexNet dies in an LRN forward of its test pass: without the card's size both LRN
    layers' buffers are candidates, largest first; with it the replay picks one."""
    log = shared_or_skip("oracle-gpu", "alexnet_oom_1150000000", "caffe.log")
    open_ = run_log(log, tmp_path)["failure"]
    assert open_["buffer"] is None and len(open_["buffer_candidates"]) == 4
    sizes = [c["bytes"] for c in open_["buffer_candidates"]]
    assert sizes == sorted(sizes, reverse=True) and {c["layer"] for c in open_["buffer_candidates"]} == {"norm1", "norm2"}
    decided = run_log(log, tmp_path, "--gpu-mem", "1150000000", "--context-mib", "0")["failure"]
    assert decided["buffer"]["name"] == "norm1 scale" and decided["layer"] == "norm1"


def test_robustness_04_bottomless_layer_echo(tmp_path):
    """A log whose echo has a ReLU with no bottom: the OOM report, exit 0 (robustness 04)."""
    log = tmp_path / "crash.log"
    log.write_text('Initializing net from parameters:\nlayer { name: "r" type: "ReLU" top: "r" }\n'
                   'Check failed: error == cudaSuccess (2 vs. 0)  out of memory\n')
    d = run_log(log, tmp_path)
    assert d["failure"]["is_oom"] and d["fixes"] and "error" in d["diagnosis"]
    shared = Path(__file__).resolve().parents[2] / "shared" / "robustness" / "04-traceback-log-bottomless-layer" / "crash.log"
    if shared.exists():
        assert main(["log", str(shared), "--format", "json", "-o", str(tmp_path / "x.json")]) == 0


def test_robustness_07_deep_echo_is_parsed_in_linear_time(tmp_path):
    """A broken echo of 100,000 nested 'layer {' lines: reported as unreadable, quickly
    (robustness 07: it used to re-parse once per layer line, quadratic)."""
    import time

    from caffemem.diagnose import parse_echo

    log = tmp_path / "deep_echo.log"
    log.write_text("Initializing net from parameters:\n" + "layer {\n" * 100_000
                   + "Check failed: error == cudaSuccess (2 vs. 0)  out of memory\n")
    t = time.perf_counter()
    d = run_log(log, tmp_path)
    assert time.perf_counter() - t < 10 and d["failure"]["is_oom"] and "error" in d["diagnosis"]
    # the parse itself: a cut echo keeps its complete layers, one pass
    text = 'name: "n"\n' + 'layer { name: "a" type: "ReLU" bottom: "x" top: "x" }\n' * 20_000 + "layer {\n  name: \"b"
    t = time.perf_counter()
    param, complete = parse_echo(text, "<echo>")
    assert not complete and len(param.layer) == 20_000 and time.perf_counter() - t < 20


def test_other_frameworks_and_look_alikes_keep_their_reports(tmp_path):
    """TensorFlow's and PyTorch's reports get their allocator's advice, not Caffe's; the
    look-alike failures (CUDA errors that are not out-of-memory) get no fixes."""
    data = Path(__file__).with_name("data") / "logs"
    tf = run_log(data / "tensorflow_oom.log", tmp_path)
    assert tf["failure"]["framework"] == "tensorflow" and tf["diagnosis"] is None
    assert [f["action"] for f in tf["fixes"]] == ["free_gpu_memory", "reduce_batch"]  # memory taken outside
    torch = run_log(data / "pytorch_oom.log", tmp_path)
    assert [f["action"] for f in torch["fixes"]] == ["reduce_batch", "free_gpu_memory"]
    assert not any("iter_size" in f["detail"] or "Caffe" in f["detail"] for f in tf["fixes"] + torch["fixes"])
    look_alike = tmp_path / "e11.log"
    look_alike.write_text("F1201 10:00:01.000000  4242 syncedmem.cpp:57] Check failed: error == cudaSuccess "
                          "(11 vs. 0)  invalid argument\n")
    other = run_log(look_alike, tmp_path)
    assert not other["failure"]["is_oom"] and other["fixes"] == [] and other["diagnosis"] is None


def test_cublas_handle_on_a_full_card(tmp_path):
    """Caffe creates its cuBLAS handle when it starts and only logs an E line when it cannot
    (common.cpp:114); the first gemm then fails with NOT_INITIALIZED: a card already full."""
    f = tmp_path / "b.log"
    f.write_text("\n".join([
        "E1201 10:00:00.000000  4242 common.cpp:114] Cannot create Cublas handle. Cublas won't be available.",
        P + "solver.cpp:289] Solving N",
        "F1201 10:00:01.000000  4242 math_functions.cu:28] Check failed: status == CUBLAS_STATUS_SUCCESS "
        "(1 vs. 0)  CUBLAS_STATUS_NOT_INITIALIZED"] + frames(
            "caffe::caffe_gpu_gemm<>()", "caffe::InnerProductLayer<>::Forward_gpu()", "caffe::Net<>::ForwardFromTo()",
            "caffe::Solver<>::Step()")) + "\n")
    r = classify(summarize(str(f)))
    assert r.kind == "cuBLAS/cuRAND status failure" and r.is_oom and r.phase == "forward"
    d = run_log(f, tmp_path)
    assert d["fixes"][0]["action"] == "free_gpu_memory" and "Cannot create Cublas handle" in d["fixes"][0]["detail"]
