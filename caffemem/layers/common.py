"""Layers that move, combine or reshape blobs: InnerProduct, Flatten, Reshape, Concat, Slice,
Eltwise, Split, Silence, Crop, Tile, Reduction, ArgMax, Embed, BatchReindex, Filter, Parameter."""

from __future__ import annotations

import math
from typing import Optional

from ..buffers import BufferSet
from .base import (BOTTOM, BUFFER, DATA, DIFF, NONE, PARAM, TOP, Flops, LayerCtx, LayerRule, Setup,
                   Touch, View, count, top_and_bottom_diff_always, touch_all)
from .registry import register

#: a top that is its bottom's memory, data and diff (``ShareData`` + ``ShareDiff``)
SHARES_TOP0_BOTTOM0 = [((TOP, 0, DATA), (BOTTOM, 0, DATA)), ((TOP, 0, DIFF), (BOTTOM, 0, DIFF))]


@register
class InnerProduct(LayerRule):
    type = "InnerProduct"

    def setup(self, ctx: LayerCtx) -> Setup:
        ip = ctx.param.inner_product_param
        b = ctx.bottom(0)
        axis = ctx.canonical_axis(ip.axis, len(b))
        k, n = count(b[axis:]), ip.num_output
        if n <= 0:
            raise ctx.fail("num_output must be positive")
        params = [(k, n) if ip.transpose else (n, k)]
        if ip.bias_term:
            params.append((n,))
        return Setup([tuple(b[:axis]) + (n,)], params)

    def fillers(self, param) -> list:
        ip = param.inner_product_param
        return [ip.weight_filler, ip.bias_filler]

    def flops(self, ctx: LayerCtx) -> Flops:
        """One GEMM, M x N x K (M*K = bottom count): K multiply-adds per output; the bias
        (a GEMM with a vector of ones) one add per output."""
        ip = ctx.param.inner_product_param
        out = count(ctx.top_shapes[0]) if ctx.top_shapes else 0
        return Flops(macs=count(ctx.bottom(0)) * ip.num_output, adds=out if ip.bias_term else 0)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``inner_product_layer.cpp``: ``bias_multiplier_`` [M] of ones, host in Reshape.
        Forward_gpu reads it on the device for M > 1 (the gemm, inner_product_layer.cu:26-29)
        but with M == 1 reads ``cpu_data()[0]`` (inner_product_layer.cu:15-20); Backward_gpu
        reads it on the device for the bias gradient (inner_product_layer.cu:53-57, see
        backward_touches)."""

        ip = ctx.param.inner_product_param
        if not ip.bias_term:
            return []
        m = _ip_rows(ctx.bottom_shapes[0], ip.axis)
        return BufferSet(env).host_then_compute("bias_multiplier", m * 4,
                                                then="forward" if m > 1 else "").items

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        out = super().backward_touches(v, pd, ppd)
        if len(ppd) > 1 and ppd[1] and v.param.inner_product_param.bias_term:
            out.append(Touch(BUFFER, "bias_multiplier", DATA, v.side))
        return out


def _ip_rows(bottom, axis: int) -> int:
    """InnerProduct's M_: the bottom's count before the (canonical) axis."""
    return count(bottom[:axis + len(bottom) if axis < 0 else axis])


@register
class Flatten(LayerRule):
    """Forward ``top->ShareData(bottom)``, Backward ``bottom->ShareDiff(top)``: no touches."""

    type = "Flatten"
    allows_in_place = False
    shares_data = True

    def setup(self, ctx: LayerCtx) -> Setup:
        fp = ctx.param.flatten_param
        b = ctx.bottom(0)
        start = ctx.canonical_axis(fp.axis, len(b))
        end = ctx.canonical_axis(fp.end_axis, len(b))
        return Setup([tuple(b[:start]) + (count(b[start:end + 1]),) + tuple(b[end + 1:])])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # a view of the bottom: nothing computed

    def shares(self, v: View) -> list[tuple[tuple, tuple]]:
        return SHARES_TOP0_BOTTOM0

    def forward_touches(self, v: View) -> list[Touch]:
        return []

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return []


@register
class Reshape(LayerRule):
    """``ReshapeLayer::Reshape`` shares data and diff; Forward/Backward are empty."""

    type = "Reshape"
    allows_in_place = False
    shares_data = True

    def setup(self, ctx: LayerCtx) -> Setup:
        rp = ctx.param.reshape_param
        b = ctx.bottom(0)
        nb = len(b)
        start = rp.axis if rp.axis >= 0 else nb + rp.axis + 1
        if not 0 <= start <= nb:
            raise ctx.fail(f"axis {rp.axis} out of range for a {nb}-D input blob")
        if rp.num_axes < -1:
            raise ctx.fail("num_axes must be >= 0, or -1 for all")
        end = nb if rp.num_axes == -1 else start + rp.num_axes
        if end > nb:
            raise ctx.fail("end_axis = axis + num_axes is out of range")
        dims = list(rp.shape.dim)
        inferred = [i for i, d in enumerate(dims) if d == -1]
        if len(inferred) > 1:
            raise ctx.fail("new shape contains multiple -1 dims; at most a single (1) value of -1 may be specified")
        top = list(b[:start]) + dims + list(b[end:])
        constant = 1
        for i, d in enumerate(dims):
            if d == 0:
                if start + i >= nb:
                    raise ctx.fail("new shape contains a 0, but there was no corresponding bottom axis to copy")
                top[start + i] = b[start + i]
            elif d > 0:
                constant *= d
            elif d < -1:
                raise ctx.fail(f"invalid dimension {d} in reshape_param.shape")
        if inferred:
            explicit = constant * count(b[:start]) * count(b[end:])
            for i, d in enumerate(dims):
                if d == 0:
                    explicit *= top[start + i]
            if explicit == 0 or count(b) % explicit:
                raise ctx.fail(f"bottom count ({count(b)}) must be divisible by the product of "
                               f"the specified dimensions ({explicit})")
            top[start + inferred[0]] = count(b) // explicit
        if count(top) != count(b):
            raise ctx.fail(f"output count ({count(top)}, shape {top}) must match input count ({count(b)})")
        return Setup([tuple(top)])

    shares = Flatten.shares
    forward_touches = Flatten.forward_touches
    backward_touches = Flatten.backward_touches

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # a view of the bottom: nothing computed


@register
class Concat(LayerRule):
    """One bottom: the top shares data and diff.  Backward reads the top diff before looking
    at propagate_down (CPU and GPU)."""

    type = "Concat"

    def setup(self, ctx: LayerCtx) -> Setup:
        cp = ctx.param.concat_param
        b0 = ctx.bottom(0)
        axis = cp.concat_dim if cp.HasField("concat_dim") else ctx.canonical_axis(cp.axis, len(b0))
        if axis >= len(b0):
            raise ctx.fail(f"concat axis {axis} out of range for a {len(b0)}-D blob")
        total = 0
        for i, s in enumerate(ctx.bottom_shapes):
            if len(s) != len(b0) or any(s[j] != b0[j] for j in range(len(b0)) if j != axis):
                raise ctx.fail(f"all inputs must have the same shape except on the concat axis "
                               f"{axis}: bottom 0 is {list(b0)}, bottom {i} is {list(s)}")
            total += s[axis]
        return Setup([tuple(b0[:axis]) + (total,) + tuple(b0[axis + 1:])])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # copies

    def shares(self, v: View) -> list[tuple[tuple, tuple]]:
        return SHARES_TOP0_BOTTOM0 if v.n_bottoms == 1 else []

    def forward_touches(self, v: View) -> list[Touch]:
        return [] if v.n_bottoms == 1 else super().forward_touches(v)

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        if v.n_bottoms == 1:
            return []
        return touch_all(TOP, v.n_tops, DIFF, v.side) + \
            [Touch(BOTTOM, i, DIFF, v.side) for i, p in enumerate(pd) if p]


@register
class Slice(LayerRule):
    """One top: shares data and diff with the bottom, no touches."""

    type = "Slice"

    def setup(self, ctx: LayerCtx) -> Setup:
        sp = ctx.param.slice_param
        b = ctx.bottom(0)
        axis = sp.slice_dim if sp.HasField("slice_dim") else ctx.canonical_axis(sp.axis, len(b))
        if axis >= len(b):
            raise ctx.fail(f"slice axis {axis} out of range")
        size, ntop = b[axis], len(ctx.tops)
        points = list(sp.slice_point)
        if points:
            if len(points) != ntop - 1:
                raise ctx.fail(f"{len(points)} slice points for {ntop} tops (need {ntop - 1})")
            bounds = [0] + points + [size]
            sizes = [bounds[i + 1] - bounds[i] for i in range(ntop)]
            if any(s <= 0 for s in sizes):
                raise ctx.fail(f"slice points {points} must increase within 0..{size}")
        else:
            if ntop == 0 or size % ntop:
                raise ctx.fail(f"number of top blobs ({ntop}) should evenly divide input slice axis ({size})")
            sizes = [size // ntop] * ntop
        return Setup([tuple(b[:axis]) + (s,) + tuple(b[axis + 1:]) for s in sizes])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # copies

    def shares(self, v: View) -> list[tuple[tuple, tuple]]:
        return SHARES_TOP0_BOTTOM0 if v.n_tops == 1 else []

    def forward_touches(self, v: View) -> list[Touch]:
        return [] if v.n_tops == 1 else super().forward_touches(v)

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return [] if v.n_tops == 1 else super().backward_touches(v, pd, ppd)


@register
class Eltwise(LayerRule):
    """Backward reads top data and diff unconditionally (CPU and GPU)."""

    type = "Eltwise"

    def setup(self, ctx: LayerCtx) -> Setup:
        b0 = ctx.bottom(0)
        for i, s in enumerate(ctx.bottom_shapes[1:], 1):
            if s != b0:
                raise ctx.fail(f"bottom {i} shape {list(s)} differs from bottom 0 shape {list(b0)}")
        return Setup([b0])

    def flops(self, ctx: LayerCtx) -> Flops:
        """``eltwise_layer.cpp``: PROD multiplies the bottoms in turn and MAX compares them in
        turn (k-1 per element for k bottoms); SUM ``caffe_axpy``s each bottom, times its
        coefficient, into the top: k-1 adds per element and a multiply per coefficient other
        than 1.  (netscope's analyzer charges one op per element whatever k.)"""
        ep = ctx.param.eltwise_param
        n, k = count(ctx.bottom(0)), len(ctx.bottom_shapes)
        if ep.operation == 0:  # PROD
            return Flops(macs=(k - 1) * n)
        if ep.operation == 2:  # MAX
            return Flops(comparisons=(k - 1) * n)
        scaled = sum(1 for c in ep.coeff if c != 1)
        return Flops(macs=scaled * n, adds=(k - 1) * n)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``eltwise_layer.cpp``: MAX keeps the winning bottom per element in ``max_idx_``
        (int, bottom-sized)."""

        if ctx.param.eltwise_param.operation != 2:  # MAX
            return []
        return BufferSet(env).add("max_idx", count(ctx.bottom(0)) * 4,
                                  note="winning bottom per element (int)").items

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return touch_all(TOP, v.n_tops, DIFF, v.side) + super().backward_touches(v, pd, ppd)


@register
class Split(LayerRule):
    """Tops ``ShareData`` the bottom; Backward (if propagate_down) sums the tops' own diffs."""

    type = "Split"
    allows_in_place = False
    shares_data = True

    def setup(self, ctx: LayerCtx) -> Setup:
        return Setup([ctx.bottom(0)] * len(ctx.tops))

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # shares the bottom (its Backward adds the diffs)

    def shares(self, v: View) -> list[tuple[tuple, tuple]]:
        return [((TOP, j, DATA), (BOTTOM, 0, DATA)) for j in range(v.n_tops)]

    def forward_touches(self, v: View) -> list[Touch]:
        return []


@register
class Silence(LayerRule):
    """Forward does nothing; Backward zeroes the diffs it is asked to propagate to."""

    type = "Silence"

    def setup(self, ctx: LayerCtx) -> Setup:
        return Setup([])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # nothing computed

    def forward_touches(self, v: View) -> list[Touch]:
        return []

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return [Touch(BOTTOM, i, DIFF, v.side) for i, p in enumerate(pd) if p]


@register
class Crop(LayerRule):
    """Forward reads bottom 0 only (bottom 1 gives just a shape); Backward touches the top
    and bottom 0 diffs before checking propagate_down."""

    type = "Crop"

    def setup(self, ctx: LayerCtx) -> Setup:
        cp = ctx.param.crop_param
        b0, b1 = ctx.bottom(0), ctx.bottom(1)
        start = ctx.canonical_axis(cp.axis, len(b0))
        offsets = list(cp.offset)
        if len(offsets) > 1 and len(offsets) != len(b0) - start:
            raise ctx.fail(f"number of offsets ({len(offsets)}) must be 1 or the number of cropped axes ({len(b0) - start})")
        top = list(b0)
        for i in range(start, len(b0)):
            off = offsets[0] if len(offsets) == 1 else (offsets[i - start] if offsets else 0)
            if i >= len(b1):
                raise ctx.fail(f"reference bottom {list(b1)} has no axis {i}")
            if b0[i] - off < b1[i]:
                raise ctx.fail(f"the crop for dimension {i} is out-of-bounds with size {b1[i]} and offset {off} (input size {b0[i]})")
            top[i] = b1[i]
        return Setup([tuple(top)])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # copies

    def buffers(self, ctx: LayerCtx, env) -> list:
        """Three ``Blob<int>`` of [num_axes]: ``offsets``, ``src_strides_``,
        ``dest_strides_`` (crop_layer.hpp:44-46), written on the host in Reshape
        (crop_layer.cpp:44-46, 72-76) and read with ``gpu_data()`` by Forward_gpu
        (crop_layer.cu:58-62) and Backward_gpu."""

        n = len(ctx.bottom(0)) * 4
        bs = BufferSet(env)
        for name in ("offsets", "src_strides", "dest_strides"):
            bs.host_then_compute(name, n, note="Blob<int> [num_axes]")
        return bs.items

    def forward_touches(self, v: View) -> list[Touch]:
        return [Touch(BOTTOM, 0, DATA, v.side)] + touch_all(TOP, v.n_tops, DATA, v.side)

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return top_and_bottom_diff_always(v, ppd)


@register
class Tile(LayerRule):
    type = "Tile"

    def setup(self, ctx: LayerCtx) -> Setup:
        tp = ctx.param.tile_param
        b = ctx.bottom(0)
        axis = ctx.canonical_axis(tp.axis, len(b))
        if tp.tiles <= 0:
            raise ctx.fail("number of tiles must be positive")
        top = list(b)
        top[axis] *= tp.tiles
        return Setup([tuple(top)])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # copies


@register
class Reduction(LayerRule):
    type = "Reduction"

    def setup(self, ctx: LayerCtx) -> Setup:
        b = ctx.bottom(0)
        axis = ctx.canonical_axis(ctx.param.reduction_param.axis, len(b))
        return Setup([tuple(b[:axis])])

    def flops(self, ctx: LayerCtx) -> Flops:
        """``reduction_layer.cpp``, per output: SUM and MEAN dot the slice with ones (adds),
        ASUM sums absolute values (an abs, counted as a comparison, and an add), SUMSQ dots it
        with itself (multiply-adds); then ``caffe_scal`` by the coefficient (MEAN's is
        coeff/dim) unless it is 1."""
        rp = ctx.param.reduction_param
        b = ctx.bottom(0)
        axis = ctx.canonical_axis(rp.axis, len(b))
        num, n = count(b[:axis]), count(b)
        dim = count(b[axis:])
        coeff = rp.coeff / dim if rp.operation == 4 and dim else rp.coeff
        scale = num if coeff != 1 else 0
        if rp.operation == 3:  # SUMSQ
            return Flops(macs=n + scale)
        if rp.operation == 2:  # ASUM
            return Flops(macs=scale, comparisons=n, adds=n)
        return Flops(macs=scale, adds=n)  # SUM, MEAN

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``reduction_layer.cpp``: SUM and MEAN keep ``sum_multiplier_`` [dim] of ones."""

        rp = ctx.param.reduction_param
        if rp.operation not in (1, 4):  # SUM, MEAN
            return []
        b = ctx.bottom(0)
        dim = count(b[ctx.canonical_axis(rp.axis, len(b)):])
        return BufferSet(env).host_then_compute("sum_multiplier", dim * 4).items


@register
class ArgMax(LayerRule):
    """CPU only; Backward is NOT_IMPLEMENTED (``caffe time`` aborts on it)."""

    type = "ArgMax"
    has_backward = False

    def cpu_only(self, param) -> bool:
        return True

    def setup(self, ctx: LayerCtx) -> Setup:
        ap = ctx.param.argmax_param
        b = ctx.bottom(0)
        if ap.HasField("axis"):
            axis = ctx.canonical_axis(ap.axis, len(b))
            if ap.top_k > b[axis]:
                raise ctx.fail("top_k must be less than or equal to the dimension of the axis")
            top = list(b)
            top[axis] = ap.top_k
        else:
            if ap.top_k > count(b[1:]):
                raise ctx.fail("top_k must be less than or equal to the number of classes")
            top = [1] * max(len(b), 3)
            top[0] = b[0]
            top[2] = ap.top_k
            if ap.out_max_val:
                top[1] = 2
        return Setup([tuple(top)])

    def flops(self, ctx: LayerCtx) -> Flops:
        """``argmax_layer.cpp``: a ``std::partial_sort`` of each row for the top_k: about one
        comparison per element for top_k 1, log2(top_k) each beyond."""
        top_k = ctx.param.argmax_param.top_k
        return Flops(comparisons=count(ctx.bottom(0)) * max(1, math.ceil(math.log2(max(1, top_k)))))

    def backward_failure(self, v: View, pd: list[bool]) -> Optional[str]:
        # argmax_layer.hpp:65-67: Backward_cpu is NOT_IMPLEMENTED (no Backward_gpu: the
        # default calls Backward_cpu), whatever propagate_down says
        return "has no Backward (NOT_IMPLEMENTED: argmax_layer.hpp:65-67)"

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return []


@register
class Embed(LayerRule):
    """Never propagates to its (index) bottom."""

    type = "Embed"

    def fillers(self, param) -> list:
        return [param.embed_param.weight_filler, param.embed_param.bias_filler]

    def setup(self, ctx: LayerCtx) -> Setup:
        ep = ctx.param.embed_param
        if ep.num_output <= 0 or ep.input_dim <= 0:
            raise ctx.fail("num_output and input_dim must be positive")
        params = [(ep.input_dim, ep.num_output)]
        if ep.bias_term:
            params.append((ep.num_output,))
        return Setup([tuple(ctx.bottom(0)) + (ep.num_output,)], params)

    def flops(self, ctx: LayerCtx) -> Flops:
        """``embed_layer.cpp``: a row copy per index; the bias (a GEMM with ones) adds one
        per output."""
        if not ctx.param.embed_param.bias_term or not ctx.top_shapes:
            return NONE
        return Flops(adds=count(ctx.top_shapes[0]))

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``embed_layer.cpp``: ``bias_multiplier_`` [M = bottom count] of ones."""

        if not ctx.param.embed_param.bias_term:
            return []
        return BufferSet(env).host_then_compute("bias_multiplier",
                                                count(ctx.bottom(0)) * 4).items

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return super().backward_touches(v, [False] * len(pd), ppd)


@register
class BatchReindex(LayerRule):
    type = "BatchReindex"

    def setup(self, ctx: LayerCtx) -> Setup:
        b0, b1 = ctx.bottom(0), ctx.bottom(1)
        if len(b1) != 1:
            raise ctx.fail("the index bottom must be 1-D")
        return Setup([(b1[0],) + tuple(b0[1:])])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # copies


@register
class Filter(LayerRule):
    """Top shapes at SetUp keep the full batch (the first Reshape passes everything)."""

    type = "Filter"

    def setup(self, ctx: LayerCtx) -> Setup:
        return Setup([ctx.bottom(i) for i in range(len(ctx.bottoms) - 1)])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # copies the selected items


@register
class Parameter(LayerRule):
    """The top is the param blob (``ShareData``/``ShareDiff``); the param is not filled."""

    type = "Parameter"
    fills_params_at_setup = False

    def setup(self, ctx: LayerCtx) -> Setup:
        shape = tuple(ctx.param.parameter_param.shape.dim)
        return Setup([shape], [shape])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # the top is the param blob

    def shares(self, v: View) -> list[tuple[tuple, tuple]]:
        return [((TOP, 0, DATA), (PARAM, 0, DATA)), ((TOP, 0, DIFF), (PARAM, 0, DIFF))]

    def forward_touches(self, v: View) -> list[Touch]:
        return []

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return []


@register
class HDF5Output(LayerRule):
    type = "HDF5Output"
    has_backward = False

    def setup(self, ctx: LayerCtx) -> Setup:
        return Setup([])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # writes the bottoms to a file
