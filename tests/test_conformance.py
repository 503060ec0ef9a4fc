"""Line-for-line conformance with real Caffe logs (../shared/oracle and realworld/paired).

For every case in conformance_cases.json, caffemem's reproduction of the net-setup lines
(Setting up / Top shape / with loss weight / Memory required for data) must equal the real
log's.  Prints how many nets match.
"""

from __future__ import annotations

import pytest

from conftest import SHARED, shared_or_skip
from conformance import load_cases, run_case

CASES = load_cases()
PENDING: dict[str, str] = {}  # folder -> reason, for a one-layer case caffemem cannot reproduce yet


def _layer_cases() -> list:
    """Every one-layer oracle net: `caffe time` on net.prototxt, or `caffe train` on a solver."""
    root = SHARED / "oracle" / "layers"
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        load = "solver.prototxt" if (d / "solver.prototxt").exists() else "net.prototxt"
        case = {"folder": f"oracle/layers/{d.name}", "log": "caffe.log", "load": load}
        marks = [pytest.mark.xfail(strict=True, reason=PENDING[case["folder"]])] if case["folder"] in PENDING else []
        out.append(pytest.param(case, marks=marks, id=case["folder"]))
    return out


@pytest.mark.parametrize("case", _layer_cases())
def test_one_layer_oracle_net_matches_caffe_log(case):
    result = run_case(case, shared_or_skip())
    assert result.matched, result.first_difference


@pytest.mark.parametrize("name", ["absval_inplace", "scale_two_bottoms", "softmax_loss", "accuracy_in_train"])
def test_nets_caffe_refused_are_refused_naming_the_layer(name):
    from caffemem.analysis import build_all
    from caffemem.errors import NetError

    folder = shared_or_skip("oracle", "failures", name)
    load = "solver.prototxt" if (folder / "solver.prototxt").exists() else "net.prototxt"
    with pytest.raises(NetError, match="layer 'l'"):
        build_all(str(folder / load))


@pytest.mark.parametrize("case", CASES, ids=[f"{c['folder']}:{c['log']}" for c in CASES])
def test_case_matches_caffe_log(case):
    shared = shared_or_skip()
    shared_or_skip(case["folder"])
    result = run_case(case, shared)
    assert result.matched, result.first_difference
    assert result.expected > 0


def test_summary_prints_how_many_match(capsys):
    shared = shared_or_skip()
    results = []
    for case in CASES:
        try:
            results.append(run_case(case, shared))
        except Exception as e:  # reported, and the per-case test fails with details
            results.append(type("R", (), {"matched": False, "name": case["folder"], "first_difference": str(e)})())
    matched = sum(r.matched for r in results)
    with capsys.disabled():
        print(f"\nconformance: {matched}/{len(results)} Caffe logs reproduced line for line")
        for r in results:
            if not r.matched:
                print(f"  MISMATCH {r.name}: {r.first_difference[:200]}")
    assert matched == len(results)
