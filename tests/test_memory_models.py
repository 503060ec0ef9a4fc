"""The model's shortcuts give the figures the full model gives (caffemem/memory/model.py,
memory/sim.py): ``Models`` (one replay and report per env, shared), ``needed_bytes`` (the
device alone, without the pinned bookkeeping) and ``same_replay`` (the engine check's "both
engines replay alike")."""

from __future__ import annotations

import glob

import pytest

from caffemem.analysis import AnalysisOptions, analyze_file, build_loaded
from caffemem.loader import load_text
from caffemem.memory import MemoryEnv, fits, model_memory
from caffemem.memory.model import Models, needed_bytes
from caffemem.memory.sim import same_replay
from caffemem.verdict import engine_totals

from conftest import SAMPLES, SHARED

ENVS = [MemoryEnv(scenario=s, mode=m, engine=e) for s in ("train", "time", "test")
        for m in ("gpu", "cpu") for e in ("cudnn", "caffe") if not (m == "cpu" and e == "cudnn")]


def relu_chain(n: int) -> str:
    return ('layer { name: "d" type: "Input" top: "b0" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }\n'
            + "".join(f'layer {{ name: "r{i}" type: "ReLU" bottom: "b{i - 1}" top: "b{i}" }}\n'
                      for i in range(1, n + 1)))


def _nets(path):
    try:
        return analyze_file(path)[1]
    except Exception:  # a file caffemem refuses (or that needs --input) has no model
        return None


def _paths() -> list[str]:
    paths = sorted(glob.glob(str(SAMPLES / "*.prototxt")))
    for d in ("oracle/*/*.prototxt", "oracle/layers/*/*.prototxt", "oracle-random/*/*.prototxt"):
        paths += sorted(glob.glob(str(SHARED / d)))[:60]
    return paths


@pytest.mark.parametrize("path", _paths())
def test_needed_bytes_and_models_match_the_full_model(path):
    nets = _nets(path)
    if nets is None:
        pytest.skip("not built without --input")
    models = Models(nets)
    for env in ENVS[::2]:
        try:
            report = model_memory(nets, env)
        except Exception:
            continue  # a run Caffe dies in (e.g. caffe time on a NOT_IMPLEMENTED Backward)
        assert needed_bytes(nets, env) == fits(report, 1).needed
        assert models.report(env).to_dict() == report.to_dict()
        assert models.report(env) is models.report(env)  # made once
        assert models.needed(env) == fits(report, 1).needed


@pytest.mark.parametrize("path", _paths())
def test_same_replay_means_the_same_bytes(path):
    """Where the shortcut says both engines replay alike, a real replay under the other
    engine gives the same bytes."""
    nets = _nets(path)
    if nets is None:
        pytest.skip("not built without --input")
    for scenario in ("train", "test"):
        env, other = MemoryEnv(scenario=scenario), MemoryEnv(scenario=scenario, engine="caffe")
        if all(same_replay(n, env, other) for n in nets):
            try:
                assert needed_bytes(nets, env) == needed_bytes(nets, other)
            except Exception as e:  # both engines refuse alike
                with pytest.raises(type(e)):
                    needed_bytes(nets, other)


def test_a_relu_chain_replays_alike_under_both_engines():
    nets = build_loaded(load_text(relu_chain(50), "<chain>"), AnalysisOptions())
    env = MemoryEnv(scenario="test")
    assert same_replay(nets[0], env, env.with_(engine="caffe"))
    report = model_memory(nets, env)
    totals = engine_totals(nets, env, report)
    assert totals == {"cudnn": fits(report, 1).needed,
                      "caffe": fits(model_memory(nets, env.with_(engine="caffe")), 1).needed}


def test_a_convolution_does_not_replay_alike():
    text = relu_chain(2) + ('layer { name: "c" type: "Convolution" bottom: "b2" top: "c" '
                            'convolution_param { num_output: 4 kernel_size: 3 } }\n')
    nets = build_loaded(load_text(text, "<conv>"), AnalysisOptions())
    env = MemoryEnv(scenario="test")
    assert not same_replay(nets[0], env, env.with_(engine="caffe"))
    totals = engine_totals(nets, env, model_memory(nets, env))
    assert totals["caffe"] == fits(model_memory(nets, env.with_(engine="caffe")), 1).needed
    assert totals["caffe"] != totals["cudnn"]
