"""What a person sees across commands agrees: the same figure under the same name in every
command's JSON, options either honoured or refused, wording that does not contradict itself.
Each test here was written after finding the problem by using the tool end to end."""

from __future__ import annotations

import json

from conftest import SAMPLES

from caffemem.cli import main
from caffemem.errors import EXIT_NOFIT


def _json(capsys, *argv) -> tuple[int, dict]:
    code = main(list(argv) + ["--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_cpu_mode_host_figure_is_heap_not_pinned(capsys):
    """cpu mode pins nothing: the verdict's host figure is all heap (it was all 'pinned')."""
    _, doc = _json(capsys, "analyze", str(SAMPLES / "small_cnn_solver.prototxt"), "--mode", "cpu")
    v = doc["verdict"]
    assert v["mode"] == "cpu" and v["host_pinned_bytes"] == 0
    assert v["host_heap_bytes"] == v["host_bytes"] == doc["total_bytes"] > 0
    _, gpu = _json(capsys, "analyze", str(SAMPLES / "small_cnn_solver.prototxt"), "--mode", "gpu")
    g = gpu["verdict"]
    assert g["host_pinned_bytes"] > 0 and g["host_heap_bytes"] > 0
    assert g["host_bytes"] == g["host_pinned_bytes"] + g["host_heap_bytes"]


def test_diff_honours_host_mem(capsys):
    """diff --host-mem was accepted and ignored by the combined verdict: now a header line
    and exit status 3 when the new net's host RAM does not fit."""
    net = str(SAMPLES / "small_cnn_solver.prototxt")
    code = main(["diff", net, net, "--host-mem", "10MiB"])
    out = capsys.readouterr().out
    assert code == EXIT_NOFIT
    assert "Host RAM in --host-mem 10MiB" in out and "new does NOT fit" in out
    assert main(["diff", net, net, "--host-mem", "64GiB"]) == 0
    assert "new fits" in capsys.readouterr().out


def test_fit_refuses_host_mem_in_one_line(capsys):
    """fit --host-mem was accepted and ignored: it is refused, saying what to do instead."""
    code = main(["fit", str(SAMPLES / "small_cnn_solver.prototxt"), "--gpu-mem", "1GiB",
                 "--host-mem", "8GiB"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "--host-mem" in err and "caffemem analyze --batch B --host-mem" in err


def test_log_best_accuracy_under_a_loss_prefix(tmp_path):
    """GoogLeNet's accuracies are named ``loss1/top-1``: the best is the highest, not the
    lowest as for a loss (the summary said 'best loss1/top-1: 0' while it reached 0.04)."""
    from caffemem.logparse.render import text
    from caffemem.logparse.summary import summarize

    lines = []
    for it, (acc, loss) in enumerate([(0.0, 6.9), (0.04, 5.7), (0.02, 5.9)]):
        lines += [f"I0101 00:00:0{it}.000000  1 solver.cpp:330] Iteration {it * 100}, Testing net (#0)",
                  f"I0101 00:00:0{it}.000000  1 solver.cpp:397]     Test net output #0: loss1/loss1 = {loss} (* 0.3 = 1 loss)",
                  f"I0101 00:00:0{it}.000000  1 solver.cpp:397]     Test net output #1: loss1/top-1 = {acc}"]
    f = tmp_path / "g.log"
    f.write_text("\n".join(lines) + "\n")
    out = text(summarize(str(f)), None)
    assert "best loss1/top-1: 0.04 at iteration 100" in out
    assert "best loss1/loss1: 5.7 at iteration 100" in out
