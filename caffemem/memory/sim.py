"""A replay of Caffe's SyncedMemory allocations: which memory exists, and when it is touched.

Every ``SyncedMemory`` Caffe would create for a net becomes a :class:`Mem` (blob data and
diff, parameter data and diff, layer buffers, prefetch batches, solver history).  Blobs that
share memory (in-place tops, split tops, Flatten/Reshape, a Parameter layer's top, ...) are
merged into one Mem with a union-find over memory references.  Replaying Caffe's calls in
order (:class:`NetSim` ``setup``/``forward``/``backward``) touches Mems on the host or the
device; the first touch on a side allocates that side (``SyncedMemory::to_cpu``/``to_gpu``),
nothing is freed except where Caffe frees (a shared param's own copy at ``ShareWeights``, a
test net's params at ``ShareTrainedLayersWith``, CPU temporaries).  :class:`Memory` then
gives the peak of live bytes per side, and what was live at that moment.

What each call touches, which memory is shared and which buffers a layer keeps come from the
layer's rule (:class:`caffemem.layers.base.LayerRule`); this module knows no layer type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from ..blobshape import count
from ..buffers import NET_INIT_COPIES, NETPARAM_BYTES_PER_LAYER, Buffer, Kind, MemoryEnv
from ..errors import NetError
from ..layers.base import BOTTOM, BUFFER, DATA, DIFF, PARAM, TOP, LayerRule, Touch, View

DTYPE = 4  # float32: Net<float>

#: the rule of a layer caffemem has none for (its shapes came from --input): Caffe's default
#: behaviour, no buffers
_NO_RULE = LayerRule()


@dataclass(eq=False, slots=True)
class Mem:
    """One SyncedMemory: its size, what it is for, who it belongs to, and when each side was
    allocated (clock ticks; None = never)."""

    nbytes: int
    kind: str
    net: str
    layer: int  # layer index in its net (-1: the net or the solver)
    name: str
    #: memory Caffe does not own on that side ('host', 'gpu' or 'both'): a data layer's top
    #: points at the prefetch batch there (``set_cpu_data``/``set_gpu_data``)
    external: Optional[str] = None
    transient: bool = False
    gpu: int = 0  # which GPU's device memory
    host_at: Optional[int] = None
    dev_at: Optional[int] = None
    freed_at: Optional[int] = None
    #: a transient's allocations: (side, allocated at, freed at), one per call
    spans: list = field(default_factory=list)
    #: what was running when each side was first allocated ("test net #0: conv1 Forward")
    host_by: str = ""
    dev_by: str = ""

    def intervals(self, side: str) -> list[tuple[int, Optional[int]]]:
        """[(allocated at, freed at or None)] on ``side``."""
        if self.transient:
            return [(a, b) for s, a, b in self.spans if s == side]
        at = self.host_at if side == "host" else self.dev_at
        return [] if at is None else [(at, self.freed_at)]

    def live(self, side: str, t: int) -> bool:
        if not self.transient:
            at = self.host_at if side == "host" else self.dev_at
            return at is not None and at <= t and (self.freed_at is None or self.freed_at > t)
        return any(a <= t and (b is None or b > t) for a, b in self.intervals(side))

    @property
    def allocated(self) -> bool:
        return bool(self.spans) or self.host_at is not None or self.dev_at is not None


class Memory:
    """All Mems of one process, a clock, and labelled moments (for "where is the peak").

    ``pinned_bookkeeping`` False leaves out the Blobs' ``shape_data_`` (a few pinned host
    bytes each, never on the device): for a question about the device alone (fit's probes,
    the card table), whose allocations, order and sizes are the same either way."""

    def __init__(self, pinned_bookkeeping: bool = True) -> None:
        self.pinned_bookkeeping = pinned_bookkeeping
        self.t = 0
        self.mems: list[Mem] = []
        self.moments: list[tuple[int, str]] = []
        #: the call being replayed, recorded on each first allocation
        self.context = ""
        #: any per-call temporaries? (only then do repeated calls change the peak)
        self.has_transients = False

    def tick(self) -> int:
        self.t += 1
        return self.t

    def new(self, nbytes: int, kind: str, net: str, layer: int, name: str,
            external: Optional[str] = None, transient: bool = False, gpu: int = 0) -> Mem:
        m = Mem(nbytes, kind, net, layer, name, external, transient, gpu)
        self.mems.append(m)
        return m

    def mark(self, label: str) -> None:
        """Start a new labelled moment (e.g. "train net: forward")."""
        self.moments.append((self.t + 1, label))
        self.context = label

    def touch(self, mem: Mem, side: str) -> None:
        external = mem.external
        if (external is not None and (external == side or external == "both")) \
                or mem.freed_at is not None or mem.nbytes == 0:
            return
        if mem.transient:  # a temporary of the call: allocated and freed every time
            start = self.tick()
            mem.spans.append((side, start, self.tick()))
            mem.host_by = mem.dev_by = self.context
            return
        if side == "host":
            if mem.host_at is not None:
                return
            mem.host_at, mem.host_by = self.tick(), self.context
        else:
            if mem.dev_at is not None:
                return
            mem.dev_at, mem.dev_by = self.tick(), self.context

    def touch_transients(self, touches: list[tuple[Mem, str]]) -> None:
        """Temporaries of one call: all allocated, then all freed when the call returns."""
        starts = []
        for mem, side in touches:
            if mem.external in (side, "both") or mem.nbytes == 0:
                continue
            starts.append((mem, side, self.tick()))
        end = self.tick()
        for mem, side, start in starts:
            mem.spans.append((side, start, end))
            mem.host_by = mem.dev_by = self.context

    def free(self, mem: Mem) -> None:
        if mem.freed_at is None and not mem.transient and mem.allocated:
            mem.freed_at = self.tick()

    def peak(self, side: str, gpu: Optional[int] = None,
             size: Optional[Callable[[int], int]] = None) -> tuple[int, int]:
        """(peak live bytes, tick at which it is first reached) for 'host' or 'gpu';
        ``size`` maps each allocation's requested bytes to what it takes (e.g. rounded)."""
        deltas: dict[int, int] = {}
        get = deltas.get
        host = side == "host"
        only = None if host else gpu
        for m in self.mems:
            if only is not None and m.gpu != only:
                continue
            if m.transient:
                spans = [(a, b) for s, a, b in m.spans if s == side]
            else:
                at = m.host_at if host else m.dev_at
                if at is None:
                    continue
                spans = ((at, m.freed_at),)
            n = size(m.nbytes) if size is not None else m.nbytes
            for at, freed in spans:
                deltas[at] = get(at, 0) + n
                if freed is not None:
                    deltas[freed] = get(freed, 0) - n
        live = best = 0
        best_t = 0
        for t in sorted(deltas):
            live += deltas[t]
            if live > best:
                best, best_t = live, t
        return best, best_t

    def live_at(self, side: str, t: int, gpu: Optional[int] = None) -> list[Mem]:
        return [m for m in self.mems if m.live(side, t) and
                (side == "host" or gpu is None or m.gpu == gpu)]

    def events(self, side: str, gpu: Optional[int] = None) -> list[tuple[int, int, Mem]]:
        """(tick, +bytes or -bytes, mem) of every allocation and free on ``side``, in order."""
        out = []
        for m in self.mems:
            if side == "gpu" and gpu is not None and m.gpu != gpu:
                continue
            for at, freed in m.intervals(side):
                out.append((at, m.nbytes, m))
                if freed is not None:
                    out.append((freed, -m.nbytes, m))
        out.sort(key=lambda e: (e[0], e[1]))
        return out

    def moment_of(self, t: int) -> str:
        # before the first moment (a net that allocates nothing peaks at t = 0): the first
        # moment, not "" ("peak during ." in the verdict)
        label = self.moments[0][1] if self.moments else ""
        for start, name in self.moments:
            if start <= t:
                label = name
            else:
                break
        return label


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, k):
        parent = self.parent
        p = parent.get(k)
        if p is None or p == k:
            return k
        while parent.get(k, k) != k:
            parent[k] = parent.get(parent[k], parent[k])
            k = parent[k]
        return k

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        self.parent.setdefault(ra, ra)
        self.parent.setdefault(rb, rb)
        if ra != rb:
            # keep the more "owning" key as root: param > buffer > blob, then the earliest
            if _rank(rb) < _rank(ra):
                ra, rb = rb, ra
            self.parent[rb] = ra


def _rank(key) -> tuple:
    order = {"param": 0, "buffer": 1, "blob": 2}
    return (order.get(key[0], 3),) + tuple(x if isinstance(x, int) else 0 for x in key[1:3])


def layer_view(layer, rule: LayerRule, env: MemoryEnv) -> View:
    """What ``rule``'s touch methods see of a :class:`caffemem.net.Layer` in ``env``."""
    ctx = layer.ctx
    side = "gpu" if env.gpu and not rule.cpu_only(ctx.param) else "host"
    return View(layer.type, ctx.param, ctx.phase, len(layer.bottoms), len(layer.tops),
                len(layer.params), list(layer.in_place), list(layer.loss_weights), env,
                rule.engine(ctx.param, env), side, list(ctx.bottom_shapes),
                [p.shape for p in layer.params])


def _layer_calls(layer, rule: LayerRule, env: MemoryEnv, force_backward: bool) -> tuple:
    """Everything ``rule`` tells the replay about ``layer`` in ``env``: the view's side, its
    buffers, shared memory, what SetUp, Forward and Backward touch (with the net's
    propagate_down flags) and whether Backward fails."""
    view = layer_view(layer, rule, env)
    pd = list(layer.bottom_need_backward) or [False] * len(layer.bottoms)
    ppd = [True] * len(layer.params) if force_backward else [p.lr_mult != 0 for p in layer.params]
    return (view.side, list(rule.buffers(layer.ctx, env) or []), rule.shares(view),
            rule.setup_touches(view), rule.forward_touches(view),
            rule.backward_touches(view, pd, ppd), rule.backward_failure(view, pd))


def same_replay(net, env: MemoryEnv, other: MemoryEnv) -> bool:
    """Would ``net`` be replayed exactly alike in ``env`` and ``other``, two envs that differ
    in the engine only?  Yes when every layer whose engine differs between them gives the
    replay the same answers (buffers, shares, touches, Backward's failure) in both, as a
    cuDNN ReLU and Caffe's own do: the replay reads the engine only through the rules.  A
    layer that builds a net inside itself is not compared (no)."""
    for layer in net.layers:
        rule = layer.rule
        if rule is None:
            continue
        if layer.inner_nets:
            return False
        param = layer.ctx.param
        if rule.engine(param, env) == rule.engine(param, other):
            continue
        try:
            if _layer_calls(layer, rule, env, net.force_backward) != \
                    _layer_calls(layer, rule, other, net.force_backward):
                return False
        except Exception:  # a rule that fails here is left to the replay
            return False
    return True


@dataclass
class LayerState:
    """Per-layer bookkeeping of a NetSim."""

    rule: LayerRule
    view: View
    buffers: list[Buffer] = field(default_factory=list)
    own_param_copies: list[Mem] = field(default_factory=list)
    prefetch: list[Mem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


#: the buffers charged to a layer for the nets it builds inside (``inner_nets``)
InnerNetBuffers = Callable[[object, MemoryEnv], list[Buffer]]


class NetSim:
    """The SyncedMemories of one built net in one env, and Caffe's calls on them.

    ``inner_buffers`` models the nets a layer builds inside itself (a recurrent layer's
    unrolled net), given by :mod:`.model`, which runs the whole model on them."""

    def __init__(self, net, env: MemoryEnv, memory: Memory, gpu: int = 0,
                 label: Optional[str] = None,
                 inner_buffers: Optional[InnerNetBuffers] = None,
                 built_inside: bool = False) -> None:
        self.net, self.env, self.memory, self.gpu = net, env, memory, gpu
        #: a net a layer builds inside itself (a recurrent layer's unrolled net)
        self.built_inside = built_inside
        self.label = label or net.display_label
        self.layers: list[LayerState] = []
        self.param_data_override: dict[tuple[int, int], Mem] = {}
        uf = _UnionFind()
        for li, layer in enumerate(net.layers):
            rule = layer.rule if layer.rule is not None else _NO_RULE
            st = LayerState(rule, layer_view(layer, rule, env))
            if layer.rule is not None:
                try:
                    st.buffers = list(rule.buffers(layer.ctx, env) or [])
                    if layer.inner_nets and inner_buffers is not None:
                        st.buffers += inner_buffers(layer, env)
                except Exception as e:  # a rule's buffers() must not break the whole model
                    st.notes.append(f"buffers not modeled ({type(e).__name__}: {e})")
            else:
                st.notes.append("no rule for this type: only its blobs are modeled")
            if rule.unmodeled:
                st.notes.append(rule.unmodeled)
            if layer.inner_nets:
                st.notes.append("includes the net it builds inside (a recurrent layer's unrolled "
                                "net), replayed inside this layer's SetUp, Forward and Backward "
                                "and counted here by kind")
            self.layers.append(st)
            for a, b in rule.shares(st.view):
                uf.union(self._key(li, a), self._key(li, b))
            for k, p in enumerate(layer.params):
                if p.owner is not None:
                    ol, ok = p.owner
                    for attr in (DATA, DIFF):
                        uf.union(("param", ol, ok, attr), ("param", li, k, attr))
        self._uf = uf
        self._prepare()

    # -- memory references --------------------------------------------------------------

    def _key(self, li: int, ref: tuple):
        what, idx, attr = ref
        layer = self.net.layers[li]
        if what == TOP:
            return ("blob", layer.tops[idx], attr)
        if what == BOTTOM:
            return ("blob", layer.bottoms[idx], attr)
        if what == PARAM:
            return ("param", li, idx, attr)
        if what == BUFFER:
            return ("buffer", li, idx)
        raise ValueError(ref)

    def _prepare(self) -> None:
        """Groups of aliased references, buffer sizes; Mems are made on first use."""
        net = self.net
        find = self._uf.find
        self._groups: dict = {}
        for key in list(self._uf.parent):
            self._groups.setdefault(find(key), []).append(key)
        self._bufinfo: list[dict] = []
        for st in self.layers:
            info: dict = {}
            for buf in st.buffers:
                if buf.name not in info:
                    info[buf.name] = [buf.nbytes, buf.transient, buf]
                else:
                    info[buf.name][0] = max(info[buf.name][0], buf.nbytes)
                    info[buf.name][1] = info[buf.name][1] or buf.transient
                if buf.transient:
                    self.memory.has_transients = True
            self._bufinfo.append(info)
        #: (bottoms, tops, params) per layer: a touch past them is not made
        self._limits = [{BOTTOM: len(l.bottoms), TOP: len(l.tops), PARAM: len(l.params)}
                        for l in net.layers]
        #: each layer's buffers by the call that touches them
        self._by_when: list[dict[str, list[Buffer]]] = []
        for st in self.layers:
            by: dict[str, list[Buffer]] = {}
            for buf in st.buffers:
                by.setdefault(buf.when, []).append(buf)
            self._by_when.append(by)
        #: (layer, reference) -> its Mem, once resolved (param data overrides aside)
        self._ref_mems: dict = {}
        prefetch_side = "gpu" if self.env.gpu else "host"
        self._external = {t: (prefetch_side if st.rule.external_tops == "prefetch" else "host")
                          for l, st in zip(net.layers, self.layers) if st.rule.external_tops
                          for t in l.tops}
        self._root_mems: dict = {}
        self._learnable: Optional[list[tuple[int, int]]] = None

    def _mem_for_key(self, key) -> Mem:
        """The Mem of a memory reference key (made on first use, shared by its aliases)."""
        root = self._uf.find(key) if key in self._uf.parent else key
        m = self._root_mems.get(root)
        if m is not None:
            return m
        net = self.net
        size, external, transient = 0, None, False
        for k in self._groups.get(root, (root,)):
            if k[0] == "blob":
                size = max(size, count(net.blobs[k[1]].shape) * DTYPE)
                if k[2] == DATA and k[1] in self._external:
                    # the prefetch batch is where Forward points the top: on the GPU in gpu
                    # mode (a CPU reader then gets a host copy), on the host in cpu mode;
                    # MemoryData points at the user's host arrays
                    external = self._external[k[1]]
            elif k[0] == "param":
                size = max(size, count(net.layers[k[1]].params[k[2]].shape) * DTYPE)
            else:
                nbytes, trans, _ = self._bufinfo[k[1]][k[2]]
                size = max(size, nbytes)
                transient = transient or trans
        if root[0] == "blob":
            blob = net.blobs[root[1]]
            kind = Kind.ACTIVATIONS if root[2] == DATA else Kind.DIFFS
            owner = blob.producer
            name = f"{blob.name} {'data' if root[2] == DATA else 'diff'}"
        elif root[0] == "param":
            kind = Kind.PARAMS if root[3] == DATA else Kind.PARAM_DIFFS
            owner = root[1]
            name = (f"{net.layers[root[1]].name} param {root[2]} "
                    f"{'data' if root[3] == DATA else 'diff'}")
        else:
            buf = self._bufinfo[root[1]][root[2]][2]
            kind, owner, name = buf.kind, root[1], f"{net.layers[root[1]].name} {buf.name}"
        m = Mem(size, kind, self.label, owner, name, external, transient, self.gpu)
        self.memory.mems.append(m)
        self._root_mems[root] = m
        return m

    def mem(self, li: int, ref: tuple) -> Mem:
        """The Mem behind a layer-relative reference, e.g. ``(TOP, 0, DIFF)``."""
        if self.param_data_override and ref[0] == PARAM and ref[2] == DATA:
            idx = ref[1]
            if (li, idx) in self.param_data_override:
                return self.param_data_override[(li, idx)]
            o = self.net.layers[li].params[idx].owner
            if o is not None and o in self.param_data_override:
                return self.param_data_override[o]
        key = (li, ref)
        m = self._ref_mems.get(key)
        if m is None:
            m = self._ref_mems[key] = self._mem_for_key(self._key(li, ref))
        return m

    def mem_of_blob(self, name: str, attr: str) -> Mem:
        """The Mem of a blob of the net by name (its data or diff)."""
        return self._mem_for_key(("blob", self.net.blob(name).id, attr))

    def param_mem(self, li: int, k: int, attr: str) -> Mem:
        return self.mem(li, (PARAM, k, attr))

    def _apply(self, li: int, touches: list[Touch]) -> None:
        limits, touch, mem = self._limits[li], self.memory.touch, self.mem
        for t in touches:
            what, index = t.what, t.index
            if what == BUFFER:  # a buffer of the layer's, by name (when the env has it)
                if index not in self._bufinfo[li]:
                    continue
            elif index >= limits.get(what, 1 << 30):
                continue
            touch(mem(li, (what, index, t.attr)), t.side)

    def _buffers(self, li: int, when: str, pd=None, ppd=None) -> None:
        temporaries = []
        for buf in self._by_when[li].get(when, ()):
            if when == "backward" and buf.needs is not None:
                wants_b, wants_p = any(pd or ()), any(ppd or ())
                ok = {"bottom_diff": wants_b, "param_diff": wants_p, "any": wants_b or wants_p}
                if not ok[buf.needs]:
                    continue
            m = self._mem_for_key(("buffer", li, buf.name))
            if m.transient:
                temporaries.append((m, buf.device))
            else:
                self.memory.touch(m, buf.device)
        if temporaries:
            self.memory.touch_transients(temporaries)

    # -- Caffe's calls ----------------------------------------------------------------------

    def setup(self) -> None:
        """``Net::Init``: every layer's SetUp (param fills, eager buffers, prefetch batches,
        loss-weight diffs), then ``ShareWeights`` (shared params drop their own copies)."""
        mem = self.memory
        for li, layer in enumerate(self.net.layers):
            st = self.layers[li]
            mem.context = f"{self.label}: {layer.name} SetUp"
            rule = st.rule
            if rule.fills_params_at_setup:
                for k, p in enumerate(layer.params):
                    if p.owner is None:
                        mem.touch(self.param_mem(li, k, DATA), "host")
                    else:
                        own = mem.new(count(p.shape) * DTYPE, Kind.PARAMS, self.label, li,
                                      f"{layer.name} param {k} (own copy until ShareWeights)",
                                      gpu=self.gpu)
                        st.own_param_copies.append(own)
                        mem.touch(own, "host")
                self._filler_masks(li)
            if rule.external_tops == "prefetch":
                self._setup_prefetch(li)
            self._apply(li, rule.setup_touches(st.view))
            self._buffers(li, "setup")
            for j, w in enumerate(layer.loss_weights):
                if w:
                    mem.touch(self.mem(li, (TOP, j, DIFF)), "host")
            if self.env.gpu and mem.pinned_bookkeeping:
                self._shape_data(li)
            if not self.env.gpu and self.env.bookkeeping_per_layer:
                # the layer's objects on the heap (BOOKKEEPING_PER_LAYER, an estimate); in gpu
                # mode this is plain host RAM, not pinned: counted apart (bookkeeping_bytes)
                mem.touch(mem.new(self.env.bookkeeping_per_layer, Kind.BOOKKEEPING, self.label,
                                  li, f"{layer.name} bookkeeping (estimate)", gpu=self.gpu), "host")
        if self.built_inside and not self.env.gpu and self.env.bookkeeping_per_layer:
            # Net::Init's NetParameter copies, freed when it returns (an estimate); counted for
            # a net a layer builds inside, whose Init runs while the outer net holds memory
            # (a top-level net's Init is part of the process's start-up, which the oracles'
            # baselines measure)
            mem.touch_transients([(mem.new(NET_INIT_COPIES * NETPARAM_BYTES_PER_LAYER *
                                           len(self.net.layers), Kind.BOOKKEEPING, self.label, -1,
                                           "NetParameter copies during Net::Init (estimate)",
                                           transient=True, gpu=self.gpu), "host")])
        mem.context = f"{self.label}: ShareWeights"
        for st in self.layers:
            for own in st.own_param_copies:
                mem.free(own)

    def _shape_data(self, li: int) -> None:
        """``Blob::shape_data_``: every Blob's Reshape keeps its shape in a SyncedMemory of
        4 B per axis, written on the host (blob.cpp:27-30): in gpu mode a cudaMallocHost of
        its own.  The Blobs of a layer's SetUp: the tops it creates (Net::AppendTop), its
        params (own copies of shared ones too), and for a prefetching data layer its
        ``transformed_data_`` and every prefetch batch's data and label
        (base_data_layer.cpp).  Layer-private helper Blobs (multipliers, Blob<int> geometry)
        are not counted: a few bytes each."""
        layer, st = self.net.layers[li], self.layers[li]
        shapes = [self.net.blobs[t].shape for j, t in enumerate(layer.tops)
                  if self.net.blobs[t].producer == li and not layer.in_place[j]]
        shapes += [p.shape for p in layer.params]
        if st.rule.external_tops == "prefetch" and layer.tops:
            n = self.env.prefetch if self.env.prefetch is not None else \
                int(layer.ctx.param.data_param.prefetch)
            tops = [self.net.blobs[t].shape for t in layer.tops[:2]]
            shapes += [tops[0]] + tops * n
        self.shape_data(li, shapes, f"{layer.name} Blob shape_data_")

    def shape_data(self, li: int, shapes, name: str) -> None:
        """One pinned ``shape_data_`` per Blob shape in ``shapes`` (gpu mode), charged to
        layer ``li`` as bookkeeping."""
        memory = self.memory
        if not memory.pinned_bookkeeping:
            return
        for shape in shapes:
            if shape:
                m = Mem(4 * len(shape), Kind.BOOKKEEPING, self.label, li, name, gpu=self.gpu)
                memory.mems.append(m)
                memory.touch(m, "host")

    def _filler_masks(self, li: int) -> None:
        """GaussianFiller with ``sparse >= 0`` keeps a host mask of count x sizeof(int)
        (filler.hpp:76-90) until the filler goes out of scope at the end of LayerSetUp's
        parameter block, i.e. while the next params are filled (inner_product_layer.cpp:42-53,
        base_conv_layer.cpp, embed_layer.cpp): a set-up temporary, pinned in gpu mode."""
        layer = self.net.layers[li]
        masks = []
        for k, (p, filler) in enumerate(zip(layer.params, self.layers[li].rule.fillers(layer.ctx.param))):
            if filler.type == "gaussian" and filler.sparse >= 0:
                masks.append((self.memory.new(count(p.shape) * 4, Kind.INTERNAL, self.label, li,
                                              f"{layer.name} param {k} sparse filler mask",
                                              transient=True, gpu=self.gpu), "host"))
        if masks:
            self.memory.touch_transients(masks)

    def _setup_prefetch(self, li: int) -> None:
        layer, st, env = self.net.layers[li], self.layers[li], self.env
        n = env.prefetch if env.prefetch is not None else int(layer.ctx.param.data_param.prefetch)
        data = self.net.blobs[layer.tops[0]].count * DTYPE if layer.tops else 0
        label = self.net.blobs[layer.tops[1]].count * DTYPE if len(layer.tops) > 1 else 0
        for b in range(n):
            for what, size in (("data", data), ("label", label)):
                if not size:
                    continue
                m = self.memory.new(size, Kind.PREFETCH, self.label, li,
                                    f"{layer.name} prefetch batch {b} {what}", gpu=self.gpu)
                st.prefetch.append(m)
                self.memory.touch(m, "host")
                if env.gpu:
                    self.memory.touch(m, "gpu")

    def forward_layer(self, li: int) -> None:
        layer, st = self.net.layers[li], self.layers[li]
        self.memory.context = f"{self.label}: {layer.name} Forward"
        self._apply(li, st.rule.forward_touches(st.view))
        self._buffers(li, "forward")
        for j, w in enumerate(layer.loss_weights):  # Layer::Forward's loss dot product
            if w:
                side = "gpu" if self.env.gpu else "host"
                self.memory.touch(self.mem(li, (TOP, j, DATA)), side)
                self.memory.touch(self.mem(li, (TOP, j, DIFF)), side)

    def forward(self) -> None:
        for li in range(len(self.net.layers)):
            self.forward_layer(li)

    def flags(self, li: int) -> tuple[list[bool], list[bool]]:
        """(propagate_down per bottom, param_propagate_down per param) as Net::Init sets them."""
        layer = self.net.layers[li]
        pd = list(layer.bottom_need_backward) or [False] * len(layer.bottoms)
        if self.net.force_backward:
            ppd = [True] * len(layer.params)
        else:
            ppd = [p.lr_mult != 0 for p in layer.params]
        return pd, ppd

    def backward_layer(self, li: int, every_layer: bool = False) -> None:
        layer, st = self.net.layers[li], self.layers[li]
        self.memory.context = f"{self.label}: {layer.name} Backward"
        pd, ppd = self.flags(li)
        why = st.rule.backward_failure(st.view, pd)
        if why:
            raise NetError(
                f"layer '{layer.name}' ({layer.type}) {why}; "
                + ("caffe time calls every layer's Backward (tools/caffe.cpp:384-389), so "
                   "Caffe dies there: model --scenario train or test, or leave the layer out "
                   "of the net you time" if every_layer and not layer.need_backward else
                   "Net::Backward calls it because the layer needs backward (force_backward: "
                   "net.cpp:223-238, or a loss above it), so Caffe dies there"))
        self._apply(li, st.rule.backward_touches(st.view, pd, ppd))
        self._buffers(li, "backward", pd, ppd)

    def backward(self, every_layer: bool = False) -> None:
        """``Net::Backward`` (layers that need backward), or with ``every_layer`` the loop of
        ``caffe time``, which calls every layer's Backward with its propagate_down flags."""
        for li in reversed(range(len(self.net.layers))):
            if every_layer or self.net.layers[li].need_backward:
                self.backward_layer(li, every_layer)

    def read_outputs(self) -> None:
        """The solver reads the net's output blobs on the host (``result[j]->cpu_data()``)."""
        names = set(self.net.outputs)
        for b in self.net.blobs:
            if b.name in names and self.net.blob(b.name).id == b.id:
                self.memory.touch(self._mem_for_key(("blob", b.id, DATA)), "host")

    def learnable(self) -> list[tuple[int, int]]:
        """(layer, param) of every owned param: Caffe's ``learnable_params_``."""
        if self._learnable is None:
            self._learnable = [(li, k) for li, l in enumerate(self.net.layers)
                               for k, p in enumerate(l.params) if p.owner is None]
        return self._learnable
