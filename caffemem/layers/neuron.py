"""Element-wise layers (Caffe's NeuronLayer family and friends): top 0 = bottom 0's shape."""

from __future__ import annotations

from typing import ClassVar, Optional

from ..buffers import BufferSet, MemoryEnv
from .base import (CUDNN, DATA, DIFF, TOP, ElementwiseRule, LayerCtx, Setup, Touch, View, count,
                   factory_engine, touch_all)
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


@register
class Sigmoid(CuDNNNeuronRule):
    type = "Sigmoid"
    engine_field = "sigmoid_param"


@register
class TanH(CuDNNNeuronRule):
    type = "TanH"
    engine_field = "tanh_param"


@register
class AbsVal(ElementwiseRule):
    """``top[0]->cpu_diff()``/``gpu_diff()`` comes before the propagate_down check."""

    type = "AbsVal"
    allows_in_place = False

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return touch_all(TOP, v.n_tops, DIFF, v.side) + super().backward_touches(v, pd, ppd)


@register
class BNLL(ElementwiseRule):
    type = "BNLL"


@register
class ELU(ElementwiseRule):
    type = "ELU"


@register
class Exp(ElementwiseRule):
    type = "Exp"


@register
class Log(ElementwiseRule):
    type = "Log"


@register
class Power(ElementwiseRule):
    """With power 0 or scale 0 the output is a constant: Forward never reads the bottom."""

    type = "Power"

    def forward_touches(self, v: View) -> list[Touch]:
        pp = v.param.power_param
        if pp.power == 0 or pp.scale == 0:
            return touch_all(TOP, v.n_tops, DATA, v.side)
        return super().forward_touches(v)


@register
class Clip(ElementwiseRule):
    type = "Clip"


@register
class Swish(ElementwiseRule):
    type = "Swish"

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

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return []


@register
class Dropout(ElementwiseRule):
    type = "Dropout"

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
