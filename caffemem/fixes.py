"""What would make a run that died of out-of-memory fit: ranked fixes, each with its number
and why.

Two sources, one shape (:class:`Fix`):

- :func:`log_fixes`: from the log alone (the failure's evidence, Caffe's own figures, the
  shapes and sizes it printed, the card it names).  Numbers from the log are estimates and
  say how they were made (``confidence`` "medium"); a fix the log only makes plausible has
  ``confidence`` "low".
- :mod:`caffemem.diagnose` adds fixes checked by the allocation model (``confidence``
  "high") when the nets are known (echoed in the log, or given with ``--net``); they take the
  place of the log's estimate for the same action.

Ranking: each rule gives its fix a weight from the evidence (what the stack frames, the
phase and the numbers point at); fixes the model checked and found to fit come first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from .logparse.failure import FailureReport
from .logparse.summary import LogSummary
from .units import human

#: ``fixes[].action`` (caffemem/log_schema.json)
ACTIONS = {
    "reduce_batch": "lower the train batch_size (iter_size keeps the effective batch)",
    "reduce_test_batch": "lower the test net's batch size (raise test_iter to test as many)",
    "skip_test_initialization": "no test pass at start (test_initialization: false), or test apart",
    "use_cudnn": "the cuDNN engine instead of Caffe's im2col convolution",
    "cudnn_workspace": "a smaller cuDNN workspace, or another convolution algorithm",
    "reduce_input_size": "a smaller input (crop, resize, net resolution)",
    "free_gpu_memory": "memory held by other processes (nvidia-smi)",
    "free_host_memory": "host memory held by other processes, or too little RAM/swap",
    "reduce_prefetch": "fewer prefetched batches (data_param.prefetch)",
    "per_gpu_batch": "multi-GPU: each GPU holds a whole net; batch_size is per GPU",
    "larger_gpu": "the net does not fit this card at the smallest setting",
}
CONFIDENCE = ("high", "medium", "low")
_SOLVER_HISTORY = {"SGD": 1, "Nesterov": 1, "AdaGrad": 1, "RMSProp": 1, "AdaDelta": 2, "Adam": 2}


@dataclass
class Fix:
    action: str  # one of ACTIONS
    detail: str  # the change, with its number and why
    saves_bytes: Optional[int]
    confidence: str  # "high": checked by the model; "medium": estimated from the log; "low"
    weight: float = 0.0  # the evidence for it (ranking only)
    total_bytes: Optional[int] = None  # the modeled peak with the fix (model fixes)
    fits: Optional[bool] = None  # does the modeled peak with the fix fit the capacity?
    values: dict = field(default_factory=dict)  # the new settings, e.g. {"batch_size": 96}

    def to_dict(self) -> dict:
        out = {"action": self.action, "detail": self.detail, "saves_bytes": self.saves_bytes,
               "confidence": self.confidence}
        if self.total_bytes is not None:
            out["total_bytes"] = self.total_bytes
        if self.fits is not None:
            out["fits"] = self.fits
        if self.values:
            out["values"] = dict(self.values)
        return out


def rank(fixes: list[Fix]) -> list[Fix]:
    """Model-checked fixes that fit first, then by the evidence's weight; one per action
    (the model's, else the heaviest)."""
    best: dict[str, Fix] = {}
    for f in fixes:
        have = best.get(f.action)
        if have is None or _order(f) < _order(have):
            best[f.action] = f
    return sorted(best.values(), key=_order)


def _order(f: Fix) -> tuple:
    return (0 if f.fits else 1, -f.weight, CONFIDENCE.index(f.confidence))


@dataclass
class LogFacts:
    """What the log says about sizes, for estimates."""

    train_batch: Optional[int] = None
    test_batch: Optional[int] = None
    train_figure: Optional[int] = None  # Caffe's "Memory required for data" of the train net
    test_figure: Optional[int] = None
    figure: Optional[int] = None  # of a net whose role is not said (deploy, excerpt)
    figure_batch: Optional[int] = None
    weights: Optional[int] = None  # bytes of the .caffemodel read (~ the parameters)
    data_sample: Optional[int] = None  # bytes of one sample of the data layer's top
    prefetch_batch: Optional[int] = None  # bytes of one data batch ("output data size")
    printed: list[int] = field(default_factory=list)  # allocation sizes a patch printed
    history: int = 1  # solver history blobs per parameter
    context: int = 0  # the CUDA context the estimates add (--context-mib, else the model's default)

    @classmethod
    def of(cls, s: LogSummary, context_bytes: Optional[int] = None) -> "LogFacts":
        f = cls(context=_default_context() if context_bytes is None else context_bytes)
        for n in s.nets:
            batch = _net_batch(n)
            fig = _total_figure(n)
            if n.label.startswith("train") or (n.echo and n.phase == "TRAIN" and not n.label.startswith("test")):
                f.train_batch, f.train_figure = batch or f.train_batch, fig or f.train_figure
            elif n.label.startswith("test") or (n.echo and n.phase == "TEST"):
                f.test_batch, f.test_figure = batch or f.test_batch, fig or f.test_figure
            elif fig or batch:
                f.figure, f.figure_batch = fig or f.figure, batch or f.figure_batch
            for layer in n.layers:
                if layer.data_size:
                    f.prefetch_batch = math.prod(layer.data_size) * 4
                    f.data_sample = f.prefetch_batch // max(1, layer.data_size[0])
        if s.digits_memory and not (f.train_figure or f.figure):
            f.figure = s.digits_memory[0]  # DIGITS' reading of Caffe's figure, same for each net
        f.weights = s.weights.bytes if s.weights is not None else None
        f.printed = list(s.allocation_prints)
        solver_type = _solver_type(s.solver_echo)
        f.history = _SOLVER_HISTORY.get(solver_type, 1)
        return f


def _total_figure(n) -> Optional[int]:
    """A net's "Memory required for data" when it is the whole net's: the net finished
    ("Network initialization done"), or the figure came alone (an excerpt).  A figure
    printed after one of several layers (a log cut mid set-up) is not the net's."""
    if n.finished or not any(l.memory_after is not None for l in n.layers):
        return n.memory_required_for_data
    last = n.layers[-1] if n.layers else None
    return n.memory_required_for_data if last is not None and last.memory_after is not None and n.done \
        and not any(l.memory_after is None and l.tops for l in n.layers[1:]) else None


def _net_batch(n) -> Optional[int]:
    for layer in n.layers:
        if layer.data_size:
            return layer.data_size[0]
        if not layer.bottoms and layer.shapes and layer.shapes[0]:
            return layer.shapes[0][0]
    return None


def _solver_type(echo: str) -> str:
    for line in echo.splitlines():
        line = line.strip()
        if line.startswith("type:") or line.startswith("solver_type:"):
            return line.split(":", 1)[1].strip().strip('"')
    return "SGD"


def _default_context() -> int:
    from .memory import DEFAULT_CONTEXT_MIB

    return DEFAULT_CONTEXT_MIB * 2**20


def log_fixes(r: FailureReport, s: LogSummary, capacity: Optional[int],
              context_bytes: Optional[int] = None) -> list[Fix]:
    """Fixes from the log alone (see the module docstring); ``context_bytes``: the CUDA
    context the estimates add (None: the model's default)."""
    if r.framework:
        return _foreign_fixes(r)
    if r.host:
        return _host_fixes(r, s)
    facts = LogFacts.of(s, context_bytes)
    out: list[Fix] = []
    train = r.scenario in ("train", None) and r.scenario != "inference"
    inference = r.scenario in ("inference", "test")
    unknown = r.phase == "unknown" and not s.nets and not r.scenario
    workspace = r.kind == "cuDNN status failure" or (r.allocation or "").startswith("a cuDNN")
    im2col = "im2col" in (r.allocation or "")

    # -- the batch ---------------------------------------------------------------------
    if r.phase == "test_pass":
        out += _test_fixes(r, facts, capacity)
    if not inference:
        f = _batch_fix(r, facts, capacity, s)
        f.weight = 80 if train and r.scenario else 62
        if r.phase == "test_pass":
            f.weight = 60
        out.append(f)
    elif facts.figure_batch and facts.figure_batch > 1:
        out.append(_batch_fix(r, facts, capacity, s, weight=70))
    # -- the engine --------------------------------------------------------------------
    if workspace:
        out.append(_workspace_fix(r))
    if r.engine == "CAFFE" or (r.engine is None and not workspace):
        saves = r.requested_bytes if im2col else None
        frame = r.engine_evidence.split("(", 1)[1].split(")")[0] if "(" in r.engine_evidence else ""
        why = (f"the stack shows Caffe's own implementation ({frame}): " + (
            f"the im2col column buffer of a convolution, one per layer and never shared, is what "
            f"failed{f' ({human(saves)})' if saves else ''}" if im2col else
            "Caffe's own layers keep buffers cuDNN's do without (each convolution's im2col "
            "columns, LRN's scale)")) if r.engine == "CAFFE" else \
            ("the log does not show the engine; a Caffe built without cuDNN gives every convolution "
             "layer its own im2col column buffer (C/group x k x k x H_out x W_out floats each, never "
             "shared): a cuDNN build does without them")
        out.append(Fix("use_cudnn", "build Caffe with cuDNN (USE_CUDNN := 1), or set engine: CUDNN on "
                       "the convolution layers: " + why, saves, "medium" if r.engine == "CAFFE" else "low",
                       weight=90 if im2col else 60 if r.engine == "CAFFE" else 55))
    # -- the input ---------------------------------------------------------------------
    size_weight = 75 if inference else 65 if im2col else 50
    out.append(Fix("reduce_input_size", _input_detail(r, facts, inference), None, "low", weight=size_weight))
    # -- other memory users, or a card too small ---------------------------------------
    out += _elsewhere_fixes(r, s, facts, capacity, unknown, inference)
    if any(f.action == "reduce_batch" and f.values.get("batch_size", 0) >= 1 and f.confidence == "medium"
           and not f.detail.startswith(f"batch_size {f.values['batch_size']} -> 1 may") for f in out):
        out = [f for f in out if f.action != "larger_gpu"]  # a smaller batch fits: no larger card needed
    if r.gpus > 1:
        out.append(Fix("per_gpu_batch", f"this run uses {'several' if r.gpus == 2 else r.gpus} GPUs "
                       f"(P2PSync/-gpu): each GPU holds a whole copy of the net, its gradients and "
                       f"solver state, and batch_size is per GPU; more GPUs do not lower the need of "
                       f"one. Lower batch_size per GPU and keep the effective batch with the number "
                       f"of GPUs and iter_size (effective = batch_size x GPUs x iter_size)",
                       None, "medium", weight=72))
    return out


def _batch_fix(r: FailureReport, facts: LogFacts, capacity: Optional[int], s: LogSummary,
               weight: float = 80) -> Fix:
    batch = facts.train_batch or facts.figure_batch
    figure = facts.train_figure or facts.figure
    test = facts.test_figure if r.scenario == "train" else None
    weights = facts.weights or 0
    if r.phase == "net_setup_train" and facts.prefetch_batch and (r.layer or "").lower().find("data") >= 0 \
            or (r.allocation or "").endswith("prefetch batches"):
        batch = batch or (facts.prefetch_batch // facts.data_sample if facts.data_sample else None)
    if batch and figure and capacity:
        # Caffe's figure counts the forward tops once: training adds their diffs (about as
        # much again), the parameters with their diffs and solver history, the prefetched
        # batches and the CUDA context
        per_sample = 2 * figure / batch
        prefetch = 4 * (facts.data_sample or 0)
        fixed = weights * (2 + facts.history) + (test or 0) + facts.context
        fit = int((capacity - fixed) // (per_sample + prefetch)) if capacity > fixed else 0
        how = (f"estimate from the log: Caffe's figure {human(figure)} for batch {batch}, doubled for "
               f"the gradients, plus 4 prefetched data batches"
               + (f", {human(weights)} of weights x{2 + facts.history} (data, diff, history)" if weights else "")
               + (f", the test net's {human(test)}" if test else "")
               + f" and {human(facts.context)} of CUDA context, against {human(capacity)}; "
               f"give the net (--net) for the exact figure")
        if fit >= 1 and fit < batch:
            iters = math.ceil(batch / fit)
            even = math.ceil(batch / iters)
            return Fix("reduce_batch", f"batch_size {batch} -> about {fit} ({how}); keep an effective "
                       f"batch of {batch} with batch_size {even} and iter_size {iters}",
                       int((batch - fit) * (per_sample + prefetch)), "medium", weight,
                       values={"batch_size": fit, "iter_size": iters})
        if fit < 1:
            return Fix("reduce_batch", f"batch_size {batch} -> 1 may still not fit ({how}): see "
                       f"the other fixes", int((batch - 1) * (per_sample + prefetch)), "low", weight - 10,
                       values={"batch_size": 1})
    if batch and facts.prefetch_batch and r.phase.startswith("net_setup") and \
            (r.allocation or "").endswith("prefetch batches"):
        sample = facts.data_sample or facts.prefetch_batch // batch
        per = 5 * sample  # 4 prefetched batches (data_param.prefetch) and the top's own
        if capacity:
            fit = max(1, int(capacity // 2 // per))
            detail = (f"batch_size {batch} -> at most about {fit}: one batch of data is "
                      f"{human(facts.prefetch_batch)} and the data layer holds it 4-5 times (prefetch "
                      f"+ top) before any other blob; {fit} keeps them under half of {human(capacity)}")
            return Fix("reduce_batch", detail + f"; iter_size {math.ceil(batch / fit)} keeps the "
                       f"effective batch", (batch - fit) * per, "medium", weight + 5,
                       values={"batch_size": fit, "iter_size": math.ceil(batch / fit)})
        return Fix("reduce_batch", f"lower batch_size {batch} by far: one batch of data is "
                   f"{human(facts.prefetch_batch)} ({human(sample)} a sample) and the data layer holds "
                   f"it 4-5 times (data_param.prefetch + the top) before any other blob, "
                   f"{human(per * batch)} at this batch; each GiB of the card holds the data batches "
                   f"of at most {2**30 // per} samples (estimate); iter_size keeps the effective batch",
                   None, "medium", weight + 5)
    shown = f" (now {batch})" if batch else ""
    per = f"; each sample costs about {human(int(2 * figure / batch))} of activations and gradients " \
          f"by Caffe's figure (estimate)" if batch and figure and r.scenario != "inference" else ""
    cap = "" if capacity else "; the card's size is not in the log: give --gpu-mem for the batch that fits"
    return Fix("reduce_batch", f"lower batch_size{shown}: activations, their gradients and the data "
               f"batches grow with it{per}; use iter_size to keep the effective batch (batch_size x "
               f"iter_size samples per update){cap}", None, "low", weight)


def _test_fixes(r: FailureReport, facts: LogFacts, capacity: Optional[int]) -> list[Fix]:
    out = []
    first = r.phase_text.startswith("first")
    tb, fig = facts.test_batch, facts.test_figure
    if tb and fig and tb > 1:
        new = max(1, tb // 4)
        saves = int(fig * (tb - new) / tb)
        out.append(Fix("reduce_test_batch", f"test batch {tb} -> {new} (test_iter x{math.ceil(tb / new)} to "
                       f"test as many images): the test net's blobs are {human(fig)} by Caffe's figure and "
                       f"scale with its batch; they sit on top of the resident train net (estimate)",
                       saves, "medium", 85))
    else:
        out.append(Fix("reduce_test_batch", "lower the test net's batch size (raise test_iter to test as "
                       "many): the test pass runs with the whole train net resident", None, "low", 85))
    out.append(Fix("skip_test_initialization",
                   ("test_initialization: false" if first else "a larger test_interval") +
                   " in the solver, or no test net during training (test the snapshots apart, "
                   "caffe test): the test net's activations then never sit on top of the train net's "
                   + ("(it died in the test pass at iteration 0)" if first else "(it died in a test pass)"),
                   fig, "medium" if fig else "low", 84 if first else 70))
    return out


def _workspace_fix(r: FailureReport) -> Fix:
    nv = "try_reserve" in r.message or "FindEx" in " ".join([r.allocation or ""]) or \
        "gpu_memory" in (r.source or "")
    size = f" ({human(r.requested_bytes)} asked)" if r.requested_bytes else ""
    if r.kind == "cuDNN status failure":
        why = (f"cuDNN answered {r.message.split()[-1]}: with cuDNN this is memory running out, most "
               f"often for the workspace of the (fastest) convolution algorithm it picked")
    else:
        why = f"the failed allocation is a cuDNN convolution workspace{size}"
    how = ("NVCaffe reserves the workspace of the fastest algorithm it finds (FindEx) in its memory "
           "pool: cap it (the solver's/layer's cudnn workspace limit), or run an NVCaffe release whose "
           "pool does not hold on to it" if nv else
           "cap the workspace (Caffe >= 2015-04 falls back to IMPLICIT_GEMM, which needs none, when "
           "the workspace does not fit: update an older Caffe), or set engine: CAFFE on the layer")
    return Fix("cudnn_workspace", f"{why}; {how}", r.requested_bytes, "medium", 95)


def _input_detail(r: FailureReport, facts: LogFacts, inference: bool) -> str:
    shape = ""
    if facts.prefetch_batch and facts.data_sample:
        shape = " (a data sample is " + human(facts.data_sample) + ")"
    what = ("the input resolution (a smaller image, scale or net_resolution)" if inference else
            "crop_size or the resized input size")
    return (f"lower {what}{shape}: every activation, gradient and im2col buffer shrinks with "
            f"the pixel count (half the side is a quarter of the memory)")


def _elsewhere_fixes(r: FailureReport, s: LogSummary, facts: LogFacts, capacity: Optional[int],
                     unknown: bool, inference: bool) -> list[Fix]:
    out = []
    need = None  # a lower bound of what the run needs on the GPU, from the log's figures
    parts = []
    figure = facts.train_figure or facts.figure
    if figure:
        mult = 2 if r.scenario == "train" else 1
        need = figure * mult
        parts.append(f"{human(figure)} of activations by Caffe's figure" + (" x2 with gradients" if mult == 2 else ""))
    if facts.weights:
        need = (need or 0) + facts.weights
        parts.append(f"{human(facts.weights)} of weights")
    if facts.printed:
        printed = sum(facts.printed)
        if need is None or printed > need:
            need, parts = printed, [f"{human(printed)} asked by the allocations the log printed"]
    first_alloc = r.phase.startswith("net_setup") and r.layer is not None and s.nets and \
        s.nets[0].layers and s.nets[0].layers[0].name == r.layer and len(s.nets) == 1
    no_handle = next((e for e in s.errors if e.startswith("Cannot create Cu")), None)
    if no_handle or r.kind == "cuBLAS/cuRAND status failure":
        why = (f"Caffe could not create its cuBLAS/cuRAND handles when it started (\"{no_handle}\")"
               if no_handle else f"cuBLAS/cuRAND answered {r.message.split()[-1]}, which a card with no "
               f"memory left gives when Caffe creates or uses their handles")
        out.append(Fix("free_gpu_memory", f"{why}: the card was full before this run allocated much; "
                       f"check nvidia-smi for other processes holding it", None, "medium", 92))
    if r.gpu_free_bytes is not None and r.gpu_total_bytes:
        used = r.gpu_total_bytes - r.gpu_free_bytes
        out.append(Fix("free_gpu_memory", f"the card had {human(r.gpu_free_bytes)} free of "
                       f"{human(r.gpu_total_bytes)} when {human(r.requested_bytes or 0)} was asked: "
                       f"{human(used)} was in use, by this run or others; check nvidia-smi for other "
                       f"processes on device", None, "low", 55))
    elif capacity and need and facts.weights and 2 * need + facts.context < capacity:
        # the figures are a lower bound (no im2col, workspaces, layer buffers): only a need
        # under half the card, parameters included, says the run alone should fit
        out.append(Fix("free_gpu_memory", f"the numbers say the net alone should fit: the log shows "
                       f"{' and '.join(parts)} ({human(need)}), under half of {human(capacity)} (what "
                       f"Caffe's figure leaves out is rarely as much again); check nvidia-smi for other "
                       f"processes holding the card (a second run, a notebook, a display server) first",
                       None, "medium", 88))
    else:
        why = ("the log shows nothing of the run before the failure (no set-up, iteration or stack "
               "lines): it may be the very first allocation, which fails when another process holds "
               "the card" if unknown else
               "it failed at the run's first allocation: the card may be held by another process"
               if first_alloc else
               "a small run on a busy card fails the same way" if inference else
               "memory held by another process counts against this run")
        out.append(Fix("free_gpu_memory", f"check nvidia-smi for other processes holding GPU memory "
                       f"(another training, a notebook, a display server): {why}", None, "low",
                       85 if unknown else 78 if first_alloc else 60 if inference else 30))
    if need and not (capacity and 2 * need + facts.context < capacity):
        cap = f", more than this card's {human(capacity)}" if capacity and need >= capacity else \
            "; a card with less cannot run it (if yours has more, see free_gpu_memory)"
        out.append(Fix("larger_gpu", f"this run needs at least {human(need + facts.context)} on the GPU "
                       f"({' and '.join(parts)}, {human(facts.context)} of CUDA context){cap}; at "
                       f"batch 1 (inference usually is) only a smaller input or model, or a card with "
                       f"more memory, helps",
                       None, "medium",
                       75 if capacity else 72 if inference else 45 if r.scenario == "train" else 58,
                       values={"needs_at_least_bytes": need + facts.context}))
    elif inference and r.scenario == "inference":
        out.append(Fix("larger_gpu", "an inference run is usually at batch 1 already: if a smaller input "
                       "does not do, the net needs a card with more memory (or a smaller model)",
                       None, "low", 45))
    return out


def _host_fixes(r: FailureReport, s: LogSummary) -> list[Fix]:
    facts = LogFacts.of(s)
    out = []
    shared = r.card is not None and r.card.shared_memory
    where = ("this board's one memory, shared by the CPU and the GPU" if shared else "host memory (RAM)")
    batch = facts.train_batch or facts.figure_batch
    out.append(Fix("reduce_batch", f"lower batch_size{f' (now {batch})' if batch else ''}: the blobs of "
                   f"a CPU run, and the host side of every blob in GPU mode, live in {where}; iter_size "
                   f"keeps the effective batch", None, "medium" if r.requested_bytes else "low", 80))
    if facts.prefetch_batch:
        out.append(Fix("reduce_prefetch", f"data_param {{ prefetch: 1 }}: each prefetched batch is "
                       f"{human(facts.prefetch_batch)} of host memory (4 by default)",
                       3 * facts.prefetch_batch, "medium", 70))
    killed = r.kind.startswith("host out-of-memory")
    out.append(Fix("free_host_memory", ("the kernel's OOM killer stopped the process: " if killed else "")
                   + f"close other programs, or add RAM/swap: {where} ran out"
                   + (" (a Jetson board gives the GPU whatever the CPU leaves)" if shared else ""),
                   None, "low", 65 if killed else 50))
    if r.phase == "test_pass":
        out += _test_fixes(r, facts, None)
    return out


def _foreign_fixes(r: FailureReport) -> list[Fix]:
    """Another framework's report (TensorFlow, PyTorch): its allocator's figures only."""
    outside = any("taken outside" in e for e in r.explanation)
    size = f" (it asked for {human(r.requested_bytes)})" if r.requested_bytes else ""
    return [Fix("free_gpu_memory", f"{r.framework}'s allocator held far less than its limit when the "
                f"driver refused memory: another process (or a second session or allocator in this one) "
                f"holds the GPU; check nvidia-smi" if outside else
                f"check nvidia-smi for other processes holding GPU memory{size}", None,
                "medium" if outside else "low", 90 if outside else 40),
            Fix("reduce_batch", f"lower the batch size: {r.framework}'s activations and gradients grow "
                f"with it{size}", None, "low", 80)]
