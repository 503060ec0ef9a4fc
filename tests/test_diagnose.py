"""Diagnosis from a log's echoes: rebuild, model, and fixes that are verified to fit."""

from __future__ import annotations

from conftest import SAMPLES

from caffemem.analysis import AnalysisOptions, analyze_file
from caffemem.diagnose import LoggedNet, diagnose, parse_echo
from caffemem.memory import MemoryEnv, fits, model_memory

NET_TEXT = (SAMPLES / "small_cnn_train.prototxt").read_text()
SOLVER_TEXT = 'test_iter: 10\ntest_interval: 500\nbase_lr: 0.01\ntype: "SGD"\n'
GiB = 2**30


def logged():
    train = LoggedNet("train net", 'state { phase: TRAIN }\n' + NET_TEXT)
    test = LoggedNet("test net #0", 'state { phase: TEST }\n' + NET_TEXT)
    return [train, test]


def test_fitting_run_says_memory_was_taken_elsewhere():
    d = diagnose(logged(), SOLVER_TEXT, MemoryEnv(solver_type="SGD"), 8 * GiB)
    assert d.total_bytes < 8 * GiB and [f.action for f in d.fixes] == ["free_gpu_memory"]
    assert d.fixes[0].fits and d.fixes[0].confidence == "high"
    assert any("outside this run" in n for n in d.notes)


def test_batch_fix_is_verified_by_the_model():
    cap = 600 * 2**20
    env = MemoryEnv(solver_type="SGD")
    d = diagnose(logged(), SOLVER_TEXT, env, cap)
    assert d.total_bytes > cap and d.runs_out_at
    batch_fixes = [f for f in d.fixes if f.action == "reduce_batch"]
    assert batch_fixes and batch_fixes[0].fits and batch_fixes[0].total_bytes <= cap
    assert batch_fixes[0].detail.startswith("batch_size 32 ->") and batch_fixes[0].confidence == "high"
    best = batch_fixes[0].values["batch_size"]
    # re-analysis of the sample at that batch: it fits, one more does not
    path = str(SAMPLES / "small_cnn_solver.prototxt")
    def need(b):
        loaded, nets = analyze_file(path, AnalysisOptions(batch=b, batch_train_only=True))
        return fits(model_memory(nets, env.with_(test_interval=500, test_iter=(10,))), cap).needed
    assert need(best) <= cap < need(best + 1)
    assert "iter_size" in batch_fixes[0].detail and batch_fixes[0].values["iter_size"] == -(-32 // best)


def test_echo_cut_by_glog_keeps_complete_layers():
    text = 'name: "n"\nlayer {\n  name: "a"\n  type: "Input"\n  top: "x"\n  input_param { shape { dim: 1 } }\n}\nlayer {\n  name: "b"\n  ty'
    param, complete = parse_echo(text, "<echo>")
    assert not complete and [l.name for l in param.layer] == ["a"]


def test_cut_echo_completed_from_creation_lines():
    net = LoggedNet("net", 'name: "n"\nlayer {\n  name: "in"\n  type: "Input"\n  top: "x"\n'
                           '  input_param { shape { dim: 2 dim: 3 } }\n}\nlayer {\n  name: "r"\n  type: "Re',
                    top_shapes={"x": (2, 3), "y": (2, 3), "z": (2, 5)},
                    layers=[("in", [], ["x"]), ("r", ["x"], ["y"]), ("ip", ["y"], ["z"])])
    d = diagnose([net], None, MemoryEnv(scenario="test"), GiB)
    assert any("glog cut" in n for n in d.notes)


def test_cudnn_fix_names_the_largest_im2col_layers_and_is_checked():
    from caffemem.analysis import AnalysisOptions
    from caffemem.diagnose import diagnose_loaded
    from caffemem.loader import load

    path = str(SAMPLES / "segnet_new.prototxt")
    env = MemoryEnv(solver_type="SGD", engine="caffe")
    d = diagnose_loaded(load(path), AnalysisOptions(), env, 8 * GiB)
    assert d.total_bytes > 8 * GiB
    (fix,) = [f for f in d.fixes if f.action == "use_cudnn"]
    named = fix.detail.split("the largest: ")[1]
    assert named.startswith("conv_decode1 2.3 GiB, conv1 2.3 GiB")  # the two 64-channel 384x512 layers
    cudnn = model_memory(analyze_file(path)[1], env.with_(engine="cudnn"))
    assert fix.fits and fix.total_bytes == fits(cudnn, 8 * GiB).needed


def test_both_batches_down_when_neither_alone_fits():
    """Caffe's GoogLeNet under a 1.5 GB host limit (oracle run L1500, died in the first test
    pass): neither a smaller train batch nor a smaller test batch fits alone; both together do."""
    from conftest import shared_or_skip

    from caffemem.diagnose import nets_from_summary
    from caffemem.logparse import summarize

    s = summarize(str(shared_or_skip("oracle", "oom", "L1500.log")))
    cap = 1_500_000_000
    d = diagnose(nets_from_summary(s), s.solver_echo, MemoryEnv(mode="cpu", engine="caffe"), cap)
    (both,) = [f for f in d.fixes if "neither alone fits" in f.detail]
    assert both.fits and both.total_bytes <= cap and both.action == "reduce_batch"
    # the other fixes the model checked do not fit alone (a smaller input does, by itself)
    assert not any(f.fits for f in d.fixes if f is not both and f.action != "reduce_input_size")
