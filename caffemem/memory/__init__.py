"""The allocation model: every byte Caffe really allocates, per net, per layer and per kind.

API (everything is a pure function of built nets and a :class:`MemoryEnv`; sizes are exact
ints, in bytes)::

    from caffemem.analysis import build_all, AnalysisOptions
    from caffemem.memory import MemoryEnv, model_memory, bridge, fits, naive_estimates

    nets = build_all("solver.prototxt", AnalysisOptions(...))       # train net, test nets
    env = MemoryEnv(scenario="train", mode="gpu", engine="cudnn",   # or MemoryEnv.for_solver(
                    solver_type="Adam", gpus=1)                     #    loaded.solver, ...)
    report = model_memory(nets, env)        # MemoryReport
    report.total_bytes                      # peak (gpu mode: busiest GPU incl. CUDA context)
    report.by_kind                          # {"activations": ..., "im2col": ..., ...}
    report.to_dict()                        # JSON-ready: "total_bytes", per layer "bytes"
    print(bridge(report))                   # "Memory required for data" -> modeled total
    fits(report, 12 * 2**30)                # Fit: fits?, margin, top contributors
    naive_estimates(nets)                   # what the usual rules of thumb would say
    replay(nets, env).first_allocation_over(limit)   # where a run under a limit dies

- :class:`MemoryEnv` (:mod:`caffemem.buffers`, shared with the layer rules): scenario
  ``train``/``time``/``test``, mode ``gpu``/``cpu``, engine ``cudnn``/``caffe``, solver type,
  regularization, ``gpus`` (at most :data:`~caffemem.buffers.MAX_GPUS`), ``prefetch``
  override, ``context_bytes`` (default :data:`DEFAULT_CONTEXT_MIB` MiB).
- :class:`Buffer`/:class:`Kind` (:mod:`caffemem.buffers`): a layer-private allocation, as
  rules' ``buffers(ctx, env)`` return them; kinds ``activations``, ``diffs``, ``params``,
  ``param_diffs``, ``history``, ``im2col``, ``internal``, ``workspace``, ``prefetch``,
  ``context``.
- :func:`layer_engine` (``engine.py``): CAFFE or CUDNN per layer, asked of the layer's rule.
- ``sim.py``: the SyncedMemory replay, driven by each layer's rule (what its SetUp, Forward
  and Backward touch, which memory it shares, its buffers); ``model.py``: the scenarios
  (:func:`model_memory`, :func:`replay`); ``report.py``: :class:`MemoryReport`
  (``total_bytes``, ``allocated_bytes``, ``host_bytes``, ``by_kind``, ``nets[].layers[]``
  with ``device``/``host`` bytes by kind, ``gpus`` per GPU, ``peak_moment``, ``warnings``,
  ``assumptions``, ``to_dict()``).
- ``bridge.py``: :func:`bridge`, :func:`fits`, :func:`naive_estimates`.

Imports go one way: this package reads the rules' interface (:mod:`caffemem.layers.base`) and
the leaves :mod:`caffemem.blobshape` and :mod:`caffemem.buffers`; no rule imports it.
``bridge``/``fits``/``naive_estimates`` are the functions (the submodule
``caffemem.memory.bridge`` is shadowed by the function of the same name).
"""

from __future__ import annotations

from ..buffers import DEFAULT_CONTEXT_MIB, Buffer, BufferSet, Kind, MemoryEnv
from .bridge import Fit, NaiveEstimate, bridge, fits, naive_estimates
from .engine import layer_engine
from .model import Allocation, Replay, history_sets, model_memory, replay
from .report import GpuMemory, LayerMemory, MemoryReport, NetMemory

__all__ = ["DEFAULT_CONTEXT_MIB", "Buffer", "BufferSet", "Kind", "MemoryEnv", "Fit",
           "NaiveEstimate", "bridge", "fits", "naive_estimates", "model_memory", "history_sets",
           "replay", "Replay", "Allocation", "MemoryReport", "NetMemory", "LayerMemory",
           "GpuMemory", "layer_engine"]
