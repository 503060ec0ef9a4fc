"""Building a net the way Caffe's ``Net::Init`` does.

Given a NetParameter already upgraded and a NetState, :func:`build_net`:

1. filters layers by include/exclude rules (``FilterNet``);
2. inserts Split layers (``InsertSplits``);
3. walks the layers in order, wiring bottoms to existing blobs, creating a blob per new top,
   reusing the bottom blob for an in-place top, adding an "(automatic)" top to loss layers
   that name none, running each type's rule for top and parameter shapes, and adding every
   top's count (in-place and split tops included) to ``memory_used`` — the figure Caffe
   prints as ``Memory required for data``;
4. decides which layers and blobs need backward, as Caffe does (``propagate_down``,
   learnable params, layers that do not reach a loss, ``force_backward``);
5. resolves shared parameters by name (only owners are learnable).

The result, :class:`Net`, is a plain graph that the memory model and the reports walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from . import layers as _layers  # noqa: F401  (registers every rule)
from .errors import NetError, UnsupportedLayerError, close_matches, did_you_mean, notice, shown
from .flops import Flops
from .layers.base import LayerCtx, Setup, Shape, count
from .layers.registry import known_types, lookup
from .netfilter import NetState, filter_layers, states_keeping
from .pb import caffe_pb2
from .splits import LayerDef, insert_splits

INT_MAX = 2**31 - 1
DTYPE_BYTES = 4  # float32: the caffe binary and pycaffe build Net<float>


@dataclass
class Blob:
    """One blob of the net (data and, in training, diff)."""

    id: int
    name: str
    shape: Shape = ()
    producer: int = -1  # index of the layer that created it
    need_backward: bool = False
    #: the blob whose data this one shares (split tops, Flatten/Reshape tops); None if own data
    shares_data_of: Optional[int] = None
    #: the split top this blob is, when produced by an inserted Split layer
    is_split_top: bool = False
    automatic: bool = False  # an anonymous "(automatic)" loss top

    @property
    def count(self) -> int:
        return count(self.shape)


@dataclass
class ParamBlob:
    """A layer's parameter blob, with its ParamSpec and sharing resolved."""

    layer: int
    index: int
    shape: Shape
    display_name: str
    lr_mult: float
    decay_mult: float
    #: (layer index, param index) of the owner when this blob is shared; None when it owns
    owner: Optional[tuple[int, int]] = None

    @property
    def count(self) -> int:
        return count(self.shape)

    @property
    def learnable(self) -> bool:
        """Owned params are Caffe's ``learnable_params_`` (lr_mult 0 included)."""
        return self.owner is None


@dataclass
class Layer:
    """One layer of the built net (inserted splits included)."""

    index: int
    name: str
    type: str
    ctx: LayerCtx
    rule: object  # LayerRule, or None when shapes came only from --input
    bottoms: list[int]
    tops: list[int]
    in_place: list[bool]
    loss_weights: list[float]
    params: list[ParamBlob] = field(default_factory=list)
    bottom_need_backward: list[bool] = field(default_factory=list)
    need_backward: bool = False
    memory_after: int = 0  # cumulative "Memory required for data" after this layer, bytes
    #: what one Forward computes (None: not counted for this type, see LayerRule.flops)
    flops: Optional[Flops] = None
    inserted_split: bool = False
    notes: list[str] = field(default_factory=list)
    #: nets a layer builds inside itself (a recurrent layer's unrolled net)
    inner_nets: list["Net"] = field(default_factory=list)
    #: a layer of a type caffemem has no rule for, modeled as shape-preserving (a fork's
    #: layer with as many tops as bottoms): its figures are approximate
    approximate: bool = False

    @property
    def phase(self) -> str:
        return self.ctx.phase


@dataclass
class Net:
    """A built net: layers and blobs in Caffe's order, plus the log figure."""

    name: str
    state: NetState
    layers: list[Layer]
    blobs: list[Blob]
    outputs: list[str]
    force_backward: bool = False
    warnings: list[str] = field(default_factory=list)
    source: str = ""
    #: the NetParameter after filtering (what Caffe echoes as "Initializing net from parameters")
    filtered: object = None
    #: the ``--input`` names this net used (tops it produced under those names)
    inputs_used: set = field(default_factory=set)
    #: which of a file's nets this is ("net", "train net", "test net #0"); "" when the net
    #: was built on its own rather than from a file
    label: str = ""

    @property
    def phase(self) -> str:
        return self.state.phase

    @property
    def display_label(self) -> str:
        """``label``, or "net" for a net built on its own."""
        return self.label or "net"

    @property
    def memory_required_for_data(self) -> int:
        """Caffe's last ``Memory required for data`` figure for this net, in bytes."""
        return self.layers[-1].memory_after if self.layers else 0

    def blob(self, name: str) -> Blob:
        for b in reversed(self.blobs):
            if b.name == name:
                return b
        raise KeyError(name)

    def layer(self, name: str) -> Layer:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)

    @property
    def approximate_layers(self) -> list[str]:
        """Layers of unknown types modeled as shape-preserving (their figures are guesses)."""
        return [l.name for l in self.layers if l.approximate]

    @property
    def learnable_params(self) -> list[ParamBlob]:
        return [p for l in self.layers for p in l.params if p.learnable]


@dataclass
class BuildOptions:
    """What the user can say about shapes: ``--input`` overrides and ``--batch``."""

    inputs: dict[str, Shape] = field(default_factory=dict)
    batch: Optional[int] = None
    net_dir: str = "."
    #: check that every --input names a real top (off for inner nets)
    strict_inputs: bool = True


def _float32(x: float) -> float:
    import struct

    return struct.unpack("f", struct.pack("f", x))[0]


def build_net(param: "caffe_pb2.NetParameter", state: NetState,
              options: Optional[BuildOptions] = None, source: str = "") -> Net:
    """Build ``param`` (already upgraded) in ``state``; see the module docstring."""
    options = options or BuildOptions()
    filtered, layer_defs = _structure(param, state, source)

    net = Net(param.name, state, [], [], [], bool(param.force_backward), source=source,
              filtered=filtered)
    blob_by_name: dict[str, int] = {}
    available: set[str] = set()
    used_inputs: set[str] = set()
    memory_used = 0
    param_owner_by_name: dict[str, tuple[int, int]] = {}

    for li, ld in enumerate(layer_defs):
        proto = ld.proto if ld.proto is not None else caffe_pb2.LayerParameter(name=ld.name, type=ld.type)
        phase = caffe_pb2.Phase.Name(proto.phase) if proto.HasField("phase") else state.phase
        if len(proto.propagate_down) and len(proto.propagate_down) != len(ld.bottoms):
            raise NetError(f"layer '{ld.name}': propagate_down param must be specified either 0 or "
                           f"bottom_size times ({len(proto.propagate_down)} given, {len(ld.bottoms)} bottoms)")
        rule = lookup(ld.type)

        # bottoms (AppendBottom)
        bottoms, bottom_nb = [], []
        need_backward = False
        for j, bname in enumerate(ld.bottoms):
            if bname not in available:
                raise NetError(f"layer '{ld.name}' ({ld.type}): bottom '{bname}' (bottom index {j}) "
                               f"is not available: it was never produced, or an earlier layer "
                               f"already consumed it")
            bid = blob_by_name[bname]
            bottoms.append(bid)
            available.discard(bname)
            nb = net.blobs[bid].need_backward
            if len(proto.propagate_down):
                nb = bool(proto.propagate_down[j])
            bottom_nb.append(nb)
            need_backward |= net.blobs[bid].need_backward

        # tops (AppendTop)
        tops, in_place, top_names = [], [], list(ld.tops)
        for j, tname in enumerate(ld.tops):
            if j < len(ld.bottoms) and tname == ld.bottoms[j]:
                tops.append(blob_by_name[tname])
                in_place.append(True)
            elif tname in blob_by_name:
                producer = net.blobs[blob_by_name[tname]].producer
                by = (f"twice by layer '{ld.name}'" if producer == li
                      else f"also by layer '{net.layers[producer].name}'")
                raise NetError(f"layer '{ld.name}': top blob '{tname}' produced by multiple sources "
                               f"({by}); Caffe stops with 'Top blob '{tname}' produced by multiple "
                               f"sources'; give each top its own name")
            else:
                b = Blob(len(net.blobs), tname, producer=li, is_split_top=ld.split_of is not None)
                net.blobs.append(b)
                blob_by_name[tname] = b.id
                tops.append(b.id)
                in_place.append(False)
            available.add(tname)
        if rule is not None and rule.is_loss and len(tops) < 1:
            b = Blob(len(net.blobs), "(automatic)", producer=li, automatic=True)
            net.blobs.append(b)
            tops.append(b.id)
            in_place.append(False)
            top_names.append("(automatic)")

        if rule is not None and not rule.allows_in_place and any(in_place):
            raise NetError(f"layer '{ld.name}' ({ld.type}): {ld.type} does not allow in-place "
                           f"computation (top '{top_names[in_place.index(True)]}' is also its bottom); "
                           f"give the top its own name")
        ctx = LayerCtx(name=ld.name, type=ld.type, param=proto, bottoms=list(ld.bottoms),
                       tops=top_names, bottom_shapes=[net.blobs[b].shape for b in bottoms],
                       phase=phase, batch_override=options.batch, net_dir=options.net_dir)
        layer = Layer(li, ld.name, ld.type, ctx, rule, bottoms, tops, in_place, [],
                      inserted_split=ld.split_of is not None)
        unrolled = rule.unrolled_net(ctx) if rule is not None else None
        if unrolled is not None:  # built (and logged) before SetUp, in NetState's default TEST
            ctx.inner = build_net(unrolled, NetState("TEST"), BuildOptions(strict_inputs=False),
                                  source=f"unrolled net of layer '{ctx.name}'")
            layer.inner_nets = [ctx.inner]
        setup = _run_setup(layer, rule, options, used_inputs)
        if len(setup.tops) != len(tops):
            raise NetError(f"layer '{ld.name}' ({ld.type}): produces {len(setup.tops)} top(s) but "
                           f"{len(tops)} are named ({', '.join(top_names) or 'none'})")
        ctx.top_shapes = list(setup.tops)
        ctx.param_shapes = list(setup.params)

        # loss weights (Layer::SetLossWeights; LossLayer defaults top 0 to 1)
        weights = list(ld.loss_weights)
        if rule is not None and rule.is_loss and not weights:
            weights = [1.0]
        if weights and len(weights) != len(tops):
            raise NetError(f"layer '{ld.name}' ({ld.type}): loss_weight must be unspecified or "
                           f"specified once per top blob ({len(weights)} given, {len(tops)} tops)")
        layer.loss_weights = [_float32(w) for w in weights] if weights else [0.0] * len(tops)

        _check_shapes(ld.name, top_names, setup)
        for j, bid in enumerate(tops):
            blob = net.blobs[bid]
            blob.shape = tuple(setup.tops[j])
            if not in_place[j] and (ld.split_of is not None or (rule is not None and rule.shares_data)):
                src = net.blobs[bottoms[0]]
                blob.shares_data_of = src.shares_data_of if src.shares_data_of is not None else src.id
            if blob.count > INT_MAX:
                net.warnings.append(
                    f"layer '{ld.name}': top '{blob.name}' has {blob.count} elements; Caffe stops "
                    f"here with 'blob size exceeds INT_MAX' (a blob holds at most {INT_MAX})")
            memory_used += blob.count
        layer.memory_after = memory_used * DTYPE_BYTES
        if rule is not None:
            try:
                layer.flops = rule.flops(ctx)
            except NetError:
                layer.flops = None

        # params (AppendParam) and the param part of need_backward
        for pi, pshape in enumerate(setup.params):
            spec = proto.param[pi] if pi < len(proto.param) else caffe_pb2.ParamSpec()
            lr = spec.lr_mult
            need_backward |= lr != 0
            name = spec.name if pi < len(proto.param) else ""
            pb = ParamBlob(li, pi, tuple(pshape), name or str(pi), lr, spec.decay_mult)
            if name and name in param_owner_by_name:
                owner_l, owner_p = param_owner_by_name[name]
                owner = net.layers[owner_l].params[owner_p] if owner_l != li else layer.params[owner_p]
                permissive = spec.share_mode == caffe_pb2.ParamSpec.PERMISSIVE
                if (count(owner.shape) != count(pshape)) if permissive else (owner.shape != tuple(pshape)):
                    raise NetError(f"cannot share param '{name}' owned by layer "
                                   f"'{net.layers[owner_l].name if owner_l != li else ld.name}' with layer "
                                   f"'{ld.name}'; shape mismatch: owner {list(owner.shape)} vs {list(pshape)}")
                pb.owner = (owner_l, owner_p)
            elif name:
                param_owner_by_name[name] = (li, pi)
            layer.params.append(pb)
        if len(proto.param) > len(setup.params) and ld.proto is not None:
            raise NetError(f"too many params specified for layer '{ld.name}' ({len(proto.param)} "
                           f"param blocks, the layer has {len(setup.params)} parameter blobs)")

        layer.bottom_need_backward = bottom_nb
        layer.need_backward = need_backward
        if need_backward:
            for bid in tops:
                net.blobs[bid].need_backward = True
        net.layers.append(layer)

    _backward_pass(net)
    approx = net.approximate_layers
    if approx:
        types = sorted({l.type for l in net.layers if l.approximate})
        warning = (f"approximate: {len(approx)} layer{'s' if len(approx) > 1 else ''} of unknown "
                   f"type{'s' if len(types) > 1 else ''} ({', '.join(types[:5])}) assumed "
                   f"shape-preserving ({', '.join(approx[:5])}{', ...' if len(approx) > 5 else ''}); "
                   f"give --input TOP=... to correct")
        net.warnings.append(warning)
        notice(f"{source or 'net'}: {warning}")
    net.inputs_used = used_inputs
    if options.strict_inputs:
        check_inputs_used(options.inputs, [net])
    net.outputs = sorted(available)
    return net


#: the last nets' structure (filtered layers, splits inserted), which does not depend on
#: shapes: ``fit`` rebuilds one net at many batch sizes, and this part is a third of a build
_STRUCTURES: dict = {}


def _structure(param: "caffe_pb2.NetParameter", state: NetState, source: str) -> tuple:
    """``FilterNet`` then ``InsertSplits`` (with their refusals), remembered for the same
    NetParameter object in the same state, as long as its content has not changed."""
    key = (id(param), state)
    content = param.SerializeToString(deterministic=True)  # C-fast; any edit changes it
    hit = _STRUCTURES.get(key)
    if hit is not None and hit[0] is param and hit[1] == content:
        return hit[2], hit[3]
    kept = filter_layers(param.layer, state)
    if len(param.layer) and not kept:
        _refuse_all_filtered(param, state, source)
    filtered = caffe_pb2.NetParameter()
    filtered.name = param.name
    filtered.force_backward = param.force_backward
    filtered.layer.extend(kept)
    _check_filtered_producers(param.layer, kept, state)
    layer_defs = insert_splits([LayerDef.from_proto(p) for p in kept])
    if len(_STRUCTURES) >= 16:
        _STRUCTURES.clear()
    _STRUCTURES[key] = (param, content, filtered, layer_defs)
    return filtered, layer_defs


def check_inputs_used(inputs, nets: list["Net"], option: str = "--input") -> None:
    """Every ``--input`` (``option``) must name a top that some of ``nets`` produces: a typo
    would otherwise be silently ignored."""
    unused = sorted(set(inputs) - set().union(*(n.inputs_used for n in nets)))
    if unused:
        tops = sorted({t for n in nets for l in n.layers if not l.inserted_split for t in l.ctx.tops})
        hint = did_you_mean(unused[0], tops, cutoff=0.6)
        raise NetError(f"{option} names blob(s) {', '.join(shown(u, 40) for u in unused)} that no layer "
                       f"produces{hint or ''}; tops are: {', '.join(tops[:15])}"
                       f"{' ...' if len(tops) > 15 else ''}")


def _check_filtered_producers(all_layers, kept, state: NetState) -> None:
    """A bottom whose only producer was filtered out for this state: say which rule did it
    and which phase/stage would keep it (the usual cause: a TEST-only data layer)."""
    produced = set()
    kept_ids = {id(l) for l in kept}
    for layer in kept:
        for j, b in enumerate(layer.bottom):
            if b not in produced:
                dropped = [l for l in all_layers if id(l) not in kept_ids and b in l.top]
                if dropped:
                    d = dropped[0]
                    rules = "; ".join(str(r).replace("\n", " ").strip() for r in list(d.include) + list(d.exclude))
                    raise NetError(
                        f"layer '{layer.name}' ({layer.type}): bottom '{b}' comes from layer '{d.name}', "
                        f"which is not in this net for phase {state.phase}"
                        f"{' and stages ' + ','.join(state.stages) if state.stages else ''} "
                        f"(its rules: {rules or 'none'}); build the phase that has it"
                        f"{', e.g. ' + keep if (keep := states_keeping([d], state)) else ''}")
        produced.update(layer.top)


def _run_setup(layer: Layer, rule, options: BuildOptions, used_inputs: set) -> Setup:
    """Run the type's rule, honouring ``--input`` overrides of its tops by name."""
    ctx = layer.ctx
    overrides = {i: options.inputs[n] for i, n in enumerate(ctx.tops) if n in options.inputs}
    used_inputs.update(ctx.tops[i] for i in overrides)
    for i, shape in list(overrides.items()):
        if shape and shape[0] is None:  # --input top=*,C,H,W: the layer's own batch size
            batch = rule.declared_batch(ctx) if rule is not None and hasattr(rule, "declared_batch") else None
            if batch is None:
                raise NetError(f"--input {ctx.tops[i]}=*,...: layer '{ctx.name}' ({ctx.type}) declares "
                               f"no batch size to put in place of '*'; give the full shape")
            overrides[i] = (batch,) + tuple(shape[1:])
    ctx.overrides = overrides
    if overrides and len(overrides) == len(ctx.tops):
        params: list = []
        if rule is None:
            layer.notes.append("type has no rule in caffemem: top shapes from --input, "
                               "no parameters or buffers modeled")
        else:
            try:
                params = rule.setup(ctx).params
            except NetError:
                params = []
        layer.notes.append("top shapes from --input")
        return Setup([tuple(overrides[i]) for i in range(len(ctx.tops))], params)
    if rule is None:
        return _unknown_type(layer, overrides)
    setup = rule.setup(ctx)
    layer.notes.extend(setup.notes)
    for i, shape in overrides.items():
        setup.tops[i] = tuple(shape)
        layer.notes.append(f"top '{ctx.tops[i]}' shape from --input")
    return setup


def likely_typo(type_name: str) -> list[str]:
    """Registered types that ``type_name`` is probably a typo of: a close spelling, or the
    same letters in another case (Caffe's registry is case-sensitive).  A known name with
    something added (``ReLU6``, ``ConvolutionDepthwise``) is a fork's own type, not a typo."""
    names = list(known_types())
    low = type_name.lower()
    if any(len(n) >= 4 and n.lower() in low and n.lower() != low for n in names):
        return []  # ReLU6, ConvolutionDepthwise, DepthwiseConvolution: a fork extends a type
    return close_matches(type_name, names, n=2, cutoff=0.8)


def _unknown_type(layer: Layer, overrides: dict) -> Setup:
    """A layer type with no rule: a typo of a known type is refused with the name it
    probably meant; a fork's layer with as many tops as bottoms is modeled as keeping its
    bottoms' shapes (marked approximate); any other is refused, asking for ``--input``."""
    ctx = layer.ctx
    if not ctx.type:
        raise NetError(f"layer {shown(ctx.name, 40)} has no type; give it one "
                       f"(type: \"Convolution\", ...; 'caffemem layers' lists them)")
    typo = likely_typo(ctx.type)
    if typo:
        raise NetError(f"layer {shown(ctx.name, 40)} has type {shown(ctx.type, 40)}, which is not a "
                       f"layer type caffemem or Caffe knows; did you mean "
                       f"{' or '.join(repr(t) for t in typo)}? (type names are case-sensitive)")
    if ctx.bottoms and len(ctx.tops) == len(ctx.bottoms):
        layer.approximate = True
        layer.notes.append(f"type {ctx.type} has no rule in caffemem: assumed shape-preserving "
                           f"(top i = bottom i), no parameters or buffers; give --input TOP=... "
                           f"to correct")
        guessed = [t for i, t in enumerate(ctx.tops) if i not in overrides]
        ctx.assumptions.append(("", "a type caffemem has no rule for (a fork's layer?), assumed "
                                    "shape-preserving (each top shaped like its bottom), without "
                                    "parameters or buffers",
                                " ".join(f"--input {t}=N,C,H,W" for t in guessed)))
        tops = [tuple(overrides.get(i, ctx.bottom_shapes[i])) for i in range(len(ctx.tops))]
        return Setup(tops, [])
    missing = [t for i, t in enumerate(ctx.tops) if i not in overrides]
    raise UnsupportedLayerError(ctx.name, ctx.type, missing)


def _check_shapes(name: str, tops: list, setup: Setup) -> None:
    """``Blob::Reshape``'s check (blob.cpp: CHECK_GE(shape[i], 0)): no negative dimension."""
    for j, shape in enumerate(setup.tops):
        for d in shape:
            if d is None or d < 0:
                top = tops[j] if j < len(tops) else str(j)
                raise NetError(f"layer {shown(name, 40)}: top {shown(top, 40)} has a negative "
                               f"dimension ({d}) in shape {list(shape)}; Caffe stops with 'Check "
                               f"failed: shape[i] >= 0' (Blob::Reshape); fix the shape")
    for shape in setup.params:
        if any(d < 0 for d in shape):
            raise NetError(f"layer {shown(name, 40)}: a parameter of shape {list(shape)} has a "
                           f"negative dimension; Caffe stops with 'Check failed: shape[i] >= 0'")


def _refuse_all_filtered(param, state: NetState, source: str) -> None:
    """Every layer is filtered out by its include/exclude rules: name the rules and the
    ``--phase``/``--stage``/``--level`` that keeps layers."""
    rules = []
    for l in param.layer:
        for kind in ("include", "exclude"):
            for r in getattr(l, kind):
                text = f"{kind} {{ {' '.join(str(r).split())} }}"
                if text not in rules:
                    rules.append(text)
    where = f"phase {state.phase}" + (f", stages {','.join(state.stages)}" if state.stages else "") + \
        (f", level {state.level}" if state.level else "")
    keep = states_keeping(param.layer, state)
    hint = f"; try {keep}" if keep else ""
    raise NetError(f"no layer of {source or 'the net'} is in the {state.phase} net ({where}): every "
                   f"layer's include/exclude rules filter it out (rules: {'; '.join(rules[:4])}"
                   f"{'; ...' if len(rules) > 4 else ''}){hint}")


def _backward_pass(net: Net) -> None:
    """Caffe's second pass: which layers contribute to a loss, and force_backward."""
    under_loss: set[str] = set()
    skip_backp: set[str] = set()
    for layer in reversed(net.layers):
        contributes, skip = False, True
        for j, bid in enumerate(layer.tops):
            name = net.blobs[bid].name
            if layer.loss_weights[j] or name in under_loss:
                contributes = True
            if name not in skip_backp:
                skip = False
            if contributes and not skip:
                break
        if layer.need_backward and skip:
            layer.need_backward = False
            layer.bottom_need_backward = [False] * len(layer.bottoms)
        if not contributes:
            layer.need_backward = False
        for j, bid in enumerate(layer.bottoms):
            name = net.blobs[bid].name
            if contributes:
                under_loss.add(name)
            else:
                layer.bottom_need_backward[j] = False
            if not layer.bottom_need_backward[j]:
                skip_backp.add(name)
    if net.force_backward:
        for layer in net.layers:
            layer.need_backward = True
            for j, bid in enumerate(layer.bottoms):
                allow = layer.rule.allow_force_backward(layer.ctx, j) if layer.rule else True
                layer.bottom_need_backward[j] = layer.bottom_need_backward[j] or allow
                net.blobs[bid].need_backward = net.blobs[bid].need_backward or layer.bottom_need_backward[j]


def shape_string(shape: Shape) -> str:
    """``Blob::shape_string``: ``'4 32 128 128 (2097152)'``; a scalar is ``'(1)'``."""
    return "".join(f"{d} " for d in shape) + f"({count(shape)})"
