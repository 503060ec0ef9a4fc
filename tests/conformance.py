"""Compare caffemem's reproduction of Caffe's net-setup lines with real Caffe logs.

Used by ``test_conformance.py`` and ``bench``/scripts.  A case is a folder under ../shared
holding a Caffe log and the prototxt(s) that produced it; ``conformance_cases.json`` says
what to load (a solver, or a net with a phase), and records any ``--input`` override a case
needs, with the reason (only for shapes the prototxt cannot give: database image sizes).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from caffemem.analysis import AnalysisOptions, build_all
from caffemem.report.caffelog import net_lines

CASES_FILE = Path(__file__).with_name("conformance_cases.json")
_WANTED = re.compile(r"^(Setting up |Top shape: |    with loss weight |Memory required for data: )")
_PREFIX = re.compile(r"^[IWEF]\d{4,8} [\d:.]+\s+\d+ [\w.]+:\d+\] ")
_NV_TOP = re.compile(r"^(TRAIN|TEST) Top shape for layer (\d+) '([^']*)' (.*)$")


def nvcaffe_top_lines(path: Path) -> list[str]:
    """NVCaffe prints ``PHASE Top shape for layer i 'name' d0 d1 ... (count)`` per top (and
    its own per-net memory summary, which is not BVLC's figure)."""
    out = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            m = _PREFIX.match(line)
            if m and _NV_TOP.match(line[m.end():]):
                out.append(line[m.end():].rstrip())
    return out


def nvcaffe_lines_of(net) -> list[str]:
    from caffemem.net import shape_string

    return [f"{net.phase} Top shape for layer {i} '{l.name}' {shape_string(net.blobs[t].shape)}"
            for i, l in enumerate(net.layers) for t in l.tops]


def log_setup_lines(path: Path) -> list[str]:
    """The setup lines of a Caffe log, glog prefix stripped, in order (nested nets included)."""
    out = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            m = _PREFIX.match(line)
            if not m:
                continue
            body = line[m.end():]
            if _WANTED.match(body):
                out.append(body.rstrip() if not body.startswith("    with") else body.rstrip())
    return out


@dataclass
class CaseResult:
    name: str
    expected: int
    matched: bool
    first_difference: str = ""


def load_cases() -> list[dict]:
    return json.loads(CASES_FILE.read_text())["cases"]


def run_case(case: dict, shared: Path) -> CaseResult:
    folder = shared / case["folder"]
    nvcaffe = case.get("format") == "nvcaffe"
    expected = (nvcaffe_top_lines if nvcaffe else log_setup_lines)(folder / case["log"])
    per_net = {k: {b: tuple(None if d == "*" else int(d) for d in v.split(",")) for b, v in m.items()}
               for k, m in case.get("inputs", {}).items()}
    nets = []
    # a net file trained by a solver not in the case: build it per phase, as the solver would
    for label, phase in case.get("phases", {"": case.get("phase")}).items():
        opts = AnalysisOptions(phase=phase, inputs_per_net={
            "net" if label else k: v for k, v in per_net.items() if not label or k == label})
        built = build_all(str(folder / case["load"]), opts)
        nets += [n for n in built if not case.get("only") or n.label in case["only"]]
    lines_of = nvcaffe_lines_of if nvcaffe else net_lines
    got = [line for n in nets for line in lines_of(n)] * case.get("runs", 1)
    if case.get("log_is_prefix"):
        got = got[:len(expected)]
    if got == expected:
        return CaseResult(case["folder"], len(expected), True)
    for i, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            ctx = next((e for e in reversed(expected[:i + 1]) if e.startswith("Setting up")), "?")
            return CaseResult(case["folder"], len(expected), False,
                              f"line {i} (in '{ctx}'): caffemem '{a}' vs Caffe '{b}'")
    return CaseResult(case["folder"], len(expected), False,
                      f"caffemem gave {len(got)} lines, Caffe {len(expected)}")
