"""The contract between the net builder and one layer type's rule.

A rule is the Caffe layer class seen through memory: for one type it says what
``LayerSetUp``/``Reshape`` would make of the bottoms (top shapes, parameter blobs), how many
multiply-adds a forward pass costs, and which private buffers the layer allocates, by engine
and mode (see :mod:`caffemem.memory`).  Rules are registered by type name in
:mod:`caffemem.layers.registry`; adding a fork's layer is one small module with one class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Optional, Sequence

from ..errors import NetError

if TYPE_CHECKING:  # pragma: no cover
    from ..memory.buffers import Buffer, MemoryEnv

Shape = tuple[int, ...]


def count(shape: Sequence[int]) -> int:
    """Number of elements (Python int, exact)."""
    n = 1
    for d in shape:
        n *= d
    return n


def legacy_dim(ctx: LayerCtx, shape, index: int) -> int:
    """``Blob::LegacyShape``: a missing axis of a blob of at most 4 axes counts as 1."""
    if len(shape) > 4:
        raise ctx.fail(f"cannot use legacy accessors on a {len(shape)}-axis blob {list(shape)}")
    if index >= len(shape) or index < -len(shape):
        return 1
    return shape[index]


class NeedsInputShape(NetError):
    """A data layer whose top shapes cannot be known from the prototxt alone."""

    def __init__(self, layer: str, type_: str, why: str, tops: Sequence[str]) -> None:
        tops_hint = " ".join(f"--input {t}=*,C,H,W" for t in tops[:2])
        super().__init__(
            f"layer '{layer}' ({type_}): {why}; give its top shape(s) with {tops_hint}"
            + (" (one --input per top)" if len(tops) > 1 else "")
            + " where * keeps the layer's own batch size (or write N), e.g. --input "
            + f"{tops[0] if tops else 'data'}=*,3,224,224")
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
        if not -num_axes <= axis < max(num_axes, 1):
            raise self.fail(f"axis {axis} out of range for a {num_axes}-axis blob")
        return axis + num_axes if axis < 0 else axis

    def bottom(self, i: int = 0) -> Shape:
        if i >= len(self.bottom_shapes):
            raise self.fail(f"needs at least {i + 1} bottom(s), has {len(self.bottom_shapes)}")
        return self.bottom_shapes[i]


@dataclass
class Setup:
    """What SetUp produced: top shapes and the shapes of the layer's own parameter blobs."""

    tops: list[Shape]
    params: list[Shape] = field(default_factory=list)


class LayerRule:
    """Base rule. Subclasses set ``type`` and override :meth:`setup` (at least)."""

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

    def setup(self, ctx: LayerCtx) -> Setup:
        raise NotImplementedError

    def flops(self, ctx: LayerCtx) -> int:
        """Multiply-adds of one forward pass (0 where not meaningful)."""
        return 0

    def buffers(self, ctx: LayerCtx, env: "MemoryEnv") -> list["Buffer"]:
        """Layer-private allocations (see :mod:`caffemem.memory.buffers`)."""
        return []

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return True

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        """Does this layer's Backward write bottom ``bottom_index``'s diff when asked to?"""
        return self.has_backward


class ElementwiseRule(LayerRule):
    """Top 0 has bottom 0's shape; the neuron layers (ReLU, Sigmoid, ...)."""

    flops_per_element: ClassVar[int] = 1

    def setup(self, ctx: LayerCtx) -> Setup:
        return Setup([ctx.bottom(0)])

    def flops(self, ctx: LayerCtx) -> int:
        return self.flops_per_element * count(ctx.bottom(0))
