"""Golden tests for the allocation model, one tiny net per rule, expectations as arithmetic.

Each test builds a net from inline prototxt text, models it in a chosen env and checks one
kind of bytes of one layer (or the total) against a hand-derived formula, so that a wrong
rule fails a test named after it.  The Caffe source each rule comes from is named in the
model's docstrings (caffemem/memory, caffemem/layers/*.buffers).
"""

from __future__ import annotations

import pytest

from caffemem.memory import (Buffer, Kind, MemoryEnv, bridge, fits, model_memory,
                             naive_estimates)
from caffemem.memory.engine import CAFFE, CUDNN, layer_engine
from caffemem.memory.model import history_sets
from caffemem.net import BuildOptions, build_net
from caffemem.netfilter import NetState
from caffemem.pb import caffe_pb2
from caffemem.prototxt import parse_text
from caffemem.upgrade import upgrade_net

MiB = 1 << 20
F = 4  # sizeof(float)


def build(text: str, phase: str = "TRAIN", label: str = "net"):
    p = parse_text(text, caffe_pb2.NetParameter())
    upgrade_net(p)
    net = build_net(p, NetState(phase), BuildOptions())
    net.label = label
    return net


def run(text: str, scenario: str = "time", mode: str = "cpu", engine: str = "caffe",
        phase: str = "TRAIN", **kw):
    kw.setdefault("bookkeeping_per_layer", 0)  # the rules' bytes alone (see test_bookkeeping_*)
    env = MemoryEnv(scenario=scenario, mode=mode, engine=engine if mode == "gpu" else "caffe",
                    **kw)
    return model_memory([build(text, phase)], env)


def side(report):
    return "device" if report.gpu else "host"


def kind_of(report, layer: str, kind: str, net: str | None = None) -> int:
    l = report.layer(layer, net)
    return (l.device if report.gpu else l.host).get(kind, 0)


def host_kind(report, layer: str, kind: str, net: str | None = None) -> int:
    return report.layer(layer, net).host.get(kind, 0)


def data4(name="data", n=2, c=3, h=8, w=8) -> str:
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f'input_param {{ shape {{ dim: {n} dim: {c} dim: {h} dim: {w} }} }} }}\n')


N, C, H, W = 2, 3, 8, 8
X = N * C * H * W * F  # bytes of the 2x3x8x8 input


# --- activations -------------------------------------------------------------------------

def test_in_place_top_allocated_once():
    r = run(data4() + 'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }')
    assert r.total_bytes == X  # the log counts it twice; memory holds it once
    assert r.nets[0].log_figure == 2 * X


def test_separate_top_allocated():
    r = run(data4() + 'layer { name: "r" type: "ReLU" bottom: "data" top: "out" }')
    assert kind_of(r, "r", Kind.ACTIVATIONS) == X
    assert kind_of(r, "data", Kind.ACTIVATIONS) == X


def test_input_nobody_reads_is_never_allocated():
    r = run(data4())
    assert r.total_bytes == 0


def test_flatten_and_reshape_tops_share_data():
    for layer in ('layer { name: "f" type: "Flatten" bottom: "data" top: "f" }',
                  'layer { name: "f" type: "Reshape" bottom: "data" top: "f" '
                  'reshape_param { shape { dim: 0 dim: -1 } } }'):
        r = run(data4() + layer + '\nlayer { name: "r" type: "ReLU" bottom: "f" top: "o" }')
        assert kind_of(r, "f", Kind.ACTIVATIONS) == 0
        assert r.total_bytes == 2 * X  # data (read through f) and o


def test_split_tops_share_data_but_own_diffs():
    text = (data4() + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
            'convolution_param { num_output: 3 kernel_size: 1 bias_term: false } }\n'
            'layer { name: "a" type: "ReLU" bottom: "c" top: "a" }\n'
            'layer { name: "b" type: "TanH" bottom: "c" top: "b" }\n'
            'layer { name: "s" type: "Eltwise" bottom: "a" bottom: "b" top: "s" }\n'
            'layer { name: "l" type: "EuclideanLoss" bottom: "s" bottom: "data" top: "l" }')
    r = run(text, scenario="train")
    split = r.layer("c_c_0_split")
    assert split.host.get(Kind.ACTIVATIONS, 0) == 0
    assert split.host.get(Kind.DIFFS, 0) == 2 * X  # one diff per split top


def test_data_layer_tops_are_the_prefetch_batches():
    text = ('layer { name: "d" type: "Data" top: "data" top: "label" '
            'data_param { source: "x" batch_size: 5 backend: LMDB } '
            'transform_param { crop_size: 4 force_color: true } }\n'
            'layer { name: "r" type: "ReLU" bottom: "data" top: "o" }')
    r = run(text, scenario="test")
    data, label = 5 * 3 * 4 * 4 * F, 5 * F
    assert kind_of(r, "d", Kind.ACTIVATIONS) == 0
    assert kind_of(r, "d", Kind.PREFETCH) == 4 * (data + label)  # prefetch defaults to 4
    assert kind_of(r, "r", Kind.ACTIVATIONS) == data
    r2 = run(text, scenario="test", prefetch=2)
    assert kind_of(r2, "d", Kind.PREFETCH) == 2 * (data + label)
    g = run(text, scenario="test", mode="gpu", engine="cudnn")
    assert kind_of(g, "d", Kind.PREFETCH) == 4 * (data + label)  # cudaMalloc'ed at set up
    assert host_kind(g, "d", Kind.PREFETCH) == 4 * (data + label)  # and pinned on the host


# --- diffs ---------------------------------------------------------------------------------

def test_time_without_loss_or_params_allocates_no_diffs():
    r = run(data4() + 'layer { name: "r" type: "ReLU" bottom: "data" top: "o" }\n'
            'layer { name: "s" type: "Sigmoid" bottom: "o" top: "p" }')
    assert r.by_kind.get(Kind.DIFFS, 0) == 0


def test_test_scenario_allocates_no_diffs():
    text = (data4() + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
            'convolution_param { num_output: 4 kernel_size: 3 } }\n'
            'layer { name: "l" type: "EuclideanLoss" bottom: "c" bottom: "c" top: "l" }')
    r = run(text, scenario="test")
    assert r.by_kind.get(Kind.DIFFS, 0) == F  # only the loss weight, set at SetUp
    assert r.by_kind.get(Kind.PARAM_DIFFS, 0) == 0


def test_loss_top_diff_holds_the_loss_weight():
    text = data4() + 'layer { name: "l" type: "EuclideanLoss" bottom: "data" bottom: "data" top: "l" }'
    r = run(text, scenario="test")
    assert kind_of(r, "l", Kind.DIFFS) == F
    assert kind_of(r, "l", Kind.ACTIVATIONS) == F


def test_caffe_conv_cpu_backward_writes_bottom_diff_unconditionally():
    # caffe time calls every layer's Backward; Caffe's CPU conv takes bottom[i]->mutable_cpu_diff()
    text = data4() + ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                      'convolution_param { num_output: 3 kernel_size: 1 bias_term: false } }')
    r = run(text)
    assert kind_of(r, "data", Kind.DIFFS) == X
    assert kind_of(r, "c", Kind.DIFFS) == X
    g = run(text, mode="gpu", engine="caffe")  # GPU: only for the weight gradient (lr 1): yes
    assert kind_of(g, "data", Kind.DIFFS) == X
    cu = run(text, mode="gpu", engine="cudnn")  # cuDNN: only when propagating down: no
    assert kind_of(cu, "data", Kind.DIFFS) == 0


def test_softmax_loss_gpu_uses_bottom_diff_as_scratch_in_test_net():
    text = ('layer { name: "data" type: "Input" top: "data" top: "label" input_param { '
            'shape { dim: 4 dim: 10 } shape { dim: 4 } } }\n'
            'layer { name: "l" type: "SoftmaxWithLoss" bottom: "data" bottom: "label" top: "l" }')
    g = run(text, scenario="test", mode="gpu", engine="cudnn", phase="TEST")
    assert kind_of(g, "data", Kind.DIFFS) == 4 * 10 * F
    c = run(text, scenario="test", phase="TEST")
    assert kind_of(c, "data", Kind.DIFFS) == 0


def test_accuracy_gpu_uses_both_bottom_diffs_as_scratch():
    text = ('layer { name: "data" type: "Input" top: "data" top: "label" input_param { '
            'shape { dim: 4 dim: 10 } shape { dim: 4 } } }\n'
            'layer { name: "a" type: "Accuracy" bottom: "data" bottom: "label" top: "a" }')
    g = run(text, scenario="test", mode="gpu", engine="cudnn", phase="TEST")
    assert kind_of(g, "data", Kind.DIFFS) == (4 * 10 + 4) * F  # both blobs come from 'data'
    assert run(text, scenario="test", phase="TEST").by_kind.get(Kind.DIFFS, 0) == 0


# --- params, param diffs, solver history ----------------------------------------------------

def test_params_and_diffs_shared_once_lr0_included():
    text = (data4() + 'layer { name: "c1" type: "Convolution" bottom: "data" top: "c1" '
            'param { lr_mult: 1 } param { lr_mult: 0 } '
            'convolution_param { num_output: 3 kernel_size: 3 pad: 1 } }\n'
            'layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2" param { name: "w" } '
            'convolution_param { num_output: 3 kernel_size: 3 pad: 1 bias_term: false } }\n'
            'layer { name: "c3" type: "Convolution" bottom: "c2" top: "c3" param { name: "w" } '
            'convolution_param { num_output: 3 kernel_size: 3 pad: 1 bias_term: false } }\n'
            'layer { name: "l" type: "EuclideanLoss" bottom: "c3" bottom: "data" top: "l" }')
    w1, b1, w = 3 * 3 * 9 * F, 3 * F, 3 * 3 * 9 * F
    r = run(text, scenario="train", mode="gpu", engine="cudnn")
    assert kind_of(r, "c1", Kind.PARAMS) == w1 + b1  # lr_mult 0 bias included
    assert kind_of(r, "c1", Kind.PARAM_DIFFS) == w1 + b1  # ClearParamDiffs touches it too
    assert kind_of(r, "c2", Kind.PARAMS) == w
    assert kind_of(r, "c3", Kind.PARAMS) == 0  # shares c2's "w": counted once, at the owner
    assert r.by_kind[Kind.PARAMS] == w1 + b1 + w
    assert r.by_kind[Kind.HISTORY] == w1 + b1 + w  # SGD: history only, lr 0 included


@pytest.mark.parametrize("mode,solver,reg,sets", [
    ("gpu", "SGD", "L2", 1), ("gpu", "Nesterov", "L2", 1), ("gpu", "AdaGrad", "L2", 1),
    ("gpu", "RMSProp", "L2", 1), ("gpu", "Adam", "L2", 2), ("gpu", "AdaDelta", "L2", 2),
    ("gpu", "SGD", "L1", 2), ("gpu", "Adam", "L1", 3),
    ("cpu", "SGD", "L2", 1), ("cpu", "Nesterov", "L2", 2), ("cpu", "AdaGrad", "L2", 2),
    ("cpu", "RMSProp", "L2", 2), ("cpu", "Adam", "L2", 3), ("cpu", "AdaDelta", "L2", 4),
    ("cpu", "SGD", "L1", 2), ("cpu", "Adam", "L1", 3),  # Adam's CPU path already uses temp_
])
def test_solver_history_by_type_mode_and_regularization(mode, solver, reg, sets):
    text = (data4() + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
            'inner_product_param { num_output: 5 } }\n'
            'layer { name: "l" type: "EuclideanLoss" bottom: "ip" bottom: "ip" top: "l" }')
    p = (5 * C * H * W + 5) * F
    r = run(text, scenario="train", mode=mode, engine="cudnn", solver_type=solver,
            regularization=reg, weight_decay=0.0005)
    assert kind_of(r, "ip", Kind.HISTORY) == sets * p


def test_l1_without_weight_decay_touches_no_temp():
    assert history_sets(MemoryEnv(solver_type="SGD")) == ("history",)
    text = (data4() + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
            'inner_product_param { num_output: 5 } }\n'
            'layer { name: "l" type: "EuclideanLoss" bottom: "ip" bottom: "ip" top: "l" }')
    r = run(text, scenario="train", mode="gpu", regularization="L1", weight_decay=0.0)
    assert kind_of(r, "ip", Kind.HISTORY) == (5 * C * H * W + 5) * F


# --- im2col ---------------------------------------------------------------------------------

def conv(name="c", bottom="data", extra="", cp="num_output: 4 kernel_size: 3") -> str:
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f'{extra} convolution_param {{ {cp} }} }}\n')


def test_caffe_conv_col_buffer_is_one_image():
    r = run(data4() + conv(cp="num_output: 4 kernel_size: 3 pad: 1"), scenario="test")
    kernel_dim, out_h, out_w = C * 3 * 3, H, W
    assert kind_of(r, "c", Kind.IM2COL) == kernel_dim * 1 * out_h * out_w * F


def test_grouped_strided_conv_col_buffer():
    text = data4(c=4, h=9, w=9) + conv(cp="num_output: 6 kernel_size: 3 stride: 2 group: 2")
    r = run(text, scenario="test")
    kernel_dim, group = 4 // 2 * 3 * 3, 2
    out = (9 - 3) // 2 + 1
    assert kind_of(r, "c", Kind.IM2COL) == kernel_dim * group * out * out * F


def test_deconv_col_buffer_spans_the_input():
    text = data4() + ('layer { name: "d" type: "Deconvolution" bottom: "data" top: "d" '
                      'convolution_param { num_output: 5 kernel_size: 4 stride: 2 } }')
    r = run(text, scenario="test")
    kernel_dim = 5 * 4 * 4  # num_output / group * kernel
    assert kind_of(r, "d", Kind.IM2COL) == kernel_dim * H * W * F


def test_1x1_conv_col_buffer_only_when_propagating_down():
    one = "num_output: 4 kernel_size: 1"
    assert kind_of(run(data4() + conv(cp=one), scenario="test"), "c", Kind.IM2COL) == 0
    # time: Backward runs with propagate_down false (Input needs no backward): still none
    assert kind_of(run(data4() + conv(cp=one)), "c", Kind.IM2COL) == 0
    # a 1x1 conv after a conv propagates down in training: backward_gemm takes the buffer
    text = (data4() + conv("a", cp="num_output: 3 kernel_size: 3 pad: 1") + conv("c", "a", cp=one)
            + 'layer { name: "l" type: "EuclideanLoss" bottom: "c" bottom: "c" top: "l" }')
    r = run(text, scenario="train")
    assert kind_of(r, "c", Kind.IM2COL) == 3 * 1 * 1 * H * W * F


def test_col_buffers_are_not_shared_between_layers():
    text = data4() + conv("a", cp="num_output: 3 kernel_size: 3 pad: 1") + \
        conv("b", "a", cp="num_output: 3 kernel_size: 3 pad: 1")
    r = run(text, scenario="test")
    assert r.by_kind[Kind.IM2COL] == 2 * (C * 9 * H * W * F)


def test_cudnn_conv_has_workspace_bound_and_no_col_buffer():
    text = data4(c=4) + conv(cp="num_output: 4 kernel_size: 3 group: 2")
    r = run(text, scenario="test", mode="gpu", engine="cudnn")
    assert kind_of(r, "c", Kind.IM2COL) == 0
    assert kind_of(r, "c", Kind.WORKSPACE) == 3 * 2 * 8 * MiB
    assert r.layer("c").handles == 3 * 2
    assert r.layer("c").engine == CUDNN
    # the bias multiplier and the Blob<int> geometry (kernel, stride, pad, dilation [2],
    # conv_input_shape [3]), host only
    assert host_kind(r, "c", Kind.INTERNAL) == 6 * 6 * F + (4 * 2 + 3) * 4
    assert kind_of(r, "c", Kind.INTERNAL) == 0


def test_dilated_conv_falls_back_to_caffe_under_cudnn():
    text = data4() + conv(cp="num_output: 4 kernel_size: 3 dilation: 2")
    r = run(text, scenario="test", mode="gpu", engine="cudnn")
    assert r.layer("c").engine == CAFFE
    out = H - (2 * (3 - 1) + 1) + 1
    assert kind_of(r, "c", Kind.IM2COL) == C * 9 * out * out * F
    assert kind_of(r, "c", Kind.WORKSPACE) == 0


def test_layer_engine_field_wins():
    text = data4() + conv(cp="num_output: 4 kernel_size: 3 engine: CAFFE")
    r = run(text, scenario="test", mode="gpu", engine="cudnn")
    assert r.layer("c").engine == CAFFE and kind_of(r, "c", Kind.IM2COL) > 0
    text = data4() + conv(cp="num_output: 4 kernel_size: 3 engine: CUDNN")
    r = run(text, scenario="test", mode="gpu", engine="caffe")
    assert r.layer("c").engine == CUDNN and kind_of(r, "c", Kind.IM2COL) == 0
    r = run(text, scenario="test", mode="cpu")  # no cuDNN in cpu mode
    assert r.layer("c").engine == CAFFE


def test_engine_factory_rules():
    env = MemoryEnv(mode="gpu", engine="cudnn")
    lp = caffe_pb2.LayerParameter(name="p", type="Pooling", top=["t"])
    lp.pooling_param.pool = 0  # MAX
    assert layer_engine("Pooling", lp, env) == CAFFE
    lp.pooling_param.pool = 1  # AVE
    assert layer_engine("Pooling", lp, env) == CUDNN
    lp.top.append("mask")  # two tops: Caffe's layer
    assert layer_engine("Pooling", lp, env) == CAFFE
    lrn = caffe_pb2.LayerParameter(name="n", type="LRN")
    assert layer_engine("LRN", lrn, env) == CUDNN
    lrn.lrn_param.local_size = 17
    assert layer_engine("LRN", lrn, env) == CAFFE  # > CUDNN_LRN_MAX_N
    lrn.lrn_param.norm_region = 1
    assert layer_engine("LRN", lrn, env) == CUDNN  # CuDNNLCN
    for t in ("ReLU", "Sigmoid", "TanH", "Softmax"):
        assert layer_engine(t, caffe_pb2.LayerParameter(type=t), env) == CUDNN
        assert layer_engine(t, caffe_pb2.LayerParameter(type=t), env.with_(engine="caffe")) == CAFFE
        assert layer_engine(t, caffe_pb2.LayerParameter(type=t), env.with_(mode="cpu")) == CAFFE


# --- layer-internal buffers -----------------------------------------------------------------

def test_max_pooling_keeps_max_idx_even_under_cudnn():
    text = data4() + ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                      'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }')
    top = N * C * (H // 2) * (W // 2)
    for env in ({}, {"mode": "gpu", "engine": "cudnn"}):
        r = run(text, scenario="test", **env)
        assert kind_of(r, "p", Kind.INTERNAL) == top * 4  # int per output


def test_ave_pooling_and_mask_top_keep_no_index():
    ave = data4() + ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                     'pooling_param { pool: AVE kernel_size: 2 stride: 2 } }')
    assert kind_of(run(ave, scenario="test"), "p", Kind.INTERNAL) == 0
    mask = data4() + ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" top: "m" '
                      'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
                      'layer { name: "s" type: "Silence" bottom: "m" }')
    r = run(mask, scenario="test")
    assert kind_of(r, "p", Kind.INTERNAL) == 0
    assert kind_of(r, "p", Kind.ACTIVATIONS) == 2 * N * C * (H // 2) * (W // 2) * F


def test_dropout_rand_vec_by_mode_and_phase():
    text = data4() + 'layer { name: "d" type: "Dropout" bottom: "data" top: "data" }'
    assert kind_of(run(text, scenario="test"), "d", Kind.INTERNAL) == X  # CPU: every phase
    assert kind_of(run(text, scenario="test", phase="TEST"), "d", Kind.INTERNAL) == X
    assert kind_of(run(text, scenario="test", mode="gpu"), "d", Kind.INTERNAL) == X  # TRAIN
    assert kind_of(run(text, scenario="test", mode="gpu", phase="TEST"), "d", Kind.INTERNAL) == 0


def test_batchnorm_buffers():
    text = data4() + 'layer { name: "bn" type: "BatchNorm" bottom: "data" top: "o" }'
    r = run(text, scenario="test")
    small = (N + H * W + C + C + N * C) * F  # multipliers, mean, variance, num_by_chans
    assert kind_of(r, "bn", Kind.INTERNAL) == 2 * X + small  # temp_ and x_norm_
    assert kind_of(r, "bn", Kind.PARAMS) == (C + C + 1) * F
    inplace = data4() + 'layer { name: "bn" type: "BatchNorm" bottom: "data" top: "data" }'
    r = run(inplace)  # caffe time: Backward copies the top diff into x_norm_'s diff
    assert kind_of(r, "bn", Kind.INTERNAL) == 3 * X + small


def test_lrn_buffers_by_engine_and_mode():
    text = data4(c=8) + 'layer { name: "n" type: "LRN" bottom: "data" top: "o" lrn_param { local_size: 5 } }'
    x = N * 8 * H * W * F
    padded_square = (8 + 5 - 1) * H * W * F  # CPU Forward's temporary, live at this peak
    assert kind_of(run(text, scenario="test"), "n", Kind.INTERNAL) == x + padded_square
    assert kind_of(run(text, scenario="test", mode="gpu", engine="caffe"), "n",
                   Kind.INTERNAL) == x  # scale_ only
    assert kind_of(run(text, scenario="test", mode="gpu", engine="cudnn"), "n", Kind.INTERNAL) == 0
    within = data4(c=8) + ('layer { name: "n" type: "LRN" bottom: "data" top: "o" '
                           'lrn_param { local_size: 5 norm_region: WITHIN_CHANNEL } }')
    assert kind_of(run(within, scenario="test"), "n", Kind.INTERNAL) == 3 * x
    assert kind_of(run(within, scenario="test", mode="gpu", engine="cudnn"), "n",
                   Kind.INTERNAL) == 2 * x  # CuDNNLCN temporaries


def test_lrn_cpu_temporaries_raise_the_peak_only():
    text = data4(c=8) + 'layer { name: "n" type: "LRN" bottom: "data" top: "o" lrn_param { local_size: 5 } }'
    x = N * 8 * H * W * F
    r = run(text)  # time: forward, then every Backward (unconditional top/bottom diffs)
    held = 3 * x + 2 * x  # data, top, scale_; top and bottom diffs
    temporaries = (8 + 5 - 1) * H * W * F + 2 * H * W * F  # padded_ratio, accum_ratio data+diff
    assert r.total_bytes == held + temporaries


def test_softmax_loss_prob_and_its_diff():
    text = ('layer { name: "data" type: "Input" top: "data" top: "label" input_param { '
            'shape { dim: 4 dim: 10 } shape { dim: 4 } } }\n'
            'layer { name: "l" type: "SoftmaxWithLoss" bottom: "data" bottom: "label" top: "l" }')
    r = run(text, scenario="test")
    p = 4 * 10 * F
    # prob_, and its diff (the inner softmax copies the loss_weight), sum_multiplier_ [C],
    # scale_ [outer x inner]
    assert kind_of(r, "l", Kind.INTERNAL) == 2 * p + 10 * F + 4 * F


def test_scale_and_prelu_in_place_copies():
    sc = data4() + 'layer { name: "s" type: "Scale" bottom: "data" top: "data" }'
    r = run(sc, scenario="test")
    assert kind_of(r, "s", Kind.INTERNAL) == X + max(N, H * W) * F  # temp_, sum_multiplier_
    pr = data4() + 'layer { name: "p" type: "PReLU" bottom: "data" top: "data" }'
    r = run(pr, scenario="test")
    assert kind_of(r, "p", Kind.INTERNAL) == X + C * H * W * F  # bottom_memory_, multiplier_


def test_eltwise_max_idx():
    text = data4() + data4("d2") + ('layer { name: "e" type: "Eltwise" bottom: "data" '
                                    'bottom: "d2" top: "e" eltwise_param { operation: MAX } }')
    assert kind_of(run(text, scenario="test"), "e", Kind.INTERNAL) == N * C * H * W * 4


def test_bias_multipliers_of_inner_product():
    text = data4() + ('layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
                      'inner_product_param { num_output: 7 } }')
    r = run(text, scenario="test")
    assert kind_of(r, "ip", Kind.INTERNAL) == N * F  # bias_multiplier_ [M]
    g = run(text, scenario="test", mode="gpu")
    assert kind_of(g, "ip", Kind.INTERNAL) == N * F and host_kind(g, "ip", Kind.INTERNAL) == N * F


# --- nets of a solver, GPUs, context ----------------------------------------------------------

SOLVER_NET = ('layer { name: "data" type: "Input" top: "data" top: "label" input_param { '
              'shape { dim: 8 dim: 16 } shape { dim: 8 } } }\n'
              'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
              'inner_product_param { num_output: 10 } }\n'
              'layer { name: "l" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "l" }')


def nets_train_test(test_batch: int = 8):
    train = build(SOLVER_NET, "TRAIN", "train net")
    test = build(SOLVER_NET.replace("dim: 8 dim: 16", f"dim: {test_batch} dim: 16")
                 .replace("shape { dim: 8 } }", f"shape {{ dim: {test_batch} }} }}"),
                 "TEST", "test net #0")
    return [train, test]


def test_test_net_shares_params_and_has_own_activations():
    nets = nets_train_test(32)
    env = MemoryEnv(scenario="train", mode="gpu", engine="cudnn", test_iter=(1,), test_interval=10)
    r = model_memory(nets, env)
    assert kind_of(r, "ip", Kind.PARAMS, "test net #0") == 0  # ShareData with the train net
    assert kind_of(r, "ip", Kind.PARAMS, "train net") == (10 * 16 + 10) * F
    assert kind_of(r, "ip", Kind.ACTIVATIONS, "test net #0") == 32 * 10 * F
    never = model_memory(nets, env.with_(test_interval=0))
    assert never.net("test net #0").runs is False
    assert kind_of(never, "ip", Kind.ACTIVATIONS, "test net #0") == 0


def _push_back_peak(n: int) -> int:
    """Brute force: two vectors (float, int) filled in turn by push_back, each growing to
    twice its capacity (from 1) and freeing the old storage after the copy; the largest
    number of live bytes."""
    cap = [0, 0]
    peak = 0
    for size in range(n):  # both vectors hold `size` elements; push one onto each
        for v in (0, 1):
            if size < cap[v]:
                continue
            grown = max(1, 2 * cap[v])  # old and new storage live together during the copy
            peak = max(peak, 4 * (cap[1 - v] + cap[v] + grown))
            cap[v] = grown
    return max(peak, 4 * sum(cap))


def test_test_score_vectors_grow_like_libstdcxx():
    from caffemem.memory.model import test_score_bytes

    assert [test_score_bytes(n) for n in range(4)] == [0, 8, 20, 40]
    for n in list(range(1, 70)) + [1000, 1024, 1025]:
        assert test_score_bytes(n) == _push_back_peak(n), n


def test_solver_test_copies_the_test_nets_outputs_cpu():
    """Solver::Test (solver.cpp:351-384) pushes every output element of the test net onto
    two vectors: a host temporary of every test pass, which a test net leaving a big top
    unconsumed (an output, net.cpp:242-246) makes large.  The later passes run with
    everything else allocated, so the peak grows by exactly the vectors' peak."""
    from caffemem.memory.model import test_score_bytes

    sink = 'layer { name: "sink" type: "ReLU" bottom: "data" top: "big" include { phase: TEST } }\n'
    silence = 'layer { name: "eat" type: "Silence" bottom: "big" include { phase: TEST } }\n'
    env = MemoryEnv(scenario="train", mode="cpu", engine="caffe", test_iter=(1,),
                    test_interval=1, bookkeeping_per_layer=0)

    def nets(extra: str):
        text = SOLVER_NET + "\n" + sink + extra
        return [build(text, "TRAIN", "train net"), build(text, "TEST", "test net #0")]

    out, eaten = model_memory(nets(""), env), model_memory(nets(silence), env)
    assert out.nets[1].layers[-1].name == "sink" and eaten.nets[1].layers[-1].name == "eat"
    big = 8 * 16  # the ReLU's top, an output of the test net unless Silence eats it
    assert out.total_bytes - eaten.total_bytes == test_score_bytes(big + 1) - test_score_bytes(1)
    assert out.peak_moment == "test net #0: test pass"
    assert kind_of(out, "sink", Kind.SOLVER_COPIES, "test net #0") == test_score_bytes(big + 1)
    from caffemem.memory import replay

    def scores(e):
        return [m.nbytes for m in replay(nets(""), e).memory.mems if m.name.startswith("Solver::Test")]

    assert scores(env) == [test_score_bytes(big + 1)]
    # in gpu mode they are plain malloc, host RAM that is not pinned: not in the pinned figure
    assert scores(env.with_(mode="gpu", engine="caffe")) == []


def _repeated_field_peak(counts: list[int], header: int = 8) -> int:
    """Brute force: protobuf RepeatedField<float>s filled one Add at a time, each growing to
    max(4, twice its capacity) and freeing the old storage after the copy."""
    live = peak = 0
    for n in counts:
        cap = 0
        for size in range(n):
            if size == cap:
                grown = max(4, 2 * cap)
                old = header + 4 * cap if cap else 0
                peak = max(peak, live + old + header + 4 * grown)
                cap = grown
        live += header + 4 * cap if cap else 0
    return max(peak, live)


def test_snapshot_proto_copies_grow_like_repeated_field():
    from caffemem.memory.model import proto_copy_bytes, repeated_floats

    assert proto_copy_bytes([]) == 0 and proto_copy_bytes([1]) == 8 + 16
    assert repeated_floats(160) == (8 + 256 * F, 8 + 256 * F + 8 + 128 * F)
    for counts in ([5], [4, 5], [100, 3, 17], [1000, 10], list(range(1, 40))):
        assert proto_copy_bytes(counts) == _repeated_field_peak(counts), counts


def test_snapshot_copies_weights_then_solver_state():
    """Solver::Snapshot (solver.cpp:420-434, sgd_solver.cpp:271-287): in cpu mode a
    NetParameter holding every layer's layer_param_ and blobs, then a SolverState holding
    every history_ blob (Adam: history and history2 of each param), each a temporary on top
    of the trained state, charged to the layers whose blobs they copy; in gpu mode reading
    the history on the host keeps its pinned copies."""
    from caffemem.buffers import NETPARAM_BYTES_PER_LAYER as LP
    from caffemem.memory import replay
    from caffemem.memory.model import proto_copy_bytes, repeated_floats

    nets = [build(SOLVER_NET, "TRAIN", "train net")]
    env = MemoryEnv(scenario="train", mode="cpu", engine="caffe", solver_type="Adam",
                    bookkeeping_per_layer=0)
    w, b = 10 * 16, 10
    snap = env.with_(snapshot="binaryproto")
    copies: dict = {}
    for m in replay(nets, snap).memory.mems:
        if m.kind == Kind.SOLVER_COPIES:
            copies[m.name] = m.nbytes
    # the NetParameter peaks when full: every layer's layer_param_, ip's weight and bias
    assert copies == {"data snapshot NetParameter copy": LP, "l snapshot NetParameter copy": LP,
                      "ip snapshot NetParameter copy": LP + repeated_floats(w)[0] + repeated_floats(b)[0],
                      "ip snapshot SolverState copy": proto_copy_bytes([w, b, w, b])}
    net_param = sum(v for k, v in copies.items() if "NetParameter" in k)
    assert net_param > proto_copy_bytes([w, b, w, b])  # three layer_param_ copies outweigh
    r = model_memory(nets, snap)
    assert r.total_bytes - model_memory(nets, env).total_bytes == net_param
    assert r.peak_moment == "train net: snapshot"
    assert kind_of(r, "ip", Kind.SOLVER_COPIES) == copies["ip snapshot NetParameter copy"]
    assert kind_of(r, "data", Kind.SOLVER_COPIES) == LP
    assert model_memory(nets, env.with_(snapshot="hdf5")).total_bytes == model_memory(nets, env).total_bytes

    gpu = env.with_(mode="gpu", engine="caffe")
    pinned = [m for m in replay(nets, gpu.with_(snapshot="binaryproto")).memory.mems
              if "solver history" in m.name and m.host_at is not None]
    assert sorted(m.nbytes for m in pinned) == sorted(F * n for n in (w, b, w, b))
    assert not [m for m in replay(nets, gpu).memory.mems if "solver history" in m.name and m.host_at]
    assert not [m for m in replay(nets, gpu.with_(snapshot="binaryproto")).memory.mems
                if m.kind == Kind.SOLVER_COPIES]  # plain malloc in gpu mode: not pinned


@pytest.mark.parametrize("text, expected", [
    ("max_iter: 10", ("binaryproto", False)),  # snapshot_after_train defaults to true
    ("max_iter: 10 snapshot_after_train: false", (None, False)),
    ("max_iter: 10 snapshot_after_train: false snapshot: 5", ("binaryproto", False)),
    ("max_iter: 10 snapshot_after_train: false snapshot: 50", (None, False)),
    ("max_iter: 10 snapshot_format: HDF5 snapshot_diff: true", ("hdf5", True)),
])
def test_solver_says_when_it_snapshots(text, expected):
    solver = parse_text(text, caffe_pb2.SolverParameter())
    env = MemoryEnv.for_solver(solver)
    assert (env.snapshot, env.snapshot_diff) == expected


def test_display_reads_the_train_nets_outputs_on_the_host():
    """With ``display``, Solver::Step prints every output of the train net from its
    ``cpu_data`` (solver.cpp:236-262): in gpu mode an output computed on the device gets its
    pinned host copy; in cpu mode it is on the host already."""
    from caffemem.memory import replay

    text = SOLVER_NET + '\nlayer { name: "sink" type: "ReLU" bottom: "data" top: "big" }\n'
    nets = [build(text, "TRAIN", "train net")]
    env = MemoryEnv(scenario="train", mode="gpu", engine="caffe", bookkeeping_per_layer=0)

    def big(e):
        return [m for m in replay(nets, e).memory.mems if m.name == "big data"][0]

    assert "big" in nets[0].outputs
    assert big(env).host_at is None and big(env).dev_at is not None
    shown = big(env.with_(display=20))
    assert shown.host_at is not None and shown.host_by == "train net: display"
    solver = parse_text("display: 20", caffe_pb2.SolverParameter())
    assert MemoryEnv.for_solver(solver).display == 20


def resnet_style(blocks=((8, 1, False), (16, 2, True), (32, 2, True))) -> str:
    """A small ResNet of issue 14's held-out kind: DummyData with a gaussian filler,
    Convolution + BatchNorm + Scale in place, Eltwise sums, stride-2 1x1 projections, global
    average pooling, a loss, and an Accuracy in the test net."""
    out = ['layer { name: "data" type: "DummyData" top: "data" top: "label" dummy_data_param { '
           'shape { dim: 4 dim: 3 dim: 16 dim: 16 } shape { dim: 4 } data_filler { type: "gaussian" '
           'std: 1 } data_filler { type: "constant" value: 1 } } }']

    def conv(name, bottom, c, k, stride, pad):
        out.append(f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
                   f'convolution_param {{ num_output: {c} kernel_size: {k} stride: {stride} pad: {pad} '
                   f'bias_term: false weight_filler {{ type: "msra" }} }} }}')
        out.append(f'layer {{ name: "{name}_bn" type: "BatchNorm" bottom: "{name}" top: "{name}" }}')
        out.append(f'layer {{ name: "{name}_sc" type: "Scale" bottom: "{name}" top: "{name}" '
                   f'scale_param {{ bias_term: true }} }}')

    conv("conv0", "data", blocks[0][0], 3, 1, 1)
    top = "conv0"
    for i, (c, stride, project) in enumerate(blocks):
        conv(f"r{i}a", top, c, 3, stride, 1)
        out.append(f'layer {{ name: "r{i}a_relu" type: "ReLU" bottom: "r{i}a" top: "r{i}a" }}')
        conv(f"r{i}b", f"r{i}a", c, 3, 1, 1)
        if project:
            conv(f"r{i}p", top, c, 1, stride, 0)
        out.append(f'layer {{ name: "r{i}" type: "Eltwise" bottom: "r{i}b" bottom: '
                   f'"{f"r{i}p" if project else top}" top: "r{i}" eltwise_param {{ operation: SUM }} }}')
        out.append(f'layer {{ name: "r{i}_relu" type: "ReLU" bottom: "r{i}" top: "r{i}" }}')
        top = f"r{i}"
    out += [f'layer {{ name: "pool" type: "Pooling" bottom: "{top}" top: "pool" pooling_param {{ '
            f'pool: AVE global_pooling: true }} }}',
            'layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" '
            'inner_product_param { num_output: 10 weight_filler { type: "msra" } } }',
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }',
            'layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" '
            'include { phase: TEST } }']
    return "\n".join(out)


def test_resnet_style_cpu_holds_what_the_gpu_model_holds_on_the_device():
    """Issue 14's held-out combination (a ResNet of DummyData, in-place BatchNorm and Scale,
    Eltwise sums, stride-2 1x1 projections, a test net, Adam) compared buffer by buffer: every
    memory the gpu model puts on the device is on the host in the cpu model, except the GPU
    Accuracy's scratch diffs (accuracy_layer.cu); the cpu model has more only where Caffe's
    CPU code does: Adam's ``temp_`` per param (adam_solver.cpp:53-69; the GPU update is one
    kernel), Solver::Test's score vectors (plain malloc), the layers' bookkeeping."""
    from caffemem.memory import replay

    text = resnet_style()
    nets = [build(text, "TRAIN", "train net"), build(text, "TEST", "test net #0")]
    env = MemoryEnv(scenario="train", mode="cpu", engine="caffe", solver_type="Adam",
                    test_iter=(1,), test_interval=1)
    cpu, gpu = replay(nets, env).memory.mems, replay(nets, env.with_(mode="gpu")).memory.mems

    def key(m):
        return m.net, m.layer, m.name

    on_host = {key(m) for m in cpu if m.intervals("host")}
    in_gpu_run = {key(m) for m in gpu if m.intervals("gpu") or m.intervals("host")}
    device_only = sorted(k[2] for m in gpu if m.intervals("gpu") and (k := key(m)) not in on_host)
    assert device_only == ["fc_fc_0_split_0 diff", "fc_fc_0_split_1 diff",
                           "label_data_1_split_1 diff"]  # the test net's Accuracy bottoms
    cpu_only = [k[2] for m in cpu if m.intervals("host") and (k := key(m)) not in in_gpu_run
                and m.kind != Kind.BOOKKEEPING]
    learnable = [(l.name, k) for l in nets[0].layers for k, p in enumerate(l.params) if p.owner is None]
    assert sorted(cpu_only) == sorted([f"{l} param {k} solver temp" for l, k in learnable]
                                      + ["Solver::Test score vectors (2 output elements)"])


def test_multi_gpu_root_runs_the_test_net():
    nets = nets_train_test(64)
    env = MemoryEnv(scenario="train", mode="gpu", engine="cudnn", test_iter=(1,),
                    test_interval=10, gpus=3)
    r = model_memory(nets, env)
    assert [g.role for g in r.gpus] == ["root", "worker", "worker"]
    root, worker = r.gpus[0], r.gpus[1]
    # only the root runs the test pass: its data (64x16) and label (64) read, the ip top,
    # ip's bias multiplier [64], SoftmaxWithLoss's prob_ and prob_ diff, the ip diff used as
    # scratch by the GPU loss, and the loss top's data and diff
    test_pass = (64 * 16 + 64 + 64 * 10 + 64 + 3 * 64 * 10 + 2) * F
    assert root.allocated - worker.allocated == test_pass
    assert r.gpus[2].allocated == worker.allocated
    assert worker.by_kind[Kind.PARAMS] == (10 * 16 + 10) * F  # each GPU: params and diffs
    assert worker.by_kind[Kind.PARAM_DIFFS] == (10 * 16 + 10) * F
    assert r.total_bytes == root.total


def test_many_gpus_one_simulated_worker_stands_for_all():
    """robustness 12-hang-many-gpus: every data-parallel worker holds the same model, so one
    is simulated and its figures stand for each; the host memory grows with the count; a
    count beyond one machine's GPUs is refused."""
    from caffemem.buffers import MAX_GPUS

    nets = nets_train_test(8)
    env = MemoryEnv(scenario="train", mode="gpu", engine="cudnn", test_iter=(1,),
                    test_interval=10, gpus=2)
    two, many = model_memory(nets, env), model_memory(nets, env.with_(gpus=MAX_GPUS))
    assert len(many.gpus) == MAX_GPUS
    assert all(g.role == "worker" and g.allocated == two.gpus[1].allocated
               and g.by_kind == two.gpus[1].by_kind for g in many.gpus[1:])
    assert many.total_bytes == two.total_bytes  # the busiest GPU does not change
    worker_host = many.host_bytes - two.host_bytes
    assert worker_host > 0 and worker_host % (MAX_GPUS - 2) == 0
    with pytest.raises(ValueError, match=f"--gpus: at most {MAX_GPUS}"):
        env.with_(gpus=1_000_000)


def test_many_gpus_on_the_command_line(tmp_path):
    """``--gpus 1000000`` answers at once with exit 1 (it used to run for minutes); 64 GPUs
    print the identical workers once, "x 63"."""
    import subprocess
    import sys

    net = tmp_path / "net.prototxt"
    net.write_text(data4() + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
                   'inner_product_param { num_output: 10 } }\n')

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "caffemem", "analyze", str(net), "--scenario", "train", *args],
                              capture_output=True, text=True, timeout=60)

    p = run("--gpus", "1000000")
    assert p.returncode == 1 and "--gpus: at most 64" in p.stderr and "Traceback" not in p.stderr
    p = run("--gpus", "64")
    assert p.returncode == 0
    assert "GPU1-GPU63 (worker)" in p.stdout and "each (x 63)" in p.stdout


def test_context_reported_apart_and_only_in_gpu_mode():
    text = data4() + 'layer { name: "r" type: "ReLU" bottom: "data" top: "o" }'
    g = run(text, scenario="test", mode="gpu", context_bytes=100 * MiB)
    assert g.allocated_bytes == 2 * X
    assert g.total_bytes == 2 * X + 100 * MiB
    assert g.by_kind[Kind.CONTEXT] == 100 * MiB
    c = run(text, scenario="test")
    assert c.total_bytes == 2 * X and Kind.CONTEXT not in c.by_kind


# --- exactness, JSON, bridge ------------------------------------------------------------------

def test_huge_blob_stays_an_exact_int():
    text = ('layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1000000 '
            'dim: 1000000 } } }\nlayer { name: "r" type: "ReLU" bottom: "d" top: "o" }')
    r = run(text, scenario="test")
    assert r.total_bytes == 2 * 10**12 * F
    assert isinstance(r.total_bytes, int)
    assert any("INT_MAX" in w for w in r.warnings)


def test_to_dict_has_total_and_per_layer_bytes():
    r = run(data4() + 'layer { name: "r" type: "ReLU" bottom: "data" top: "o" }',
            scenario="test", mode="gpu")
    d = r.to_dict()
    assert d["total_bytes"] == r.total_bytes
    layer = d["nets"][0]["layers"][1]
    assert layer["name"] == "r" and layer["bytes"] == {"activations": X}
    assert d["per_gpu"][0]["total_bytes"] == r.total_bytes
    import json
    json.dumps(d)


def test_bridge_fits_and_naive_estimates():
    text = data4() + 'layer { name: "r" type: "ReLU" bottom: "data" top: "data" }'
    r = run(text, scenario="test")
    text_out = bridge(r)
    assert "Memory required for data" in text_out and "in-place" in text_out
    ok = fits(r, 2 * X)
    assert ok.fits and ok.margin == X
    no = fits(r, X // 2)
    assert not no.fits and no.margin == X // 2 - X
    est = {e.name: e.bytes for e in naive_estimates([build(text)])}
    assert est["caffe log"] == 2 * X
    assert est["pytorch-summary"] == X + 2 * X  # input + 2 x the ReLU's output, no params
    assert est["convnet-burden"] == X  # one distinct blob


def test_buffer_validates_its_fields():
    with pytest.raises(ValueError):
        Buffer("x", Kind.INTERNAL, 4, when="later")
    with pytest.raises(ValueError):
        Buffer("x", "nonsense", 4)
    with pytest.raises(ValueError):
        Buffer("x", Kind.INTERNAL, 1.5)  # type: ignore[arg-type]


def test_model_is_pure_and_repeatable():
    nets = nets_train_test(16)
    before = [(b.name, b.shape, b.need_backward) for n in nets for b in n.blobs]
    env = MemoryEnv(scenario="train", mode="gpu", test_iter=(1,), test_interval=5)
    a, b = model_memory(nets, env).to_dict(), model_memory(nets, env).to_dict()
    assert a == b
    assert before == [(b.name, b.shape, b.need_backward) for n in nets for b in n.blobs]


def test_replay_finds_where_a_limit_is_crossed():
    from caffemem.memory import replay

    text = (data4() + 'layer { name: "r" type: "ReLU" bottom: "data" top: "a" }\n'
            'layer { name: "t" type: "TanH" bottom: "a" top: "b" }')
    rp = replay([build(text)], MemoryEnv(scenario="test", mode="cpu", bookkeeping_per_layer=0))
    hit = rp.first_allocation_over(2 * X, min_bytes=1)
    assert hit is not None and hit.what == "b data" and hit.call == "net: t Forward"
    assert hit.live_before == 2 * X and hit.nbytes == X
    assert rp.first_allocation_over(3 * X, min_bytes=1) is None
