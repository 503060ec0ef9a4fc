"""Normalisation and scaling layers: BatchNorm, LRN, MVN, Softmax, Scale, Bias."""

from __future__ import annotations

from .base import ElementwiseRule, LayerCtx, LayerRule, Setup, count
from .registry import register


def axis_span_shape(ctx: LayerCtx, shape, axis_param: int, num_axes: int) -> tuple[int, ...]:
    """``shape[axis : axis+num_axes]`` (num_axes -1: to the end), as Scale/Bias size their blob."""
    axis = ctx.canonical_axis(axis_param, len(shape))
    if num_axes < -1:
        raise ctx.fail("num_axes must be non-negative, or -1 to extend to the end of bottom[0]")
    if num_axes >= 0 and len(shape) < axis + num_axes:
        raise ctx.fail(f"parameter shape extends past bottom[0]'s shape {list(shape)} "
                       f"when applied starting with bottom[0] axis = {axis}")
    return tuple(shape[axis:] if num_axes == -1 else shape[axis:axis + num_axes])


@register
class BatchNorm(ElementwiseRule):
    type = "BatchNorm"
    flops_per_element = 2

    def setup(self, ctx: LayerCtx) -> Setup:
        b = ctx.bottom(0)
        c = 1 if len(b) == 1 else b[1]
        return Setup([b], [(c,), (c,), (1,)])


@register
class LRN(ElementwiseRule):
    type = "LRN"

    def flops(self, ctx: LayerCtx) -> int:
        return count(ctx.bottom(0)) * (ctx.param.lrn_param.local_size + 2)


@register
class MVN(ElementwiseRule):
    type = "MVN"
    flops_per_element = 2


@register
class Softmax(ElementwiseRule):
    type = "Softmax"
    flops_per_element = 3


@register
class Scale(LayerRule):
    type = "Scale"

    def setup(self, ctx: LayerCtx) -> Setup:
        sp = ctx.param.scale_param
        b = ctx.bottom(0)
        params = []
        if len(ctx.bottoms) == 1:
            params.append(axis_span_shape(ctx, b, sp.axis, sp.num_axes))
            bias_axes = sp.num_axes
        else:
            s = ctx.bottom(1)
            axis = ctx.canonical_axis(sp.axis, len(b))
            if tuple(b[axis:axis + len(s)]) != tuple(s):
                raise ctx.fail(f"scale bottom {list(s)} does not match bottom[0] {list(b)} from axis {axis}")
            bias_axes = len(s)
        if sp.bias_term and len(params) + len(ctx.bottoms) < 3:
            params.append(axis_span_shape(ctx, b, sp.axis, bias_axes))
        return Setup([b], params)

    def flops(self, ctx: LayerCtx) -> int:
        return count(ctx.bottom(0))


@register
class Bias(LayerRule):
    type = "Bias"

    def setup(self, ctx: LayerCtx) -> Setup:
        bp = ctx.param.bias_param
        b = ctx.bottom(0)
        if len(ctx.bottoms) > 1:
            return Setup([b])
        return Setup([b], [axis_span_shape(ctx, b, bp.axis, bp.num_axes)])

    def flops(self, ctx: LayerCtx) -> int:
        return count(ctx.bottom(0))
