"""Element-wise layers (Caffe's NeuronLayer family and friends): top 0 = bottom 0's shape."""

from __future__ import annotations

from .base import ElementwiseRule, LayerCtx, Setup
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


@register
class Threshold(ElementwiseRule):
    type = "Threshold"
    has_backward = False


@register
class Dropout(ElementwiseRule):
    type = "Dropout"


@register
class PReLU(ElementwiseRule):
    type = "PReLU"

    def setup(self, ctx: LayerCtx) -> Setup:
        b = ctx.bottom(0)
        if len(b) < 2:
            raise ctx.fail("number of axes of bottom blob must be >= 2")
        slopes = (1,) if ctx.param.prelu_param.channel_shared else (b[1],)
        return Setup([b], [slopes])
