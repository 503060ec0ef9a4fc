"""Element-wise layers (Caffe's NeuronLayer family and friends): top 0 = bottom 0's shape."""

from __future__ import annotations

from .base import ElementwiseRule, LayerCtx, Setup, count
from .registry import register


@register
class ReLU(ElementwiseRule):
    type = "ReLU"


@register
class Sigmoid(ElementwiseRule):
    type = "Sigmoid"


@register
class TanH(ElementwiseRule):
    type = "TanH"


@register
class AbsVal(ElementwiseRule):
    type = "AbsVal"
    allows_in_place = False


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
    type = "Power"


@register
class Clip(ElementwiseRule):
    type = "Clip"


@register
class Swish(ElementwiseRule):
    type = "Swish"

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``sigmoid_input_`` and the inner SigmoidLayer's top ``sigmoid_output_``, each
        bottom-sized (``swish_layer.cpp``)."""
        from ..memory.buffers import BufferSet

        n = count(ctx.bottom(0)) * 4
        return BufferSet(env).add("sigmoid_input", n).add("sigmoid_output", n).items


@register
class Threshold(ElementwiseRule):
    type = "Threshold"
    has_backward = False


@register
class Dropout(ElementwiseRule):
    type = "Dropout"

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``rand_vec_`` (unsigned int, bottom-sized): the CPU Forward takes it in every phase,
        the GPU Forward only in TRAIN (``dropout_layer.cpp``/``.cu``)."""
        from ..memory.buffers import BufferSet

        if env.gpu and ctx.phase != "TRAIN":
            return []
        return BufferSet(env).add("rand_vec", count(ctx.bottom(0)) * 4,
                                  note="dropout mask (uint)").items


@register
class PReLU(ElementwiseRule):
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
        from ..memory.buffers import BufferSet

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
