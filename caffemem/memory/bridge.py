"""From the figure Caffe prints to what Caffe allocates, in plain words; and does it fit.

- :func:`bridge`: a short text from "Memory required for data" (top data elements counted
  once per top: in-place and split tops again, nothing else) to the modeled peak, kind by
  kind, naming the biggest layer of each kind;
- :func:`fits`: the peak against a memory size: fits or not, by how much, top contributors;
- :func:`naive_estimates`: what the usual estimates say, for ``--compare-estimates``:
  Caffe's log line, pytorch-summary's rule (forward activations x 2 + params + input) and
  convnet-burden's (forward feature maps + params).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..blobshape import count
from ..buffers import Kind
from ..units import human
from .report import MemoryReport

_KIND_WORDS = {
    Kind.ACTIVATIONS: "activations", Kind.DIFFS: "diffs", Kind.PARAMS: "params",
    Kind.PARAM_DIFFS: "param diffs", Kind.HISTORY: "solver history", Kind.IM2COL: "im2col",
    Kind.INTERNAL: "layer buffers", Kind.WORKSPACE: "cuDNN workspace",
    Kind.PREFETCH: "prefetch", Kind.BOOKKEEPING: "layer bookkeeping (estimate)",
    Kind.SOLVER_COPIES: "the solver's temporary copies (test scores, snapshot)",
    Kind.RUNTIME: "cudaMalloc rounding and cuBLAS (estimates)", Kind.CONTEXT: "CUDA context",
}


def _gib(n: int) -> str:
    return human(n)


def _biggest_layer(report: MemoryReport, kind: str) -> tuple[str, int, str]:
    side_dev = report.gpu
    best = ("", 0, "")
    for net in report.nets:
        for l in net.layers:
            v = (l.device if side_dev else l.host).get(kind, 0)
            if v > best[1]:
                best = (l.name, v, l.type)
    return best


def bridge(report: MemoryReport) -> str:
    """Caffe's "Memory required for data" line(s) and the modeled peak, explained."""
    lines = []
    figures = [(n.label, n.log_figure) for n in report.nets]
    total_log = sum(v for _, v in figures)
    per = ", ".join(f"{label} {human(v)}" for label, v in figures)
    lines.append(
        f"Caffe's log: \"Memory required for data\" {human(total_log)} ({per}). It counts each "
        f"top's data once per top (in-place and split tops again, though they share memory) "
        f"and nothing else: no diffs, params, solver state, layer buffers or prefetch.")
    side = "device" if report.gpu else "host"
    act = sum(n.by_kind(side).get(Kind.ACTIVATIONS, 0) for n in report.nets)
    if total_log and act < total_log:
        lines.append(f"Of the log's figure only {human(act)} is really allocated as top data "
                     f"(shared tops, data-layer tops that live in the prefetch batches, blobs "
                     f"no layer reads, test nets that never run).")
    what = {"train": "training", "time": "caffe time (forward + backward)",
            "test": "forward only"}[report.env.scenario]
    where = f"per GPU (busiest of {len(report.gpus)})" if len(report.gpus) > 1 else \
        ("on the GPU" if report.gpu else "host heap")
    parts = []
    for kind, v in sorted(report.by_kind.items(), key=lambda kv: -kv[1]):
        text = f"{_KIND_WORDS.get(kind, kind)} {human(v)}"
        if kind not in (Kind.CONTEXT,):
            name, lv, ltype = _biggest_layer(report, kind)
            if name and lv * 4 >= v and lv != v:
                text += f" ({name} {human(lv)})"
            elif name and lv == v and kind in (Kind.IM2COL, Kind.WORKSPACE, Kind.INTERNAL):
                text += f" ({name})"
        parts.append(text)
    lines.append(f"Modeled peak, {what}, {report.env.mode} mode, {where}: "
                 f"{human(report.total_bytes)} = " + " + ".join(parts) + ".")
    if report.gpu:
        lines.append(f"Of it, Caffe asks cudaMalloc for {human(report.allocated_bytes)} "
                     f"({report.allocated_bytes:,} bytes, the requested bytes: exact); a real "
                     f"card adds, per GPU:")
        lines.extend(f"  {a.line()}" for a in report.addons)
        lines.append(f"Host RAM (whole process, beyond its own start-up): "
                     f"{human(report.host_need_bytes)} = pinned {human(report.host_bytes)} "
                     f"(cudaMallocHost: the host side of every blob touched on the host, exact) "
                     f"+ heap {human(report.host_heap_bytes)} (layer objects, "
                     f"{report.env.bookkeeping_per_layer:,} B per layer: an estimate).")
    elif report.env.bookkeeping_per_layer:
        book = report.by_kind.get(Kind.BOOKKEEPING, 0)
        lines.append(f"The heap includes {human(book)} of layer bookkeeping (objects, protobuf "
                     f"copies: {report.env.bookkeeping_per_layer:,} B per layer, an estimate "
                     f"calibrated on measured heaps); the rest is what Caffe's blobs and buffers "
                     f"request.")
    lines.append(f"The peak is reached during: {report.peak_moment}.")
    for a in report.assumptions:
        lines.append(f"Assumption: {a}.")
    return "\n".join(lines)


@dataclass
class Fit:
    """:func:`fits`' answer."""

    fits: bool
    needed: int
    available: int
    top: list[tuple[str, int]] = field(default_factory=list)

    @property
    def margin(self) -> int:
        """Bytes left over (negative: bytes missing)."""
        return self.available - self.needed

    def message(self) -> str:
        head = (f"fits: {human(self.needed)} of {human(self.available)}, "
                f"{human(self.margin)} to spare" if self.fits else
                f"does not fit: needs {human(self.needed)}, {human(-self.margin)} more than "
                f"the {human(self.available)} available")
        if self.top:
            head += "; biggest: " + ", ".join(f"{n} {human(v)}" for n, v in self.top)
        return head

    def to_dict(self) -> dict:
        return {"fits": self.fits, "needed_bytes": self.needed, "available_bytes": self.available,
                "margin_bytes": self.margin,
                "top_contributors": [{"what": n, "bytes": v} for n, v in self.top]}


def fits(report: MemoryReport, gpu_mem_bytes: int, top: int = 5) -> Fit:
    """Does the modeled peak (per GPU, context included; the heap in cpu mode) fit in
    ``gpu_mem_bytes``?"""
    needed = max([g.total for g in report.gpus] or [report.total_bytes])
    return Fit(needed <= gpu_mem_bytes, needed, int(gpu_mem_bytes), report.top_contributors(top))


@dataclass
class NaiveEstimate:
    """One rule-of-thumb estimate, for comparison with the model."""

    name: str
    bytes: int
    how: str

    def to_dict(self) -> dict:
        return {"name": self.name, "bytes": self.bytes, "how": self.how}


def naive_estimates(nets: list) -> list[NaiveEstimate]:
    """Estimates people usually make, from the first (train or only) net and Caffe's log."""
    out = []
    log_total = sum(n.memory_required_for_data for n in nets)
    out.append(NaiveEstimate(
        "caffe log", log_total,
        "sum of Caffe's last \"Memory required for data\" per net: every top's data, in-place "
        "and split tops counted again"))
    net = nets[0]
    params = sum(count(p.shape) for l in net.layers for p in l.params if p.owner is None) * 4
    # the net's input: the tops of the layers that take no bottom and hold no parameter (data
    # layers, BVLC's and the forks', and Python data layers; not a Parameter layer)
    feeds = [not l.bottoms and not l.params for l in net.layers]
    inputs = sum(net.blobs[t].count for l, f in zip(net.layers, feeds) if f for t in l.tops) * 4
    outputs = sum(net.blobs[t].count for l, f in zip(net.layers, feeds)
                  if not f and not l.inserted_split for t in l.tops) * 4
    out.append(NaiveEstimate(
        "pytorch-summary", inputs + 2 * outputs + params,
        "input + 2 x every layer's output (forward and backward) + params, as "
        "torchsummary prints 'Estimated Total Size'"))
    seen, features = set(), 0
    for l in net.layers:
        for t in l.tops:
            b = net.blobs[t]
            root = b.shares_data_of if b.shares_data_of is not None else b.id
            if root not in seen:
                seen.add(root)
                features += net.blobs[root].count * 4
    out.append(NaiveEstimate(
        "convnet-burden", features + params,
        "forward feature maps (each distinct blob once) + params, as convnet-burden "
        "reports memory"))
    return out
