"""Dump every figure caffemem computes for a set of prototxts, as deterministic JSON.

A behaviour check for refactors: run it before and after a change and compare the files
byte for byte.  For every prototxt (net or solver) under the given roots it records, per
built net, the top and parameter shapes, FLOPs, notes and Caffe's "Memory required for
data" figure, and the full memory report (:meth:`MemoryReport.to_dict`: bytes per layer
per kind, totals, per GPU, warnings) in every scenario (train/time/test), mode (gpu/cpu)
and engine (cudnn/caffe), plus a 3-GPU training run; a file caffemem refuses is recorded
with its refusal message.  The conformance cases (tests/conformance_cases.json) are built
again with their ``--input`` overrides, so that nets reading a database are covered too.

    python tools/figures_snapshot.py -o figures.json [ROOT ...]

Default roots: ../shared/oracle, ../shared/oracle-gpu, ../shared/oracle-random,
../shared/realworld/paired, tests/ and samples/ (those that exist).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from caffemem.analysis import AnalysisOptions, analyze_file  # noqa: E402
from caffemem.memory import MemoryEnv, model_memory  # noqa: E402

DEFAULT_ROOTS = ("../shared/oracle", "../shared/oracle-gpu", "../shared/oracle-random",
                 "../shared/realworld/paired", "tests", "samples")
ENVS = [dict(scenario=s, mode=m, engine=e) for s in ("train", "time", "test")
        for m in ("gpu", "cpu") for e in ("cudnn", "caffe")] + \
    [dict(scenario="train", mode="gpu", engine="cudnn", gpus=3)]


def _net(net) -> dict:
    return {
        "label": net.label, "name": net.name, "phase": net.phase,
        "memory_required_for_data": net.memory_required_for_data,
        "warnings": list(net.warnings),
        "layers": [{"name": l.name, "type": l.type,
                    "tops": [[net.blobs[t].name, list(net.blobs[t].shape)] for t in l.tops],
                    "params": [list(p.shape) for p in l.params],
                    "flops": l.flops.to_dict() if hasattr(l.flops, "to_dict") else l.flops,
                    "memory_after": l.memory_after,
                    "need_backward": l.need_backward,
                    "bottom_need_backward": list(l.bottom_need_backward),
                    "notes": list(l.notes)} for l in net.layers],
    }


def _env_key(kw: dict) -> str:
    return "/".join(str(kw[k]) for k in sorted(kw))


def snapshot(path: Path, options=None) -> dict:
    try:
        loaded, nets = analyze_file(str(path), options)
    except Exception as e:  # a refusal (or a crash): recorded with its message
        return {"refused": f"{type(e).__name__}: {e}"}
    out: dict = {"nets": [_net(n) for n in nets], "memory": {}}
    for kw in ENVS:
        try:
            if loaded.solver is not None:
                env = MemoryEnv.for_solver(loaded.solver, **kw)
            else:
                env = MemoryEnv(**kw)
            out["memory"][_env_key(kw)] = model_memory(nets, env).to_dict()
        except Exception as e:
            out["memory"][_env_key(kw)] = {"error": f"{type(e).__name__}: {e}"}
    return out


def conformance_cases(shared: Path) -> dict:
    """Every conformance case, built as tests/conformance.py builds it (its overrides)."""
    cases = json.loads((ROOT / "tests" / "conformance_cases.json").read_text())["cases"]
    out = {}
    for case in cases:
        per_net = {k: {b: tuple(None if d == "*" else int(d) for d in v.split(","))
                       for b, v in m.items()} for k, m in case.get("inputs", {}).items()}
        for label, phase in case.get("phases", {"": case.get("phase")}).items():
            opts = AnalysisOptions(phase=phase, inputs_per_net={
                "net" if label else k: v for k, v in per_net.items() if not label or k == label})
            key = f"{case['folder']}/{case['load']}" + (f" [{label}]" if label else "")
            out[key] = snapshot(shared / case["folder"] / case["load"], opts)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="*", default=list(DEFAULT_ROOTS))
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    files = sorted({p for r in args.roots if Path(r).exists()
                    for p in Path(r).rglob("*.prototxt")})
    result = {}
    for p in files:
        result[str(p)] = snapshot(p)
    shared = ROOT.parent / "shared"
    if shared.exists():
        result["conformance"] = conformance_cases(shared)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{len(files)} files, {sum('refused' in v for v in result.values())} refused "
          f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
