"""Recurrent layers: RNN and LSTM build an unrolled net inside themselves, and LSTMUnit.

Caffe's ``RecurrentLayer::LayerSetUp`` writes a NetParameter: an unnamed Input layer for
``x`` and ``cont`` (and ``x_static``), the type's unrolled time steps
(``RNNLayer``/``LSTMLayer::FillUnrolledNet``: a Slice of ``cont``, the input transform, per
step a Scale by ``cont``, the recurrent InnerProduct, an Eltwise sum, then TanH units or an
LSTMUnit, finally a Concat of the outputs), prefixes every layer name with the outer layer's
name plus ``_``, appends a Reduction "pseudo-loss" with loss weight 1 per output, and builds
it as a Net of its own, which logs its whole setup before the outer layer's ``Setting up``.
We write the same NetParameter (:meth:`RecurrentRule.unrolled_net`); the net builder builds
it with the same builder as any net (``ctx.inner``); the outer layer's parameters are the
unrolled net's owned parameters, in order.  The memory model runs on the unrolled net as on
a net of its own and charges the outer layer what it does not share
(:meth:`RecurrentRule.unrolled_io`).
"""

from __future__ import annotations

from ..pb import caffe_pb2
from ..flops import total
from .base import (BOTTOM, DATA, DIFF, NONE, TOP, Flops, LayerCtx, LayerRule, Setup, Touch,
                   Unrolled, View, count, touch_all)
from .registry import register


def _ip(net, name, bottom, top, num_output, axis, params, bias):
    l = net.layer.add(name=name, type="InnerProduct")
    l.bottom.append(bottom)
    l.top.append(top)
    ip = l.inner_product_param
    ip.num_output, ip.bias_term, ip.axis = num_output, bias, axis
    for p in params:
        l.param.add().name = p
    return l


def _layer(net, name, type_, bottoms, tops):
    l = net.layer.add(type=type_)
    if name:
        l.name = name
    l.bottom.extend(bottoms)
    l.top.extend(tops)
    return l


class RecurrentRule(LayerRule):
    """What RNN and LSTM share (``RecurrentLayer``)."""

    #: names (gates multiplier, weight/bias names, state names, output) differ per type
    gates = 1
    x_names = ("W_xh", "b_h")
    static_name = "W_xh_static"
    states = ("h_0",)
    output = "o"

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index != 1  # never into "cont"

    def _check(self, ctx: LayerCtx) -> tuple[int, int, bool]:
        x, cont = ctx.bottom(0), ctx.bottom(1)
        if len(x) < 2:
            raise ctx.fail("bottom[0] must have at least 2 axes -- (#timesteps, #streams, ...)")
        if len(cont) != 2 or tuple(cont) != tuple(x[:2]):
            raise ctx.fail(f"bottom[1] (cont) must be (#timesteps, #streams) = {list(x[:2])}, got {list(cont)}")
        hidden = len(self.states) if ctx.param.recurrent_param.expose_hidden else 0
        static = len(ctx.bottoms) > 2 + hidden
        if ctx.param.recurrent_param.num_output <= 0:
            raise ctx.fail("num_output must be positive")
        return x[0], x[1], static

    def unrolled_net(self, ctx: LayerCtx):
        """The NetParameter Caffe builds for this layer (``RecurrentLayer::LayerSetUp``); no
        state in it: the net is built in NetState's default phase, TEST."""
        T, N, static = self._check(ctx)
        H = ctx.param.recurrent_param.num_output
        net = caffe_pb2.NetParameter()
        inp = _layer(net, "", "Input", [], ["x", "cont"] + (["x_static"] if static else []))
        for s in ctx.bottom_shapes[:3 if static else 2]:
            inp.input_param.shape.add().dim.extend(s)
        self.fill(net, T, N, H, static)
        if ctx.name:
            for l in net.layer:
                l.name = f"{ctx.name}_{l.name}"
        r = _layer(net, f"{self.output}_pseudoloss", "Reduction", [self.output], [f"{self.output}_pseudoloss"])
        r.loss_weight.append(1)
        return net

    def fill(self, net, T: int, N: int, H: int, static: bool) -> None:
        """``FillUnrolledNet``: the prologue, one step per time step, the type's closing
        layers, and the Concat of every step's output along time."""
        cont, xs = self._prologue(net, N, H, static)
        outs = []
        for t in range(1, T + 1):
            self._step_head(net, cont, xs, t)
            outs.append(self.step(net, str(t - 1), str(t), H, static))
        self.close(net, T)
        concat = _layer(net, f"{self.output}_concat", "Concat", outs, [self.output])
        concat.concat_param.axis = 0

    def step(self, net, p: str, s: str, H: int, static: bool) -> str:
        """The layers of time step ``s`` after its head; returns the step's output blob."""
        raise NotImplementedError

    def close(self, net, T: int) -> None:
        """Layers after the last step and before the output Concat (none by default)."""

    def _prologue(self, net, N: int, H: int, static: bool):
        inp = _layer(net, "", "Input", [], list(self.states))
        for _ in self.states:
            inp.input_param.shape.add().dim.extend([1, N, H])
        cont = _layer(net, "cont_slice", "Slice", ["cont"], [])
        cont.slice_param.axis = 0
        wx, bx = self.x_names
        x = _ip(net, "x_transform", "x", f"{wx}_x", H * self.gates, 2, [wx, bx], True)
        x.propagate_down.append(True)
        if static:
            st = _ip(net, f"{wx}_x_static", "x_static", f"{wx}_x_static_preshape", H * self.gates, 1,
                     [self.static_name], False)
            st.propagate_down.append(True)
            rs = _layer(net, f"{wx}_x_static_reshape", "Reshape", [f"{wx}_x_static_preshape"], [f"{wx}_x_static"])
            rs.reshape_param.shape.dim.extend([1, -1, H * self.gates])
        xs = _layer(net, f"{wx}_x_slice", "Slice", [f"{wx}_x"], [])
        xs.slice_param.axis = 0
        return cont, xs

    def _step_head(self, net, cont, xs, t: int) -> None:
        """What every time step starts with: its slices of ``cont`` and of the transformed
        input, and the previous hidden state multiplied by ``cont`` (a Scale on axis 0)."""
        p, s = str(t - 1), str(t)
        cont.top.append(f"cont_{s}")
        xs.top.append(f"{self.x_names[0]}_x_{s}")
        sc = _layer(net, f"h_conted_{p}", "Scale", [f"h_{p}", f"cont_{s}"], [f"h_conted_{p}"])
        sc.scale_param.axis = 0

    def recurrent_outputs(self, T: int) -> tuple[str, ...]:
        """``RecurrentOutputBlobNames``: the state blobs after the last step (rnn_layer.cpp)."""
        return (f"h_{T}",)

    def unrolled_io(self, ctx: LayerCtx) -> Unrolled:
        """``RecurrentLayer::Reshape`` (recurrent_layer.cpp:183-210): ``x`` shares data and
        diff with bottom 0, ``cont`` data with bottom 1, ``x_static`` data and diff with
        bottom 2, with ``expose_hidden`` the initial states' data with the next bottoms, and
        top 0 data and diff with the output; LayerSetUp zeroes the recurrent outputs' diffs
        on the host (recurrent_layer.cpp:160-164); the pseudo-loss Reduction is set up but
        never run (``ForwardTo(last_layer_index_)``, 166-171)."""
        T, _, static = self._check(ctx)
        both = (DATA, DIFF)
        shares = [("x", both), ("cont", (DATA,)), (self.output, both)]
        if static:
            shares.append(("x_static", both))
        if ctx.param.recurrent_param.expose_hidden:
            shares += [(s, (DATA,)) for s in self.states]
        return Unrolled(tuple(shares), self.recurrent_outputs(T), skipped=1)

    def setup(self, ctx: LayerCtx) -> Setup:
        inner = ctx.inner
        if inner is None:
            raise ctx.fail("the unrolled net was not built (the net builder builds it first)")
        out = inner.blob(self.output).shape
        tops = [out]
        if ctx.param.recurrent_param.expose_hidden:
            tops += [inner.blob(s).shape for s in self.states]
        params = [p.shape for p in inner.learnable_params]
        return Setup(tops[:max(1, len(ctx.tops))], params)

    def flops(self, ctx: LayerCtx) -> Flops:
        """The unrolled net's layers, summed (its inner products, Eltwise sums, TanH or
        LSTMUnit per time step)."""
        inner = ctx.inner
        return total(l.flops for l in inner.layers) if inner is not None else NONE


@register
class RNN(RecurrentRule):
    type = "RNN"
    x_names = ("W_xh", "b_h")
    static_name = "W_xh_static"
    states = ("h_0",)
    output = "o"

    def step(self, net, p, s, H, static):
        _ip(net, f"W_hh_h_{p}", f"h_conted_{p}", f"W_hh_h_{p}", H, 2, ["W_hh"], False)
        _layer(net, f"h_input_sum_{s}", "Eltwise", [f"W_hh_h_{p}", f"W_xh_x_{s}"]
               + (["W_xh_x_static"] if static else []), [f"h_neuron_input_{s}"])
        _layer(net, f"h_neuron_{s}", "TanH", [f"h_neuron_input_{s}"], [f"h_{s}"])
        _ip(net, f"W_ho_h_{s}", f"h_{s}", f"W_ho_h_{s}", H, 2, ["W_ho", "b_o"], True)
        _layer(net, f"o_neuron_{s}", "TanH", [f"W_ho_h_{s}"], [f"o_{s}"])
        return f"o_{s}"


@register
class LSTM(RecurrentRule):
    type = "LSTM"
    gates = 4
    x_names = ("W_xc", "b_c")
    static_name = "W_xc_static"
    states = ("c_0", "h_0")
    output = "h"

    def step(self, net, p, s, H, static):
        _ip(net, f"transform_{s}", f"h_conted_{p}", f"W_hc_h_{p}", 4 * H, 2, ["W_hc"], False)
        _layer(net, f"gate_input_{s}", "Eltwise", [f"W_hc_h_{p}", f"W_xc_x_{s}"]
               + (["W_xc_x_static"] if static else []), [f"gate_input_{s}"])
        _layer(net, f"unit_{s}", "LSTMUnit", [f"c_{p}", f"gate_input_{s}", f"cont_{s}"], [f"c_{s}", f"h_{s}"])
        return f"h_{s}"

    def recurrent_outputs(self, T: int) -> tuple[str, ...]:
        """lstm_layer.cpp: ``h_T`` and the Split copy ``c_T`` of the last cell state."""
        return (f"h_{T}", "c_T")

    def close(self, net, T):
        _layer(net, "", "Split", [f"c_{T}"], ["c_T"])  # the last cell state, for expose_hidden


@register
class LSTMUnit(LayerRule):
    """``LSTMUnit``: tops C_t and H_t shaped like C_{t-1}; the gates are 4 x hidden wide.
    Backward returns unless bottom 0 or 1 propagates; then both bottom diffs are written."""

    type = "LSTMUnit"

    def setup(self, ctx: LayerCtx) -> Setup:
        c, gates = ctx.bottom(0), ctx.bottom(1)
        if len(c) != 3 or c[0] != 1 or gates[-1] != 4 * c[2]:
            raise ctx.fail(f"expects C_{{t-1}} (1, N, H) and gates (1, N, 4H); got {list(c)} and {list(gates)}")
        return Setup([tuple(c), tuple(c)])

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index != 2

    def flops(self, ctx: LayerCtx) -> Flops:
        """``lstm_unit_layer.cpp``, per hidden unit: gates i, f, o by ``sigmoid(x) = 1 / (1 +
        exp(-x))`` (an exp, an add, a divide each), g and tanh(c) by ``tanh(x) = 2 *
        sigmoid(2x) - 1`` (the same, and two multiply-adds), ``cont == 0`` (a comparison), f
        times cont, c = f * c_prev + i * g, h = o * tanh(c)."""
        hidden = count(ctx.bottom(0))
        return hidden * Flops(exps=5, adds=5, divides=5, macs=4 + 1 + 2 + 1, comparisons=1)

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        if not (pd[0] or pd[1]):
            return []
        s = v.side
        return touch_all(TOP, v.n_tops, DIFF, s) + [Touch(BOTTOM, 0, DIFF, s), Touch(BOTTOM, 1, DIFF, s)]
