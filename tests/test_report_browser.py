"""The HTML report in real headless Chromium (Debian's ``chromium``, driven over the DevTools
protocol by ``tests/cdp.py``): no network, no errors, every layer once, clicks that show the
JSON's bytes, the verdict equal to ``analyze``/``fit``, a sane layout, search, links, the
diff, the log, escaping.  Skipped, with a message, where no Chromium is installed (CI
installs it: ``.ci/run``).

Screenshots go to ``$CAFFEMEM_SCREENSHOTS`` (default: the test's temporary directory)."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

import caffemem
from caffemem.cli import main

from cdp import Browser, find_chromium
from conftest import ROOT, SAMPLES, SHARED

DATA = Path(__file__).with_name("data") / "report"
CHROMIUM = find_chromium()

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium found (Debian: apt-get install -y chromium; .ci/run installs it): "
                             "the browser tests of the HTML report are skipped")


@pytest.fixture(scope="module")
def browser():
    b = Browser(CHROMIUM)
    yield b
    b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = Path(os.environ.get("CAFFEMEM_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def report(tmp_path: Path, *argv: str) -> Path:
    out = tmp_path / "report.html"
    assert main(["report", *argv, "-o", str(out)]) == 0
    return out


def analyze_json(tmp_path: Path, *argv: str) -> dict:
    out = tmp_path / "analyze.json"
    assert main(["analyze", *argv, "--format", "json", "-o", str(out)]) == 0
    return json.loads(out.read_text())


def open_page(browser: Browser, path: Path, hash_: str = "") -> float:
    assert path.stat().st_size < 3_000_000, f"{path} is {path.stat().st_size:,} bytes"
    fresh = browser.eval("location.href.split('#')[0]") != path.as_uri()
    ready = browser.open(path.as_uri() + hash_)
    browser.pump(0.2)
    if fresh:
        assert browser.requests() == [path.as_uri()], "the page fetched something besides itself"
    return ready


def check_clean(browser: Browser, path: Path) -> None:
    """No request but the file itself (none at all after a same-document navigation), no
    console error or warning, no uncaught exception, no dialog."""
    assert set(browser.requests()) <= {path.as_uri()}, "the page fetched something besides itself"
    assert browser.problems() == []


def check_layout(browser: Browser) -> dict:
    """No two boxes of the visible graph overlap; every edge runs downward between its boxes."""
    got = browser.eval("""(function(){
      var g=document.querySelector('.net-graph:not([hidden]) svg.graph');
      var boxes={};g.querySelectorAll('.box').forEach(function(b){var r=b.querySelector('.frame').getBBox();
        boxes[b.getAttribute('data-box')]=[r.x,r.y,r.width,r.height]});
      var edges=[];g.querySelectorAll('path.edge').forEach(function(p){var n=p.getTotalLength(),a=p.getPointAtLength(0),
        z=p.getPointAtLength(n),ys=[];for(var k=0;k<=20;k++)ys.push(p.getPointAtLength(n*k/20).y);
        edges.push([p.getAttribute('data-from'),p.getAttribute('data-to'),a.y,z.y,ys])});
      return {boxes:boxes,edges:edges};})()""")
    boxes = list(got["boxes"].values())
    for i, (x, y, w, h) in enumerate(boxes):
        assert w > 0 and h > 0
        for (x2, y2, w2, h2) in boxes[:i]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, "two boxes overlap"
    for u, v, y0, y1, ys in got["edges"]:
        bu, bv = got["boxes"][u], got["boxes"][v]
        assert bv[1] > bu[1] and y1 > y0
        assert abs(y0 - (bu[1] + bu[3])) < 2 and abs(y1 - bv[1]) < 2
        assert all(b >= a - 0.5 for a, b in zip(ys, ys[1:])), "an edge turns upward"
    return got


def click_layer(browser: Browser, net: str, index: int) -> dict:
    browser.click(f'.row[data-net="{net}"][data-i="{index}"]')
    return browser.eval("""(function(){var t=document.getElementById('layer-bytes');if(!t)return null;
      var out={total:+t.getAttribute('data-total'),bytes:{}};
      t.querySelectorAll('tr[data-kind]').forEach(function(r){out.bytes[r.getAttribute('data-kind')]=+r.getAttribute('data-bytes')});
      out.shown=+document.getElementById('layer-total').textContent.replace(/,/g,'');return out;})()""")


def check_largest_clicks(browser: Browser, doc: dict, net_index: int = 0, n: int = 5) -> None:
    net = doc["nets"][net_index]
    order = sorted(range(len(net["layers"])), key=lambda i: -sum(net["layers"][i].get("bytes", {}).values()))
    if net_index:
        browser.click(f'#net-tabs button[data-net="{net["label"]}"]')
    for i in order[:n]:
        expected = net["layers"][i].get("bytes", {})
        got = click_layer(browser, net["label"], i)
        assert got["bytes"] == expected and got["total"] == got["shown"] == sum(expected.values()), net["layers"][i]["name"]


# ---------------------------------------------------------------------------------------------


def test_googlenet_train_val(browser, shots, tmp_path):
    folder = SHARED / "oracle" / "googlenet_train_val"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: ../shared (oracle nets) is not next to this checkout")
    net = str(folder / "train_val.prototxt")
    argv = [net, "--input", "data=*,3,224,224", "--gpu-mem", "11GiB"]
    path = report(tmp_path, *argv)
    doc = analyze_json(tmp_path, *argv)
    ready = open_page(browser, path)
    assert ready < 2.0, f"ready after {ready:.2f} s"
    check_clean(browser, path)
    browser.screenshot(str(shots / "googlenet_report.png"))
    # every layer once
    assert browser.eval("document.querySelectorAll('[data-layer]').length") == sum(len(n["layers"]) for n in doc["nets"])
    # the verdict header equals analyze's JSON, and the card table fit's
    head = browser.eval("""(function(){return {total:+document.getElementById('peak').getAttribute('data-total-bytes'),
      log:+document.getElementById('logfig').getAttribute('data-log-bytes'),
      fits:document.getElementById('fit').getAttribute('data-fits'),
      needed:+document.getElementById('fit').getAttribute('data-needed'),
      cards:Array.prototype.map.call(document.querySelectorAll('#cards td[data-card]'),function(c){
        return [+c.getAttribute('data-card'),c.getAttribute('data-largest')]}),
      visible:document.getElementById('verdict').getBoundingClientRect().height}})()""")
    assert head["total"] == doc["total_bytes"]
    assert head["log"] == sum(n["memory_required_for_data"] for n in doc["nets"])
    assert (head["fits"] == "true") == doc["fit"]["fits"] and head["needed"] == doc["fit"]["needed_bytes"]
    assert head["visible"] > 0
    cards = dict(head["cards"])
    assert sorted(cards) == [g << 30 for g in (4, 6, 8, 11, 12, 16, 24, 32, 48, 80)]
    for gib in (8, 80):
        f = caffemem.fit(net, gib << 30, input={"data": "*,3,224,224"})
        assert cards[gib << 30] == ("" if f.largest is None else str(f.largest))
    check_layout(browser)
    # the fills Python drew are the ones the page's script computes
    fills = ("Array.prototype.map.call(document.querySelectorAll('.row'),function(r){"
             "return r.querySelector('rect').getAttribute('fill')+' '+r.getAttribute('class')})")
    drawn = browser.eval(fills)
    browser.eval("var s=document.getElementById('kind');s.value='diffs';s.dispatchEvent(new Event('change'))")
    assert browser.eval(fills) != drawn
    browser.eval("var s=document.getElementById('kind');s.value='total';s.dispatchEvent(new Event('change'))")
    assert browser.eval(fills) == drawn
    check_largest_clicks(browser, doc)
    # keyboard: Tab to a node and Enter shows it
    browser.eval("document.querySelector('.row[data-i=\"1\"]').focus()")
    browser.key("Enter")
    assert browser.eval("document.getElementById('layer-bytes').getAttribute('data-for')") == doc["nets"][0]["layers"][1]["name"]
    # search by type selects every such layer; by name exactly that one
    browser.eval("var s=document.getElementById('search');s.focus();s.value='';")
    for ch in "Convolution":
        browser.key(ch, text=ch)
    n_conv = sum(l["type"] == "Convolution" for l in doc["nets"][0]["layers"])
    assert browser.eval("document.querySelectorAll('.row.hit').length") == n_conv
    browser.eval("var s=document.getElementById('search');s.value='inception_4c/5x5_reduce';s.dispatchEvent(new Event('input'))")
    assert browser.eval("Array.prototype.map.call(document.querySelectorAll('.row.hit'),function(r){return r.getAttribute('data-layer')})") \
        == ["inception_4c/5x5_reduce"]
    # #layer= links open a layer
    open_page(browser, path, "#layer=" + "inception_4c%2F5x5_reduce")
    assert browser.eval("document.getElementById('layer-bytes').getAttribute('data-for')") == "inception_4c/5x5_reduce"
    assert browser.eval("document.querySelector('.row.sel').getAttribute('data-layer')") == "inception_4c/5x5_reduce"
    # table -> graph and graph -> table
    browser.click('#table tbody tr:nth-child(3)')
    i = browser.eval("+document.querySelector('#table tbody tr:nth-child(3)').getAttribute('data-i')")
    assert browser.eval("+document.querySelector('.row.sel').getAttribute('data-i')") == i
    browser.click('.row[data-i="7"]')
    assert browser.eval("+document.querySelector('#table tbody tr.sel').getAttribute('data-i')") == 7
    # exports: the JSON is analyze's, the CSV every layer's bytes by kind, the SVG the graph
    browser.call("Browser.setDownloadBehavior", behavior="deny")
    got = browser.eval("""(async function(){var made=[],orig=URL.createObjectURL;
      URL.createObjectURL=function(b){made.push(b);return orig.call(URL,b)};
      for(const id of ['export-json','export-csv','export-svg'])document.getElementById(id).click();
      URL.createObjectURL=orig;return await Promise.all(made.map(function(b){return b.text()}));})()""")
    assert json.loads(got[0]) == doc
    rows = got[1].splitlines()
    assert rows[0] == "net,index,layer,type,kind,bytes"
    assert len(rows) - 1 == sum(len(l.get("bytes", {})) for n in doc["nets"] for l in n["layers"])
    assert got[2].startswith("<?xml") and got[2].count("data-layer=") == len(doc["nets"][0]["layers"])
    # sorting by total puts the largest layer first
    first = browser.eval("document.querySelector('#table tbody tr').getAttribute('data-name')")
    totals = [sum(l.get("bytes", {}).values()) for l in doc["nets"][0]["layers"]]
    assert first == doc["nets"][0]["layers"][totals.index(max(totals))]["name"]
    check_clean(browser, path)


def _resnet_text() -> str:
    spec = importlib.util.spec_from_file_location("bench_analyze", ROOT / "bench" / "bench_analyze.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.resnet()


def test_resnet152_sized_net(browser, tmp_path):
    net = tmp_path / "resnet152.prototxt"
    net.write_text(_resnet_text())
    t = time.perf_counter()
    path = report(tmp_path, str(net))
    generation = time.perf_counter() - t  # informative here: bench/bench_report.py times it
    doc = analyze_json(tmp_path, str(net))
    ready = open_page(browser, path)
    assert ready < 2.0, f"ready after {ready:.2f} s (generation {generation:.2f} s)"
    check_clean(browser, path)
    n = sum(len(x["layers"]) for x in doc["nets"])
    assert n > 700 and browser.eval("document.querySelectorAll('[data-layer]').length") == n
    check_layout(browser)
    check_largest_clicks(browser, doc)
    check_clean(browser, path)


def test_segnet_diff_pair(browser, shots, tmp_path):
    old, new = str(SAMPLES / "segnet_old.prototxt"), str(SAMPLES / "segnet_new.prototxt")
    path = report(tmp_path, new, "--old", old, "--old-input", "data=*,4,384,512", "--engine", "caffe",
                  "--gpu-mem", "8GiB")
    d = caffemem.diff(old, new, old_input={"data": "*,4,384,512"}, engine="caffe", gpu_mem="8GiB")
    open_page(browser, path)
    check_clean(browser, path)
    browser.screenshot(str(shots / "segnet_diff_report.png"))
    check_layout(browser)
    got = browser.eval("""(function(){var c={};document.querySelectorAll('#diff-counts [data-status]').forEach(function(s){
      c[s.getAttribute('data-status')]=+s.getAttribute('data-count')});
      return {counts:c,delta:+document.getElementById('diff-headline').getAttribute('data-delta'),
      headline:document.getElementById('diff-headline').textContent,
      rows:document.querySelectorAll('[data-layer]').length,
      conv0:document.querySelector('.row[data-layer="conv0"]').getAttribute('class'),
      top:document.querySelector('#contributors tr[data-layer-name]').getAttribute('data-layer-name')}})()""")
    added = [c["layer"] for c in d.changes if c["status"] == "added"]
    assert got["counts"]["added"] == len(added) and "conv0" in added and "added" in got["conv0"].split()
    assert got["delta"] == d.delta_bytes and got["headline"] == d.headline
    assert got["top"] == d.contributors[0]["layer"]
    assert got["rows"] == len(d.new.layers) + sum(c["status"] == "removed" for c in d.changes)
    # a contributor's link opens the layer in the merged graph
    browser.click('#contributors a')
    browser.pump(0.1)
    assert browser.eval("document.querySelector('.row.sel').getAttribute('data-layer')") == d.contributors[0]["layer"]
    check_clean(browser, path)


def test_oom_log(browser, shots, tmp_path):
    folder = SHARED / "oracle-gpu" / "alexnet_oom_3000000000"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: ../shared (real out-of-memory logs) is not next to this checkout")
    log = str(folder / "caffe.log")
    path = report(tmp_path, str(folder / "solver.prototxt"), "--input", "data=*,3,227,227", "--log", log,
                  "--gpu-mem", "3000000000")
    r = caffemem.read_log(log, gpu_mem=3_000_000_000)
    open_page(browser, path, "#log")
    check_clean(browser, path)
    browser.screenshot(str(shots / "oom_log_report.png"))
    got = browser.eval("""(function(){return {kind:document.getElementById('failure').getAttribute('data-kind'),
      oom:Array.prototype.map.call(document.querySelectorAll('.row.oom'),function(r){return r.getAttribute('data-layer')}),
      fixes:Array.prototype.map.call(document.querySelectorAll('#fixes li'),function(l){var b=l.getAttribute('data-bytes');return b===''?null:+b}),
      fits:document.getElementById('fit').getAttribute('data-fits')}})()""")
    failing = [r.failure["layer"]] if r.failure["layer"] else r.failure["candidates"]
    assert got["kind"] == r.failure["kind"] and sorted(got["oom"]) == sorted(failing)
    assert got["fixes"] == [f.get("total_bytes") for f in r.fixes] and r.fixes
    assert got["fits"] == "false"
    browser.click('#failure a.failing')
    browser.pump(0.1)
    assert browser.eval("document.querySelector('.row.sel').getAttribute('data-layer')") == failing[0]
    check_clean(browser, path)


def test_training_curves_are_thinned_keeping_extremes(browser, tmp_path):
    log = Path(__file__).with_name("data") / "logs" / "train_ok.log"
    path = report(tmp_path, str(SAMPLES / "small_cnn_train.prototxt"), "--log", str(log))
    r = caffemem.read_log(log)
    open_page(browser, path)
    check_clean(browser, path)
    series = browser.eval("""Array.prototype.map.call(document.querySelectorAll('#curves .scale-linear polyline'),
      function(p){return [p.getAttribute('data-series'),+p.getAttribute('data-points')]})""")
    assert series and all(0 < n <= 2000 for _, n in series)
    browser.click('#logscale')
    assert browser.eval("document.getElementById('curves').className") == "log"
    assert len(r.train["iteration"]) >= 1


def test_hostile_names_render_literally(browser, tmp_path):
    net = str(DATA / "hostile.prototxt")
    path = report(tmp_path, net)
    open_page(browser, path)
    check_clean(browser, path)  # includes: no dialog
    a = caffemem.analyze(net)
    got = browser.eval("""(function(){return {names:Array.prototype.map.call(document.querySelectorAll('[data-layer]'),
      function(r){return r.getAttribute('data-layer')}), imgs:document.querySelectorAll('img').length,
      scripts:document.querySelectorAll('script').length, title:document.querySelector('#verdict h1').textContent}})()""")
    assert sorted(got["names"]) == sorted(l.name for l in a.layers)
    assert got["imgs"] == 0 and got["scripts"] == 2
    hostile = "<img src=x onerror=alert(1)>"
    i = [l.name for l in a.layers].index(hostile)
    got = click_layer(browser, "net", i)
    assert got["bytes"] == dict(a.layers[i].bytes)
    assert browser.eval("document.querySelector('#details h2').textContent") == hostile
    check_clean(browser, path)


def test_unknown_type_given_its_shape(browser, tmp_path):
    path = report(tmp_path, str(DATA / "unknown_type.prototxt"), "--input", "mystery=2,8,32,32")
    open_page(browser, path)
    check_clean(browser, path)
    assert browser.eval("document.querySelector('.row[data-layer=\"mystery\"]').classList.contains('unmodelled')")
    assert browser.eval("+document.getElementById('unmodelled-count').getAttribute('data-count')") == 1


def test_unknown_type_without_its_shape(browser, tmp_path):
    path = report(tmp_path, str(DATA / "unknown_type.prototxt"))
    open_page(browser, path)
    assert browser.eval("document.querySelector('.row[data-layer=\"mystery\"]').classList.contains('unmodelled')")


def test_variant_switch_shows_each_variants_json(browser, tmp_path):
    solver = str(SAMPLES / "small_cnn_solver.prototxt")
    path = report(tmp_path, solver, "--variants", "all", "--gpu-mem", "1GiB")
    open_page(browser, path)
    check_clean(browser, path)
    keys = browser.eval("Array.prototype.map.call(document.querySelectorAll('#variant option'),function(o){return o.textContent})")
    assert len(keys) == 6
    for k, key in enumerate(keys):
        scenario, mode, engine = key.split(" \u00b7 ")[:3]
        a = caffemem.analyze(solver, scenario=scenario, mode=mode, engine=engine, gpu_mem="1GiB")
        browser.eval(f"var s=document.getElementById('variant');s.value='{k}';s.dispatchEvent(new Event('change'))")
        assert browser.eval("+document.getElementById('peak').getAttribute('data-total-bytes')") == a.total_bytes
        big = max(a.net("train net").layers, key=lambda l: l.total_bytes)
        got = click_layer(browser, "train net", big.index)
        assert got["bytes"] == dict(big.bytes) and got["total"] == big.total_bytes
    check_clean(browser, path)
