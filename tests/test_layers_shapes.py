"""Shape arithmetic of the BVLC layer rules, each checked against a hand derivation."""

from __future__ import annotations

import pytest

from caffemem.errors import NetError
from caffemem.net import BuildOptions, build_net
from caffemem.netfilter import NetState
from caffemem.pb import caffe_pb2
from caffemem.prototxt import parse_text


def top(layer_text: str, *inputs: tuple, phase="TRAIN", name="t"):
    """Shape of blob ``name`` after one layer fed by Input tops in0, in1, ..."""
    text = "".join(
        f'layer {{ name: "in{i}" type: "Input" top: "in{i}" input_param {{ shape {{ {" ".join(f"dim: {d}" for d in s)} }} }} }}\n'
        for i, s in enumerate(inputs)) + layer_text
    net = build_net(parse_text(text, caffe_pb2.NetParameter()), NetState(phase), BuildOptions())
    return net.blob(name).shape, net


def test_convolution_dilation_groups_stride():
    # (31 + 2*2 - (2*(3-1)+1)) // 2 + 1 = (35 - 5)//2 + 1 = 16
    shape, net = top('layer { name: "c" type: "Convolution" bottom: "in0" top: "t" convolution_param '
                     '{ num_output: 8 kernel_size: 3 pad: 2 stride: 2 dilation: 2 group: 2 } }', (2, 4, 31, 31))
    assert shape == (2, 8, 16, 16)
    assert net.layer("c").params[0].shape == (8, 2, 3, 3)  # C/group = 2
    assert net.layer("c").params[1].shape == (8,)
    assert net.layer("c").flops.macs == 2 * 8 * 16 * 16 * (2 * 3 * 3)


def test_convolution_rectangular_kernel_h_w():
    # H: (10 + 0 - 3)//1 + 1 = 8 ; W: (12 + 2*1 - 5)//2 + 1 = 5
    shape, _ = top('layer { name: "c" type: "Convolution" bottom: "in0" top: "t" convolution_param '
                   '{ num_output: 3 kernel_h: 3 kernel_w: 5 pad_h: 0 pad_w: 1 stride_h: 1 stride_w: 2 bias_term: false } }',
                   (1, 2, 10, 12))
    assert shape == (1, 3, 8, 5)


def test_deconvolution_output_and_weights():
    # 2*(7-1) + 4 - 2*1 = 14
    shape, net = top('layer { name: "d" type: "Deconvolution" bottom: "in0" top: "t" convolution_param '
                     '{ num_output: 6 kernel_size: 4 stride: 2 pad: 1 group: 2 } }', (1, 4, 7, 7))
    assert shape == (1, 6, 14, 14)
    assert net.layer("d").params[0].shape == (4, 3, 4, 4)


def test_pooling_ceil_with_padded_last_window_clipped():
    # ceil((5 + 2*1 - 3)/2) + 1 = 3; (3-1)*2 = 4 < 5+1 -> kept: 3
    assert top('layer { name: "p" type: "Pooling" bottom: "in0" top: "t" pooling_param '
               '{ pool: MAX kernel_size: 3 stride: 2 pad: 1 } }', (1, 1, 5, 5))[0] == (1, 1, 3, 3)
    # ceil((6 + 2*1 - 2)/2) + 1 = 4; (4-1)*2 = 6 >= 6+1? no -> 4.  With stride 3:
    # ceil((6 + 2 - 2)/3) + 1 = 3; (3-1)*3 = 6 >= 7? no -> 3
    assert top('layer { name: "p" type: "Pooling" bottom: "in0" top: "t" pooling_param '
               '{ pool: AVE kernel_size: 2 stride: 3 pad: 1 } }', (1, 1, 6, 6))[0] == (1, 1, 3, 3)
    # ceil((4 + 2*1 - 2)/2)+1 = 3 ; (3-1)*2 = 4 >= 4+1? no. kernel 2 stride 4 pad 1:
    # ceil((4+2-2)/4)+1 = 2 ; (2-1)*4 = 4 >= 5? no -> 2
    assert top('layer { name: "p" type: "Pooling" bottom: "in0" top: "t" pooling_param '
               '{ pool: MAX kernel_size: 2 stride: 4 pad: 1 } }', (1, 1, 4, 4))[0] == (1, 1, 2, 2)
    # a case that clips: in 4, k 3, s 2, pad 2: ceil((4+4-3)/2)+1 = 4 ; (4-1)*2=6 >= 4+2 -> 3
    assert top('layer { name: "p" type: "Pooling" bottom: "in0" top: "t" pooling_param '
               '{ pool: MAX kernel_size: 3 stride: 2 pad: 2 } }', (1, 1, 4, 4))[0] == (1, 1, 3, 3)


def test_pooling_floor_and_global():
    # floor((7 - 2)/2) + 1 = 3 (CEIL would give 4)
    assert top('layer { name: "p" type: "Pooling" bottom: "in0" top: "t" pooling_param '
               '{ pool: MAX kernel_size: 2 stride: 2 round_mode: FLOOR } }', (1, 1, 7, 7))[0] == (1, 1, 3, 3)
    assert top('layer { name: "p" type: "Pooling" bottom: "in0" top: "t" pooling_param '
               '{ pool: MAX kernel_size: 2 stride: 2 } }', (1, 1, 7, 7))[0] == (1, 1, 4, 4)
    assert top('layer { name: "p" type: "Pooling" bottom: "in0" top: "t" pooling_param '
               '{ pool: AVE global_pooling: true } }', (3, 5, 7, 9))[0] == (3, 5, 1, 1)


def test_reshape_zero_and_minus_one_with_axis():
    assert top('layer { name: "r" type: "Reshape" bottom: "in0" top: "t" reshape_param '
               '{ shape { dim: 0 dim: -1 } } }', (2, 3, 4, 5))[0] == (2, 60)
    # axis 1, num_axes 2: replace dims (3,4) by (-1, 2) -> (2, 6, 2, 5)
    assert top('layer { name: "r" type: "Reshape" bottom: "in0" top: "t" reshape_param '
               '{ shape { dim: -1 dim: 2 } axis: 1 num_axes: 2 } }', (2, 3, 4, 5))[0] == (2, 6, 2, 5)
    # axis -1 inserts after the last axis: (2,3,4,5) + (1,)
    assert top('layer { name: "r" type: "Reshape" bottom: "in0" top: "t" reshape_param '
               '{ shape { dim: 1 } axis: -1 num_axes: 0 } }', (2, 3, 4, 5))[0] == (2, 3, 4, 5, 1)
    with pytest.raises(NetError, match="divisible"):
        top('layer { name: "r" type: "Reshape" bottom: "in0" top: "t" reshape_param { shape { dim: 7 dim: -1 } } }', (2, 3, 4, 5))


def test_flatten_concat_slice_crop_tile_reduction():
    assert top('layer { name: "f" type: "Flatten" bottom: "in0" top: "t" flatten_param { axis: 1 end_axis: 2 } }',
               (2, 3, 4, 5))[0] == (2, 12, 5)
    assert top('layer { name: "c" type: "Concat" bottom: "in0" bottom: "in1" top: "t" }',
               (2, 3, 4, 4), (2, 5, 4, 4))[0] == (2, 8, 4, 4)
    shape, net = top('layer { name: "s" type: "Slice" bottom: "in0" top: "t" top: "u" top: "v" '
                     'slice_param { axis: 1 slice_point: 1 slice_point: 4 } }', (2, 6, 3))
    assert shape == (2, 1, 3) and net.blob("u").shape == (2, 3, 3) and net.blob("v").shape == (2, 2, 3)
    assert top('layer { name: "c" type: "Crop" bottom: "in0" bottom: "in1" top: "t" crop_param { axis: 2 offset: 1 } }',
               (1, 3, 10, 10), (1, 1, 6, 7))[0] == (1, 3, 6, 7)
    assert top('layer { name: "t" type: "Tile" bottom: "in0" top: "t" tile_param { axis: 1 tiles: 3 } }',
               (2, 4))[0] == (2, 12)
    assert top('layer { name: "r" type: "Reduction" bottom: "in0" top: "t" reduction_param { axis: 1 } }',
               (2, 4, 5))[0] == (2,)


def test_inner_product_axis_and_transpose():
    shape, net = top('layer { name: "ip" type: "InnerProduct" bottom: "in0" top: "t" inner_product_param '
                     '{ num_output: 7 axis: 2 transpose: true } }', (2, 3, 4, 5))
    assert shape == (2, 3, 7)
    assert net.layer("ip").params[0].shape == (20, 7)


def test_argmax_and_accuracy_tops():
    assert top('layer { name: "a" type: "ArgMax" bottom: "in0" top: "t" argmax_param { top_k: 2 out_max_val: true } }',
               (4, 10))[0] == (4, 2, 2)
    shape, net = top('layer { name: "acc" type: "Accuracy" bottom: "in0" bottom: "in1" top: "t" top: "per" }',
                     (4, 10), (4,))
    assert shape == () and net.blob("per").shape == (10,)


def test_spp_levels_concatenated():
    # pyramid 2: level 0 -> 1x1, level 1 -> 2x2: C*(1+4)
    assert top('layer { name: "s" type: "SPP" bottom: "in0" top: "t" spp_param { pyramid_height: 2 } }',
               (2, 3, 13, 13))[0] == (2, 15)


def test_scale_with_bias_params():
    _, net = top('layer { name: "s" type: "Scale" bottom: "in0" top: "t" scale_param { bias_term: true } }',
                 (2, 3, 4, 4))
    assert [p.shape for p in net.layer("s").params] == [(3,), (3,)]


def test_batchnorm_params_and_prelu():
    _, net = top('layer { name: "bn" type: "BatchNorm" bottom: "in0" top: "t" }', (2, 3, 4, 4))
    assert [p.shape for p in net.layer("bn").params] == [(3,), (3,), (1,)]
    _, net = top('layer { name: "p" type: "PReLU" bottom: "in0" top: "t" prelu_param { channel_shared: true } }', (2, 3, 4))
    assert [p.shape for p in net.layer("p").params] == [(1,)]
