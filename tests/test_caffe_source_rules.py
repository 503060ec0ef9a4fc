"""Rules read from Caffe's source (BVLC 9b89154), one tiny net each.

The oracles (test_oracle_random, test_oracle_gpu) only show what their nets happen to contain;
these nets isolate each rule of issue 14, with the expected figure derived from the cited
source lines: the rules no oracle case reaches, and those an oracle case shows (named in the
test), so that each holds on a fresh clone without ../shared too.
"""

from __future__ import annotations

import re

import pytest

from caffemem.analysis import build_all
from caffemem.errors import UserError
from caffemem.memory import MemoryEnv, model_memory, replay

from caffe_runs import reason_of


def _nets(tmp_path, text: str):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    return build_all(str(path))


def _top(nets, layer: str) -> tuple:
    net = nets[0]
    lay = next(l for l in net.layers if l.name == layer)
    return tuple(net.blobs[lay.tops[0]].shape)


def test_pooling_pad_on_one_axis_trims_both_axes(tmp_path):
    # W: ceil((5 - 1) / 3) + 1 = 3 windows; (3 - 1) * 3 = 6 >= 5 + pad_w 0, and pad_h is set,
    # so Caffe drops the last one: 2.  H: ceil((6 + 2 - 2) / 2) + 1 = 4; 6 < 6 + 1: kept.
    nets = _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 6 dim: 5 } } }
layer { name: "p" type: "Pooling" bottom: "x" top: "y"
  pooling_param { pool: MAX kernel_h: 2 kernel_w: 1 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 0 } }
""")
    assert _top(nets, "p") == (1, 1, 4, 2)


def test_softmax_axis_out_of_range_is_refused(tmp_path):
    with pytest.raises(UserError) as e:
        _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 4 } } }
layer { name: "sm" type: "Softmax" bottom: "x" top: "y" softmax_param { axis: 3 } }
""")
    assert "'sm'" in str(e.value)
    assert reason_of(str(e.value), "caffemem") == ("axis out of range", "3")


def test_softmax_with_loss_axis_out_of_range_is_refused(tmp_path):
    """Already right: the inner Softmax's Reshape refuses (softmax_loss_layer.cpp:42)."""
    with pytest.raises(UserError) as e:
        _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" top: "l" input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
layer { name: "sl" type: "SoftmaxWithLoss" bottom: "x" bottom: "l" top: "loss" softmax_param { axis: -3 } }
""")
    assert "'sl'" in str(e.value)
    assert reason_of(str(e.value), "caffemem") == ("axis out of range", "-3")


def test_mvn_top_is_four_d_through_the_legacy_accessors(tmp_path):
    """mvn_layer.cpp:11-12 reshapes the top to (num, channels, height, width), a missing
    axis reading as 1 (blob.hpp:138-151): oracle-random 0027's mvn_12 on [2, 6, 3]."""
    nets = _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" top: "s" input_param { shape { dim: 2 dim: 6 dim: 3 } shape { dim: 5 } } }
layer { name: "m" type: "MVN" bottom: "x" top: "y" }
layer { name: "m1" type: "MVN" bottom: "s" top: "z" }
""")
    assert _top(nets, "m") == (2, 6, 3, 1)
    assert _top(nets, "m1") == (5, 1, 1, 1)


def test_mvn_refuses_more_than_four_axes(tmp_path):
    """...and the legacy accessors refuse a blob of more than 4 axes (blob.hpp:140-141)."""
    with pytest.raises(UserError) as e:
        _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 3 dim: 4 dim: 5 } } }
layer { name: "m" type: "MVN" bottom: "x" top: "y" }
""")
    assert "'m'" in str(e.value)
    assert reason_of(str(e.value), "caffemem")[0] == "legacy accessors on a blob with more than 4 axes"


FORCED_ARGMAX = """
force_backward: true
layer { name: "in" type: "Input" top: "x" top: "t" input_param { shape { dim: 2 dim: 5 } shape { dim: 2 dim: 3 } } }
layer { name: "fc" type: "InnerProduct" bottom: "x" top: "f" inner_product_param { num_output: 3 } }
layer { name: "loss" type: "EuclideanLoss" bottom: "f" bottom: "t" top: "loss" }
layer { name: "am" type: "ArgMax" bottom: "x" top: "a" }
"""


def test_train_refuses_a_forced_backward_through_argmax(tmp_path):
    nets = _nets(tmp_path, FORCED_ARGMAX)
    with pytest.raises(UserError) as e:
        model_memory(nets, MemoryEnv(scenario="train", mode="cpu", engine="caffe"))
    assert "'am'" in str(e.value)


def test_train_does_not_refuse_argmax_outside_backward(tmp_path):
    """Without force_backward, ArgMax (not under a loss) is never asked for a Backward by
    Net::Backward (net.cpp:206-214), so caffe train runs: so must caffemem's train scenario."""
    nets = _nets(tmp_path, FORCED_ARGMAX.replace("force_backward: true", ""))
    assert model_memory(nets, MemoryEnv(scenario="train", mode="cpu", engine="caffe")).total_bytes > 0


def test_crop_helpers_are_on_the_device(tmp_path):
    nets = _nets(tmp_path, """
layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
layer { name: "crop" type: "Crop" bottom: "a" bottom: "b" top: "c" crop_param { axis: 2 offset: 1 } }
""")
    report = model_memory(nets, MemoryEnv(scenario="test", mode="gpu", engine="caffe", context_bytes=0))
    # bottom a (288 B) and top c (128 B) on the device; bottom b only gives a shape; plus
    # 3 helpers x 4 axes x 4 B
    assert report.allocated_bytes == 288 + 128 + 3 * 4 * 4


def test_bias_multiplier_not_on_the_device_in_forward(tmp_path):
    nets = _nets(tmp_path, """
layer { name: "in" type: "Input" top: "a" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 5 } } }
layer { name: "bias" type: "Bias" bottom: "a" top: "c" }
""")
    report = model_memory(nets, MemoryEnv(scenario="test", mode="gpu", engine="caffe", context_bytes=0))
    # bottom (480 B), top (480 B), the bias param [3] (12 B)
    assert report.allocated_bytes == 480 + 480 + 12


def test_bias_multiplier_on_the_device_in_backward(tmp_path):
    """...and it is there once Backward computes the bias gradient (bias_layer.cu:50)."""
    nets = _nets(tmp_path, """
layer { name: "in" type: "Input" top: "a" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 5 } } }
layer { name: "bias" type: "Bias" bottom: "a" top: "c" }
""")
    report = model_memory(nets, MemoryEnv(scenario="time", mode="gpu", engine="caffe", context_bytes=0))
    # data a, c; diff c; param data and diff; the multiplier [4*5]
    assert report.allocated_bytes == 480 + 480 + 480 + 12 + 12 + 4 * 5 * 4


def test_pooling_window_past_the_input_is_warned_about(tmp_path):
    nets = _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 2 dim: 26 dim: 8 } } }
layer { name: "p" type: "Pooling" bottom: "x" top: "y" pooling_param { pool: MAX kernel_size: 1 stride: 3 } }
""")
    net = nets[0]
    layer = next(l for l in net.layers if l.name == "p")
    said = list(net.warnings) + list(layer.notes)
    assert any(re.search(r"window|out of bounds|heap", s, re.I) for s in said), said


# --- refusals the oracle-random cases show, each in one small net ---------------------------

def test_lrn_even_local_size_is_refused(tmp_path):
    """lrn_layer.cpp:12 (oracle-random 0087, lrn_9 with local_size 4)."""
    with pytest.raises(UserError) as e:
        _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 8 dim: 5 dim: 5 } } }
layer { name: "lrn" type: "LRN" bottom: "x" top: "y" lrn_param { local_size: 4 } }
""")
    assert "'lrn'" in str(e.value)
    assert reason_of(str(e.value), "caffemem") == ("LRN local_size must be odd", None)


def test_softmax_with_loss_two_loss_weights_refused_by_its_inner_softmax(tmp_path):
    """softmax_loss_layer.cpp:14-21 copies the LayerParameter into a one-top Softmax, whose
    SetLossWeights refuses two weights (layer.hpp:389-392; oracle-random 0032's soft_30),
    although the outer layer has two tops; with no loss_weight, LossLayer::LayerSetUp adds one
    (loss_layer.cpp:10-13) and the outer SetLossWeights refuses 1 for 2 tops: BVLC's
    SoftmaxWithLoss cannot have two tops.  One top with one weight is fine."""
    net = """
layer { name: "in" type: "Input" top: "x" top: "l" input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
layer { name: "sl" type: "SoftmaxWithLoss" bottom: "x" bottom: "l" top: "loss" top: "prob" %s }
"""
    with pytest.raises(UserError) as e:
        _nets(tmp_path, net % "loss_weight: 1 loss_weight: 0")
    assert "'sl'" in str(e.value)
    assert reason_of(str(e.value), "caffemem")[0] == "loss_weight count differs from the top count"
    with pytest.raises(UserError):
        _nets(tmp_path, net % "")
    assert _top(_nets(tmp_path, net.replace(' top: "prob"', '') % "loss_weight: 2"), "sl") == ()


THRESHOLD_NET = """
layer { name: "in" type: "Input" top: "x" top: "t" input_param { shape { dim: 2 dim: 5 } shape { dim: 2 dim: 3 } } }
layer { name: "fc" type: "InnerProduct" bottom: "x" top: "f" inner_product_param { num_output: 3 } }
layer { name: "loss" type: "EuclideanLoss" bottom: "f" bottom: "t" top: "loss" }
layer { name: "th" type: "Threshold" bottom: "f" top: "g" }
"""


def test_time_refuses_a_layer_with_no_backward_and_names_it(tmp_path):
    """caffe time calls every layer's Backward (tools/caffe.cpp:384-389); Threshold's is
    NOT_IMPLEMENTED (threshold_layer.hpp:53-56; oracle-random 0050); caffe train never calls
    it (not under a loss, net.cpp:206-214), so train and test model the net."""
    nets = _nets(tmp_path, THRESHOLD_NET)
    with pytest.raises(UserError) as e:
        model_memory(nets, MemoryEnv(scenario="time", mode="cpu", engine="caffe"))
    assert "'th' (Threshold)" in str(e.value)
    assert reason_of(str(e.value), "caffemem")[0] == "layer has no Backward"
    for scenario in ("train", "test"):
        assert model_memory(nets, MemoryEnv(scenario=scenario, mode="gpu", engine="caffe")).total_bytes > 0


def test_accuracy_backward_refused_only_where_caffe_propagates(tmp_path):
    """Accuracy's Backward_cpu is NOT_IMPLEMENTED for any bottom asked to propagate
    (accuracy_layer.hpp:76-81), Backward_gpu only for the label (accuracy_layer.cu:141-145):
    force_backward asks for both in train."""
    net = """
force_backward: true
layer { name: "in" type: "Input" top: "x" top: "l" input_param { shape { dim: 2 dim: 5 } shape { dim: 2 } } }
layer { name: "fc" type: "InnerProduct" bottom: "x" top: "f" inner_product_param { num_output: 3 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "f" bottom: "l" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "f" bottom: "l" top: "a" }
"""
    nets = _nets(tmp_path, net)
    for mode in ("cpu", "gpu"):
        with pytest.raises(UserError) as e:
            model_memory(nets, MemoryEnv(scenario="train", mode=mode, engine="caffe"))
        assert "'acc' (Accuracy)" in str(e.value)
    unforced = _nets(tmp_path, net.replace("force_backward: true", ""))
    assert model_memory(unforced, MemoryEnv(scenario="time", mode="cpu", engine="caffe")).total_bytes > 0


# --- GPU mode: memory Caffe reads on the host only (oracle-gpu's cudaMalloc traces) -------------

def _gpu_test(nets):
    return model_memory(nets, MemoryEnv(scenario="test", mode="gpu", engine="caffe", context_bytes=0))


def test_gpu_softmax_multiplier_and_batch1_bias_multiplier_stay_on_the_host(tmp_path):
    """Softmax's sum_multiplier_ is only read by the CPU code (softmax_layer.cpp:15-18,
    softmax_layer.cu:86-141); InnerProduct with M = 1 reads bias_multiplier_.cpu_data()[0]
    in Forward_gpu (inner_product_layer.cu:15-20): oracle-gpu's cudaMalloc traces (lenet,
    alexnet's 4,000 B per 1000-class Softmax, baseline_train's batch-1 test net)."""
    nets = _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 10 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "f" inner_product_param { num_output: 3 } }
layer { name: "sm" type: "Softmax" bottom: "f" top: "p" }
""")
    report = _gpu_test(nets)
    # x 40, weights 120, bias 12, ip top 12, softmax top 12, its scale_ [1] 4
    assert report.allocated_bytes == 40 + 120 + 12 + 12 + 12 + 4
    assert report.layer("sm").host.get("internal") == 3 * 4  # sum_multiplier_, host only
    assert report.layer("ip").host.get("internal") == 4  # bias_multiplier_ [M = 1]


def test_gpu_batchnorm_count_blob_is_read_on_the_host(tmp_path):
    """BatchNorm's blobs_[2] (moving-average count) is read with cpu_data() in Forward_gpu
    (batch_norm_layer.cu:24-25, 62-63); blobs 0 and 1 on the device (cifar10_full_sigmoid_bn)."""
    nets = _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } } }
layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y" }
""")
    bn = _gpu_test(nets).layer("bn")
    assert bn.device["params"] == 2 * 3 * 4
    assert bn.host["params"] == 2 * 3 * 4 + 4


# --- recurrent layers: the unrolled net replayed inside the outer calls ---------------------

RNN_NET = """
layer { name: "in" type: "Input" top: "x" top: "cont" top: "t" input_param { shape { dim: 3 dim: 2 dim: 4 } shape { dim: 3 dim: 2 } shape { dim: 3 dim: 2 dim: 5 } } }
layer { name: "rnn" type: "RNN" bottom: "x" bottom: "cont" top: "o" recurrent_param { num_output: 5 } }
layer { name: "loss" type: "EuclideanLoss" bottom: "o" bottom: "t" top: "loss" }
"""


def test_unrolled_net_step_weight_copies_are_setup_temporaries(tmp_path):
    """rnn_layer.cpp gives every time step its own W_hh and W_ho/b_o InnerProduct, named
    params shared with step 1's; each fills its own copy in LayerSetUp until the unrolled
    net's ShareWeights (net.cpp:255, 948-953), inside the outer LayerSetUp: T=3 steps, H=5:
    2 x (W_hh 100 B + W_ho 100 B + b_o 20 B) held during set-up, then freed."""
    nets = _nets(tmp_path, RNN_NET)
    env = MemoryEnv(scenario="train", mode="cpu", engine="caffe", bookkeeping_per_layer=0)
    rp = replay(nets, env)
    copies = [m for m in rp.memory.mems if "own copy until ShareWeights" in m.name]
    assert sum(m.nbytes for m in copies) == 2 * (100 + 100 + 20)
    assert all(m.transient and "rnn SetUp" in m.host_by for m in copies)
    assert not any(m in copies for m in rp.memory.live_at("host", rp.memory.t))  # freed
    # the unrolled net's memory comes by kind, charged to the outer layer, not one lump
    rnn = model_memory(nets, env).layer("rnn").host
    assert rnn.get("activations") and rnn.get("diffs") and rnn.get("params") == 4 * (20 + 5 + 25 + 25 + 5)


def test_nd_convolution_geometry_on_the_device(tmp_path):
    """Caffe's engine runs N-D im2col for a 3-D convolution: it reads kernel_shape_, pad_,
    stride_, dilation_ [3], conv_input_shape_ [4] and col_buffer_'s shape [4] with gpu_data()
    (base_conv_layer.hpp:128-155); a 2-D convolution reads them on the host."""
    nets = _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 dim: 4 } } }
layer { name: "c" type: "Convolution" bottom: "x" top: "y" convolution_param { num_output: 1 kernel_size: 3 engine: CAFFE } }
""")
    report = _gpu_test(nets)
    # x 256 B, weights 27 x 4, bias 4, top [1,1,2,2,2] 32, col_buffer [27 x 8] 864, the bias
    # multiplier [8] 32, and the geometry: 4 x 3 ints, 4 + 4 ints
    assert report.allocated_bytes == 256 + 108 + 4 + 32 + 864 + 32 + (4 * 3 + 4 + 4) * 4
    flat = _nets(tmp_path, """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "c" type: "Convolution" bottom: "x" top: "y" convolution_param { num_output: 1 kernel_size: 3 engine: CAFFE } }
""")
    # x 64, weights 36, bias 4, top 16, col_buffer [9 x 4] 144, bias multiplier [4] 16
    assert _gpu_test(flat).allocated_bytes == 64 + 36 + 4 + 16 + 144 + 16


def test_dummy_data_fills_only_constant_tops_at_setup(tmp_path):
    """DummyDataLayer::LayerSetUp runs Forward with refill_ inverted: the constant-filled
    top is filled then, the gaussian one at every Forward (dummy_data_layer.cpp:53-68, 89-110)."""
    nets = _nets(tmp_path, """
layer { name: "d" type: "DummyData" top: "x" top: "l" dummy_data_param { shape { dim: 2 dim: 8 } shape { dim: 2 } data_filler { type: "gaussian" } data_filler { type: "constant" } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "f" inner_product_param { num_output: 2 } }
""")
    rp = replay(nets, MemoryEnv(scenario="test", mode="cpu", engine="caffe", bookkeeping_per_layer=0))
    by = {m.name: m.host_by for m in rp.memory.mems}
    assert by["l data"] == "net: d SetUp" and by["x data"] == "net: d Forward"


def test_dummy_data_keeps_its_sparse_gaussian_mask(tmp_path):
    """DummyData keeps its fillers (fillers_, dummy_data_layer.cpp:63-74) and a gaussian
    filler with sparse >= 0 keeps its mask (rand_vec_, count ints written on the host,
    filler.hpp:76-90): from the first Forward's refill on, one mask per such top; a filler
    shared by the tops keeps the last top's, and holds the largest one's while filling it."""
    def heap(fillers: str, sparse: bool) -> tuple:
        g = 'data_filler { type: "gaussian"%s }' % (" sparse: 2" if sparse else "")
        nets = _nets(tmp_path, f"""
layer {{ name: "d" type: "DummyData" top: "x" top: "y" dummy_data_param {{ shape {{ dim: 4 dim: 100 }} shape {{ dim: 4 dim: 10 }} {fillers.replace("G", g)} }} }}
layer {{ name: "s" type: "Silence" bottom: "x" bottom: "y" }}
""")
        env = MemoryEnv(scenario="test", mode="cpu", engine="caffe", bookkeeping_per_layer=0)
        rp = replay(nets, env)
        kept = sum(m.nbytes for m in rp.memory.live_at("host", rp.memory.t))
        return model_memory(nets, env).total_bytes, kept

    tops = 4 * (400 + 40)
    assert heap("G G", False) == (tops, tops)
    assert heap("G G", True) == (tops + 4 * (400 + 40), tops + 4 * (400 + 40))
    assert heap("G", True) == (tops + 4 * 400, tops + 4 * 40)  # one shared filler
    assert heap('G data_filler { type: "constant" }', True) == (tops + 4 * 400, tops + 4 * 400)
