"""The allocation model: replay what Caffe touches in a scenario and report the peak.

:func:`model_memory` builds a :class:`~caffemem.memory.sim.NetSim` per net and replays, in
Caffe's order:

- ``train`` (``Solver::Solve``): train net and test nets set up (``Solver::Init``); then the
  first iteration: ``ClearParamDiffs``, the test pass at iteration 0 (``TestAll``: test
  params ``ShareData`` with the train net, freeing their own copies, then a forward pass and
  the outputs read on the host), ``ForwardBackward``, ``ApplyUpdate`` (regularization,
  the solver type's update, ``Net::Update``); the snapshot when the solver takes one
  (:meth:`_Solver.snapshot`); then iteration 1 and the final test pass, which allocate
  nothing new but put per-call temporaries (CPU LRN, ``Solver::Test``'s score vectors) on
  top of everything.
  With ``gpus > 1`` each extra GPU runs the same solver (its test nets set up but never run)
  and every GPU holds the params' data and diff in contiguous buffers (``GPUParams``).
- ``time`` (``caffe time``): the net set up, ``Forward``, ``Backward``, then the timed loop:
  every layer's Forward, then **every** layer's Backward with its propagate_down flags.
- ``test``: the net set up and one forward pass.

Only the first touch of a memory allocates; the peak is the maximum of live bytes over the
replay (device per GPU, and host).  :func:`replay` gives the replay itself (every allocation
in order, e.g. to find where a run under a memory limit dies).  Both are pure functions of
their inputs: nets are read, never changed (a mean file or LMDB may be read for its size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..blobshape import count
from ..buffers import CUDNN, NETPARAM_BYTES_PER_LAYER, Buffer, Kind, MemoryEnv
from ..layers.base import DATA, DIFF
from .card import AddOn, addons, rounded
from .report import GpuMemory, LayerMemory, MemoryReport, NetMemory
from .sim import DTYPE, Mem, Memory, NetSim

#: solver state blobs each solver type touches per learnable param, by mode
#: (``sgd_solver.cpp`` and the five derived solvers' ComputeUpdateValue, CPU and GPU paths)
HISTORY_SETS = {
    "gpu": {"SGD": ("history",), "Nesterov": ("history",), "AdaGrad": ("history",),
            "RMSProp": ("history",), "AdaDelta": ("history", "history2"),
            "Adam": ("history", "history2")},
    "cpu": {"SGD": ("history",), "Nesterov": ("history", "update"),
            "AdaGrad": ("history", "update"), "RMSProp": ("history", "update"),
            "AdaDelta": ("history", "history2", "update", "temp"),
            "Adam": ("history", "history2", "temp")},
}


def history_sets(env: MemoryEnv) -> tuple[str, ...]:
    """Names of the solver blobs touched per learnable param (``temp`` for L1 not included)."""
    return HISTORY_SETS[env.mode][env.solver_type]


class _Solver:
    """One solver's nets and state on one GPU (or the CPU)."""

    def __init__(self, nets, env: MemoryEnv, memory: Memory, gpu: int, root: bool) -> None:
        self.env, self.memory, self.gpu, self.root = env, memory, gpu, root
        self.train = _sim(nets[0], env, memory, gpu, _label(nets[0], "train net"))
        self.tests = [_sim(n, env, memory, gpu, _label(n, f"test net #{i}"))
                      for i, n in enumerate(nets[1:])]
        self.history: dict[tuple[int, int], list[Mem]] = {}
        self.scores: dict[str, Mem] = {}  # Solver::Test's vectors, per test net

    @property
    def side(self) -> str:
        return "gpu" if self.env.gpu else "host"

    def init(self) -> None:
        m = self.memory
        m.mark(f"{self.train.label}: set up")
        self.train.setup()
        for t in self.tests:
            m.mark(f"{t.label}: set up")
            t.setup()
        tr = self.train
        for li, k in tr.learnable():
            p = tr.net.layers[li].params[k]
            size = count(p.shape) * DTYPE
            if self.env.gpu:  # SGDSolver::PreSolve's history_, update_, temp_ Blobs (+ one
                # more history_ for AdaDelta and Adam): each Blob's shape_data_, pinned
                extra = 1 if self.env.solver_type in ("AdaDelta", "Adam") else 0
                tr.shape_data(li, [p.shape] * (3 + extra), f"{tr.net.layers[li].name} solver "
                                                           f"Blob shape_data_")
            mems = [m.new(size, Kind.HISTORY, tr.label, li,
                          f"{tr.net.layers[li].name} param {k} solver {name}", gpu=self.gpu)
                    for name in history_sets(self.env)]
            if self.env.regularization == "L1" and self.env.weight_decay * p.decay_mult != 0 \
                    and "temp" not in history_sets(self.env):
                mems.append(m.new(size, Kind.HISTORY, tr.label, li,
                                  f"{tr.net.layers[li].name} param {k} solver temp (L1)",
                                  gpu=self.gpu))
            self.history[(li, k)] = mems
        if self.env.gpu and self.env.gpus > 1:
            # GPUParams: one contiguous data and one diff buffer, params re-pointed into them
            m.mark(f"{tr.label}: multi-GPU parameter buffers")
            for li, k in tr.learnable():
                m.touch(tr.param_mem(li, k, DATA), "gpu")
                m.touch(tr.param_mem(li, k, DIFF), "gpu")

    def test_all(self) -> None:
        if not self.root:
            return
        for i, t in enumerate(self.tests):
            if not self.env.runs_test_net(i):
                continue
            self.memory.mark(f"{t.label}: test pass")
            _share_trained_layers(t, self.train, self.memory)
            t.forward()
            t.read_outputs()
            if not self.env.gpu:  # plain malloc: in gpu mode host RAM, never pinned
                _test_scores(t, self.scores)

    def snapshot(self) -> None:
        """``Solver::Snapshot`` (solver.cpp:420-434), after an update (every ``snapshot``
        iterations, solver.cpp:272-277, and when training ends, 306-309): the train net's
        weights, then the solver state.

        - ``Net::ToProto`` (net.cpp:845-854): every layer's ``layer_param_`` and blobs
          (shared and frozen ones too) copied into a NetParameter with their ``cpu_data``
          (and ``cpu_diff`` with ``snapshot_diff``), one ``add_data`` per element
          (blob.cpp:537-554); written and freed (``SnapshotToBinaryProto``,
          solver.cpp:462-469);
        - ``SnapshotSolverStateToBinaryProto`` (sgd_solver.cpp:271-287): every ``history_``
          blob copied the same way into a SolverState.

        Reading on the host makes the host copies of the history (and diffs) in gpu mode
        (pinned, kept); the protobuf copies are plain malloc, counted in cpu mode as two
        temporaries, each layer charged what it holds at their peak (:func:`proto_copies`).
        HDF5 snapshots read the same blobs; the HDF5 library's own buffers are not modeled."""
        m, tr, env = self.memory, self.train, self.env
        m.mark(f"{tr.label}: snapshot")
        weights: list[tuple[int, int, int]] = []  # (layer, bytes kept, bytes while growing)
        for li, layer in enumerate(tr.net.layers):
            weights.append((li, NETPARAM_BYTES_PER_LAYER, 0))  # its layer_param_ (estimate)
            for k, p in enumerate(layer.params):
                for attr in (DATA, DIFF) if env.snapshot_diff else (DATA,):
                    m.touch(tr.param_mem(li, k, attr), "host")
                    weights.append((li, *repeated_floats(count(p.shape))))
        names = history_sets(env)
        history = []
        for name in names:  # history_: every param's history, then every history2
            if name.startswith("history"):
                for (li, _), mems in self.history.items():
                    h = mems[names.index(name)]
                    m.touch(h, "host")
                    history.append((li, *repeated_floats(h.nbytes // DTYPE)))
        if env.gpu or env.snapshot != "binaryproto":
            return
        for what, items in (("NetParameter", weights), ("SolverState", history)):
            m.has_transients = True
            m.touch_transients([(m.new(nbytes, Kind.SOLVER_COPIES, tr.label, li,
                                       f"{tr.net.layers[li].name} snapshot {what} copy",
                                       transient=True, gpu=self.gpu), "host")
                                for li, nbytes in proto_copies(items)[1].items()])

    def iteration(self) -> None:
        m, tr, side = self.memory, self.train, self.side
        m.mark(f"{tr.label}: ClearParamDiffs")
        for li, k in tr.learnable():
            m.touch(tr.param_mem(li, k, DIFF), side)
        if self.env.test_initialization:
            self.test_all()
        m.mark(f"{tr.label}: forward")
        tr.forward()
        m.mark(f"{tr.label}: backward")
        tr.backward()
        if self.env.display and self.root:  # Solver::Step prints the train net's outputs
            m.mark(f"{tr.label}: display")  # with cpu_data (solver.cpp:236-262)
            tr.read_outputs()
        m.mark(f"{tr.label}: update")
        for (li, k), mems in self.history.items():
            for h in mems:
                m.touch(h, side)
        for li, k in tr.learnable():
            data, diff = tr.param_mem(li, k, DATA), tr.param_mem(li, k, DIFF)
            if self.env.gpu and data.dev_at is None:  # Blob::Update on the CPU: head at CPU
                m.touch(diff, "host")
                m.touch(data, "host")
            else:
                m.touch(data, side)
                m.touch(diff, side)
        if not self.env.test_initialization:
            self.test_all()


def _label(net, default: str) -> str:
    return net.label or default


def _sim(net, env: MemoryEnv, memory: Memory, gpu: int, label: str,
         built_inside: bool = False) -> NetSim:
    return NetSim(net, env, memory, gpu, label, inner_buffers=_inner_net_buffers,
                  built_inside=built_inside)


def _inner_net_buffers(layer, env: MemoryEnv) -> list[Buffer]:
    """What the nets a layer builds inside itself (a recurrent layer's unrolled net) allocate
    of their own, buffer by buffer, at the outer call that makes them: the inner net is
    replayed as Caffe runs it - its ``Net::Init`` inside the outer LayerSetUp (the per-step
    weight copies live until its ``ShareWeights``, net.cpp:255, 948-953: set-up
    temporaries), ``ForwardTo`` the last layer before the pseudo-losses inside the outer
    Forward, ``BackwardFrom`` there inside the outer Backward - and every memory it allocates
    becomes a buffer of the outer layer with the call, side and kind of its first touch,
    except what is the outer layer's own (its params, and the blobs the rule shares:
    :meth:`~caffemem.layers.base.LayerRule.unrolled_io`)."""
    io = layer.rule.unrolled_io(layer.ctx)
    out: list[Buffer] = []
    for n, inner in enumerate(layer.inner_nets):
        memory = Memory()
        sim = _sim(inner, env.with_(gpus=1), memory, 0, "unrolled", built_inside=True)
        memory.mark("setup")
        sim.setup()
        for name in io.zeroed_diffs:
            memory.touch(sim.mem_of_blob(name, DIFF), "host")
        last = len(inner.layers) - io.skipped
        memory.mark("forward")
        for li in range(last):
            sim.forward_layer(li)
        if env.scenario != "test":
            memory.mark("backward")
            for li in reversed(range(last)):
                if inner.layers[li].need_backward:
                    sim.backward_layer(li)
        outer = {id(sim.mem_of_blob(b, a)) for b, attrs in io.shares for a in attrs}
        outer |= {id(sim.param_mem(li, k, a)) for li, k in sim.learnable() for a in (DATA, DIFF)}
        prefix = f"unrolled{n or ''} "
        for i, m in enumerate(memory.mems):
            if id(m) in outer:
                continue
            name = f"{prefix}{m.name} #{i}"
            for side in ("host", "gpu"):
                for at, freed in m.intervals(side):
                    when = memory.moment_of(at)
                    out.append(Buffer(name, m.kind, m.nbytes, side, when,
                                      transient=freed is not None))
    return out


#: protobuf 3's RepeatedField storage: an Arena pointer before the elements (none in 2.x)
REPEATED_HEADER = 8


def repeated_floats(n: int) -> tuple[int, int]:
    """(bytes kept, bytes live at the last growth) of a protobuf ``RepeatedField<float>``
    filled with ``n`` floats by one ``add_data`` each (blob.cpp:545-547).  It grows to
    max(4, twice its capacity) and frees the old storage after the copy (protobuf's
    repeated_field.h, ``RepeatedField::Reserve``): it keeps C floats (C the final capacity)
    and holds C/2 more while it last grows."""
    if n <= 0:
        return 0, 0
    cap = 4
    while cap < n:
        cap *= 2
    kept = REPEATED_HEADER + 4 * cap
    return kept, kept + (REPEATED_HEADER + 2 * cap if cap > 4 else 0)


def proto_copies(items: list[tuple[int, int, int]]) -> tuple[int, dict[int, int]]:
    """(peak bytes, bytes per layer at that peak) of a message filled in the order of
    ``items`` ((layer, bytes kept, bytes while growing, 0 for none)).  The message objects
    themselves (about a hundred bytes per blob) are not counted."""
    live: dict[int, int] = {}
    total, peak, at_peak = 0, 0, {}
    for li, kept, growing in items:
        if total + growing > peak:
            peak = total + growing
            at_peak = dict(live)
            at_peak[li] = at_peak.get(li, 0) + growing
        total += kept
        live[li] = live.get(li, 0) + kept
        if total > peak:
            peak, at_peak = total, dict(live)
    return peak, at_peak


def proto_copy_bytes(counts: list[int]) -> int:
    """Peak bytes of a message holding blobs of ``counts`` floats, filled in order."""
    return proto_copies([(0, *repeated_floats(n)) for n in counts])[0]


def test_score_bytes(n: int) -> int:
    """Peak bytes of ``Solver::Test``'s two score vectors for ``n`` output elements.

    solver.cpp:351-352 declares ``vector<Dtype> test_score`` and ``vector<int>
    test_score_output_id``; 377-384 push one element per output element onto each, in turn,
    at the first test iteration.  libstdc++ grows a full vector to twice its size (1, 2, 4,
    ...) and frees the old storage only after copying it, so the largest moment is the last
    growth of ``test_score_output_id`` to C (the smallest power of two >= n): ``test_score``
    (C floats) + its old (C/2 ints) and new (C ints) storage, 10 x C bytes.  Freed when Test
    returns."""
    if n <= 1:
        return 8 * n
    c = 1 << (n - 1).bit_length()
    return DTYPE * c + 4 * (c // 2 + c)


def _test_scores(test: NetSim, made: dict[str, Mem]) -> None:
    """``Solver::Test`` copies every output element of the test net into two vectors (see
    :func:`test_score_bytes`): a temporary of each test pass on the host, large when the
    test net leaves a big top unconsumed (every unconsumed top is an output,
    net.cpp:242-246), charged to the layer of its largest output.  ``made``: the Mem of each
    test net's vectors, once made."""
    m = test.memory
    mem = made.get(test.label)
    if mem is None:
        outputs = [test.net.blob(name) for name in test.net.outputs]
        n = sum(b.count for b in outputs)
        owner = max(outputs, key=lambda b: b.count).producer if outputs else -1
        mem = made[test.label] = m.new(test_score_bytes(n), Kind.SOLVER_COPIES, test.label,
                                       owner, f"Solver::Test score vectors ({n:,} output "
                                       f"elements)", transient=True, gpu=test.gpu)
    if mem.nbytes:
        m.has_transients = True  # later test passes run with everything else allocated
        m.context = f"{test.label}: Solver::Test"
        m.touch_transients([(mem, "host")])


def _share_trained_layers(test: NetSim, train: NetSim, memory: Memory) -> None:
    """``Net::ShareTrainedLayersWith``: every test layer named like a train layer takes the
    train layer's param data; the test net's own copies are freed."""
    by_name: dict[str, int] = {}
    for li, l in enumerate(train.net.layers):
        by_name.setdefault(l.name, li)
    for li, layer in enumerate(test.net.layers):
        src = by_name.get(layer.name)
        if src is None or not layer.params:
            continue
        if len(train.net.layers[src].params) != len(layer.params):
            continue
        for k in range(len(layer.params)):
            if (li, k) in test.param_data_override:
                continue  # already shared by an earlier test pass
            own = test.param_mem(li, k, DATA)
            test.param_data_override[(li, k)] = train.param_mem(src, k, DATA)
            if layer.params[k].owner is None:
                memory.free(own)


def _run_time(sim: NetSim) -> None:
    m = sim.memory
    _run_test(sim)
    m.mark(f"{sim.label}: backward")
    sim.backward()
    if m.has_transients:  # the timed Forward only re-runs calls; their temporaries matter
        m.mark(f"{sim.label}: timed forward")
        sim.forward()
    m.mark(f"{sim.label}: timed backward (every layer)")
    sim.backward(every_layer=True)


def _run_test(sim: NetSim) -> None:
    m = sim.memory
    m.mark(f"{sim.label}: set up")
    sim.setup()
    m.mark(f"{sim.label}: forward")
    sim.forward()


@dataclass
class Replay:
    """The replayed run: every SyncedMemory and when it was allocated (see :mod:`.sim`)."""

    env: MemoryEnv
    memory: Memory
    sims: list[NetSim]  # the root's nets (train net first) or the one net
    workers: list = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    def first_allocation_over(self, limit: int, overhead: int = 0, min_bytes: int = 1 << 20,
                              side: Optional[str] = None) -> Optional["Allocation"]:
        """The first allocation of at least ``min_bytes`` that takes live bytes (plus a
        constant ``overhead``) over ``limit``: where a run under that memory limit dies.
        ``side``: 'host' or 'gpu' (default: the env's device, GPU 0)."""
        side = side or ("gpu" if self.env.gpu else "host")
        live = overhead
        for t, delta, mem in self.memory.events(side, gpu=0 if side == "gpu" else None):
            if delta > 0 and delta >= min_bytes and live + delta > limit:
                return Allocation(mem.host_by if side == "host" else mem.dev_by, mem.name,
                                  mem.kind, mem.net, delta, live, self.memory.moment_of(t))
            live += delta
        return None


@dataclass
class Allocation:
    """One allocation of the replay (see :meth:`Replay.first_allocation_over`)."""

    call: str  # e.g. "test net #0: conv1 Forward"
    what: str  # the memory, e.g. "conv1 data"
    kind: str
    net: str
    nbytes: int
    live_before: int  # live bytes (overhead included) just before it
    moment: str


def replay(nets: list, env: MemoryEnv, pinned_bookkeeping: bool = True) -> Replay:
    """Replay what Caffe does with ``nets`` in ``env`` (see the module docstring);
    ``pinned_bookkeeping`` False: the device alone is asked about (see :class:`.sim.Memory`)."""
    if not nets:
        raise ValueError("model_memory needs at least one net")
    memory = Memory(pinned_bookkeeping)
    rp = Replay(env, memory, [])
    if env.scenario == "train":
        root = _Solver(nets, env, memory, 0, True)
        root.init()
        # Iteration 0 allocates; iteration 1 and the final test pass re-run the calls with
        # everything allocated, which is when per-call temporaries reach the peak.
        root.iteration()
        if env.snapshot:
            root.snapshot()
        if memory.has_transients:
            root.iteration()
            root.test_all()
        rp.sims = [root.train] + root.tests
        if env.gpu and env.gpus > 1:
            w = _Solver(nets, env, memory, 1, False)
            w.init()
            w.iteration()
            if memory.has_transients:
                w.iteration()
            rp.workers.append(w)
            rp.assumptions.append("multi-GPU: NCCL communicator buffers are not modeled")
        for i, t in enumerate(root.tests):
            if not env.runs_test_net(i):
                rp.warnings.append(f"{t.label} is built but never run (test_interval 0 or "
                                   f"test_iter 0): only its eager allocations are counted")
    else:
        if len(nets) > 1:
            rp.warnings.append(f"scenario '{env.scenario}' models one net; modeling "
                               f"'{_label(nets[0], 'net')}' only")
        sim = _sim(nets[0], env, memory, 0, _label(nets[0], "net"))
        (_run_time if env.scenario == "time" else _run_test)(sim)
        rp.sims = [sim]
    for sim in rp.sims:
        rp.warnings.extend(f"{sim.label}: {w}" for w in sim.net.warnings if "INT_MAX" in w)
    return rp


def model_memory(nets: list, env: MemoryEnv, replayed: Optional[Replay] = None) -> MemoryReport:
    """Model what Caffe allocates for ``nets`` in ``env`` (see the module docstring).

    ``nets`` are :class:`caffemem.net.Net` objects as :func:`caffemem.analysis.build_all`
    returns them: for ``train`` the train net first, then its test nets; for ``time`` and
    ``test`` the first net is modeled (pass the one net Caffe would run).  ``replayed``:
    ``replay(nets, env)`` when the caller already has it (the HTML report's timeline).
    """
    rp = replayed if replayed is not None else replay(nets, env)
    memory, sims, warnings, assumptions = rp.memory, rp.sims, rp.warnings, list(rp.assumptions)
    if env.gpu:
        dev_peak, dev_t = memory.peak("gpu", gpu=0)
        host_peak, host_t = memory.peak("host")
        peak_t = dev_t
    else:
        host_peak, host_t = memory.peak("host")
        dev_peak, dev_t, peak_t = 0, 0, host_t
    dev_live = memory.live_at("gpu", dev_t, gpu=0) if env.gpu else []
    host_live = memory.live_at("host", host_t)

    net_reports = []
    for i, sim in enumerate(sims):
        runs = True
        if env.scenario == "train" and i > 0:
            runs = env.runs_test_net(i - 1)
        net_reports.append(_net_report(sim, env, dev_live, host_live, runs))

    gpus = []
    card: list[AddOn] = []
    heap = 0
    if env.gpu:
        n_gpus = env.gpus if env.scenario == "train" else 1
        handles = sum(l.handles for r in net_reports for l in r.layers)
        card = addons(env, dev_peak, memory.peak("gpu", gpu=0, size=rounded)[0], handles)
        gpus.append(GpuMemory(0, "root", dev_peak, env.context_bytes, _kinds(dev_live), card))
        # every net's layer objects: plain host RAM beside the pinned bytes (an estimate)
        heap = env.bookkeeping_per_layer * sum(_layers(sim.net) for sim in sims)
        if rp.workers:
            # every worker holds the same model: the one simulated worker stands for each
            wp, wt = memory.peak("gpu", gpu=1)
            worker_kinds = _kinds(memory.live_at("gpu", wt, gpu=1))
            worker_card = addons(env, wp, memory.peak("gpu", gpu=1, size=rounded)[0], handles)
            for g in range(1, n_gpus):
                gpus.append(GpuMemory(g, "worker", wp, env.context_bytes, dict(worker_kinds),
                                      worker_card))
            # host memory of the simulated worker stands for each of the workers
            worker_host = sum(m.nbytes for m in host_live if m.gpu == 1)
            host_peak += worker_host * (n_gpus - 2)
            heap += env.bookkeeping_per_layer * (n_gpus - 1) * sum(_layers(n) for n in nets)
        if any(l.handles for r in net_reports for l in r.layers):
            ws = env.cudnn_workspace_bytes
            assumptions.append(
                "cuDNN convolution workspaces are modeled at their bound, 3 x group x 8 MiB per "
                "layer (cudnn_conv_layer.cpp); cuDNN picks algorithms within that limit, often "
                "needing less (--cudnn-workspace-mib sets the per-op figure)"
                if ws == 8 * 2**20 else
                f"cuDNN convolution workspaces: 3 x group x {ws / 2**20:g} MiB per layer "
                f"(--cudnn-workspace-mib; Caffe's limit is 8 MiB)")
        assumptions.append(f"CUDA context per GPU: {env.context_bytes >> 20} MiB "
                           + (f"(the default for CUDA {env.cuda}, an estimate: not in Caffe's "
                              f"source; calibrate for your setup)" if env.context_is_default
                              else "(given)"))
    moment = memory.moment_of(peak_t)
    return MemoryReport(env, net_reports, dev_peak if env.gpu else host_peak, host_peak,
                        env.context_bytes if env.gpu else 0, moment,
                        memory.moment_of(host_t), gpus, warnings, assumptions, card, heap)


def needed_bytes(nets: list, env: MemoryEnv) -> int:
    """What must fit in one GPU's memory (the busiest GPU: its peak, the CUDA context and a
    real card's add-ons) or, in cpu mode, the heap's peak: ``fits(model_memory(nets, env),
    capacity).needed``, without the per-layer report (what ``fit`` probes ask)."""
    return replay_needed(replay(nets, env, pinned_bookkeeping=not env.gpu), env)


def replay_needed(rp: Replay, env: MemoryEnv) -> int:
    """:func:`needed_bytes` of a replay already made."""
    memory = rp.memory
    if not env.gpu:
        return memory.peak("host")[0]
    gpus = [0, 1] if env.scenario == "train" and env.gpus > 1 else [0]
    out = 0
    for g in gpus:
        peak = memory.peak("gpu", gpu=g)[0]
        card = addons(env, peak, memory.peak("gpu", gpu=g, size=rounded)[0], 0)
        out = max(out, peak + sum(a.bytes for a in card))
    return out


class Models:
    """The model of one list of built nets in whichever envs are asked for, each env's
    replay and report made once.  The verdict's engine check, the HTML report's variant
    under the other engine and its card table ask for the same models; both functions are
    pure (nets are read, never changed), so sharing their results changes no figure."""

    def __init__(self, nets: list, keep: bool = False) -> None:
        self.nets = nets
        #: :meth:`needed` makes the whole model and keeps it (its report will be asked for)
        self.keep = keep
        self._runs: dict = {}

    def _run(self, env: MemoryEnv) -> list:
        # the context's "default for CUDA N" and "given" are the same bytes, said apart
        key = (env, env.context_is_default)
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = [replay(self.nets, env), None]
        return run

    def replay(self, env: MemoryEnv) -> Replay:
        """:func:`replay` of the nets in ``env``."""
        return self._run(env)[0]

    def needed(self, env: MemoryEnv) -> int:
        """:func:`needed_bytes` of the nets in ``env`` (from the replay when it is made)."""
        run = self._runs.get((env, env.context_is_default))
        if run is None and not self.keep:
            return needed_bytes(self.nets, env)
        run = run or self._run(env)
        return replay_needed(run[0], env)

    def report(self, env: MemoryEnv) -> MemoryReport:
        """:func:`model_memory` of the nets in ``env``."""
        run = self._run(env)
        if run[1] is None:
            run[1] = model_memory(self.nets, env, replayed=run[0])
        return run[1]


def _layers(net) -> int:
    """Layers of a net and of the nets its layers build inside (unrolled recurrent nets)."""
    return sum(1 + sum(_layers(i) for i in (l.inner_nets or ())) for l in net.layers)


def _kinds(mems: list[Mem]) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in mems:
        out[m.kind] = out.get(m.kind, 0) + m.nbytes
    return out


def _net_report(sim: NetSim, env: MemoryEnv, dev_live: list[Mem], host_live: list[Mem],
                runs: bool) -> NetMemory:
    net = sim.net
    layers = []
    for li, layer in enumerate(net.layers):
        rule = sim.layers[li].rule
        eng = sim.layers[li].view.engine
        handles = rule.cudnn_handles(layer.ctx.param) if eng == CUDNN else 0
        lm = LayerMemory(sim.label, li, layer.name, layer.type, eng, handles=handles,
                         notes=list(layer.notes) + list(sim.layers[li].notes))
        layers.append(lm)
    for side, live in (("device", dev_live), ("host", host_live)):
        for m in live:
            if m.net != sim.label or m.gpu != sim.gpu:
                continue
            idx = m.layer if 0 <= m.layer < len(layers) else None
            if idx is None:
                continue
            target = layers[idx].device if side == "device" else layers[idx].host
            target[m.kind] = target.get(m.kind, 0) + m.nbytes
    return NetMemory(sim.label, net.name, net.phase, net.memory_required_for_data, runs, layers)
