"""DeepLab v2's ``Interp`` layer (bilinear resize; DeepLab v2's Caffe, mirrored at
github.com/maweifei/deeplab-ver2, ``src/caffe/layers/interp_layer.cpp``; PSPNet's Caffe
carries the same layer).

``Reshape``: with ``pad_beg``/``pad_end`` (<= 0: cropping) the effective input is
``H_eff = H + pad_beg + pad_end``; then, in this order of precedence:

* ``shrink_factor`` alone:  ``(H_eff - 1) / s + 1``  (integer division)
* ``zoom_factor`` alone:    ``H_eff + (H_eff - 1) * (z - 1)``
* ``height`` and ``width``: as given
* both factors: shrink, then zoom the shrunk size
* otherwise, with a second bottom: that bottom's height and width (this branch is in the
  v2 mirror above and in PSPNet; the original DeepLab v2 stops with a FATAL there).

"Has" means "set in the prototxt" (the factors default to 1 but are only used when set).
"""

from __future__ import annotations

from ..pb import has_field
from .base import (BOTTOM, DATA, DIFF, NONE, TOP, Flops, LayerCtx, LayerRule, Setup, Touch, View,
                   count, legacy_dim)
from .registry import register

FORK = "deeplab"


def _cdiv(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def interp_size(ctx: LayerCtx, h: int, w: int) -> tuple[int, int]:
    ip = ctx.param.interp_param
    pb, pe = ip.pad_beg, ip.pad_end
    if pb > 0 or pe > 0:
        raise ctx.fail(f"only non-positive padding (cropping) is supported (pad_beg {pb}, pad_end {pe})")
    he, we = h + pb + pe, w + pb + pe
    has_s, has_z = has_field(ip, "shrink_factor"), has_field(ip, "zoom_factor")
    s, z = ip.shrink_factor, ip.zoom_factor
    if has_s and s < 1:
        raise ctx.fail(f"shrink factor must be positive (got {s})")
    if has_z and z < 1:
        raise ctx.fail(f"zoom factor must be positive (got {z})")
    if has_s and not has_z:
        ho, wo = _cdiv(he - 1, s) + 1, _cdiv(we - 1, s) + 1
        how = f"({he} - 1) / {s} + 1"
    elif has_z and not has_s:
        ho, wo = he + (he - 1) * (z - 1), we + (we - 1) * (z - 1)
        how = f"{he} + ({he} - 1) * ({z} - 1)"
    elif has_field(ip, "height") and has_field(ip, "width"):
        ho, wo = ip.height, ip.width
        how = "interp_param height"
    elif has_s and has_z:
        ho, wo = _cdiv(he - 1, s) + 1, _cdiv(we - 1, s) + 1
        ho, wo = ho + (ho - 1) * (z - 1), wo + (wo - 1) * (z - 1)
        how = f"shrink by {s} then zoom by {z} of {he}"
    elif len(ctx.bottom_shapes) == 2:
        ref = ctx.bottom(1)
        ho, wo = legacy_dim(ctx, ref, 2), legacy_dim(ctx, ref, 3)
        how = f"bottom 1's height {list(ref)}"
    else:
        raise ctx.fail("give interp_param zoom_factor and/or shrink_factor, or height and width "
                       "(or a second bottom whose size to take)")
    ctx.check_positive("effective input height", he, f"{h} + pad_beg {pb} + pad_end {pe}")
    ctx.check_positive("effective input width", we, f"{w} + pad_beg {pb} + pad_end {pe}")
    ctx.check_positive("output height", ho, how)
    ctx.check_positive("output width", wo, how)
    return ho, wo


@register
class Interp(LayerRule):
    """Top ``[N, C, H_out, W_out]``; bilinear.  Forward
    reads bottom 0 only (bottom 1 only gives a size, interp_layer.cpp:71-73, 90-92); Backward
    returns unless bottom 0 propagates (cpp:79, 98)."""

    type = "Interp"
    fork = FORK

    def setup(self, ctx: LayerCtx) -> Setup:
        b = ctx.bottom(0)
        n, c, h, w = (legacy_dim(ctx, b, i) for i in range(4))
        ho, wo = interp_size(ctx, h, w)
        return Setup([(n, c, ho, wo)])

    def flops(self, ctx: LayerCtx) -> Flops:
        """``caffe_cpu_interp2`` (util/interp.cpp): per output element ``h0 * (w0 * p00 + w1 *
        p01) + h1 * (w0 * p10 + w1 * p11)``, six multiply-adds (the weights are per
        position, shared by the channels)."""
        return Flops(macs=6 * count(ctx.top_shapes[0])) if ctx.top_shapes else NONE

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0

    def buffers(self, ctx: LayerCtx, env) -> list:
        """None: interp_layer.cpp and util/interp.cu interpolate straight between the blobs
        (bottom 1, if any, only gives a size)."""
        return []

    def forward_touches(self, v: View) -> list[Touch]:
        return [Touch(BOTTOM, 0, DATA, v.side), Touch(TOP, 0, DATA, v.side)]

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        if not (pd and pd[0]):
            return []
        return [Touch(TOP, 0, DIFF, v.side), Touch(BOTTOM, 0, DIFF, v.side)]
