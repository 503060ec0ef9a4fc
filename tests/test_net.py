"""Net::Init semantics: splits, in-place tops, automatic tops, loss weights, backward flags."""

from __future__ import annotations

import pytest

from caffemem.errors import NetError, UnsupportedLayerError
from caffemem.net import BuildOptions, build_net, shape_string
from caffemem.netfilter import NetState
from caffemem.pb import caffe_pb2
from caffemem.prototxt import parse_text
from caffemem.upgrade import upgrade_net

INPUT = 'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }\n'


def build(text: str, phase: str = "TRAIN", **opts):
    p = parse_text(text, caffe_pb2.NetParameter())
    upgrade_net(p)
    return build_net(p, NetState(phase), BuildOptions(**opts))


def test_shape_string_matches_blob_shape_string():
    assert shape_string((4, 32, 128, 128)) == "4 32 128 128 (2097152)"
    assert shape_string(()) == "(1)"


def test_in_place_top_counted_again_in_log_figure():
    net = build(INPUT + 'layer { name: "r" type: "ReLU" bottom: "x" top: "x" }')
    n = 2 * 3 * 8 * 8
    assert [l.memory_after for l in net.layers] == [4 * n, 8 * n]
    assert net.layers[1].in_place == [True]
    assert len(net.blobs) == 1  # the in-place top is the same blob


def test_split_inserted_with_caffe_names_and_counted():
    net = build(INPUT + 'layer { name: "a" type: "ReLU" bottom: "x" top: "a" }\n'
                        'layer { name: "b" type: "TanH" bottom: "x" top: "b" }')
    names = [l.name for l in net.layers]
    assert names == ["in", "x_in_0_split", "a", "b"]
    split = net.layers[1]
    assert [net.blobs[t].name for t in split.tops] == ["x_in_0_split_0", "x_in_0_split_1"]
    assert [net.blobs[b].name for b in net.layers[2].bottoms] == ["x_in_0_split_0"]
    n = 2 * 3 * 8 * 8
    assert net.memory_required_for_data == 4 * n * 5  # x, two split tops, a, b
    # split tops share the data of the split bottom
    assert all(net.blobs[t].shares_data_of == net.layers[0].tops[0] for t in split.tops)


def test_loss_weight_counts_as_consumer_and_moves_to_first_split_top():
    net = build(INPUT + 'layer { name: "e" type: "ReLU" bottom: "x" top: "e" loss_weight: 0.5 }\n'
                        'layer { name: "f" type: "TanH" bottom: "e" top: "f" }')
    split = net.layer("e_e_0_split")
    assert split.loss_weights == [0.5, 0.0]
    assert net.layer("e").loss_weights == [0.0]
    assert [net.blobs[b].name for b in net.layer("f").bottoms] == ["e_e_0_split_1"]


def test_loss_layer_gets_automatic_top_and_default_weight():
    net = build(INPUT + 'layer { name: "l" type: "Input" top: "y" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }\n'
                        'layer { name: "loss" type: "EuclideanLoss" bottom: "x" bottom: "y" }')
    loss = net.layer("loss")
    assert [net.blobs[t].name for t in loss.tops] == ["(automatic)"]
    assert net.blobs[loss.tops[0]].shape == ()
    assert loss.loss_weights == [1.0]


def test_backward_flags_follow_caffe():
    text = INPUT + ('layer { name: "c" type: "Convolution" bottom: "x" top: "c" '
                    'convolution_param { num_output: 4 kernel_size: 3 } }\n'
                    'layer { name: "side" type: "ReLU" bottom: "c" top: "side" }\n'
                    'layer { name: "ip" type: "InnerProduct" bottom: "c" top: "ip" '
                    'inner_product_param { num_output: 2 } }\n'
                    'layer { name: "lab" type: "Input" top: "lab" input_param { shape { dim: 2 } } }\n'
                    'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "lab" top: "loss" }')
    net = build(text)
    need = {l.name: l.need_backward for l in net.layers}
    assert need["c"] and need["ip"] and need["loss"]
    assert not need["side"]  # does not reach a loss
    assert not need["in"] and not need["lab"]
    assert net.layer("c").bottom_need_backward == [False]


def test_lr_mult_zero_everywhere_means_no_backward_below():
    text = INPUT + ('layer { name: "y" type: "Input" top: "y" input_param { shape { dim: 2 dim: 4 dim: 6 dim: 6 } } }\n'
                    'layer { name: "c" type: "Convolution" bottom: "x" top: "c" param { lr_mult: 0 } param { lr_mult: 0 } '
                    'convolution_param { num_output: 4 kernel_size: 3 } }\n'
                    'layer { name: "loss" type: "EuclideanLoss" bottom: "c" bottom: "y" }\n')
    net = build(text)
    assert not net.layer("c").need_backward
    assert not net.layer("loss").need_backward  # nothing below it needs a gradient
    forced = build("force_backward: true\n" + text)
    assert forced.layer("c").need_backward and forced.layer("c").bottom_need_backward == [True]


def test_shared_params_by_name_are_owned_once():
    text = INPUT + ''.join(
        f'layer {{ name: "ip{i}" type: "InnerProduct" bottom: "x" top: "y{i}" param {{ name: "w" }} param {{ name: "b" }} '
        f'inner_product_param {{ num_output: 5 }} }}\n' for i in range(2))
    net = build(text)
    owned = [p for p in net.learnable_params]
    assert len(owned) == 2
    assert net.layer("ip1").params[0].owner == (net.layer("ip0").index, 0)


def test_dangling_bottom_names_blob_and_layer():
    with pytest.raises(NetError, match=r"layer 'r'.*bottom 'nope'"):
        build(INPUT + 'layer { name: "r" type: "ReLU" bottom: "nope" top: "r" }')


def test_cycle_names_the_later_producer():
    text = ('layer { name: "a" type: "ReLU" bottom: "b" top: "a" }\n'
            'layer { name: "b" type: "ReLU" bottom: "a" top: "b" }\n')
    with pytest.raises(NetError, match="produced later by layer 'b'"):
        build(text)


def test_unknown_type_names_layer_and_suggests_input_by_top():
    with pytest.raises(UnsupportedLayerError) as e:
        build(INPUT + 'layer { name: "weird" type: "MyFancyLayer" bottom: "x" top: "y" top: "y2" }')
    assert "weird" in str(e.value) and "MyFancyLayer" in str(e.value)
    assert "--input y=N,C,H,W --input y2=N,C,H,W" in str(e.value)


def test_unknown_type_as_many_tops_as_bottoms_is_shape_preserving_and_marked():
    net = build(INPUT + 'layer { name: "crf" type: "MultiStageMeanfield" bottom: "x" top: "y" }\n'
                        'layer { name: "r" type: "ReLU" bottom: "y" top: "z" }')
    assert net.blob("z").shape == net.blob("x").shape
    assert net.approximate_layers == ["crf"] and net.layer("crf").params == []
    assert any(w.startswith("approximate: 1 layer of unknown type (MultiStageMeanfield)")
               and "--input TOP=" in w for w in net.warnings)


def test_typo_of_a_known_type_gets_did_you_mean_not_a_guess():
    for typo, meant in (("Convolutoin", "Convolution"), ("relu", "ReLU"), ("Poolnig", "Pooling")):
        with pytest.raises(NetError, match=f"did you mean '{meant}'"):
            build(INPUT + f'layer {{ name: "l" type: "{typo}" bottom: "x" top: "y" }}')
    # a known name with something added is a fork's own type, not a typo
    net = build(INPUT + 'layer { name: "r6" type: "ReLU6" bottom: "x" top: "y" }')
    assert net.approximate_layers == ["r6"]


def test_negative_dimension_refused_as_blob_reshape_does():
    with pytest.raises(NetError, match=r"layer 'in': top 'x' has a negative dimension \(-1\)"):
        build('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: -1 dim: 3 } } }')


def test_top_produced_twice_by_one_layer():
    with pytest.raises(NetError, match="produced by multiple sources \\(twice by layer 'd'\\)"):
        build('layer { name: "d" type: "Input" top: "x" top: "x" '
              'input_param { shape { dim: 1 } shape { dim: 1 } } }')


def test_every_layer_filtered_out_names_rule_and_the_stage_that_keeps_them():
    with pytest.raises(NetError, match=r'rules: include \{ stage: "deploy" \}\); try --stage deploy'):
        build('layer { name: "d" type: "Input" top: "x" include { stage: "deploy" } '
              'input_param { shape { dim: 1 } } }')


def test_input_naming_no_top_gets_did_you_mean():
    with pytest.raises(NetError, match="did you mean 'x'"):
        build(INPUT, inputs={"xx": (1, 2)})


def test_unknown_type_with_input_override_is_analyzed():
    net = build(INPUT + 'layer { name: "weird" type: "MyFancyLayer" bottom: "x" top: "y" }\n'
                        'layer { name: "r" type: "ReLU" bottom: "y" top: "z" }',
                inputs={"y": (2, 7)})
    assert net.blob("z").shape == (2, 7)
    assert any("no rule" in n for n in net.layer("weird").notes)


def test_nonpositive_dimension_names_layer_and_arithmetic():
    with pytest.raises(NetError, match=r"layer 'c'.*\(8 \+ 2\*0 - 11\) / 1 \+ 1"):
        build(INPUT + 'layer { name: "c" type: "Convolution" bottom: "x" top: "c" '
                      'convolution_param { num_output: 4 kernel_size: 11 } }')


def test_huge_blob_stays_exact_and_is_flagged():
    text = 'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1000000 dim: 1000 dim: 1000 } } }'
    net = build(text)
    assert net.blobs[0].count == 10**12
    assert net.memory_required_for_data == 4 * 10**12
    assert isinstance(net.memory_required_for_data, int)
    assert any("INT_MAX" in w for w in net.warnings)


def test_phase_filtering_and_stages():
    text = INPUT + ('layer { name: "t" type: "ReLU" bottom: "x" top: "t" include { phase: TEST } }\n'
                    'layer { name: "s" type: "ReLU" bottom: "x" top: "s" include { stage: "deploy" } }\n')
    assert [l.name for l in build(text).layers] == ["in"]
    assert [l.name for l in build(text, "TEST").layers] == ["in", "t"]


def test_in_place_forbidden_for_absval_like_caffe():
    with pytest.raises(NetError, match="does not allow in-place"):
        build(INPUT + 'layer { name: "a" type: "AbsVal" bottom: "x" top: "x" }')


def test_producer_filtered_out_names_rule_and_phase():
    text = ('layer { name: "d" type: "Input" top: "x" include { phase: TEST } '
            'input_param { shape { dim: 1 dim: 2 } } }\n'
            'layer { name: "r" type: "ReLU" bottom: "x" top: "y" }\n')
    with pytest.raises(NetError, match=r"comes from layer 'd'.*phase TRAIN.*--phase TEST"):
        build(text)
    assert build(text, "TEST").blob("y").shape == (1, 2)


def test_structure_is_reused_only_while_the_param_is_unchanged():
    p = parse_text(INPUT + 'layer { name: "r" type: "ReLU" bottom: "x" top: "r" }', caffe_pb2.NetParameter())
    a = build_net(p, NetState("TRAIN"), BuildOptions(batch=2))
    b = build_net(p, NetState("TRAIN"), BuildOptions(batch=5))
    assert [l.name for l in a.layers] == [l.name for l in b.layers] and b.blob("r").shape[0] == 5
    p.layer[1].name = "s"  # same size, other content: built anew
    assert build_net(p, NetState("TRAIN")).layers[1].name == "s"
