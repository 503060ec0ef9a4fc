"""What a person sees across commands agrees: the same figure under the same name in every
command's JSON, options either honoured or refused, wording that does not contradict itself.
Each test here was written after finding the problem by using the tool end to end."""

from __future__ import annotations

import json

import pytest

from conftest import SAMPLES

from caffemem.cli import main
from caffemem.errors import EXIT_NOFIT


def _json(capsys, *argv) -> tuple[int, dict]:
    code = main(list(argv) + ["--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_cpu_mode_host_figure_is_heap_not_pinned(capsys):
    """cpu mode pins nothing: the verdict's host figure is all heap (it was all 'pinned')."""
    _, doc = _json(capsys, "analyze", str(SAMPLES / "small_cnn_solver.prototxt"), "--mode", "cpu")
    v = doc["verdict"]
    assert v["mode"] == "cpu" and v["host_pinned_bytes"] == 0
    assert v["host_heap_bytes"] == v["host_bytes"] == doc["total_bytes"] > 0
    _, gpu = _json(capsys, "analyze", str(SAMPLES / "small_cnn_solver.prototxt"), "--mode", "gpu")
    g = gpu["verdict"]
    assert g["host_pinned_bytes"] > 0 and g["host_heap_bytes"] > 0
    assert g["host_bytes"] == g["host_pinned_bytes"] + g["host_heap_bytes"]


def test_diff_honours_host_mem(capsys):
    """diff --host-mem was accepted and ignored by the combined verdict: now a header line
    and exit status 3 when the new net's host RAM does not fit."""
    net = str(SAMPLES / "small_cnn_solver.prototxt")
    code = main(["diff", net, net, "--host-mem", "10MiB"])
    out = capsys.readouterr().out
    assert code == EXIT_NOFIT
    assert "Host RAM in --host-mem 10MiB" in out and "new does NOT fit" in out
    assert main(["diff", net, net, "--host-mem", "64GiB"]) == 0
    assert "new fits" in capsys.readouterr().out


def test_fit_refuses_host_mem_in_one_line(capsys):
    """fit --host-mem was accepted and ignored: it is refused, saying what to do instead."""
    code = main(["fit", str(SAMPLES / "small_cnn_solver.prototxt"), "--gpu-mem", "1GiB",
                 "--host-mem", "8GiB"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "--host-mem" in err and "caffemem analyze --batch B --host-mem" in err


def _test_passes_log(path, passes):
    """A log of test passes only: ``passes`` is [(iteration, [(output, value, loss weight
    or None)])], written as Solver::Test logs them (solver.cpp)."""
    lines = []
    for i, (it, outputs) in enumerate(passes):
        g = f"I0101 00:00:0{i}.000000  1 solver.cpp:"
        lines.append(f"{g}330] Iteration {it}, Testing net (#0)")
        lines += [f"{g}397]     Test net output #{k}: {name} = {v}"
                  + (f" (* {w} = {v * w:g} loss)" if w is not None else "")
                  for k, (name, v, w) in enumerate(outputs)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_log_best_accuracy_under_a_loss_prefix(tmp_path):
    """GoogLeNet's accuracies are named ``loss1/top-1``: the best is the highest, not the
    lowest as for a loss (the summary said 'best loss1/top-1: 0' while it reached 0.04)."""
    from caffemem.logparse.render import text
    from caffemem.logparse.summary import summarize

    f = _test_passes_log(tmp_path / "g.log", [
        (it * 100, [("loss1/loss1", loss, 0.3), ("loss1/top-1", acc, None)])
        for it, (acc, loss) in enumerate([(0.0, 6.9), (0.04, 5.7), (0.02, 5.9)])])
    out = text(summarize(str(f)), None)
    assert "best loss1/top-1: 0.04 at iteration 100" in out
    assert "best loss1/loss1: 5.7 at iteration 100" in out


def _data_shapes(doc: dict) -> dict:
    return {n["label"]: l["tops"][0]["shape"] for n in doc["nets"] for l in n["layers"]
            if l["name"] == "data"}


def test_test_input_shapes_the_test_nets_only(capsys, tmp_path):
    """One --input applies to every net of a solver, so a solver whose train and test data
    differ (SSD: 7 boxes in train, 2 in test) could not match its log in one run:
    --test-input gives the test nets their own shapes, winning over --input there."""
    import caffemem

    solver = str(SAMPLES / "small_cnn_solver.prototxt")
    argv = ["analyze", solver, "--input", "data=*,3,32,32", "--test-input", "data=*,3,96,96"]
    _, doc = _json(capsys, *argv)
    assert _data_shapes(doc) == {"train net": [32, 3, 32, 32], "test net #0": [32, 3, 96, 96]}
    _, plain = _json(capsys, "analyze", solver, "--input", "data=*,3,32,32")
    assert _data_shapes(plain)["test net #0"] == [32, 3, 32, 32]
    a = caffemem.analyze(solver, input={"data": "*,3,32,32"}, test_input={"data": "*,3,96,96"})
    assert a.to_dict() == doc
    # per side in diff, as every net option
    _, d = _json(capsys, "diff", solver, solver, "--new-test-input", "data=*,3,96,96")
    assert d["delta_bytes"] > 0
    # a typo, or a file with no test net, is one line naming --test-input
    for args, words in ((["--test-input", "dta=*,3,96,96"], "did you mean 'data'"),
                        (["--phase", "TEST"], "")):
        src = solver if "--phase" not in args else str(SAMPLES / "small_cnn_train.prototxt")
        extra = [] if "--test-input" in args else ["--test-input", "data=*,3,96,96"]
        code = main(["analyze", src, *args, *extra])
        err = capsys.readouterr().err.strip()
        assert code == 1 and len(err.splitlines()) == 1 and "--test-input" in err and words in err


def test_input_star_keeps_an_input_layers_batch(capsys):
    """'*' keeps the layer's batch for an Input layer too (a deploy net): it was refused with
    'declares no batch size' though the Input's shape starts with it."""
    _, doc = _json(capsys, "analyze", str(SAMPLES / "small_cnn_train.prototxt"),
                   "--input", "data=*,3,32,32")
    assert _data_shapes(doc) == {"net": [32, 3, 32, 32]}
    _, doc = _json(capsys, "analyze", str(SAMPLES / "small_cnn_train.prototxt"),
                   "--input", "data=*,3,32,32", "--batch", "4")
    assert _data_shapes(doc) == {"net": [4, 3, 32, 32]}


def test_exit_status_3_documented_only_where_it_can_happen():
    """log, plot, report and layers never exit 3, yet their --help said '3 the net does not
    fit in --gpu-mem'; analyze, diff and fit (which do) still say it."""
    import argparse

    from caffemem.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for cmd, p in subs.items():
        text = " ".join(p.format_help().split())
        assert "exit status" in text, cmd
        assert ("status 3" in text or " 3 " in text.rsplit("exit status", 1)[1]) == (
            cmd in ("analyze", "diff", "fit")), cmd
    assert "--host-mem" in " ".join(parser.format_help().split()).split("exit status", 1)[1]


def test_fit_names_capacity_as_analyze_does_and_its_total_is_reproducible(capsys):
    """fit's JSON called the card 'gpu_mem_bytes' where analyze's verdict and log's diagnosis
    say 'capacity_bytes'; and for a solver its answer sizes the train net only, so
    'analyze --batch B' (which resizes the test nets too) gave another total: fit now says
    the test nets' batch and the analyze command that gives its figure."""
    solver = str(SAMPLES / "small_cnn_solver.prototxt")
    code, f = _json(capsys, "fit", solver, "--gpu-mem", "1GiB")
    _, a = _json(capsys, "analyze", solver, "--gpu-mem", "1GiB")
    assert code == 0 and "gpu_mem_bytes" not in f
    assert f["capacity_bytes"] == a["verdict"]["capacity_bytes"] == 2**30
    assert f["capacity_typed"] == a["verdict"]["capacity_typed"] == "1GiB"
    ans = f["answers"][0]
    assert ans["largest"] == a["verdict"]["largest_batch"] and ans["test_batch"] == 32
    main(["fit", solver, "--gpu-mem", "1GiB"])
    text = capsys.readouterr().out
    hint = f"analyze --batch {ans['largest']} --test-batch {ans['test_batch']}"
    assert "largest train batch" in text and hint in text
    _, again = _json(capsys, *(["analyze", solver] + hint.split()[1:]))
    assert again["verdict"]["needed_bytes"] == ans["total_bytes_at_largest"]
    _, net = _json(capsys, "fit", str(SAMPLES / "small_cnn_train.prototxt"), "--gpu-mem", "1GiB")
    assert net["answers"][0]["test_batch"] is None


def test_curves_plot_puts_a_small_loss_on_the_loss_axis(tmp_path):
    """A test loss that has fallen below 1 was drawn on the axis labelled 'accuracy' (any
    output within [0, 1] went there); names decide now, as for the log's 'best' lines, and
    the iteration axis has whole numbers only."""
    from caffemem.logparse.summary import summarize
    from caffemem.plot import plot_curves

    f = _test_passes_log(tmp_path / "t.log", [
        (it, [("accuracy", acc, None), ("loss", loss, 1)])
        for it, (acc, loss) in enumerate([(0.5, 0.9), (0.7, 0.6), (0.8, 0.4)])])
    fig = plot_curves(summarize(str(f)), str(tmp_path / "c.png"))
    loss_ax = fig.axes[0]
    acc_ax = next(a for a in fig.axes if a.get_ylabel() == "accuracy")
    assert [l.get_label() for l in loss_ax.get_lines()] == ["test loss"]
    assert [l.get_label() for l in acc_ax.get_lines()] == ["test accuracy"]
    ticks = [t for t in fig.axes[1].get_xticks() if 0 <= t <= 2]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_database_layer_hint_uses_the_crop_it_knows(tmp_path, capsys):
    """A CIFAR net (crop_size 32) was told 'crop_size 32 gives H = W = 32 ... e.g. --input
    data=*,3,224,224': the example now carries the sizes the prototxt gives."""
    net = tmp_path / "n.prototxt"
    net.write_text('layer { name: "data" type: "Data" top: "data" top: "label"\n'
                   '  transform_param { crop_size: 32 }\n'
                   '  data_param { source: "no_such_lmdb" batch_size: 128 backend: LMDB } }\n'
                   'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"\n'
                   '  inner_product_param { num_output: 10 } }\n')
    assert main(["analyze", str(net)]) == 1
    err = capsys.readouterr().err
    assert "crop_size 32 gives H = W = 32" in err and err.strip().endswith("e.g. --input data=*,3,32,32")


@pytest.mark.parametrize("layer, example", [
    ('type: "ImageData" image_data_param { source: "list.txt" batch_size: 8 is_color: false }',
     "data=*,1,224,224"),
    ('type: "WindowData" window_data_param { source: "w.txt" batch_size: 8 crop_size: 96 }',
     "data=*,3,96,96"),
])
def test_other_data_layer_hints_use_what_the_prototxt_knows(tmp_path, capsys, layer, example):
    """A gray ImageData (C = 1) and a WindowData with crop 96 suggest those sizes."""
    net = tmp_path / "n.prototxt"
    net.write_text(f'layer {{ name: "data" {layer} top: "data" top: "label" }}\n'
                   'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"\n'
                   '  inner_product_param { num_output: 10 } }\n')
    assert main(["analyze", str(net)]) == 1
    assert capsys.readouterr().err.strip().endswith(f"e.g. --input {example}")


def _log_text(tmp_path, capsys, text: str):
    """``text`` written as a log; (its path, what 'caffemem log' prints for it)."""
    log = tmp_path / "log.txt"
    log.write_text(text)
    assert main(["log", str(log)]) == 0
    return log, capsys.readouterr().out


def test_log_without_a_phase_reads_and_an_inference_run_asks_for_its_deploy_net(tmp_path, capsys):
    """A pycaffe run's OOM with no set-up lines (zeakey/hed#2) printed 'FAILURE: gpu
    out-of-memory, during not shown in the log' and asked for --net train_val.prototxt: the
    moment is said as unknown, and an inference run is asked for the net it runs."""
    _, out = _log_text(tmp_path, capsys,
                       "syncedmem.cpp:71] Check failed: error == cudaSuccess (2 vs. 0)  out of memory\n"
                       "*** Check failure stack trace: ***\n"
                       "Process finished with exit code 134 (interrupted by signal 6: SIGABRT)\n")
    assert "FAILURE: gpu out-of-memory, when: not shown in the log" in out
    assert "during not shown" not in out
    assert "--net deploy.prototxt" in out and "train_val" not in out


def _two_runs_log(tmp_path):
    """Two runs appended to one log: the first dies copying weights, the second trains."""
    g = "I0123 01:09:19.197837  3123 "
    log = tmp_path / "train.log"
    log.write_text(
        f"{g}caffe.cpp:128] Finetuning from old.caffemodel\n"
        "F0123 01:09:19.273072  3123 net.cpp:829] Cannot copy param 0 weights from layer 'conv7'; "
        "shape mismatch.\n"
        "*** Check failure stack trace: ***\n"
        "    @     0x7f89415382a7  caffe::Net<>::CopyTrainedLayersFrom()\n"
        "    @           0x40a998  train()\n"
        "I0123 01:10:17.624249  3158 solver.cpp:288] Solving CaffeNet\n"
        "I0123 01:10:35.067643  3158 solver.cpp:237] Iteration 0, loss = 7.15704\n"
        "I0123 01:12:35.067643  3158 solver.cpp:237] Iteration 20, loss = 6.1\n")
    return log


def test_log_of_several_runs_says_the_failure_ended_an_earlier_one(tmp_path, capsys):
    """caffenet-benchmark's darknet_bn.log holds four runs; the first died copying weights
    (a shape mismatch) and the last trained to the end.  The failure was reported as
    'during a later iteration' (the later runs' iterations) with nothing saying the log
    went on; now its phase is the weight copy and the later run is named."""
    log = _two_runs_log(tmp_path)
    assert main(["log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "during copying trained weights into the built net" in out and "[phase: net_setup_train]" in out
    assert "another run starts at line 6" in out
    assert "training: 2 logged iterations" in out
    code, doc = _json(capsys, "log", str(log))
    assert code == 0 and doc["later_run_line"] == 6 and doc["failure"]["phase"] == "net_setup_train"


def test_diff_explains_activations_by_the_top_not_the_weights(capsys):
    """segnet_old -> segnet_new changes conv1's weights (3 -> 64 input channels) and its
    batch (4 -> 1): its activations shrank by the batch, but the headline said
    'conv1 activations -144.0 MiB (weights 64x3x7x7 -> 64x64x7x7)'."""
    assert main(["diff", str(SAMPLES / "segnet_old.prototxt"), str(SAMPLES / "segnet_new.prototxt")]) == 0
    out = capsys.readouterr().out
    assert "conv1 activations -144.0 MiB (top 4x64x384x512 -> 1x64x384x512)" in out
    assert "activations -144.0 MiB (weights" not in out


def test_fit_says_the_engine_it_assumed_and_how_to_get_the_other(capsys):
    """Analyze says when the engine changes the total; fit answered cuDNN's batch (352 in
    2 GiB for small_cnn_train; Caffe's engine fits 360) without a word on it."""
    net = str(SAMPLES / "small_cnn_train.prototxt")
    assert main(["fit", net, "--gpu-mem", "2G"]) == 0
    out = capsys.readouterr().out
    assert "engine cudnn" in out and "the engine is cuDNN's by default" in out and "--engine caffe" in out
    for given in (["--engine", "cudnn"], ["--mode", "cpu"]):
        assert main(["fit", net, "--gpu-mem", "2G", *given]) == 0
        assert "by default" not in capsys.readouterr().out
    code, doc = _json(capsys, "fit", net, "--gpu-mem", "2G")
    assert code == 0 and doc["answers"][0]["engine_defaulted"] is True


def test_layers_answers_for_the_types_asked(capsys):
    """'caffemem layers Interp' is how a user asks whether a fork's layer is known; it was
    'unrecognized arguments'.  Known types print with their fork; a typo is named, with
    the close name."""
    assert main(["layers", "Upsample", "convolution"]) == 0
    assert capsys.readouterr().out.split() == ["Upsample", "segnet", "Convolution", "BVLC"]
    assert main(["layers", "Interpp"]) == 1
    err = capsys.readouterr().err
    assert "no rule for layer type 'Interpp'" in err and "did you mean 'Interp'" in err
    assert len(err.strip().splitlines()) == 1


def test_analyze_given_a_log_says_it_is_one(tmp_path, capsys):
    """'caffemem analyze train.log' answered 'train.log:1:7: ... Expected "{"' (the protobuf
    parser's words); the log command already named a prototxt given to it."""
    log = tmp_path / "train.log"
    log.write_text("I0728 23:55:38.788589  4259 caffe.cpp:211] Use CPU.\n"
                   "I0728 23:55:38.789 4259 solver.cpp:48] Initializing solver from parameters:\n")
    for argv in (["analyze", str(log)], ["diff", str(SAMPLES / "small_cnn_train.prototxt"), str(log)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert f"{log}:1: a Caffe log" in err and f"'caffemem log {log}'" in err and "Expected" not in err


def test_every_command_help_shows_examples_and_exit_status_apart():
    """log's --help had no example and ran its epilog and the exit-status paragraph into one
    ('...log_schema.json. exit status: 0 done'); every command now shows examples, and the
    exit status starts a line of its own."""
    import argparse

    from caffemem.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for cmd, p in subs.items():
        text = p.format_help()
        assert f"caffemem {cmd} " in text.split("options:", 1)[1] or "examples:" in text, cmd
        assert "\nexit status:" in text, cmd


def test_database_layer_without_source_is_not_called_database_question_mark(tmp_path, capsys):
    """DIGITS' original.prototxt has no data_param.source; the hint said 'stored in the
    database '?''."""
    net = tmp_path / "n.prototxt"
    net.write_text('layer { name: "data" type: "Data" top: "data" data_param { batch_size: 4 } }\n')
    assert main(["analyze", str(net)]) == 1
    err = capsys.readouterr().err
    assert "'?'" not in err and "data_param names none" in err and "--input data=*,3,224,224" in err


def test_a_net_that_allocates_nothing_still_names_its_peak_moment(tmp_path, capsys):
    """An Input-only net (or a trunk cut by a typo) allocates no device memory: the verdict
    said 'peak during .' and 'at ): '."""
    net = tmp_path / "n.prototxt"
    net.write_text('layer { name: "a" type: "Input" top: "data" '
                   'input_param { shape { dim: 1 dim: 3 } } }\n')
    assert main(["analyze", str(net)]) == 0
    out = capsys.readouterr().out
    assert "during ." not in out and "at )" not in out and "peak during net: set up" in out


def test_a_refused_layer_is_named_by_file_line_and_column(tmp_path, capsys):
    """Net refusals named the layer but not where it is ('layer 'c' (type Convolution):
    bottom 'dta' ...'); they start with file:line:col of the layer's name now, the layer of
    the phase being built when two share the name."""
    net = tmp_path / "n.prototxt"
    net.write_text('name: "c"\n'
                   'layer { name: "data" type: "Input" top: "data" include { phase: TRAIN }\n'
                   '  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
                   'layer { name: "data" type: "Data" top: "data" include { phase: TEST }\n'
                   '  data_param { source: "x" batch_size: 2 } }\n'
                   'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
                   '  param { name: "c" } convolution_param { num_output: 4 kernel_size: 3 } }\n'
                   'layer { name: "d" type: "Convolution" bottom: "dta" top: "d"\n'
                   '  convolution_param { num_output: 4 kernel_size: 3 } }\n')
    assert main(["analyze", str(net)]) == 1
    assert capsys.readouterr().err.startswith(f"caffemem: error: {net}:8:9: layer 'd' (type Convolution): bottom 'dta'")
    net.write_text(net.read_text().rsplit("layer { name: \"d\"", 1)[0])
    assert main(["analyze", str(net), "--phase", "TEST"]) == 1
    assert capsys.readouterr().err.startswith(f"caffemem: error: {net}:4:9: layer 'data' (Data):")


def test_log_header_lists_each_gpu_line_once_and_says_how_many_more(tmp_path, capsys):
    """darknet_bn.log (four runs) printed '  Using GPUs 0' four times; NVCaffe's 8-GPU log
    showed four of its GPU lines with no word of the rest."""
    g = "I0101 00:00:00.000000  1 "
    _, out = _log_text(tmp_path, capsys,
                       "".join(f"{g}caffe.cpp:184] Using GPUs 0\n" for _ in range(3))
                       + "".join(f"{g}gpu_memory.cpp:1] Total memory: 100, Free: 90, dev_info[{i}]: "
                                 f"total=100 free=90\n" for i in range(6))
                       + f"{g}solver.cpp:237] Iteration 0, loss = 7\n")
    assert out.count("Using GPUs 0") == 1 and "... and 3 more GPU line(s)" in out
    assert "training: 1 logged iteration, last 0" in out  # not '1 logged iterations'


def test_a_card_known_by_its_size_only_is_not_called_gpu_gpu(tmp_path, capsys):
    """NVCaffe's failure line gives the card's total but not its name: the log said
    'GPU: GPU, 11.9 GiB (the log)' and the JSON named the card 'GPU'."""
    log, out = _log_text(tmp_path, capsys,
                         "F0101 00:00:00.000000  1 gpu_memory.hpp:38] Failed to allocate 49152000 "
                         "bytes on device 2. Total memory: 12799574016, Free: 21430272, "
                         "dev_info[2]: total=12799574016 free=21430272\n")
    assert "GPU: a card the log does not name, 11.9 GiB (the log)" in out and "GPU: GPU" not in out
    code, doc = _json(capsys, "log", str(log))
    assert doc["failure"]["card"]["name"] is None and doc["failure"]["card"]["total_bytes"] == 12799574016


def test_a_log_without_curves_draws_no_empty_picture(tmp_path, capsys):
    """'caffemem plot' on an OOM excerpt (py-faster-rcnn#91: three lines) wrote empty axes
    from -0.05 to 0.05; now plot refuses in one line and 'log --plot' keeps its report and
    says the picture was not written."""
    log = tmp_path / "log.txt"
    log.write_text("F0101 00:00:00.000000  1 syncedmem.cpp:64] Check failed: error == cudaSuccess "
                   "(2 vs. 0)  out of memory\n")
    png = tmp_path / "c.png"
    assert main(["plot", str(log), "-o", str(png)]) == 1
    assert "no training curves to draw" in capsys.readouterr().err and not png.exists()
    assert main(["log", str(log), "--plot", str(png)]) == 0
    out, err = capsys.readouterr()
    assert "FAILURE: gpu out-of-memory" in out and "not written" in err and not png.exists()


def test_failure_layer_article_follows_the_sound():
    """'at: a LRN layer' (oracle-gpu alexnet_oom_*): an initialism read letter by letter
    takes 'an' when its first letter sounds as a vowel."""
    from caffemem.logparse.render import _article

    assert [f"{_article(w)} {w}" for w in ("LRN", "SPP", "HDF5Data", "BN", "Convolution", "Unpooling")] == [
        "an LRN", "an SPP", "an HDF5Data", "a BN", "a Convolution", "an Unpooling"]


def test_where_the_model_runs_out_names_the_net_once():
    """'runs out at: train net: forward: train net: conv2 Forward ...' (oracle-gpu
    alexnet_oom_3000000000): the moment already names the net."""
    from caffemem.diagnose import LoggedNet, diagnose
    from caffemem.memory import MemoryEnv

    text = (SAMPLES / "small_cnn_train.prototxt").read_text()
    nets = [LoggedNet("train net", 'state { phase: TRAIN }\n' + text),
            LoggedNet("test net #0", 'state { phase: TEST }\n' + text)]
    d = diagnose(nets, 'test_iter: 10\ntest_interval: 500\nbase_lr: 0.01\ntype: "SGD"\n',
                 MemoryEnv(solver_type="SGD"), 600 * 2**20)
    assert d.runs_out_at and d.runs_out_at.startswith("train net: ")
    assert d.runs_out_at.count("train net") == 1, d.runs_out_at


def test_report_of_a_log_of_several_runs_says_an_earlier_run_died(tmp_path):
    """The page's verdict line said 'the logged run died' for darknet_bn.log, whose last
    run trained to the end."""
    page = tmp_path / "r.html"
    assert main(["report", str(SAMPLES / "small_cnn_train.prototxt"), "--log", str(_two_runs_log(tmp_path)),
                 "-o", str(page)]) == 0
    assert '"later_run_line":6' in page.read_text()  # the verdict line's script reads it
    one = tmp_path / "one.log"
    one.write_text("F0101 00:00:00.000000  1 syncedmem.cpp:64] Check failed: error == cudaSuccess "
                   "(2 vs. 0)  out of memory\n")
    assert main(["report", str(SAMPLES / "small_cnn_train.prototxt"), "--log", str(one), "-o", str(page)]) == 0
    assert '"later_run_line":null' in page.read_text()
