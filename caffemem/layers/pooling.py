"""Pooling and SPP (Caffe's pooling_layer / spp_layer).

Output size per axis: ceil((in + 2*pad - kernel) / stride) + 1 (CEIL, the default) or floor
(FLOOR), computed in float32 as Caffe does; with a pad on either axis, a last window that
would start in the padding is dropped, on both axes.  Global pooling takes the whole H x W.
"""

from __future__ import annotations

import math

from typing import Optional

from ..blobshape import float32
from ..buffers import BufferSet, MemoryEnv
from ..pb import caffe_pb2
from .base import (BOTTOM, CAFFE, CUDNN, DIFF, TOP, Flops, LayerCtx, LayerRule, Setup, Touch,
                   View, count, factory_engine)
from .registry import register


def pooled_size(ctx: LayerCtx, size: int, kernel: int, pad: int, stride: int, ceil_mode: bool,
                any_pad: bool = False) -> int:
    """One axis of ``PoolingLayer::Reshape``, float32 division included.  ``any_pad``: a pad
    is set on either axis (``pad_h_ || pad_w_``), which is what makes Caffe drop a last window
    starting in the padding, on **both** axes (pooling_layer.cpp:107-118)."""
    if stride <= 0:  # Reshape divides by it (pooling_layer.cpp): no size comes out of that
        raise ctx.fail(f"stride {stride}: the pooled size is (in + 2*pad - kernel) / stride + 1, "
                       f"so Caffe cannot set this layer up; give stride >= 1")
    ratio = float32(float32(size + 2 * pad - kernel) / float32(stride))
    out = int(math.ceil(ratio) if ceil_mode else math.floor(ratio)) + 1
    if pad or any_pad:
        if (out - 1) * stride >= size + pad:  # pooling_layer.cpp:110-115
            out -= 1
        if out >= 1 and (out - 1) * stride >= size + pad:  # CHECK_LT, pooling_layer.cpp:116-117
            raise ctx.fail(f"the last pooling window starts in the padding even after dropping "
                           f"one: ({out} - 1) * stride {stride} >= input {size} + pad {pad} "
                           f"(pooling_layer.cpp:116-117)")
    return ctx.check_positive(
        "pooled size", out,
        f"{'ceil' if ceil_mode else 'floor'}(({size} + 2*{pad} - {kernel}) / {stride}) + 1")


def pooling_geometry(ctx: LayerCtx, pp, height: int, width: int):
    """(kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w) from a PoolingParameter."""
    if pp.global_pooling:
        if pp.HasField("kernel_size") or pp.HasField("kernel_h") or pp.HasField("kernel_w"):
            raise ctx.fail("with global_pooling: true, filter size cannot be specified")
        kh, kw = height, width
    elif pp.HasField("kernel_size"):
        if pp.HasField("kernel_h") or pp.HasField("kernel_w"):
            raise ctx.fail("filter size is kernel_size OR kernel_h and kernel_w; not both")
        kh = kw = pp.kernel_size
    elif pp.HasField("kernel_h") and pp.HasField("kernel_w"):
        kh, kw = pp.kernel_h, pp.kernel_w
    else:
        raise ctx.fail("for non-square filters both kernel_h and kernel_w are required")
    if kh <= 0 or kw <= 0:
        raise ctx.fail("filter dimensions cannot be zero")
    if pp.HasField("pad_h") or pp.HasField("pad_w"):
        ph, pw = pp.pad_h, pp.pad_w
    else:
        ph = pw = pp.pad
    if pp.HasField("stride_h") or pp.HasField("stride_w"):
        sh, sw = pp.stride_h, pp.stride_w
    else:
        sh = sw = pp.stride
    if pp.global_pooling and (ph or pw or sh != 1 or sw != 1):
        raise ctx.fail("with global pooling: true; only pad = 0 and stride = 1")
    if (ph or pw) and pp.pool not in (0, 1):  # MAX=0, AVE=1
        raise ctx.fail("padding implemented only for average and max pooling")
    if ph >= kh or pw >= kw:
        raise ctx.fail(f"pad ({ph}x{pw}) must be smaller than the kernel ({kh}x{kw})")
    return kh, kw, ph, pw, sh, sw


def pool_shape(ctx: LayerCtx, pp, shape) -> tuple[int, int, int, int]:
    if len(shape) != 4:
        raise ctx.fail(f"input must have 4 axes (num, channels, height, width); got {list(shape)}")
    n, c, h, w = shape
    kh, kw, ph, pw, sh, sw = pooling_geometry(ctx, pp, h, w)
    ceil_mode = pp.round_mode == 0  # CEIL
    any_pad = bool(ph or pw)
    return (n, c, pooled_size(ctx, h, kh, ph, sh, ceil_mode, any_pad),
            pooled_size(ctx, w, kw, pw, sw, ceil_mode, any_pad))


def window_elements(size: int, kernel: int, pad: int, stride: int, out: int) -> int:
    """Input elements the ``out`` windows of one axis cover, each clipped to the input as
    ``pooling_layer.cpp`` clips it (``hstart = max(hstart, 0)``, ``hend = min(hend,
    height)``): padding holds nothing to compare or add."""
    # in closed form (arithmetic series), so the work does not grow with the blob: the sum of
    # min(start + kernel, size) over windows minus the sum of max(start, 0), start = p*stride - pad
    def series(first: int, last: int) -> int:  # sum of p*stride - pad over first <= p <= last
        if last < first:
            return 0
        n = last - first + 1
        return stride * (first + last) * n // 2 - pad * n

    if out <= 0:
        return 0
    fits = min(out, max(0, (size + pad - kernel) // stride + 1)) if size + pad - kernel >= 0 else 0
    ends = series(0, fits - 1) + kernel * fits + size * (out - fits)
    first_inside = min(out, -(-pad // stride))  # the first window starting at or after 0
    starts = series(first_inside, out - 1)
    return ends - starts


def pool_flops(ctx: LayerCtx, pp, shape) -> Flops:
    """What one PoolingLayer Forward computes on a bottom of ``shape`` (N, C, H, W):
    MAX compares every element of each clipped window; AVE adds them and divides each
    output by its window size (netscope's analyzer leaves that divide out, and counts whole
    kernels where Caffe clips them at the border); STOCHASTIC in TRAIN sums a window,
    draws a threshold (a multiply) and walks the running sum up to it (an add and a
    comparison per element, at most), in TEST weighs each element by itself (a
    multiply-add) and divides by the window's sum."""
    _, _, oh, ow = pool_shape(ctx, pp, shape)  # refuses a bottom that is not 4-D
    n, c, h, w = shape
    kh, kw, ph, pw, sh, sw = pooling_geometry(ctx, pp, h, w)
    elements = n * c * window_elements(h, kh, ph, sh, oh) * window_elements(w, kw, pw, sw, ow)
    outputs = n * c * oh * ow
    if pp.pool == 0:  # MAX
        return Flops(comparisons=elements)
    if pp.pool == 1:  # AVE
        return Flops(adds=elements, divides=outputs)
    if ctx.phase == "TRAIN":  # STOCHASTIC
        return Flops(macs=outputs, adds=2 * elements, comparisons=elements)
    return Flops(macs=elements, adds=elements, divides=outputs)


@register
class Pooling(LayerRule):
    """Backward reads only top 0's diff: a second (mask) top's diff is never touched
    (pooling_layer.cpp Backward_cpu, pooling_layer.cu Backward_gpu)."""

    type = "Pooling"

    def engine(self, param, env: MemoryEnv, notes: Optional[list] = None) -> str:
        """``GetPoolingLayer``: MAX pooling and pooling with two tops (the mask) always use
        Caffe's own layer."""
        decided = factory_engine(param.pooling_param.engine, env)
        if decided is not None:
            return decided
        if len(param.top) > 1 or param.pooling_param.pool == 0:  # MAX
            return CAFFE
        return CUDNN

    def setup(self, ctx: LayerCtx) -> Setup:
        pp = ctx.param.pooling_param
        top = pool_shape(ctx, pp, ctx.bottom(0))
        return Setup([top] * max(1, len(ctx.tops)), notes=_windows_past_input(ctx, pp, top))

    def flops(self, ctx: LayerCtx) -> Flops:
        """:func:`pool_flops` (cuDNN's pooling does the same arithmetic)."""
        return pool_flops(ctx, ctx.param.pooling_param, ctx.bottom(0))

    def buffers(self, ctx: LayerCtx, env) -> list:
        if self.engine(ctx.param, env) == CUDNN:
            return []  # cuDNN pooling keeps no index buffer
        return pooling_buffers(ctx, env, ctx.param.pooling_param.pool, len(ctx.tops),
                               count(ctx.top_shapes[0]))

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        s = v.side
        if not any(pd):
            return []
        return [Touch(TOP, 0, DIFF, s)] + [Touch(BOTTOM, i, DIFF, s) for i, p in enumerate(pd) if p]


def _windows_past_input(ctx: LayerCtx, pp, top) -> list[str]:
    """MAX pooling with no pad and ceil rounding can make a last window that starts past the
    input (no pad, so no trim: pooling_layer.cpp:107): Forward_cpu leaves its argmax at -1
    (pooling_layer.cpp:159-175) and Backward_cpu adds into ``bottom_diff[-1]``
    (pooling_layer.cpp:270-272), writing before the buffer: heap corruption, a crash at exit
    (oracle-random 0055).  The GPU kernels do not write out of bounds."""
    if pp.pool != 0 or len(top) != 4:  # MAX only
        return []
    _, _, h, w = ctx.bottom(0)
    _, _, ph, pw, sh, sw = pooling_geometry(ctx, pp, h, w)
    if ph or pw:
        return []
    past = [f"{axis}: ({out} - 1) x stride {stride} >= {size}"
            for axis, out, stride, size in (("height", top[2], sh, h), ("width", top[3], sw, w))
            if (out - 1) * stride >= size]
    if not past:
        return []
    return [f"MAX pooling window starts beyond the input ({'; '.join(past)}; no pad, ceil "
            f"rounding): in CPU mode Caffe's Backward writes out of bounds (bottom_diff[-1], "
            f"pooling_layer.cpp:159-175, 270-272), corrupting the heap (a crash at exit); use "
            f"round_mode: FLOOR, a pad, or a stride that fits"]


def spp_level_param(ctx: LayerCtx, level: int, shape):
    """The PoolingParameter SPP runs at one pyramid level (``SPPLayer::GetPoolingParam``)."""
    n, c, h, w = shape
    bins = 2 ** level
    kh, kw = math.ceil(h / bins), math.ceil(w / bins)
    return caffe_pb2.PoolingParameter(
        pool=ctx.param.spp_param.pool, kernel_h=kh, kernel_w=kw,
        pad_h=(kh * bins - h + 1) // 2, pad_w=(kw * bins - w + 1) // 2, stride_h=kh, stride_w=kw)


def spp_level_shape(ctx: LayerCtx, level: int, shape) -> tuple[int, int, int, int]:
    """The top shape of SPP's pooling at one pyramid level."""
    return pool_shape(ctx, spp_level_param(ctx, level, shape), shape)


def pooling_buffers(ctx: LayerCtx, env, pool: int, ntops: int, top_count: int,
                    prefix: str = "") -> list:
    """Caffe's PoolingLayer (``pooling_layer.cpp``/``.cu``): MAX with one top keeps the
    argmax in ``max_idx_`` (int, top-sized; with two tops the mask is top 1); STOCHASTIC keeps
    ``rand_idx_`` (top-sized) in TRAIN (its CPU Forward is NOT_IMPLEMENTED)."""

    bs = BufferSet(env)
    if pool == 0 and ntops == 1:
        bs.add(prefix + "max_idx", top_count * 4, note="argmax per output (int)")
    elif pool == 2 and ctx.phase == "TRAIN":
        bs.add(prefix + "rand_idx", top_count * 4, note="sampled index per output")
    return bs.items


@register
class SPP(LayerRule):
    type = "SPP"

    def setup(self, ctx: LayerCtx) -> Setup:
        shape = ctx.bottom(0)
        if len(shape) != 4:
            raise ctx.fail(f"input must have 4 axes; got {list(shape)}")
        height = ctx.param.spp_param.pyramid_height
        if height == 1:
            return Setup([spp_level_shape(ctx, 0, shape)])
        total = sum(count(spp_level_shape(ctx, i, shape)[1:]) for i in range(height))
        return Setup([(shape[0], total)])

    def flops(self, ctx: LayerCtx) -> Flops:
        """One pooling per pyramid level (:func:`pool_flops`); the split, flattens and concat
        only copy."""
        shape = ctx.bottom(0)
        out = Flops()
        for i in range(ctx.param.spp_param.pyramid_height):
            out = out + pool_flops(ctx, spp_level_param(ctx, i, shape), shape)
        return out

    def buffers(self, ctx: LayerCtx, env) -> list:
        """SPP runs a Split, one Caffe PoolingLayer and one Flatten per pyramid level, and a
        Concat (``spp_layer.cpp``): each level's pooled output (and argmax) is the layer's own;
        when propagating down, each split top has its own bottom-sized diff and each pooled
        output a diff.  With one level the pooling writes the top directly."""

        sp = ctx.param.spp_param
        shape = ctx.bottom(0)
        height = sp.pyramid_height
        if height == 1:
            return pooling_buffers(ctx, env, sp.pool, 1, count(ctx.top_shapes[0]))
        bs = BufferSet(env)
        for i in range(height):
            n = count(spp_level_shape(ctx, i, shape))
            bs.add(f"level{i}_pooled", n * 4, note=f"pyramid level {i} pooled output")
            bs.items.extend(pooling_buffers(ctx, env, sp.pool, 1, n, prefix=f"level{i}_"))
            bs.add(f"level{i}_pooled_diff", n * 4, "backward", needs="bottom_diff")
            bs.add(f"level{i}_split_diff", count(shape) * 4, "backward", needs="bottom_diff",
                   note="the internal Split's top diff (bottom-sized)")
        return bs.items
