"""Which blob data and diffs a layer's Forward and Backward touch, per type, mode and engine.

SyncedMemory is lazy, so a blob's data or diff costs memory only if some call touches it.
Most layers follow one pattern, the default here:

- Forward reads every bottom's data and every param's data and writes every top's data;
- Backward, when asked to propagate to bottom ``i`` (``propagate_down[i]``), reads the top
  diffs and writes bottom ``i``'s diff; when a param needs a gradient
  (``param_propagate_down[k]``, lr_mult != 0) it reads the top diffs and writes param ``k``'s
  diff; when asked for neither it touches nothing.

The per-type classes below record where Caffe departs from that (read from
``src/caffe/layers/*.cpp`` and ``*.cu`` at BVLC 9b89154, CPU and GPU paths separately):
unconditional touches at the top of a Backward (``caffe time`` calls every layer's Backward,
so these show even in nets with no loss), diffs used as scratch in Forward, layers that only
share memory (Split, Flatten, Reshape), data layers whose tops are the prefetch buffers, and
layers with no GPU implementation (they touch host memory even in GPU mode).

Aliasing (tops that are the same memory as a bottom, a param or a layer buffer) is declared
by :meth:`TypeTouches.aliases`; layer-private buffers come from the rule's ``buffers()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

from ..layers.base import count

from .buffers import MemoryEnv
from .engine import CAFFE, CUDNN, layer_engine

BOTTOM, TOP, PARAM, BUFFER = "bottom", "top", "param", "buffer"
DATA, DIFF = "data", "diff"


@dataclass(frozen=True)
class Touch:
    """One touch: ``what`` (bottom/top/param) ``index``'s ``attr`` (data/diff) on ``side``
    ('gpu' or 'host')."""

    what: str
    index: int
    attr: str
    side: str


@dataclass
class View:
    """What the touch tables need to know about one layer in one env."""

    type: str
    param: object  # caffe_pb2.LayerParameter
    phase: str
    n_bottoms: int
    n_tops: int
    n_params: int
    in_place: list[bool]
    loss_weights: list[float]
    env: MemoryEnv
    engine: str
    side: str  # where this layer computes: 'gpu' (GPU mode, GPU implementation) or 'host'
    bottom_shapes: list = field(default_factory=list)
    param_shapes: list = field(default_factory=list)

    @classmethod
    def of(cls, layer, env: MemoryEnv) -> "View":
        """A view of a :class:`caffemem.net.Layer`."""
        t = touches_for(layer.type)
        side = "gpu" if env.gpu and not t.cpu_only(layer.ctx.param) else "host"
        return cls(layer.type, layer.ctx.param, layer.ctx.phase, len(layer.bottoms),
                   len(layer.tops), len(layer.params), list(layer.in_place),
                   list(layer.loss_weights), env, layer_engine(layer.type, layer.ctx.param, env),
                   side, list(layer.ctx.bottom_shapes), [p.shape for p in layer.params])


def _all(what: str, n: int, attr: str, side: str) -> list[Touch]:
    return [Touch(what, i, attr, side) for i in range(n)]


class TypeTouches:
    """The default pattern (see the module docstring); subclasses override per type."""

    def cpu_only(self, param) -> bool:
        """No GPU implementation: Forward_gpu/Backward_gpu fall back to the CPU code."""
        return False

    def fills_params_at_setup(self) -> bool:
        """LayerSetUp fills (or zeroes) the param blobs on the host."""
        return True

    def aliases(self, v: View) -> list[tuple[tuple, tuple]]:
        """Pairs of memory references that are the same SyncedMemory, e.g.
        ``((TOP, 0, DATA), (BOTTOM, 0, DATA))`` or ``((TOP, 1, DATA), (BUFFER, 'prob', DATA))``."""
        return []

    def setup(self, v: View) -> list[Touch]:
        """Touches during SetUp besides param fills and loss-weight diffs."""
        return []

    def forward(self, v: View) -> list[Touch]:
        s = v.side
        return _all(BOTTOM, v.n_bottoms, DATA, s) + _all(PARAM, v.n_params, DATA, s) + \
            _all(TOP, v.n_tops, DATA, s)

    def backward(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        s = v.side
        out: list[Touch] = []
        if any(pd) or any(ppd):
            out += _all(TOP, v.n_tops, DIFF, s)
        out += [Touch(BOTTOM, i, DIFF, s) for i, p in enumerate(pd) if p]
        out += [Touch(PARAM, k, DIFF, s) for k, p in enumerate(ppd) if p]
        return out


_TABLE: dict[str, TypeTouches] = {}
_DEFAULT = TypeTouches()


def _register(*types: str):
    def deco(cls):
        inst = cls()
        for t in types:
            _TABLE[t] = inst
        return cls
    return deco


def touches_for(type_: str) -> TypeTouches:
    """The touch table for a layer type (the default pattern when none is recorded)."""
    return _TABLE.get(type_, _DEFAULT)


def special_types() -> list[str]:
    return sorted(_TABLE)


# --- layers that touch nothing of their own -------------------------------------------------

@_register("Input")
class _Input(TypeTouches):
    """``InputLayer``: Forward/Backward do nothing; its tops are allocated by their readers."""

    def forward(self, v):
        return []

    def backward(self, v, pd, ppd):
        return []


@_register("Data", "ImageData", "WindowData", "MemoryData")
class _PrefetchData(_Input):
    """Prefetching data layers: ``Forward`` points the tops at the current prefetch batch
    (``set_cpu_data``/``set_gpu_data``), so the tops' own data is never allocated; the
    batches are modeled as prefetch buffers.  MemoryData points them at the user's arrays."""

    def cpu_only(self, param) -> bool:
        return False


@_register("DummyData")
class _DummyData(TypeTouches):
    """``DummyDataLayer::LayerSetUp`` runs Forward once to fill its tops (CPU code only)."""

    def cpu_only(self, param) -> bool:
        return True

    def setup(self, v):
        return _all(TOP, v.n_tops, DATA, "host")

    def forward(self, v):
        return _all(TOP, v.n_tops, DATA, "host")

    def backward(self, v, pd, ppd):
        return []


@_register("HDF5Data")
class _HDF5Data(TypeTouches):
    """Copies rows of the loaded HDF5 arrays into its own tops (host in CPU, device in GPU)."""

    def forward(self, v):
        return _all(TOP, v.n_tops, DATA, v.side)

    def backward(self, v, pd, ppd):
        return []


@_register("Split")
class _Split(TypeTouches):
    """Tops ``ShareData`` the bottom; Backward (if propagate_down) sums the tops' own diffs."""

    def aliases(self, v):
        return [((TOP, j, DATA), (BOTTOM, 0, DATA)) for j in range(v.n_tops)]

    def forward(self, v):
        return []


@_register("Flatten")
class _Flatten(TypeTouches):
    """Forward ``top->ShareData(bottom)``, Backward ``bottom->ShareDiff(top)``: no touches."""

    def aliases(self, v):
        return [((TOP, 0, DATA), (BOTTOM, 0, DATA)), ((TOP, 0, DIFF), (BOTTOM, 0, DIFF))]

    def forward(self, v):
        return []

    def backward(self, v, pd, ppd):
        return []


@_register("Reshape")
class _Reshape(_Flatten):
    """``ReshapeLayer::Reshape`` shares data and diff; Forward/Backward are empty."""


@_register("Pooling")
class _Pooling(TypeTouches):
    """Backward reads only top 0's diff: a second (mask) top's diff is never touched
    (pooling_layer.cpp Backward_cpu, pooling_layer.cu Backward_gpu)."""

    def backward(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        s = v.side
        if not any(pd):
            return []
        return [Touch(TOP, 0, DIFF, s)] + [Touch(BOTTOM, i, DIFF, s) for i, p in enumerate(pd) if p]


@_register("Concat")
class _Concat(TypeTouches):
    """One bottom: the top shares data and diff.  Backward reads the top diff before looking
    at propagate_down (CPU and GPU)."""

    def aliases(self, v):
        if v.n_bottoms == 1:
            return [((TOP, 0, DATA), (BOTTOM, 0, DATA)), ((TOP, 0, DIFF), (BOTTOM, 0, DIFF))]
        return []

    def forward(self, v):
        return [] if v.n_bottoms == 1 else super().forward(v)

    def backward(self, v, pd, ppd):
        if v.n_bottoms == 1:
            return []
        return _all(TOP, v.n_tops, DIFF, v.side) + \
            [Touch(BOTTOM, i, DIFF, v.side) for i, p in enumerate(pd) if p]


@_register("Slice")
class _Slice(TypeTouches):
    """One top: shares data and diff with the bottom, no touches."""

    def aliases(self, v):
        if v.n_tops == 1:
            return [((TOP, 0, DATA), (BOTTOM, 0, DATA)), ((TOP, 0, DIFF), (BOTTOM, 0, DIFF))]
        return []

    def forward(self, v):
        return [] if v.n_tops == 1 else super().forward(v)

    def backward(self, v, pd, ppd):
        return [] if v.n_tops == 1 else super().backward(v, pd, ppd)


@_register("Parameter")
class _Parameter(TypeTouches):
    """The top is the param blob (``ShareData``/``ShareDiff``); the param is not filled."""

    def fills_params_at_setup(self):
        return False

    def aliases(self, v):
        return [((TOP, 0, DATA), (PARAM, 0, DATA)), ((TOP, 0, DIFF), (PARAM, 0, DIFF))]

    def forward(self, v):
        return []

    def backward(self, v, pd, ppd):
        return []


@_register("Silence")
class _Silence(TypeTouches):
    """Forward does nothing; Backward zeroes the diffs it is asked to propagate to."""

    def forward(self, v):
        return []

    def backward(self, v, pd, ppd):
        return [Touch(BOTTOM, i, DIFF, v.side) for i, p in enumerate(pd) if p]


# --- unconditional touches in Backward ------------------------------------------------------

class _TopAndBottomDiffAlways(TypeTouches):
    """Backward reads the top diff and writes the bottom diff before checking propagate_down."""

    def backward(self, v, pd, ppd):
        s = v.side
        return _all(TOP, v.n_tops, DIFF, s) + [Touch(BOTTOM, 0, DIFF, s)] + \
            [Touch(PARAM, k, DIFF, s) for k, p in enumerate(ppd) if p]


@_register("Im2col", "MVN")
class _Im2colMVN(_TopAndBottomDiffAlways):
    pass


@_register("Crop")
class _Crop(_TopAndBottomDiffAlways):
    """Forward reads bottom 0 only (bottom 1 gives just a shape); Backward touches the top
    and bottom 0 diffs before checking propagate_down."""

    def forward(self, v):
        return [Touch(BOTTOM, 0, DATA, v.side)] + _all(TOP, v.n_tops, DATA, v.side)


@_register("AbsVal")
class _AbsVal(TypeTouches):
    """``top[0]->cpu_diff()``/``gpu_diff()`` comes before the propagate_down check."""

    def backward(self, v, pd, ppd):
        return _all(TOP, v.n_tops, DIFF, v.side) + super().backward(v, pd, ppd)


@_register("Eltwise")
class _Eltwise(_AbsVal):
    """Backward reads top data and diff unconditionally (CPU and GPU)."""


@_register("PReLU")
class _PReLU(_AbsVal):
    """Backward reads the top diff unconditionally (CPU and GPU)."""


@_register("Softmax")
class _Softmax(TypeTouches):
    """Caffe's softmax Backward touches top and bottom diff unconditionally; cuDNN's only when
    propagating."""

    def backward(self, v, pd, ppd):
        if v.engine == CUDNN:
            return super().backward(v, pd, ppd)
        s = v.side
        return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)]


@_register("LRN")
class _LRN(TypeTouches):
    """ACROSS_CHANNELS (Caffe, CPU and GPU) and cuDNN LRN/LCN: Backward touches top and bottom
    diff unconditionally.  Caffe's WITHIN_CHANNEL runs internal layers only when propagating."""

    def backward(self, v, pd, ppd):
        s = v.side
        within = v.param.lrn_param.norm_region == 1
        if v.engine == CAFFE and within:
            return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)] if pd and pd[0] else []
        return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)]


@_register("BatchNorm")
class _BatchNorm(TypeTouches):
    """Backward writes the bottom diff unconditionally and reads the top diff (in place: it
    copies it into ``x_norm_``'s diff first, a buffer of the rule).  The statistics blobs
    (params) are never given diffs by the layer."""

    def backward(self, v, pd, ppd):
        s = v.side
        return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)]


class _ConvLike(TypeTouches):
    """Convolution/Deconvolution.  CAFFE engine: Backward touches the weight diff and every
    top diff unconditionally; the bottom diffs unconditionally on the CPU, on the GPU only
    when the weight gradient or propagate_down is needed.  cuDNN: weight diff only if its
    gradient is needed, top diffs always, bottom diffs only when propagating."""

    def backward(self, v, pd, ppd):
        s = v.side
        out = _all(TOP, v.n_tops, DIFF, s)
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


@_register("Convolution")
class _Convolution(_ConvLike):
    pass


@_register("Deconvolution")
class _Deconvolution(_ConvLike):
    """Deconvolution's GPU Backward also takes ``bottom[i]->mutable_gpu_diff()`` up front."""

    def backward(self, v, pd, ppd):
        out = super().backward(v, pd, ppd)
        if v.engine == CAFFE:
            have = {(t.what, t.index, t.attr) for t in out}
            out += [Touch(BOTTOM, i, DIFF, v.side) for i in range(v.n_bottoms)
                    if (BOTTOM, i, DIFF) not in have]
        return out


@_register("Scale")
class _Scale(TypeTouches):
    """Scale's Backward, when the scale gradient is needed (param, or bottom 1 propagated):
    reads the top diff and writes the product into the scale's diff when the scale is
    element-wise, into ``temp_`` when in place, else into **bottom 0's diff** (scratch, even
    when bottom 0 is not propagated to).  The bias (a Bias layer inside) reads the top diff
    and writes the bias diff."""

    def backward(self, v, pd, ppd):
        s = v.side
        out: list[Touch] = []
        scale_param = v.n_bottoms == 1
        bias = v.param.scale_param.bias_term
        if bias and ppd and ppd[-1] and (v.n_params + v.n_bottoms >= 2):
            out += [Touch(TOP, 0, DIFF, s), Touch(PARAM, v.n_params - 1, DIFF, s)]
        need_scale = (not scale_param and len(pd) > 1 and pd[1]) or \
                     (scale_param and ppd and ppd[0])
        if need_scale:
            out.append(Touch(TOP, 0, DIFF, s))
            scale_shape = v.param_shapes[0] if scale_param and v.param_shapes else \
                (v.bottom_shapes[1] if len(v.bottom_shapes) > 1 else ())
            eltwise = bool(v.bottom_shapes) and count(v.bottom_shapes[0]) == count(scale_shape)
            if eltwise:
                out.append(Touch(PARAM, 0, DIFF, s) if scale_param else Touch(BOTTOM, 1, DIFF, s))
            elif not v.in_place[0]:
                out.append(Touch(BOTTOM, 0, DIFF, s))
            if not eltwise:
                out.append(Touch(PARAM, 0, DIFF, s) if scale_param else Touch(BOTTOM, 1, DIFF, s))
        if pd and pd[0]:
            out += [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)]
        return out


@_register("Bias")
class _Bias(TypeTouches):
    """In place, Backward never writes bottom 0's diff (it is the top's)."""

    def backward(self, v, pd, ppd):
        s = v.side
        out: list[Touch] = []
        if pd and pd[0] and not v.in_place[0]:
            out += [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)]
        if v.n_bottoms > 1 and len(pd) > 1 and pd[1]:
            out += [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 1, DIFF, s)]
        if v.n_params and ppd and ppd[0]:
            out += [Touch(TOP, 0, DIFF, s), Touch(PARAM, 0, DIFF, s)]
        return out


@_register("Embed")
class _Embed(TypeTouches):
    """Never propagates to its (index) bottom."""

    def backward(self, v, pd, ppd):
        return super().backward(v, [False] * len(pd), ppd)


@_register("Power")
class _Power(TypeTouches):
    """With power 0 or scale 0 the output is a constant: Forward never reads the bottom."""

    def forward(self, v):
        pp = v.param.power_param
        if pp.power == 0 or pp.scale == 0:
            return _all(TOP, v.n_tops, DATA, v.side)
        return super().forward(v)


# --- scratch diffs in Forward and host-only layers -------------------------------------------

@_register("HingeLoss")
class _HingeLoss(TypeTouches):
    """CPU only; Forward writes the margins into bottom 0's diff."""

    def cpu_only(self, param):
        return True

    def forward(self, v):
        return super().forward(v) + [Touch(BOTTOM, 0, DIFF, "host")]


@_register("MultinomialLogisticLoss", "Python")
class _CpuOnly(TypeTouches):
    """No GPU implementation: the CPU code runs in GPU mode too (host memory)."""

    def cpu_only(self, param):
        return True


@_register("InfogainLoss")
class _Infogain(_CpuOnly):
    """CPU only; top 1 (if any) shares the inner softmax's ``prob_`` buffer."""

    def aliases(self, v):
        return [((TOP, 1, DATA), (BUFFER, "prob", DATA))] if v.n_tops > 1 else []

    def forward(self, v):
        out = super().forward(v)
        return [t for t in out if not (t.what == TOP and t.index == 1)]


@_register("ArgMax")
class _ArgMax(_CpuOnly):
    """CPU only; Backward is NOT_IMPLEMENTED (``caffe time`` aborts on it)."""

    def backward(self, v, pd, ppd):
        return []


@_register("Threshold")
class _Threshold(TypeTouches):
    """Backward is NOT_IMPLEMENTED (``caffe time`` aborts on it); nothing is touched."""

    def backward(self, v, pd, ppd):
        return []


@_register("Accuracy")
class _Accuracy(TypeTouches):
    """GPU Forward counts into bottom 0's and bottom 1's diffs (scratch, even in test nets)
    and writes its tops on the host.  Backward touches nothing."""

    def forward(self, v):
        s = v.side
        out = _all(BOTTOM, v.n_bottoms, DATA, s) + _all(TOP, v.n_tops, DATA, "host")
        if s == "gpu":
            out += [Touch(BOTTOM, 0, DIFF, "gpu")]
            if v.n_tops == 1:
                out.append(Touch(BOTTOM, 1, DIFF, "gpu"))
        return out

    def backward(self, v, pd, ppd):
        return []


@_register("SoftmaxWithLoss")
class _SoftmaxWithLoss(TypeTouches):
    """The probabilities live in the layer's ``prob`` buffer (top 1, if any, shares it).
    GPU Forward writes per-element losses into bottom 0's diff (scratch)."""

    def aliases(self, v):
        return [((TOP, 1, DATA), (BUFFER, "prob", DATA))] if v.n_tops > 1 else []

    def forward(self, v):
        s = v.side
        out = _all(BOTTOM, v.n_bottoms, DATA, s) + [Touch(TOP, 0, DATA, "host")]
        if s == "gpu":
            out.append(Touch(BOTTOM, 0, DIFF, "gpu"))
        return out

    def backward(self, v, pd, ppd):
        return [Touch(BOTTOM, 0, DIFF, v.side)] if pd and pd[0] else []


@_register("SigmoidCrossEntropyLoss")
class _SigmoidCE(TypeTouches):
    """GPU Forward uses bottom 0's and bottom 1's diffs as scratch."""

    def forward(self, v):
        s = v.side
        out = _all(BOTTOM, v.n_bottoms, DATA, s) + [Touch(TOP, 0, DATA, "host")]
        if s == "gpu":
            out += [Touch(BOTTOM, 0, DIFF, "gpu"), Touch(BOTTOM, 1, DIFF, "gpu")]
        return out

    def backward(self, v, pd, ppd):
        return [Touch(BOTTOM, 0, DIFF, v.side)] if pd and pd[0] else []


@_register("EuclideanLoss", "ContrastiveLoss")
class _HostScalarLoss(TypeTouches):
    """The loss is written with ``top[0]->mutable_cpu_data()`` (host) in both modes."""

    def forward(self, v):
        s = v.side
        return _all(BOTTOM, v.n_bottoms, DATA, s) + [Touch(TOP, 0, DATA, "host")]

    def backward(self, v, pd, ppd):
        return [Touch(BOTTOM, i, DIFF, v.side) for i, p in enumerate(pd) if p]


@_register("LSTMUnit")
class _LSTMUnit(TypeTouches):
    """Backward returns unless bottom 0 or 1 propagates; then both bottom diffs are written."""

    def backward(self, v, pd, ppd):
        if not (pd[0] or pd[1]):
            return []
        s = v.side
        return _all(TOP, v.n_tops, DIFF, s) + [Touch(BOTTOM, 0, DIFF, s), Touch(BOTTOM, 1, DIFF, s)]


# --- fork layers (SSD, SegNet, py-faster-rcnn, DeepLab v2, generalized pooling) -------------
# Read from the forks' own src/caffe/layers/*.cpp and *.cu (the fork and branch are named in
# each rule's module, caffemem/layers/{ssd,segnet,frcnn,deeplab,treepool}.py).

@_register("AnnotatedData", "VideoData", "DenseImageData")
class _CopyingPrefetchData(TypeTouches):
    """Prefetching data layers of the forks' older BasePrefetchingDataLayer (SSD branch
    ``ssd`` base_data_layer.cpp:107-125 / .cu:8-27, SegNet base_data_layer.cpp:59-80 / .cu:8-26):
    Forward ``caffe_copy``-es the batch into the tops' **own** memory (``mutable_cpu_data`` /
    ``mutable_gpu_data``), unlike BVLC's Data/ImageData whose tops point at the batch.  The
    batches themselves are the rule's prefetch buffers."""

    def forward(self, v):
        return _all(TOP, v.n_tops, DATA, v.side)

    def backward(self, v, pd, ppd):
        return []


@_register("Normalize")
class _Normalize(TypeTouches):
    """SSD ``normalize_layer.cpp``/``.cu``: Backward reads the top diff and writes the bottom
    diff before any propagate_down check (cpp:139-142, cu:111-114).  With ``channel_shared``
    the GPU code reads the scale (cu:61, 124) and writes its diff (cu:142) on the host."""

    def _scale_side(self, v):
        return "host" if v.side == "gpu" and v.param.norm_param.channel_shared else v.side

    def forward(self, v):
        s = v.side
        return [Touch(BOTTOM, 0, DATA, s), Touch(PARAM, 0, DATA, self._scale_side(v)),
                Touch(TOP, 0, DATA, s)]

    def backward(self, v, pd, ppd):
        s = v.side
        out = [Touch(TOP, 0, DIFF, s), Touch(TOP, 0, DATA, s), Touch(BOTTOM, 0, DATA, s),
               Touch(BOTTOM, 0, DIFF, s), Touch(PARAM, 0, DATA, self._scale_side(v))]
        if ppd and ppd[0]:
            out.append(Touch(PARAM, 0, DIFF, self._scale_side(v)))
        return out


def permute_needed(v) -> bool:
    """``PermuteLayer::LayerSetUp``'s ``need_permute_``: the listed orders, then the unlisted
    axes in natural order, differ from the natural order (permute_layer.cpp:36-61)."""
    n = len(v.bottom_shapes[0]) if v.bottom_shapes else 0
    orders: list[int] = []
    for o in v.param.permute_param.order:
        if o not in orders:
            orders.append(int(o))
    orders += [i for i in range(n) if i not in orders]
    return any(o != i for i, o in enumerate(orders))


@_register("Permute")
class _Permute(TypeTouches):
    """SSD ``permute_layer.cpp``/``.cu``: in the natural order Forward does
    ``top->ShareData(bottom)`` and Backward ``bottom->ShareDiff(top)`` (cpp:110-113, 129-132):
    no touches, shared memory.  Otherwise Forward copies (bottom ``mutable_*_data``), and
    Backward writes the top and bottom diffs before any propagate_down check (cpp:119-121,
    cu:57-59)."""

    def aliases(self, v):
        if permute_needed(v):
            return []
        return [((TOP, 0, DATA), (BOTTOM, 0, DATA)), ((TOP, 0, DIFF), (BOTTOM, 0, DIFF))]

    def forward(self, v):
        if not permute_needed(v):
            return []
        return [Touch(BOTTOM, 0, DATA, v.side), Touch(TOP, 0, DATA, v.side)]

    def backward(self, v, pd, ppd):
        if not permute_needed(v):
            return []
        return [Touch(TOP, 0, DIFF, v.side), Touch(BOTTOM, 0, DIFF, v.side)]


@_register("PriorBox")
class _PriorBox(TypeTouches):
    """SSD ``prior_box_layer.cpp`` (CPU only): Forward writes the top on the host from the
    bottoms' *shapes* (cpp:120-140, no bottom data read); Backward returns (hpp:61-64)."""

    def cpu_only(self, param):
        return True

    def forward(self, v):
        return [Touch(TOP, 0, DATA, "host")]

    def backward(self, v, pd, ppd):
        return []


@_register("DetectionOutput")
class _DetectionOutput(TypeTouches):
    """SSD ``detection_output_layer.cpp``/``.cu``: Forward reads loc, conf and priors where
    it computes (cu:22-23, 46) and writes the detections with ``top->mutable_cpu_data()``
    (host, cu:116/125, cpp:285/294); the image (bottom 3) is read on the host only to
    ``visualize``.  Backward is NOT_IMPLEMENTED (``caffe time`` aborts on it)."""

    def forward(self, v):
        out = [Touch(BOTTOM, i, DATA, v.side) for i in range(min(3, v.n_bottoms))]
        if v.n_bottoms > 3 and v.param.detection_output_param.visualize:
            out.append(Touch(BOTTOM, 3, DATA, "host"))
        return out + [Touch(TOP, 0, DATA, "host")]

    def backward(self, v, pd, ppd):
        return []


@_register("DetectionEvaluate")
class _DetectionEvaluate(TypeTouches):
    """SSD ``detection_evaluate_layer.cpp`` (CPU only): ``Reshape`` reads the detections on
    the host to count the valid rows (cpp:65), so SetUp already allocates them; Forward reads
    both bottoms and writes the top on the host; Backward is NOT_IMPLEMENTED."""

    def cpu_only(self, param):
        return True

    def setup(self, v):
        return [Touch(BOTTOM, 0, DATA, "host")]

    def backward(self, v, pd, ppd):
        return []


@_register("MultiBoxLoss")
class _MultiBoxLoss(TypeTouches):
    """SSD ``multibox_loss_layer.cpp`` (no .cu: the CPU code runs in GPU mode, host touches;
    its inner loss layers run on the GPU and are the rule's buffers).  Backward writes the loc
    and conf diffs only (cpp:270-271, 311-312; priors and labels are FATAL).  Without
    negative mining ``conf_pred_`` shares bottom 1's data and Backward ends with
    ``bottom[1]->ShareDiff(conf_pred_)`` (cpp:227, 362): bottom 1's diff is the rule's
    ``conf_pred diff`` buffer."""

    def cpu_only(self, param):
        return True

    def aliases(self, v):
        if v.n_bottoms > 1 and v.param.multibox_loss_param.mining_type == 0:  # NONE
            return [((BOTTOM, 1, DIFF), (BUFFER, "conf_pred diff", DATA))]
        return []

    def backward(self, v, pd, ppd):
        s = v.side
        out = [Touch(BOTTOM, i, DIFF, s) for i, p in enumerate(pd[:2]) if p]
        return ([Touch(TOP, 0, DIFF, s)] + out) if out else []


@_register("SmoothL1Loss")
class _SmoothL1Loss(TypeTouches):
    """SmoothL1Loss of py-faster-rcnn and of SSD (smooth_L1_loss_layer.cu): the loss is
    written with ``top[0]->mutable_cpu_data()`` (host) in both modes; Backward writes the
    diffs of bottoms 0 and 1 only, when propagating (the weights are read, never given
    diffs)."""

    def forward(self, v):
        return _all(BOTTOM, v.n_bottoms, DATA, v.side) + [Touch(TOP, 0, DATA, "host")]

    def backward(self, v, pd, ppd):
        return [Touch(BOTTOM, i, DIFF, v.side) for i, p in enumerate(pd[:2]) if p]


@_register("ROIPooling")
class _ROIPooling(TypeTouches):
    """py-faster-rcnn ``roi_pooling_layer.cpp``/``.cu``: Backward_gpu returns unless bottom 0
    propagates, then reads the top diff and writes bottom 0's diff only (cu:170-175);
    Backward_cpu is NOT_IMPLEMENTED (cpp:130)."""

    def backward(self, v, pd, ppd):
        if v.side == "host" or not (pd and pd[0]):
            return []
        return [Touch(TOP, 0, DIFF, v.side), Touch(BOTTOM, 0, DIFF, v.side)]


@_register("Interp")
class _Interp(TypeTouches):
    """DeepLab v2 ``interp_layer.cpp``: Forward reads bottom 0 only (bottom 1 only gives a
    size, cpp:71-73, 90-92); Backward returns unless bottom 0 propagates (cpp:79, 98)."""

    def forward(self, v):
        return [Touch(BOTTOM, 0, DATA, v.side), Touch(TOP, 0, DATA, v.side)]

    def backward(self, v, pd, ppd):
        if not (pd and pd[0]):
            return []
        return [Touch(TOP, 0, DIFF, v.side), Touch(BOTTOM, 0, DIFF, v.side)]


@_register("Upsample")
class _Upsample(_Interp):
    """SegNet ``upsample_layer.cpp``/``.cu``: Forward reads the data and the mask; Backward
    returns unless bottom 0 propagates and never writes the mask's diff (cpp:112-115,
    cu:50-53)."""

    def forward(self, v):
        return TypeTouches.forward(self, v)


@_register("BN")
class _SegNetBN(TypeTouches):
    """SegNet ``bn_layer.cpp``/``.cu``: Backward reads the top diff and writes the bottom diff
    and both param diffs (scale, shift) with no propagate_down or param_propagate_down check
    (cpp:236-241, cu:149-152, 172/183 and 278/289)."""

    def backward(self, v, pd, ppd):
        s = v.side
        return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)] + \
            _all(PARAM, v.n_params, DIFF, s)


@_register("TreepoolKernel1L", "TreepoolKernel2L", "TreepoolMaxAve", "GatedMaxAve")
class _Treepool(TypeTouches):
    """Generalized pooling (general-pooling-1 ``treepool_*.cpp``/``.cu``): the CPU Forward and
    Backward only log "Enter CPU code" and touch nothing; Backward_gpu writes the bottom diff
    and every param diff with no propagate_down check (e.g. treepool_kernel_1layer.cu:191-219)."""

    def forward(self, v):
        return [] if v.side == "host" else super().forward(v)

    def backward(self, v, pd, ppd):
        if v.side == "host":
            return []
        s = v.side
        return [Touch(TOP, 0, DIFF, s), Touch(BOTTOM, 0, DIFF, s)] + \
            _all(PARAM, v.n_params, DIFF, s)


def describe_touches(type_: str) -> Optional[str]:
    """The recorded departure from the default pattern for ``type_`` (its docstring)."""
    t = _TABLE.get(type_)
    return (type(t).__doc__ or "").strip() if t else None


def iter_special() -> Iterable[tuple[str, TypeTouches]]:
    return sorted(_TABLE.items())
