"""py-faster-rcnn's C++ layers (Ross Girshick's fork, github.com/rbgirshick/caffe-fast-rcnn,
branch ``faster-rcnn``; header ``include/caffe/fast_rcnn_layers.hpp``).

* ``ROIPooling`` (``src/caffe/layers/roi_pooling_layer.cpp``): ``[R, C, pooled_h, pooled_w]``
  for R regions (bottom 1, ``[R, 5]``) over the feature map (bottom 0).
* ``SmoothL1Loss`` (``src/caffe/layers/smooth_L1_loss_layer.cpp``): a scalar loss.  SSD's
  fork has a layer of the same name (``weiliu89/caffe`` branch ``ssd``, same file name) that
  takes 2 or 3 bottoms where this one takes 2 or 4; the rule accepts 2 to 4.

The Python layers of py-faster-rcnn (ProposalLayer, AnchorTargetLayer, RoIDataLayer, ...) set
their shapes in Python; the core rule for ``Python`` asks for ``--input``.
"""

from __future__ import annotations

from typing import Optional

from ..buffers import BufferSet
from ..pb import has_field
from .base import (BOTTOM, DATA, DIFF, TOP, Flops, LayerCtx, LayerRule, Setup, Touch, View, count,
                   legacy_dim, touch_all)
from .loss import LossRule
from .registry import register

FORK = "frcnn"


@register
class ROIPooling(LayerRule):
    """``ROIPoolingLayer``: ``pooled_h`` and ``pooled_w`` must be > 0; the top is
    ``[rois.num, features.channels, pooled_h, pooled_w]``.  Backward writes the feature map's
    diff only.

    Touches (roi_pooling_layer.cpp/.cu): Backward_gpu returns unless bottom 0 propagates,
    then reads the top diff and writes bottom 0's diff only (cu:170-175); Backward_cpu is
    NOT_IMPLEMENTED (cpp:130)."""

    type = "ROIPooling"
    fork = FORK

    def setup(self, ctx: LayerCtx) -> Setup:
        rp = ctx.param.roi_pooling_param
        if rp.pooled_h <= 0:
            raise ctx.fail("pooled_h must be > 0")
        if rp.pooled_w <= 0:
            raise ctx.fail("pooled_w must be > 0")
        if len(ctx.bottom_shapes) != 2:
            raise ctx.fail(f"takes 2 bottoms (features, rois); got {len(ctx.bottom_shapes)}")
        if len(ctx.tops) > 1:
            raise ctx.fail("takes exactly 1 top")
        feat, rois = ctx.bottom(0), ctx.bottom(1)
        top = (legacy_dim(ctx, rois, 0), legacy_dim(ctx, feat, 1), rp.pooled_h, rp.pooled_w)
        return Setup([top])

    def flops(self, ctx: LayerCtx) -> Optional[Flops]:
        """Not counted: each bin's size (the comparisons of its max) depends on the regions,
        which are data."""
        return None

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``max_idx_`` (``Blob<int>``, top-sized): the argmax of each output, written by
        Forward where it computes (roi_pooling_layer.cpp:56, .cu:85) and read by
        Backward_gpu (.cu:178)."""

        return BufferSet(env).add("max_idx", count(ctx.top_shapes[0]) * 4,
                                  note="argmax per output (int)").items

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        if v.side == "host" or not (pd and pd[0]):
            return []
        return [Touch(TOP, 0, DIFF, v.side), Touch(BOTTOM, 0, DIFF, v.side)]


@register
class SmoothL1Loss(LossRule):
    """``SmoothL1LossLayer``: bottoms prediction, target and optionally weights (py-faster-rcnn:
    inside and outside weights, 4 bottoms; SSD: one weight blob, 3 bottoms), all with the same
    channels, height and width; a scalar top.  ``AllowForceBackward`` is true for every
    bottom; Backward writes the diffs of bottoms 0 and 1.

    Touches (py-faster-rcnn's and SSD's smooth_L1_loss_layer.cu): the loss is written with
    ``top[0]->mutable_cpu_data()`` (host) in both modes; Backward writes the diffs of bottoms
    0 and 1 only, when propagating (the weights are read, never given diffs)."""

    type = "SmoothL1Loss"
    fork = FORK

    def setup(self, ctx: LayerCtx) -> Setup:
        nb = len(ctx.bottom_shapes)
        if not 2 <= nb <= 4:
            raise ctx.fail(f"takes 2 to 4 bottoms (prediction, target[, weights]); got {nb}")
        setup = super().setup(ctx)
        b0 = ctx.bottom(0)
        want = tuple(legacy_dim(ctx, b0, i) for i in (1, 2, 3))
        for j in range(1, nb):
            bj = ctx.bottom(j)
            got = tuple(legacy_dim(ctx, bj, i) for i in (1, 2, 3))
            if got != want:
                raise ctx.fail(f"bottom {j} must have bottom 0's channels, height and width "
                               f"({list(b0)} vs {list(bj)})")
        return setup

    def flops(self, ctx: LayerCtx) -> Flops:
        """``smooth_L1_loss_layer.cu``: ``b0 - b1`` (an add per element), times each weight
        blob (a multiply per element each: inside weights, and py-faster-rcnn's outside
        weights), then per element ``|x| < 1/sigma^2 ? 0.5 * sigma^2 * x * x : |x| - 0.5 /
        sigma^2`` (an abs and a comparison; the longer side: two multiplies), and the sum (an
        add per element), / num."""
        n = count(ctx.bottom(0))
        weights = len(ctx.bottom_shapes) - 2
        return n * Flops(adds=2, comparisons=2, macs=2 + weights) + Flops(divides=1)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``diff_`` and ``errors_`` (bottom-sized), written by Forward where it computes
        (faster-rcnn branch smooth_L1_loss_layer.cu:32-46; SSD's .cpp:45-58 / .cu:35-49);
        py-faster-rcnn's branch ``faster-rcnn`` also keeps ``ones_`` (bottom-sized), filled on
        the host in Reshape (.cpp:44-48) and read on the GPU (.cu:59).  Its CPU Forward is
        NOT_IMPLEMENTED (.cpp:54: a cpu-mode run aborts there), SSD's runs on the host.  Which
        one: ``ones_`` when the layer has 4 bottoms or a ``smooth_l1_loss_param`` (only the
        faster-rcnn branch has those); with 2 or 3 bottoms and no param the layout of SSD and
        of the older ``fast-rcnn`` branch (no ``ones_``) is assumed."""

        n = count(ctx.bottom(0)) * 4
        faster = len(ctx.bottom_shapes) == 4 or has_field(ctx.param, "smooth_l1_loss_param")
        bs = BufferSet(env)
        if faster:
            bs.host_then_compute("ones", n, "setup", "forward", note="ones (Reshape)")
            if not env.gpu:
                return bs.items  # Forward_cpu is NOT_IMPLEMENTED
        bs.add("diff", n, note="w_in * (b0 - b1), then its gradient")
        bs.add("errors", n, note="per-element loss")
        return bs.items

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return True

    def forward_touches(self, v: View) -> list[Touch]:
        return touch_all(BOTTOM, v.n_bottoms, DATA, v.side) + [Touch(TOP, 0, DATA, "host")]

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index < 2

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return [Touch(BOTTOM, i, DIFF, v.side) for i, p in enumerate(pd[:2]) if p]
