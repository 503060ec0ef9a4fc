"""V1 and input-field upgrades, as Caffe's upgrade_proto does them."""

from __future__ import annotations

from caffemem.pb import caffe_pb2
from caffemem.prototxt import parse_text
from caffemem.upgrade import upgrade_net


def upgraded(text: str):
    p = parse_text(text, caffe_pb2.NetParameter())
    notes = upgrade_net(p)
    return p, notes


def test_v1_layers_become_current_layers_with_param_specs():
    p, notes = upgraded('layers { name: "c" type: CONVOLUTION bottom: "x" top: "c" blobs_lr: 1 blobs_lr: 2 '
                        'weight_decay: 1 weight_decay: 0 param: "w" convolution_param { num_output: 3 kernel_size: 1 } }')
    assert len(p.layers) == 0 and len(p.layer) == 1
    l = p.layer[0]
    assert l.type == "Convolution" and l.convolution_param.num_output == 3
    assert [(s.name, s.lr_mult, s.decay_mult) for s in l.param] == [("w", 1, 1), ("", 2, 0)]
    assert notes


def test_v1_data_transform_fields_move_to_transform_param():
    p, _ = upgraded('layers { name: "d" type: DATA top: "data" data_param { source: "s" batch_size: 4 crop_size: 9 mirror: true } }')
    l = p.layer[0]
    assert l.type == "Data" and l.transform_param.crop_size == 9 and l.transform_param.mirror
    assert not l.data_param.HasField("crop_size")


def test_input_fields_become_first_input_layer():
    p, _ = upgraded('input: "a" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 4 '
                    'input: "b" input_dim: 5 input_dim: 6 input_dim: 7 input_dim: 8 '
                    'layer { name: "r" type: "ReLU" bottom: "a" top: "r" }')
    assert p.layer[0].name == "input" and p.layer[0].type == "Input"
    assert list(p.layer[0].top) == ["a", "b"]
    assert [list(s.dim) for s in p.layer[0].input_param.shape] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert len(p.input) == 0


def test_batchnorm_three_params_get_zero_lr():
    p, _ = upgraded('layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" param { lr_mult: 1 } '
                    'param { lr_mult: 1 } param { lr_mult: 1 } }')
    assert [s.lr_mult for s in p.layer[0].param] == [0, 0, 0]
