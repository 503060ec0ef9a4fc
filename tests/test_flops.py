"""FLOPs by category (``caffemem.flops`` and each rule's ``flops``), checked against hand
computations: the arithmetic of each type's Forward, counted here independently (often by
brute force over the windows) from the layer's geometry.  Whole nets: AlexNet's and
GoogLeNet's multiply-adds against the figures people publish."""

from __future__ import annotations

import itertools
import json

import pytest

from caffemem.cli import main
from caffemem.flops import CATEGORIES, NONE, Flops, total
from caffemem.net import BuildOptions, build_net
from caffemem.netfilter import NetState
from caffemem.pb import caffe_pb2
from caffemem.prototxt import parse_text
from conftest import shared_or_skip


def _inputs(shapes) -> str:
    return "".join(
        f'layer {{ name: "in{i}" type: "Input" top: "in{i}" input_param {{ shape '
        f'{{ {" ".join(f"dim: {d}" for d in s)} }} }} }}\n' for i, s in enumerate(shapes))


def flops(layer: str, *shapes, phase: str = "TRAIN") -> Flops:
    """The FLOPs of layer ``L`` (its bottoms in0, in1, ... of ``shapes``), as built."""
    text = _inputs(shapes) + layer
    net = build_net(parse_text(text, caffe_pb2.NetParameter()), NetState(phase), BuildOptions())
    return net.layer("L").flops


def conv(param: str, bottom="in0", kind="Convolution") -> str:
    return f'layer {{ name: "L" type: "{kind}" bottom: "{bottom}" top: "t" convolution_param {{ {param} }} }}'


# --------------------------------------------------------------------------- the type

def test_flops_arithmetic():
    a = Flops(macs=1, comparisons=2, adds=3, divides=4, exps=5)
    assert a + a == Flops(2, 4, 6, 8, 10)
    assert 3 * a == a * 3 == Flops(3, 6, 9, 12, 15)
    assert a.other == 2 + 3 + 4 + 5
    assert list(a.to_dict()) == list(CATEGORIES) and a.to_dict()["exps"] == 5
    assert not NONE and a
    assert total([a, None, a]) == 2 * a and total([]) == NONE


# --------------------------------------------------------------------------- convolution

def _conv_macs_brute(n, c, h, w, num_output, k, pad, stride, dil, group):
    """One multiply-add per (output, input channel of its group, kernel tap), the taps in the
    padding included (im2col feeds their zeros to the GEMM); dilation only moves the taps."""
    ext = dil * (k - 1) + 1
    oh, ow = (h + 2 * pad - ext) // stride + 1, (w + 2 * pad - ext) // stride + 1
    per_output = sum(1 for _ in itertools.product(range(c // group), range(k), range(k)))
    return n * num_output * oh * ow * per_output, n * num_output * oh * ow


def test_convolution_groups_and_dilation():
    f = flops(conv("num_output: 6 kernel_size: 3 pad: 1 dilation: 2 group: 2"), (2, 4, 9, 9))
    macs, outputs = _conv_macs_brute(2, 4, 9, 9, 6, 3, 1, 1, 2, 2)
    assert macs == 2 * 6 * 7 * 7 * (2 * 3 * 3)  # the brute force agrees with the formula
    assert f == Flops(macs=macs, adds=outputs)  # the bias: one add per output


def test_convolution_without_bias_and_strided():
    f = flops(conv("num_output: 8 kernel_size: 5 stride: 2 bias_term: false"), (1, 3, 32, 32))
    macs, _ = _conv_macs_brute(1, 3, 32, 32, 8, 5, 0, 2, 1, 1)
    assert f == Flops(macs=macs)


def test_deconvolution_gemm_col2im_and_bias():
    # top: 2 * (3 - 1) + 3 - 2 * 1 = 5
    f = flops(conv("num_output: 4 kernel_size: 3 stride: 2 pad: 1", kind="Deconvolution"), (1, 2, 3, 3))
    macs = 1 * 2 * 3 * 3 * 4 * 3 * 3  # every input element times num_output * K*K weights
    col2im = sum(1 for c, ky, kx, y, x in itertools.product(range(4), range(3), range(3), range(3), range(3))
                 if 0 <= y * 2 - 1 + ky < 5 and 0 <= x * 2 - 1 + kx < 5)
    assert col2im == 4 * 7 * 7
    assert f == Flops(macs=macs, adds=col2im + 4 * 5 * 5)


def test_deconvolution_1x1_skips_col2im():
    f = flops(conv("num_output: 4 kernel_size: 1 bias_term: false", kind="Deconvolution"), (2, 3, 5, 5))
    assert f == Flops(macs=2 * 3 * 25 * 4)


def test_inner_product():
    f = flops('layer { name: "L" type: "InnerProduct" bottom: "in0" top: "t" '
              'inner_product_param { num_output: 5 } }', (2, 3, 4, 4))
    assert f == Flops(macs=2 * 48 * 5, adds=2 * 5)


# --------------------------------------------------------------------------- pooling

def _windows(size, k, pad, stride, out):
    """Elements each output's window covers inside the input, one axis, by enumeration."""
    return sum(1 for o in range(out) for i in range(o * stride - pad, o * stride - pad + k) if 0 <= i < size)


def pool(param: str) -> str:
    return f'layer {{ name: "L" type: "Pooling" bottom: "in0" top: "t" pooling_param {{ {param} }} }}'


def test_max_pooling_compares_each_clipped_window():
    # 6x6, kernel 3, stride 2, pad 1: ceil((6 + 2 - 3) / 2) + 1 = 4 outputs per axis,
    # windows [-1,2) [1,4) [3,6) [5,8) clipped to 2 + 3 + 3 + 1 = 9 rows
    assert _windows(6, 3, 1, 2, 4) == 9
    f = flops(pool("pool: MAX kernel_size: 3 stride: 2 pad: 1"), (2, 3, 6, 6))
    assert f == Flops(comparisons=2 * 3 * 9 * 9)


def test_average_pooling_adds_and_divides_per_output():
    f = flops(pool("pool: AVE kernel_size: 3 stride: 2 pad: 1"), (2, 3, 6, 6))
    assert f == Flops(adds=2 * 3 * 9 * 9, divides=2 * 3 * 4 * 4)


def test_global_pooling():
    assert flops(pool("pool: MAX global_pooling: true"), (2, 8, 7, 5)) == Flops(comparisons=2 * 8 * 35)
    assert flops(pool("pool: AVE global_pooling: true"), (2, 8, 7, 5)) == Flops(adds=2 * 8 * 35, divides=16)


def test_spp_sums_its_levels():
    # levels: 1x1 bins (kernel 8) and 2x2 bins (kernel 4): every element once per level
    f = flops('layer { name: "L" type: "SPP" bottom: "in0" top: "t" spp_param { pyramid_height: 2 pool: MAX } }',
              (1, 2, 8, 8))
    assert f == Flops(comparisons=2 * 64 * 2)


# --------------------------------------------------------------------------- normalization

def lrn(param: str) -> str:
    return f'layer {{ name: "L" type: "LRN" bottom: "in0" top: "t" lrn_param {{ {param} }} }}'


def test_lrn_across_channels_slides_a_window_of_squares():
    n, c, h, w, size = 2, 5, 3, 4, 3
    count = n * c * h * w
    f = flops(lrn(f"local_size: {size}"), (n, c, h, w))
    # per location: `size` multiply-adds for channel 0, two (one in, one out) for each other
    # channel; per element a square and the final product; per element one pow
    window = n * h * w * (size + 2 * (c - 1))
    assert f == Flops(macs=2 * count + window, exps=count)


def test_lrn_within_channel_runs_power_pool_power_product():
    n, c, h, w, size = 1, 2, 5, 5, 3
    count = n * c * h * w
    pooled = n * c * _windows(h, size, 1, 1, h) * _windows(w, size, 1, 1, w)
    f = flops(lrn(f"local_size: {size} norm_region: WITHIN_CHANNEL"), (n, c, h, w))
    assert f == Flops(macs=2 * count, adds=count + pooled, divides=count, exps=2 * count)


def test_softmax_and_softmax_with_loss():
    per = Flops(comparisons=1, adds=2, exps=1, divides=1)  # max, -max, exp, sum, divide
    assert flops('layer { name: "L" type: "Softmax" bottom: "in0" top: "t" }', (4, 10)) == 40 * per
    f = flops('layer { name: "L" type: "SoftmaxWithLoss" bottom: "in0" bottom: "in1" top: "t" }', (4, 10), (4,))
    assert f == 40 * per + Flops(comparisons=4, exps=4, adds=4, divides=1)  # -log(max(p, min))


def test_batch_norm_global_stats_and_batch_stats():
    layer = 'layer { name: "L" type: "BatchNorm" bottom: "in0" top: "t" }'
    n, c, s = 2, 3, 16
    count = n * c * s
    # TEST: stored statistics scaled (2C multiplies, one divide), eps and sqrt per channel,
    # mean subtracted and divided per element
    assert flops(layer, (n, c, 4, 4), phase="TEST") == \
        Flops(macs=2 * c, adds=count + c, exps=c, divides=count + 1)
    # TRAIN: mean and variance each summed per element, scaled per (item, channel), summed
    # over the batch; squares; the moving averages
    train = flops(layer, (n, c, 4, 4), phase="TRAIN")
    assert train == Flops(macs=count + 2 * n * c + 4 * c + 1, adds=3 * count + 2 * n * c + c + 1,
                          divides=count + 1, exps=c)
    forced = 'layer { name: "L" type: "BatchNorm" bottom: "in0" top: "t" batch_norm_param { use_global_stats: true } }'
    assert flops(forced, (n, c, 4, 4), phase="TRAIN") == flops(layer, (n, c, 4, 4), phase="TEST")


def test_scale_bias_mvn():
    assert flops('layer { name: "L" type: "Scale" bottom: "in0" top: "t" scale_param { bias_term: true } }',
                 (2, 3, 4)) == Flops(macs=24, adds=24)
    assert flops('layer { name: "L" type: "Bias" bottom: "in0" top: "t" }', (2, 3, 4)) == Flops(adds=24)
    rows = 2 * 3  # MVN normalizes per (item, channel) by default
    assert flops('layer { name: "L" type: "MVN" bottom: "in0" top: "t" }', (2, 3, 4, 4)) == \
        Flops(macs=96 + 2 * rows, adds=3 * 96 + rows, exps=rows, divides=96)


# --------------------------------------------------------------------------- element-wise

def eltwise(param: str, k: int) -> str:
    bottoms = " ".join(f'bottom: "in{i}"' for i in range(k))
    return f'layer {{ name: "L" type: "Eltwise" {bottoms} top: "t" eltwise_param {{ {param} }} }}'


def test_eltwise_sum_prod_max():
    s = (2, 3, 5)
    assert flops(eltwise("operation: SUM", 3), s, s, s) == Flops(adds=2 * 30)
    assert flops(eltwise("operation: SUM coeff: 1 coeff: -1 coeff: 1", 3), s, s, s) == Flops(adds=60, macs=30)
    assert flops(eltwise("operation: PROD", 3), s, s, s) == Flops(macs=60)
    assert flops(eltwise("operation: MAX", 2), s, s) == Flops(comparisons=30)


def neuron(kind: str, param: str = "") -> str:
    return f'layer {{ name: "L" type: "{kind}" bottom: "in0" top: "t" {param} }}'


@pytest.mark.parametrize("kind, param, per", [
    ("ReLU", "", Flops(comparisons=1)),
    ("ReLU", "relu_param { negative_slope: 0.1 }", Flops(comparisons=1, macs=1)),
    ("PReLU", "", Flops(comparisons=1, macs=1)),
    ("Sigmoid", "", Flops(macs=2, exps=1)),  # 0.5 * tanh(0.5 * x) + 0.5
    ("TanH", "", Flops(exps=1)),
    ("AbsVal", "", Flops(comparisons=1)),
    ("ELU", "", Flops(comparisons=1, macs=1, adds=1, exps=1)),
    ("Clip", "clip_param { min: 0 max: 6 }", Flops(comparisons=2)),
    ("Threshold", "", Flops(comparisons=1)),
    ("Power", "power_param { power: 2 scale: 3 shift: 1 }", Flops(macs=1, adds=1, exps=1)),
    ("Power", "power_param { power: 1 scale: 1 shift: 0 }", NONE),
    ("Power", "power_param { power: 0 }", NONE),  # a constant
    ("Exp", "", Flops(exps=1)),
    ("Exp", "exp_param { base: 2 shift: 1 }", Flops(exps=1, macs=2)),
    ("Log", "log_param { scale: 2 shift: 1 }", Flops(exps=1, macs=1, adds=1)),
    ("Swish", "", Flops(macs=3, exps=1)),
])
def test_elementwise_layers(kind, param, per):
    assert flops(neuron(kind, param), (2, 3, 4)) == 24 * per


def test_dropout_only_computes_in_train():
    assert flops(neuron("Dropout"), (4, 10), phase="TRAIN") == 40 * Flops(comparisons=1, macs=2)
    assert flops(neuron("Dropout"), (4, 10), phase="TEST") == NONE


def test_moves_count_nothing_and_python_is_not_counted():
    assert flops('layer { name: "L" type: "Concat" bottom: "in0" bottom: "in1" top: "t" }', (1, 2), (1, 3)) == NONE
    assert flops('layer { name: "L" type: "Flatten" bottom: "in0" top: "t" }', (2, 3, 4)) == NONE
    from caffemem.layers import lookup

    assert lookup("Python").flops(None) is None  # user code: reported as not counted


# --------------------------------------------------------------------------- whole nets

def _conv(name, bottom, out, k, stride=1, pad=0, group=1):
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" convolution_param '
            f'{{ num_output: {out} kernel_size: {k} stride: {stride} pad: {pad} group: {group} }} }}\n'
            f'layer {{ name: "relu_{name}" type: "ReLU" bottom: "{name}" top: "{name}" }}\n')


def _pool(name, bottom):
    return (f'layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{name}" '
            f'pooling_param {{ pool: MAX kernel_size: 3 stride: 2 }} }}\n')


def _fc(name, bottom, out):
    return (f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}" '
            f'inner_product_param {{ num_output: {out} }} }}\n')


#: BVLC AlexNet (models/bvlc_alexnet/deploy.prototxt), 227x227, batch 1: grouped conv2/4/5
ALEXNET = ('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 227 dim: 227 } } }\n'
           + _conv("conv1", "data", 96, 11, stride=4)
           + 'layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1" lrn_param { local_size: 5 } }\n'
           + _pool("pool1", "norm1") + _conv("conv2", "pool1", 256, 5, pad=2, group=2)
           + 'layer { name: "norm2" type: "LRN" bottom: "conv2" top: "norm2" lrn_param { local_size: 5 } }\n'
           + _pool("pool2", "norm2") + _conv("conv3", "pool2", 384, 3, pad=1)
           + _conv("conv4", "conv3", 384, 3, pad=1, group=2) + _conv("conv5", "conv4", 256, 3, pad=1, group=2)
           + _pool("pool5", "conv5") + _fc("fc6", "pool5", 4096) + _fc("fc7", "fc6", 4096) + _fc("fc8", "fc7", 1000)
           + 'layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }\n')


def _gemm_macs(net) -> int:
    return sum(l.flops.macs for l in net.layers if l.type in ("Convolution", "InnerProduct"))


def test_alexnet_multiply_adds_match_the_published_figure():
    net = build_net(parse_text(ALEXNET, caffe_pb2.NetParameter()), NetState("TEST"), BuildOptions())
    macs = _gemm_macs(net)
    # Sze et al., "Efficient Processing of Deep Neural Networks" (Proc. IEEE 2017), Table 4:
    # AlexNet 724M MACs (666M conv + 58.6M fc); netscope's analyzer shows ~1.1G because it
    # leaves out conv2/4/5's group: 2
    assert abs(macs - 724e6) / 724e6 < 0.001
    fc = sum(l.flops.macs for l in net.layers if l.type == "InnerProduct")
    assert abs(fc - 58.6e6) / 58.6e6 < 0.001


def test_googlenet_multiply_adds_match_the_published_figure(capsys):
    deploy = shared_or_skip("oracle", "googlenet_deploy", "deploy.prototxt")
    assert main(["analyze", str(deploy), "--batch", "1", "--format", "json"]) == 0
    net = json.loads(capsys.readouterr().out)["nets"][0]
    macs = sum(l["flops"]["macs"] for l in net["layers"] if l["type"] in ("Convolution", "InnerProduct"))
    # Szegedy et al., "Going deeper with convolutions" (2015): "1.5 billion multiply-adds at
    # inference"; the "ops" column of its Table 1 sums to 1586M (118 + 360 + 128 + 304 + 73
    # + 88 + 100 + 119 + 170 + 54 + 71 + 1, rounded per row)
    assert abs(macs - 1586e6) / 1586e6 < 0.01
    assert net["flops"]["macs"] >= macs and not net["flops_not_counted"]


def test_caffenet_deploy_matches_the_inline_alexnet(capsys):
    deploy = shared_or_skip("oracle", "caffenet_deploy", "deploy.prototxt")
    assert main(["analyze", str(deploy), "--batch", "1", "--format", "json"]) == 0
    net = json.loads(capsys.readouterr().out)["nets"][0]
    inline = build_net(parse_text(ALEXNET, caffe_pb2.NetParameter()), NetState("TEST"), BuildOptions())
    macs = sum(l["flops"]["macs"] for l in net["layers"] if l["type"] in ("Convolution", "InnerProduct"))
    assert macs == _gemm_macs(inline)  # CaffeNet swaps pool and norm: the GEMMs are the same


# --------------------------------------------------------------------------- losses, others

def test_loss_layers():
    two = 'bottom: "in0" bottom: "in1" top: "t"'
    assert flops(f'layer {{ name: "L" type: "EuclideanLoss" {two} }}', (4, 6), (4, 6)) == \
        Flops(adds=24, macs=24, divides=1)  # b0 - b1, its dot with itself, / 2N
    assert flops(f'layer {{ name: "L" type: "MultinomialLogisticLoss" {two} }}', (4, 6), (4,)) == \
        Flops(comparisons=4, exps=4, adds=4, divides=1)  # per item -log(max(p, eps))
    # hinge L1: the true class negated per item, max(0, 1 + x) and the sum per element
    assert flops(f'layer {{ name: "L" type: "HingeLoss" {two} }}', (4, 6), (4,)) == \
        Flops(macs=4, adds=48, comparisons=24, divides=1)
    assert flops(f'layer {{ name: "L" type: "Accuracy" {two} }}', (4, 6), (4,)) == \
        Flops(comparisons=24, divides=1)


def test_reduction_argmax_embed():
    def red(op, coeff=1):
        return (f'layer {{ name: "L" type: "Reduction" bottom: "in0" top: "t" reduction_param '
                f'{{ operation: {op} axis: 1 coeff: {coeff} }} }}')
    s = (3, 4, 5)  # 3 outputs of 20 elements
    assert flops(red("SUM"), s) == Flops(adds=60)
    assert flops(red("SUM", 2), s) == Flops(adds=60, macs=3)  # the coefficient, per output
    assert flops(red("MEAN"), s) == Flops(adds=60, macs=3)  # coeff / dim
    assert flops(red("ASUM"), s) == Flops(adds=60, comparisons=60)
    assert flops(red("SUMSQ"), s) == Flops(macs=60)
    assert flops('layer { name: "L" type: "ArgMax" bottom: "in0" top: "t" }', (2, 10)) == Flops(comparisons=20)
    assert flops('layer { name: "L" type: "Embed" bottom: "in0" top: "t" embed_param '
                 '{ num_output: 8 input_dim: 100 } }', (2, 3)) == Flops(adds=2 * 3 * 8)  # the bias


def test_fork_layers():
    # DeepLab's Interp: six multiply-adds per output element (bilinear, weights per position)
    assert flops('layer { name: "L" type: "Interp" bottom: "in0" top: "t" interp_param '
                 '{ height: 9 width: 7 } }', (1, 2, 5, 4)) == Flops(macs=6 * 2 * 9 * 7)
    # SegNet's BN in INFERENCE: x * scale + shift
    assert flops('layer { name: "L" type: "BN" bottom: "in0" top: "t" bn_param { bn_mode: INFERENCE } }',
                 (2, 3, 4, 4)) == Flops(macs=96, adds=96)
    # SSD's Normalize across the image: squares, their sum (+ eps, sqrt per image), 1/norm
    # times each element, the scale
    assert flops('layer { name: "L" type: "Normalize" bottom: "in0" top: "t" norm_param '
                 '{ across_spatial: true } }', (2, 3, 4, 4)) == Flops(macs=3 * 96, adds=96 + 2, exps=2, divides=2)
    # py-faster-rcnn's SmoothL1Loss with inside and outside weights
    four = " ".join(f'bottom: "in{i}"' for i in range(4))
    assert flops(f'layer {{ name: "L" type: "SmoothL1Loss" {four} top: "t" }}', *[(2, 8, 3, 3)] * 4) == \
        144 * Flops(adds=2, comparisons=2, macs=4) + Flops(divides=1)


def test_lstm_unit_and_unrolled_lstm():
    n, h = 2, 4
    f = flops('layer { name: "L" type: "LSTMUnit" bottom: "in0" bottom: "in1" bottom: "in2" top: "c" top: "h" }',
              (1, n, h), (1, n, 4 * h), (1, n))
    # per unit: 5 sigmoids (i, f, o and the two tanh's inner ones: exp, add, divide each),
    # the tanh's 2 multiply-adds each, cont * f, f * c + i * g, o * tanh(c); cont == 0
    assert f == n * h * Flops(exps=5, adds=5, divides=5, macs=8, comparisons=1)
    text = ('layer { name: "d" type: "DummyData" top: "x" top: "cont" dummy_data_param '
            '{ shape { dim: 3 dim: 2 dim: 5 } shape { dim: 3 dim: 2 } } }\n'
            'layer { name: "l" type: "LSTM" bottom: "x" bottom: "cont" top: "y" recurrent_param { num_output: 4 } }')
    net = build_net(parse_text(text, caffe_pb2.NetParameter()), NetState("TRAIN"), BuildOptions())
    layer = net.layer("l")
    (inner,) = layer.inner_nets
    assert layer.flops == total(l.flops for l in inner.layers)
    # its GEMMs: the input transform for all T*N rows, the hidden transform at each step
    gemms = sum(l.flops.macs for l in inner.layers if l.type == "InnerProduct")
    assert gemms == 3 * 2 * 5 * 16 + 3 * 2 * 4 * 16
    units = [l for l in inner.layers if l.type == "LSTMUnit"]
    assert len(units) == 3 and all(u.flops == f for u in units)


def test_pooling_window_sum_is_closed_form_and_exact():
    """The clipped-window count is an arithmetic series, not a loop over the outputs: the
    same figure as the loop, and no time growing with the blob (a fuzzed convolution pad of
    2**31-1 made a pooling input 2**32 wide)."""
    import random
    import time

    from caffemem.layers.pooling import window_elements

    def loop(size, kernel, pad, stride, out):
        return sum(min(p * stride - pad + kernel, size) - max(p * stride - pad, 0) for p in range(out))

    rng = random.Random(17)
    for _ in range(20000):
        kernel = rng.randint(1, 12)
        args = (rng.randint(1, 40), kernel, rng.randint(0, kernel - 1), rng.randint(1, 6), rng.randint(0, 20))
        assert window_elements(*args) == loop(*args), args
    t = time.process_time()
    assert window_elements(2**32, 3, 1, 1, 2**32) == 3 * 2**32 - 2  # two windows clipped by one
    assert time.process_time() - t < 0.1
