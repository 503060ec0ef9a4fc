"""Data layers: where a net's input shapes come from.

Shapes are those at SetUp time (what the log prints): ``batch_size x C x H x W`` with a crop
replacing H and W.  Labels of the database layers are 1-D ``[batch_size]``.  Where the image
size lives only in a database or an image file (Data without crop, ImageData without resize,
HDF5Data, WindowData's channels) the rule asks for ``--input``; a Data layer whose LMDB exists
is read when the optional ``lmdb`` package is installed (see :mod:`caffemem.datasource`).
"""

from __future__ import annotations

import os

from ..buffers import BufferSet, Kind
from ..datasource import first_datum_shape
from ..pb import caffe_pb2
from .base import (DATA, NONE, TOP, Flops, LayerCtx, LayerRule, NeedsInputShape, Setup, Touch, View,
                   count, touch_all)
from .registry import register


def _batch(ctx: LayerCtx, value: int) -> int:
    b = ctx.batch_override if ctx.batch_override is not None else value
    if b <= 0:
        raise ctx.fail("batch_size must be positive (set batch_size, or use --batch N)")
    return b


def channels_hint(tp) -> int | None:
    """Channels knowable from the transform_param: a per-channel mean, or force_color/gray."""
    if len(tp.mean_value) > 1:
        return len(tp.mean_value)
    if tp.force_color:
        return 3
    if tp.force_gray:
        return 1
    return None


class DataLayerRule(LayerRule):
    """A layer with no bottoms whose tops are the net's input (``InputLayer`` and its kin).
    Like ``InputLayer``, Forward and Backward touch nothing: the tops are allocated by the
    layers that read them."""

    is_data = True
    has_backward = False

    def declared_batch(self, ctx: LayerCtx) -> int | None:
        """The batch size the prototxt gives (after ``--batch``), for ``--input top=*,C,H,W``."""
        return None

    def flops(self, ctx: LayerCtx) -> Flops:
        """Forward only hands over (or copies) a batch: the transformer's mean subtraction and
        scaling run in the prefetch thread, or when the data is given (MemoryData)."""
        return NONE

    def forward_touches(self, v: View) -> list[Touch]:
        return []

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return []


class CopyingDataLayerRule(DataLayerRule):
    """A data layer whose Forward copies into the tops' **own** memory
    (``mutable_cpu_data``/``mutable_gpu_data``, where the layer computes)."""

    def forward_touches(self, v: View) -> list[Touch]:
        return touch_all(TOP, v.n_tops, DATA, v.side)


def mean_file_bytes(ctx: LayerCtx, tp) -> tuple[int, str]:
    """Bytes of the ``data_mean_`` blob a DataTransformer loads from ``mean_file``, and how
    we know.

    ``data_mean_.FromProto`` gives the blob the mean file's own shape (data_transformer.cpp:
    20-29), which Transform CHECKs equals the *uncropped* datum (data_transformer.cpp:62-64):
    so the file's shape when it is at hand; else one database image (C x H x W, before
    cropping); else, without a crop, one top image (the datum); else (a crop, no file, no
    database) the uncropped size is unknown: one cropped image, a lower bound, said as an
    assumption (``ctx.assumptions``) with how to correct it."""
    path = tp.mean_file
    for cand in ([path] if os.path.isabs(path) else [path, os.path.join(ctx.net_dir, path)]):
        if os.path.isfile(cand):
            try:
                blob = caffe_pb2.BlobProto()
                with open(cand, "rb") as f:
                    blob.ParseFromString(f.read())
                dims = list(blob.shape.dim) or [blob.num, blob.channels, blob.height, blob.width]
                n = 1
                for d in dims:
                    n *= d
                return n * 4, f"mean file {cand}"
            except Exception:
                break
    if ctx.type == "Data":
        dp = ctx.param.data_param
        chw = first_datum_shape(dp.source, dp.backend, ctx.net_dir, tp)
        if chw is not None:
            c, h, w = chw
            return c * h * w * 4, "mean of one database image (mean file not found)"
    top = ctx.top_shapes[0] if ctx.top_shapes else ()
    n = 1
    for d in top[1:]:
        n *= d
    if not tp.crop_size:
        return n * 4, "mean file not found: one top image (without a crop, the datum's shape)"
    said = ("", f"its mean_file {path} is not at hand: data_mean_ taken as one cropped image "
                f"({' x '.join(map(str, top[1:]))}, {n * 4:,} B), a lower bound: Caffe's mean has "
                f"the uncropped image's shape (data_transformer.cpp:20-29, 62-64)",
            f"the mean file at {path} (read from the current directory, as Caffe does, then "
            f"from the net's folder)")
    if said not in ctx.assumptions:
        ctx.assumptions.append(said)
    return n * 4, "mean file not found: one cropped image (a lower bound)"


def add_data_mean(bs: BufferSet, ctx: LayerCtx) -> BufferSet:
    """The DataTransformer's ``data_mean_`` (host, at set up) when the layer's
    transform_param gives a ``mean_file`` (sized by :func:`mean_file_bytes`)."""
    tp = ctx.param.transform_param
    if tp.mean_file:
        nbytes, how = mean_file_bytes(ctx, tp)
        bs.add("data_mean", nbytes, "setup", side="host", note=how)
    return bs


class DatabaseLayerRule(DataLayerRule):
    """Data layers that emit ``[batch, C, H, W]`` images and ``[batch]`` labels: BVLC's
    prefetching layers (``BasePrefetchingDataLayer``).  ``Forward`` points the tops at the
    current prefetch batch (``set_cpu_data``/``set_gpu_data``), so the tops' own data is never
    allocated; the batches are modeled by the memory model (``external_tops``)."""

    external_tops = "prefetch"

    def buffers(self, ctx: LayerCtx, env) -> list:
        """The DataTransformer's ``data_mean_`` when a ``mean_file`` is given (host, at set
        up).  The prefetch batches are modeled by the memory model itself."""

        return add_data_mean(BufferSet(env), ctx).items

    def declared_batch(self, ctx: LayerCtx) -> int | None:
        return _batch(ctx, self.batch_param(ctx))

    def batch_param(self, ctx: LayerCtx) -> int:
        raise NotImplementedError

    def image_shape(self, ctx: LayerCtx) -> tuple[int, int, int]:
        """(C, H, W) of one image, or raise NeedsInputShape."""
        raise NotImplementedError

    def setup(self, ctx: LayerCtx) -> Setup:
        batch = _batch(ctx, self.batch_param(ctx))
        if 0 in ctx.overrides:
            data = tuple(ctx.overrides[0])
        else:
            data = (batch,) + tuple(self.image_shape(ctx))
        tops = [data]
        if len(ctx.tops) > 1:
            tops.append(self.label_shape(ctx, data))
        return Setup(tops)

    def label_shape(self, ctx: LayerCtx, data) -> tuple[int, ...]:
        return (data[0],)


@register
class Input(DataLayerRule):
    type = "Input"

    def declared_batch(self, ctx: LayerCtx) -> int | None:
        """The first shape's first dim (after ``--batch``), for ``--input data=*,C,H,W`` on a
        deploy net: its Input's batch, as a Data layer's batch_size is."""
        shapes = [tuple(s.dim) for s in ctx.param.input_param.shape]
        if ctx.batch_override is not None:
            return ctx.batch_override
        return shapes[0][0] if shapes and shapes[0] else None

    def setup(self, ctx: LayerCtx) -> Setup:
        shapes = [tuple(s.dim) for s in ctx.param.input_param.shape]
        ntop = len(ctx.tops)
        if len(shapes) not in (0, 1, ntop):
            raise ctx.fail(f"{len(shapes)} shapes for {ntop} tops: give one shape, or one per top")
        if not shapes:
            raise NeedsInputShape(ctx.name, ctx.type, "input_param has no shape", ctx.tops)
        tops = shapes * ntop if len(shapes) == 1 else shapes
        if ctx.batch_override is not None:
            tops = [(ctx.batch_override,) + s[1:] if s else s for s in tops]
        return Setup(tops)


@register
class DummyData(DataLayerRule):
    """``DummyDataLayer::LayerSetUp`` runs Forward once to fill its tops (CPU code only)."""

    type = "DummyData"

    def cpu_only(self, param) -> bool:
        return True

    def setup(self, ctx: LayerCtx) -> Setup:
        p = ctx.param.dummy_data_param
        ntop = len(ctx.tops)
        legacy = len(p.num) + len(p.channels) + len(p.height) + len(p.width) > 0
        if legacy:
            dims = [list(p.num), list(p.channels), list(p.height), list(p.width)]
            for d in dims:
                if len(d) not in (1, ntop):
                    raise ctx.fail("num, channels, height and width must each be given once or once per top")
            tops = [tuple(d[0] if len(d) == 1 else d[i] for d in dims) for i in range(ntop)]
        else:
            shapes = [tuple(s.dim) for s in p.shape]
            if len(shapes) not in (1, ntop):
                raise ctx.fail(f"{len(shapes)} shapes for {ntop} tops: give one shape, or one per top")
            tops = shapes * ntop if len(shapes) == 1 else shapes
        if ctx.batch_override is not None:
            tops = [(ctx.batch_override,) + s[1:] if s else s for s in tops]
        return Setup(tops)

    @staticmethod
    def _constant(v: View) -> list[bool]:
        """Per top: is its filler ``constant`` (the default when none is given)?"""
        fillers = list(v.param.dummy_data_param.data_filler)
        kinds = [f.type for f in fillers] or ["constant"]
        return [(kinds[i] if len(kinds) > 1 else kinds[0]) == "constant" for i in range(v.n_tops)]

    def buffers(self, ctx: LayerCtx, env) -> list:
        """A ``gaussian`` filler with ``sparse >= 0`` keeps its mask (``rand_vec_``, count x
        sizeof(int), written on the host: filler.hpp:76-90) in the filler, and DummyData keeps
        its fillers for good (``fillers_``, dummy_data_layer.cpp:63-74): the mask of the last
        top it filled stays, from the first Forward that refills it (103-108).  Each refill
        resets the mask before allocating the next one, so one filler shared by several tops
        holds the largest top's mask only while filling it."""
        fillers = list(ctx.param.dummy_data_param.data_filler)
        sparse = [f.type == "gaussian" and f.sparse >= 0 for f in fillers]
        counts = [count(s) for s in ctx.top_shapes]
        bs = BufferSet(env)
        if len(fillers) > 1:
            for i, n in enumerate(counts):
                if sparse[i]:
                    bs.add(f"top {i} sparse filler mask", 4 * n, "forward", side="host")
        elif sparse and sparse[0] and counts:
            bs.add("sparse filler mask", 4 * counts[-1], "forward", side="host")
            if max(counts) > counts[-1]:
                bs.add("sparse filler mask (largest top)", 4 * (max(counts) - counts[-1]),
                       "forward", side="host", transient=True)
        return bs.items

    def setup_touches(self, v: View) -> list[Touch]:
        """LayerSetUp runs Forward once with ``refill_`` inverted: only the tops with a
        constant filler are filled then (dummy_data_layer.cpp:53-68, 89-94)."""
        return [Touch(TOP, i, DATA, "host") for i, c in enumerate(self._constant(v)) if c]

    def forward_touches(self, v: View) -> list[Touch]:
        """Forward refills the tops whose filler is not constant, on the host
        (dummy_data_layer.cpp:103-110)."""
        return [Touch(TOP, i, DATA, "host") for i, c in enumerate(self._constant(v)) if not c]


@register
class Data(DatabaseLayerRule):
    """LMDB/LevelDB ``Data``: [batch, C, H, W] from the first datum, with crop."""

    type = "Data"

    def batch_param(self, ctx: LayerCtx) -> int:
        return ctx.param.data_param.batch_size

    def image_shape(self, ctx: LayerCtx) -> tuple[int, int, int]:
        dp, tp = ctx.param.data_param, ctx.param.transform_param
        batch = _batch(ctx, dp.batch_size)
        crop = tp.crop_size
        chw = first_datum_shape(dp.source, dp.backend, ctx.net_dir, tp)
        if chw is not None:
            c, h, w = chw
        else:
            c = channels_hint(tp)
            if c is None or not crop:
                known = []
                if crop:
                    known.append(f"crop_size {crop} gives H = W = {crop}")
                if c:
                    known.append(f"the transform gives C = {c}")
                raise NeedsInputShape(
                    ctx.name, ctx.type,
                    (f"the image size is stored in the database '{dp.source}', which caffemem "
                     "cannot read here" if dp.source else
                     "the image size is stored in its database, and data_param names none "
                     "(no source: a template, as DIGITS' original.prototxt)")
                    + (f" ({'; '.join(known)})" if known else "")
                    + (f"; batch_size is {batch}" if batch else ""),
                    ctx.tops[:1], (c or 3, crop or 224, crop or 224))
            h = w = crop
        if crop:
            h = w = crop
        return c, h, w


@register
class ImageData(DatabaseLayerRule):
    """``ImageData``: images listed in a text file, resized to new_height x new_width."""

    type = "ImageData"

    def batch_param(self, ctx: LayerCtx) -> int:
        return ctx.param.image_data_param.batch_size

    def image_shape(self, ctx: LayerCtx) -> tuple[int, int, int]:
        ip, tp = ctx.param.image_data_param, ctx.param.transform_param
        c = 3 if ip.is_color else 1
        if tp.crop_size:
            h = w = tp.crop_size
        elif ip.new_height and ip.new_width:
            h, w = ip.new_height, ip.new_width
        else:
            raise NeedsInputShape(ctx.name, ctx.type,
                                  "images are not resized (no new_height/new_width, no crop_size), "
                                  "so the shape is that of the first image", ctx.tops[:1],
                                  (c, 224, 224))
        return c, h, w


@register
class WindowData(DatabaseLayerRule):
    type = "WindowData"
    unmodeled = "cached images (cache_images) are not modeled"

    def batch_param(self, ctx: LayerCtx) -> int:
        return ctx.param.window_data_param.batch_size

    def image_shape(self, ctx: LayerCtx) -> tuple[int, int, int]:
        wp, tp = ctx.param.window_data_param, ctx.param.transform_param
        batch = _batch(ctx, wp.batch_size)
        crop = tp.crop_size or wp.crop_size
        if not crop:
            raise ctx.fail("crop_size must be set")
        c = channels_hint(tp)
        if c is None:
            raise NeedsInputShape(ctx.name, ctx.type,
                                  "the channel count is that of the first image in the window file "
                                  f"(crop_size {crop}, batch_size {batch})", ctx.tops[:1],
                                  (3, crop, crop))
        return c, crop, crop


@register
class MemoryData(DatabaseLayerRule):
    """Forward points the tops at the user's arrays (``MemoryDataLayer::Reset``), on the
    host."""

    type = "MemoryData"
    external_tops = "host"

    def batch_param(self, ctx: LayerCtx) -> int:
        return ctx.param.memory_data_param.batch_size

    def image_shape(self, ctx: LayerCtx) -> tuple[int, int, int]:
        mp = ctx.param.memory_data_param
        if not (mp.channels and mp.height and mp.width):
            raise ctx.fail("batch_size, channels, height and width must be specified and positive")
        return mp.channels, mp.height, mp.width

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``memory_data_layer.cpp``: DataLayerSetUp touches ``added_data_`` and
        ``added_label_`` (one batch) on the host; the tops point at the user's arrays."""

        n = 1
        for d in ctx.top_shapes[0]:
            n *= d
        batch = ctx.top_shapes[0][0] if ctx.top_shapes[0] else 1
        bs = BufferSet(env, list(super().buffers(ctx, env)))
        bs.add("added_data", n * 4, "setup", Kind.PREFETCH, side="host")
        bs.add("added_label", batch * 4, "setup", Kind.PREFETCH, side="host")
        return bs.items


@register
class HDF5Data(CopyingDataLayerRule):
    """Copies rows of the loaded HDF5 arrays into its own tops (host in CPU, device in GPU)."""

    type = "HDF5Data"
    unmodeled = ("the HDF5 files' arrays (hdf_blobs_, one file at a time) sit in host memory; "
                 "not modeled")

    def declared_batch(self, ctx: LayerCtx) -> int | None:
        return _batch(ctx, ctx.param.hdf5_data_param.batch_size)

    def setup(self, ctx: LayerCtx) -> Setup:
        hp = ctx.param.hdf5_data_param
        raise NeedsInputShape(ctx.name, ctx.type,
                              f"shapes come from the HDF5 files listed in '{hp.source}' "
                              f"(batch_size {hp.batch_size})", ctx.tops)


@register
class Python(LayerRule):
    """Python layers: shapes depend on user code; only ``--input`` can give them.  No GPU
    implementation: the Python code runs on the host in GPU mode too."""

    type = "Python"
    unmodeled = "memory the Python code allocates for itself is not modeled"

    def cpu_only(self, param) -> bool:
        return True

    def setup(self, ctx: LayerCtx) -> Setup:
        pp = ctx.param.python_param
        if not ctx.tops:
            return Setup([])
        raise NeedsInputShape(ctx.name, ctx.type,
                              f"a Python layer ({pp.module}.{pp.layer}) sets its top shapes in its "
                              f"own setup() code", ctx.tops)
