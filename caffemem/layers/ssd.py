"""SSD's layers (Wei Liu's Caffe fork, github.com/weiliu89/caffe, branch ``ssd``).

Each rule follows the fork's ``LayerSetUp``/``Reshape`` (files under
``src/caffe/layers/`` of that branch, named in each docstring):

* ``AnnotatedData``: ``[batch, C, H, W]`` images where H and W come from
  ``transform_param`` (crop, else ``resize_param``), and a ``[1, 1, B, 8]`` box list.
* ``Normalize``: top = bottom; one scale blob, a 0-axis scalar when ``channel_shared``.
* ``Permute``: the bottom's axes in the given order.
* ``PriorBox``: ``[1, 2, H*W*num_priors*4]``.
* ``DetectionOutput``: ``[1, 1, 1, 7]`` at set-up (the real row count depends on the data).
* ``DetectionEvaluate``: ``[1, 1, num_pos_classes + detections, 5]``.
* ``MultiBoxLoss``: a scalar loss.
* ``VideoData``: like AnnotatedData's image top, labels ``[batch]``.

SSD's ``SmoothL1Loss`` has the same type name as py-faster-rcnn's; one rule serves both
(see :mod:`caffemem.layers.frcnn`).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..pb import has_field
from .base import LayerCtx, LayerRule, NeedsInputShape, Setup, count
from .data import DataLayerRule
from .loss import LossRule
from .registry import register

FORK = "ssd"

# ResizeParameter.Resize_mode in the fork's caffe.proto
_WARP, _FIT_SMALL_SIZE, _FIT_LARGE_SIZE_AND_PAD = 1, 2, 3


def legacy_dim(ctx: LayerCtx, shape, index: int) -> int:
    """``Blob::LegacyShape``: num/channels/height/width of a blob of at most 4 axes; a missing
    axis counts as 1."""
    if len(shape) > 4:
        raise ctx.fail(f"cannot use legacy accessors on a {len(shape)}-axis blob {list(shape)} "
                       f"(this layer reads num/channels/height/width)")
    if index >= len(shape) or index < -len(shape):
        return 1
    return shape[index]


def _values(msg, name: str) -> list:
    """The values of a field the fork declares repeated (older SSD versions: optional)."""
    value = getattr(msg, name)
    if isinstance(value, (bool, int, float)):
        return [value] if has_field(msg, name) else []
    return list(value)


def _f32(x: float) -> float:
    return float(np.float32(x))


# ---------------------------------------------------------------- data layers


def _batch(ctx: LayerCtx) -> int:
    b = ctx.batch_override if ctx.batch_override is not None else ctx.param.data_param.batch_size
    if b <= 0:
        raise ctx.fail("data_param.batch_size must be positive (set it, or use --batch N)")
    return b


def _channels_hint(tp) -> Optional[int]:
    """Channels the DataTransformer settles: a per-channel mean (CHECKed equal to the image's
    channels), or force_color / force_gray (applied when decoding an encoded datum)."""
    if len(tp.mean_value) > 1:
        return len(tp.mean_value)
    if tp.force_color:
        return 3
    if tp.force_gray:
        return 1
    return None


def _transformed_hw(ctx: LayerCtx, tp) -> tuple[Optional[int], Optional[int], str]:
    """H and W of ``DataTransformer::InferBlobShape`` (SSD's data_transformer.cpp) as far as
    the prototxt settles them: crop_size (or crop_h / crop_w) wins; else the resize_param's
    height / width (``InferNewSize`` in util/im_transforms.cpp: WARP and FIT_LARGE_SIZE_AND_PAD
    give height x width, FIT_SMALL_SIZE depends on the image's aspect); else the image's own
    size (None).  Also a sentence on what is unknown."""
    crop_h = getattr(tp, "crop_h", 0)
    crop_w = getattr(tp, "crop_w", 0)
    if tp.crop_size:
        crop_h = crop_w = tp.crop_size
    new_h = new_w = None
    why = "the image size is that of the first database record"
    if has_field(tp, "resize_param"):
        rp = tp.resize_param
        if rp.resize_mode == _FIT_SMALL_SIZE:
            why = "resize_mode FIT_SMALL_SIZE keeps the first image's aspect ratio"
        elif rp.resize_mode in (_WARP, _FIT_LARGE_SIZE_AND_PAD):
            new_h, new_w = rp.height, rp.width
            if (new_h == 0 and not crop_h) or (new_w == 0 and not crop_w):
                raise ctx.fail(f"resize_param gives a {new_h} x {new_w} image; set its height and width")
        else:
            raise ctx.fail(f"unknown resize_mode {rp.resize_mode}")
    if new_h is not None and crop_h and new_h < crop_h:
        raise ctx.fail(f"crop height {crop_h} exceeds the resized height {new_h}")
    if new_w is not None and crop_w and new_w < crop_w:
        raise ctx.fail(f"crop width {crop_w} exceeds the resized width {new_w}")
    h = crop_h or new_h
    w = crop_w or new_w
    return h, w, why


class _SSDDataRule(DataLayerRule):
    fork = FORK

    def declared_batch(self, ctx: LayerCtx) -> int | None:
        return _batch(ctx)

    def default_channels(self, ctx: LayerCtx) -> Optional[int]:
        return _channels_hint(ctx.param.transform_param)

    def data_shape(self, ctx: LayerCtx, batch: int) -> tuple[int, ...]:
        if 0 in ctx.overrides:
            return tuple(ctx.overrides[0])
        tp = ctx.param.transform_param
        h, w, why = _transformed_hw(ctx, tp)
        c = self.default_channels(ctx)
        if c is None or h is None or w is None:
            known = [f"batch_size {batch}"]
            if c is not None:
                known.append(f"C = {c}")
            if h is not None:
                known.append(f"H = {h}")
            if w is not None:
                known.append(f"W = {w}")
            reasons = []
            if h is None or w is None:
                reasons.append(why)
            if c is None:
                reasons.append("the channel count is the first image's (usually 3; a mean_value "
                               "per channel or force_color would settle it)")
            raise NeedsInputShape(ctx.name, ctx.type, "; ".join(reasons) + f" ({', '.join(known)})",
                                  ctx.tops[:1])
        return (batch, c, h, w)


@register
class AnnotatedData(_SSDDataRule):
    """``annotated_data_layer.cpp`` ``DataLayerSetUp``: top 0 is ``InferBlobShape`` of the
    first AnnotatedDatum with the batch size put in front.  Top 1 (the boxes) is
    ``[1, 1, max(B, 1), 8]`` where B is the number of boxes of that first record (the
    database's annotation type is BBOX, as create_annoset writes it): caffemem cannot read B
    and uses 1, the smallest value Caffe prints; the log's figure can be given with
    ``--input label=1,1,B,8``.  Without an annotation type (neither in the record nor in
    ``annotated_data_param.anno_type``) Caffe would make the label ``[batch, 1, 1, 1]``;
    caffemem assumes the record has one."""

    type = "AnnotatedData"

    def setup(self, ctx: LayerCtx) -> Setup:
        batch = _batch(ctx)
        tp = ctx.param.transform_param
        if has_field(tp, "resize_param") and tp.resize_param.resize_mode == _FIT_SMALL_SIZE \
                and batch != 1:
            raise ctx.fail("only batch size 1 is supported with resize_mode FIT_SMALL_SIZE")
        tops = [self.data_shape(ctx, batch)]
        if len(ctx.tops) > 1:
            tops.append((1, 1, 1, 8))
        return Setup(tops)


@register
class VideoData(_SSDDataRule):
    """``video_data_layer.cpp``: top 0 is ``InferBlobShape`` of the first frame (OpenCV
    delivers BGR frames, so C = 3) with the batch size in front; labels ``[batch]``."""

    type = "VideoData"

    def default_channels(self, ctx: LayerCtx) -> Optional[int]:
        return 3

    def setup(self, ctx: LayerCtx) -> Setup:
        batch = _batch(ctx)
        vp = ctx.param.video_data_param
        if vp.skip_frames < 0:
            raise ctx.fail("skip_frames must be >= 0")
        tops = [self.data_shape(ctx, batch)]
        if len(ctx.tops) > 1:
            tops.append((batch,))
        return Setup(tops)


# ---------------------------------------------------------------- Normalize, Permute


@register
class Normalize(LayerRule):
    """``normalize_layer.cpp``: top = bottom (at least 2 axes; read as N, C, H, W).  The scale
    blob is ``vector<int>(0)`` (0 axes, one value) when ``channel_shared`` (the default),
    else ``[C]``."""

    type = "Normalize"
    fork = FORK

    def setup(self, ctx: LayerCtx) -> Setup:
        b = ctx.bottom(0)
        if len(b) < 2:
            raise ctx.fail(f"number of axes of bottom blob must be >= 2; got {list(b)}")
        c = legacy_dim(ctx, b, 1)
        scale = () if ctx.param.norm_param.channel_shared else (c,)
        return Setup([tuple(b)], [scale])

    def flops(self, ctx: LayerCtx) -> int:
        # per element: square-and-sum into the norm, divide by it, multiply by the scale
        return 3 * count(ctx.bottom(0))


@register
class Permute(LayerRule):
    """``permute_layer.cpp``: the listed ``order`` axes first, then the unlisted ones in their
    natural order.  (With the natural order the Forward shares the bottom's data instead of
    copying it; the top is still reshaped and counted in the log.)"""

    type = "Permute"
    fork = FORK

    def setup(self, ctx: LayerCtx) -> Setup:
        b = ctx.bottom(0)
        n = len(b)
        orders: list[int] = []
        for o in ctx.param.permute_param.order:
            if o >= n:
                raise ctx.fail(f"order {o} should be less than the input dimension ({n} axes, {list(b)})")
            if o in orders:
                raise ctx.fail(f"there are duplicate orders ({list(ctx.param.permute_param.order)})")
            orders.append(o)
        orders += [i for i in range(n) if i not in orders]
        return Setup([tuple(b[o] for o in orders)])


# ---------------------------------------------------------------- PriorBox


def prior_aspect_ratios(ctx: LayerCtx) -> list[float]:
    """``PriorBoxLayer::LayerSetUp``'s ``aspect_ratios_``: 1 first, then each given ratio not
    already present (|difference| < 1e-6, in float), followed by its inverse when ``flip``."""
    pp = ctx.param.prior_box_param
    ratios = [1.0]
    for ar in pp.aspect_ratio:
        ar = _f32(ar)
        if any(abs(ar - r) < 1e-6 for r in ratios):
            continue
        ratios.append(ar)
        if pp.flip:
            ratios.append(_f32(1.0 / ar) if ar != 0 else math.inf)
    return ratios


def num_priors(ctx: LayerCtx) -> int:
    """Priors per feature-map cell: ``len(aspect_ratios_) * len(min_size) + len(max_size)``."""
    pp = ctx.param.prior_box_param
    mins = _values(pp, "min_size")
    if not mins:
        raise ctx.fail("must provide min_size")
    for m in mins:
        if not m > 0:
            raise ctx.fail(f"min_size must be positive (got {m})")
    n = len(prior_aspect_ratios(ctx)) * len(mins)
    maxs = _values(pp, "max_size")
    if maxs:
        if len(maxs) != len(mins):
            raise ctx.fail(f"give one max_size per min_size ({len(mins)} min_size, {len(maxs)} max_size)")
        for lo, hi in zip(mins, maxs):
            if not hi > lo:
                raise ctx.fail(f"max_size must be greater than min_size ({hi} vs {lo})")
        n += len(maxs)
    return n


@register
class PriorBox(LayerRule):
    """``prior_box_layer.cpp``: top ``[1, 2, W*H*num_priors*4]`` (means and variances of
    every prior's four coordinates) from bottom 0's height and width; bottom 1 (the image)
    only matters in Forward."""

    type = "PriorBox"
    fork = FORK
    has_backward = False  # Backward_cpu returns without touching a bottom diff

    def _check(self, ctx: LayerCtx) -> None:
        pp = ctx.param.prior_box_param
        var = list(pp.variance)
        if len(var) > 1 and len(var) != 4:
            raise ctx.fail(f"give 1 or 4 variance values, not {len(var)}")
        if any(not v > 0 for v in var):
            raise ctx.fail("variance must be positive")
        if has_field(pp, "img_h") or has_field(pp, "img_w"):
            if has_field(pp, "img_size"):
                raise ctx.fail("either img_size or img_h/img_w should be specified; not both")
            if pp.img_h <= 0 or pp.img_w <= 0:
                raise ctx.fail("img_h and img_w should be larger than 0")
        elif has_field(pp, "img_size") and pp.img_size <= 0:
            raise ctx.fail("img_size should be larger than 0")
        if has_field(pp, "step_h") or has_field(pp, "step_w"):
            if has_field(pp, "step"):
                raise ctx.fail("either step or step_h/step_w should be specified; not both")
            if not (pp.step_h > 0 and pp.step_w > 0):
                raise ctx.fail("step_h and step_w should be larger than 0")
        elif has_field(pp, "step") and not pp.step > 0:
            raise ctx.fail("step should be larger than 0")

    def setup(self, ctx: LayerCtx) -> Setup:
        n = num_priors(ctx)
        self._check(ctx)
        b = ctx.bottom(0)
        h, w = legacy_dim(ctx, b, 2), legacy_dim(ctx, b, 3)
        dim = ctx.check_positive("prior count", w * h * n * 4, f"{w} * {h} * {n} priors * 4")
        return Setup([(1, 2, dim)])


# ---------------------------------------------------------------- detection


def _check_priors(ctx: LayerCtx, num_classes: int, share_location: bool) -> int:
    """The prior / prediction consistency CHECKs of DetectionOutput and MultiBoxLoss."""
    loc, conf, prior = ctx.bottom(0), ctx.bottom(1), ctx.bottom(2)
    if legacy_dim(ctx, loc, 0) != legacy_dim(ctx, conf, 0):
        raise ctx.fail(f"location and confidence predictions differ in num ({list(loc)} vs {list(conf)})")
    priors = legacy_dim(ctx, prior, 2) // 4
    loc_classes = 1 if share_location else num_classes
    if priors * loc_classes * 4 != legacy_dim(ctx, loc, 1):
        raise ctx.fail(f"number of priors must match number of location predictions: {priors} priors "
                       f"x {loc_classes} x 4 != {legacy_dim(ctx, loc, 1)} (bottoms {list(loc)}, {list(prior)})")
    if priors * num_classes != legacy_dim(ctx, conf, 1):
        raise ctx.fail(f"number of priors must match number of confidence predictions: {priors} priors "
                       f"x {num_classes} classes != {legacy_dim(ctx, conf, 1)} (bottoms {list(conf)}, {list(prior)})")
    return priors


@register
class DetectionOutput(LayerRule):
    """``detection_output_layer.cpp``: bottoms loc, conf, priors (and optionally the image);
    ``Reshape`` makes the top ``[1, 1, 1, 7]`` (Forward resizes it to the kept detections)."""

    type = "DetectionOutput"
    fork = FORK
    has_backward = False  # Backward_cpu is NOT_IMPLEMENTED

    def setup(self, ctx: LayerCtx) -> Setup:
        dp = ctx.param.detection_output_param
        if not has_field(dp, "num_classes"):
            raise ctx.fail("must specify num_classes")
        if not 3 <= len(ctx.bottom_shapes) <= 4:
            raise ctx.fail(f"takes 3 or 4 bottoms (loc, conf, prior[, image]); got {len(ctx.bottom_shapes)}")
        if dp.nms_param.nms_threshold < 0:
            raise ctx.fail("nms_threshold must be non negative")
        if not 0 < dp.nms_param.eta <= 1:
            raise ctx.fail("nms_param.eta must be in (0, 1]")
        _check_priors(ctx, dp.num_classes, dp.share_location)
        return Setup([(1, 1, 1, 7)])


@register
class DetectionEvaluate(LayerRule):
    """``detection_evaluate_layer.cpp`` ``Reshape``: top ``[1, 1, P + D, 5]`` with P the
    positive classes (``num_classes - 1`` unless background_label_id is -1) and D the
    detection rows whose label is not -1.  At set-up the detections blob is freshly
    allocated (zero-filled), so every one of its rows counts: D = its height."""

    type = "DetectionEvaluate"
    fork = FORK
    has_backward = False

    def setup(self, ctx: LayerCtx) -> Setup:
        ep = ctx.param.detection_evaluate_param
        if not has_field(ep, "num_classes"):
            raise ctx.fail("must provide num_classes")
        if not ep.overlap_threshold > 0:
            raise ctx.fail("overlap_threshold must be positive")
        det, gt = ctx.bottom(0), ctx.bottom(1)
        for what, shape, width in (("detections", det, 7), ("ground truth", gt, 8)):
            got = (legacy_dim(ctx, shape, 0), legacy_dim(ctx, shape, 1), legacy_dim(ctx, shape, 3))
            if got != (1, 1, width):
                raise ctx.fail(f"the {what} bottom must be [1, 1, rows, {width}]; got {list(shape)}")
        background = ep.background_label_id
        positives = ep.num_classes if background in (-1, 0xFFFFFFFF) else ep.num_classes - 1
        return Setup([(1, 1, positives + legacy_dim(ctx, det, 2), 5)])


@register
class MultiBoxLoss(LossRule):
    """``multibox_loss_layer.cpp``: bottoms loc, conf, priors, ground truth; a scalar loss.
    Its Backward writes the loc and conf diffs only."""

    type = "MultiBoxLoss"
    fork = FORK

    def setup(self, ctx: LayerCtx) -> Setup:
        mp = ctx.param.multibox_loss_param
        if len(ctx.bottom_shapes) != 4:
            raise ctx.fail(f"takes 4 bottoms (loc, conf, prior, label); got {len(ctx.bottom_shapes)}")
        if len(ctx.tops) > 1:
            raise ctx.fail("takes exactly 1 top")
        if not has_field(mp, "num_classes"):
            raise ctx.fail("must provide num_classes")
        if mp.num_classes < 1:
            raise ctx.fail("num_classes should not be less than 1")
        if has_field(mp, "do_neg_mining") and mp.do_neg_mining != (mp.mining_type != 0):
            raise ctx.fail("do_neg_mining (deprecated) contradicts mining_type")
        if mp.mining_type != 0 and not mp.share_location:  # MiningType NONE = 0
            raise ctx.fail("negative mining is only supported with share_location: true")
        if mp.conf_loss_type == 0 and not 0 <= mp.background_label_id < mp.num_classes:  # SOFTMAX
            raise ctx.fail(f"background_label_id should be within [0, num_classes) for Softmax "
                           f"({mp.background_label_id}, {mp.num_classes} classes)")
        setup = super().setup(ctx)
        _check_priors(ctx, mp.num_classes, mp.share_location)
        return setup

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index < 2
