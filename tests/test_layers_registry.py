"""Adding a layer type is one rule class and its registration, nothing else.

The toy type below lives in this file only.  Registered with ``@register``, it is shaped by
the net builder, its buffers are allocated by the memory model and its Forward/Backward
touches are replayed, with no edit anywhere in caffemem.
"""

from __future__ import annotations

import pytest

from caffemem.buffers import BufferSet, Kind
from caffemem.flops import Flops
from caffemem.layers import known_types, lookup, register, registry
from caffemem.layers.base import (BOTTOM, DATA, DIFF, PARAM, TOP, LayerCtx, LayerRule, Setup,
                                  Touch, View, count, touch_all)
from caffemem.memory import MemoryEnv, model_memory, replay
from caffemem.net import BuildOptions, build_net
from caffemem.netfilter import NetState
from caffemem.pb import caffe_pb2
from caffemem.prototxt import parse_text

N, C, H, W = 2, 3, 4, 5
F = 4  # sizeof(float)


@pytest.fixture
def toy_registered(monkeypatch):
    """Register the toy type in a copy of the registry, dropped after the test."""
    monkeypatch.setattr(registry, "_RULES", dict(registry._RULES))

    @register
    class ToyGate(LayerRule):
        """A made-up fork layer: ``top = bottom0 * sigmoid(bottom1) * scale`` with a
        learnable per-channel scale [C]; keeps the gate (bottom-sized) for Backward and a
        channel-sum scratch [N*C] in Backward.  Backward reads the top diff and writes
        bottom 0's diff before checking propagate_down, never bottom 1's."""

        type = "ToyGate"
        fork = "toy"

        def setup(self, ctx: LayerCtx) -> Setup:
            x, g = ctx.bottom(0), ctx.bottom(1)
            if x != g:
                raise ctx.fail(f"the gate must have the input's shape ({list(x)} vs {list(g)})")
            return Setup([x], [(x[1],)])

        def flops(self, ctx: LayerCtx) -> Flops:
            return count(ctx.bottom(0)) * Flops(macs=2, comparisons=1)

        def buffers(self, ctx: LayerCtx, env) -> list:
            x = ctx.bottom(0)
            bs = BufferSet(env)
            bs.add("gate", count(x) * F, "forward", Kind.INTERNAL)
            bs.add("channel_sum", x[0] * x[1] * F, "backward", needs="param_diff")
            return bs.items

        def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
            s = v.side
            out = touch_all(TOP, v.n_tops, DIFF, s) + [Touch(BOTTOM, 0, DIFF, s)]
            return out + [Touch(PARAM, k, DIFF, s) for k, p in enumerate(ppd) if p]

    return ToyGate


NET = f"""
name: "toy"
layer {{ name: "x" type: "Input" top: "x" input_param {{ shape {{ dim: {N} dim: {C} dim: {H} dim: {W} }} }} }}
layer {{ name: "g" type: "Input" top: "g" input_param {{ shape {{ dim: {N} dim: {C} dim: {H} dim: {W} }} }} }}
layer {{ name: "gate" type: "ToyGate" bottom: "x" bottom: "g" top: "y" param {{ lr_mult: 1 }} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "g" top: "loss" }}
"""


def _net():
    p = parse_text(NET, caffe_pb2.NetParameter())
    return build_net(p, NetState("TRAIN"), BuildOptions())


def test_unregistered_type_is_refused_by_name():
    assert lookup("ToyGate") is None
    with pytest.raises(Exception, match="ToyGate"):
        _net()


def test_toy_layer_is_shaped(toy_registered):
    assert isinstance(lookup("ToyGate"), toy_registered)
    assert known_types()["ToyGate"].fork == "toy"
    net = _net()
    layer = net.layer("gate")
    assert net.blob("y").shape == (N, C, H, W)
    assert [p.shape for p in layer.params] == [(C,)]
    assert layer.flops == Flops(macs=2 * N * C * H * W, comparisons=N * C * H * W)
    # Caffe's log figure counts every top: x, g, the two tops of the Split Caffe inserts
    # for g (read twice), y and the loss scalar
    assert net.memory_required_for_data == (5 * N * C * H * W + 1) * F


def test_toy_layer_is_allocated_and_touched(toy_registered):
    env = MemoryEnv(scenario="train", mode="cpu", engine="caffe")
    report = model_memory([_net()], env)
    host = report.layer("gate").host
    assert host[Kind.INTERNAL] == (N * C * H * W + N * C) * F  # gate + channel_sum
    assert host[Kind.PARAMS] == C * F and host[Kind.PARAM_DIFFS] == C * F
    # Backward writes bottom 0's diff (x's) although no one asks for it (x is an input),
    # never bottom 1's (g's split top)
    net = _net()
    x, g = (net.blobs[b].name for b in net.layer("gate").bottoms)
    mems = {m.name: m for m in replay([net], env).memory.mems}
    assert mems[f"{x} diff"].host_at is not None
    assert f"{g} diff" not in mems or mems[f"{g} diff"].host_at is None
    assert report.layer("x").host.get(Kind.DIFFS) == N * C * H * W * F
    assert report.layer("g").host.get(Kind.DIFFS, 0) == 0


def test_toy_layer_refusal_names_the_layer(toy_registered):
    bad = NET.replace(f'name: "g" type: "Input" top: "g" input_param {{ shape {{ dim: {N} dim: {C}',
                      f'name: "g" type: "Input" top: "g" input_param {{ shape {{ dim: {N} dim: {C + 1}')
    p = parse_text(bad, caffe_pb2.NetParameter())
    with pytest.raises(Exception, match=r"layer 'gate' \(ToyGate\): the gate must have"):
        build_net(p, NetState("TRAIN"), BuildOptions())
