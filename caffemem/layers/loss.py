"""Loss layers and Accuracy.

Caffe's LossLayer subclasses produce a scalar top (printed ``Top shape: (1)``), get an
anonymous "(automatic)" top when none is named, and weigh top 0 by 1 unless told otherwise.
SoftmaxWithLoss and InfogainLoss may expose the softmax probabilities as a second top.
"""

from __future__ import annotations

from .base import LayerCtx, LayerRule, Setup, count
from .registry import register


class LossRule(LayerRule):
    is_loss = True

    def setup(self, ctx: LayerCtx) -> Setup:
        b0 = ctx.bottom(0)
        if len(ctx.bottom_shapes) > 1 and ctx.bottom_shapes[1] and b0 and \
                b0[0] != ctx.bottom_shapes[1][0] and self.check_num:
            raise ctx.fail(f"the data and label should have the same first dimension "
                           f"({list(b0)} vs {list(ctx.bottom_shapes[1])})")
        return Setup([()] + [b0] * (max(1, len(ctx.tops)) - 1))

    check_num = True

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index != 1  # never backpropagate to the labels


@register
class SoftmaxWithLoss(LossRule):
    type = "SoftmaxWithLoss"
    check_num = False

    def setup(self, ctx: LayerCtx) -> Setup:
        lp = ctx.param.loss_param
        b0, b1 = ctx.bottom(0), ctx.bottom(1)
        axis = ctx.canonical_axis(ctx.param.softmax_param.axis, len(b0))
        outer, inner = count(b0[:axis]), count(b0[axis + 1:])
        if outer * inner != count(b1):
            raise ctx.fail(f"number of labels must match number of predictions; e.g., if softmax axis == 1 "
                           f"and prediction shape is (N, C, H, W), label count (number of labels) must be N*H*W, "
                           f"with integer values in {{0, 1, ..., C-1}} (predictions {list(b0)}, labels {list(b1)})")
        del lp
        return Setup([()] + [b0] * (max(1, len(ctx.tops)) - 1))

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0


@register
class EuclideanLoss(LossRule):
    type = "EuclideanLoss"

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return True


@register
class SigmoidCrossEntropyLoss(LossRule):
    type = "SigmoidCrossEntropyLoss"

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0


@register
class HingeLoss(LossRule):
    type = "HingeLoss"

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0


@register
class InfogainLoss(LossRule):
    type = "InfogainLoss"

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0


@register
class MultinomialLogisticLoss(LossRule):
    type = "MultinomialLogisticLoss"

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0


@register
class ContrastiveLoss(LossRule):
    type = "ContrastiveLoss"
    check_num = False

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index != 2

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index < 2


@register
class Accuracy(LayerRule):
    type = "Accuracy"
    has_backward = False

    def setup(self, ctx: LayerCtx) -> Setup:
        ap = ctx.param.accuracy_param
        b0, b1 = ctx.bottom(0), ctx.bottom(1)
        axis = ctx.canonical_axis(ap.axis, len(b0))
        outer, inner = count(b0[:axis]), count(b0[axis + 1:])
        if outer * inner != count(b1):
            raise ctx.fail(f"number of labels must match number of predictions (predictions {list(b0)}, "
                           f"labels {list(b1)}, label axis {axis})")
        if count(b1) and ap.top_k > count(b0) // count(b1):
            raise ctx.fail("top_k must be less than or equal to the number of classes")
        tops = [()]
        if len(ctx.tops) > 1:
            tops.append((b0[axis],))
        return Setup(tops)
