"""A real card's add-ons (caffemem/memory/card.py) and host RAM beside the device figure.

The requested bytes (``allocated_bytes``) are what the stub-CUDA oracle counts; the add-ons
(CUDA context, cudaMalloc rounding, cuBLAS workspace) are reported apart, each labelled as a
measured rule or an estimate, and only they separate ``total_bytes`` from the requested bytes.
"""

from __future__ import annotations

import pytest

from conftest import SAMPLES

import caffemem
from caffemem.analysis import build_all
from caffemem.buffers import BOOKKEEPING_PER_LAYER, CONTEXT_MIB_BY_CUDA, Kind, MemoryEnv
from caffemem.cli import main
from caffemem.errors import EXIT_NOFIT
from caffemem.memory import model_memory, replay
from caffemem.memory.card import ESTIMATE, MEASURED, NOT_COUNTED, cublas_workspace_bytes, rounded

MiB = 1 << 20

NET = """
layer { name: "in" type: "Input" top: "x" top: "t" input_param { shape { dim: 8 dim: 3 dim: 32 dim: 32 } shape { dim: 8 dim: 10 } } }
layer { name: "conv" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 16 kernel_size: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "c" top: "f" inner_product_param { num_output: 10 } }
layer { name: "loss" type: "EuclideanLoss" bottom: "f" bottom: "t" top: "loss" }
"""


@pytest.fixture
def nets(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text(NET)
    return build_all(str(path))


@pytest.mark.parametrize("requested,taken", [(0, 0), (1, 512), (512, 512), (513, 1024),
                                             (MiB - 1, MiB), (MiB, 2 * MiB), (3 * MiB, 4 * MiB)])
def test_cudamalloc_rounding(requested, taken):
    assert rounded(requested) == taken


def test_cublas_workspace_by_cuda_version():
    assert cublas_workspace_bytes(10) == 0
    assert cublas_workspace_bytes(11) == cublas_workspace_bytes(12) == (2 * 4096 + 8 * 16) * 1024


def test_addons_stay_apart_from_the_requested_bytes(nets):
    env = MemoryEnv(scenario="train", mode="gpu", engine="caffe", cuda=12)
    r = model_memory(nets, env)
    bare = model_memory(nets, env.with_(card_addons=False, context_bytes=0))
    assert r.allocated_bytes == bare.allocated_bytes == bare.total_bytes  # the oracle's figure
    by_name = {a.name: a for a in r.addons}
    assert by_name["CUDA context"].bytes == CONTEXT_MIB_BY_CUDA[12][0] * MiB
    assert by_name["CUDA context"].basis == ESTIMATE
    events = [d for _, d, _ in replay(nets, env).memory.events("gpu", gpu=0) if d > 0]
    assert 0 < by_name["cudaMalloc rounding"].bytes <= sum(rounded(d) - d for d in events)
    assert by_name["cuBLAS workspace"].bytes == cublas_workspace_bytes(12)
    assert by_name["cuRAND generator"].basis == NOT_COUNTED
    assert r.total_bytes == r.allocated_bytes + sum(a.bytes for a in r.addons)
    assert r.by_kind[Kind.RUNTIME] == r.total_bytes - r.allocated_bytes - r.context_bytes
    assert r.gpus[0].total == r.total_bytes


def test_context_default_follows_the_cuda_version_and_a_given_one_wins():
    assert MemoryEnv(cuda=11).context_bytes == CONTEXT_MIB_BY_CUDA[11][0] * MiB
    assert MemoryEnv().with_(cuda=12).context_bytes == CONTEXT_MIB_BY_CUDA[12][0] * MiB
    given = MemoryEnv(context_bytes=123 * MiB)
    assert given.with_(cuda=12).context_bytes == 123 * MiB
    with pytest.raises(ValueError):
        MemoryEnv(cuda=3)


def test_given_context_is_labelled_as_given(nets):
    r = model_memory(nets, MemoryEnv(scenario="test", mode="gpu", context_bytes=200 * MiB))
    ctx = next(a for a in r.addons if a.name == "CUDA context")
    assert ctx.bytes == 200 * MiB and ctx.basis == MEASURED and "given" in ctx.source


def test_host_ram_beside_the_device_figure(nets):
    """gpu mode: pinned bytes (exact) plus the layers' heap bookkeeping (an estimate), never
    on the device; cpu mode: the bookkeeping is part of the heap."""
    layers = len(nets[0].layers)
    gpu = model_memory(nets, MemoryEnv(scenario="train", mode="gpu", engine="caffe"))
    assert gpu.host_heap_bytes == BOOKKEEPING_PER_LAYER * layers
    assert gpu.host_need_bytes == gpu.host_bytes + gpu.host_heap_bytes
    assert Kind.BOOKKEEPING not in gpu.by_kind  # never on the device
    # pinned: each Blob's shape_data_, 4 B per axis (blob.cpp:27-30): tops x, t, c, f (4, 2,
    # 4, 2 axes; the loss is a scalar), params (4, 1, 2, 1), SGD's history/update/temp per
    # param (3 x 8 axes)
    assert gpu.host_by_kind[Kind.BOOKKEEPING] == 4 * (12 + 8 + 3 * 8)
    cpu = model_memory(nets, MemoryEnv(scenario="train", mode="cpu", engine="caffe"))
    none = model_memory(nets, MemoryEnv(scenario="train", mode="cpu", engine="caffe",
                                        bookkeeping_per_layer=0))
    assert cpu.by_kind[Kind.BOOKKEEPING] == BOOKKEEPING_PER_LAYER * layers
    assert cpu.total_bytes == none.total_bytes + BOOKKEEPING_PER_LAYER * layers
    assert cpu.host_heap_bytes == 0 and cpu.host_need_bytes == cpu.total_bytes


def test_host_mem_says_when_host_ram_not_the_card_is_the_limit(capsys):
    solver = str(SAMPLES / "small_cnn_solver.prototxt")
    code = main(["analyze", solver, "--gpu-mem", "8GiB", "--host-mem", "10MiB"])
    out = capsys.readouterr().out
    assert code == EXIT_NOFIT
    head = out.split("\n\n")[0]
    assert "Fits in --gpu-mem" in head and "Host RAM does NOT fit in --host-mem" in head
    assert "Host RAM, not the card, is the limit." in head
    assert main(["analyze", solver, "--gpu-mem", "8GiB", "--host-mem", "64GiB"]) == 0
    out = capsys.readouterr().out
    assert "Host RAM fits in --host-mem" in out and "not the card" not in out


def test_api_analyze_takes_host_mem_and_cuda():
    a = caffemem.analyze(str(SAMPLES / "small_cnn_solver.prototxt"), host_mem="10MiB", cuda=12)
    doc = a.to_dict()
    assert doc["verdict"]["host_fits"] is False and doc["verdict"]["host_capacity_bytes"] == 10 << 20
    assert {x["name"]: x["bytes"] for x in doc["memory"]["addons"]}["cuBLAS workspace"] == \
        cublas_workspace_bytes(12)
