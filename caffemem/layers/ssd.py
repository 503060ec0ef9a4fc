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

from ..blobshape import ShapeError, float32, legacy_shape
from ..buffers import BufferSet, Kind
from ..pb import caffe_pb2, has_field
from .base import (BOTTOM, BUFFER, CUDNN, DATA, DIFF, NONE, PARAM, TOP, Flops, LayerCtx, LayerRule,
                   NeedsInputShape, Setup, Touch, View, count)
from .data import CopyingDataLayerRule, channels_hint, add_data_mean
from .loss import LossRule
from .normalization import Softmax
from .registry import register

FORK = "ssd"

# ResizeParameter.Resize_mode in the fork's caffe.proto
_WARP, _FIT_SMALL_SIZE, _FIT_LARGE_SIZE_AND_PAD = 1, 2, 3


def legacy_dim(ctx: LayerCtx, shape, index: int) -> int:
    """``Blob::LegacyShape`` (:func:`caffemem.blobshape.legacy_shape`), refused in the name of
    the layer, which reads num/channels/height/width."""
    try:
        return legacy_shape(shape, index)
    except ShapeError as e:
        raise ctx.fail(f"{e} (this layer reads num/channels/height/width)") from None


def _values(msg, name: str) -> list:
    """The values of a field the fork declares repeated (older SSD versions: optional)."""
    value = getattr(msg, name)
    if isinstance(value, (bool, int, float)):
        return [value] if has_field(msg, name) else []
    return list(value)


def _f32(x: float) -> float:
    return float32(x)


# ---------------------------------------------------------------- data layers


def _batch(ctx: LayerCtx) -> int:
    b = ctx.batch_override if ctx.batch_override is not None else ctx.param.data_param.batch_size
    if b <= 0:
        raise ctx.fail("data_param.batch_size must be positive (set it, or use --batch N)")
    return b


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


#: ``BasePrefetchingDataLayer::PREFETCH_COUNT`` of the ssd branch (base_data_layer.hpp:71): a
#: compile-time constant there; ``data_param.prefetch`` only sizes the DataReader's queue
PREFETCH_COUNT = 3


class _SSDDataRule(CopyingDataLayerRule):
    """Prefetching data layers of the forks' older BasePrefetchingDataLayer (SSD branch
    ``ssd`` base_data_layer.cpp:107-125 / .cu:8-27): Forward ``caffe_copy``-es the batch into
    the tops' **own** memory (``mutable_cpu_data`` / ``mutable_gpu_data``), unlike BVLC's
    Data/ImageData whose tops point at the batch.  The batches themselves are the rule's
    prefetch buffers."""

    fork = FORK

    def declared_batch(self, ctx: LayerCtx) -> int | None:
        return _batch(ctx)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """The ssd branch's BasePrefetchingDataLayer (base_data_layer.cpp:46-68): LayerSetUp
        touches each of the ``PREFETCH_COUNT`` (3) batches' data and, with a label top, label
        on the host (``mutable_cpu_data``) and, in GPU mode, on the device
        (``mutable_gpu_data``); the batches have the tops' set-up shapes (DataLayerSetUp).
        Unlike BVLC's Data layer the tops are not the batches: Forward copies into them
        (base_data_layer.cu:14-22), so the tops are ordinary activations.  ``env.prefetch`` does not apply (the count is compiled in).
        Plus the DataTransformer's ``data_mean_`` (host) for a ``mean_file``.  Not modeled:
        the DataReader's queue of ``prefetch x batch_size`` raw records (host), and label
        batches that grow with the number of boxes (annotated_data_layer.cpp:264-277)."""

        bs = add_data_mean(BufferSet(env), ctx)
        parts = [("data", count(ctx.top_shapes[0]) * 4)]
        if len(ctx.top_shapes) > 1:
            parts.append(("label", count(ctx.top_shapes[1]) * 4))
        for i in range(PREFETCH_COUNT):
            for what, nbytes in parts:
                bs.host_then_compute(f"prefetch batch {i} {what}", nbytes, "setup", "setup",
                                     Kind.PREFETCH, note="BasePrefetchingDataLayer::LayerSetUp")
        return bs.items

    def default_channels(self, ctx: LayerCtx) -> Optional[int]:
        return channels_hint(ctx.param.transform_param)

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
                                  ctx.tops[:1], (c or 3, h or 224, w or 224))
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
            ctx.assumptions.append((ctx.tops[1], "sized for one box, [1,1,1,8]; Caffe sizes it for "
                                    "the boxes of the database's first record (the log's Top shape "
                                    "of this blob)", f"--input {ctx.tops[1]}=1,1,B,8"))
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
    else ``[C]``.

    Backward reads the top diff and writes the bottom diff before any propagate_down check
    (cpp:139-142, cu:111-114).  With ``channel_shared`` the GPU code reads the scale (cu:61,
    124) and writes its diff (cu:142) on the host."""

    type = "Normalize"
    fork = FORK

    def setup(self, ctx: LayerCtx) -> Setup:
        b = ctx.bottom(0)
        if len(b) < 2:
            raise ctx.fail(f"number of axes of bottom blob must be >= 2; got {list(b)}")
        c = legacy_dim(ctx, b, 1)
        scale = () if ctx.param.norm_param.channel_shared else (c,)
        return Setup([tuple(b)], [scale])

    def flops(self, ctx: LayerCtx) -> Flops:
        """``normalize_layer.cpp`` Forward, per image: the squares (a multiply per element);
        across_spatial: their sum + eps and its square root (an add per element, one add and
        a sqrt per image), then the image scaled by 1/norm (one divide, a multiply per
        element); else the sum over the channels per location (started at eps: an add per
        element), its square root per location and a divide per element; last the scale (a
        multiply per element)."""
        b = ctx.bottom(0)
        n = count(b)
        num = legacy_dim(ctx, b, 0)
        if ctx.param.norm_param.across_spatial:
            return Flops(macs=3 * n, adds=n + num, exps=num, divides=num)
        spatial = legacy_dim(ctx, b, 2) * legacy_dim(ctx, b, 3)
        return Flops(macs=2 * n, adds=n, exps=num * spatial, divides=n)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``normalize_layer.cpp``/``.cu`` (N, C, H, W by the legacy accessors):
        ``sum_channel_multiplier_`` [C] and ``sum_spatial_multiplier_`` [H*W] of ones, host in
        LayerSetUp (cpp:27-31).  Forward: ``buffer_`` [C*H*W] (one image) and ``norm_`` ([N]
        across_spatial, else [N*H*W]); the GPU code keeps an across-spatial ``norm_`` on the
        host (cu:51-58) and reads ``sum_channel_multiplier_`` on the device (cu:65).
        Backward, unconditionally: ``buffer_channel_`` [C], ``buffer_spatial_`` [H*W]
        (cpp:145-147, cu:128-132), and on the GPU both multipliers."""

        b = ctx.bottom(0)
        n, c, h, w = (legacy_dim(ctx, b, i) for i in range(4))
        across = ctx.param.norm_param.across_spatial
        bs = BufferSet(env)
        bs.host_then_compute("sum_channel_multiplier", c * 4, "setup", "forward")
        bs.host_then_compute("sum_spatial_multiplier", h * w * 4, "setup", "backward")
        bs.add("buffer", c * h * w * 4, note="one image: squares, then scales")
        if across:
            bs.add("norm", n * 4, side="host", note="one norm per image")
        else:
            bs.add("norm", n * h * w * 4, note="one norm per location")
        bs.add("buffer_channel", c * 4, "backward")
        bs.add("buffer_spatial", h * w * 4, "backward")
        return bs.items

    def _scale_side(self, v: View) -> str:
        return "host" if v.side == "gpu" and v.param.norm_param.channel_shared else v.side

    def forward_touches(self, v: View) -> list[Touch]:
        s = v.side
        return [Touch(BOTTOM, 0, DATA, s), Touch(PARAM, 0, DATA, self._scale_side(v)),
                Touch(TOP, 0, DATA, s)]

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        s = v.side
        out = [Touch(TOP, 0, DIFF, s), Touch(TOP, 0, DATA, s), Touch(BOTTOM, 0, DATA, s),
               Touch(BOTTOM, 0, DIFF, s), Touch(PARAM, 0, DATA, self._scale_side(v))]
        if ppd and ppd[0]:
            out.append(Touch(PARAM, 0, DIFF, self._scale_side(v)))
        return out


def permute_needed(param, bottom_shape) -> bool:
    """``PermuteLayer::LayerSetUp``'s ``need_permute_``: the listed orders, then the unlisted
    axes in natural order, differ from the natural order (permute_layer.cpp:36-61)."""
    n = len(bottom_shape)
    orders: list[int] = []
    for o in param.permute_param.order:
        if o not in orders:
            orders.append(int(o))
    orders += [i for i in range(n) if i not in orders]
    return any(o != i for i, o in enumerate(orders))


@register
class Permute(LayerRule):
    """``permute_layer.cpp``: the listed ``order`` axes first, then the unlisted ones in their
    natural order.  (With the natural order the Forward shares the bottom's data instead of
    copying it; the top is still reshaped and counted in the log.)

    In the natural order Forward does ``top->ShareData(bottom)`` and Backward
    ``bottom->ShareDiff(top)`` (cpp:110-113, 129-132): no touches, shared memory.  Otherwise
    Forward copies (bottom ``mutable_*_data``), and Backward writes the top and bottom diffs
    before any propagate_down check (cpp:119-121, cu:57-59)."""

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

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # copies in the new order

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``permute_layer.cpp``/``.cu``: ``permute_order_``, ``old_steps_`` and
        ``new_steps_`` (``Blob<int>``, one int per axis) written on the host in
        LayerSetUp/Reshape (cpp:64-94); when a permutation is needed the GPU Forward reads
        them on the device (cu:38-40).  In the natural order the top shares the bottom's data
        and diff (:meth:`shares`)."""

        n = len(ctx.bottom(0))
        natural = [int(o) for o in ctx.param.permute_param.order]
        natural += [i for i in range(n) if i not in natural]
        need = any(o != i for i, o in enumerate(natural))
        bs = BufferSet(env)
        for name in ("permute_order", "old_steps", "new_steps"):
            bs.host_then_compute(name, n * 4, "setup", "forward" if need else "")
        return bs.items

    def _needed(self, v: View) -> bool:
        return permute_needed(v.param, v.bottom_shapes[0] if v.bottom_shapes else ())

    def shares(self, v: View) -> list[tuple[tuple, tuple]]:
        if self._needed(v):
            return []
        return [((TOP, 0, DATA), (BOTTOM, 0, DATA)), ((TOP, 0, DIFF), (BOTTOM, 0, DIFF))]

    def forward_touches(self, v: View) -> list[Touch]:
        if not self._needed(v):
            return []
        return [Touch(BOTTOM, 0, DATA, v.side), Touch(TOP, 0, DATA, v.side)]

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        if not self._needed(v):
            return []
        return [Touch(TOP, 0, DIFF, v.side), Touch(BOTTOM, 0, DIFF, v.side)]


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

    def flops(self, ctx: LayerCtx) -> Flops:
        """``prior_box_layer.cpp``: per location its centre (two multiply-adds); per prior
        coordinate ``(center -/+ size / 2) / image size`` (an add, two divides) and, with
        ``clip``, ``min(max(x, 0), 1)`` (two comparisons); the variances are copies."""
        b = ctx.bottom(0)
        locations = legacy_dim(ctx, b, 2) * legacy_dim(ctx, b, 3)
        coords = ctx.top_shapes[0][2] if ctx.top_shapes else 0
        clip = 2 * coords if ctx.param.prior_box_param.clip else 0
        return Flops(macs=2 * locations, adds=coords, divides=2 * coords, comparisons=clip)

    def cpu_only(self, param) -> bool:
        return True

    def buffers(self, ctx: LayerCtx, env) -> list:
        """None: prior_box_layer.cpp (CPU only) writes the top on the host from the bottoms'
        shapes."""
        return []

    def forward_touches(self, v: View) -> list[Touch]:
        """Forward writes the top on the host from the bottoms' *shapes* (cpp:120-140, no
        bottom data read)."""
        return [Touch(TOP, 0, DATA, "host")]

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        """Backward returns (hpp:61-64)."""
        return []


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

    def flops(self, ctx: LayerCtx) -> Optional[Flops]:
        """Not counted: the decoding and non-maximum suppression work on the boxes that pass
        the confidence threshold, which are data."""
        return None

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``detection_output_layer.cu`` (GPU Forward; the CPU Forward decodes into C++
        vectors, no blobs): ``bbox_preds_`` (loc-sized) decoded on the device (cu:27), then
        read on the host -- itself with ``share_location``, else through ``bbox_permute_``
        (loc-sized, device then host, cu:35-41); ``conf_permute_`` (conf-sized, device then
        host, cu:45-48).  Not modeled: the top grows in Forward to the kept detections (at
        most ``keep_top_k`` rows of 7 floats per image, data-dependent; modeled at its set-up
        shape [1, 1, 1, 7]), and the DataTransformer of ``visualize``."""

        if not env.gpu:
            return []
        loc, conf = count(ctx.bottom(0)) * 4, count(ctx.bottom(1)) * 4
        bs = BufferSet(env)
        bs.add("bbox_preds", loc, note="decoded boxes")
        if ctx.param.detection_output_param.share_location:
            bs.add("bbox_preds", loc, side="host", note="read back for NMS")
        else:
            bs.add("bbox_permute", loc).add("bbox_permute", loc, side="host")
        bs.add("conf_permute", conf).add("conf_permute", conf, side="host")
        return bs.items

    def forward_touches(self, v: View) -> list[Touch]:
        """Reads loc, conf and priors where it computes (cu:22-23, 46) and writes the
        detections with ``top->mutable_cpu_data()`` (host, cu:116/125, cpp:285/294); the image
        (bottom 3) is read on the host only to ``visualize``."""
        out = [Touch(BOTTOM, i, DATA, v.side) for i in range(min(3, v.n_bottoms))]
        if v.n_bottoms > 3 and v.param.detection_output_param.visualize:
            out.append(Touch(BOTTOM, 3, DATA, "host"))
        return out + [Touch(TOP, 0, DATA, "host")]

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return []  # NOT_IMPLEMENTED (``caffe time`` aborts on it)


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

    def flops(self, ctx: LayerCtx) -> Optional[Flops]:
        """Not counted: matching detections to ground truth depends on both, which are data."""
        return None

    def cpu_only(self, param) -> bool:
        return True

    def buffers(self, ctx: LayerCtx, env) -> list:
        """None: detection_evaluate_layer.cpp (CPU only) evaluates into C++ maps and the top;
        its Reshape reads the detections on the host (:meth:`setup_touches`)."""
        return []

    def setup_touches(self, v: View) -> list[Touch]:
        """``Reshape`` reads the detections on the host to count the valid rows (cpp:65), so
        SetUp already allocates them."""
        return [Touch(BOTTOM, 0, DATA, "host")]

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return []  # NOT_IMPLEMENTED


@register
class MultiBoxLoss(LossRule):
    """``multibox_loss_layer.cpp``: bottoms loc, conf, priors, ground truth; a scalar loss.

    No .cu: the CPU code runs in GPU mode (host touches); its inner loss layers run on the
    GPU and are the rule's buffers.  Backward writes the loc and conf diffs only (cpp:270-271,
    311-312; priors and labels are FATAL).  Without negative mining ``conf_pred_`` shares
    bottom 1's data and Backward ends with ``bottom[1]->ShareDiff(conf_pred_)`` (cpp:227,
    362): bottom 1's diff is the rule's ``conf_pred diff`` buffer."""

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

    def flops(self, ctx: LayerCtx) -> Optional[Flops]:
        """Not counted: matching priors to ground-truth boxes and mining negatives depend on
        the labels, which are data."""
        return None

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``multibox_loss_layer.cpp`` (CPU code in both modes) and the inner loss layers it
        runs through ``Layer::Forward``/``Backward`` (on the GPU in GPU mode; the inner softmax
        is made by the factory, so cuDNN in a cuDNN build).  N images, P priors, K classes.

        - LayerSetUp (host): the inner losses' top diffs (loss weights, 1 float each), and
          the inner softmax's/sigmoid's set-up buffers at the fake shapes of cpp:62-123.
        - Confidence rows R: ``mining_type: NONE`` gives R = N*P (cpp:204) and ``conf_pred_``
          shares bottom 1's data (cpp:227); its diff [N*P*K] is scratch for the inner loss's
          GPU Forward and, after Backward's ``bottom[1]->ShareDiff(conf_pred_)`` (cpp:362),
          bottom 1's diff (kind ``diffs``).  With mining R = matches + negatives, known only
          at run time: the blobs are modeled at their LayerSetUp shapes (R = 1) and the note
          gives the bound (R <= N*P).
        - Every row-sized blob: ``conf_gt_`` [R] (SOFTMAX) or [R*K] (LOGISTIC), host then
          device; SOFTMAX: ``prob_`` and its diff [R*K] (counts; the inner softmax has the
          loss weight), the Caffe softmax's ``scale_`` [R] and ``sum_multiplier_`` [K];
          LOGISTIC: ``sigmoid_output_`` and its diff [R*K], and on the GPU ``conf_gt_``'s
          diff [R*K] (Forward scratch).
        - Mining, GPU build (bbox_util.cpp:895-903 compiles ComputeConfLossGPU unless
          CPU_ONLY): temporaries of each Forward (bbox_util.cu:573-633): ``match_blob`` and
          ``conf_loss_blob`` [N*P] (host and device), SOFTMAX ``prob_blob`` [N*P*K] (device);
          SoftMaxGPU's ``scale`` [N*P] is freed before ``conf_loss_blob`` is made, so it never
          adds to the call's peak and is left out.  cpu mode is taken as a CPU_ONLY build.
        - ``loc_pred_``/``loc_gt_`` [4 * matches] (host, then device for the inner loss), the
          inner loss's ``diff_`` (and SmoothL1's ``errors_``), ``loc_pred_``'s diff in
          Backward: data-dependent, modeled at LayerSetUp's [1, 4] (bound: loc-sized).
        """

        mp = ctx.param.multibox_loss_param
        loc, conf = ctx.bottom(0), ctx.bottom(1)
        n = legacy_dim(ctx, loc, 0)
        priors = legacy_dim(ctx, ctx.bottom(2), 2) // 4
        k = mp.num_classes
        mining = mp.mining_type != 0  # MiningType NONE = 0
        softmax = mp.conf_loss_type == 0  # SOFTMAX (else LOGISTIC)
        rows = 1 if mining else n * priors
        bound = "" if not mining else (f"; data-dependent (matches + negatives rows), modeled "
                                       f"at LayerSetUp's 1 row, at most {n * priors}")
        bs = BufferSet(env)
        c = "compute"

        # the inner losses' scalar tops: the loss weight (loc_weight, 1) set on the host by
        # Layer::SetLossWeights at SetUp; the value written with mutable_cpu_data in both
        # modes; in GPU mode Layer::Forward's loss dot product reads both on the device
        for name, weight in (("loc_loss", mp.loc_weight), ("conf_loss", 1.0)):
            bs.add(name, 4, side="host", note="inner loss value")
            if weight:
                bs.add(name + " diff", 4, "setup", side="host", note="inner loss weight")
                if env.gpu:
                    bs.add(name, 4, side="gpu").add(name + " diff", 4, side="gpu")

        # localization: [1, 4 * num_matches], data-dependent; LayerSetUp's [1, 4]
        note = ("data-dependent (4 floats per matched prior), modeled at LayerSetUp's [1, 4]; "
                f"at most {count(loc) * 4} bytes")
        for name in ("loc_pred", "loc_gt"):
            bs.add(name, 16, side="host", note=note).add(name, 16, side=c, note=note)
        bs.add("loc diff_", 16, note="inner loss " + note)
        if mp.loc_loss_type == 1:  # SMOOTH_L1
            bs.add("loc errors_", 16, note="inner SmoothL1Loss " + note)
        bs.add("loc_pred diff", 16, "backward", side=c, needs="bottom_diff", note=note)
        bs.add("loc_pred diff", 16, "backward", side="host", needs="bottom_diff", note=note)

        # confidence rows
        rk = rows * k * 4
        if mining:
            bs.add("conf_pred", rk, side="host", note="own copy of the mined rows" + bound)
            bs.add("conf_pred", rk, side=c, note="own copy of the mined rows" + bound)
        pred_diff_kind = Kind.INTERNAL if mining else Kind.DIFFS
        pred_note = "conf_pred_'s diff" + (bound if mining else
                                           "; bottom 1's diff after ShareDiff (cpp:362)")
        if env.gpu:  # the inner loss's GPU Forward writes per-element losses into it
            bs.add("conf_pred diff", rk, kind=pred_diff_kind, note=pred_note)
        bs.add("conf_pred diff", rk, "backward", kind=pred_diff_kind, side=c, needs="bottom_diff",
               note=pred_note)
        bs.add("conf_pred diff", rk, "backward", kind=pred_diff_kind, side="host",
               needs="bottom_diff", note=pred_note)
        gt = rows * 4 if softmax else rk
        bs.add("conf_gt", gt, side="host", note="labels per row" + bound)
        bs.add("conf_gt", gt, side=c, note="labels per row" + bound)
        # the inner softmax's / sigmoid's top diff holds the copied loss weight: filled on the
        # host at SetUp ([1, K]); without mining Forward grows the blob to R rows, a new
        # SyncedMemory touched where the inner loss computes
        out = "conf prob" if softmax else "conf sigmoid_output"
        if mining:
            bs.host_then_compute(out + " diff", rk, "setup", "forward", note="loss weight" + bound)
        else:
            bs.add(out + " diff (LayerSetUp shape)", k * 4, "setup", side="host",
                   note="loss weight at the fake [1, K]; Forward's growth replaces it")
            bs.add(out + " diff", rk, note="loss weight" + (", counts" if softmax else ""))
        bs.add(out, rk, note=("inner SoftmaxWithLoss prob_" if softmax else
                              "inner sigmoid output") + bound)
        if softmax:
            engine = Softmax().engine(caffe_pb2.LayerParameter(), env)  # made by the factory
            bs.host_then_compute("conf softmax sum_multiplier", k * 4, "setup",
                                 "" if engine == CUDNN else "forward")
            if engine != CUDNN:
                bs.add("conf softmax scale", rows * 4, note="inner softmax scale_" + bound)
        elif env.gpu:
            bs.add("conf_gt diff", rk, note="GPU Forward scratch (counts)" + bound)

        # hard-negative mining on the GPU: temporaries of ComputeConfLossGPU
        if mining and env.gpu:
            npr = n * priors * 4
            for name in ("mining match_blob", "mining conf_loss_blob"):
                bs.add(name, npr, side="host", transient=True)
                bs.add(name, npr, side="gpu", transient=True)
            if softmax:  # (SoftMaxGPU's scale [N*P] is freed before conf_loss_blob exists)
                bs.add("mining prob_blob", count(conf) * 4, side="gpu", transient=True)
        return bs.items

    def cpu_only(self, param) -> bool:
        return True

    def shares(self, v: View) -> list[tuple[tuple, tuple]]:
        if v.n_bottoms > 1 and v.param.multibox_loss_param.mining_type == 0:  # NONE
            return [((BOTTOM, 1, DIFF), (BUFFER, "conf_pred diff", DATA))]
        return []

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index < 2

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        s = v.side
        out = [Touch(BOTTOM, i, DIFF, s) for i, p in enumerate(pd[:2]) if p]
        return ([Touch(TOP, 0, DIFF, s)] + out) if out else []
