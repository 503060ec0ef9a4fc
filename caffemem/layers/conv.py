"""Convolution, Deconvolution and Im2col (Caffe's base_conv_layer / im2col_layer).

Kernel, pad, stride and dilation come either as repeated fields (one value for all spatial
axes, or one per axis) or as the 2-D ``*_h``/``*_w`` pairs.  Output size per spatial axis:

- convolution:   (in + 2*pad - (dilation*(kernel-1) + 1)) // stride + 1
- deconvolution: stride*(in - 1) + dilation*(kernel-1) + 1 - 2*pad

(C++ integer division, which truncates toward zero.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..buffers import (CUDNN_STREAMS_PER_GROUP, CUDNN_WORKSPACE_LIMIT, MiB, BufferSet, Kind,
                       MemoryEnv)
from ..pb import caffe_pb2
from .base import (BOTTOM, CAFFE, CUDNN, DIFF, ENGINE_CUDNN, NONE, PARAM, TOP, Flops, LayerCtx,
                   LayerRule, Setup, Touch, View, factory_engine, top_and_bottom_diff_always,
                   touch_all, count)
from .registry import register


def cdiv(a: int, b: int) -> int:
    """C++ ``a / b`` for ints: truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@dataclass
class ConvGeometry:
    """Everything of a convolution that depends on the param and the bottom shape."""

    axis: int  # channel axis
    channels: int
    num_output: int
    group: int
    kernel: list[int]
    pad: list[int]
    stride: list[int]
    dilation: list[int]
    bias: bool

    @property
    def is_1x1(self) -> bool:
        """Caffe's ``is_1x1_``: kernel 1, stride 1, pad 0 on every axis (im2col skipped)."""
        return all(k == 1 for k in self.kernel) and all(s == 1 for s in self.stride) \
            and all(p == 0 for p in self.pad)

    @property
    def kernel_dim(self) -> int:
        """Rows of the im2col matrix per group: (C/group) * prod(kernel)."""
        return self.channels // self.group * count(self.kernel)


def _spatial(ctx: LayerCtx, cp, name: str, n: int, default: int, h_field: str, w_field: str) -> list[int]:
    values = list(getattr(cp, name))
    has_hw = cp.HasField(h_field) or cp.HasField(w_field)
    if has_hw:
        if n != 2:
            raise ctx.fail(f"{h_field}/{w_field} can only be used for 2D convolution")
        if values:
            raise ctx.fail(f"either {name} or {h_field}/{w_field} should be specified; not both")
        return [getattr(cp, h_field), getattr(cp, w_field)]
    if not values:
        return [default] * n
    if len(values) not in (1, n):
        raise ctx.fail(f"{name} must be specified once, or once per spatial dimension "
                       f"({name} specified {len(values)} times; {n} spatial dims)")
    return values * n if len(values) == 1 else values


def geometry(ctx: LayerCtx, cp=None) -> ConvGeometry:
    """Read a ConvolutionParameter against bottom 0 (``BaseConvolutionLayer::LayerSetUp``)."""
    cp = cp if cp is not None else ctx.param.convolution_param
    shape = ctx.bottom(0)
    axis = ctx.canonical_axis(cp.axis, len(shape))
    n = len(shape) - axis - 1
    if n < 1:
        raise ctx.fail(f"bottom shape {list(shape)} has no spatial axes after channel axis {axis}")
    if cp.HasField("kernel_h") or cp.HasField("kernel_w"):
        if n != 2:
            raise ctx.fail("kernel_h & kernel_w can only be used for 2D convolution")
        if len(cp.kernel_size):
            raise ctx.fail("either kernel_size or kernel_h/w should be specified; not both")
        kernel = [cp.kernel_h, cp.kernel_w]
    else:
        ks = list(cp.kernel_size)
        if not ks:
            raise ctx.fail("kernel_size (or kernel_h and kernel_w) is required")
        if len(ks) not in (1, n):
            raise ctx.fail(f"kernel_size must be specified once, or once per spatial dimension "
                           f"(kernel_size specified {len(ks)} times; {n} spatial dims)")
        kernel = ks * n if len(ks) == 1 else ks
    pad = _spatial(ctx, cp, "pad", n, 0, "pad_h", "pad_w")
    stride = _spatial(ctx, cp, "stride", n, 1, "stride_h", "stride_w")
    dil = list(cp.dilation)
    if len(dil) not in (0, 1, n):
        raise ctx.fail("dilation must be specified once, or once per spatial dimension")
    dilation = [1] * n if not dil else (dil * n if len(dil) == 1 else dil)
    for k in kernel:
        if k <= 0:
            raise ctx.fail("filter dimensions must be nonzero")
    for s in stride:
        if s <= 0:
            raise ctx.fail("stride dimensions must be nonzero")
    channels = shape[axis]
    group = cp.group
    if cp.num_output <= 0:
        raise ctx.fail("num_output must be positive")
    if group <= 0 or channels % group or cp.num_output % group:
        raise ctx.fail(f"channels ({channels}) and num_output ({cp.num_output}) must be "
                       f"divisible by group ({group})")
    return ConvGeometry(axis, channels, cp.num_output, group, kernel, pad, stride, dilation,
                        cp.bias_term)


def conv_out(ctx: LayerCtx, g: ConvGeometry, size: int, i: int) -> int:
    ext = g.dilation[i] * (g.kernel[i] - 1) + 1
    out = cdiv(size + 2 * g.pad[i] - ext, g.stride[i]) + 1
    return ctx.check_positive(
        f"output size of spatial axis {i}", out,
        f"({size} + 2*{g.pad[i]} - {ext}) / {g.stride[i]} + 1")


def deconv_out(ctx: LayerCtx, g: ConvGeometry, size: int, i: int) -> int:
    ext = g.dilation[i] * (g.kernel[i] - 1) + 1
    out = g.stride[i] * (size - 1) + ext - 2 * g.pad[i]
    return ctx.check_positive(
        f"output size of spatial axis {i}", out,
        f"{g.stride[i]}*({size} - 1) + {ext} - 2*{g.pad[i]}")


def col2im_adds(g: ConvGeometry, cols, image) -> int:
    """Additions ``col2im_cpu``/``col2im_nd_cpu`` make per channel: every (kernel offset,
    column position) whose image position falls inside ``image`` (the spatial sizes; the
    columns' are ``cols``).  The axes are independent, so the count is a product of per-axis
    sums."""
    total = 1
    for d, (n_col, size) in enumerate(zip(cols, image)):
        inside = 0
        for k in range(g.kernel[d]):
            offset = k * g.dilation[d] - g.pad[d]
            inside += sum(1 for i in range(n_col) if 0 <= offset + i * g.stride[d] < size)
        total *= inside
    return total


def _check_same_bottoms(ctx: LayerCtx) -> None:
    first = ctx.bottom(0)
    for i, s in enumerate(ctx.bottom_shapes[1:], 1):
        if s != first:
            raise ctx.fail(f"all bottoms must have the same shape; bottom {i} is {list(s)}, "
                           f"bottom 0 is {list(first)}")


class BaseConvolution(LayerRule):
    """``BaseConvolutionLayer``: what Convolution and Deconvolution share.  Subclasses say
    how one spatial axis maps (``out_size``) and how the weight blob is laid out.

    Backward, CAFFE engine: the weight diff and every top diff are touched unconditionally;
    the bottom diffs unconditionally on the CPU, on the GPU only when the weight gradient or
    propagate_down is needed.  cuDNN: the weight diff only if its gradient is needed, top
    diffs always, bottom diffs only when propagating."""

    deconv: bool = False

    def engine(self, param, env: MemoryEnv, notes: Optional[list] = None) -> str:
        """``GetConvolutionLayer`` (layer_factory.cpp): cuDNN unless a dilation > 1 (an
        explicit CUDNN with dilation is fatal in Caffe; reported as CAFFE and said)."""
        cp = param.convolution_param
        decided = factory_engine(cp.engine, env)
        if decided is not None:
            return decided
        if any(d > 1 for d in cp.dilation):
            if cp.engine == ENGINE_CUDNN and notes is not None:
                notes.append("engine CUDNN with dilation > 1: Caffe stops with \"CuDNN doesn't "
                             "support the dilated convolution\"; modeled as CAFFE")
            return CAFFE
        return CUDNN

    def cudnn_handles(self, param) -> int:
        """``CuDNNConvolutionLayer``: ``CUDNN_STREAMS_PER_GROUP`` handles per group."""
        return CUDNN_STREAMS_PER_GROUP * max(1, param.convolution_param.group)

    def fillers(self, param) -> list:
        cp = param.convolution_param
        return [cp.weight_filler, cp.bias_filler]

    def out_size(self, ctx: LayerCtx, g: ConvGeometry, size: int, i: int) -> int:
        raise NotImplementedError

    def weight_shape(self, g: ConvGeometry) -> tuple[int, ...]:
        raise NotImplementedError

    def setup(self, ctx: LayerCtx) -> Setup:
        g = geometry(ctx)
        _check_same_bottoms(ctx)
        b = ctx.bottom(0)
        spatial = [self.out_size(ctx, g, b[g.axis + 1 + i], i) for i in range(len(g.kernel))]
        top = tuple(b[:g.axis]) + (g.num_output,) + tuple(spatial)
        params = [self.weight_shape(g)]
        if g.bias:
            params.append((g.num_output,))
        return Setup([top] * len(ctx.bottoms), params)

    def buffers(self, ctx: LayerCtx, env) -> list:
        return conv_buffers(ctx, env, self.deconv, self.engine(ctx.param, env))

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        s = v.side
        out = touch_all(TOP, v.n_tops, DIFF, s)
        w, b = (ppd[0] if ppd else False), (ppd[1] if len(ppd) > 1 else False)
        if v.engine == CUDNN:
            if w:
                out.append(Touch(PARAM, 0, DIFF, s))
            if b and v.n_params > 1:
                out.append(Touch(PARAM, 1, DIFF, s))
            out += [Touch(BOTTOM, i, DIFF, s) for i, p in enumerate(pd) if p]
            return out
        if v.n_params:
            out.append(Touch(PARAM, 0, DIFF, s))
        if b and v.n_params > 1:
            out.append(Touch(PARAM, 1, DIFF, s))
        for i in range(v.n_bottoms):
            p = pd[i] if i < len(pd) else False
            if s == "host" or w or p:
                out.append(Touch(BOTTOM, i, DIFF, s))
        return out


@register
class Convolution(BaseConvolution):
    type = "Convolution"
    out_size = staticmethod(conv_out)

    def weight_shape(self, g: ConvGeometry) -> tuple[int, ...]:
        return (g.num_output, g.channels // g.group, *g.kernel)

    def flops(self, ctx: LayerCtx) -> Flops:
        """``forward_cpu_gemm``: per image and group a GEMM of (num_output/group) x
        out_spatial x kernel_dim, i.e. kernel_dim multiply-adds per output, whatever the
        dilation (it spreads the window, not its size); im2col only copies.  The bias
        (``forward_cpu_bias``: a GEMM with a vector of ones) is one add per output.
        netscope's analyzer leaves out ``group`` (it charges C*num_output per pixel); Caffe's
        GEMM per group does C/group."""
        g = geometry(ctx)
        out = sum(count(t) for t in ctx.top_shapes)
        return Flops(macs=out * g.kernel_dim, adds=out if g.bias else 0)


@register
class Deconvolution(BaseConvolution):
    """Deconvolution's GPU Backward also takes ``bottom[i]->mutable_gpu_diff()`` up front."""

    type = "Deconvolution"
    deconv = True
    out_size = staticmethod(deconv_out)

    def weight_shape(self, g: ConvGeometry) -> tuple[int, ...]:
        return (g.channels, g.num_output // g.group, *g.kernel)

    def flops(self, ctx: LayerCtx) -> Flops:
        """Forward is convolution's ``backward_cpu_gemm``: per image and group a GEMM of
        kernel_dim ((num_output/group) * prod(kernel)) x in_spatial x (C/group), i.e.
        (num_output/group) * prod(kernel) multiply-adds per input element; then col2im adds
        every column entry that lands inside the output (none when 1x1: the GEMM writes the
        top directly), and the bias adds one per output.  netscope's analyzer approximates
        C*num_output*out_pixels*(k/stride)^2 and leaves out group and col2im."""
        g = geometry(ctx)
        per_input = g.num_output // g.group * count(g.kernel)
        macs = sum(count(b) for b in ctx.bottom_shapes) * per_input
        adds = 0
        for b, t in zip(ctx.bottom_shapes, ctx.top_shapes):
            if not g.is_1x1:
                images = count(b[:g.axis])
                adds += images * g.num_output * col2im_adds(g, b[g.axis + 1:], t[g.axis + 1:])
            if g.bias:
                adds += count(t)
        return Flops(macs=macs, adds=adds)

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        out = super().backward_touches(v, pd, ppd)
        if v.engine == CAFFE:
            have = {(t.what, t.index, t.attr) for t in out}
            out += [Touch(BOTTOM, i, DIFF, v.side) for i in range(v.n_bottoms)
                    if (BOTTOM, i, DIFF) not in have]
        return out


@register
class Im2col(LayerRule):
    """Backward reads the top diff and writes the bottom diff before checking
    propagate_down."""

    type = "Im2col"

    def setup(self, ctx: LayerCtx) -> Setup:
        cp = ctx.param.convolution_param
        # Im2col has no num_output; geometry() insists on one, so read it with a stand-in.
        shape = ctx.bottom(0)
        g = geometry(ctx, _with_num_output(cp, shape[ctx.canonical_axis(cp.axis, len(shape))]))
        spatial = [conv_out(ctx, g, shape[g.axis + 1 + i], i) for i in range(len(g.kernel))]
        return Setup([tuple(shape[:g.axis]) + (g.channels * count(g.kernel),) + tuple(spatial)])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # im2col copies

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return top_and_bottom_diff_always(v, ppd)


def _with_num_output(cp, channels: int):
    copy = caffe_pb2.ConvolutionParameter()
    copy.CopyFrom(cp)
    copy.num_output = channels
    copy.group = 1
    return copy


def conv_buffers(ctx: LayerCtx, env, deconv: bool, engine: str) -> list:
    """Convolution/Deconvolution private allocations (``base_conv_layer.cpp``,
    ``cudnn_conv_layer.cpp``).

    - ``bias_multiplier_`` [top spatial]: filled with ones on the host in Reshape (eager),
      read on the GPU by the CAFFE engine's bias gemm; cuDNN never reads it;
    - CAFFE engine: ``col_buffer_`` [kernel_dim*group, spatial], one image, spatial = the
      output's (the input's for deconvolution).  A convolution touches it in Forward unless
      1x1 (kernel 1, stride 1, pad 0); a 1x1 convolution still takes it in
      ``backward_*_gemm`` when propagating to its bottom.  Deconvolution's Forward is
      ``backward_*_gemm``: always;
    - cuDNN: the workspace, ``cudaMalloc``-ed in Reshape, at most 3 x group x 8 MiB (each
      algorithm is picked under an 8 MiB limit); modeled at that bound;
    - gpu mode: the ``Blob<int>`` geometry (``kernel_shape_``, ``stride_``, ``pad_``,
      ``dilation_`` [axes], ``conv_input_shape_`` [axes + 1]) written on the host in
      LayerSetUp/Reshape (pinned); the CAFFE engine's N-D im2col (not 2-D, or
      ``force_nd_im2col``) reads them and ``col_buffer_``'s shape with ``gpu_data()``
      (base_conv_layer.hpp:128-155), so they reach the device at the first im2col (in cpu mode
      they are part of the layer's bookkeeping estimate).
    """

    g = geometry(ctx)
    bs = BufferSet(env)
    top, bottom = ctx.top_shapes[0], ctx.bottom(0)
    first = g.axis + 1
    if env.gpu:
        n = len(g.kernel)
        nd = (n != 2 or ctx.param.convolution_param.force_nd_im2col) and engine != CUDNN \
            and not g.is_1x1
        for name, axes in (("kernel_shape", n), ("stride", n), ("pad", n), ("dilation", n),
                           ("conv_input_shape", n + 1)):
            bs.host_then_compute(name, 4 * axes, then="forward" if nd else "",
                                 note="Blob<int> geometry")
        if nd:
            bs.add("col_buffer shape", 4 * (n + 1), "forward", side="gpu",
                   note="col_buffer_.gpu_shape(): its shape_data_ on the device")
    if g.bias:
        bs.host_then_compute("bias_multiplier", count(top[first:]) * 4,
                             then="forward" if engine != CUDNN else "",
                             note="ones for the bias gemm, filled on the host in Reshape")
    if engine == CUDNN:
        per_op = env.cudnn_workspace_bytes
        if per_op:
            bs.add("workspace", CUDNN_STREAMS_PER_GROUP * g.group * per_op, "setup",
                   Kind.WORKSPACE, side="gpu",
                   note=f"cuDNN workspace, 3 x group ({g.group}) x {per_op // MiB if per_op % MiB == 0 else per_op} "
                        f"{'MiB' if per_op % MiB == 0 else 'bytes'}"
                        + (" (Caffe's limit)" if per_op == CUDNN_WORKSPACE_LIMIT else ""))
        return bs.items
    if deconv:
        kernel_dim = g.num_output // g.group * count(g.kernel)
        spatial = count(bottom[first:])
    else:
        kernel_dim = g.kernel_dim
        spatial = count(top[first:])
    col = kernel_dim * g.group * spatial * 4
    note = f"im2col buffer [{kernel_dim * g.group} x {spatial}], one image"
    if deconv or not g.is_1x1:
        bs.add("col_buffer", col, "forward", Kind.IM2COL, note=note)
    else:
        bs.add("col_buffer", col, "backward", Kind.IM2COL, needs="bottom_diff",
               note=note + " (1x1: only backward_gemm takes it, when propagating down)")
    return bs.items
