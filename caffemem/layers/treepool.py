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

FLOPs are estimates: K*K multiply-adds per output for each leaf filter, pooling branch and
gate.
"""

from __future__ import annotations

import math

import numpy as np

from .base import LayerCtx, LayerRule, Setup, count
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
        out = int(math.ceil(np.float32(size - k) / np.float32(s))) + 1
        return ctx.check_positive("pooled size", out, f"ceil(({size} - {k}) / {s}) + 1")

    return n, c, pooled(h), pooled(w), k, s


class TreepoolRule(LayerRule):
    fork = FORK
    #: parameter blobs, each [1, 1, K, K]
    num_params = 1
    #: K*K filters evaluated per output
    filters_per_output = 3

    def setup(self, ctx: LayerCtx) -> Setup:
        if len(ctx.bottom_shapes) != 1 or len(ctx.tops) > 1:
            raise ctx.fail("takes one bottom and one top")
        n, c, ph, pw, k, _ = treepool_geometry(ctx)
        return Setup([(n, c, ph, pw)], [(1, 1, k, k)] * self.num_params)

    def flops(self, ctx: LayerCtx) -> int:
        _, _, _, _, k, _ = treepool_geometry(ctx)
        return count(ctx.top_shapes[0]) * k * k * self.filters_per_output if ctx.top_shapes else 0


@register
class TreepoolKernel1L(TreepoolRule):
    """Leaf filters v1, v2 and gate w1."""

    type = "TreepoolKernel1L"
    num_params = 3
    filters_per_output = 3


@register
class TreepoolKernel2L(TreepoolRule):
    """Leaf filters v1..v4 and gates w1..w3."""

    type = "TreepoolKernel2L"
    num_params = 7
    filters_per_output = 7


@register
class TreepoolMaxAve(TreepoolRule):
    """Max pooling, average pooling and the gate w1."""

    type = "TreepoolMaxAve"
    num_params = 1
    filters_per_output = 3


@register
class GatedMaxAve(TreepoolRule):
    """The same mix, computed without the tree layer's per-output buffers."""

    type = "GatedMaxAve"
    num_params = 1
    filters_per_output = 3
