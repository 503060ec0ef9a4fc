"""What a failed run died of: kind, phase, layer and allocation, from the failure line, the
glog stack frames and what the log was doing just before."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

from ..units import human
from .cards import Card, card_from_log, gpu_count
from .summary import LogSummary

GPU_OOM, HOST_ALLOC, HOST_KILLED, CUDNN, CUDA_LIB, INT_MAX, SHAPE, OTHER, NOT_OOM = (
    "gpu out-of-memory", "host allocation failure", "host out-of-memory (process killed)",
    "cuDNN status failure", "cuBLAS/cuRAND status failure", "blob larger than INT_MAX",
    "shape check failure", "other", "not an out-of-memory error")

#: ``failure.phase``: where in Caffe's run the failure happened (caffemem/log_schema.json).  The free
#: text in ``phase_text`` says more ("first test pass", "a later iteration (backward)").
PHASES = ("net_setup_train", "net_setup_test", "data_prefetch", "test_pass", "forward",
          "backward", "solver_update", "snapshot", "unknown")
#: ``failure.scenario``: what kind of run died (None: the log does not say)
SCENARIOS = ("train", "time", "test", "inference")
#: cuDNN statuses that, in a Caffe run, mean memory (cudnn.hpp's CUDNN_CHECK names them):
#: ALLOC_FAILED is cuDNN's own allocation; EXECUTION_FAILED came from an algorithm whose
#: workspace did not fit (BVLC/caffe#2197); NOT_INITIALIZED from cudnnCreate on a full card
#: cuBLAS/cuRAND: Caffe creates their handles when it starts (common.cpp:114/121, "Cannot
#: create Cublas handle" is only an E line); on a full card the first gemm then fails with
#: NOT_INITIALIZED, or an allocation inside the library with ALLOC_FAILED
_LIB_MEMORY = ("ALLOC_FAILED", "ALLOCATION_FAILED", "NOT_INITIALIZED")
_CUDNN_MEMORY = ("CUDNN_STATUS_ALLOC_FAILED", "CUDNN_STATUS_EXECUTION_FAILED",
                 "CUDNN_STATUS_NOT_INITIALIZED", "(1 vs. 0)", "(2 vs. 0)", "(8 vs. 0)")

# glog frame substring -> what was being allocated
_ALLOCATION = [
    ("forward_gpu_gemm", "the im2col column buffer of a CAFFE-engine convolution (one image, "
                         "C/group x k x k x H_out x W_out floats)"),
    ("backward_gpu_gemm", "the im2col column buffer of a CAFFE-engine convolution (backward)"),
    ("weight_gpu_gemm", "the im2col column buffer of a CAFFE-engine convolution (weight gradient)"),
    ("CuDNNConvolutionLayer<>::Reshape", "a cuDNN convolution workspace (up to 3 x group x 8 MiB)"),
    ("FindExConvAlgo", "a cuDNN convolution workspace (NVCaffe's algorithm search)"),
    ("BasePrefetchingDataLayer<>::LayerSetUp", "the data layer's prefetch batches"),
    ("BasePrefetchingDataLayer<>::Forward", "the data layer's batch on the GPU"),
    ("ClearParamDiffs", "the parameter gradients"),
    ("ComputeUpdateValue", "the solver's history"),
    ("ApplyUpdate", "the solver's history"),
    ("mutable_gpu_diff", "a gradient (diff) blob, allocated at its first backward"),
    ("GPUParams", "the contiguous parameter buffers of multi-GPU training"),
]
_LAYER_CLASS = re.compile(r"caffe::(\w+?)Layer<[^>]*>::(\w+)")


@dataclass
class FailureReport:
    kind: str
    phase: str  # one of PHASES
    message: str
    source: str = ""
    phase_text: str = ""  # the phase in words, with what the log shows of it
    layer_class: Optional[str] = None  # e.g. "Convolution"
    layer: Optional[str] = None  # a layer name when the log pins it down
    candidates: list[str] = field(default_factory=list)  # layers of that type in the net
    allocation: Optional[str] = None
    requested_bytes: Optional[int] = None
    gpu_total_bytes: Optional[int] = None
    gpu_free_bytes: Optional[int] = None
    net_label: Optional[str] = None
    explanation: list[str] = field(default_factory=list)
    #: the scenario (SCENARIOS) and the log's lines or frames that show it
    scenario: Optional[str] = None
    scenario_evidence: str = ""
    #: the engine the stack frames show ("CAFFE", "CUDNN"), and which frame
    engine: Optional[str] = None
    engine_evidence: str = ""
    #: the card the log names, and how many GPUs the run uses (multi-GPU: P2PSync, -gpu 0,1)
    card: Optional[Card] = None
    gpus: int = 1
    #: the stack's pass ("forward", "backward", "setup", "update") and whether a diff
    #: (``mutable_gpu_diff``) rather than data was being allocated
    pass_: Optional[str] = None
    diff: Optional[bool] = None
    #: the buffer that failed: {"name", "kind", "bytes", "layer", "net"} (from the replay
    #: or the log), and the ranked candidates when the evidence leaves several
    buffer: Optional[dict] = None
    buffer_candidates: list[dict] = field(default_factory=list)
    #: host memory (not the GPU's): a host allocation, the OOM killer, a Jetson board
    host: bool = False
    #: not Caffe's report: "tensorflow" or "pytorch" (None for Caffe and its forks)
    framework: Optional[str] = None

    @property
    def is_oom(self) -> bool:
        """An out-of-memory failure, or a cuDNN status that means one (see _CUDNN_MEMORY)."""
        if self.kind == CUDNN:
            return any(k in self.message for k in _CUDNN_MEMORY)
        if self.kind == CUDA_LIB:
            return any(k in self.message for k in _LIB_MEMORY)
        return self.kind in (GPU_OOM, HOST_ALLOC, HOST_KILLED)

    def to_dict(self) -> dict:
        """The JSON ``failure`` object (its schema: caffemem/log_schema.json)."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("card", "pass_")}
        out["pass"] = self.pass_
        out["card"] = ({"name": self.card.name or None, "total_bytes": self.card.total_bytes,
                        "size_from": self.card.source, "shared_memory": self.card.shared_memory}
                       if self.card else None)
        return out | {"is_oom": self.is_oom}


def _kind(msg: str, context: str) -> str:
    m = msg + " " + context
    if "host allocation of size" in m or "std::bad_alloc" in m or "Cannot allocate memory" in m \
            or re.search(r"^\s*MemoryError\b|NvMap\w*Alloc|NvRmMemAlloc", msg):
        return HOST_ALLOC
    if re.search(r"(?:^|\s)Killed(?:\s|$)|Out of memory: Kill", msg):
        return HOST_KILLED
    if "Unknown layer type" in m:
        return OTHER
    if re.search(r"cudaSuccess \((\d+) vs\. 0\)", m):
        code = int(re.search(r"cudaSuccess \((\d+) vs\. 0\)", m).group(1))
        return GPU_OOM if code == 2 else NOT_OOM
    if "out of memory" in m.lower() or "Failed to allocate" in m or "try_reserve" in m \
            or "CUDA_ERROR_OUT_OF_MEMORY" in m:
        return GPU_OOM
    if re.search(r"syncedmem\.(?:cpp|hpp):\d+.*error ==\s*$", m.strip()) or \
            (m.strip().endswith("error ==") and "syncedmem" in m):
        return GPU_OOM  # a cudaMalloc check whose error code was cut off: nearly always OOM
    if "CUDNN_STATUS" in m or "status == CUD" in m:
        return CUDNN
    if "CUBLAS_STATUS" in m or "CURAND_STATUS" in m:
        return CUDA_LIB
    if "INT_MAX" in m:
        return INT_MAX
    if re.search(r"shape|count|dimension|must match|Number of labels|in-place|axis", m, re.I):
        return SHAPE
    return OTHER


def classify(s: LogSummary) -> Optional[FailureReport]:
    """The failure of the run, or None when the log shows none."""
    if s.foreign:
        return _foreign(s)
    f = s.failure
    if f is None:
        return None
    context = " ".join(x.message for x in s.failures[1:3])
    r = FailureReport(_kind(f"{f.source}] {f.message}", context), "unknown", f.message, f.source)
    frames = s.frames
    joined = " ".join(frames)
    # the layer class, from the innermost caffe layer frame
    for fr in frames:
        m = _LAYER_CLASS.search(fr)
        if m and not m.group(1).startswith("Base") and m.group(1) not in ("Loss", "Neuron"):
            r.layer_class = m.group(1).replace("CuDNN", "") or None
            break
        if m and m.group(1).startswith("BasePrefetching"):
            r.layer_class = "Data"
            break
    if r.layer_class is None:
        r.layer_class = layer_type_of_source(f.source)
    for key, what in _ALLOCATION:
        if key in joined:
            r.allocation = what
            break
    m = re.search(r"Failed to allocate (\d+) bytes on device (\d+)\. Total memory: (\d+), Free: (\d+)", f.message)
    if m:
        r.requested_bytes, r.gpu_total_bytes, r.gpu_free_bytes = int(m.group(1)), int(m.group(3)), int(m.group(4))
    m = re.search(r"host allocation of size (\d+)", f.message)
    if m:
        r.requested_bytes = int(m.group(1))
    r.host = r.kind in (HOST_ALLOC, HOST_KILLED)
    r.card = card_from_log(s.gpus, r.gpu_total_bytes or s.gpu_total_bytes)
    r.gpu_total_bytes = r.gpu_total_bytes or (r.card.total_bytes if r.card else None)
    if r.card is not None and r.card.shared_memory and r.kind in (GPU_OOM, HOST_ALLOC, HOST_KILLED):
        r.host = True  # a Jetson board: one memory for both
    if r.kind == GPU_OOM and s.allocation_print is not None:
        r.requested_bytes = r.requested_bytes or s.allocation_print
    _evidence(r, s, frames, joined)
    r.phase, r.phase_text = _phase(s, joined, r)
    if r.layer_class and not r.layer and s.nets:
        trains = [n for n in s.nets if n.label.startswith("train")]
        running = r.phase != "test_pass" and not r.phase.startswith("net_setup")
        wanted = r.net_label or ("train" if trains and running else "")
        net = next((n for n in reversed(s.nets) if wanted and n.label.startswith(wanted)), s.nets[-1])
        pat = re.compile(r'name: "([^"]+)"\s*\n\s*type: "' + re.escape(r.layer_class) + '"')
        r.candidates = pat.findall(net.echo)
        if len(r.candidates) == 1:
            r.layer = r.candidates[0]
        elif r.candidates and r.requested_bytes:
            _pin_by_size(r, net)
    _data_batches(r, s)
    _explain(r, s)
    return r


#: frames that show Caffe's own (CAFFE-engine) implementation of a layer that a cuDNN build
#: would run on cuDNN (layer_factory.cpp: Convolution unless dilated, LRN across channels
#: unless local_size > 16, ReLU, Sigmoid, TanH, Softmax); Pooling is left out: MAX pooling
#: runs on Caffe's engine in cuDNN builds too
_CAFFE_ENGINE = re.compile(r"caffe::(?:ConvolutionLayer<[^>]*>::(?:Forward|Backward)_gpu|"
                           r"LRNLayer<[^>]*>::CrossChannel\w+_gpu|(?:ReLU|Sigmoid|TanH|Softmax)Layer<[^>]*>::"
                           r"(?:Forward|Backward)_gpu)|\bim2col_gpu|\bcol2im_gpu|BaseConvolutionLayer<[^>]*>::"
                           r"(?:forward|backward|weight)_gpu_gemm")
_CUDNN_ENGINE = re.compile(r"CuDNN\w*Layer|cudnn\w*\(|cudnnCreate")
#: frames of a program that runs a net itself (not Caffe's tool): pycaffe, OpenPose...
_APP_FRAMES = re.compile(r"boost::python|_caffe\.so|PyEval_|\bop::|warmup\(|Detector::|Classifier::")


def _evidence(r: FailureReport, s: LogSummary, frames: list[str], joined: str) -> None:
    """Scenario, engine and GPU count, from the log's own lines and the stack frames."""
    run = s.run_lines
    tool = next((fr for fr in frames if fr.strip() in ("train()", "test()", "time()")), None)
    solver = bool(s.solver_echo) or "Solver" in joined or bool(len(s.train)) or bool(len(s.test)) \
        or s.solving or s.last_iteration is not None or any(n.label.startswith("train") for n in s.nets)
    timing = ("time_forward", "time_backward", "time_loop", "time_cmd")
    if tool == "time()" or any(k in run for k in timing):
        r.scenario = "time"
        line = next((run[k] for k in timing if k in run), None)
        r.scenario_evidence = f"caffe time: \"{line.text}\" (line {line.line})" if line else "caffe time: the time() frame"
    elif tool == "test()" or "test_run" in run:
        r.scenario = "test"
        r.scenario_evidence = (f"caffe test: \"{run['test_run'].text}\" (line {run['test_run'].line})"
                               if "test_run" in run else "caffe test: the test() frame")
    elif solver or tool == "train()" or "train" in run:
        r.scenario = "train"
        r.scenario_evidence = ("a solver runs: " + ("the train() frame" if tool == "train()" else
                               "the Solver frames" if "Solver" in joined else
                               f"\"{run['train'].text}\"" if "train" in run else
                               "its echo, iterations or net set-up lines"))
    elif s.weights is not None and s.weights.inference:
        r.scenario = "inference"
        r.scenario_evidence = f"a script loaded trained weights to run the net (line {s.weights.line})"
    elif _APP_FRAMES.search(joined) or ("Net<>::Forward" in joined and "Solver" not in joined):
        r.scenario = "inference"
        r.scenario_evidence = "a program runs the net itself (no solver in the stack frames)"
    elif s.nets and all(n.echo and n.phase == "TEST" for n in s.nets):
        r.scenario = "inference"
        r.scenario_evidence = ("only TEST-phase nets are built, with no solver: a deploy net run by a "
                               "script (pycaffe, a demo) or an application")
    elif "python" in run:
        r.scenario = "inference"
        r.scenario_evidence = (f"a Python script ran Caffe (\"{run['python'].text}\"); no solver "
                               f"lines, so most likely a forward pass (pycaffe net.forward())")
    m = _CUDNN_ENGINE.search(joined) or (re.search(r"cudnn_\w+\.(?:cu|cpp)", r.source or "") if r.kind == CUDNN or "cudnn" in (r.source or "") else None)
    if m:
        r.engine, r.engine_evidence = "CUDNN", f"cuDNN in the stack or the failing check ({m.group(0)})"
    else:
        m = _CAFFE_ENGINE.search(joined)
        if m:
            r.engine = "CAFFE"
            r.engine_evidence = (f"Caffe's own implementation in the stack ({m.group(0)}): a build without "
                                 f"cuDNN, or a layer cuDNN cannot run (a dilated convolution)")
    r.gpus = gpu_count(s.gpus)
    if r.gpus == 1 and ("P2PSync" in joined or "P2PManager" in joined or "NCCL" in joined or "multi_gpu" in run):
        r.gpus = 2  # at least: the log does not say how many
    if "Backward" in joined:
        r.pass_ = "backward"
    elif any(k in joined for k in ("ApplyUpdate", "ComputeUpdateValue", "ClearParamDiffs", "Regularize",
                                     "Net<>::Update", "Net::Update")):
        r.pass_ = "update"
    elif any(k in joined for k in ("LayerSetUp", "Net<>::Init", "Net::Init")) and "Forward" not in joined:
        r.pass_ = "setup"
    elif "Forward" in joined or "forward" in joined:
        r.pass_ = "forward"
    # Blob's accessors say data or diff; SyncedMemory's (below them) serve both
    blob = re.search(r"Blob<[^>]*>::(?:mutable_)?(?:gpu|cpu)_(data|diff)", joined)
    if blob:
        r.diff = blob.group(1) == "diff"


def _data_batches(r: FailureReport, s: LogSummary) -> None:
    """A GPU failure while a data layer was being set up, whose batch shape the log shows
    ("output data size"): the prefetched batches, with their size."""
    if r.kind != GPU_OOM or not r.layer or r.allocation or not r.phase.startswith("net_setup") or not s.nets:
        return
    layer = next((l for l in s.nets[-1].layers if l.name == r.layer), None)
    if layer is None or not layer.data_size:
        return
    nbytes = math.prod(layer.data_size) * 4
    r.allocation = "the data layer's prefetch batches"
    r.explanation.append(
        f"data layer {layer.name} reads batches of {' x '.join(map(str, layer.data_size))}: {nbytes:,} "
        f"bytes ({human(nbytes)}) of floats each, and Caffe keeps several prefetched batches on the "
        f"GPU (DataParameter.prefetch, 4 by default; 3 in older versions): lower batch_size")


#: Caffe's file names whose layer type is not the file name in CamelCase
_FILE_TYPES = {"conv": "Convolution", "deconv": "Deconvolution", "base_conv": "Convolution",
               "softmax_loss": "SoftmaxWithLoss", "base_data": "Data", "im2col": None}
_LAYER_FILE = re.compile(r"^(?:cudnn_)?(\w+?)_layer\.(?:cpp|cu|hpp)(?::\d+)?$")


def layer_type_of_source(source: str) -> Optional[str]:
    """The layer type whose source file a failing check is in ("cudnn_conv_layer.cu:65" ->
    Convolution, "softmax_loss_layer.cpp:47" -> SoftmaxWithLoss), by Caffe's file naming; the
    registry's spelling when it knows the type (ROIPooling, not RoiPooling)."""
    m = _LAYER_FILE.match(source or "")
    if not m:
        return None
    stem = m.group(1)
    if stem in _FILE_TYPES:
        return _FILE_TYPES[stem]
    camel = "".join(part.capitalize() for part in stem.split("_"))
    from ..layers import known_types

    by_lower = {name.lower(): name for name in known_types()}
    return by_lower.get(camel.lower(), by_lower.get(stem.replace("_", "").lower(), camel))


def _pin_by_size(r: FailureReport, net) -> None:
    """Narrow the failing layer down by the failed allocation's size: in a forward pass (or
    set-up) a layer's top, in a backward pass the diff of its bottom, of exactly that many
    bytes (float, or half for NVCaffe's fp16), from the log's own Top shape lines."""
    shapes = net.top_shapes()
    backward = r.phase == "backward"
    for size in (4, 2):
        hits = []
        for layer in net.layers:
            if layer.name not in r.candidates:
                continue
            for blob in (layer.bottoms if backward else layer.tops):
                shape = shapes.get(blob)
                if shape and math.prod(shape) * size == r.requested_bytes:
                    hits.append((layer.name, blob, shape))
                    break
        if hits:
            break
    if not hits:
        return
    what = "the diff of its bottom" if backward else "its top"
    names = ", ".join(f"{name} ({blob}: {' x '.join(map(str, shape))})" for name, blob, shape in hits)
    if len(hits) == 1:
        r.layer = hits[0][0]
        r.explanation.append(f"the failed {r.requested_bytes:,} bytes are exactly {what} in "
                             f"{r.net_label or net.label}: {names}")
    else:
        r.candidates = [h[0] for h in hits]
        each = "the diff of a bottom" if backward else "a top"
        r.explanation.append(f"the failed {r.requested_bytes:,} bytes match {each} of each of "
                             f"{len(hits)} layers: {names}")


def _setup_phase(s: LogSummary, label: str) -> str:
    """net_setup_train or net_setup_test for a net being set up: by its label ("train net",
    "test net #0"), else its echo's phase, else the run (a solver builds its train net
    first; a test or inference run builds a TEST net)."""
    if label.startswith("train"):
        return "net_setup_train"
    if label.startswith("test"):
        return "net_setup_test"
    net = next((n for n in reversed(s.nets) if n.label == label), None)
    if net is not None and net.echo:
        return "net_setup_test" if net.phase == "TEST" else "net_setup_train"
    if s.solver_echo or "train" in s.run_lines or s.solving:
        return "net_setup_train"
    if "test_run" in s.run_lines or (s.weights is not None and s.weights.inference):
        return "net_setup_test"
    return "net_setup_train"


def _phase(s: LogSummary, frames: str, r: FailureReport) -> tuple[str, str]:
    """(phase, its words): from the stack frames first, then what the log was doing."""
    last = s.nets[-1] if s.nets else None
    if s.init_open and not frames and (last is None or not last.done):
        if last is not None and last.layers:
            r.layer = last.layers[-1].name
            r.net_label = last.label
        label = last.label if last is not None else "net"
        return _setup_phase(s, label), f"{label} initialization"
    if "Net<>::Init" in frames or "Net::Init" in frames or (last is not None and not last.done and not frames):
        if last is not None:
            r.net_label = last.label
            done = [l for l in last.layers if l.memory_after is not None]
            r.layer = last.layers[-1].name if last.layers else None
            if done and last.layers and last.layers[-1].memory_after is not None and r.layer_class is None:
                r.layer = None
        label = last.label if last is not None else ("train net" if "InitTrainNet" in frames else
                                                     "test net" if "InitTestNet" in frames else "net")
        return _setup_phase(s, label), f"{label} initialization"
    if last is not None and not last.done and any(k in frames for k in ("LayerSetUp", "Reshape")) \
            and "Solve" not in frames and "Forward" not in frames:
        return _setup_phase(s, last.label), f"{last.label} initialization"
    if "GPUParams" in frames or ("P2PSync" in frames and "Solve" not in frames and "run" not in frames):
        return "net_setup_train", "multi-GPU set-up (GPUParams: every GPU's parameter and gradient buffers)"
    if "Snapshot" in frames:
        return "snapshot", "snapshot"
    if "CopyTrainedLayers" in frames:  # net.cpp CopyTrainedLayersFrom: the net is built
        return ("net_setup_train" if r.scenario == "train" else "net_setup_test",
                "copying trained weights into the built net (--weights, or a script's .caffemodel)")
    if "RestoreSolverState" in frames or "Solver<>::Restore" in frames:
        return "solver_update", "restoring the solver's state (its history) from a .solverstate"
    it = s.last_iteration
    if "InternalThreadEntry" in frames and ("load_batch" in frames or "DataLayer" in frames):
        return "data_prefetch", "the data layer's prefetch thread (loading a batch)"
    if ("Test" in frames and "Solver" in frames) or (s.testing_at_failure and "Backward" not in frames):
        r.net_label = "test net"
        first = it in (None, 0)
        return "test_pass", "first test pass" if first else "a later test pass"
    if any(k in frames for k in ("ClearParamDiffs", "ApplyUpdate", "ComputeUpdateValue", "Update()",
                                 "Regularize", "Normalize", "ClipGradients")):
        return "solver_update", "solver update"
    if "BasePrefetchingDataLayer<>::Forward" in frames:
        first = it in (None, 0)
        return "data_prefetch", ("first forward" if first else "a later iteration (forward)") + \
            ": the data layer handing its prefetched batch to the net"
    solver = r.scenario == "train"
    if r.scenario == "time":
        if "Backward" in frames or ("time_backward" in s.run_lines and not frames):
            return "backward", "caffe time: the backward pass"
        if "Forward" in frames or "time_forward" in s.run_lines:
            return "forward", "caffe time: the forward pass"
        return "unknown", "caffe time (the log does not show which pass)"
    if not solver:
        if s.weights is not None and "Backward" not in frames:  # built, weights in, then run
            return "forward", "inference forward" if s.weights.inference else "first forward"
        if not frames and not s.nets:
            return "unknown", "not shown in the log (no net set-up, iteration or stack lines)"
        return ("forward", "inference forward") if "Backward" not in frames else ("backward", "inference backward")
    if "Backward" in frames:
        return "backward", "first backward" if it in (None, 0) else "a later iteration (backward)"
    if "Forward" in frames or "Step" in frames or "Solve" in frames:
        return "forward", "first forward" if it in (None, 0) else "a later iteration (forward)"
    if s.last_curve == "lr":
        # SGDSolver::ApplyUpdate logs "Iteration N, lr = ..." and then updates: at the first
        # iteration that update allocates the solver's history (sgd_solver.cpp:113-122)
        first = it in (None, 0)
        return "solver_update", ("first solver update (right after the \"Iteration 0, lr\" line that "
                                 "ApplyUpdate logs before allocating the solver history)" if first else
                                 f"solver update of iteration {it} (after its \"lr\" line)")
    if it is None:
        if s.test:
            return "unknown", "first iteration (after the iteration-0 test pass)"
        return "unknown", ("first iteration" if s.solving or (s.nets and all(n.done for n in s.nets))
                           else "start-up")
    return "unknown", "first iteration" if it == 0 else "a later iteration"


def _explain(r: FailureReport, s: LogSummary) -> None:
    e = r.explanation
    if r.kind == NOT_OOM:
        code = re.search(r"\((\d+) vs\. 0\)", r.message)
        meaning = {"11": "cudaErrorInvalidValue: an invalid argument, usually a broken build or driver",
                   "29": "cudaErrorCudartUnloading: blobs freed after the CUDA runtime shut down "
                         "(a Python/Matlab script exiting), harmless for the results"}
        e.append(f"not an out-of-memory error: CUDA error {code.group(1) if code else '?'}"
                 + (f" ({meaning[code.group(1)]})" if code and code.group(1) in meaning else ""))
    elif r.kind == CUDNN:
        e.append("cuDNN refused the call; with CUDNN_STATUS_EXECUTION_FAILED or ALLOC_FAILED this "
                 "is often memory pressure (an algorithm whose workspace does not fit)")
    elif r.kind == CUDA_LIB:
        e.append("cuBLAS/cuRAND refused the call; NOT_INITIALIZED or ALLOC_FAILED most often means the "
                 "card had no memory left for the library's handle or workspace")
    elif r.kind == HOST_KILLED:
        e.append("the kernel's OOM killer stopped the process: host memory (RAM and swap) ran out")
    elif r.kind == HOST_ALLOC:
        e.append("host (CPU) memory ran out, not the GPU's: pinned or pageable host allocation failed")
    elif r.kind == INT_MAX:
        e.append("a blob would hold more than 2^31-1 elements, which Caffe refuses; lower the batch "
                 "or the input size of the layer named")
    if r.kind == GPU_OOM and r.allocation:
        e.append(f"the allocation that failed: {r.allocation}")
    elif r.kind == GPU_OOM and "syncedmem" in r.source:
        e.append("the allocation that failed: a blob's GPU buffer (cudaMalloc in "
                 "SyncedMemory::to_gpu, at its first use on the GPU); the log does not say whose")
    if r.kind in (GPU_OOM, HOST_ALLOC) and r.phase_text.startswith("not shown"):
        e.append("the log holds no set-up, iteration or stack lines, so neither the phase nor the "
                 "layer shows; with the whole log (from the start), or with the net given "
                 f"(--net {'deploy' if r.scenario == 'inference' else 'train_val'}.prototxt "
                 "--gpu-mem SIZE), caffemem models the run and says what "
                 "would fit")
    figures = [(n.label, n.memory_required_for_data) for n in s.nets if n.memory_required_for_data]
    if r.is_oom and figures:
        said = ", ".join(f"{human(b)} for the {label}" for label, b in figures)
        weights = s.weights.bytes if s.weights is not None else None
        e.append(f"Caffe's \"Memory required for data\" ({said}) counts only the forward top blobs; "
                 f"it leaves out the parameters"
                 + (f" (the .caffemodel just read holds {human(weights)} of them)" if weights else "")
                 + ", and when training the tops' diffs, the parameters' diffs and solver history, "
                   "convolution workspaces and prefetch batches")
    if r.kind == GPU_OOM and s.allocation_print is not None:
        e.append(f"the last allocation the log printed before failing (a debugging print in "
                 f"SyncedMemory): {s.allocation_print:,} bytes ({human(s.allocation_print)})")
    if r.requested_bytes and r.gpu_free_bytes is not None:
        e.append(f"it asked for {r.requested_bytes:,} bytes with {r.gpu_free_bytes:,} free "
                 f"of {r.gpu_total_bytes:,}")


def _foreign(s: LogSummary) -> FailureReport:
    f = s.foreign[0]
    framework = f.framework
    r = FailureReport(GPU_OOM, "unknown", f.message, phase_text="forward or backward", framework=framework)
    r.requested_bytes = next((x.requested_bytes for x in s.foreign if x.requested_bytes), None)
    limit = next((x.limit_bytes for x in s.foreign if x.limit_bytes), None)
    in_use = next((x.in_use_bytes for x in s.foreign if x.in_use_bytes), None)
    total = next((x.total_bytes for x in s.foreign if x.total_bytes), None)
    shape = next((x.shape for x in s.foreign if x.shape), None)
    if shape:
        n = 1
        for d in shape:
            n *= d
        r.explanation.append(f"{framework}: the tensor of shape {list(shape)} holds {n:,} elements "
                             f"({n * 4:,} bytes as float32)")
        r.requested_bytes = r.requested_bytes or n * 4
    cap = limit or total
    if cap and in_use is not None:
        r.explanation.append(f"the allocator held {in_use:,} of its {cap:,}-byte limit")
        if in_use < cap // 2:
            r.explanation.append(
                "the allocator held far less than its limit while the driver refused memory: the "
                "memory was taken outside it (another process on the GPU, or a second session or "
                "allocator in the same process)")
    r.gpu_total_bytes = cap
    return r
