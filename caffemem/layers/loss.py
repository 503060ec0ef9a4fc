"""Loss layers and Accuracy.

Caffe's LossLayer subclasses produce a scalar top (printed ``Top shape: (1)``), get an
anonymous "(automatic)" top when none is named, and weigh top 0 by 1 unless told otherwise.
SoftmaxWithLoss and InfogainLoss may expose the softmax probabilities as a second top.
"""

from __future__ import annotations

from typing import Optional

from ..buffers import BufferSet, MemoryEnv
from .base import (BOTTOM, BUFFER, CUDNN, DATA, DIFF, TOP, Flops, LayerCtx, LayerRule, Setup, Touch,
                   View, count, factory_engine, touch_all)
from .normalization import softmax_buffers, softmax_flops
from .registry import register


class LossRule(LayerRule):
    """Caffe's ``LossLayer``."""

    is_loss = True

    def setup(self, ctx: LayerCtx) -> Setup:
        b0 = ctx.bottom(0)
        if len(ctx.bottom_shapes) > 1 and ctx.bottom_shapes[1] and b0 and \
                b0[0] != ctx.bottom_shapes[1][0] and self.check_num:
            raise ctx.fail(f"the data and label should have the same first dimension "
                           f"({list(b0)} vs {list(ctx.bottom_shapes[1])})")
        return Setup([()] + [b0] * (max(1, len(ctx.tops)) - 1))

    check_num = True

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index != 1  # never backpropagate to the labels


class HostLossTopRule(LossRule):
    """The loss is written with ``top[0]->mutable_cpu_data()`` (host) in both modes;
    Backward writes the diffs of the bottoms it propagates to."""

    def forward_touches(self, v: View) -> list[Touch]:
        return touch_all(BOTTOM, v.n_bottoms, DATA, v.side) + [Touch(TOP, 0, DATA, "host")]

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return [Touch(BOTTOM, i, DIFF, v.side) for i, p in enumerate(pd) if p]


@register
class SoftmaxWithLoss(LossRule):
    """The probabilities live in the layer's ``prob`` buffer (top 1, if any, shares it).
    GPU Forward writes per-element losses into bottom 0's diff (scratch)."""

    type = "SoftmaxWithLoss"
    check_num = False

    def engine(self, param, env: MemoryEnv, notes: Optional[list] = None) -> str:
        """The engine of the inner softmax, which Caffe creates through the factory
        (``GetSoftmaxLayer``: cuDNN in a cuDNN build)."""
        return factory_engine(param.softmax_param.engine, env) or CUDNN

    def setup(self, ctx: LayerCtx) -> Setup:
        lp = ctx.param.loss_param
        b0, b1 = ctx.bottom(0), ctx.bottom(1)
        axis = ctx.canonical_axis(ctx.param.softmax_param.axis, len(b0))
        outer, inner = count(b0[:axis]), count(b0[axis + 1:])
        if outer * inner != count(b1):
            raise ctx.fail(f"number of labels must match number of predictions; e.g., if softmax axis == 1 "
                           f"and prediction shape is (N, C, H, W), label count (number of labels) must be N*H*W, "
                           f"with integer values in {{0, 1, ..., C-1}} (predictions {list(b0)}, labels {list(b1)})")
        del lp
        n_weights = len(ctx.param.loss_weight)
        if n_weights > 1:
            # softmax_loss_layer.cpp:14-21: the inner Softmax gets a copy of this layer's
            # LayerParameter, loss_weight included, and one top; its SetUp's SetLossWeights
            # then refuses any count but 0 or 1 (layer.hpp:389-392)
            raise ctx.fail(f"loss_weight must be unspecified or specified once per top blob: "
                           f"{n_weights} given, and the inner Softmax, which copies this layer's "
                           f"parameters, has one top (softmax_loss_layer.cpp:14-21, "
                           f"layer.hpp:389-392); give one loss_weight")
        return Setup([()] + [b0] * (max(1, len(ctx.tops)) - 1))

    def flops(self, ctx: LayerCtx) -> Flops:
        """The inner Softmax, then per label (``softmax_loss_layer.cpp``/``.cu``):
        ``loss -= log(max(prob, FLT_MIN))`` -- a comparison, a log, an add -- and the loss
        divided by the normalizer."""
        labels = count(ctx.bottom(1))
        return softmax_flops(ctx) + Flops(comparisons=labels, exps=labels, adds=labels, divides=1)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``softmax_loss_layer.cpp``/``.cu``: the inner Softmax layer (made through the
        factory, so cuDNN in a cuDNN build) writes ``prob_`` (bottom-sized; top 1 shares it)
        and keeps its own buffers; ``prob_``'s diff is allocated too (see below)."""

        n = count(ctx.bottom(0)) * 4
        bs = BufferSet(env)
        bs.add("prob", n, note="softmax probabilities")
        bs.items.extend(softmax_buffers(ctx, env, self.engine(ctx.param, env), prefix="softmax "))
        # The inner softmax's LayerParameter is a copy of this layer's, loss_weight included,
        # so its SetUp fills prob_'s diff with the loss weight on the host (and its Forward
        # reads it on the GPU, where the GPU Forward also counts into it).
        bs.host_then_compute("prob_diff", n, note="diff of prob_: loss weights, GPU counts")
        return bs.items

    def shares(self, v: View) -> list[tuple[tuple, tuple]]:
        return [((TOP, 1, DATA), (BUFFER, "prob", DATA))] if v.n_tops > 1 else []

    def forward_touches(self, v: View) -> list[Touch]:
        s = v.side
        out = touch_all(BOTTOM, v.n_bottoms, DATA, s) + [Touch(TOP, 0, DATA, "host")]
        if s == "gpu":
            out.append(Touch(BOTTOM, 0, DIFF, "gpu"))
        return out

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return [Touch(BOTTOM, 0, DIFF, v.side)] if pd and pd[0] else []


@register
class EuclideanLoss(HostLossTopRule):
    type = "EuclideanLoss"

    def flops(self, ctx: LayerCtx) -> Flops:
        """``euclidean_loss_layer.cpp``: ``diff_ = b0 - b1`` (an add per element), its dot
        with itself (a multiply-add per element), / (2 * num)."""
        n = count(ctx.bottom(0))
        return Flops(adds=n, macs=n, divides=1)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``euclidean_loss_layer.cpp``: ``diff_`` = bottom 0 - bottom 1 (bottom-sized)."""

        return BufferSet(env).add("diff", count(ctx.bottom(0)) * 4).items

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return True


@register
class SigmoidCrossEntropyLoss(LossRule):
    """GPU Forward uses bottom 0's and bottom 1's diffs as scratch."""

    type = "SigmoidCrossEntropyLoss"

    def flops(self, ctx: LayerCtx) -> Flops:
        """The inner Sigmoid (a tanh, two multiply-adds per element), then per element
        ``input * (target - (input >= 0)) - log(1 + exp(input - 2 * input * (input >=
        0)))``: a comparison, three multiply-adds, three adds, an exp and a log; the sum
        divided by the normalizer."""
        n = count(ctx.bottom(0))
        return n * Flops(macs=2, exps=1) + n * Flops(comparisons=1, macs=3, adds=3, exps=2) + \
            Flops(divides=1)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """The inner (Caffe) SigmoidLayer's top ``sigmoid_output_``, bottom-sized, and its
        diff when the prototxt gives a loss_weight (see below)."""

        n = count(ctx.bottom(0)) * 4
        bs = BufferSet(env).add("sigmoid_output", n)
        if len(ctx.param.loss_weight) and ctx.param.loss_weight[0]:
            # The inner SigmoidLayer is constructed with this layer's LayerParameter: an
            # explicit loss_weight makes its SetUp fill sigmoid_output_'s diff (host) and its
            # Forward read it (loss dot product).
            bs.host_then_compute("sigmoid_output_diff", n,
                                 note="explicit loss_weight copied into the inner sigmoid")
        return bs.items

    def forward_touches(self, v: View) -> list[Touch]:
        s = v.side
        out = touch_all(BOTTOM, v.n_bottoms, DATA, s) + [Touch(TOP, 0, DATA, "host")]
        if s == "gpu":
            out += [Touch(BOTTOM, 0, DIFF, "gpu"), Touch(BOTTOM, 1, DIFF, "gpu")]
        return out

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return [Touch(BOTTOM, 0, DIFF, v.side)] if pd and pd[0] else []


@register
class HingeLoss(LossRule):
    """CPU only; Forward writes the margins into bottom 0's diff."""

    type = "HingeLoss"

    def flops(self, ctx: LayerCtx) -> Flops:
        """``hinge_loss_layer.cpp``: the true class's score negated (a multiply per item),
        ``max(0, 1 + x)`` per element (an add, a comparison), the sum (L1: of the values, an
        add each; L2: of the squares, a multiply-add each), / num."""
        b = ctx.bottom(0)
        n = count(b)
        l2 = ctx.param.hinge_loss_param.norm == 2
        return Flops(macs=b[0] + (n if l2 else 0), adds=n + (0 if l2 else n), comparisons=n,
                     divides=1)

    def cpu_only(self, param) -> bool:
        return True

    def forward_touches(self, v: View) -> list[Touch]:
        return super().forward_touches(v) + [Touch(BOTTOM, 0, DIFF, "host")]

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0


@register
class InfogainLoss(LossRule):
    """CPU only; top 1 (if any) shares the inner softmax's ``prob_`` buffer."""

    type = "InfogainLoss"

    def flops(self, ctx: LayerCtx) -> Flops:
        """The inner Softmax, then per (item, class) ``H[label, class] *
        log(max(prob, threshold))`` (a comparison, a log, a multiply-add), / the
        normalizer.  Summing H's rows for the gradient is Backward's."""
        n = count(ctx.bottom(0))
        return softmax_flops(ctx) + Flops(comparisons=n, exps=n, macs=n, divides=1)

    def cpu_only(self, param) -> bool:
        return True

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``infogain_loss_layer.cpp`` (CPU only): ``prob_`` (bottom-sized) from an inner
        Softmax; ``sum_rows_H_`` [C]; the infogain matrix [C*C] when read from a file."""

        b = ctx.bottom(0)
        c = count(b) // max(1, b[0]) if b else 1
        bs = BufferSet(env)
        bs.add("prob", count(b) * 4, side="host", note="softmax probabilities")
        bs.add("sum_rows_H", c * 4, side="host")
        bs.add("prob_diff", count(b) * 4, "setup", side="host",
               note="the inner softmax copies this layer's loss_weight: its top diff is set")
        if len(ctx.bottoms) < 3:
            bs.add("infogain", c * c * 4, "setup", side="host", note="H read from a file")
        return bs.items

    def shares(self, v: View) -> list[tuple[tuple, tuple]]:
        return [((TOP, 1, DATA), (BUFFER, "prob", DATA))] if v.n_tops > 1 else []

    def forward_touches(self, v: View) -> list[Touch]:
        return [t for t in super().forward_touches(v) if not (t.what == TOP and t.index == 1)]

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0


@register
class MultinomialLogisticLoss(LossRule):
    """No GPU implementation: the CPU code runs in GPU mode too (host memory)."""

    type = "MultinomialLogisticLoss"

    def flops(self, ctx: LayerCtx) -> Flops:
        """Per item ``loss -= log(max(prob[label], threshold))`` (a comparison, a log, an
        add), / num."""
        num = ctx.bottom(0)[0]
        return Flops(comparisons=num, exps=num, adds=num, divides=1)

    def cpu_only(self, param) -> bool:
        return True

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index == 0


@register
class ContrastiveLoss(HostLossTopRule):
    type = "ContrastiveLoss"
    check_num = False

    def flops(self, ctx: LayerCtx) -> Flops:
        """``contrastive_loss_layer.cpp``: ``diff_ = a - b`` (an add per element), the
        squared distance per item (a multiply-add per element), then per item the margin
        term (the longer, dissimilar side: a sqrt, a subtraction, a max and the square added
        to the loss; legacy: a subtraction, a max, an add), / (2 * num)."""
        b = ctx.bottom(0)
        n, num = count(b), b[0]
        legacy = ctx.param.contrastive_loss_param.legacy_version
        per_item = Flops(adds=2, comparisons=1) if legacy else \
            Flops(exps=1, adds=1, comparisons=1, macs=1)
        return Flops(adds=n, macs=n, divides=1) + num * per_item

    def buffers(self, ctx: LayerCtx, env) -> list:
        """``contrastive_loss_layer.cpp``/``.cu``: ``diff_`` and (GPU) ``diff_sq_`` [N*C],
        ``dist_sq_`` [N], ``summer_vec_`` [C] of ones (host, LayerSetUp)."""

        b = ctx.bottom(0)
        n, c = b[0], count(b) // max(1, b[0])
        bs = BufferSet(env)
        bs.host_then_compute("summer_vec", c * 4)
        bs.add("diff", n * c * 4)
        if env.gpu:
            bs.add("diff_sq", n * c * 4)
            bs.add("dist_sq", n * 4)  # computed on the GPU, read back on the host
        bs.add("dist_sq", n * 4, side="host")
        return bs.items

    def allow_force_backward(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index != 2

    def backward_to_bottom(self, ctx: LayerCtx, bottom_index: int) -> bool:
        return bottom_index < 2

    def forward_touches(self, v: View) -> list[Touch]:
        """Forward_gpu sums the loss on the host, reading the similarity label with
        ``bottom[2]->cpu_data()`` (contrastive_loss_layer.cu:36-37); the GPU code reads it on
        the device only in Backward (contrastive_loss_layer.cu:98)."""
        s = v.side
        return [Touch(BOTTOM, 0, DATA, s), Touch(BOTTOM, 1, DATA, s), Touch(BOTTOM, 2, DATA, "host"),
                Touch(TOP, 0, DATA, "host")]

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        out = super().backward_touches(v, pd, ppd)
        if any(pd[:2]):
            out.append(Touch(BOTTOM, 2, DATA, v.side))
        return out


@register
class Accuracy(LayerRule):
    """GPU Forward counts into bottom 0's and bottom 1's diffs (scratch, even in test nets)
    and writes its tops on the host.  Backward touches nothing."""

    type = "Accuracy"
    has_backward = False

    def setup(self, ctx: LayerCtx) -> Setup:
        ap = ctx.param.accuracy_param
        b0, b1 = ctx.bottom(0), ctx.bottom(1)
        axis = ctx.canonical_axis(ap.axis, len(b0))
        outer, inner = count(b0[:axis]), count(b0[axis + 1:])
        if outer * inner != count(b1):
            raise ctx.fail(f"number of labels must match number of predictions (predictions {list(b0)}, "
                           f"labels {list(b1)}, label axis {axis})")
        if count(b1) and ap.top_k > count(b0) // count(b1):
            raise ctx.fail("top_k must be less than or equal to the number of classes")
        tops = [()]
        if len(ctx.tops) > 1:
            tops.append((b0[axis],))
        return Setup(tops)

    def flops(self, ctx: LayerCtx) -> Flops:
        """``accuracy_layer.cpp``: per label, each class's score compared with the true
        class's (at most every element once), then accuracy / count (and per class with a
        second top)."""
        per_class = ctx.top_shapes[1][0] if len(ctx.top_shapes) > 1 else 0
        return Flops(comparisons=count(ctx.bottom(0)), divides=1 + per_class)

    def buffers(self, ctx: LayerCtx, env) -> list:
        """Per-class accuracy (two tops): ``nums_buffer_`` [C] on the CPU; the GPU Forward
        reshapes it like bottom 0 (``accuracy_layer.cu``)."""

        if len(ctx.tops) < 2:
            return []
        b0 = ctx.bottom(0)
        axis = ctx.canonical_axis(ctx.param.accuracy_param.axis, len(b0))
        n = count(b0) if env.gpu else b0[axis]
        return BufferSet(env).add("nums_buffer", n * 4).items

    def forward_touches(self, v: View) -> list[Touch]:
        s = v.side
        out = touch_all(BOTTOM, v.n_bottoms, DATA, s) + touch_all(TOP, v.n_tops, DATA, "host")
        if s == "gpu":
            out += [Touch(BOTTOM, 0, DIFF, "gpu")]
            if v.n_tops == 1:
                out.append(Touch(BOTTOM, 1, DIFF, "gpu"))
        return out

    def backward_failure(self, v: View, pd: list[bool]) -> Optional[str]:
        # accuracy_layer.hpp:76-81: Backward_cpu is NOT_IMPLEMENTED for any bottom asked to
        # propagate; accuracy_layer.cu:141-145: Backward_gpu only for the label (bottom 1)
        bad = [i for i, p in enumerate(pd) if p and (v.side == "host" or i == 1)]
        if not bad:
            return None
        where = "accuracy_layer.hpp:76-81" if v.side == "host" else "accuracy_layer.cu:141-145"
        return (f"has no Backward to bottom {bad[0]} (NOT_IMPLEMENTED when propagate_down is "
                f"set: {where})")

    def backward_touches(self, v: View, pd: list[bool], ppd: list[bool]) -> list[Touch]:
        return []
