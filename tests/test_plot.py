"""Plots, checked through matplotlib's objects (bars, labels, values), not pixels."""

from __future__ import annotations

import pytest

from conftest import SAMPLES

from caffemem.analysis import build_all
from caffemem.diff import LayerCost, diff_costs, shape_costs
from caffemem.errors import UserError
from caffemem.plot import group_costs, plot_diff, plot_layers, unit_for


def test_layers_plot_bars_labels_and_capacity(tmp_path):
    costs = shape_costs(build_all(str(SAMPLES / "small_cnn_train.prototxt")))
    fig = plot_layers(costs, str(tmp_path / "m.png"), gpu_mem=256 * 2**20)
    ax, ax2 = fig.axes[0], fig.axes[1]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [c.name for c in costs]
    div, unit = unit_for(256 * 2**20)
    assert unit == "MiB" and "MiB" in ax.get_ylabel()
    # the activation bar of conv1 is its top, 32x32x64x64 floats = 16 MiB
    acts = ax.patches[:len(costs)]  # the first kind drawn is "activations", one bar per layer
    conv1 = labels.index("conv1")
    assert acts[conv1].get_height() == pytest.approx(16.0)
    # the capacity line sits at 256 MiB on the totals' axis, whose one bar is the total
    div2 = dict((n, d) for d, n in [(2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")])[ax2.get_ylabel().split("(")[1][:3]]
    line = [l for l in ax2.get_lines() if "capacity" in l.get_label()]
    assert len(line) == 1 and line[0].get_ydata()[0] * div2 == pytest.approx(256 * 2**20)
    assert sum(p.get_height() for p in ax2.patches) * div2 == pytest.approx(sum(c.total for c in costs))
    assert (tmp_path / "m.png").stat().st_size > 0


def test_grouping_and_top_keep_totals():
    costs = [LayerCost(n, "T", i, [], [], {"activations": v}) for i, (n, v) in
             enumerate([("res2a_branch1", 10), ("res2a_branch2a", 5), ("res2b_x", 7), ("fc", 1)])]
    grouped = group_costs(costs, group_by_prefix=True)
    # a module of one layer keeps the layer's own name
    assert [c.name for c in grouped] == ["res2a", "res2b_x", "fc"]
    assert sum(c.total for c in grouped) == 23
    top = group_costs(costs, top=2)
    assert [c.name for c in top] == ["res2a_branch1", "res2b_x", "(other 2 layers)"]
    assert top[-1].total == 6


def test_diff_plot_has_both_nets_and_delta_panel(tmp_path):
    a = shape_costs(build_all(str(SAMPLES / "small_cnn_train.prototxt")))
    b = [LayerCost(c.name, c.type, c.index, c.top_shapes, c.param_shapes, {k: 2 * v for k, v in c.bytes.items()}) for c in a]
    d = diff_costs(a, b, 0, 0)
    fig = plot_diff(a, b, d.pairs, str(tmp_path / "d.svg"), capacity=2**30)
    layers, totals, delta = fig.axes
    deltas = [p.get_height() for p in delta.patches]
    assert len(deltas) == len(a) and all(x >= 0 for x in deltas)
    # deltas in colours no memory kind uses
    from caffemem.plot import KIND_COLORS
    from matplotlib.colors import to_hex
    assert not {to_hex(p.get_facecolor()) for p in delta.patches} & {c.lower() for c in KIND_COLORS.values()}
    # both totals, and the capacity on the totals' axis
    assert [t.get_text() for t in totals.get_xticklabels()] == ["old", "new"]
    assert any("capacity" in l.get_label() for l in totals.get_lines())


def test_bad_extension_is_user_error(tmp_path):
    with pytest.raises(UserError, match=r"\.png"):
        plot_layers([], str(tmp_path / "x.jpg"))


def test_grouping_never_folds_a_train_and_a_test_layer():
    costs = [LayerCost(n, "T", i, [], [], {"activations": 1}) for i, n in
             enumerate(["conv1", "conv1_relu", "conv1@test net #0", "conv1_relu@test net #0"])]
    grouped = group_costs(costs, group_by_prefix=True)
    assert [c.name for c in grouped] == ["conv1", "conv1@test net #0"]
    many = [LayerCost(f"l{i}" + ("@test net #0" if i >= 150 else ""), "T", i, [], [], {"activations": 1})
            for i in range(200)]
    binned = group_costs(many, most=60)
    assert len(binned) <= 60 and sum(c.total for c in binned) == 200
    # no run of consecutive layers crosses from the train net into the test net
    assert sum(c.total for c in binned if "@test" in c.name) == 50


def test_cli_plot_title_total_and_capacity(tmp_path, capsys):
    """The picture agrees with the text: its total bar is the text total by kind (CUDA
    context and workspace included), its title names file, batch, scenario, mode, engine,
    and the capacity is labeled as typed."""
    import json

    from caffemem.cli import main

    net = str(SAMPLES / "small_cnn_solver.prototxt")
    assert main(["analyze", net, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    import caffemem.plot as plot_mod

    seen = {}
    real = plot_mod.plot_layers

    def spy(*a, **kw):
        seen["fig"] = real(*a, **kw)
        return seen["fig"]

    plot_mod.plot_layers = spy
    try:
        assert main(["plot", net, "-o", str(tmp_path / "p.png"), "--gpu-mem", "2GiB"]) == 0
    finally:
        plot_mod.plot_layers = real
    fig = seen["fig"]
    title = fig._suptitle.get_text()
    assert title.startswith("small_cnn_solver.prototxt (small_cnn):") and "/" not in title.split(":")[0]
    for word in ("batch 32", "scenario train", "mode gpu", "engine cudnn"):
        assert word in title
    totals = fig.axes[1]
    assert totals.get_ylabel() == "total (GiB)"  # the unit typed
    heights = sum(p.get_height() for p in totals.patches) * 2**30
    assert heights == pytest.approx(doc["total_bytes"])
    assert {"context", "workspace"} <= set(doc["bytes"])
    line = next(l for l in totals.get_lines() if "capacity" in l.get_label())
    assert line.get_ydata()[0] == pytest.approx(2.0) and "--gpu-mem 2GiB" in line.get_label()


def test_long_nets_are_folded_by_default(tmp_path):
    costs = [LayerCost(f"block{i // 5}/conv{i % 5}", "Convolution", i, [], [], {"activations": 1024})
             for i in range(400)]
    fig = plot_layers(costs, str(tmp_path / "long.png"))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(labels) <= 60 and "folded" in fig.axes[0].get_xlabel()
    fig = plot_layers(costs[:40], str(tmp_path / "short.png"))
    assert len(fig.axes[0].get_xticklabels()) == 40


def test_curves_tell_train_from_test(tmp_path):
    from pathlib import Path

    from matplotlib.colors import to_hex

    from caffemem.logparse import summarize
    from caffemem.plot import plot_curves

    log = Path(__file__).with_name("data") / "logs" / "train_ok.log"
    fig = plot_curves(summarize(str(log)), str(tmp_path / "c.png"))
    lines = [l for ax in fig.axes[:1] + fig.axes[2:] for l in ax.get_lines()]
    labels = [l.get_label() for l in lines]
    assert labels and all(x.startswith(("train ", "test ")) for x in labels)
    assert len({to_hex(l.get_color()) for l in lines}) == len(lines)  # one colour per series
    styles = {l.get_label().split()[0]: l.get_linestyle() for l in lines}
    assert styles.get("train") == "-" and styles.get("test") == "--"
    legend = fig.axes[0].get_legend()
    assert "train" in legend.get_title().get_text() and "test" in legend.get_title().get_text()
    assert sorted(t.get_text() for t in legend.get_texts()) == sorted(labels)
