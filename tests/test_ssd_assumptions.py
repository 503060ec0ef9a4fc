"""SSD's AnnotatedData label blob is sized for one box (the real size comes from the
database): the nets in ../shared/realworld/paired say so where the figure is shown and in the
JSON, and match their logs to the byte once --input is given as the message says, with B
read from the log's own Top shape of the label."""

from __future__ import annotations

import json
import re

import pytest

from conftest import SHARED, shared_or_skip

from caffemem.cli import main

CASES = ["ssd_fanfancy_nwpu_bs32_1080ti", "ssd_imistyrain_voc0712"]
_FIGURE = re.compile(r"Memory required for data: (\d+)")


def log_nets(log) -> list[dict]:
    """Per net set up in the log, in order: its last "Memory required for data" and the
    label's shape (the data layer's second Top shape)."""
    nets, cur, data_tops = [], None, None
    for line in log.read_text(errors="replace").splitlines():
        body = line.split("] ", 1)[-1]
        if body.startswith("Setting up "):
            if cur is None or body == "Setting up data" and cur["figure"] is not None:
                cur = {"figure": None, "label": None}
                nets.append(cur)
            data_tops = 0 if body == "Setting up data" else None
        elif body.startswith("Top shape: ") and data_tops is not None:
            data_tops += 1
            if data_tops == 2:
                cur["label"] = tuple(int(d) for d in body.split()[2:6])
        m = _FIGURE.match(body)
        if m:
            cur["figure"] = int(m.group(1))
    return nets


@pytest.mark.parametrize("case", CASES)
def test_label_assumption_stated_and_corrected(case, capsys):
    folder = shared_or_skip("realworld", "paired", case)
    log = next(folder.glob("*.log"))
    nets = log_nets(log)
    assert len(nets) == 2
    for (net_file, phase), logged in zip((("train.prototxt", "TRAIN"), ("test.prototxt", "TEST")), nets):
        argv = ["analyze", str(folder / net_file), "--phase", phase]
        assert main(argv) == 0
        head = capsys.readouterr().out.split("\n\n")[0]
        said = next(l for l in head.splitlines() if "'label'" in l and "one box" in l)
        fix = re.search(r"correct it with (--input \S+)", said).group(1)
        assert fix == "--input label=1,1,B,8"
        assert main(argv + ["--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert [a["fix"] for a in doc["assumptions"] if a["layer"] == "data"] == [fix]
        before = doc["verdict"]["memory_required_for_data"]
        assert before < logged["figure"]  # one box is fewer bytes than the log's
        b = logged["label"][2]
        assert logged["label"] == (1, 1, b, 8)
        assert main(argv + ["--format", "json", *fix.replace("B", str(b)).split()]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["verdict"]["memory_required_for_data"] == logged["figure"]
        assert not [a for a in doc["assumptions"] if a["layer"] == "data"]  # no longer assumed


@pytest.mark.parametrize("case", CASES)
def test_solver_matches_both_nets_in_one_run_with_test_input(case, capsys):
    """The solver builds both nets; their databases' first records hold different numbers of
    boxes, so --input sizes the train net's label and --test-input the test net's: both of
    the log's figures to the byte, in one run."""
    folder = shared_or_skip("realworld", "paired", case)
    train, test = log_nets(next(folder.glob("*.log")))
    as_arg = lambda shape: "label=" + ",".join(map(str, shape))  # noqa: E731
    argv = ["analyze", str(folder / "solver.prototxt"), "--input", as_arg(train["label"]),
            "--test-input", as_arg(test["label"]), "--format", "json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"]["memory_required_for_data_per_net"] == {
        "train net": train["figure"], "test net #0": test["figure"]}
    assert not [a for a in doc["assumptions"] if a["layer"] == "data"]
