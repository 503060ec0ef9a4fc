"""Net diffs: alignment, symmetric deltas, no-change and disjoint nets."""

from __future__ import annotations

from conftest import SAMPLES

from caffemem.analysis import AnalysisOptions, build_all
from caffemem.diff import LayerCost, align, diff_costs, shape_costs

CNN = str(SAMPLES / "small_cnn_train.prototxt")
V1 = str(SAMPLES / "legacy_v1_deploy.prototxt")


def costs(path, **kw):
    nets = build_all(path, AnalysisOptions(**kw))
    return shape_costs(nets), sum(n.memory_required_for_data for n in nets)


def test_diff_with_itself_reports_no_change():
    (c, log) = costs(CNN)
    d = diff_costs(c, c, log, log)
    assert d.delta_bytes == 0 and d.contributors == [] and d.changes() == []
    assert "No change" in d.headline()


def test_swapping_sides_negates_every_delta():
    a, la = costs(CNN)
    b, lb = costs(CNN, batch=64)
    fwd, back = diff_costs(a, b, la, lb), diff_costs(b, a, lb, la)
    assert fwd.delta_bytes == -back.delta_bytes > 0
    f = {(c.layer, c.kind): c.delta_bytes for c in fwd.contributors}
    r = {(c.layer, c.kind): c.delta_bytes for c in back.contributors}
    assert f.keys() == r.keys() and all(f[k] == -r[k] for k in f)
    # batch 32 -> 64 doubles every activation: conv1's top is 32x32x64x64 floats more
    assert f[("conv1", "activations")] == 32 * 32 * 64 * 64 * 4


def test_nets_with_no_common_layer_still_diff():
    a = [LayerCost("x", "ReLU", 0, [(1,)], [], {"activations": 4})]
    b = [LayerCost("y", "TanH", 0, [(2,)], [], {"activations": 8})]
    d = diff_costs(a, b, 4, 8)
    assert d.delta_bytes == 4
    assert {s for s, _, _ in d.changes()} == {"added", "removed"}


def test_renamed_layer_aligns_by_type_and_position():
    old = [LayerCost(n, t, i, [], []) for i, (n, t) in enumerate([("in", "Input"), ("c1", "Convolution"), ("r", "ReLU")])]
    new = [LayerCost(n, t, i, [], []) for i, (n, t) in enumerate([("in", "Input"), ("conv_a", "Convolution"), ("r", "ReLU")])]
    pairs = align(old, new)
    assert [(o.name if o else None, n.name if n else None) for o, n in pairs] == [
        ("in", "in"), ("c1", "conv_a"), ("r", "r")]


def test_disjoint_sample_nets_via_builder():
    a, la = costs(CNN)
    b, lb = costs(V1)
    d = diff_costs(a, b, la, lb)
    assert d.delta_bytes < 0 and d.new_log_figure == 125264


def test_diff_states_the_forward_flops_of_both_nets(capsys):
    """Text, JSON and CSV of ``diff`` carry each side's forward FLOPs; doubling the batch
    doubles the multiply-adds but bn1's per-channel ones (its moving averages: 4 x 32 + 1)
    and the per-image figure stays."""
    import csv
    import io
    import json

    from caffemem.cli import main
    from caffemem.flops import CATEGORIES

    argv = ["diff", CNN, CNN, "--new-batch", "64"]
    assert main(argv + ["--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert main(["analyze", CNN, "--format", "json"]) == 0
    one = json.loads(capsys.readouterr().out)["nets"][0]["flops"]
    assert doc["flops"]["old"] == one and 2 * one["macs"] - doc["flops"]["new"]["macs"] == 4 * 32 + 1
    assert main(argv + ["--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    for c in CATEGORIES:
        assert sum(int(r[f"old_{c}"] or 0) for r in rows) == doc["flops"]["old"][c]
        assert sum(int(r[f"new_{c}"] or 0) for r in rows) == doc["flops"]["new"][c]
    assert main(argv) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("Forward pass"))
    per_image = f"{one['macs'] // 32 / 1e6:.2f}M"
    assert f"per image (batch 32 -> 64): {per_image} -> {per_image} MACs" in line
