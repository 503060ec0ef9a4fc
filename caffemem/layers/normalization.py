"""Normalisation and scaling layers: BatchNorm, LRN, MVN, Softmax, Scale, Bias."""

from __future__ import annotations

from typing import Optional

from ..blobshape import count
from ..buffers import BufferSet, MemoryEnv
from ..pb import caffe_pb2
from .base import (BOTTOM, BUFFER, CAFFE, CUDNN, DATA, DIFF, PARAM, TOP, ElementwiseRule, Flops, LayerCtx,
                   LayerRule, Setup, Touch, View, factory_engine, legacy_dim, legacy_dims,
                   top_and_bottom_diff_always)
from .pooling import pool_flops
from .registry import register

#: ``CUDNN_LRN_MAX_N`` (cuDNN's largest LRN window): a wider ACROSS_CHANNELS LRN is Caffe's
CUDNN_LRN_MAX_N = 16


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
    """Backward writes the bottom diff unconditionally and reads the top diff (in place: it
    copies it into ``x_norm_``'s diff first, a buffer of the rule).  The statistics blobs
    (params) are never given diffs by the layer."""

    type = "BatchNorm"

    def setup(self, ctx: LayerCtx) -> Setup:
        b = ctx.bottom(0)
        c = 1 if len(b) == 1 else b[1]
        return Setup([b], [(c,), (c,), (1,)])

    def flops(self, ctx: LayerCtx) -> Flops:
        """``batch_norm_layer.cpp`` Forward: subtract the mean (an add per element: the
        broadcast is a GEMM with ones), add eps and take the square root per channel, divide
        per element.  With the stored statistics (``use_global_stats``, TEST's default) the
        mean and variance are first scaled by 1/the stored factor (a divide, 2C multiplies);
        with the batch's (TRAIN) the mean and the variance are each a sum per element, a
        scale per (item, channel) (the GEMV's alpha) and a sum over the batch, the variance
        of the squares (a multiply per element), and the moving averages are updated (2C
        multiply-adds each, one more for the factor, and a divide for the bias correction).
        netscope's analyzer counts the TEST form's adds and divides per element."""
        b = ctx.bottom(0)
        n = count(b)
        c = 1 if len(b) == 1 else b[1]
        bn = ctx.param.batch_norm_param
        global_stats = bn.use_global_stats if bn.HasField("use_global_stats") else ctx.phase == "TEST"
        per_channel = Flops(adds=c, exps=c)  # + eps, sqrt
        if global_stats:
            return per_channel + Flops(macs=2 * c, adds=n, divides=n + 1)
        nc = (b[0] if b else 1) * c
        stats = 2 * Flops(macs=nc, adds=n + nc)  # mean and variance: sums, alpha, batch sums
        moving = Flops(macs=4 * c + 1, adds=1, divides=1)
        return per_channel + stats + moving + Flops(macs=n, adds=n, divides=n)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``batch_norm_layer.cpp``/``.cu``: multipliers of ones filled on the host in
        Reshape (``batch_sum_multiplier_`` [N], ``spatial_sum_multiplier_`` [H*W]);
        ``mean_``/``variance_`` [C], ``num_by_chans_`` [N*C], ``temp_`` and ``x_norm_``
        (bottom-sized) in Forward; in place, Backward copies the top diff into
        ``x_norm_``'s diff (bottom-sized) first."""

        b = ctx.bottom(0)
        n, c = b[0] if b else 1, (b[1] if len(b) > 1 else 1)
        spatial = count(b) // max(1, n * c)
        full = count(b) * 4
        bs = BufferSet(env)
        bs.host_then_compute("batch_sum_multiplier", n * 4)
        bs.host_then_compute("spatial_sum_multiplier", spatial * 4)
        bs.add("mean", c * 4).add("variance", c * 4).add("num_by_chans", n * c * 4)
        bs.add("temp", full, note="bottom-sized (X-EX)^2 / std")
        bs.add("x_norm", full, note="normalized output kept for backward")
        if ctx.tops and ctx.bottoms and ctx.tops[0] == ctx.bottoms[0]:
            bs.add("x_norm_diff", full, "backward", note="in place: copy of the top diff")
        return bs.items

    def forward_touches(self, v: View) -> list[Touch]:
        """The mean and variance (blobs 0, 1) where the layer computes; the moving-average
        count (blob 2) is read and updated with ``cpu_data`` even in Forward_gpu
        (batch_norm_layer.cu:24-25, 62-63)."""
        s = v.side
        return [Touch(BOTTOM, 0, DATA, s), Touch(PARAM, 0, DATA, s), Touch(PARAM, 1, DATA, s),
                Touch(PARAM, 2, DATA, "host"), Touch(TOP, 0, DATA, s)]

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        s = v.side
        return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)]


@register
class LRN(ElementwiseRule):
    """ACROSS_CHANNELS (Caffe, CPU and GPU) and cuDNN LRN/LCN: Backward touches top and bottom
    diff unconditionally.  Caffe's WITHIN_CHANNEL runs internal layers only when propagating."""

    type = "LRN"

    def setup(self, ctx: LayerCtx) -> Setup:
        size = ctx.param.lrn_param.local_size
        if size % 2 != 1:  # lrn_layer.cpp:12 (LayerSetUp, shared by the cuDNN layers)
            raise ctx.fail(f"LRN only supports odd values for local_size, not {size} "
                           f"(lrn_layer.cpp:12)")
        return super().setup(ctx)

    def engine(self, param, env: MemoryEnv, notes: Optional[list] = None) -> str:
        """``GetLRNLayer``: WITHIN_CHANNEL runs as CuDNNLCN, ACROSS_CHANNELS as CuDNNLRN
        unless ``local_size`` exceeds ``CUDNN_LRN_MAX_N``."""
        lp = param.lrn_param
        decided = factory_engine(lp.engine, env)
        if decided is not None:
            return decided
        if lp.norm_region == 1:  # WITHIN_CHANNEL -> CuDNNLCN
            return CUDNN
        return CAFFE if lp.local_size > CUDNN_LRN_MAX_N else CUDNN

    def flops(self, ctx: LayerCtx) -> Flops:
        """``lrn_layer.cpp``.  ACROSS_CHANNELS (``CrossChannelForward_cpu``): square every
        element, sum ``local_size`` squares (times alpha/size, a multiply-add each) for the
        first channel and slide the window over the others (one in, one out: two
        multiply-adds per element), then ``scale^-beta`` (a pow) times the input.  The GPU
        kernel slides the same window.  WITHIN_CHANNEL runs inner layers: a Power (square:
        a pow), an AVE Pooling of local_size (pad (size-1)/2), a Power (alpha * x + 1, to
        -beta) and an Eltwise PROD.  cuDNN's LRN/LCN do the same arithmetic; counted as
        Caffe's.  netscope's analyzer counts local_size multiply-adds, an add, a pow and two
        divides per element: Caffe's sliding window needs fewer, and no divide."""
        lp = ctx.param.lrn_param
        num, channels, height, width = (legacy_dim(ctx, ctx.bottom(0), i) for i in range(4))
        n = num * channels * height * width
        if lp.norm_region == 1:  # WITHIN_CHANNEL
            pp = caffe_pb2.PoolingParameter(pool=1, kernel_size=lp.local_size,
                                            pad=(lp.local_size - 1) // 2, stride=1)
            return Flops(macs=2 * n, adds=n, exps=2 * n) + \
                pool_flops(ctx, pp, (num, channels, height, width))
        spatial = height * width
        window = num * spatial * (lp.local_size + 2 * (channels - 1))
        return Flops(macs=2 * n + window, exps=n)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``lrn_layer.cpp``/``.cu``, ``cudnn_lcn_layer.cpp``.  Caffe ACROSS_CHANNELS:
        ``scale_`` (bottom-sized); its CPU code also allocates temporaries per call:
        ``padded_square`` [(C+size-1)*H*W] in Forward, ``padded_ratio`` [(C+size-1)*H*W] and
        ``accum_ratio`` [H*W] (data and diff) in Backward.  Caffe WITHIN_CHANNEL runs inner
        Split/Power/Pooling(AVE)/Power/Eltwise layers: three bottom-sized outputs, and when
        propagating down five bottom-sized diffs.  CuDNNLCN: two bottom-sized temporaries
        ``cudaMalloc``-ed in Reshape; CuDNNLRN: nothing."""

        b = ctx.bottom(0)
        lp = ctx.param.lrn_param
        full = count(b) * 4
        within = lp.norm_region == 1
        bs = BufferSet(env)
        if self.engine(ctx.param, env) == CUDNN:
            if within:
                bs.add("tempData1", full, "setup", side="gpu")
                bs.add("tempData2", full, "setup", side="gpu")
            return bs.items
        if within:
            for name in ("square_output", "pool_output", "power_output"):
                bs.add(name, full)
            for name in ("product_input_diff", "square_input_diff", "square_output_diff",
                         "pool_output_diff", "power_output_diff"):
                bs.add(name, full, "backward", needs="bottom_diff")
            return bs.items
        bs.add("scale", full, note="bottom-sized normalizer")
        if not env.gpu and len(b) == 4:
            _, c, h, w = b
            padded = (c + lp.local_size - 1) * h * w * 4
            bs.add("padded_square", padded, transient=True, note="CPU temporary per call")
            bs.add("padded_ratio", padded, "backward", transient=True)
            bs.add("accum_ratio", h * w * 4, "backward", transient=True)
            bs.add("accum_ratio_diff", h * w * 4, "backward", transient=True)
        return bs.items

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        s = v.side
        within = v.param.lrn_param.norm_region == 1
        if v.engine == CAFFE and within:
            return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)] if pd and pd[0] else []
        return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)]


@register
class MVN(ElementwiseRule):
    """Reshape goes through the legacy accessors: the top is always 4-D, (num, channels,
    height, width) of the bottom padded with 1s, and a bottom of more than 4 axes is refused
    (mvn_layer.cpp:11-12, blob.hpp:138-151).  Backward reads the top diff and writes the
    bottom diff before checking propagate_down."""

    type = "MVN"

    def flops(self, ctx: LayerCtx) -> Flops:
        """``mvn_layer.cpp``: the mean per row (a sum per element, the GEMV's 1/dim per row),
        subtracted (an add per element); with ``normalize_variance`` the squares (a multiply
        per element), their mean likewise, per row a sqrt and + eps, and a divide per
        element.  A row is an item (across_channels) or an (item, channel)."""
        mp = ctx.param.mvn_param
        b = ctx.bottom(0)
        n = count(b)
        rows = b[0] if mp.across_channels else b[0] * (b[1] if len(b) > 1 else 1)
        out = Flops(macs=rows, adds=2 * n)
        if mp.normalize_variance:
            out = out + Flops(macs=n + rows, adds=n + rows, exps=rows, divides=n)
        return out

    def setup(self, ctx: LayerCtx) -> Setup:
        # mvn_layer.cpp:11-12: top[0]->Reshape(num(), channels(), height(), width())
        return Setup([legacy_dims(ctx, ctx.bottom(0))])

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``mvn_layer.cpp``: ``sum_multiplier_`` of ones ([C*H*W] across channels, else
        [H*W]) filled on the host in Reshape; ``mean_``/``variance_`` [N*C] and ``temp_``
        (bottom-sized) in Forward (all sized by the legacy accessors, mvn_layer.cpp:13-24)."""

        b = ctx.bottom(0)
        n, c, h, w = legacy_dims(ctx, b)
        hw = h * w
        mult = (c * hw) if ctx.param.mvn_param.across_channels else hw
        bs = BufferSet(env)
        bs.host_then_compute("sum_multiplier", mult * 4)
        bs.add("mean", n * c * 4)
        if ctx.param.mvn_param.normalize_variance:
            bs.add("variance", n * c * 4)
        bs.add("temp", count(b) * 4, note="bottom-sized")
        return bs.items

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return top_and_bottom_diff_always(v, ppd)


def softmax_buffers(ctx: LayerCtx, env, engine: str, prefix: str = "") -> list:
    """``softmax_layer.cpp``: ``sum_multiplier_`` [C] filled on the host in Reshape
    (softmax_layer.cpp:15-18) and read only by the CPU code: Forward_gpu and Backward_gpu use
    ``scale_`` and kernels (softmax_layer.cu:86-141), and cuDNN's layer never reads it, so it
    is never on the device; Caffe's engine also keeps ``scale_`` [outer*inner]."""

    b = ctx.bottom(0)
    axis = ctx.canonical_axis(ctx.param.softmax_param.axis, len(b))
    channels = b[axis]
    bs = BufferSet(env)
    bs.host_then_compute(prefix + "sum_multiplier", channels * 4, then="")
    if engine != CUDNN:
        bs.add(prefix + "scale", count(b) // max(1, channels) * 4)
    return bs.items


def softmax_flops(ctx: LayerCtx) -> Flops:
    """``softmax_layer.cpp``/``.cu``, per element: the max over the channels (a comparison),
    that max subtracted (an add: a GEMM with ones), an exp, the sum over the channels (an
    add) and a divide.  netscope's analyzer leaves out the max."""
    return count(ctx.bottom(0)) * Flops(comparisons=1, adds=2, exps=1, divides=1)


@register
class Softmax(ElementwiseRule):
    """Caffe's softmax Backward touches top and bottom diff unconditionally; cuDNN's only when
    propagating."""

    type = "Softmax"

    def engine(self, param, env: MemoryEnv, notes: Optional[list] = None) -> str:
        """``GetSoftmaxLayer``: cuDNN whenever the factory may choose it."""
        return factory_engine(param.softmax_param.engine, env) or CUDNN

    def flops(self, ctx: LayerCtx) -> Flops:
        return softmax_flops(ctx)

    def setup(self, ctx: LayerCtx) -> Setup:
        b = ctx.bottom(0)
        # softmax_layer.cpp:12-13: CanonicalAxisIndex refuses an axis out of range
        ctx.canonical_axis(ctx.param.softmax_param.axis, len(b))
        return Setup([b])

    def buffers(self, ctx: LayerCtx, env) -> list:
        return softmax_buffers(ctx, env, self.engine(ctx.param, env))

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        if v.engine == CUDNN:
            return super().backward_touches(v, pd, ppd)
        s = v.side
        return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)]


@register
class Scale(LayerRule):
    """Scale's Backward, when the scale gradient is needed (param, or bottom 1 propagated):
    reads the top diff and writes the product into the scale's diff when the scale is
    element-wise, into ``temp_`` when in place, else into **bottom 0's diff** (scratch, even
    when bottom 0 is not propagated to).  The bias (a Bias layer inside) reads the top diff
    and writes the bias diff."""

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

    def flops(self, ctx: LayerCtx) -> Flops:
        """``scale_layer.cpp``: a multiply per element (``caffe_cpu_scale``); the bias term's
        inner Bias layer an add per element."""
        n = count(ctx.bottom(0))
        return Flops(macs=n, adds=n if ctx.param.scale_param.bias_term else 0)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``scale_layer.cpp``/``.cu``: ``sum_multiplier_`` [max(outer, inner)] of ones
        (host, Reshape); in place, ``temp_`` keeps a bottom-sized copy of the input; the scale
        gradient of a non-element-wise scale sums through ``sum_result_`` [outer*scale]; a
        bias term adds an inner Bias layer with its ``bias_multiplier_`` [inner]."""

        outer, scale_dim, inner = _scale_dims(ctx)
        b = ctx.bottom(0)
        sp = ctx.param.scale_param
        in_place = bool(ctx.tops) and ctx.tops[0] == ctx.bottoms[0]
        bs = BufferSet(env)
        bs.host_then_compute("sum_multiplier", max(outer, inner) * 4, then="backward",
                             needs="any")
        if in_place:
            bs.add("temp", count(b) * 4, note="copy of the input (in place)")
        eltwise = count(b) == scale_dim
        if not eltwise and inner != 1 and outer * scale_dim != 1 and outer != 1:
            needs = "param_diff" if len(ctx.bottoms) == 1 else "bottom_diff"
            bs.add("sum_result", outer * scale_dim * 4, "backward", needs=needs)
        if sp.bias_term:
            # the inner Bias layer's multiplier: Forward_gpu is the fused ScaleBiasForward
            # kernel (scale_layer.cu:44-50); only its Backward reads it on the device
            # (scale_layer.cu:61-63 -> bias_layer.cu:50), see backward_touches
            bs.host_then_compute("bias_multiplier", inner * 4, then="", note="inner Bias layer")
        return bs.items

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        s = v.side
        out: list[Touch] = []
        scale_param = v.n_bottoms == 1
        bias = v.param.scale_param.bias_term
        if bias and ppd and ppd[-1] and (v.n_params + v.n_bottoms >= 2):
            out += [Touch(TOP, 0, DIFF, s), Touch(PARAM, v.n_params - 1, DIFF, s),
                    Touch(BUFFER, "bias_multiplier", DATA, s)]
        need_scale = (not scale_param and len(pd) > 1 and pd[1]) or \
                     (scale_param and ppd and ppd[0])
        if need_scale:
            out.append(Touch(TOP, 0, DIFF, s))
            scale_shape = v.param_shapes[0] if scale_param and v.param_shapes else \
                (v.bottom_shapes[1] if len(v.bottom_shapes) > 1 else ())
            eltwise = bool(v.bottom_shapes) and count(v.bottom_shapes[0]) == count(scale_shape)
            if eltwise:
                out.append(Touch(PARAM, 0, DIFF, s) if scale_param else Touch(BOTTOM, 1, DIFF, s))
            elif not v.in_place[0]:
                out.append(Touch(BOTTOM, 0, DIFF, s))
            if not eltwise:
                out.append(Touch(PARAM, 0, DIFF, s) if scale_param else Touch(BOTTOM, 1, DIFF, s))
        if pd and pd[0]:
            out += [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)]
        return out


def _scale_dims(ctx: LayerCtx) -> tuple[int, int, int]:
    """(outer_dim, scale_dim, inner_dim) as ``ScaleLayer::Reshape`` computes them."""
    b = ctx.bottom(0)
    sp = ctx.param.scale_param
    if len(ctx.bottoms) > 1:
        scale = tuple(ctx.bottom(1))
    else:
        scale = tuple(ctx.param_shapes[0]) if ctx.param_shapes else ()
    axis = 0 if len(scale) == 0 else ctx.canonical_axis(sp.axis, len(b))
    return count(b[:axis]), count(scale), count(b[axis + len(scale):])


@register
class Bias(LayerRule):
    """In place, Backward never writes bottom 0's diff (it is the top's)."""

    type = "Bias"

    def setup(self, ctx: LayerCtx) -> Setup:
        bp = ctx.param.bias_param
        b = ctx.bottom(0)
        if len(ctx.bottoms) > 1:
            return Setup([b])
        return Setup([b], [axis_span_shape(ctx, b, bp.axis, bp.num_axes)])

    def flops(self, ctx: LayerCtx) -> Flops:
        """``bias_layer.cpp``: an add per element (a GEMM with ones)."""
        return Flops(adds=count(ctx.bottom(0)))

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``bias_layer.cpp``: ``bias_multiplier_`` [inner] of ones, host in Reshape; on the
        device only when Backward computes the bias gradient (see backward_touches)."""

        b = ctx.bottom(0)
        bias = tuple(ctx.bottom(1)) if len(ctx.bottoms) > 1 else \
            (tuple(ctx.param_shapes[0]) if ctx.param_shapes else ())
        axis = 0 if not bias else ctx.canonical_axis(ctx.param.bias_param.axis, len(b))
        inner = count(b[axis + len(bias):])
        return BufferSet(env).host_then_compute("bias_multiplier", inner * 4, then="").items

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        """Forward_gpu is a kernel on bottom and bias (bias_layer.cu:20-31); Backward_gpu
        reads ``bias_multiplier_.gpu_data()`` for the bias gradient (bias_layer.cu:41-50)."""
        s = v.side
        out: list[Touch] = []
        if pd and pd[0] and not v.in_place[0]:
            out += [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)]
        if v.n_bottoms > 1 and len(pd) > 1 and pd[1]:
            out += [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 1, DIFF, s),
                    Touch(BUFFER, "bias_multiplier", DATA, s)]
        if v.n_params and ppd and ppd[0]:
            out += [Touch(TOP, 0, DIFF, s), Touch(PARAM, 0, DIFF, s),
                    Touch(BUFFER, "bias_multiplier", DATA, s)]
        return out
