"""Generalized pooling layers (Lee, Gallagher and Tu, "Generalizing Pooling Functions in
Convolutional Neural Networks: Mixed, Gated, and Tree", AISTATS 2016), as used by
caffenet-benchmark (``prototxt/pool/gen_pool/``).  Source: the authors' Caffe,
github.com/ilovecv/general-pooling-1, ``src/caffe/layers/``:

* ``TreepoolKernel1L`` (``treepool_kernel_1layer.cpp``): a one-level tree: two learned leaf
  filters and one learned gating filter, 3 parameter blobs.
* ``TreepoolKernel2L`` (``treepool_kernel_2layer.cpp``): a two-level tree, 4 leaves and 3
  gates, 7 parameter blobs.
* ``TreepoolMaxAve`` (``treepool_max_ave.cpp``) and ``GatedMaxAve``
  (``treepool_max_ave_efficient.cpp``): max and average pooling mixed by a learned gate,
  1 parameter blob.

All read ``convolution_param.kernel_size`` (K, square) and ``stride`` (S) only (no padding,
no kernel_h/w) and, in ``LayerSetUp``, fix the output to
``ceil(float(H - K) / S) + 1`` per axis (as CEIL pooling without padding) and every
parameter blob to ``[1, 1, K, K]``.  Checked against caffenet-benchmark's
``GeneralPool128_fc_2048_unfinished.log`` (30 -> 15, 15 -> 7, 7 -> 3 with K 3, S 2).

FLOPs are estimates: K*K multiply-adds per output for each learned filter (leaves and
gates); the max and average branches K*K comparisons and K*K adds and a divide.
"""

from __future__ import annotations

import math

from ..blobshape import float32
from ..buffers import BufferSet
from .base import (BOTTOM, DIFF, NONE, PARAM, TOP, Flops, LayerCtx, LayerRule, Setup, Touch, View,
                   count, touch_all)
from .registry import register

FORK = "treepool"


def _first(msg, name: str, default: int) -> int:
    """``conv_param.kernel_size()`` / ``stride()`` of the fork's schema, where they are single
    optional values (kernel_size defaults to 0, stride to 1); BVLC's are repeated."""
    value = getattr(msg, name)
    if isinstance(value, int):
        return value
    return value[0] if len(value) else default


def treepool_geometry(ctx: LayerCtx) -> tuple[int, int, int, int, int, int]:
    """(N, C, pooled H, pooled W, K, S)."""
    b = ctx.bottom(0)
    if len(b) > 4:
        raise ctx.fail(f"reads num/channels/height/width: input must have at most 4 axes; got {list(b)}")
    n, c, h, w = tuple(b) + (1,) * (4 - len(b))  # Blob::LegacyShape
    cp = ctx.param.convolution_param
    k = _first(cp, "kernel_size", 0)
    s = _first(cp, "stride", 1)
    if s <= 0:
        raise ctx.fail(f"stride must be positive (got {s})")

    def pooled(size: int) -> int:
        out = int(math.ceil(float32(float32(size - k) / float32(s)))) + 1
        return ctx.check_positive("pooled size", out, f"ceil(({size} - {k}) / {s}) + 1")

    return n, c, pooled(h), pooled(w), k, s


class TreepoolRule(LayerRule):
    """The CPU Forward and Backward only log "Enter CPU code" and touch nothing;
    Backward_gpu writes the bottom diff and every param diff with no propagate_down check
    (e.g. treepool_kernel_1layer.cu:191-219)."""

    fork = FORK
    #: parameter blobs, each [1, 1, K, K]
    num_params = 1
    #: K*K filters evaluated per output
    filters_per_output = 3
    #: a max and an average pooling branch besides the filters (TreepoolMaxAve, GatedMaxAve)
    max_ave = False

    def setup(self, ctx: LayerCtx) -> Setup:
        if len(ctx.bottom_shapes) != 1 or len(ctx.tops) > 1:
            raise ctx.fail("takes one bottom and one top")
        n, c, ph, pw, k, _ = treepool_geometry(ctx)
        return Setup([(n, c, ph, pw)], [(1, 1, k, k)] * self.num_params)

    def flops(self, ctx: LayerCtx) -> Flops:
        """An estimate: K*K multiply-adds per output for each learned filter; a max branch's
        K*K comparisons and an average branch's K*K adds and a divide per output."""
        if not ctx.top_shapes:
            return NONE
        _, _, _, _, k, _ = treepool_geometry(ctx)
        out = count(ctx.top_shapes[0])
        branches = Flops(comparisons=out * k * k, adds=out * k * k, divides=out) if self.max_ave else NONE
        return Flops(macs=out * k * k * self.filters_per_output) + branches

    #: top-sized blobs the GPU Forward writes, and those Backward_gpu adds (besides the two
    #: K*K-fold column buffers), in the source's names
    forward_buffers: tuple[str, ...] = ()
    backward_buffers: tuple[str, ...] = ()

    def buffers(self, ctx: LayerCtx, env) -> list:
        """The GPU code's member blobs (Reshape sizes them, the .cu touches them; the CPU
        Forward/Backward only log, so a cpu-mode run allocates just LayerSetUp's host ones):
        LayerSetUp's ``bias_multiplier2_`` [K*K] of ones (host, read by Backward_gpu);
        Forward's top-sized buffers; Backward_gpu's top-sized buffers, ``col_buffer_``
        [K*K x top] and ``bottom_diff_buffer_`` [bottom x K*K] (e.g.
        treepool_kernel_1layer.cpp:63-67, 81-87; .cu:93-96, 202-204, 262)."""

        n, c, ph, pw, k, _ = treepool_geometry(ctx)
        top = n * c * ph * pw * 4
        kk = k * k
        bs = BufferSet(env)
        bs.host_then_compute("bias_multiplier2", kk * 4, "setup", "backward", note="ones")
        self.setup_only(ctx, bs)
        if not env.gpu:
            return bs.items
        for name in self.forward_buffers:
            bs.add(name, top)
        for name in self.backward_buffers:
            bs.add(name, top, "backward")
        bs.add("col_buffer", kk * top, "backward",
               note="K*K x top: the input window per output (not a convolution's im2col)")
        bs.add("bottom_diff_buffer", count(ctx.bottom(0)) * kk * 4, "backward",
               note="bottom x K*K: one gradient per window position")
        return bs.items

    def setup_only(self, ctx: LayerCtx, bs) -> None:
        """Other LayerSetUp allocations (host)."""

    def forward_touches(self, v: View) -> list[Touch]:
        return [] if v.side == "host" else super().forward_touches(v)

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        if v.side == "host":
            return []
        s = v.side
        return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)] + \
            touch_all(PARAM, v.n_params, DIFF, s)


@register
class TreepoolKernel1L(TreepoolRule):
    """Leaf filters v1, v2 and gate w1."""

    type = "TreepoolKernel1L"
    num_params = 3
    filters_per_output = 3
    forward_buffers = ("split_buffer1", "split_buffer2", "resp_buffer1", "resp_buffer2")
    backward_buffers = ("mat_buffer",)

    def setup_only(self, ctx: LayerCtx, bs) -> None:
        """``bias_multiplier_`` is sized by ``top[0]->count()`` in LayerSetUp, before Reshape
        has shaped the top: 0 bytes (treepool_kernel_1layer.cpp:56-57), unless in place."""
        in_place = bool(ctx.tops) and bool(ctx.bottoms) and ctx.tops[0] == ctx.bottoms[0]
        bs.add("bias_multiplier", count(ctx.bottom(0)) * 4 if in_place else 0, "setup",
               side="host", note="top count at LayerSetUp")


@register
class TreepoolKernel2L(TreepoolRule):
    """Leaf filters v1..v4 and gates w1..w3."""

    type = "TreepoolKernel2L"
    num_params = 7
    filters_per_output = 7
    forward_buffers = ("split_buffer1", "split_buffer2", "split_buffer3", "split_buffer1c",
                       "split_buffer2c", "split_buffer3c", "resp_buffer1", "resp_buffer2",
                       "resp_buffer3", "resp_buffer4")
    backward_buffers = ("mat_buffer1", "mat_buffer2")


@register
class TreepoolMaxAve(TreepoolRule):
    """Max pooling, average pooling and the gate w1."""

    type = "TreepoolMaxAve"
    num_params = 1
    filters_per_output = 1  # the gate
    max_ave = True
    forward_buffers = ("split_buffer1", "split_buffer2", "top_buffer1", "top_buffer2",
                       "mat_buffer", "poolsize_buffer")


@register
class GatedMaxAve(TreepoolRule):
    """The same mix, computed without the tree layer's per-output buffers."""

    type = "GatedMaxAve"
    num_params = 1
    filters_per_output = 1  # the gate
    max_ave = True

    def buffers(self, ctx: LayerCtx, env) -> list:
        """treepool_max_ave_efficient.cpp/.cu: LayerSetUp's ``bias_multiplier1_`` [N*C*PH*PW]
        of ones (host, cpp:55-60; read by Backward_gpu, cu:225) and Backward_gpu's
        ``weight1_diff_buffer_`` [K*K x top] (cpp:78, cu:201); Forward keeps no buffer."""

        n, c, ph, pw, k, _ = treepool_geometry(ctx)
        top = n * c * ph * pw * 4
        bs = BufferSet(env)
        bs.host_then_compute("bias_multiplier1", top, "setup", "backward" if env.gpu else "",
                             note="ones")
        if env.gpu:
            bs.add("weight1_diff_buffer", k * k * top, "backward",
                   note="K*K x top: per-output gate gradients")
        return bs.items
