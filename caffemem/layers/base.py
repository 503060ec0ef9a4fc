"""The contract between the net builder, the memory model and one layer type's rule.

A rule is Caffe's ``<Type>Layer`` class seen through memory, in one object: which
implementation the factory picks (:meth:`LayerRule.engine`, ``layer_factory.cpp``), what
``LayerSetUp``/``Reshape`` refuse and make of the bottoms (:meth:`~LayerRule.setup`: top
shapes, parameter blobs), the layer-private buffers by engine and mode
(:meth:`~LayerRule.buffers`), the operations of a forward pass by kind
(:meth:`~LayerRule.flops`, a :class:`caffemem.flops.Flops`),
which memory its tops share (:meth:`~LayerRule.shares`: ``ShareData``/``ShareDiff``), and which
blob data and diffs its SetUp, Forward and Backward touch, on the host or the device
(:meth:`~LayerRule.setup_touches`, :meth:`~LayerRule.forward_touches`,
:meth:`~LayerRule.backward_touches`).  Rules are registered by type name in
:mod:`caffemem.layers.registry`; adding a fork's layer is one class in one module.

What Forward and Backward touch matters because SyncedMemory is lazy: a blob's data or diff
costs memory only if some call touches it.  The base class holds the pattern most layers
follow (read from ``src/caffe/layers/*.cpp`` and ``*.cu`` at BVLC 9b89154, CPU and GPU paths
separately):

- Forward reads every bottom's data and every param's data and writes every top's data;
- Backward, when asked to propagate to bottom ``i`` (``propagate_down[i]``), reads the top
  diffs and writes bottom ``i``'s diff; when a param needs a gradient
  (``param_propagate_down[k]``, lr_mult != 0) it reads the top diffs and writes param ``k``'s
  diff; when asked for neither it touches nothing.

A rule overrides the touches where its Caffe class departs from that: unconditional touches
at the top of a Backward (``caffe time`` calls every layer's Backward, so these show even in
nets with no loss), diffs used as scratch in Forward, layers that only share memory (Split,
Flatten, Reshape), data layers whose tops are the prefetch buffers, and layers with no GPU
implementation (they touch host memory even in GPU mode: :meth:`~LayerRule.cpu_only`).

Imports: :mod:`caffemem.blobshape`, :mod:`caffemem.buffers` and :mod:`caffemem.flops` (leaves) and
:mod:`caffemem.errors`; never :mod:`caffemem.memory`, which consumes this interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Sequence

from ..blobshape import Shape, ShapeError, canonical_axis, count, legacy_shape, legacy_shape4
from ..buffers import CAFFE, CUDNN, Buffer, MemoryEnv
from ..errors import NetError
from ..flops import NONE, Flops

__all__ = ["Shape", "count", "Flops", "NONE", "legacy_dim", "legacy_dims", "NeedsInputShape",
           "LayerCtx", "Setup", "LayerRule", "ElementwiseRule", "Touch", "View", "Unrolled",
           "touch_all", "top_and_bottom_diff_always",
           "factory_engine", "ENGINE_DEFAULT", "ENGINE_CAFFE", "ENGINE_CUDNN",
           "BOTTOM", "TOP", "PARAM", "BUFFER", "DATA", "DIFF", "CAFFE", "CUDNN"]


def legacy_dim(ctx: LayerCtx, shape, index: int) -> int:
    """``Blob::LegacyShape`` (:func:`caffemem.blobshape.legacy_shape`), refused in the name
    of the layer."""
    try:
        return legacy_shape(shape, index)
    except ShapeError as e:
        raise ctx.fail(str(e)) from None


def legacy_dims(ctx: LayerCtx, shape) -> Shape:
    """``(num(), channels(), height(), width())`` of ``shape`` (a blob of at most 4 axes,
    padded with 1s: :func:`caffemem.blobshape.legacy_shape4`), refused in the name of the
    layer for a blob of more than 4 axes."""
    try:
        return legacy_shape4(shape)
    except ShapeError as e:
        raise ctx.fail(str(e)) from None


class NeedsInputShape(NetError):
    """A data layer whose top shapes cannot be known from the prototxt alone."""

    def __init__(self, layer: str, type_: str, why: str, tops: Sequence[str],
                 example: tuple = (3, 224, 224)) -> None:
        """``example``: the (C, H, W) of the suggested --input, with what the prototxt knows."""
        tops_hint = " ".join(f"--input {t}=*,C,H,W" for t in tops[:2])
        super().__init__(
            f"layer '{layer}' ({type_}): {why}; give its top shape(s) with {tops_hint}"
            + (" (one --input per top)" if len(tops) > 1 else "")
            + " where * keeps the layer's own batch size (or write N), e.g. --input "
            + f"{tops[0] if tops else 'data'}=*," + ",".join(map(str, example)))
        self.layer, self.type, self.tops = layer, type_, list(tops)


@dataclass
class LayerCtx:
    """What a rule sees of one layer while the net is set up."""

    name: str
    type: str
    param: object  # caffe_pb2.LayerParameter (a bare one for inserted Split layers)
    bottoms: list[str]
    tops: list[str]
    bottom_shapes: list[Shape]
    phase: str  # "TRAIN" or "TEST"
    batch_override: Optional[int] = None
    net_dir: str = "."
    #: ``--input`` shapes given for some of this layer's tops, by top index
    overrides: dict = field(default_factory=dict)
    top_shapes: list[Shape] = field(default_factory=list)  # filled after setup
    param_shapes: list[Shape] = field(default_factory=list)  # filled after setup
    #: the net a layer builds inside itself (a recurrent layer's unrolled net), built by the
    #: net builder from :meth:`LayerRule.unrolled_net` before SetUp
    inner: object = None
    #: what the rule had to assume for lack of data, as ``(top, what, --input that corrects
    #: it)``; reports state them beside the figures (dropped when --input gives that top)
    assumptions: list[tuple[str, str, str]] = field(default_factory=list)

    def fail(self, message: str) -> NetError:
        """A NetError naming this layer (raise the result)."""
        return NetError(f"layer '{self.name}' ({self.type}): {message}")

    def check_positive(self, what: str, value: int, arithmetic: str) -> int:
        """Caffe refuses a dimension that comes out <= 0; so do we, showing the arithmetic."""
        if value <= 0:
            raise self.fail(f"{what} comes out as {value} ({arithmetic}); the input is too small "
                            f"for this layer's kernel/stride/pad, or a shape upstream is wrong")
        return value

    def canonical_axis(self, axis: int, num_axes: int) -> int:
        """``Blob::CanonicalAxisIndex``: negative axes count from the end."""
        try:
            return canonical_axis(axis, num_axes)
        except ShapeError as e:
            raise self.fail(str(e)) from None

    def bottom(self, i: int = 0) -> Shape:
        if i >= len(self.bottom_shapes):
            raise self.fail(f"needs at least {i + 1} bottom(s), has {len(self.bottom_shapes)}")
        return self.bottom_shapes[i]


@dataclass
class Setup:
    """What SetUp produced: top shapes and the shapes of the layer's own parameter blobs."""

    tops: list[Shape]
    params: list[Shape] = field(default_factory=list)
    #: what the user should know about this layer as Caffe runs it (shown on the layer)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Unrolled:
    """How a layer meets the net it builds inside itself (a recurrent layer's unrolled net).

    - ``shares``: (inner blob, attrs) whose memory is the outer layer's own (``ShareData`` /
      ``ShareDiff`` with an outer bottom or top): the model charges them once, outside;
    - ``zeroed_diffs``: inner blobs whose diff LayerSetUp sets on the host;
    - ``skipped``: trailing layers set up but never run (pseudo-losses);
    the inner net's learnable params are the outer layer's params."""

    shares: tuple[tuple[str, tuple[str, ...]], ...] = ()
    zeroed_diffs: tuple[str, ...] = ()
    skipped: int = 0


# --- what a pass touches ------------------------------------------------------------------

BOTTOM, TOP, PARAM, BUFFER = "bottom", "top", "param", "buffer"
DATA, DIFF = "data", "diff"


@dataclass(frozen=True)
class Touch:
    """One touch: ``what`` (bottom/top/param) ``index``'s ``attr`` (data/diff) on ``side``
    ('gpu' or 'host'); for ``what`` BUFFER, ``index`` is the name of one of the layer's
    buffers (:meth:`LayerRule.buffers`), touched when a pass's condition is more precise than
    :attr:`caffemem.buffers.Buffer.needs` (e.g. one param's gradient)."""

    what: str
    index: "int | str"
    attr: str
    side: str


def touch_all(what: str, n: int, attr: str, side: str) -> list[Touch]:
    """The same touch of ``what`` 0 .. n-1."""
    return [Touch(what, i, attr, side) for i in range(n)]


@dataclass
class View:
    """What a rule's touch methods see of one built layer in one env (the memory model
    makes one per layer and env)."""

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


def top_and_bottom_diff_always(v: View, ppd: list[bool]) -> list[Touch]:
    """A Backward that reads the top diffs and writes bottom 0's diff before it checks
    propagate_down (Im2col, MVN, Crop), then the param diffs asked for."""
    s = v.side
    return touch_all(TOP, v.n_tops, DIFF, s) + [Touch(BOTTOM, 0, DIFF, s)] + \
        [Touch(PARAM, k, DIFF, s) for k, p in enumerate(ppd) if p]


# --- the engine (layer_factory.cpp) -----------------------------------------------------

# Engine enums share values in caffe.proto: DEFAULT = 0, CAFFE = 1, CUDNN = 2.
ENGINE_DEFAULT, ENGINE_CAFFE, ENGINE_CUDNN = 0, 1, 2


def factory_engine(requested: int, env: MemoryEnv) -> Optional[str]:
    """``layer_factory.cpp``'s first step for a layer cuDNN has: CAFFE in cpu mode, when
    asked for, or when DEFAULT in a build without cuDNN; else None (cuDNN requested,
    explicitly or as DEFAULT in a cuDNN build: the type's own conditions decide)."""
    if not env.gpu or requested == ENGINE_CAFFE:
        return CAFFE
    if requested == ENGINE_DEFAULT and env.engine != "cudnn":
        return CAFFE
    return None


class LayerRule:
    """Base rule: Caffe's ``Layer``.  Subclasses set ``type`` and override :meth:`setup` (at
    least); the other methods hold the default behaviour of Caffe's layers.  Methods come in
    the order Caffe runs them: the factory, SetUp, the buffers, Forward, Backward."""

    type: ClassVar[str] = ""
    #: extra type names that map to this rule (e.g. V1 names, fork spellings)
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Caffe's LossLayer: AutoTopBlobs (an anonymous scalar top when none is named) and a
    #: default loss_weight of 1 on top 0
    is_loss: ClassVar[bool] = False
    #: tops share the bottom's data (Split, Flatten, Reshape): no data of their own
    shares_data: ClassVar[bool] = False
    #: a data layer: no bottoms, its tops come from outside (prefetch batches in memory model)
    is_data: ClassVar[bool] = False
    #: which fork the layer comes from (None for BVLC)
    fork: ClassVar[Optional[str]] = None
    #: can the layer's backward write a bottom diff at all (AllowForceBackward false layers
    #: and layers with no backward, like data, Accuracy, ArgMax)
    has_backward: ClassVar[bool] = True
    #: Caffe CHECKs that tops differ from bottoms for a few layers (AbsVal, Flatten, ...)
    allows_in_place: ClassVar[bool] = True
    #: where Forward points the tops' data instead of allocating it: "prefetch" (BVLC's
    #: BasePrefetchingDataLayer: ``set_gpu_data``/``set_cpu_data`` to the current prefetch
    #: batch, ``data_param.prefetch`` batches that the memory model allocates), "host" (the
    #: user's arrays, MemoryData), or None (the tops own their data)
    external_tops: ClassVar[Optional[str]] = None
    #: what the layer allocates that the model cannot size, said on the layer ("" if none)
    unmodeled: ClassVar[str] = ""
    #: LayerSetUp fills (or zeroes) the param blobs on the host
    fills_params_at_setup: ClassVar[bool] = True

    # -- the factory ---------------------------------------------------------------------

    def engine(self, param, env: MemoryEnv, notes: Optional[list] = None) -> str:
        """``CAFFE`` or ``CUDNN``: the implementation ``layer_factory.cpp`` creates for a
        LayerParameter ``param`` in ``env``.  ``notes`` (optional) receives a sentence when
        Caffe overrides the requested engine.  Only layers cuDNN has override this."""
        return CAFFE

    def cudnn_handles(self, param) -> int:
        """cuDNN handles the layer creates when it runs on cuDNN (one, by default)."""
        return 1

    def cpu_only(self, param) -> bool:
        """No GPU implementation: Forward_gpu/Backward_gpu fall back to the CPU code."""
        return False

    # -- SetUp: LayerSetUp and Reshape ----------------------------------------------------

    def unrolled_net(self, ctx: LayerCtx):
        """A NetParameter the layer builds and runs as a net of its own inside itself (a
        recurrent layer's unrolled net), or None.  The net builder builds it before
        :meth:`setup` and puts it in ``ctx.inner``."""
        return None

    def unrolled_io(self, ctx: LayerCtx) -> "Unrolled":
        """How the outer layer and its unrolled net meet (see :class:`Unrolled`)."""
        return Unrolled()

    def fillers(self, param) -> list:
        """The ``FillerParameter`` LayerSetUp fills each param blob with, by param index (a
        filler may hold memory while it fills: GaussianFiller's sparse mask)."""
        return []

    def setup(self, ctx: LayerCtx) -> Setup:
        """``LayerSetUp`` + ``Reshape``: refuse what Caffe refuses (raise ``ctx.fail(...)``),
        and give the top shapes and the parameter blobs' shapes."""
        raise NotImplementedError

    def flops(self, ctx: LayerCtx) -> Optional[Flops]:
        """What one Forward computes, by kind (:class:`caffemem.flops.Flops`: multiply-adds,
        comparisons, adds, divides, exps), read from the type's Forward_cpu/Forward_gpu;
        ``NONE`` for a layer that only moves or shares memory.  ``None`` (the default) says
        caffemem does not count this type, and reports name it."""
        return None

    def buffers(self, ctx: LayerCtx, env: MemoryEnv) -> list[Buffer]:
        """Layer-private allocations by engine and mode, each touch with the call that makes
        it (see :class:`caffemem.buffers.Buffer`)."""
        return []

    def shares(self, v: View) -> list[tuple[tuple, tuple]]:
        """Pairs of memory references that are the same SyncedMemory (``ShareData``,
        ``ShareDiff``), e.g. ``((TOP, 0, DATA), (BOTTOM, 0, DATA))`` or
        ``((TOP, 1, DATA), (BUFFER, 'prob', DATA))``."""
        return []

    def setup_touches(self, v: View) -> list[Touch]:
        """Touches during SetUp besides param fills and loss-weight diffs."""
        return []

    # -- Forward ----------------------------------------------------------------------------

    def forward_touches(self, v: View) -> list[Touch]:
        """Forward_cpu/Forward_gpu: the bottoms' and params' data read, the tops' written."""
        s = v.side
        return touch_all(BOTTOM, v.n_bottoms, DATA, s) + touch_all(PARAM, v.n_params, DATA, s) + \
            touch_all(TOP, v.n_tops, DATA, s)

    # -- Backward ---------------------------------------------------------------------------

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return True

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        """Does this layer's Backward write bottom ``bottom_index``'s diff when asked to?"""
        return self.has_backward

    def backward_failure(self, v: View, pd: list[bool]) -> Optional[str]:
        """Why Caffe dies when this layer's Backward is called with ``propagate_down`` ``pd``
        (a ``NOT_IMPLEMENTED`` Backward), as a phrase to follow "layer 'X' (Type)", or None
        when the call is fine (Caffe's default: every layer has a Backward)."""
        return None

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        """Backward_cpu/Backward_gpu with ``propagate_down`` ``pd`` and
        ``param_propagate_down`` ``ppd``: the default pattern (see the module docstring)."""
        s = v.side
        out: list[Touch] = []
        if any(pd) or any(ppd):
            out += touch_all(TOP, v.n_tops, DIFF, s)
        out += [Touch(BOTTOM, i, DIFF, s) for i, p in enumerate(pd) if p]
        out += [Touch(PARAM, k, DIFF, s) for k, p in enumerate(ppd) if p]
        return out


class ElementwiseRule(LayerRule):
    """Top 0 has bottom 0's shape; the neuron layers (ReLU, Sigmoid, ...)."""

    #: what Forward computes per element of bottom 0 (None: the rule counts in ``flops``)
    per_element: ClassVar[Optional[Flops]] = None

    def setup(self, ctx: LayerCtx) -> Setup:
        return Setup([ctx.bottom(0)])

    def flops(self, ctx: LayerCtx) -> Optional[Flops]:
        if self.per_element is None:
            return None
        return self.per_element * count(ctx.bottom(0))
