"""The vocabulary the layer rules and the allocation model share: what is being modeled
(:class:`MemoryEnv`, the engines :data:`CAFFE`/:data:`CUDNN`) and what a layer allocates for
itself (:class:`Buffer`), by kind (:class:`Kind`).

A leaf module: it imports nothing of caffemem, so the rules (:mod:`caffemem.layers`) speak it
without importing the model (:mod:`caffemem.memory`), which reads what they say.

Caffe allocates through ``SyncedMemory``, lazily: a buffer costs host memory the first time
something touches it on the CPU and device memory the first time something touches it on the
GPU, and is never shrunk.  A :class:`Buffer` is therefore one *touch* of one layer-private
``SyncedMemory``: its name identifies the memory (two Buffers of a layer with the same name
are the same memory touched at different moments or on different sides, and its bytes count
once per side), ``when`` says at which call the touch happens and ``device`` on which side.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

MiB = 1 << 20

#: The CUDA major version modeled when none is given: the CUDA 8-10 / cuDNN 5-7 era most Caffe
#: builds (BVLC, the forks) ran on.
DEFAULT_CUDA = 10

#: CUDA context on one GPU (the runtime, the loaded kernels of libcaffe, cuBLAS, cuRAND and
#: cuDNN), in MiB, by CUDA major version: (default, lowest and highest seen).  An
#: **estimate**: not in Caffe's source, not in the stub-CUDA oracle; it depends on the driver,
#: the card (grows with the SM count) and the libraries.  Up to CUDA 11.6 every kernel is
#: loaded when the context is made (300-500 MiB on K40/P100-era cards with CUDA 8-10,
#: pytorch#20532, pytorch#28113; 300-400 MiB with CUDA 11); lazy module loading is the
#: default on Linux from CUDA 12.2 (NVIDIA's CUDA_MODULE_LOADING), leaving 100-600 MiB
#: (107 MiB RTX 4060 Ti, 256 MiB RTX 3090, 555 MiB RTX PRO 6000: llama.cpp #23604,
#: InvokeAI #9413).  Measure yours: nvidia-smi's figure for an idle process, then
#: ``context_bytes`` (``--context-mib``).
CONTEXT_MIB_BY_CUDA = {8: (300, 200, 500), 9: (300, 200, 500), 10: (300, 200, 700),
                       11: (350, 300, 450), 12: (250, 100, 600)}
DEFAULT_CONTEXT_MIB = CONTEXT_MIB_BY_CUDA[DEFAULT_CUDA][0]


def context_mib_for(cuda: int) -> tuple[int, int, int]:
    """(default, low, high) CUDA context MiB for a CUDA major version (the nearest known)."""
    known = sorted(CONTEXT_MIB_BY_CUDA)
    v = min(max(cuda, known[0]), known[-1])
    return CONTEXT_MIB_BY_CUDA[v]

#: ``CuDNNConvolutionLayer::Reshape``'s per-algorithm workspace limit (8 MiB) and the number
#: of cuDNN handles/streams per group (``CUDNN_STREAMS_PER_GROUP``).
CUDNN_WORKSPACE_LIMIT = 8 * MiB
CUDNN_STREAMS_PER_GROUP = 3

#: Host heap bytes per layer that no blob accounts for: the Layer object and its
#: ``layer_param_`` copy (with its sub-messages), its Blob objects (shape vectors,
#: SyncedMemory objects, ``shape_data_``), the Net's per-layer vectors and name strings, the
#: solver's per-param Blob objects.  An **estimate** (plain malloc: in gpu mode it is host
#: RAM, not pinned and not on the device): the least-squares slope of (measured heap - model)
#: over the layers of every net a command builds, on the 136 oracle-random runs without a
#: recurrent layer (2,906 B per layer, rms 15 KB); checked on ../shared/oracle's ten whole
#: nets, held out of the fit (googlenet_train_val: 1.24 MB unexplained before, 0.26 MB after).
BOOKKEEPING_PER_LAYER = 2900

#: Net::Init holds its NetParameter three times while it builds the layers: the caller's
#: (read from the file by Net's constructor or the solver, or written by RecurrentLayer::
#: LayerSetUp), ``filtered_param`` and ``param`` with the splits inserted (net.cpp:45-58),
#: freed when Init returns; counted for the nets a layer builds inside itself, whose Init runs
#: while the outer net holds its memory.  Bytes per layer of one copy: an **estimate** from
#: LayerParameter's generated C++ layout (60 fields: 49 sub-message pointers, 8 repeated
#: fields, two strings: about 640 B of object) plus its name/type/bottom/top strings and its
#: one set sub-message.  It matters when a net's peak is its set-up, as an unrolled
#: recurrent net's is while every time step holds its own weights (oracle layers/rnn and
#: layers/lstm: 711 and 623 B per layer-copy unexplained without it).
NET_INIT_COPIES = 3
NETPARAM_BYTES_PER_LAYER = 700

SCENARIOS = ("train", "time", "test")
MODES = ("gpu", "cpu")
ENGINES = ("cudnn", "caffe")
#: in the order of caffe.proto's ``SolverParameter.SolverType`` enum (0 to 5)
SOLVER_TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")

#: the most GPUs a data-parallel run is modeled on: Caffe trains data-parallel on the GPUs of
#: one machine (P2PSync/NCCL in one process; a workstation or a DGX holds at most 16)
MAX_GPUS = 64

#: the two implementations a layer can run under (``layer_factory.cpp``)
CAFFE, CUDNN = "CAFFE", "CUDNN"


class Kind:
    """What a byte is for; reports group bytes by these names."""

    ACTIVATIONS = "activations"   # top data (unique blobs)
    DIFFS = "diffs"               # top diffs (gradients of activations, scratch diffs)
    PARAMS = "params"             # learnable parameter data
    PARAM_DIFFS = "param_diffs"   # learnable parameter gradients
    HISTORY = "history"           # solver state (history_, update_, temp_)
    IM2COL = "im2col"             # CAFFE-engine convolution column buffers
    INTERNAL = "internal"         # other layer-private buffers (max_idx, BatchNorm, ...)
    WORKSPACE = "workspace"       # cuDNN convolution workspaces
    PREFETCH = "prefetch"         # data-layer prefetch batches
    BOOKKEEPING = "bookkeeping"   # host heap per layer (objects, protobuf copies): an estimate
    SOLVER_COPIES = "solver_copies"  # the solver's temporary copies (Test's scores, snapshots)
    RUNTIME = "card_addons"       # a real card's add-ons: cudaMalloc rounding, cuBLAS workspace
    CONTEXT = "context"           # CUDA context (a constant, reported on its own line)

    ALL = (ACTIVATIONS, DIFFS, PARAMS, PARAM_DIFFS, HISTORY, IM2COL, INTERNAL, WORKSPACE,
           PREFETCH, BOOKKEEPING, SOLVER_COPIES, RUNTIME, CONTEXT)


@dataclass(frozen=True)
class MemoryEnv:
    """What is being modeled: the Caffe command, the device mode, the engine and the solver.

    - ``scenario``: ``train`` (a solver: forward, backward, update, and the test nets'
      passes), ``time`` (``caffe time``: a forward and backward of the one net, then the
      timed loop that calls *every* layer's Backward), ``test`` (forward only, no diffs).
    - ``mode``: ``gpu`` (device and pinned host bytes reported apart) or ``cpu`` (malloc).
    - ``engine``: the build's default engine, ``cudnn`` or ``caffe`` (a build without
      cuDNN); each layer's own ``engine:`` field is honoured (see :mod:`.engine`).  In cpu
      mode there is no cuDNN.
    - ``solver_type``, ``regularization`` (``L2``/``L1``), ``weight_decay``: the solver
      state; L1 touches ``temp_`` for each param with a nonzero decay.
    - ``gpus``: GPUs of a multi-GPU (NCCL) training run; each holds a full solver.
    - ``prefetch``: overrides every data layer's ``data_param.prefetch`` (default 4).
    - ``context_bytes``: the per-GPU CUDA context (default: by ``cuda``, the CUDA major
      version, :data:`CONTEXT_MIB_BY_CUDA`; an estimate).
    - ``cuda``: the CUDA major version (context default, cuBLAS workspace).
    - ``card_addons``: add a real card's add-ons to the device total (cudaMalloc rounding,
      cuBLAS workspace: :mod:`caffemem.memory.card`); the requested bytes
      (``allocated_bytes``) never include them.
    - ``test_interval``/``test_iter``/``test_initialization``: whether the test nets run
      (a test net that never runs pays only its eager allocations).
    """

    scenario: str = "train"
    mode: str = "gpu"
    engine: str = "cudnn"
    solver_type: str = "SGD"
    regularization: str = "L2"
    weight_decay: float = 0.0
    gpus: int = 1
    prefetch: Optional[int] = None
    context_bytes: Optional[int] = None
    cuda: int = DEFAULT_CUDA
    card_addons: bool = True
    test_interval: int = 1
    test_iter: tuple[int, ...] = ()
    test_initialization: bool = True
    #: workspace each cuDNN convolution op gets (Caffe's limit is 8 MiB; cuDNN often needs
    #: less): the model charges 3 x group x this per layer.  0 models the zero-workspace
    #: algorithms Caffe falls back to when the allocation fails.
    cudnn_workspace_bytes: int = CUDNN_WORKSPACE_LIMIT
    #: host heap bytes per layer that no blob accounts for (:data:`BOOKKEEPING_PER_LAYER`, an
    #: estimate; 0 leaves it out): part of the heap in cpu mode, host RAM beside the pinned
    #: bytes in gpu mode
    bookkeeping_per_layer: int = BOOKKEEPING_PER_LAYER
    #: does the solver snapshot (``snapshot_after_train``, default true, or a ``snapshot``
    #: interval within ``max_iter``): None (no), "binaryproto" or "hdf5"
    #: (``snapshot_format``); ``snapshot_diff`` also writes the param diffs
    snapshot: Optional[str] = None
    snapshot_diff: bool = False
    #: the solver's ``display`` interval: Solver::Step then prints every output of the train
    #: net, reading it on the host (0: never)
    display: int = 0

    def __post_init__(self) -> None:
        if self.context_bytes is None:  # the CUDA version's default (with_ re-derives it)
            object.__setattr__(self, "context_bytes", context_mib_for(self.cuda)[0] * MiB)
            object.__setattr__(self, "_context_auto", True)
        if self.context_bytes < 0:
            raise ValueError("context_bytes must be >= 0")
        if not 7 <= self.cuda <= 13:
            raise ValueError(f"--cuda: a CUDA major version from 7 to 13, not {self.cuda}")
        canon = {t.lower(): t for t in SOLVER_TYPES}
        if isinstance(self.solver_type, str) and self.solver_type.lower() in canon:
            object.__setattr__(self, "solver_type", canon[self.solver_type.lower()])
        for name in ("scenario", "mode", "engine"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, value.lower())
        if isinstance(self.regularization, str):
            object.__setattr__(self, "regularization", self.regularization.upper())
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {SCENARIOS}, not {self.scenario!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {self.engine!r}")
        if self.solver_type not in SOLVER_TYPES:
            raise ValueError(f"solver type must be one of {SOLVER_TYPES}, not {self.solver_type!r}")
        if self.snapshot not in (None, "binaryproto", "hdf5"):
            raise ValueError(f"snapshot must be None, binaryproto or hdf5, not {self.snapshot!r}")
        if self.regularization not in ("L1", "L2"):
            raise ValueError(f"regularization must be L1 or L2, not {self.regularization!r}")
        if self.gpus < 1:
            raise ValueError("gpus must be >= 1")
        if self.gpus > MAX_GPUS:
            raise ValueError(f"--gpus: at most {MAX_GPUS} (Caffe trains data-parallel on the "
                             f"GPUs of one machine; every GPU holds the same model, so the "
                             f"per-GPU figure does not depend on how many there are)")

    @property
    def gpu(self) -> bool:
        return self.mode == "gpu"

    @property
    def cudnn(self) -> bool:
        """Is cuDNN available at all (GPU mode in a cuDNN build)?"""
        return self.mode == "gpu" and self.engine == "cudnn"

    @property
    def compute_side(self) -> str:
        """Where layers with a GPU implementation touch their blobs: 'gpu' or 'host'."""
        return "gpu" if self.gpu else "host"

    @property
    def context_is_default(self) -> bool:
        """Is ``context_bytes`` the CUDA version's default (not given)?"""
        return getattr(self, "_context_auto", False)

    def with_(self, **changes) -> "MemoryEnv":
        if self.context_is_default and "context_bytes" not in changes:
            changes["context_bytes"] = None
        return replace(self, **changes)

    @classmethod
    def for_solver(cls, solver, **overrides) -> "MemoryEnv":
        """An env from a ``caffe_pb2.SolverParameter``: its type, regularization, weight
        decay, testing schedule, and its ``solver_mode`` when the file sets one (Caffe runs a
        ``solver_mode: CPU`` solver on the CPU); ``overrides`` win (e.g. ``mode='gpu'``).
        In cpu mode the engine becomes ``caffe``."""
        if solver.HasField("solver_type") and not solver.HasField("type"):
            n = solver.solver_type  # the deprecated enum; SAG (NVCaffe) and others: SGD
            stype = SOLVER_TYPES[n] if 0 <= n < len(SOLVER_TYPES) else "SGD"
        else:
            stype = solver.type or "SGD"
        kw = dict(solver_type=stype, regularization=solver.regularization_type or "L2",
                  weight_decay=solver.weight_decay, test_interval=solver.test_interval,
                  test_iter=tuple(solver.test_iter),
                  test_initialization=solver.test_initialization, display=solver.display)
        if solver.snapshot_after_train or 0 < solver.snapshot <= solver.max_iter:
            kw["snapshot"] = "hdf5" if solver.snapshot_format == 0 else "binaryproto"
            kw["snapshot_diff"] = solver.snapshot_diff
        if solver.HasField("solver_mode") and "mode" not in overrides:
            kw["mode"] = "gpu" if solver.solver_mode == 1 else "cpu"
        kw.update(overrides)
        if kw.get("mode") == "cpu" and "engine" not in overrides:
            kw["engine"] = "caffe"
        return cls(**kw)

    def runs_test_net(self, index: int) -> bool:
        """Does the solver ever run test net ``index`` (test_interval > 0, test_iter > 0)?"""
        if self.scenario != "train" or self.test_interval <= 0:
            return False
        if index < len(self.test_iter):
            return self.test_iter[index] > 0
        return True


@dataclass(frozen=True)
class Buffer:
    """One touch of a layer-private allocation (see the module docstring).

    - ``when``: ``setup`` (eager, during net init: LayerSetUp/Reshape), ``forward`` or
      ``backward`` (the first call of that pass allocates it).
    - ``needs`` (backward only): the touch happens only when the Backward call propagates
      to a bottom (``bottom_diff``), computes a param gradient (``param_diff``), either
      (``any``), or on every Backward call (None: Caffe touches it unconditionally).
    - ``transient``: a temporary freed when the call returns (CPU LRN's padded blobs); it
      raises the peak but is not held.
    - ``device``: 'gpu' (cudaMalloc) or 'host' (pinned in GPU mode, malloc in CPU mode).
    """

    name: str
    kind: str
    nbytes: int
    device: str = "gpu"
    when: str = "forward"
    note: str = ""
    needs: Optional[str] = None
    transient: bool = False

    def __post_init__(self) -> None:
        if self.when not in ("setup", "forward", "backward"):
            raise ValueError(f"Buffer.when must be setup, forward or backward, not {self.when!r}")
        if self.device not in ("gpu", "host"):
            raise ValueError(f"Buffer.device must be gpu or host, not {self.device!r}")
        if self.needs not in (None, "bottom_diff", "param_diff", "any"):
            raise ValueError(f"Buffer.needs: {self.needs!r}")
        if self.kind not in Kind.ALL:
            raise ValueError(f"Buffer.kind: {self.kind!r}")
        if not isinstance(self.nbytes, int) or self.nbytes < 0:
            raise ValueError(f"Buffer.nbytes must be a non-negative int, not {self.nbytes!r}")


@dataclass
class BufferSet:
    """Helper for rules: collects buffers with the env's compute side filled in."""

    env: MemoryEnv
    items: list[Buffer] = field(default_factory=list)

    def add(self, name: str, nbytes: int, when: str = "forward", kind: str = Kind.INTERNAL,
            side: Optional[str] = None, note: str = "", needs: Optional[str] = None,
            transient: bool = False) -> "BufferSet":
        """Add a touch; ``side`` 'compute' (default: GPU in gpu mode), 'host' or 'gpu'."""
        device = self.env.compute_side if side in (None, "compute") else side
        if not self.env.gpu:
            device = "host"
        self.items.append(Buffer(name, kind, int(nbytes), device, when, note, needs, transient))
        return self

    def host_then_compute(self, name: str, nbytes: int, first: str = "setup",
                          then: str = "forward", kind: str = Kind.INTERNAL, note: str = "",
                          needs: Optional[str] = None) -> "BufferSet":
        """A buffer Caffe fills on the CPU (``caffe_set(mutable_cpu_data)``) and then reads
        where the layer computes: host at ``first``, plus the device at ``then`` in gpu mode."""
        self.add(name, nbytes, first, kind, "host", note)
        if self.env.gpu and then:
            self.add(name, nbytes, then, kind, "gpu", note, needs=needs)
        return self
