"""Line-for-line conformance with real Caffe logs (../shared/oracle and realworld/paired).

For every case in conformance_cases.json, caffemem's reproduction of the net-setup lines
(Setting up / Top shape / with loss weight / Memory required for data) must equal the real
log's.  Prints how many nets match.
"""

from __future__ import annotations

import pytest

from conftest import shared_or_skip
from conformance import load_cases, run_case

CASES = load_cases()


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
