"""Why a Caffe run died of out-of-memory, and what would make it fit, with numbers.

The log is enough to rebuild the nets: Caffe echoes every net it builds ("Initializing net
from parameters:", the filtered NetParameter) and prints every top's shape.  We parse the
echo with the compiled schema, pin each data layer's tops to the shapes the log printed
(the database image size is in the log even when the database is not here), and run the
allocation model.  Then:

- the model's peak against the GPU's capacity (printed by the log, or ``--gpu-mem``);
- where a run with that capacity runs out, per the replay (phase, layer, allocation);
- fixes: the largest train batch that fits (and ``iter_size`` to keep the effective batch),
  a smaller test batch when the test net is what overflows, the cuDNN engine when CAFFE's
  im2col buffers are the weight, and each with the modeled total it gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional

from .analysis import AnalysisOptions, build_loaded
from .errors import UserError
from .layers.data import DataLayerRule
from .loader import Loaded, NetSpec
from .netfilter import NetState
from .pb import caffe_pb2
from .prototxt import parse_text
from .units import human
from .upgrade import upgrade_net


@dataclass
class LoggedNet:
    """One net as a log shows it: its echo text, the layers it created, and the shapes
    printed for their tops."""

    label: str  # "train net", "test net #0", "net"
    echo: str  # the NetParameter text after "Initializing net from parameters:"
    top_shapes: dict[str, tuple] = field(default_factory=dict)  # top name -> shape (first seen)
    #: (layer name, bottoms, tops) in creation order, from "X <- b" / "X -> t" lines
    layers: list[tuple[str, list[str], list[str]]] = field(default_factory=list)


def nets_from_summary(s) -> list[LoggedNet]:
    """The nets of a log summary (:mod:`caffemem.logparse`) as :class:`LoggedNet`s: one per
    label, the last run's (a log of several runs repeats them; the last one is the one that
    died)."""
    nets = [LoggedNet(n.label if n.label.startswith(("train", "test")) else "net", n.echo,
                      n.top_shapes(), [(l.name, l.bottoms, l.tops) for l in n.layers])
            for n in s.nets if n.echo]
    seen: set[str] = set()
    last_run: list[LoggedNet] = []
    for n in reversed(nets):
        if n.label not in seen:
            seen.add(n.label)
            last_run.insert(0, n)
    return last_run


def parse_echo(text: str, where: str) -> tuple["caffe_pb2.NetParameter", bool]:
    """Parse a net echo; glog cuts messages at about 30,000 characters, so a big net's echo
    may stop mid-layer.  Then the complete layers before the cut are kept and the second
    value is False."""
    param = caffe_pb2.NetParameter()
    try:
        parse_text(text, param, where)
        return param, True
    except UserError as e:
        first_error = e
    lines = text.splitlines()
    starts = [i for i, l in enumerate(lines) if l.startswith("layer {") or l.startswith("layers {")]
    for cut in reversed(starts):
        param = caffe_pb2.NetParameter()
        try:
            parse_text("\n".join(lines[:cut]), param, where)
            return param, False
        except UserError:
            continue
    raise first_error


def _complete_from_log(param, net: LoggedNet) -> list[str]:
    """Append the layers the echo lost (cut by glog) from the log's creation lines: their
    wiring and logged top shapes are known, their types and parameters are not, so they are
    modeled from the shapes alone (activations and diffs; no parameters or buffers)."""
    have = {l.name for l in param.layer}
    # Split layers are Caffe's, inserted again by our builder: map their tops back to the
    # blob they split, and skip them.
    split_source = {}
    for name, bottoms, tops in net.layers:
        if name.endswith("_split") and len(bottoms) == 1 and all(t.startswith(name + "_") for t in tops):
            split_source.update({t: bottoms[0] for t in tops})
    added = []
    for name, bottoms, tops in net.layers:
        if name in have or any(t in split_source for t in tops):
            continue
        if not all(t in net.top_shapes for t in tops):
            break
        layer = param.layer.add(name=name, type="(cut from the log echo)")
        layer.bottom.extend(split_source.get(b, b) for b in bottoms)
        layer.top.extend(tops)
        added.append(name)
    return added


@dataclass
class Fix:
    what: str
    total_bytes: int
    fits: bool

    def to_dict(self) -> dict:
        return {"what": self.what, "total_bytes": self.total_bytes, "fits": self.fits}


@dataclass
class Diagnosis:
    capacity: Optional[int]
    total_bytes: int
    by_kind: dict[str, int]
    runs_out_at: Optional[str]  # replay's account of the first allocation over capacity
    fixes: list[Fix]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"capacity_bytes": self.capacity, "modeled_total_bytes": self.total_bytes,
                "bytes": self.by_kind, "runs_out_at": self.runs_out_at,
                "fixes": [f.to_dict() for f in self.fixes], "notes": list(self.notes)}

    def text(self) -> str:
        out = [f"modeled peak: {human(self.total_bytes)}"
               + (f" against a capacity of {human(self.capacity)}" if self.capacity else "")]
        if self.by_kind:
            out.append("  by kind: " + ", ".join(f"{k} {human(v)}" for k, v in
                                                 sorted(self.by_kind.items(), key=lambda kv: -kv[1])))
        if self.runs_out_at:
            out.append(f"  with that capacity the model runs out at: {self.runs_out_at}")
        for f in self.fixes:
            out.append(f"  fix: {f.what} -> {human(f.total_bytes)} ({'fits' if f.fits else 'still too big'})")
        out.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(out)


def _data_overrides(net_param, shapes: dict[str, tuple]) -> dict[str, tuple]:
    """Pin the tops of layers that read their shape from outside the prototxt (databases,
    image lists, HDF5, Python code) to the shapes the log printed.  For layers that declare
    a batch size the batch stays free ('*'), so batch what-ifs still apply."""
    from .layers.registry import lookup

    out = {}
    for layer in net_param.layer:
        if len(layer.bottom):
            continue
        rule = lookup(layer.type)
        if rule is not None and layer.type in ("Input", "DummyData", "MemoryData"):
            continue  # fully described by the prototxt
        declares = rule is not None and type(rule).declared_batch is not DataLayerRule.declared_batch
        for i, t in enumerate(layer.top):
            if t not in shapes:
                continue
            shape = tuple(shapes[t])
            if declares and i == 0 and shape:
                out[t] = (None,) + shape[1:]
            elif not declares:
                out[t] = shape
    return out


def loaded_from_log(nets: list[LoggedNet], solver_text: Optional[str]) -> tuple[Loaded, AnalysisOptions]:
    """A :class:`Loaded` rebuilt from a log's echoes, with the data shapes it printed."""
    solver = None
    if solver_text:
        solver = caffe_pb2.SolverParameter()
        try:
            parse_text(solver_text, solver, "<solver echo in the log>")
        except UserError:
            solver = None  # an echo cut short by glog: the nets still tell most of the story
    specs, per_net = [], {}
    for n in nets:
        param, complete = parse_echo(n.echo, f"<{n.label} echo in the log>")
        upgrade_net(param, n.label)
        notes = []
        overrides = _data_overrides(param, n.top_shapes)
        if not complete:
            added = _complete_from_log(param, n)
            for name in added:
                layer = param.layer[[l.name for l in param.layer].index(name)]
                overrides.update({t: tuple(n.top_shapes[t]) for t in layer.top})
            notes.append(f"glog cut the {n.label}'s echo; {len(added)} layer(s) after the cut "
                         f"are modeled from their logged top shapes only (no parameters or "
                         f"internal buffers): the model is a lower bound")
        state = NetState.from_proto(param.state)
        specs.append(NetSpec(n.label, param, state, "<log>", ".", notes))
        per_net[n.label] = overrides
    return Loaded("<log>", solver, specs), AnalysisOptions(inputs_per_net=per_net)


def diagnose(nets: list[LoggedNet], solver_text: Optional[str], env, capacity: Optional[int]) -> Diagnosis:
    """Model the logged run (the nets the log echoes) and propose fixes that fit
    ``capacity`` (bytes, per GPU)."""
    return diagnose_loaded(*loaded_from_log(nets, solver_text), env, capacity)


def diagnose_loaded(loaded: Loaded, options: AnalysisOptions, env, capacity: Optional[int]) -> Diagnosis:
    """Model a run of these nets (from a log's echoes or from the user's prototxt) and
    propose fixes that fit ``capacity`` (bytes, per GPU)."""
    from .fit import data_batch, fit_batch
    from .memory import fits, model_memory
    from .memory.model import replay

    built = build_loaded(loaded, options)
    report = model_memory(built, env)
    need = fits(report, capacity).needed if capacity else report.total_bytes
    d = Diagnosis(capacity, need, report.by_kind, None, [])
    d.notes.extend(note for spec in loaded.nets for note in spec.notes)
    if not capacity:
        d.notes.append("the GPU's capacity is not in the log: give --gpu-mem to get fixes that fit")
        return d
    rp = replay(built, env)
    over = rp.first_allocation_over(capacity, overhead=env.context_bytes if env.gpu else 0)
    if over is not None:
        d.runs_out_at = (f"{over.moment}: {over.call} allocating {over.what} ({over.kind}, "
                         f"{human(over.nbytes)}) with {human(over.live_before)} already in use")
    if need <= capacity:
        d.notes.append(
            f"the model says this run fits ({human(need)} of {human(capacity)}, "
            f"{human(capacity - need)} to spare): memory was taken outside this run (another "
            f"process on the GPU, a second net in the same process), or by allocations the "
            f"model bounds loosely (cuDNN algorithms, the CUDA context: --context-mib)")
        return d

    def total_with(opts, e) -> int:
        return fits(model_memory(build_loaded(loaded, opts), e), capacity).needed

    # 1. the largest train batch that fits, and iter_size to keep the effective batch
    current = data_batch(built[0])
    if current:
        fb = fit_batch(loaded, options, env, capacity)
        if fb.best is not None and fb.best < current:
            iters = math.ceil(current / fb.best)
            even = math.ceil(current / iters)  # the smallest batch that keeps the effective batch
            label = built[0].label or "train net"
            d.fixes.append(Fix(f"batch_size {current} -> {fb.best} in the {label} (the largest that fits); "
                               f"to keep an effective batch of {current}, use batch_size {even} with "
                               f"iter_size {iters} ({even * iters} samples per update)", fb.best_total, True))
        elif fb.best is None:
            keeping = " with the test batch as it is" if any(n.label.startswith("test") for n in built) else ""
            d.notes.append(f"even train batch 1 does not fit{keeping}, with this engine: the net itself "
                           f"(parameters, solver state, workspaces) or the input resolution is too large "
                           f"for this capacity")
    # 2. a smaller test batch, when test nets are part of the run
    tests = [n for n in built if n.label.startswith("test")]
    if tests and current:
        tb = data_batch(tests[0])
        if tb and tb > 1:
            for cand in sorted({max(1, tb // 2), max(1, tb // 4), 1}, reverse=True):
                t = total_with(replace(options, test_batch=cand, batch_train_only=True), env)
                if t <= capacity:
                    d.fixes.append(Fix(f"test batch {tb} -> {cand} (raise test_iter by {math.ceil(tb / cand)}x "
                                       f"to test as many images)", t, True))
                    break
        # 2b. when neither alone fits: both batches down together, in proportion
        if tb and not any(f.fits for f in d.fixes):
            from .fit import largest_fitting

            def test_batch(b: int) -> int:
                return max(1, math.ceil(tb * b / current))

            both = largest_fitting(lambda b: total_with(replace(options, batch=b, test_batch=test_batch(b),
                                                                batch_train_only=True), env),
                                   capacity, limit=current, what="batch")
            if both.best is not None:
                b, t = both.best, test_batch(both.best)
                iters = math.ceil(current / b)
                d.fixes.append(Fix(f"batch_size {current} -> {b} with iter_size {iters} ({b * iters} samples "
                                   f"per update) and test batch {tb} -> {t} (test_iter {math.ceil(tb / t)}x): "
                                   f"neither alone fits", both.best_total, True))
    # 3. cuDNN instead of the CAFFE engine (im2col buffers)
    if env.gpu and env.engine == "caffe" and report.by_kind.get("im2col"):
        t = total_with(options, env.with_(engine="cudnn"))
        cols = sorted(((l.device.get("im2col", 0), l.name) for n in report.nets for l in n.layers
                       if l.device.get("im2col")), reverse=True)
        named = ", ".join(f"{name} {human(b)}" for b, name in cols[:4]) + (", ..." if len(cols) > 4 else "")
        d.fixes.append(Fix(f"build with cuDNN (engine: CUDNN): drops {human(report.by_kind['im2col'])} "
                           f"of im2col buffers (the largest: {named}), adds cuDNN workspaces",
                           t, t <= capacity))
    # 4. no test net during training
    if tests and env.scenario == "train":
        t = total_with(options, env.with_(test_interval=0, test_initialization=False)) \
            if hasattr(env, "test_interval") else None
        if t is not None:
            d.fixes.append(Fix("no test pass during training (test_initialization: false and no "
                               "test_interval; test separately)", t, t <= capacity))
    return d
