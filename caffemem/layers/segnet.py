"""SegNet's layers (Alex Kendall's Caffe fork, github.com/alexgkendall/caffe-segnet).

* ``Upsample`` (``src/caffe/layers/upsample_layer.cpp``): max-unpooling with the pooling
  mask as bottom 1; output size given exactly (``upsample_h``/``upsample_w``) or as
  ``H*scale - pad_out``.
* ``BN`` (``src/caffe/layers/bn_layer.cpp``): batch normalization with its own scale and
  shift, ``[1, C, 1, 1]`` each; optional tops for the batch mean and variance.
* ``DenseImageData`` (``src/caffe/layers/dense_image_data_layer.cpp``): image and label image
  pairs, ``[N, C, H, W]`` and ``[N, 1, H, W]``.
"""

from __future__ import annotations

from ..buffers import BufferSet, Kind
from ..pb import has_field
from .base import (BOTTOM, DIFF, NONE, PARAM, TOP, Flops, LayerCtx, LayerRule, NeedsInputShape,
                   Setup, Touch, View, count, legacy_dim, touch_all)
from .data import CopyingDataLayerRule, add_data_mean
from .registry import register

FORK = "segnet"




def legacy4(ctx: LayerCtx, shape) -> tuple[int, int, int, int]:
    return tuple(legacy_dim(ctx, shape, i) for i in range(4))  # type: ignore[return-value]


@register
class Upsample(LayerRule):
    """``UpsampleLayer``: exactly two 4-axis bottoms of the same shape (data and the
    pooling layer's argmax mask).  ``LayerSetUp`` accepts ``upsample_h`` and ``upsample_w``
    (both > 1), or the deprecated ``scale`` / ``scale_h`` + ``scale_w`` (> 1; default
    scale 2) with ``pad_out_h``/``pad_out_w`` (only with a factor of 2); ``Reshape`` then
    makes ``[N, C, H*scale_h - pad_out_h, W*scale_w - pad_out_w]``."""

    type = "Upsample"
    fork = FORK

    # Touches (upsample_layer.cpp/.cu): Forward reads the data and the mask (the default);
    # Backward returns unless bottom 0 propagates and never writes the mask's diff
    # (cpp:112-115, cu:50-53).

    def out_size(self, ctx: LayerCtx, h: int, w: int) -> tuple[int, int]:
        up = ctx.param.upsample_param
        has = lambda name: has_field(up, name)  # noqa: E731
        if not ((has("upsample_h") and has("upsample_w"))
                or (not has("scale") and has("scale_h") and has("scale_w"))
                or (not has("scale_h") and not has("scale_w"))):
            raise ctx.fail("upsample_h & upsample_w are required, else (DEPRECATED) "
                           "scale OR scale_h & scale_w are required")
        if has("upsample_h") and has("upsample_w"):
            uh, uw = up.upsample_h, up.upsample_w
            if uh <= 1 or uw <= 1:
                raise ctx.fail(f"upsample_h and upsample_w must be > 1 (got {uh}, {uw})")
            return uh, uw
        if not has("scale_h"):
            sh = sw = up.scale
            if sh <= 1:
                raise ctx.fail(f"scale must be > 1 (got {sh})")
        else:
            sh, sw = up.scale_h, up.scale_w
            if sh <= 1 or sw <= 1:
                raise ctx.fail(f"scale_h and scale_w must be > 1 (got {sh}, {sw})")
        if up.pad_out_h and sh != 2:
            raise ctx.fail("output height padding compensation (pad_out_h) requires scale_h == 2")
        if up.pad_out_w and sw != 2:
            raise ctx.fail("output width padding compensation (pad_out_w) requires scale_w == 2")
        return h * sh - int(up.pad_out_h), w * sw - int(up.pad_out_w)

    def setup(self, ctx: LayerCtx) -> Setup:
        if len(ctx.bottom_shapes) != 2:
            raise ctx.fail(f"SegNet's Upsample takes exactly 2 bottoms (data and the pooling mask); "
                           f"got {len(ctx.bottom_shapes)}")
        data, mask = ctx.bottom(0), ctx.bottom(1)
        if len(data) != 4 or len(mask) != 4:
            raise ctx.fail(f"input and mask must have 4 axes (num, channels, height, width); "
                           f"got {list(data)} and {list(mask)}")
        if tuple(data) != tuple(mask):
            raise ctx.fail(f"input and mask must have the same shape; got {list(data)} and {list(mask)}")
        n, c, h, w = data
        uh, uw = self.out_size(ctx, h, w)
        return Setup([(n, c, uh, uw)])

    def flops(self, ctx: LayerCtx) -> Flops:
        return NONE  # each input is written where its mask says: no arithmetic

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0  # never into the mask

    def buffers(self, ctx: LayerCtx, env) -> list:
        """None: upsample_layer.cpp/.cu write straight into the top (and bottom 0's diff)."""
        return []

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        if not (pd and pd[0]):
            return []
        return [Touch(TOP, 0, DIFF, v.side), Touch(BOTTOM, 0, DIFF, v.side)]


@register
class BN(LayerRule):
    """``BNLayer``: top 0 is the bottom seen as 4 axes (``Reshape(num, channels, height,
    width)``, so an ``[N, C]`` bottom gives ``[N, C, 1, 1]``); scale and shift ``[1, C, 1, 1]``;
    tops 1 and 2 (LEARN mode only) are the batch mean and variance, ``[1, C, 1, 1]``.

    Backward reads the top diff and writes the bottom diff and both param diffs (scale,
    shift) with no propagate_down or param_propagate_down check (cpp:236-241, cu:149-152,
    172/183 and 278/289)."""

    type = "BN"
    fork = FORK

    def setup(self, ctx: LayerCtx) -> Setup:
        n, c, h, w = legacy4(ctx, ctx.bottom(0))
        max_tops = 1 if getattr(ctx.param.bn_param, "bn_mode", 0) == 1 else 3  # INFERENCE = 1
        if not 1 <= len(ctx.tops) <= max_tops:
            raise ctx.fail(f"takes 1 to {max_tops} tops in this bn_mode; got {len(ctx.tops)}")
        tops = [(n, c, h, w)] + [(1, c, 1, 1)] * (len(ctx.tops) - 1)
        return Setup(tops, [(1, c, 1, 1), (1, c, 1, 1)])

    def flops(self, ctx: LayerCtx) -> Flops:
        """``bn_layer.cpp`` Forward.  INFERENCE: ``x * scale + shift`` (a multiply and an add
        per element; the broadcasts are GEMMs with ones).  LEARN (every phase): the squares
        (``caffe_powx``: a pow per element), E[X] and E[X^2] (a sum per element, per (item,
        channel) and per channel, each GEMV scaling its outputs), per channel (EX)^2 and the
        subtraction, the mean subtracted (an add per element), per channel + eps and the
        square root, then a divide, the scale and the shift per element."""
        n, c, h, w = legacy4(ctx, ctx.bottom(0))
        total = n * c * h * w
        if getattr(ctx.param.bn_param, "bn_mode", 0) == 1:  # INFERENCE
            return Flops(macs=total, adds=total)
        moments = 2 * Flops(adds=total + n * c, macs=n * c + c)
        per_channel = Flops(exps=2 * c, adds=2 * c)
        return moments + per_channel + Flops(exps=total, adds=2 * total, divides=total, macs=total)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``bn_layer.cpp``/``.cu`` (N, C, H, W by the legacy accessors).  Reshape fills, on
        the host, ``spatial_sum_multiplier_`` [H*W] and ``batch_sum_multiplier_`` [N] -- data
        (ones) *and* diff (zeros) (cpp:36-49).  Forward, GPU (cu:13-116): ``buffer_blob_``
        [N*C*H*W], ``spatial_mean_`` and ``spatial_variance_`` [N*C], both multipliers on the
        device; LEARN adds ``batch_mean_``/``batch_variance_`` [C] and ``x_norm_`` [N*C*H*W]
        (cu:93).  The same blobs on the host in CPU mode (cpp:94-200); INFERENCE keeps no
        ``x_norm_`` (cpp:202-226, cu:117-139).  Backward (unconditional): nothing new on the
        GPU; on the CPU the diffs of ``spatial_variance_`` and ``spatial_mean_`` [N*C]
        (cpp:254/265, 366/377).  So a LEARN BN holds two bottom-sized buffers: the
        allocation at cu:17 (``buffer_blob_``) or cu:93 (``x_norm_``) is where SegNet runs out
        of memory in Forward_gpu."""

        n, c, h, w = legacy4(ctx, ctx.bottom(0))
        learn = getattr(ctx.param.bn_param, "bn_mode", 0) == 0  # LEARN
        full = n * c * h * w * 4
        bs = BufferSet(env)
        for name, size in (("spatial_sum_multiplier", h * w * 4), ("batch_sum_multiplier", n * 4)):
            bs.host_then_compute(name, size, "setup", "forward", note="ones (Reshape)")
            bs.add(name + " diff", size, "setup", side="host", note="zeros (Reshape)")
        bs.add("spatial_mean", n * c * 4)
        bs.add("buffer_blob", full, note="bottom-sized scratch")
        bs.add("spatial_variance", n * c * 4)
        if learn:
            bs.add("batch_mean", c * 4).add("batch_variance", c * 4)
            bs.add("x_norm", full, note="normalized input kept for Backward")
        if not env.gpu:
            bs.add("spatial_variance diff", n * c * 4, "backward")
            bs.add("spatial_mean diff", n * c * 4, "backward")
        return bs.items

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        s = v.side
        return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)] + \
            touch_all(PARAM, v.n_params, DIFF, s)


@register
class DenseImageData(CopyingDataLayerRule):
    """``DenseImageDataLayer::DataLayerSetUp``: images read with ``new_height`` x
    ``new_width`` (when both set), C = 3 if ``is_color`` else 1; ``transform_param.crop_size``
    (square) or ``crop_height`` x ``crop_width`` replace H x W.  Top 0 ``[N, C, H, W]``,
    top 1 (the label image) ``[N, 1, H, W]``."""

    type = "DenseImageData"
    fork = FORK

    def declared_batch(self, ctx: LayerCtx) -> int | None:
        return self._batch(ctx)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """SegNet's BasePrefetchingDataLayer is the older single-batch one
        (base_data_layer.cpp:30-45): LayerSetUp touches ``prefetch_data_`` [N, C, H, W] and
        ``prefetch_label_`` [N, 1, H, W] on the host only, in both modes; the prefetch
        thread fills them on the host and Forward copies them into the tops' own memory
        (``caffe_copy`` from ``cpu_data()`` to ``mutable_gpu_data()``, base_data_layer.cu:8-26),
        so the tops are ordinary activations (:meth:`forward_touches`); ``env.prefetch``
        does not apply.  ``transformed_data_``/``transformed_label_`` only point into the
        batch (``set_cpu_data``, dense_image_data_layer.cpp:192-196).  Plus the
        DataTransformer's ``data_mean_`` (host) for a ``mean_file``."""

        bs = add_data_mean(BufferSet(env), ctx)
        for what, shape in zip(("data", "label"), ctx.top_shapes):
            bs.add(f"prefetch {what}", count(shape) * 4, "setup", Kind.PREFETCH, side="host",
                   note="the one prefetch batch (host only)")
        return bs.items

    def _batch(self, ctx: LayerCtx) -> int:
        b = ctx.batch_override if ctx.batch_override is not None else \
            ctx.param.dense_image_data_param.batch_size
        if b <= 0:
            raise ctx.fail("dense_image_data_param.batch_size must be positive (set it, or use --batch N)")
        return b

    def setup(self, ctx: LayerCtx) -> Setup:
        dp = ctx.param.dense_image_data_param
        if len(ctx.tops) != 2:
            raise ctx.fail(f"takes exactly 2 tops (image and label); got {len(ctx.tops)}")
        if not ((dp.new_height == 0 and dp.new_width == 0) or (dp.new_height > 0 and dp.new_width > 0)):
            raise ctx.fail("new_height and new_width must be set at the same time")
        if not ((dp.crop_height == 0 and dp.crop_width == 0) or (dp.crop_height > 0 and dp.crop_width > 0)):
            raise ctx.fail("crop_height and crop_width must be set at the same time")
        batch = self._batch(ctx)
        c = 3 if dp.is_color else 1
        crop = ctx.param.transform_param.crop_size
        if crop > 0:
            h = w = crop
        elif dp.crop_height > 0:
            h, w = dp.crop_height, dp.crop_width
        elif dp.new_height > 0:
            h, w = dp.new_height, dp.new_width
        elif 0 in ctx.overrides:
            o = tuple(ctx.overrides[0])
            return Setup([o, (o[0], 1) + o[2:]])
        else:
            raise NeedsInputShape(ctx.name, ctx.type,
                                  f"images are not resized or cropped (no new_height/new_width, no crop), "
                                  f"so the shape is the first image's (C = {c}, batch_size {batch})",
                                  ctx.tops, (c, 224, 224))
        return Setup([(batch, c, h, w), (batch, 1, h, w)])
