"""The HTML report without a browser: the layout's geometry, a self-contained page,
escaping, determinism, and the page's data equal to ``--format json``."""

from __future__ import annotations

import html
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import caffemem
from caffemem.cli import main
from caffemem.report.htmlgraph import net_graph
from caffemem.report.layout import layout

from conftest import ROOT, SAMPLES

DATA = Path(__file__).with_name("data") / "report"
SOLVER = str(SAMPLES / "small_cnn_solver.prototxt")
SEG_OLD, SEG_NEW = str(SAMPLES / "segnet_old.prototxt"), str(SAMPLES / "segnet_new.prototxt")


def page_data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="caffemem-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def check_geometry(lay, edges) -> None:
    boxes = lay.boxes
    for i, (x, y, w, h) in enumerate(boxes):
        for j in range(i):
            x2, y2, w2, h2 = boxes[j]
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, f"boxes {i} and {j} overlap"
    for (u, v), pts in zip(edges, lay.routes):
        assert boxes[v][1] > boxes[u][1], f"edge {u}->{v} does not run downward"
        ys = [p[1] for p in pts]
        assert ys == sorted(ys), f"edge {u}->{v} turns upward"
        assert abs(pts[0][1] - (boxes[u][1] + boxes[u][3])) < 1e-6 and abs(pts[-1][1] - boxes[v][1]) < 1e-6


def test_layout_random_dags_no_overlap_edges_down():
    rng = random.Random(16)
    for _ in range(30):
        n = rng.randint(1, 60)
        sizes = [(rng.uniform(40, 200), rng.uniform(15, 60)) for _ in range(n)]
        edges = sorted({(u, v) for v in range(1, n) for u in rng.sample(range(v), min(v, rng.randint(1, 3)))})
        lay = layout(sizes, edges)
        check_geometry(lay, edges)


def test_layout_keeps_the_trunk_straight_and_branches_beside_it():
    # a chain with an inception-like block: 0 -> {1,2,3} -> 4 -> 5
    sizes = [(100, 20)] * 6
    edges = [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4), (4, 5)]
    lay = layout(sizes, edges)
    check_geometry(lay, edges)
    centre = [x + w / 2 for x, y, w, h in lay.boxes]
    assert centre[0] == centre[4] == centre[5]  # the trunk is one vertical line
    assert len({round(c) for c in centre[1:4]}) == 3 and lay.crossings == 0


def test_layout_rejects_edges_against_the_order():
    with pytest.raises(ValueError):
        layout([(10, 10)] * 2, [(1, 0)])


def _report(tmp_path, *argv) -> str:
    out = tmp_path / "r.html"
    assert main(["report", *argv, "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def test_page_is_self_contained(tmp_path):
    page = _report(tmp_path, SOLVER, "--gpu-mem", "1GiB")
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in page
    # the only URLs are SVG's XML namespace (an identifier, never fetched)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "@import" not in page and "url(" not in page and "@font-face" not in page
    assert len(page.encode()) < 3_000_000


def test_page_data_equals_analyze_json_and_every_layer_is_drawn_once(tmp_path):
    page = _report(tmp_path, SOLVER, "--gpu-mem", "1GiB", "--engine", "caffe")
    data = page_data(page)
    out = tmp_path / "a.json"
    assert main(["analyze", SOLVER, "--gpu-mem", "1GiB", "--engine", "caffe", "--format", "json", "-o", str(out)]) == 0
    expected = json.loads(out.read_text())
    assert data["analysis"] == expected
    assert data["variants"][0]["total_bytes"] == expected["total_bytes"]
    layers = [(n["label"], l["name"]) for n in expected["nets"] for l in n["layers"]]
    drawn = [(html.unescape(net), html.unescape(name)) for name, net in
             re.findall(r'data-layer="([^"]*)" data-net="([^"]*)"', page)]
    assert sorted(drawn) == sorted(layers)
    # the other engine's variant is what analyze says with that engine
    assert main(["analyze", SOLVER, "--engine", "cudnn", "--gpu-mem", "1GiB", "--format", "json", "-o", str(out)]) == 0
    other = json.loads(out.read_text())
    v = data["variants"][1]
    assert (v["engine"], v["total_bytes"]) == ("cudnn", other["total_bytes"])
    assert v["layers"]["train net"] == [l.get("bytes", {}) for l in other["nets"][0]["layers"]]


def test_card_table_equals_fit(tmp_path):
    data = page_data(_report(tmp_path, SOLVER))
    cards = {c["capacity_bytes"]: c for c in data["variants"][0]["cards"]}
    assert sorted(cards) == [g << 30 for g in (4, 6, 8, 11, 12, 16, 24, 32, 48, 80)]
    for gib in (4, 11, 80):
        f = caffemem.fit(SOLVER, gib << 30)
        assert cards[gib << 30]["largest_batch"] == f.largest
        assert cards[gib << 30]["total_bytes_at_largest"] == f.answers[0]["total_bytes_at_largest"]


def test_hostile_names_are_escaped(tmp_path):
    page = _report(tmp_path, str(DATA / "hostile.prototxt"))
    for raw in ("<img src=x onerror", "<script>alert", "</script><script>alert(2)"):
        assert raw not in page
    assert page.count("<script") == 2  # the data block and the page's own script
    a = caffemem.analyze(str(DATA / "hostile.prototxt"))
    names = [html.unescape(n) for n in re.findall(r'data-layer="([^"]*)"', page)]
    assert sorted(names) == sorted(l.name for l in a.layers)
    assert page_data(page)["analysis"] == a.to_dict()


def test_same_inputs_same_bytes(tmp_path):
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"r{seed}.html"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, "-m", "caffemem", "report", SEG_NEW, "--old", SEG_OLD,
                        "--old-input", "data=*,4,384,512", "--engine", "caffe", "-o", str(out)],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_diff_report_merges_both_nets(tmp_path):
    page = _report(tmp_path, SEG_NEW, "--old", SEG_OLD, "--old-input", "data=*,4,384,512", "--engine", "caffe")
    data = page_data(page)
    d = caffemem.diff(SEG_OLD, SEG_NEW, old_input={"data": "*,4,384,512"}, engine="caffe")
    assert data["diff"]["summary"] == d.to_dict()
    merged = data["diff"]["layers"]
    status = {l["name"]: l["status"] for l in merged}
    assert {c["layer"] for c in d.changes if c["status"] == "added"} == {n for n, s in status.items() if s == "added"}
    assert status["conv0"] == "added" and status["conv1"] == "changed"
    drawn = [html.unescape(n) for n in re.findall(r'data-layer="([^"]*)"', page)]
    assert sorted(drawn) == sorted(l["name"] for l in merged)


def test_unknown_type_given_its_shape_is_drawn_and_flagged(tmp_path):
    page = _report(tmp_path, str(DATA / "unknown_type.prototxt"), "--input", "mystery=2,8,32,32")
    assert re.search(r'class="row[^"]*unmodelled[^"]*" data-layer="mystery"', page)
    assert page_data(page)["unknown"] == {"net": [2]}


def test_unknown_type_without_its_shape_is_drawn_and_flagged(tmp_path):
    page = _report(tmp_path, str(DATA / "unknown_type.prototxt"))
    assert re.search(r'class="row[^"]*unmodelled[^"]*" data-layer="mystery"', page)


def test_net_graph_puts_in_place_layers_and_splits_in_their_producers_box():
    a = caffemem.analyze(SOLVER)
    net = a.to_dict()["nets"][0]
    g = net_graph(net, "train net", [0] * len(net["layers"]), set())
    rows = {r.name: k for k, b in enumerate(g.boxes) for r in b.rows}
    assert rows["bn1"] == rows["scale1"] == rows["relu1"] == rows["conv1"]
    assert sum(len(b.rows) for b in g.boxes) == len(net["layers"])
    assert all(u < v for u, v, _ in g.edges)


def test_every_variant_equals_analyze_with_its_options(tmp_path):
    data = page_data(_report(tmp_path, SOLVER, "--variants", "all"))
    got = {(v["scenario"], v["engine"]) for v in data["variants"]}
    assert got == {(s, e) for s in ("train", "time", "test") for e in ("cudnn", "caffe")}
    for v in data["variants"]:
        a = caffemem.analyze(SOLVER, scenario=v["scenario"], engine=v["engine"])
        assert v["total_bytes"] == a.total_bytes and v["log_figure"] == a.log_memory_required_for_data
        assert v["layers"] == {n["label"]: [l.get("bytes", {}) for l in n["layers"]] for n in a.to_dict()["nets"]}


def test_a_net_caffe_refuses_gives_the_trunk_and_exit_1(tmp_path, capsys):
    out = tmp_path / "r.html"
    # a fork's layer with more tops than bottoms: its shapes cannot be guessed (one top per
    # bottom would be modeled shape-preserving, issue 17)
    refused = tmp_path / "refused.prototxt"
    refused.write_text((DATA / "unknown_type.prototxt").read_text().replace(
        'top: "mystery" }', 'top: "mystery" top: "mystery_scale" }'))
    assert main(["report", str(refused), "-o", str(out)]) == 1
    assert "mystery" in capsys.readouterr().err
    page = out.read_text(encoding="utf-8")
    data = page_data(page)
    assert data["analysis"]["refusal"]["layer"] == "mystery"
    drawn = [html.unescape(n) for n in re.findall(r'data-layer="([^"]*)"', page)]
    assert drawn == [l["name"] for l in data["analysis"]["nets"][0]["layers"]] == ["data", "conv1"]
    with pytest.raises(caffemem.errors.UserError):
        caffemem.html_report(str(refused))


def test_a_log_whose_stack_names_the_engine_sets_the_page_s_engine(tmp_path):
    """The 3 GB AlexNet run of oracle-gpu died in caffe::LRNLayer::CrossChannelForward_gpu (a
    build without cuDNN): the page models that engine, says why, and still offers cuDNN; an
    explicit --engine wins over the log."""
    from conftest import shared_or_skip

    folder = shared_or_skip("oracle-gpu", "alexnet_oom_3000000000")
    args = [str(folder / "solver.prototxt"), "--input", "data=*,3,227,227", "--log", str(folder / "caffe.log"),
            "--gpu-mem", "3000000000"]
    first, *others = page_data(_report(tmp_path, *args))["variants"]
    assert first["engine"] == "caffe" and [v["engine"] for v in others] == ["cudnn"]
    assert first["verdict_lines"][0].startswith("engine CAFFE, read from the log (")
    a = caffemem.analyze(str(folder / "solver.prototxt"), input={"data": "*,3,227,227"}, engine="caffe",
                         gpu_mem=3_000_000_000)
    assert first["total_bytes"] == a.total_bytes
    chosen = page_data(_report(tmp_path, *args, "--engine", "cudnn"))["variants"][0]
    assert chosen["engine"] == "cudnn" and not any("read from the log" in x for x in chosen["verdict_lines"])
