"""Which allocation failed: the log's evidence against the allocation model's replay.

The replay (:func:`caffemem.memory.replay`) lists every allocation Caffe makes in a run, in
order: blob data and diffs, parameters, their diffs and solver history, im2col and other
layer buffers, prefetch batches.  The stack frames and the phase say which call was running
(the layer class, Forward or Backward, ``mutable_gpu_diff`` or ``_data``, the solver's update,
a test pass), the log may say the size (NVCaffe's "Failed to allocate N", "host allocation of
size N", a debugging print): every allocation the replay makes in such a call is a
candidate.  With the card's size the replay decides: the first allocation that takes the
live bytes over it is the one that failed (if the evidence agrees).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .logparse.failure import FailureReport

_PASSES = (" SetUp", " Forward", " Backward")


@dataclass
class Alloc:
    """One allocation of the replay, with the call that made it."""

    order: int
    net: str  # "train net", "test net #0", "net"
    layer: Optional[str]  # the layer whose call allocated (None: the solver's own steps)
    layer_type: Optional[str]
    call: str  # "SetUp", "Forward", "Backward", "update", "ClearParamDiffs", "set up", ...
    what: str  # the memory, e.g. "norm1 scale", "conv2 diff", "fc6 param 0 solver history"
    kind: str
    nbytes: int
    live_before: int
    moment: str  # the replay's moment, e.g. "test net #0: test pass"
    owner: Optional[str] = None  # the layer the memory belongs to (a param's layer, a blob's producer)

    @property
    def phase(self) -> str:
        """The failure phase (logparse.failure.PHASES) an allocation here would give."""
        if self.call in ("SetUp", "set up", "ShareWeights", "multi-GPU parameter buffers"):
            return "net_setup_test" if self.net.startswith("test") else "net_setup_train"
        if self.call in ("update", "ClearParamDiffs"):
            return "solver_update"
        if self.call == "Backward" or "backward" in self.moment:
            return "backward"
        if self.net.startswith("test") and "test pass" in self.moment:
            return "test_pass"
        return "forward"

    def to_dict(self) -> dict:
        return {"name": self.what, "kind": self.kind, "bytes": self.nbytes, "layer": self.layer,
                "layer_type": self.layer_type, "net": self.net, "call": self.call,
                "owner": self.owner, "live_before_bytes": self.live_before}


def allocations(rp, side: Optional[str] = None, overhead: int = 0) -> list[Alloc]:
    """Every allocation of a replay on ``side`` (default: the env's device; GPU 0), in order,
    with the live bytes (plus ``overhead``) before it."""
    side = side or ("gpu" if rp.env.gpu else "host")
    types: dict[str, dict[str, str]] = {}
    names: dict[str, list[str]] = {}
    for sim in list(rp.sims) + [x for w in rp.workers for x in [w.train] + list(w.tests)]:
        types.setdefault(sim.label, {l.name: l.type for l in sim.net.layers})
        names.setdefault(sim.label, [l.name for l in sim.net.layers])
    out, live = [], overhead
    for t, delta, mem in rp.memory.events(side, gpu=0 if side == "gpu" else None):
        if delta > 0:
            by = mem.host_by if side == "host" else mem.dev_by
            net, _, rest = by.partition(": ")
            layer, call = None, rest
            for p in _PASSES:
                if rest.endswith(p):
                    layer, call = rest[: -len(p)], p.strip()
                    break
            owners = names.get(mem.net, [])
            owner = owners[mem.layer] if 0 <= mem.layer < len(owners) else None
            out.append(Alloc(len(out), net, layer, types.get(net, {}).get(layer) if layer else None,
                             call, mem.name, mem.kind, delta, live, rp.memory.moment_of(t), owner))
        live += delta
    return out


def matches(a: Alloc, r: FailureReport) -> bool:
    """Does the failure's evidence allow this allocation to be the one that failed?"""
    if r.phase not in ("unknown", a.phase) and not (r.phase == "data_prefetch" and a.phase == "forward"):
        return False
    if r.layer_class and a.layer_type and not _same_type(r.layer_class, a.layer_type):
        return False
    if r.layer_class and a.layer is None and r.phase != "solver_update":
        return False
    if r.layer and a.layer and r.layer != a.layer:
        return False
    if r.diff is True and a.kind not in ("diffs", "param_diffs"):
        return False
    if r.diff is False and a.kind in ("diffs", "param_diffs") and r.phase != "solver_update":
        return False
    alloc = r.allocation or ""
    if "im2col" in alloc and a.kind != "im2col":
        return False
    if "solver's history" in alloc and a.kind != "history":
        return False
    if "parameter gradients" in alloc and a.kind != "param_diffs":
        return False
    if "workspace" in alloc and a.kind != "workspace":
        return False
    if r.requested_bytes and a.nbytes != r.requested_bytes:
        return False
    return True


def _same_type(layer_class: str, layer_type: str) -> bool:
    c, t = layer_class.lower(), layer_type.lower()
    return c == t or (c == "data" and t in ("data", "imagedata", "windowdata", "annotateddata"))


@dataclass
class Culprit:
    decided: Optional[Alloc]  # the allocation that failed, when the evidence (and size) decide
    candidates: list[Alloc]  # ranked: the evidence allows each
    over: Optional[Alloc]  # the replay's first allocation over the capacity (if given)
    note: str = ""


def find_culprit(rp, r: FailureReport, capacity: Optional[int], overhead: int = 0,
                 side: Optional[str] = None) -> Culprit:
    """The allocation that failed (see the module docstring).  ``capacity``: the card's or
    heap's bytes; ``overhead``: what the replay does not hold (the CUDA context)."""
    allocs = allocations(rp, side, overhead)
    cands = [a for a in allocs if matches(a, r)]
    over = None
    if capacity:
        over = next((a for a in allocs if a.nbytes >= 1 << 20 and a.live_before + a.nbytes > capacity), None)
    informative = r.phase != "unknown" or r.layer_class or r.requested_bytes
    ranked = sorted(cands, key=lambda a: (-a.nbytes, a.order)) if informative else []
    if over is not None and (not informative or over in cands):
        return Culprit(over, ranked, over, "with the card's size the replay decides: this is the first "
                       "allocation that goes over it" + (", and the log's evidence (phase, stack, size) agrees" if informative else ""))
    if len(cands) == 1 and informative:
        return Culprit(cands[0], ranked, over, "the only allocation of the model that fits the log's evidence")
    note = ""
    if over is not None:
        if cands and over.order > max(a.order for a in cands):
            where = "later"
        elif not cands or over.order < min(a.order for a in cands):
            where = "earlier"
        else:
            where = "between"
        why = {"later": "memory the model does not count was in use (another process, a second net, "
                        "the context)",
               "earlier": "the model's bound is loose here (cuDNN workspaces, the CUDA context: "
                          "--context-mib, --cudnn-workspace-mib)",
               "between": "within the allocations the log allows; which side the run fell on is "
                          "set by what the model estimates (the CUDA context: --context-mib; cuDNN "
                          "workspaces: --cudnn-workspace-mib)"}[where]
        at = "between the log's candidates" if where == "between" else f"{where} than the log shows"
        note = f"with this capacity the model runs out {at} ({over.what} in {over.net}, {over.call}): {why}"
    same = {(a.what, a.nbytes) for a in cands}
    if len(same) == 1 and cands:  # the same memory (e.g. iterations) counts once
        return Culprit(cands[0], ranked[:1], over, note or "the only allocation of the model that fits the log's evidence")
    return Culprit(None, ranked, over, note)
