"""Why a Caffe run died of out-of-memory, and what would make it fit, with numbers.

The log is enough to rebuild the nets: Caffe echoes every net it builds ("Initializing net
from parameters:", the filtered NetParameter) and prints every top's shape.  We parse the
echo with the compiled schema (in one pass, keeping the complete layers of an echo glog
cut), pin each data layer's tops to the shapes the log printed (the database image size is
in the log even when the database is not here), and run the allocation model; or the user
gives the net (``--net``, with every net option of ``analyze``).  Then
(:func:`diagnose_failure`):

- the scenario, mode and engine the model runs with, from the log's evidence
  (:mod:`caffemem.logparse.failure`) where the command line leaves them open, said in the
  output; with the card's size and no engine in the log, the engine under which the replay
  runs out where the log does;
- the allocation that failed, among every allocation of the replay (:mod:`caffemem.culprit`);
- fixes checked by the model (the largest train batch that fits and ``iter_size`` to keep
  the effective batch, a smaller or no test pass, cuDNN instead of im2col, a smaller cuDNN
  workspace, a smaller input, a larger card when even batch 1 does not fit, other processes
  when the run fits), ranked with the log's own (:mod:`caffemem.fixes`).

A net that cannot be modeled never makes this an error: the log's own diagnosis stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional

from .analysis import AnalysisOptions, build_loaded
from .culprit import Culprit, find_culprit
from .errors import NetError, UserError
from .fixes import Fix, log_fixes, rank
from .logparse.failure import FailureReport
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
                      _shapes_seen(n), [(l.name, l.bottoms, l.tops) for l in n.layers])
            for n in s.nets if n.echo]
    seen: set[str] = set()
    last_run: list[LoggedNet] = []
    for n in reversed(nets):
        if n.label not in seen:
            seen.add(n.label)
            last_run.insert(0, n)
    return last_run


def _shapes_seen(n) -> dict[str, tuple]:
    """A logged net's top shapes, with a data layer's "output data size" for its first top
    when its Top shape lines are not in the log (it died setting up)."""
    shapes = n.top_shapes()
    for layer in n.layers:
        if layer.data_size and layer.tops and layer.tops[0] not in shapes:
            shapes[layer.tops[0]] = tuple(layer.data_size)
    return shapes


def parse_echo(text: str, where: str) -> tuple["caffe_pb2.NetParameter", bool]:
    """Parse a net echo; glog cuts messages at about 30,000 characters, so a big net's echo
    may stop mid-layer.  Then the complete layers before the cut are kept and the second
    value is False.  Linear in the echo's length: the text is cut into its top-level fields
    and blocks once (:func:`_top_level_blocks`), and each is parsed once."""
    param = caffe_pb2.NetParameter()
    try:
        parse_text(text, param, where)
        return param, True
    except UserError as e:
        first_error = e
    param = caffe_pb2.NetParameter()
    kept = 0
    for block in _top_level_blocks(text):
        part = caffe_pb2.NetParameter()
        try:
            parse_text(block, part, where)
        except UserError:
            break  # the cut (or damage): everything after it is lost
        param.MergeFrom(part)
        kept += 1
    if not kept:
        raise first_error
    return param, False


def _top_level_blocks(text: str) -> list[str]:
    """The echo's top-level statements ("name: ...", "layer { ... }"), each complete one
    as its own text, in order; an unclosed block at the end is dropped.  One pass over the
    text, braces inside quoted strings ignored."""
    out, depth, start, quote, i, n = [], 0, 0, "", 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                out.append(text[start:i + 1])
                start = i + 1
            elif depth < 0:
                break
        elif c == "\n" and depth == 0:
            if text[start:i].strip() and ":" in text[start:i] and "{" not in text[start:i]:
                out.append(text[start:i])
            start = i + 1
        i += 1
    return [b for b in out if b.strip()]


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
class Diagnosis:
    """The allocation model's account of a run that died, and the fixes it checked."""

    capacity: Optional[int]
    total_bytes: int
    by_kind: dict[str, int]
    runs_out_at: Optional[str]  # replay's account of the first allocation over capacity
    fixes: list[Fix]
    notes: list[str] = field(default_factory=list)
    culprit: Optional[Culprit] = None
    #: the fix actions the model looked into (found or ruled out): the log's estimates for
    #: them give way
    evaluated: set = field(default_factory=set)

    def to_dict(self) -> dict:
        return {"capacity_bytes": self.capacity, "modeled_total_bytes": self.total_bytes,
                "bytes": self.by_kind, "runs_out_at": self.runs_out_at, "notes": list(self.notes)}

    def text(self) -> str:
        out = [f"modeled peak: {human(self.total_bytes)}"
               + (f" against a capacity of {human(self.capacity)}" if self.capacity else "")]
        if self.by_kind:
            out.append("  by kind: " + ", ".join(f"{k} {human(v)}" for k, v in
                                                 sorted(self.by_kind.items(), key=lambda kv: -kv[1])))
        if self.runs_out_at:
            out.append(f"  with that capacity the model runs out at: {self.runs_out_at}")
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
        if rule is not None and not isinstance(rule, DataLayerRule):
            continue  # a bottom-less layer that is no data layer (a cut or damaged echo)
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


def diagnose_loaded(loaded: Loaded, options: AnalysisOptions, env, capacity: Optional[int],
                    failure: Optional[FailureReport] = None) -> Diagnosis:
    """Model a run of these nets (from a log's echoes or from the user's prototxt), find the
    allocation that failed (with ``failure``'s evidence) and propose fixes checked against
    ``capacity`` (bytes, per GPU)."""
    from .fit import data_batch, fit_batch, fit_scale, largest_fitting
    from .memory import fits, model_memory, replay

    built = build_loaded(loaded, options)
    report = model_memory(built, env)
    overhead = env.context_bytes if env.gpu else 0
    need = fits(report, capacity).needed if capacity else report.total_bytes
    d = Diagnosis(capacity, need, report.by_kind, None, [])
    d.notes.extend(note for spec in loaded.nets for note in spec.notes)
    if failure is not None:
        d.culprit = find_culprit(replay(built, env), failure, capacity, overhead)
        over = d.culprit.over
    elif capacity:
        over = replay(built, env).first_allocation_over(capacity, overhead=overhead)
    else:
        over = None
    first = d.culprit.decided if d.culprit is not None else None
    if first is not None and first.order == 0:
        d.fixes.append(Fix("free_gpu_memory" if env.gpu else "free_host_memory",
                           f"the allocation that failed ({first.what}, {human(first.nbytes)}) is the run's "
                           f"very first: nothing of this run held memory yet, so another process holds "
                           f"it; check nvidia-smi" if env.gpu else "the allocation that failed is the run's "
                           f"first: other processes hold the memory", None, "medium", 93))
    if over is not None:
        # the moment ("train net: forward") and the call ("train net: conv2 Forward") may both
        # name the net: said once
        said = over.moment.split(":")[0] + ":"
        call = over.call[len(said):].lstrip() if over.call.startswith(said) else over.call
        net = "" if over.moment.startswith(f"{over.net}:") or call is not over.call else f"{over.net}: "
        d.runs_out_at = (f"{over.moment}: {net}{(over.layer + ' ') if getattr(over, 'layer', None) else ''}"
                         f"{call} allocating {over.what} ({over.kind}, {human(over.nbytes)}) with "
                         f"{human(over.live_before)} already in use")
    if not capacity:
        d.notes.append("the GPU's capacity is not in the log: give --gpu-mem to get fixes that fit")
        return d
    if need <= capacity:
        d.notes.append(
            f"the model says this run fits ({human(need)} of {human(capacity)}, "
            f"{human(capacity - need)} to spare): memory was taken outside this run (another "
            f"process on the GPU, a second net in the same process), or by allocations the "
            f"model bounds loosely (cuDNN algorithms, the CUDA context: --context-mib)")
        d.fixes.append(Fix("free_gpu_memory" if env.gpu else "free_host_memory",
                           f"the numbers say the net alone fits: the model needs {human(need)} of "
                           f"{human(capacity)}; check nvidia-smi for other processes holding the card"
                           if env.gpu else f"the model needs {human(need)} of {human(capacity)}: "
                           f"other processes held the memory", None, "high", 95,
                           need, True))
        d.evaluated.update({"reduce_batch", "larger_gpu", "free_gpu_memory", "free_host_memory"})
        return d

    def total_with(opts, e) -> int:
        return fits(model_memory(build_loaded(loaded, opts), e), capacity).needed

    label = built[0].label or "train net"
    d.evaluated.update({"reduce_batch", "larger_gpu", "free_gpu_memory", "free_host_memory"})
    # 1. the largest train batch that fits, and iter_size to keep the effective batch
    current = data_batch(built[0])
    if current:
        fb = fit_batch(loaded, options, env, capacity)
        if fb.best is not None and fb.best < current:
            iters = math.ceil(current / fb.best)
            even = math.ceil(current / iters)  # the smallest batch that keeps the effective batch
            keep = (f"; to keep an effective batch of {current}, use batch_size {even} with iter_size "
                    f"{iters} ({even * iters} samples per update)" if env.scenario == "train" else "")
            d.fixes.append(Fix("reduce_batch", f"batch_size {current} -> {fb.best} in the {label}: the "
                               f"largest that fits {human(capacity)} by the model ({human(fb.best_total)}; "
                               f"{fb.best + 1} needs {human(fb.next_total)}){keep}",
                               need - fb.best_total, "high", 90, fb.best_total, True,
                               {"batch_size": fb.best, "iter_size": iters}))
        elif fb.best is None:
            keeping = " with the test batch as it is" if any(n.label.startswith("test") for n in built) else ""
            d.notes.append(f"even batch 1 does not fit{keeping}, with this engine: the net itself "
                           f"(parameters, solver state, workspaces) or the input resolution is too large "
                           f"for this capacity")
            smallest = fb.next_total
            if keeping:
                smallest = total_with(replace(options, batch=1, test_batch=1, batch_train_only=True), env)
            if smallest > capacity:
                d.fixes.append(Fix("larger_gpu", f"even batch_size 1{' (test batch 1 too)' if keeping else ''} "
                                   f"needs {human(smallest)} by the model, more than {human(capacity)}: "
                                   f"only a smaller input or model, or a card with more memory, fits",
                                   None, "high", 92, smallest, False, {"needs_at_least_bytes": smallest}))
    # 2. a smaller test batch / no test pass, when test nets are part of the run
    tests = [n for n in built if n.label.startswith("test")]
    died_testing = failure is not None and failure.phase == "test_pass"
    if tests and current and env.scenario == "train":
        d.evaluated.update({"reduce_test_batch", "skip_test_initialization"})
        tb = data_batch(tests[0])
        if tb and tb > 1:
            for cand in sorted({max(1, tb // 2), max(1, tb // 4), 1}, reverse=True):
                t = total_with(replace(options, test_batch=cand, batch_train_only=True), env)
                if t <= capacity:
                    d.fixes.append(Fix("reduce_test_batch", f"test batch {tb} -> {cand} (raise test_iter "
                                       f"by {math.ceil(tb / cand)}x to test as many images): "
                                       f"{human(t)} by the model", need - t, "high",
                                       88 if died_testing else 75, t, True, {"test_batch": cand}))
                    break
        # both batches down together, in proportion, when neither alone fits
        if tb and not any(f.fits for f in d.fixes):
            def test_batch(b: int) -> int:
                return max(1, math.ceil(tb * b / current))

            both = largest_fitting(lambda b: total_with(replace(options, batch=b, test_batch=test_batch(b),
                                                                batch_train_only=True), env),
                                   capacity, limit=current, what="batch")
            if both.best is not None:
                b, t = both.best, test_batch(both.best)
                iters = math.ceil(current / b)
                d.fixes.append(Fix("reduce_batch", f"batch_size {current} -> {b} with iter_size {iters} "
                                   f"({b * iters} samples per update) and test batch {tb} -> {t} (test_iter "
                                   f"{math.ceil(tb / t)}x): neither alone fits; {human(both.best_total)} by "
                                   f"the model", need - both.best_total, "high", 89, both.best_total, True,
                                   {"batch_size": b, "iter_size": iters, "test_batch": t}))
        t = total_with(options, env.with_(test_interval=0, test_initialization=False))
        d.fixes.append(Fix("skip_test_initialization", "no test pass during training (test_initialization: "
                           "false and no test_interval; test the snapshots apart with caffe test): "
                           f"{human(t)} by the model", need - t, "high", 86 if died_testing else 50, t,
                           t <= capacity))
    # 3. cuDNN instead of the CAFFE engine (im2col buffers)
    if env.gpu and env.engine == "caffe" and report.by_kind.get("im2col"):
        d.evaluated.add("use_cudnn")
        t = total_with(options, env.with_(engine="cudnn"))
        cols = sorted({(l.device.get("im2col", 0), l.name) for n in report.nets for l in n.layers
                       if l.device.get("im2col")}, reverse=True)
        named = ", ".join(f"{name} {human(b)}" for b, name in cols[:4]) + (", ..." if len(cols) > 4 else "")
        d.fixes.append(Fix("use_cudnn", f"build with cuDNN (engine: CUDNN): drops {human(report.by_kind['im2col'])} "
                           f"of im2col buffers (the largest: {named}), adds cuDNN workspaces: {human(t)} by the "
                           f"model", need - t, "high", 80, t, t <= capacity))
    # 4. the cuDNN workspace
    if env.gpu and report.by_kind.get("workspace"):
        d.evaluated.add("cudnn_workspace")
        t = total_with(options, env.with_(cudnn_workspace_bytes=0))
        d.fixes.append(Fix("cudnn_workspace", f"cuDNN convolution workspaces take {human(report.by_kind['workspace'])} "
                           f"at Caffe's 8 MiB-per-op bound; with the zero-workspace algorithms "
                           f"(--cudnn-workspace-mib 0 models them): {human(t)} by the model", need - t,
                           "high", 60, t, t <= capacity))
    # 5. a smaller input
    try:
        res, align, base = fit_scale(loaded, options, env, capacity, built)
    except UserError:
        res = None
    if res is not None and any(v is not None for v in res.probes.values()):
        d.evaluated.add("reduce_input_size")  # (a net that does not build scaled: the log's advice stays)
    if res is not None and res.best is not None:
        h = res.best * align
        if h < base["h0"]:
            d.fixes.append(Fix("reduce_input_size", f"input height {base['h0']} -> {h} (width in proportion, "
                               f"a multiple of the net's stride {align}): the largest that fits by the model, "
                               f"{human(res.best_total)}", need - res.best_total, "high", 55, res.best_total,
                               True, {"input_height": h}))
    return d


def _evidence_env(args, failure: FailureReport, s) -> list[str]:
    """Set the memory model's scenario, mode and engine from the failure's evidence where the
    command line leaves them open; returns what was decided and why (said in the output)."""
    said = []
    if args.mode is None:
        cpu = "_cpu()" in " ".join(s.frames) or "solver_mode: CPU" in s.solver_echo or \
            (failure.host and not failure.card)
        args.mode = "cpu" if cpu else "gpu"
    if args.engine is None:
        if failure.engine and args.mode == "gpu":
            args.engine = failure.engine.lower()
            said.append(f"engine {failure.engine}, read from the log ({failure.engine_evidence}), "
                        f"instead of the default CUDNN")
        elif failure.allocation and "im2col" in failure.allocation:
            args.engine = "caffe"
    if args.scenario is None and failure.scenario:
        args.scenario = {"train": None, "time": "time", "test": "test", "inference": "test"}[failure.scenario]
        if failure.scenario != "train":
            said.append(f"scenario {args.scenario} ({failure.scenario_evidence})"
                        + ("; caffe time runs forward and backward" if failure.scenario == "time" else ""))
    if (args.gpus or 1) <= 1 and failure.gpus > 1:
        args.gpus = 2
        said.append("2 GPUs (the log shows a multi-GPU run; each GPU holds a whole copy)")
    return said


def _net_example(failure) -> str:
    """The prototxt a user of that run would give: the deploy net for an inference run."""
    return "deploy.prototxt" if failure.scenario == "inference" else "train_val.prototxt"


def diagnose_failure(s, failure: FailureReport, args) -> tuple[dict, str, list[Fix]]:
    """The whole diagnosis of a failed run for ``caffemem log``: the model's (from the log's
    nets, or ``--net`` with the net options), the culprit buffer, and the ranked fixes
    (model-checked ones, then the log's own).  A net that cannot be modeled never makes this
    an error: the log-only diagnosis is given, with one line on what kept the net out.
    Returns (JSON diagnosis, text, fixes); ``failure`` gets its buffer and candidates."""
    from .analysis import analyze_file
    from .commands.common import analysis_options, memory_env

    capacity = args.gpu_mem or failure.gpu_total_bytes
    mib = getattr(args, "context_mib", None)
    fixes = log_fixes(failure, s, capacity, None if mib is None else mib * 2**20) if failure.is_oom else []
    if failure.framework:  # not a Caffe run: no Caffe net to model
        return None, "", rank(fixes)
    nets = nets_from_summary(s)
    doc: dict = {}
    lines: list[str] = []
    if not nets and not args.net:
        why = ("the log's net echoes are unreadable (cut or damaged)" if any(n.echo for n in s.nets)
               else "the log does not echo its nets (\"Initializing net from parameters\")")
        doc = {"error": why}
        lines.append(f"model: not run: {why}; give the net with --net {_net_example(failure)} "
                     "to model it")
        return doc, "\n".join(lines), rank(fixes)
    engine_open = args.engine is None and not failure.engine
    said = _evidence_env(args, failure, s)
    try:
        if nets and not args.net:
            source = "the log's nets"
            loaded, options = loaded_from_log(nets, s.solver_echo or None)
        else:
            source = args.net
            options = analysis_options(args)
            if not options.inputs:  # the log's own shapes size the data layers
                options = replace(options, inputs_per_net=log_shapes(s, options.batch is not None))
            loaded, _ = analyze_file(args.net, options)
        env = memory_env(args, loaded)
        if engine_open and env.gpu and capacity:
            env, why = _engine_by_replay(loaded, options, env, failure, capacity)
            if why:
                said.append(why)
        d = diagnose_loaded(loaded, options, env, capacity, failure)
    except (UserError, NetError) as e:
        why = str(e).splitlines()[0]
        doc = {"error": why}
        lines.append(f"model: the net could not be modeled ({why}): the fixes below come from the log alone")
        return doc, "\n".join(lines), rank(fixes)
    c = d.culprit
    if c is not None:
        _name_culprit(failure, c)
    doc = d.to_dict() | {"source": source, "scenario": env.scenario, "mode": env.mode,
                                  "engine": env.engine, "gpus": env.gpus, "decided": said,
                                  "culprit_note": c.note if c else ""}
    lines.append(f"model ({source}, scenario {env.scenario}, {env.mode}, engine {env.engine.upper()}"
                 + (f", {env.gpus} GPUs" if env.gpus > 1 else "") + "):")
    lines.extend(f"  {x}" for x in said)
    lines.append("  " + d.text().replace("\n", "\n  "))
    if c is not None and c.note:
        lines.append(f"  culprit: {c.note}")
    return doc, "\n".join(lines), rank(_merge(fixes, d))


def _merge(log_only: list[Fix], d: Diagnosis) -> list[Fix]:
    """The model's fixes, and the log's estimates for what the model did not look into; a
    run the model says does not fit at all makes other processes an unlikely cause."""
    out = list(d.fixes)
    model_fits = d.capacity is not None and d.total_bytes <= d.capacity
    for f in log_only:
        if f.action in d.evaluated:
            continue
        if f.action in ("free_gpu_memory", "free_host_memory") and d.capacity and not model_fits:
            f.weight = min(f.weight, 20)
        out.append(f)
    return out


def _engine_by_replay(loaded, options, env, failure: FailureReport, capacity: int):
    """When neither the command line nor the log says the engine: the one under which the
    model's replay runs out where the log shows the failure (the default CUDNN when both or
    neither do).  Returns the env and a sentence when it changed."""
    from .memory import replay

    built = build_loaded(loaded, options)
    overhead = env.context_bytes
    agree = {}
    for engine in ("cudnn", "caffe"):
        e = env.with_(engine=engine)
        c = find_culprit(replay(built, e), failure, capacity, overhead)
        agree[engine] = c.over is not None and c.decided is c.over
    if agree["caffe"] and not agree["cudnn"]:
        return env.with_(engine="caffe"), ("engine CAFFE: the log does not show it, but only under "
                                           "Caffe's own engine does the model run out where the log "
                                           "fails (under CUDNN it would not)")
    return env, ""


def _name_culprit(failure: FailureReport, c: Culprit) -> None:
    if c.decided is not None:
        failure.buffer = c.decided.to_dict()
    # the layer: the one whose call allocated it, or for the solver's own steps the layer
    # whose parameter it is; named when every candidate agrees
    layers = {a.layer or a.owner for a in ([c.decided] if c.decided else c.candidates)}
    if len(layers) == 1 and None not in layers and not failure.layer:
        failure.layer = layers.pop()
    failure.buffer_candidates = [a.to_dict() for a in c.candidates[:8]]


def log_shapes(s, free_batch: bool = False) -> dict[str, dict[str, tuple]]:
    """The shapes a log printed for its nets' data layers (Top shape lines, or a data layer's
    "output data size"), per net label: they size the data layers of a ``--net`` prototxt
    given without ``--input``.  ``free_batch``: leave the batch dimension to the prototxt
    (and ``--batch``)."""
    out: dict[str, dict[str, tuple]] = {}
    for n in s.nets:
        label = n.label if n.label.startswith(("train", "test")) else "net"
        shapes = out.setdefault(label, {})
        for layer in n.layers:
            if layer.bottoms:
                continue
            for t, shape in zip(layer.tops, layer.shapes):
                shapes.setdefault(t, tuple(shape))
            if layer.data_size and layer.tops:
                shapes.setdefault(layer.tops[0], tuple(layer.data_size))
        if free_batch:
            for t, shape in shapes.items():
                if shape:
                    shapes[t] = (None,) + tuple(shape[1:])
    # a net the log does not label is the first a solver builds (the train net), and the one
    # net of a net file
    for a, b in (("net", "train net"), ("train net", "net")):
        if out.get(a) and not out.get(b):
            out[b] = out[a]
    return {k: v for k, v in out.items() if v}
