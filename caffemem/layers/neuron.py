"""Element-wise layers (Caffe's NeuronLayer family and friends): top 0 = bottom 0's shape.

Their operations per element (``per_element``, or ``flops`` where the params decide) are
read from ``src/caffe/layers/<type>_layer.cpp``/``.cu``: where the CPU and GPU kernels
differ, the GPU one (a branch counted as if every element took its longer side); a multiply
by a constant 1, or the negative slope 0 of a plain ReLU, is not counted.
"""

from __future__ import annotations

import math
from typing import ClassVar, Optional

from ..buffers import BufferSet, MemoryEnv
from .base import (CUDNN, DATA, DIFF, NONE, TOP, ElementwiseRule, Flops, LayerCtx, Setup, Touch,
                   View, count, factory_engine, touch_all)
from .registry import register


class CuDNNNeuronRule(ElementwiseRule):
    """A neuron layer cuDNN has (``GetReLULayer``, ``GetSigmoidLayer``, ``GetTanHLayer``):
    cuDNN whenever the factory may choose it."""

    #: the ``*_param`` field holding the layer's ``engine``
    engine_field: ClassVar[str] = ""

    def engine(self, param, env: MemoryEnv, notes: Optional[list] = None) -> str:
        return factory_engine(getattr(param, self.engine_field).engine, env) or CUDNN


@register
class ReLU(CuDNNNeuronRule):
    type = "ReLU"
    engine_field = "relu_param"

    def flops(self, ctx: LayerCtx) -> Flops:
        """``in > 0 ? in : in * negative_slope``: a comparison; a leaky ReLU also
        multiplies.  (netscope's analyzer: one comparison.)"""
        n = count(ctx.bottom(0))
        return Flops(comparisons=n, macs=n if ctx.param.relu_param.negative_slope else 0)


@register
class Sigmoid(CuDNNNeuronRule):
    type = "Sigmoid"
    engine_field = "sigmoid_param"
    #: ``0.5 * tanh(0.5 * x) + 0.5`` (sigmoid_layer.cpp/.cu): a tanh and two multiply-adds
    per_element = Flops(macs=2, exps=1)


@register
class TanH(CuDNNNeuronRule):
    type = "TanH"
    engine_field = "tanh_param"
    per_element = Flops(exps=1)


@register
class AbsVal(ElementwiseRule):
    """``top[0]->cpu_diff()``/``gpu_diff()`` comes before the propagate_down check."""

    type = "AbsVal"
    allows_in_place = False
    #: ``caffe_abs``: a sign test per element, counted as a comparison
    per_element = Flops(comparisons=1)

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return touch_all(TOP, v.n_tops, DIFF, v.side) + super().backward_touches(v, pd, ppd)


@register
class BNLL(ElementwiseRule):
    type = "BNLL"
    #: ``x > 0 ? x + log(1 + exp(-x)) : log(1 + exp(x))``: the longer side
    per_element = Flops(comparisons=1, adds=2, exps=2)


@register
class ELU(ElementwiseRule):
    type = "ELU"
    #: ``x > 0 ? x : alpha * (exp(x) - 1)``: the longer side
    per_element = Flops(comparisons=1, macs=1, adds=1, exps=1)


@register
class Exp(ElementwiseRule):
    type = "Exp"

    def flops(self, ctx: LayerCtx) -> Flops:
        """``exp_layer.cpp``: ``exp(inner_scale * x)``, times ``outer_scale``; inner_scale =
        scale * ln(base) (base -1 is e), outer_scale = base^shift: a multiply each when not 1."""
        ep = ctx.param.exp_param
        n = count(ctx.bottom(0))
        inner = ep.scale * math.log(ep.base) if ep.base > 0 else ep.scale
        return Flops(exps=n, macs=n * ((inner != 1) + (ep.shift != 0)))


@register
class Log(ElementwiseRule):
    type = "Log"

    def flops(self, ctx: LayerCtx) -> Flops:
        """``log_layer.cpp``: ``log(shift + scale * x)``, times 1/ln(base) unless base is e."""
        lp = ctx.param.log_param
        n = count(ctx.bottom(0))
        macs = (lp.scale != 1) + (lp.base != -1 and lp.base != math.e)
        return Flops(exps=n, macs=n * macs, adds=n if lp.shift != 0 else 0)


@register
class Power(ElementwiseRule):
    """With power 0 or scale 0 the output is a constant: Forward never reads the bottom."""

    type = "Power"

    def flops(self, ctx: LayerCtx) -> Flops:
        """``power_layer.cpp``: ``(shift + scale * x) ^ power``; a constant (``caffe_set``)
        when power or scale is 0, else a multiply unless scale is 1, an add unless shift is
        0 and a ``powx`` unless power is 1."""
        pp = ctx.param.power_param
        if pp.power == 0 or pp.scale == 0:
            return NONE
        n = count(ctx.bottom(0))
        return Flops(macs=n if pp.scale != 1 else 0, adds=n if pp.shift != 0 else 0,
                     exps=n if pp.power != 1 else 0)

    def forward_touches(self, v: View) -> list[Touch]:
        pp = v.param.power_param
        if pp.power == 0 or pp.scale == 0:
            return touch_all(TOP, v.n_tops, DATA, v.side)
        return super().forward_touches(v)


@register
class Clip(ElementwiseRule):
    type = "Clip"
    #: ``max(min, min(x, max))``
    per_element = Flops(comparisons=2)


@register
class Swish(ElementwiseRule):
    type = "Swish"

    def flops(self, ctx: LayerCtx) -> Flops:
        """``swish_layer.cpp``: ``x * sigmoid(beta * x)``: the scale by beta (unless 1), the
        inner Sigmoid (a tanh, two multiply-adds) and the product."""
        n = count(ctx.bottom(0))
        beta = ctx.param.swish_param.beta
        return Flops(macs=n * (3 + (beta != 1)), exps=n)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``sigmoid_input_`` and the inner SigmoidLayer's top ``sigmoid_output_``, each
        bottom-sized (``swish_layer.cpp``)."""

        n = count(ctx.bottom(0)) * 4
        return BufferSet(env).add("sigmoid_input", n).add("sigmoid_output", n).items


@register
class Threshold(ElementwiseRule):
    """Backward is NOT_IMPLEMENTED (``caffe time`` aborts on it); nothing is touched."""

    type = "Threshold"
    has_backward = False
    per_element = Flops(comparisons=1)

    def backward_failure(self, v: View, pd: list[bool]) -> Optional[str]:
        # threshold_layer.hpp:53-56: Backward_cpu is NOT_IMPLEMENTED (no Backward_gpu)
        return "has no Backward (NOT_IMPLEMENTED: threshold_layer.hpp:53-56)"

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return []


@register
class Dropout(ElementwiseRule):
    type = "Dropout"

    def flops(self, ctx: LayerCtx) -> Flops:
        """TRAIN: ``in * (mask > threshold) * scale`` (a comparison and two multiplies; the
        random numbers are not counted); TEST copies the bottom.  (netscope's analyzer
        counts a comparison per element in every phase.)"""
        if ctx.phase != "TRAIN":
            return NONE
        return count(ctx.bottom(0)) * Flops(comparisons=1, macs=2)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``rand_vec_`` (unsigned int, bottom-sized): the CPU Forward takes it in every phase,
        the GPU Forward only in TRAIN (``dropout_layer.cpp``/``.cu``)."""

        if env.gpu and ctx.phase != "TRAIN":
            return []
        return BufferSet(env).add("rand_vec", count(ctx.bottom(0)) * 4,
                                  note="dropout mask (uint)").items


@register
class PReLU(ElementwiseRule):
    """Backward reads the top diff unconditionally (CPU and GPU)."""

    type = "PReLU"
    #: ``in > 0 ? in : in * slope[c]``
    per_element = Flops(comparisons=1, macs=1)

    def setup(self, ctx: LayerCtx) -> Setup:
        b = ctx.bottom(0)
        if len(b) < 2:
            raise ctx.fail("number of axes of bottom blob must be >= 2")
        slopes = (1,) if ctx.param.prelu_param.channel_shared else (b[1],)
        return Setup([b], [slopes])

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``prelu_layer.cpp``/``.cu``: ``multiplier_`` [C*H*W] of ones, filled on the host in
        LayerSetUp and read on the GPU by the slope gradient; ``backward_buff_`` [C*H*W]
        (its diff) for the GPU slope gradient; in place, ``bottom_memory_`` keeps a
        bottom-sized copy of the input."""

        b = ctx.bottom(0)
        inner = count(b[1:]) * 4
        bs = BufferSet(env)
        bs.host_then_compute("multiplier", inner, then="backward", needs="param_diff",
                             note="ones [C*H*W]")
        if env.gpu:
            bs.add("backward_buff_diff", inner, "backward", needs="param_diff")
        if ctx.tops and ctx.bottoms and ctx.tops[0] == ctx.bottoms[0]:
            bs.add("bottom_memory", count(b) * 4, note="copy of the input (in place)")
        return bs.items

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return touch_all(TOP, v.n_tops, DIFF, v.side) + super().backward_touches(v, pd, ppd)
