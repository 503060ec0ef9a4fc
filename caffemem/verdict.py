"""The verdict: what a person runs caffemem for, stated before any table.

For one net (``analyze``) a :class:`Verdict` holds the modeled total for the scenario in
force, Caffe's own log figure beside it, and with a capacity whether it fits, by how much and
the largest batch that does; for two nets (``diff``) a :class:`DiffVerdict` holds both totals
and both fits.  Both carry what the figures rest on: the scenario, mode and engine in force
(and why that scenario), an :class:`EngineCheck` when Caffe's two engines disagree enough to
matter, and every :class:`Assumption` that stands in for data, with the option that corrects
it.  The text header and the JSON of a command are both built from these objects, never one
from the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from .units import exact, human

#: totals of the two engines further apart than this (relative to the smaller) are reported
ENGINE_APART = 0.10
ENGINE_WORDS = {"cudnn": "cuDNN", "caffe": "Caffe's engine"}
WHAT_DECIDES_ENGINE = (
    "your Caffe decides: a build with cuDNN (USE_CUDNN) runs it unless a layer says "
    "'engine: CAFFE'; a build without cuDNN, as many forks are, runs Caffe's im2col engine; "
    "--engine caffe|cudnn picks the one modeled")


@dataclass
class Assumption:
    """A figure that stands in for data caffemem cannot see, and how to give the real one."""

    what: str
    fix: Optional[str] = None  # the option that corrects it, e.g. "--input label=1,1,B,8"
    nets: list[str] = field(default_factory=list)
    layer: Optional[str] = None

    def text(self) -> str:
        where = f" ({', '.join(self.nets)})" if self.nets and self.nets != ["net"] else ""
        fix = self.fix
        if fix and fix.startswith("--input ") and any(n.startswith("test") for n in self.nets):
            fix += f" (--test-input {fix[len('--input '):]} for the test nets when their data differ)"
        return f"assumed{where}: {self.what}" + (f"; correct it with {fix}" if fix else "")

    def to_dict(self) -> dict:
        return {"what": self.what, "fix": self.fix, "nets": list(self.nets), "layer": self.layer}


def net_assumptions(nets) -> list[Assumption]:
    """What the layer rules assumed while building ``nets`` (a top given by ``--input`` is
    not assumed), one entry per assumption with the nets it applies to."""
    out: dict[tuple, Assumption] = {}
    for net in nets:
        for layer in net.layers:
            ctx = layer.ctx
            for top, what, fix in getattr(ctx, "assumptions", ()):
                if top in ctx.tops and ctx.tops.index(top) in ctx.overrides:
                    continue
                text = (f"top '{top}' of layer '{layer.name}' ({layer.type}) is {what}" if top else
                        f"layer '{layer.name}' ({layer.type}): {what}")
                a = out.setdefault((text, fix), Assumption(text, fix, [], layer.name))
                if net.display_label not in a.nets:
                    a.nets.append(net.display_label)
    return list(out.values())


_MODEL_FIXES = (("context", "--context-mib MIB"), ("workspace", "--cudnn-workspace-mib MIB"))


def model_assumptions(report) -> list[Assumption]:
    """The allocation model's own assumptions (CUDA context, cuDNN workspaces, ...)."""
    out = []
    for text in report.assumptions:
        fix = next((f for key, f in _MODEL_FIXES if key in text.split(":")[0].lower()
                    or key in text.lower().split("(")[0]), None)
        out.append(Assumption(text, fix))
    return out


def needed_bytes(report) -> int:
    """What must fit in one GPU's memory: the busiest GPU (context included), or the heap."""
    return max([g.total for g in report.gpus] or [report.total_bytes])


def _sets_engine(param) -> bool:
    """Does the LayerParameter set an ``engine:`` in one of its ``*_param`` messages?"""
    from google.protobuf.message import Message

    for _, value in param.ListFields():
        if (isinstance(value, Message) and "engine" in value.DESCRIPTOR.fields_by_name
                and value.HasField("engine")):
            return True
    return False


def _engine_layers(nets) -> tuple[int, int]:
    """(layers whose engine the Caffe build decides, layers that set it in the prototxt):
    a layer runs cuDNN in a cuDNN build and Caffe's own code without one, unless it says."""
    from .buffers import MemoryEnv
    from .memory import layer_engine

    with_cudnn, without = MemoryEnv(engine="cudnn"), MemoryEnv(engine="caffe")
    free = fixed = 0
    for net in nets:
        for l in net.layers:
            if _sets_engine(l.ctx.param):
                fixed += 1
            elif layer_engine(l.type, l.ctx.param, with_cudnn) != layer_engine(l.type, l.ctx.param, without):
                free += 1
    return free, fixed


def engine_totals(nets, env, report, models=None, free: Optional[int] = None) -> Optional[dict[str, int]]:
    """Each engine's needed bytes for ``nets`` (``report`` is ``env``'s own), or None when
    the engine cannot matter (cpu mode, or no layer whose engine the build decides).
    ``models``: a :class:`caffemem.memory.model.Models` of ``nets`` that may already hold
    the other engine's model (the HTML report's variant) or keeps it for later; ``free``:
    ``_engine_layers(nets)[0]`` when the caller has it."""
    from .memory.model import Models
    from .memory.sim import same_replay

    if not env.gpu:
        return None
    if free is None:
        free = _engine_layers(nets)[0]
    if not free:
        return None
    other = "caffe" if env.engine == "cudnn" else "cudnn"
    other_env = env.with_(engine=other)
    needed = needed_bytes(report)
    if all(same_replay(net, env, other_env) for net in nets):
        return {env.engine: needed, other: needed}  # the same replay, the same bytes
    models = models if models is not None else Models(nets)
    return {env.engine: needed, other: models.needed(other_env)}


@dataclass
class EngineCheck:
    """cuDNN against Caffe's own engine, for one net or for both of a comparison."""

    modeled: str
    #: side label ("" for one net, "old"/"new") -> engine -> needed bytes
    totals: dict[str, dict[str, int]]
    capacity: Optional[int] = None
    #: layers that set their own engine in the prototxt (the build does not decide those)
    fixed_layers: int = 0

    @property
    def other(self) -> str:
        return "caffe" if self.modeled == "cudnn" else "cudnn"

    @property
    def apart(self) -> float:
        """The largest relative gap between the engines' totals, over the sides."""
        gaps = [abs(t["cudnn"] - t["caffe"]) / max(1, min(t.values())) for t in self.totals.values()]
        return max(gaps or [0.0])

    def verdict_changes(self) -> list[str]:
        """Which verdicts the engine flips: a side's fit, or which of two nets is larger."""
        out = []
        if self.capacity:
            for side, t in self.totals.items():
                if (t["cudnn"] <= self.capacity) != (t["caffe"] <= self.capacity):
                    out.append(f"whether {side + ' ' if side else ''}fits".replace("whether fits", "whether it fits"))
        if set(self.totals) == {"old", "new"}:
            sign = {e: (self.totals["new"][e] > self.totals["old"][e]) - (self.totals["new"][e] < self.totals["old"][e])
                    for e in ("cudnn", "caffe")}
            if sign["cudnn"] != sign["caffe"]:
                out.append("which net is larger")
        return out

    @property
    def sensitive(self) -> bool:
        return self.apart > ENGINE_APART or bool(self.verdict_changes())

    def _figures(self, engine: str) -> str:
        t = {side: v[engine] for side, v in self.totals.items()}
        if set(t) == {"old", "new"}:
            rel = ">" if t["old"] > t["new"] else "<" if t["old"] < t["new"] else "="
            text = f"old {human(t['old'])} {rel} new {human(t['new'])}"
        else:
            text = human(next(iter(t.values())))
        if self.capacity:
            fit = [f"{side + ' ' if side else ''}{'fits' if v <= self.capacity else 'does not fit'}"
                   for side, v in t.items()]
            text += f" ({', '.join(fit)} in {human(self.capacity)})"
        return text

    def short(self) -> str:
        """Both engines' figures, and what they decide."""
        changes = self.verdict_changes()
        head = (f"The engine decides {' and '.join(changes)}" if changes else
                f"The engine changes the total by {self.apart:.0%}")
        return (f"{head}: {ENGINE_WORDS['cudnn']} {self._figures('cudnn')}, "
                f"{ENGINE_WORDS['caffe']} {self._figures('caffe')} (modeled: {self.modeled})")

    def line(self) -> str:
        """:meth:`short`, then what decides the engine."""
        fixed = (f"; {self.fixed_layers} layer(s) set their engine in the prototxt"
                 if self.fixed_layers else "")
        return (f"{self.short()}. {WHAT_DECIDES_ENGINE[0].upper()}{WHAT_DECIDES_ENGINE[1:]}"
                f"{fixed}.")

    def to_dict(self) -> dict:
        return {"modeled": self.modeled, "needed_bytes": self.totals,
                "apart": round(self.apart, 4), "sensitive": self.sensitive,
                "decides": self.verdict_changes(), "fixed_layers": self.fixed_layers,
                "what_decides": WHAT_DECIDES_ENGINE}


def capacity_text(capacity: int) -> str:
    typed = getattr(capacity, "typed", None)
    return f"--gpu-mem {typed} = {exact(capacity)}" if typed else exact(capacity)


@dataclass
class Verdict:
    """One file's verdict (see the module docstring)."""

    source: str
    net_name: str
    scenario: str
    scenario_why: str
    mode: str
    engine: str
    solver_type: Optional[str]
    gpus: int
    batch: Optional[int]
    total_bytes: int
    needed_bytes: int
    peak_moment: str
    log_figures: list[tuple[str, int]]
    capacity: Optional[int] = None
    largest_batch: Optional[int] = None
    largest_batch_note: str = ""
    #: a solver's test nets keep their batch while the train batch is searched
    test_nets: bool = False
    engines: Optional[EngineCheck] = None
    assumptions: list[Assumption] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: what part of the net the figures cover, when not all of it (--until, a refusal)
    scope: list[str] = field(default_factory=list)
    #: host RAM the run needs beyond the process's own (gpu mode: pinned + plain heap; cpu
    #: mode: the heap), and ``--host-mem``
    host_pinned: int = 0
    host_heap: int = 0
    host_capacity: Optional[int] = None

    @property
    def host_bytes(self) -> int:
        return self.host_pinned + self.host_heap

    @property
    def host_fits(self) -> Optional[bool]:
        return None if self.host_capacity is None else self.host_bytes <= self.host_capacity

    def host_lines(self) -> list[str]:
        """Host RAM beside the device figure (gpu mode), and the fit against --host-mem; says
        when host RAM, not the card, is the limit."""
        out = []
        if self.mode == "gpu":
            out.append(f"Host RAM: {human(self.host_bytes)} ({self.host_bytes:,} bytes, whole "
                       f"process beyond its own start-up): pinned {human(self.host_pinned)} "
                       f"(cudaMallocHost, every blob's host side) + heap {human(self.host_heap)} "
                       f"(layer objects, an estimate).")
        if self.host_capacity is not None:
            cap = capacity_text(self.host_capacity).replace("--gpu-mem", "--host-mem")
            if self.host_fits:
                out.append(f"Host RAM fits in {cap}: {human(self.host_capacity - self.host_bytes)} to spare.")
            else:
                limit = (" Host RAM, not the card, is the limit." if self.mode == "gpu"
                         and self.fits is not False else "")
                out.append(f"Host RAM does NOT fit in {cap}: "
                           f"{human(self.host_bytes - self.host_capacity)} more needed (exit "
                           f"status 3).{limit}")
        return out

    @property
    def log_figure(self) -> int:
        return sum(v for _, v in self.log_figures)

    @property
    def fits(self) -> Optional[bool]:
        return None if self.capacity is None else self.needed_bytes <= self.capacity

    @property
    def margin(self) -> Optional[int]:
        return None if self.capacity is None else self.capacity - self.needed_bytes

    def setting_parts(self) -> dict[str, str]:
        """What was modeled, by name: batch, scenario, mode, engine, solver, GPUs."""
        parts = {"batch": str(self.batch) if self.batch else "-", "scenario": self.scenario,
                 "mode": self.mode, "engine": self.engine}
        if self.scenario == "train":
            parts["solver"] = self.solver_type or "SGD"
        if self.gpus > 1:
            parts["GPUs"] = str(self.gpus)
        return parts

    def setting(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.setting_parts().items())

    def fit_line(self) -> str:
        cap = capacity_text(self.capacity) + (" (cpu mode: the host heap against it)"
                                              if self.mode == "cpu" else "")
        if self.fits:
            head = f"Fits in {cap}: {human(self.margin)} to spare"
        else:
            head = f"Does NOT fit in {cap}: {human(-self.margin)} more needed (exit status 3)"
        which = "train batch" if self.test_nets else "batch"
        if self.largest_batch is not None:
            head += f"; largest {which} that fits: {self.largest_batch}"
            if self.batch:
                head += f" (now {self.batch}" + ("; the test nets keep theirs" if self.test_nets else "") + ")"
        elif self.largest_batch_note:
            head += f"; {self.largest_batch_note}"
        return head + "."

    def header_lines(self) -> list[str]:
        """The verdict, first: setting, total beside Caffe's figure, the fit, then what the
        figures rest on (engine, scenario default, assumptions)."""
        where = "per GPU, CUDA context included" if self.mode == "gpu" else "host heap"
        per = ", ".join(f"{l} {human(v)}" for l, v in self.log_figures) if len(self.log_figures) > 1 else ""
        out = [f"{os.path.basename(self.source)} ({self.net_name or 'unnamed'}): {self.setting()}"]
        out += self.scope
        out += [f"Modeled total: {human(self.total_bytes)} ({self.total_bytes:,} bytes, {where}), "
               f"peak during {self.peak_moment}. Caffe's log figure: {human(self.log_figure)} "
               f"({self.log_figure:,} bytes{'; ' + per if per else ''}), top data only."]
        if self.capacity is not None:
            out.append(self.fit_line())
        out.extend(self.host_lines())
        if self.engines is not None and self.engines.sensitive:
            out.append(self.engines.line())
        out.extend(self.notes)
        out.extend(a.text() for a in self.data_assumptions)
        return out

    @property
    def data_assumptions(self) -> list[Assumption]:
        """The assumptions that stand in for data (the model's own constants, the CUDA
        context and the workspace bound, are stated with the breakdown)."""
        return [a for a in self.assumptions if a.layer is not None]

    def to_dict(self) -> dict:
        return {
            "source": self.source, "net": self.net_name, "scenario": self.scenario,
            "scenario_why": self.scenario_why, "mode": self.mode, "engine": self.engine,
            "solver_type": self.solver_type if self.scenario == "train" else None,
            "gpus": self.gpus, "batch": self.batch, "total_bytes": self.total_bytes,
            "needed_bytes": self.needed_bytes, "peak_moment": self.peak_moment,
            "memory_required_for_data": self.log_figure,
            "memory_required_for_data_per_net": dict(self.log_figures),
            "capacity_bytes": self.capacity,
            "capacity_typed": getattr(self.capacity, "typed", None),
            "fits": self.fits, "margin_bytes": self.margin,
            "largest_batch": self.largest_batch,
            "engine_sensitivity": self.engines.to_dict() if self.engines else None,
            "notes": list(self.notes), "scope": list(self.scope),
            "host_bytes": self.host_bytes, "host_pinned_bytes": self.host_pinned,
            "host_heap_bytes": self.host_heap, "host_capacity_bytes": self.host_capacity,
            "host_fits": self.host_fits,
        }


def largest_batch(loaded, options, env, capacity: int, batch: Optional[int]) -> tuple[Optional[int], str]:
    """The largest batch whose modeled peak fits (searched on the model, as ``fit`` does),
    or None and why not."""
    from .errors import UserError
    from .fit import fit_batch

    if batch is None:
        return None, "no data layer with a batch size"
    try:
        r = fit_batch(loaded, options, env, capacity)
    except UserError as e:
        return None, f"largest batch not found: {e}"
    if r.best is None:
        return None, ("not even train batch 1 fits (the test nets keep their batch; "
                      "--test-batch sets it)" if len(loaded.nets) > 1 else "not even batch 1 fits")
    return r.best, ""


def verdict_of(loaded, nets, options, env, report, scenario_why: str,
               capacity: Optional[int] = None, search_batch: bool = True,
               host_capacity: Optional[int] = None, models=None) -> Verdict:
    """The verdict on ``nets`` (built from ``loaded`` with ``options``) modeled in ``env``
    (``models``: a :class:`caffemem.memory.model.Models` of ``nets`` to share, see
    :func:`engine_totals`)."""
    from .fit import data_batch

    batch = data_batch(nets[0]) if nets else None
    free, fixed = _engine_layers(nets) if env.gpu else (0, 0)
    totals = engine_totals(nets, env, report, models, free)
    engines = EngineCheck(env.engine, {"": totals}, capacity, fixed) if totals else None
    needed = needed_bytes(report)
    best, note = None, ""
    if capacity is not None and search_batch:
        best, note = largest_batch(loaded, options, env, capacity, batch)
    return Verdict(
        source=loaded.path, net_name=nets[0].name if nets else "", scenario=env.scenario,
        scenario_why=scenario_why, mode=env.mode, engine=env.engine if env.gpu else "caffe",
        solver_type=env.solver_type, gpus=env.gpus if env.scenario == "train" else 1,
        batch=batch, total_bytes=report.total_bytes, needed_bytes=needed,
        peak_moment=report.peak_moment,
        log_figures=[(n.display_label, n.memory_required_for_data) for n in nets],
        capacity=capacity, largest_batch=best, largest_batch_note=note, engines=engines,
        test_nets=len(nets) > 1,
        assumptions=net_assumptions(nets) + model_assumptions(report),
        # cpu mode pins nothing: its host figure is the heap (MemoryReport.host_bytes)
        host_pinned=report.host_bytes if report.gpu else 0,
        host_heap=report.host_heap_bytes if report.gpu else report.host_bytes,
        host_capacity=host_capacity)


@dataclass
class DiffVerdict:
    """Two files' verdicts side by side, and the engine check over both."""

    old: Verdict
    new: Verdict
    engines: Optional[EngineCheck] = None

    @property
    def delta_bytes(self) -> int:
        return self.new.total_bytes - self.old.total_bytes

    @property
    def fits(self) -> Optional[bool]:
        """Does the new net fit (None without a capacity)?"""
        return self.new.fits

    def setting(self) -> str:
        """Both sides' settings in one phrase: ``batch 4 vs 1, scenario train, ...``."""
        o, n = self.old.setting_parts(), self.new.setting_parts()
        return ", ".join(f"{k} {o.get(k, '-')}" + (f" vs {n.get(k, '-')}" if o.get(k) != n.get(k) else "")
                         for k in dict.fromkeys(list(o) + list(n)))

    def header_lines(self) -> list[str]:
        o, n = self.old, self.new
        sign = "+" if self.delta_bytes >= 0 else ""
        out = [f"old: {os.path.basename(o.source)} ({o.setting()})",
               f"new: {os.path.basename(n.source)} ({n.setting()})",
               f"Modeled total: old {human(o.total_bytes)} -> new {human(n.total_bytes)} "
               f"({sign}{human(self.delta_bytes)}); Caffe's log figure: {human(o.log_figure)} -> "
               f"{human(n.log_figure)}."]
        if "gpu" in (o.mode, n.mode):
            out.append(f"Host RAM: old {human(o.host_bytes)} -> new {human(n.host_bytes)} "
                       f"(pinned bytes + the layers' heap bookkeeping, an estimate).")
        if o.capacity is not None:
            def one(v: Verdict) -> str:
                return (f"fits ({human(v.margin)} to spare)" if v.fits else
                        f"does NOT fit ({human(-v.margin)} more needed)")
            out.append(f"In {capacity_text(o.capacity)}: old {one(o)}, new {one(n)}"
                       + ("; exit status 3." if not n.fits else "."))
        if o.host_capacity is not None:
            def host(v: Verdict) -> str:
                spare = v.host_capacity - v.host_bytes
                return (f"fits ({human(spare)} to spare)" if spare >= 0 else
                        f"does NOT fit ({human(-spare)} more needed)")
            cap = capacity_text(o.host_capacity).replace("--gpu-mem", "--host-mem")
            out.append(f"Host RAM in {cap}: old {host(o)}, new {host(n)}"
                       + ("; exit status 3." if n.host_fits is False else "."))
        if self.engines is not None and self.engines.sensitive:
            out.append(self.engines.line())
        for side, v in (("old", o), ("new", n)):
            out.extend(f"{side}: {note}" for note in v.notes)
            out.extend(f"{side}: {a.text()}" for a in v.data_assumptions)
        return out

    def to_dict(self) -> dict:
        return {"old": self.old.to_dict(), "new": self.new.to_dict(),
                "delta_bytes": self.delta_bytes,
                "engine_sensitivity": self.engines.to_dict() if self.engines else None,
                "assumptions": {"old": [a.to_dict() for a in self.old.assumptions],
                                "new": [a.to_dict() for a in self.new.assumptions]}}


def diff_verdict(old: Verdict, new: Verdict, old_totals: Optional[dict], new_totals: Optional[dict],
                 fixed_layers: int = 0) -> DiffVerdict:
    """Both sides' verdicts; the engine check when both sides' engine totals are known."""
    engines = None
    if old_totals and new_totals and old.engine == new.engine:
        engines = EngineCheck(new.engine, {"old": old_totals, "new": new_totals}, new.capacity,
                              fixed_layers)
    return DiffVerdict(old, new, engines)
