"""The result of the allocation model: bytes per net, per layer and per kind, and the peak.

All sizes are exact Python ints (bytes).  In gpu mode ``device`` holds cudaMalloc'ed bytes
and ``host`` pinned host bytes (cudaMallocHost); in cpu mode everything is ``host`` (malloc)
and ``device`` is empty.  Per-layer and per-net figures are what is live at the moment of the
peak (of the device in gpu mode, of the host heap in cpu mode), so they add up to the peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..buffers import Kind, MemoryEnv


def _total(d: dict[str, int]) -> int:
    return sum(d.values())


def _clean(d: dict[str, int]) -> dict[str, int]:
    return {k: d[k] for k in Kind.ALL if d.get(k)}


@dataclass
class LayerMemory:
    """One layer's bytes by kind, and what the model knows about it."""

    net: str
    index: int
    name: str
    type: str
    engine: str
    device: dict[str, int] = field(default_factory=dict)
    host: dict[str, int] = field(default_factory=dict)
    #: cuDNN handles the layer creates (3 x group per cuDNN convolution, 1 per other cuDNN layer)
    handles: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def device_bytes(self) -> int:
        return _total(self.device)

    @property
    def host_bytes(self) -> int:
        return _total(self.host)

    def to_dict(self, gpu: bool) -> dict:
        main = self.device if gpu else self.host
        d = {"index": self.index, "name": self.name, "type": self.type, "engine": self.engine,
             "bytes": _clean(main), "total_bytes": _total(main)}
        if gpu:
            d["host_bytes"] = _clean(self.host)
        if self.handles:
            d["cudnn_handles"] = self.handles
        if self.notes:
            d["notes"] = list(self.notes)
        return d


@dataclass
class NetMemory:
    """One net of the scenario (the train net, a test net, or the one net)."""

    label: str
    name: str
    phase: str
    #: Caffe's last "Memory required for data" for this net (bytes)
    log_figure: int
    #: does the scenario run this net (a test net may only be built)?
    runs: bool
    layers: list[LayerMemory] = field(default_factory=list)

    def by_kind(self, side: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for l in self.layers:
            for k, v in (l.device if side == "device" else l.host).items():
                out[k] = out.get(k, 0) + v
        return _clean(out)

    def total(self, side: str) -> int:
        return _total(self.by_kind(side))

    def to_dict(self, gpu: bool) -> dict:
        main = "device" if gpu else "host"
        d = {"label": self.label, "name": self.name, "phase": self.phase, "runs": self.runs,
             "log_memory_required_for_data": self.log_figure,
             "bytes": self.by_kind(main), "total_bytes": self.total(main),
             "layers": [l.to_dict(gpu) for l in self.layers]}
        if gpu:
            d["host_bytes"] = self.by_kind("host")
        return d


@dataclass
class GpuMemory:
    """One GPU of a (multi-GPU) run."""

    index: int
    role: str  # "root" (runs the test nets) or "worker"
    allocated: int  # peak cudaMalloc'ed bytes
    context: int
    by_kind: dict[str, int] = field(default_factory=dict)
    #: a real card's add-ons (:mod:`caffemem.memory.card`), the CUDA context among them
    addons: list = field(default_factory=list)

    @property
    def runtime(self) -> int:
        """The add-ons besides the context (cudaMalloc rounding, cuBLAS workspace)."""
        return sum(a.bytes for a in self.addons if a.name != "CUDA context")

    @property
    def total(self) -> int:
        return self.allocated + self.context + self.runtime

    def to_dict(self) -> dict:
        return {"index": self.index, "role": self.role, "allocated_bytes": self.allocated,
                "context_bytes": self.context, "card_addons_bytes": self.runtime,
                "total_bytes": self.total, "bytes": _clean(self.by_kind)}


@dataclass
class MemoryReport:
    """:func:`caffemem.memory.model_memory`'s answer.

    - ``total_bytes``: the modeled peak for the scenario and mode: in gpu mode the device
      peak of the busiest GPU *plus* a real card's add-ons (``addons``: the CUDA context,
      cudaMalloc rounding, cuBLAS workspace); in cpu mode the heap peak;
    - ``allocated_bytes``: the bytes Caffe requests (cudaMalloc in gpu mode, exact: what the
      stub-CUDA oracle counts), without the add-ons;
    - ``host_bytes``: pinned host memory (gpu mode, whole process) or the heap (cpu mode);
    - ``host_heap_bytes``: in gpu mode, the plain host heap beside the pinned bytes (the
      layers' bookkeeping, an estimate); ``host_need_bytes`` is what host RAM must hold;
    - ``by_kind``: ``total_bytes`` split by kind (the context as ``context``);
    - ``nets``/``layers``: who holds those bytes at the peak;
    - ``peak_moment``: the phase of the run in which the peak is reached.
    """

    env: MemoryEnv
    nets: list[NetMemory]
    allocated_bytes: int
    host_bytes: int
    context_bytes: int
    peak_moment: str
    host_peak_moment: str
    gpus: list[GpuMemory] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    #: the root GPU's add-ons (:class:`caffemem.memory.card.AddOn`), gpu mode
    addons: list = field(default_factory=list)
    host_heap_bytes: int = 0

    @property
    def gpu(self) -> bool:
        return self.env.gpu

    @property
    def runtime_bytes(self) -> int:
        """The root GPU's add-ons besides the context (cudaMalloc rounding, cuBLAS)."""
        return self.gpus[0].runtime if self.gpus else 0

    @property
    def total_bytes(self) -> int:
        if not self.gpu:
            return self.allocated_bytes
        return self.allocated_bytes + self.context_bytes + self.runtime_bytes

    @property
    def host_need_bytes(self) -> int:
        """Host RAM the run needs beyond the process's own: the heap (cpu mode), or the
        pinned bytes plus the plain heap (gpu mode)."""
        return self.host_bytes + self.host_heap_bytes

    @property
    def by_kind(self) -> dict[str, int]:
        side = "device" if self.gpu else "host"
        out: dict[str, int] = {}
        for n in self.nets:
            for k, v in n.by_kind(side).items():
                out[k] = out.get(k, 0) + v
        if self.gpu and self.context_bytes:
            out[Kind.CONTEXT] = self.context_bytes
        if self.gpu and self.runtime_bytes:
            out[Kind.RUNTIME] = self.runtime_bytes
        return _clean(out)

    @property
    def host_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nets:
            for k, v in n.by_kind("host").items():
                out[k] = out.get(k, 0) + v
        return _clean(out)

    def layers(self) -> list[LayerMemory]:
        return [l for n in self.nets for l in n.layers]

    def net(self, label: str) -> NetMemory:
        for n in self.nets:
            if n.label == label:
                return n
        raise KeyError(label)

    def layer(self, name: str, net: Optional[str] = None) -> LayerMemory:
        for n in self.nets:
            if net is not None and n.label != net:
                continue
            for l in n.layers:
                if l.name == name:
                    return l
        raise KeyError(name)

    def top_contributors(self, n: int = 5) -> list[tuple[str, int]]:
        """The ``n`` biggest (net/layer kind, bytes) entries of the peak."""
        side = "device" if self.gpu else "host"
        items = []
        for net in self.nets:
            for l in net.layers:
                for k, v in (l.device if side == "device" else l.host).items():
                    items.append((f"{l.name} {k}" + (f" ({net.label})" if len(self.nets) > 1 else ""), v))
        items.sort(key=lambda kv: -kv[1])
        return items[:n]

    def to_dict(self) -> dict:
        e = self.env
        d = {
            "scenario": e.scenario, "mode": e.mode, "engine": e.engine if e.gpu else "caffe",
            "solver_type": e.solver_type if e.scenario == "train" else None,
            "gpus": e.gpus if e.scenario == "train" else 1,
            "total_bytes": self.total_bytes,
            "allocated_bytes": self.allocated_bytes,
            "context_bytes": self.context_bytes if self.gpu else 0,
            "host_bytes": self.host_bytes,
            "bytes": self.by_kind,
            "peak_moment": self.peak_moment,
            "nets": [n.to_dict(self.gpu) for n in self.nets],
            "warnings": list(self.warnings),
            "assumptions": list(self.assumptions),
        }
        if self.gpu:
            d["host_bytes_by_kind"] = self.host_by_kind
            d["host_heap_bytes"] = self.host_heap_bytes
            d["host_need_bytes"] = self.host_need_bytes
            d["card_addons_bytes"] = self.runtime_bytes
            d["addons"] = [a.to_dict() for a in self.addons]
            d["per_gpu"] = [g.to_dict() for g in self.gpus]
            d["cudnn_handles"] = sum(l.handles for l in self.layers())
        return d
