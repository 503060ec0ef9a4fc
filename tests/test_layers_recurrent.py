"""RNN / LSTM: the unrolled net Caffe builds inside, and the outer layer's shapes."""

from __future__ import annotations

from caffemem.net import BuildOptions, build_net
from caffemem.netfilter import NetState
from caffemem.pb import caffe_pb2
from caffemem.prototxt import parse_text

NET = '''layer { name: "d" type: "DummyData" top: "x" top: "cont"
  dummy_data_param { shape { dim: 3 dim: 2 dim: 5 } shape { dim: 3 dim: 2 } } }
layer { name: "l" type: "%s" bottom: "x" bottom: "cont" top: "y" recurrent_param { num_output: 4 } }
'''


def build(type_: str):
    return build_net(parse_text(NET % type_, caffe_pb2.NetParameter()), NetState("TRAIN"), BuildOptions())


def test_lstm_top_params_and_unrolled_net():
    net = build("LSTM")
    l = net.layer("l")
    assert net.blob("y").shape == (3, 2, 4)  # T x N x num_output
    # W_xc [4H, input], b_c [4H], W_hc [4H, H]: the unrolled net's owned params, in order
    assert [p.shape for p in l.params] == [(16, 5), (16,), (16, 4)]
    (inner,) = l.inner_nets
    names = [x.name for x in inner.layers]
    assert names[:3] == ["l_", "l_", "l_cont_slice"]
    assert "l_unit_3" in names and "l_h_concat" in names and names[-1] == "h_pseudoloss"
    assert inner.layer("l_transform_2").params[0].owner is not None  # W_hc shared across steps


def test_rnn_top_and_params():
    net = build("RNN")
    assert net.blob("y").shape == (3, 2, 4)
    # W_xh [H, input], b_h [H], W_hh [H, H], W_ho [H, H], b_o [H]
    assert [p.shape for p in net.layer("l").params] == [(4, 5), (4,), (4, 4), (4, 4), (4,)]
