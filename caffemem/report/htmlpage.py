"""``caffemem report``: the whole picture in one self-contained, offline HTML page.

One file: inline CSS, inline script, finished SVG (graph laid out here in Python, timeline,
curves), and the data as one ``<script type="application/json">`` block whose ``analysis``
is exactly ``caffemem analyze --format json`` (the JSON export of the page).  A
Content-Security-Policy forbids every fetch; no fonts, no CDNs.  Nothing depends on the
clock or on hash order, so the same inputs give the same bytes.

The page never re-models: switching the scenario/engine variant, the colouring kind or the
net only swaps numbers Python computed (``variants[]``, each the per-layer bytes of an
``analyze`` run with those options).
"""

from __future__ import annotations

import json
from typing import Optional

from .. import __version__
from ..units import human
from .htmlcharts import KIND_COLORS, KIND_ORDER, curves, timeline
from .htmlgraph import HEAT, Graph, esc, net_graph, render_svg, union_graph

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")


def _json_for_script(doc) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` as such."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _unknown(analysis) -> dict[str, list[int]]:
    """Per net, the layers whose type caffemem does not model (drawn and flagged)."""
    out = {}
    for net in analysis._built:
        idx = [i for i, l in enumerate(net.layers) if l.rule is None and not l.inserted_split]
        if idx:
            out[net.display_label] = idx
    return out


def variant_dict(a, cards, batch: Optional[int]) -> dict:
    """The numbers of one variant, as the page switches between them."""
    d = a._doc  # read only: to_dict() would copy it
    return {
        "key": f"{a.scenario} \u00b7 {a.mode}" + (f" \u00b7 {a.engine}" if a.mode == "gpu" else "")
               + (f" \u00b7 batch {batch}" if batch else ""),
        "scenario": a.scenario, "mode": a.mode, "engine": a.engine, "batch": batch,
        "total_bytes": a.total_bytes, "log_figure": a.log_memory_required_for_data,
        "bytes": dict(a.bytes), "peak_moment": a.peak_moment, "fit": d.get("fit"),
        "cards": [c.to_dict() for c in cards],
        "assumptions": list(a.assumptions), "warnings": list(a.warnings), "bridge": a.bridge,
        # what `caffemem analyze` says besides the figures shown here: scope, engine, notes
        "verdict_lines": _verdict_lines(a._result.verdict),
        "layers": {n["label"]: [l.get("bytes", {}) for l in n["layers"]] for n in d["nets"]},
    }


def _verdict_lines(v) -> list[str]:
    """The verdict's words the page shows besides its figures (the card table, the fit line
    and the assumptions are shown on their own)."""
    return list(v.scope) + v.host_lines() \
        + ([v.engines.line()] if v.engines is not None and v.engines.sensitive else []) + list(v.notes)


def _graphs(analysis, diff, failure_layers: dict) -> tuple[str, list[dict]]:
    """The SVG of every net (in diff mode the first net is the union of old and new)."""
    doc = analysis._doc
    out, facts = [], []
    all_totals = [sum(l.get("bytes", {}).values()) for n in doc["nets"] for l in n["layers"]]
    top = max(all_totals, default=0)
    unknown = _unknown(analysis)
    for k, n in enumerate(doc["nets"]):
        label = n["label"]
        if k == 0 and diff is not None:
            g = _diff_graph(diff, label)
            vals = [abs(l["delta_bytes"]) for l in diff_layers(diff)]
            svg, f = render_svg(g, f"graph-{k}", max(vals, default=0))
        else:
            values = [sum(l.get("bytes", {}).values()) for l in n["layers"]]
            g = net_graph(n, label, values, set(unknown.get(label, [])))
            for b in g.boxes:
                for r in b.rows:
                    if r.name in failure_layers.get(label, ()):
                        r.flag = (r.flag + " oom").strip()
            svg, f = render_svg(g, f"graph-{k}", top)
        f["net"] = label
        facts.append(f)
        out.append(f'<div class="net-graph" data-net="{esc(label)}"{"" if k == 0 else " hidden"}>{svg}</div>')
    return "".join(out), facts


def diff_layers(diff) -> list[dict]:
    """Every layer of the merged graph (the new net's first net, then the old net's layers
    with no counterpart), with its status and bytes by kind on each side."""
    if hasattr(diff, "_merged"):
        return diff._merged
    d = diff._diff
    status = {}
    for s, layer, _ in d.changes():
        status[layer] = s
    out = []
    for o, n in d.pairs:
        c = n or o
        if "@" in c.name:  # test nets' layers: the graph merges the first nets only
            continue
        ob, nb = (o.bytes if o else {}), (n.bytes if n else {})
        st = "added" if o is None else "removed" if n is None else status.get(c.name) or \
            ("changed" if ob != nb else "same")
        out.append({"name": c.name, "old_name": o.name if o else None, "type": c.type, "status": st,
                    "old_bytes": {k: v for k, v in ob.items() if v}, "new_bytes": {k: v for k, v in nb.items() if v},
                    "delta_bytes": sum(nb.values()) - sum(ob.values())})
    diff._merged = out
    return out


def _diff_graph(diff, label: str) -> Graph:
    layers = diff_layers(diff)
    old_net = diff.old._doc["nets"][0]
    new_net = diff.new._doc["nets"][0]
    pairs = [(l["old_name"], l["name"] if l["status"] != "removed" else None) for l in layers]
    status = {l["name"]: l["status"] for l in layers}
    values = {l["name"]: abs(l["delta_bytes"]) for l in layers}
    g = union_graph(old_net, new_net, pairs, status, values)
    index = {l["name"]: i for i, l in enumerate(layers)}
    for b in g.boxes:
        for r in b.rows:
            r.net = label
            r.index = index.get(r.name, -1)
            l = layers[r.index] if r.index >= 0 else None
            if l is not None:
                r.title = f"{r.name} ({l['type']}): {l['status']}, {'+' if l['delta_bytes'] >= 0 else ''}{human(l['delta_bytes'])}"
    return g


def render(analysis, variants: list[dict], *, diff=None, log=None, gpu_mem: Optional[int] = None,
           title: str = "") -> str:
    """The page (see the module docstring).  ``variants[0]`` is ``analysis`` itself."""
    failure_layers: dict[str, list[str]] = {}
    if log is not None and log.failure:
        f = log.failure
        names = [f["layer"]] if f.get("layer") else list(f.get("candidates") or [])
        label = f.get("net_label") or analysis.nets[0].label
        if label not in [n.label for n in analysis.nets]:
            label = analysis.nets[0].label
        failure_layers[label] = names
    graphs, facts = _graphs(analysis, diff, failure_layers)
    data = {
        "version": __version__, "source": analysis.source, "analysis": analysis._doc,
        "variants": variants, "kinds": [k for k in KIND_ORDER if k != "context"],
        "kind_colors": KIND_COLORS, "heat": list(HEAT), "unknown": _unknown(analysis),
        "gpu_mem": gpu_mem, "graph_facts": facts, "failure_layers": failure_layers,
        "diff": None, "log": None,
    }
    if diff is not None:
        data["diff"] = {"summary": diff._doc, "layers": diff_layers(diff),
                        "net": analysis.nets[0].label}
    if log is not None:
        data["log"] = {"path": log.path, "failure": log.failure, "diagnosis": log.diagnosis, "fixes": log.fixes,
                       # another run after the fatal line: the failure is not the log's end
                       "later_run_line": getattr(log._summary, "resumed_at", None)}
    sections = [
        ('graph', 'Graph', f'''<div class="toolbar">
<span id="net-tabs" role="tablist"></span>
<label>colour by <select id="kind"></select></label>
<input id="search" type="search" placeholder="search name or type" aria-label="search layers">
<span id="search-count" class="muted"></span>
<button id="zoom-out" title="zoom out">\u2212</button><button id="zoom-in" title="zoom in">+</button>
<button id="zoom-fit" title="zoom to fit">fit</button><button id="zoom-1" title="actual size">1:1</button>
<span class="sep"></span>
<button id="export-svg">SVG</button><button id="export-json">JSON</button><button id="export-csv">CSV</button>
</div>
<div class="graph-wrap"><div id="viewport" class="viewport" tabindex="-1">{graphs}</div>
<aside id="details" aria-live="polite"><p class="muted">Click a layer (or Tab to it and press Enter) for its bytes by kind.</p></aside></div>
<div id="heat-legend" class="legend"></div>'''),
        ('layers', 'Layers', '''<div class="toolbar"><input id="filter" type="search" placeholder="filter rows (name, type)" aria-label="filter table">
<span id="row-count" class="muted"></span></div>
<div class="table-wrap"><table id="table"><thead></thead><tbody></tbody></table></div>'''),
        ('timeline', 'Timeline', '<p class="muted">Live bytes through the first iteration, as the model replays '
                                 'Caffe\'s allocations, stacked by kind; Caffe never frees, so what the first '
                                 'iteration touches stays.</p>' + timeline(analysis, gpu_mem)),
    ]
    if diff is not None:
        sections.append(('diff', 'Diff', '<div id="diff-panel"></div>'))
    if log is not None:
        sections.append(('log', 'Log', '<div id="failure-panel"></div><div class="toolbar"><label><input id="logscale" '
                         f'type="checkbox"> log scale</label></div><div id="curves" class="linear">{curves(log)}</div>'))
    nav = "".join(f'<a href="#{sid}">{esc(name)}</a>' for sid, name, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{esc(name)}</h2>{html}</section>' for sid, name, html in sections)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="caffemem {esc(__version__)}">'
            f'<title>{esc(title or "caffemem report")}</title><style>{CSS}</style></head><body>'
            f'<header id="verdict"></header><nav>{nav}</nav>{body}'
            f'<script type="application/json" id="caffemem-data">{_json_for_script(data)}</script>'
            f'<script>{JS}</script></body></html>\n')


CSS = """
:root{--fg:#1d1d1f;--muted:#6b6b70;--line:#d0d0d4;--bg:#fff;--accent:#0b63ce;--bad:#c62828;--good:#2e7d32}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header#verdict{padding:14px 20px 10px;border-bottom:1px solid var(--line);background:#fafafa}
h1{font-size:18px;margin:0 0 6px}h2{font-size:16px;margin:0 0 8px}
nav{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line);padding:6px 20px}
nav a{margin-right:16px;color:var(--accent);text-decoration:none}section{padding:14px 20px;border-bottom:1px solid var(--line)}
.muted,.note{color:var(--muted)}.figures{display:flex;flex-wrap:wrap;gap:10px 28px;align-items:baseline;margin:6px 0}
.fig b{font-size:20px}.fig small{display:block;color:var(--muted)}.gap{margin:8px 0;max-width:1100px}
.bar{display:flex;height:16px;border:1px solid var(--line);background:#fff;margin:2px 0}.bar i{display:block;height:100%}
.barlabel{font-size:12px;color:var(--muted)}details#bridge{margin:4px 0 8px;max-width:1100px;font-size:13px}.verdict-line{font-size:15px;margin:4px 0}.verdict-text{font-size:13px;margin:2px 0;max-width:1100px}.fits{color:var(--good);font-weight:600}
.nofit{color:var(--bad);font-weight:600}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid var(--line);padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#f2f2f4;cursor:pointer;user-select:none}td.l,th.l{text-align:left}
.cards td,.cards th{cursor:default;min-width:44px;text-align:center}.cards td.none{color:var(--bad)}
.toolbar{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin-bottom:6px}.sep{width:12px}
button{font:inherit;font-size:12px;padding:2px 8px}select,input{font:inherit;font-size:12px}
#net-tabs button[aria-selected=true]{background:#dde8f7;border-color:var(--accent)}
.graph-wrap{display:flex;gap:10px;align-items:flex-start}.viewport{flex:1;height:72vh;overflow:auto;border:1px solid var(--line);background:#fcfcfc}
aside#details{width:330px;max-height:72vh;overflow:auto;font-size:12px;border:1px solid var(--line);padding:8px}
aside#details table{width:100%}svg.graph{display:block}
svg.graph text{font:11px ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;fill:#111}
svg.graph .ty{fill:#555}svg.graph .dark text,svg.graph .dark .ty{fill:#fff}svg.graph .shape{fill:#333;font-size:10px}
.frame{fill:#fff;stroke:#777;stroke-width:1}.edge{fill:none;stroke:#8a8a8a;stroke-width:1.2}.edge.old-only{stroke:#c62828;stroke-dasharray:4 3}
.row{cursor:pointer;outline:none}.row:focus rect,.row.sel rect{stroke:#0b63ce;stroke-width:2.5}
.row.hit rect{stroke:#ff00c8;stroke-width:2.5}.row.unmodelled rect{stroke:#c62828;stroke-dasharray:3 2;stroke-width:1.5}
.row.oom rect{stroke:#d500f9;stroke-width:3}svg.graph .oom-mark{fill:#d500f9;font-weight:700}svg.graph{margin:0 auto}.box.added .frame{stroke:#2e7d32;stroke-width:3}
.box.removed .frame{stroke:#c62828;stroke-width:2;stroke-dasharray:5 3}.box.changed .frame{stroke:#ef6c00;stroke-width:2.5}
.row.added text{font-weight:700}.row.removed text{text-decoration:line-through}
.legend{font-size:12px;margin:6px 0}.key{margin-right:12px;white-space:nowrap}.key i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px;border:1px solid #999}
.table-wrap{max-height:60vh;overflow:auto;border:1px solid var(--line)}#table tr.sel td{background:#dde8f7}#table tbody tr{cursor:pointer}
svg text{font:11px system-ui,sans-serif}svg .ax{fill:#555;font-size:10px}svg .grid{stroke:#eee}svg .axis{stroke:#999}
svg .band{stroke:none;opacity:.9}svg .phase{stroke:#bbb;stroke-dasharray:2 3}svg .phase-label{font-size:9px;fill:#555}
svg .mark{stroke-width:1.5}svg .mark.peak{stroke:#111}svg .mark.logfig{stroke:#0b63ce;stroke-dasharray:6 4}
svg .mark.capacity{stroke:#c62828;stroke-dasharray:3 3}svg .mark.runout{stroke:#c62828;stroke-width:2}svg .mark-label{font-size:11px}svg .mark-label.capacity{fill:#c62828}
svg .mark-label.logfig{fill:#0b63ce}svg .series{fill:none;stroke-width:1.3}svg .title{font-weight:600}
#curves.linear .scale-log,#curves.log .scale-linear{display:none}figure.chart{margin:0 0 10px}
.failure{border-left:4px solid var(--bad);padding:6px 12px;background:#fff5f5;max-width:1100px}.failure ul{margin:4px 0 4px 18px;padding:0}
.status-added{color:var(--good)}.status-removed{color:var(--bad)}.status-changed{color:#ef6c00}
@media print{nav,.toolbar,aside#details{display:none}.viewport,.table-wrap{height:auto;max-height:none;overflow:visible}}
"""

JS = r"""
(function(){
'use strict';
var D=JSON.parse(document.getElementById('caffemem-data').textContent);
var A=D.analysis, V=0, KIND='total', NET=A.nets[0].label, SEL=null, SORT={col:'total',dir:-1};
var $=function(s,r){return (r||document).querySelector(s)}, $$=function(s,r){return Array.prototype.slice.call((r||document).querySelectorAll(s))};
function h(s){return String(s==null?'':s).replace(/[&<>"']/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]})}
function human(n){var u=['B','KiB','MiB','GiB','TiB'],s=n<0?'-':'',v=Math.abs(n),i=0;if(v<1024)return s+v+' B';while(v>=1024&&i<u.length-1){v/=1024;i++}return s+v.toFixed(1)+' '+u[i]}
function fmt(n){return n==null?'':String(n).replace(/\B(?=(\d{3})+(?!\d))/g,',')}
function netOf(label){for(var i=0;i<A.nets.length;i++)if(A.nets[i].label===label)return A.nets[i];return null}
function lbytes(net,i){var v=D.variants[V].layers[net];return (v&&v[i])||{}}
function total(b){var t=0;for(var k in b)t+=b[k];return t}
function val(b){return KIND==='total'?total(b):(b[KIND]||0)}
var DIFF=D.diff;
function isDiffNet(net){return DIFF&&net===DIFF.net}
/* ---------- verdict header ---------- */
function header(){
  var v=D.variants[V], gap=v.total_bytes-v.log_figure, h0=[];
  h0.push('<h1>'+h(D.source)+' <small class="muted">caffemem '+h(D.version)+'</small></h1>');
  h0.push('<div class="figures"><span class="fig" id="peak" data-total-bytes="'+v.total_bytes+'"><small>modeled peak ('+h(v.scenario)+', '+h(v.mode)+(v.mode==='gpu'?', engine '+h(v.engine):'')+')</small><b>'+human(v.total_bytes)+'</b> '+fmt(v.total_bytes)+' B</span>');
  h0.push('<span class="fig" id="logfig" data-log-bytes="'+v.log_figure+'"><small>Caffe\'s "Memory required for data"</small><b>'+human(v.log_figure)+'</b> '+fmt(v.log_figure)+' B</span>');
  h0.push('<span class="fig"><small>gap the log figure does not show</small><b>'+(gap>=0?'+':'')+human(gap)+'</b>'+(v.log_figure?' (\u00d7'+(v.total_bytes/v.log_figure).toFixed(1)+')':'')+'</span>');
  var opts=D.variants.map(function(x,i){return '<option value="'+i+'"'+(i===V?' selected':'')+'>'+h(x.key)+'</option>'}).join('');
  h0.push('<span class="fig"><small>scenario \u00b7 mode \u00b7 engine \u00b7 batch</small><select id="variant" aria-label="variant">'+opts+'</select></span></div>');
  if(v.fit){h0.push('<div class="verdict-line" id="fit" data-fits="'+v.fit.fits+'" data-needed="'+v.fit.needed_bytes+'" data-available="'+v.fit.available_bytes+'">'+(v.fit.fits?'<span class="fits">fits</span> in '+human(v.fit.available_bytes)+', '+human(v.fit.margin_bytes)+' to spare':'<span class="nofit">does not fit</span> in '+human(v.fit.available_bytes)+': '+human(-v.fit.margin_bytes)+' short')+'</div>')}
  if(A.refusal)h0.push('<div class="verdict-line nofit" id="refusal" data-layer-name="'+h(A.refusal.layer||'')+'">Caffe refuses '+h(A.refusal.net)+(A.refusal.layer?' at layer '+h(A.refusal.layer):'')+': '+h(A.refusal.message)+' \u2014 the figures and the graph are the layers before it.</div>');
  if(DIFF){var s=DIFF.summary;h0.push('<div class="verdict-line" id="diff-line">against the old net '+h(s.old)+': modeled '+human(s.old_total_bytes)+' \u2192 '+human(s.new_total_bytes)+' (<b>'+(s.delta_bytes>=0?'+':'')+human(s.delta_bytes)+'</b>), Caffe\'s log figure '+human(s.old_memory_required_for_data)+' \u2192 '+human(s.new_memory_required_for_data)+' \u00b7 <a href="#diff">where it comes from</a></div>')}
  if(D.log&&D.log.failure){var f=D.log.failure;h0.push('<div class="verdict-line nofit" id="failure-line">'+(D.log.later_run_line?'an earlier run of the log died (another run starts at line '+D.log.later_run_line+'): ':'the logged run died: ')+h(f.kind)+(f.phase&&f.phase!=='unknown'?', during '+h(f.phase):'')+(f.layer?' at '+h(f.layer):(f.candidates&&f.candidates.length?' at one of '+f.candidates.map(h).join(', '):''))+' \u00b7 <a href="#log">why, and the fixes</a></div>')}
  var kinds=Object.keys(v.bytes).sort(function(a,b){return v.bytes[b]-v.bytes[a]}), top=Math.max(v.total_bytes,v.log_figure)||1;
  var bar=kinds.map(function(k){return '<i title="'+h(k)+' '+human(v.bytes[k])+'" style="width:'+(100*v.bytes[k]/top).toFixed(2)+'%;background:'+(D.kind_colors[k]||'#bbb')+'"></i>'}).join('');
  h0.push('<div class="gap"><div class="barlabel">Caffe\'s log figure: every top\'s data once per top, nothing else</div><div class="bar"><i style="width:'+(100*v.log_figure/top).toFixed(2)+'%;background:#0b63ce"></i></div>');
  h0.push('<div class="barlabel">what the model allocates, by kind (peak during '+h(v.peak_moment)+')</div><div class="bar" id="kindbar">'+bar+'</div><div class="legend">'+kinds.map(function(k){return '<span class="key" data-kind="'+h(k)+'" data-bytes="'+v.bytes[k]+'"><i style="background:'+(D.kind_colors[k]||'#bbb')+'"></i>'+h(k)+' '+human(v.bytes[k])+'</span>'}).join('')+'</div></div>');
  if(v.bridge)h0.push('<details id="bridge"><summary>from Caffe\'s log figure to the modeled peak, kind by kind</summary><p>'+v.bridge.split('\n').map(h).join('<br>')+'</p></details>');
  if(v.cards.length){h0.push('<table class="cards" id="cards"><tr><th>card</th>'+v.cards.map(function(c){return '<th>'+Math.round(c.capacity_bytes/1073741824)+' GiB</th>'}).join('')+'</tr><tr><th>largest batch</th>'+v.cards.map(function(c){return '<td data-card="'+c.capacity_bytes+'" data-largest="'+(c.largest_batch==null?'':c.largest_batch)+'"'+(c.largest_batch==null?' class="none">\u2013':'>'+(c.at_least?'\u2265':'')+c.largest_batch)+'</td>'}).join('')+'</tr></table>')}
  else if(v.cards_note)h0.push('<p class="muted" id="cards-note">no card table: '+h(v.cards_note)+'</p>');
  else if(D.variants[0].cards.length)h0.push('<p class="muted">largest batch per card: computed for '+h(D.variants[0].key)+' (switch back to see it)</p>');
  var unk=0;for(var n in D.unknown)unk+=D.unknown[n].length;
  if(unk)h0.push('<p class="nofit" id="unmodelled-count" data-count="'+unk+'">'+unk+' layer(s) of types caffemem does not know: drawn (dashed red) and not modelled</p>');
  (v.verdict_lines||[]).forEach(function(l){h0.push('<div class="verdict-text">'+h(l)+'</div>')});
  (v.assumptions||[]).forEach(function(a){h0.push('<div class="muted">assumption: '+h(a.what)+(a.fix?' (correct it with <code>'+h(a.fix)+'</code>)':'')+'</div>')});
  (v.warnings||[]).forEach(function(a){h0.push('<div class="nofit">warning: '+h(a)+'</div>')});
  $('#verdict').innerHTML=h0.join('');
  $('#variant').addEventListener('change',function(e){V=+e.target.value;header();recolor();table();if(SEL)details(SEL.net,SEL.i)});
}
/* ---------- graph ---------- */
function rows(){return $$('.net-graph:not([hidden]) .row')}
function recolor(paint){  /* paint=false: the SVG already has these fills (Python drew them) */
  var top=0, all=$$('.row'), diffTop=0;
  all.forEach(function(r){var n=r.getAttribute('data-net'),i=+r.getAttribute('data-i');if(isDiffNet(n)){var L=DIFF.layers[i];if(L)diffTop=Math.max(diffTop,Math.abs(L.delta_bytes))}else top=Math.max(top,val(lbytes(n,i)))});
  if(paint!==false)all.forEach(function(r){
    if(r.classList.contains('oom'))return;  /* the failing layer keeps its own fill */
    var n=r.getAttribute('data-net'),i=+r.getAttribute('data-i'),v,t;
    if(isDiffNet(n)){var L=DIFF.layers[i];v=L?Math.abs(L.delta_bytes):0;t=diffTop}else{v=val(lbytes(n,i));t=top}
    var k=(v<=0||t<=0)?0:Math.min(D.heat.length-1,1+Math.floor(Math.sqrt(v/t)*(D.heat.length-1)));
    r.querySelector('rect').setAttribute('fill',D.heat[k]);r.classList.toggle('dark',k>=D.heat.length-3)});
  $('#heat-legend').innerHTML='colour: '+(A.nets.length>1||!DIFF?h(KIND)+' bytes per layer (square-root scale), largest '+human(top):'')+(DIFF?'; merged diff graph: |bytes gained or lost|, largest '+human(diffTop)+'; frame: <span class="status-added">added</span>, <span class="status-removed">removed</span>, <span class="status-changed">changed</span>':'')+' '+D.heat.map(function(c){return '<span class="key"><i style="background:'+c+'"></i></span>'}).join('');
}
function showNet(label){
  NET=label;$$('.net-graph').forEach(function(g){g.hidden=g.getAttribute('data-net')!==label});
  $$('#net-tabs button').forEach(function(b){b.setAttribute('aria-selected',b.getAttribute('data-net')===label)});
  table();
}
function rowEl(net,i){return $$('.row').filter(function(r){return r.getAttribute('data-net')===net&&+r.getAttribute('data-i')===i})[0]}
function select(net,i,scroll){
  if(net!==NET)showNet(net);
  $$('.row.sel').forEach(function(r){r.classList.remove('sel')});
  var el=rowEl(net,i);SEL={net:net,i:i};
  if(el){el.classList.add('sel');if(scroll)el.scrollIntoView({block:'center',inline:'center'})}
  details(net,i);
  $$('#table tbody tr.sel').forEach(function(r){r.classList.remove('sel')});
  var tr=$('#table tbody tr[data-i="'+i+'"]');if(tr){tr.classList.add('sel');var w=$('.table-wrap');var top=tr.offsetTop-w.clientHeight/2;w.scrollTop=top>0?top:0}
}
function kindRows(b,attr){var ks=Object.keys(b).sort(function(x,y){return b[y]-b[x]});return ks.map(function(k){return '<tr data-'+attr+'="'+h(k)+'" data-bytes="'+b[k]+'"><td class="l">'+h(k)+'</td><td>'+fmt(b[k])+'</td><td>'+human(b[k])+'</td></tr>'}).join('')}
function details(net,i){
  var out=[];
  if(isDiffNet(net)){
    var L=DIFF.layers[i];if(!L)return;
    out.push('<h2>'+h(L.name)+'</h2><div>'+h(L.type)+' \u00b7 <span class="status-'+h(L.status)+'">'+h(L.status)+'</span>'+(L.old_name&&L.old_name!==L.name?' (was '+h(L.old_name)+')':'')+'</div>');
    out.push('<p>bytes '+(L.delta_bytes>=0?'gained':'lost')+': <b id="delta" data-bytes="'+L.delta_bytes+'">'+(L.delta_bytes>=0?'+':'')+fmt(L.delta_bytes)+'</b> ('+human(L.delta_bytes)+')</p>');
    out.push('<h3>old</h3>'+(L.status==='added'?'<p class="muted">not in the old net</p>':'<table>'+kindRows(L.old_bytes,'old-kind')+'</table>')+'<h3>new</h3>'+(L.status==='removed'?'<p class="muted">not in the new net</p>':'<table>'+kindRows(L.new_bytes,'new-kind')+'</table>'));
  } else {
    var N=netOf(net),l=N&&N.layers[i];if(!l)return;var b=lbytes(net,i),t=total(b);
    out.push('<h2>'+h(l.name)+'</h2><div>'+h(l.type)+' \u00b7 '+h(net)+' \u00b7 layer '+i+'</div>');
    if(D.unknown[net]&&D.unknown[net].indexOf(i)>=0)out.push('<p class="nofit">type '+h(l.type)+' is not known to caffemem: drawn, not modelled</p>');
    out.push('<table id="layer-bytes" data-for="'+h(l.name)+'" data-total="'+t+'"><tr><th class="l">kind</th><th>bytes</th><th></th></tr>'+kindRows(b,'kind')+'<tr><th class="l">total</th><th id="layer-total">'+fmt(t)+'</th><th>'+human(t)+'</th></tr></table>');
    out.push('<p>'+l.tops.map(function(tp){return h(tp.name)+(tp.in_place?' (in place)':'')+': '+(tp.shape.length?h(tp.shape.join('\u00d7')):'scalar')}).join('<br>')+'</p>');
    if(l.param_shapes.length)out.push('<p>params: '+l.param_shapes.map(function(s){return h(s.join('\u00d7'))}).join(', ')+' ('+fmt(l.param_count)+')</p>');
    out.push('<p>bottoms: '+(l.bottoms.map(h).join(', ')||'\u2013')+'<br>Caffe\'s running log figure: '+fmt(l.memory_required_for_data)+' B<br>FLOPs: '+fmt(l.flops)+'</p>');
    (l.notes||[]).forEach(function(n){out.push('<p class="muted">'+h(n)+'</p>')});
  }
  out.push('<p><a href="#layer='+encodeURIComponent(isDiffNet(net)?DIFF.layers[i].name:netOf(net).layers[i].name)+'&amp;net='+encodeURIComponent(net)+'">link to this layer</a></p>');
  $('#details').innerHTML=out.join('');
}
function search(q){
  $$('.row.hit').forEach(function(r){r.classList.remove('hit')});
  q=q.trim().toLowerCase();if(!q){$('#search-count').textContent='';return []}
  var hits=rows().filter(function(r){var name=r.getAttribute('data-layer').toLowerCase(),ty=(r.getAttribute('aria-label')||'').toLowerCase();var t=ty.slice(ty.lastIndexOf('(')+1,-1);return name.indexOf(q)>=0||t===q});
  hits.forEach(function(r){r.classList.add('hit')});
  $('#search-count').textContent=hits.length+' match'+(hits.length===1?'':'es');$('#search-count').setAttribute('data-count',hits.length);
  return hits;
}
var SCALE=1;
function zoom(s){SCALE=s;$$('svg.graph').forEach(function(g){g.setAttribute('width',(+g.getAttribute('data-width')*s).toFixed(0));g.setAttribute('height',(+g.getAttribute('data-height')*s).toFixed(0))})}
function fit(){var g=$('.net-graph:not([hidden]) svg.graph'),vp=$('#viewport');if(!g)return;zoom(Math.min(1,Math.min((vp.clientWidth-4)/+g.getAttribute('data-width'),(vp.clientHeight-4)/+g.getAttribute('data-height'))))}
function fromHash(){
  var m=/^#layer=([^&]*)(?:&net=(.*))?$/.exec(location.hash);if(!m)return;
  var name=decodeURIComponent(m[1]),net=m[2]?decodeURIComponent(m[2]):null;
  var el=$$('.row').filter(function(r){return r.getAttribute('data-layer')===name&&(!net||r.getAttribute('data-net')===net)})[0];
  if(el)select(el.getAttribute('data-net'),+el.getAttribute('data-i'),true);
}
/* ---------- table ---------- */
function table(){
  var N=netOf(NET);if(!N)return;var ks={},diffMode=isDiffNet(NET),cols,list,q=($('#filter').value||'').trim().toLowerCase();
  var shapes=function(l){return l.tops.slice(0,2).map(function(t){return h(t.shape.join('\u00d7'))}).join(', ')+(l.tops.length>2?' +'+(l.tops.length-2):'')};
  if(diffMode){
    cols=[['#','i'],['layer','name'],['type','type'],['status','status'],['old','old'],['new','new'],['bytes gained or lost','total']];
    list=DIFF.layers.map(function(l,i){return {i:i,l:l,old:total(l.old_bytes),nw:total(l.new_bytes),t:l.delta_bytes}});
  } else {
    N.layers.forEach(function(l,i){var b=lbytes(NET,i);for(var k in b)ks[k]=1});
    var kinds=D.kinds.filter(function(k){return ks[k]});
    cols=[['#','i'],['layer','name'],['type','type'],['tops','tops']].concat(kinds.map(function(k){return [k,k]})).concat([['total','total']]);
    list=N.layers.map(function(l,i){var b=lbytes(NET,i);return {i:i,l:l,b:b,t:total(b)}});
  }
  list=list.filter(function(r){return !q||r.l.name.toLowerCase().indexOf(q)>=0||r.l.type.toLowerCase().indexOf(q)>=0});
  $('#table thead').innerHTML='<tr>'+cols.map(function(c){return '<th data-sort="'+h(c[1])+'"'+(['name','type','tops','status'].indexOf(c[1])>=0?' class="l"':'')+'>'+h(c[0])+(SORT.col===c[1]?(SORT.dir<0?' \u25bc':' \u25b2'):'')+'</th>'}).join('')+'</tr>';
  var key=SORT.col;list.sort(function(x,y){var a,b;if(key==='i'){a=x.i;b=y.i}else if(key==='name'||key==='type'||key==='status'){a=x.l[key];b=y.l[key];return SORT.dir*(a<b?-1:a>b?1:0)||x.i-y.i}else if(key==='tops'){a=x.l.tops.length;b=y.l.tops.length}else if(key==='total'){a=diffMode?Math.abs(x.t):x.t;b=diffMode?Math.abs(y.t):y.t}else if(key==='old'||key==='new'){a=x[key==='new'?'nw':'old'];b=y[key==='new'?'nw':'old']}else{a=x.b[key]||0;b=y.b[key]||0}return SORT.dir*(a-b)||x.i-y.i});
  $('#table tbody').innerHTML=list.map(function(r){
    var head='<tr data-i="'+r.i+'" data-name="'+h(r.l.name)+'" data-total="'+r.t+'"'+(SEL&&SEL.net===NET&&SEL.i===r.i?' class="sel"':'')+'><td>'+r.i+'</td><td class="l">'+h(r.l.name)+'</td><td class="l">'+h(r.l.type)+'</td>';
    if(diffMode)return head+'<td class="l status-'+h(r.l.status)+'">'+h(r.l.status)+'</td><td>'+human(r.old)+'</td><td>'+human(r.nw)+'</td><td data-bytes="'+r.t+'">'+(r.t>=0?'+':'')+human(r.t)+'</td></tr>';
    return head+'<td class="l">'+shapes(r.l)+'</td>'+kinds.map(function(k){return '<td>'+(r.b[k]?human(r.b[k]):'')+'</td>'}).join('')+'<td data-bytes="'+r.t+'">'+human(r.t)+'</td></tr>'}).join('');
  $('#row-count').textContent=list.length+' of '+(diffMode?DIFF.layers.length+' layers of the merged graph':N.layers.length+' layers')+' ('+NET+')';
}
function csv(){
  var lines=['net,index,layer,type,kind,bytes'];
  A.nets.forEach(function(n){n.layers.forEach(function(l,i){var b=lbytes(n.label,i);Object.keys(b).forEach(function(k){lines.push([n.label,i,l.name,l.type,k,b[k]].map(function(c){c=String(c);return /[",\n]/.test(c)?'"'+c.replace(/"/g,'""')+'"':c}).join(','))})})});
  return lines.join('\n')+'\n';
}
function download(name,type,text){var a=document.createElement('a');a.href=URL.createObjectURL(new Blob([text],{type:type}));a.download=name;document.body.appendChild(a);a.click();setTimeout(function(){URL.revokeObjectURL(a.href);a.remove()},0)}
/* ---------- diff and log panels ---------- */
function diffPanel(){
  if(!DIFF)return;var s=DIFF.summary,c={added:0,removed:0,changed:0,same:0};DIFF.layers.forEach(function(l){c[l.status]++});
  $('#diff-panel').innerHTML='<p id="diff-headline" data-delta="'+s.delta_bytes+'">'+h(s.headline)+'</p><p>old '+h(s.old)+': '+fmt(s.old_total_bytes)+' B \u2192 new '+h(s.new)+': '+fmt(s.new_total_bytes)+' B (<b>'+(s.delta_bytes>=0?'+':'')+human(s.delta_bytes)+'</b>); log figure '+fmt(s.old_memory_required_for_data)+' \u2192 '+fmt(s.new_memory_required_for_data)+' B</p>'+
  '<p id="diff-counts">'+['added','removed','changed','same'].map(function(k){return '<span class="status-'+k+'" data-status="'+k+'" data-count="'+c[k]+'">'+c[k]+' '+k+'</span>'}).join(' \u00b7 ')+'</p>'+
  '<table id="contributors"><tr><th class="l">layer</th><th class="l">kind</th><th class="l">status</th><th>bytes</th></tr>'+s.contributors.slice(0,15).map(function(x){return '<tr data-layer-name="'+h(x.layer)+'" data-bytes="'+x.delta_bytes+'"><td class="l"><a href="#layer='+encodeURIComponent(x.layer)+'">'+h(x.layer)+'</a></td><td class="l">'+h(x.kind)+'</td><td class="l">'+h(x.status)+'</td><td>'+(x.delta_bytes>=0?'+':'')+human(x.delta_bytes)+'</td></tr>'}).join('')+'</table>';
}
function logPanel(){
  if(!D.log)return;var f=D.log.failure,d=D.log.diagnosis,o=[];
  if(!f){o.push('<p>no failure in the log</p>')}else{
    o.push('<div class="failure" id="failure" data-kind="'+h(f.kind)+'"><b>'+h(f.kind)+'</b>, '+(/^not shown/.test(f.phase_text||'')?'when: ':'during ')+h(f.phase_text||f.phase)+'<br><code>'+h((f.source?f.source+': ':'')+f.message)+'</code>');
    var names=f.layer?[f.layer]:(f.candidates||[]);
    if(names.length){var fl=D.failure_layers,net=Object.keys(fl)[0];o.push('<p>at: '+names.map(function(n){return '<a class="failing" href="#layer='+encodeURIComponent(n)+(net?'&amp;net='+encodeURIComponent(net):'')+'">'+h(n)+'</a>'}).join(', ')+(f.layer?'':' (candidates: the log does not say which)')+'</p>')}
    o.push('<ul>'+(f.explanation||[]).map(function(e){return '<li>'+h(e)+'</li>'}).join('')+'</ul>');
    if(d&&!d.error){o.push('<p>model: '+human(d.modeled_total_bytes)+(d.capacity_bytes?' against '+human(d.capacity_bytes):'')+(d.runs_out_at?'<br>runs out at: '+h(d.runs_out_at):'')+'</p>'+(d.notes||[]).map(function(n){return '<p class="muted">'+h(n)+'</p>'}).join(''))}
    else if(d&&d.error)o.push('<p class="muted">diagnosis: '+h(d.error)+'</p>');
    var fx=D.log.fixes||[];if(fx.length)o.push('<p>what would make it fit, first things first:</p><ul id="fixes">'+fx.map(function(x){return '<li data-action="'+h(x.action)+'" data-fits="'+(x.fits==null?'':x.fits)+'" data-bytes="'+(x.total_bytes==null?'':x.total_bytes)+'">'+h(x.detail)+(x.total_bytes!=null?' \u2192 '+human(x.total_bytes)+' ('+(x.fits?'fits':'still too big')+')':'')+' <span class="muted">['+h(x.confidence)+']</span></li>'}).join('')+'</ul>');
    o.push('</div>');
  }
  $('#failure-panel').innerHTML=o.join('');
  $('#logscale').addEventListener('change',function(e){$('#curves').className=e.target.checked?'log':'linear'});
}
/* ---------- wiring ---------- */
function init(){
  header();
  var tabs=A.nets.map(function(n){return '<button data-net="'+h(n.label)+'" role="tab" aria-selected="'+(n.label===NET)+'">'+h(n.label)+(isDiffNet(n.label)?' (merged old + new)':'')+'</button>'});
  $('#net-tabs').innerHTML=A.nets.length>1||DIFF?tabs.join(''):'';
  $('#net-tabs').addEventListener('click',function(e){var b=e.target.closest('button');if(b)showNet(b.getAttribute('data-net'))});
  $('#kind').innerHTML=['total'].concat(D.kinds).map(function(k){return '<option>'+h(k)+'</option>'}).join('');
  $('#kind').addEventListener('change',function(e){KIND=e.target.value;recolor()});
  $('#viewport').addEventListener('click',function(e){var r=e.target.closest('.row');if(r)select(r.getAttribute('data-net'),+r.getAttribute('data-i'),false)});
  $('#viewport').addEventListener('keydown',function(e){var r=e.target.closest&&e.target.closest('.row');if(r&&(e.key==='Enter'||e.key===' ')){e.preventDefault();select(r.getAttribute('data-net'),+r.getAttribute('data-i'),false)}});
  $('#search').addEventListener('input',function(e){search(e.target.value)});
  $('#search').addEventListener('keydown',function(e){if(e.key==='Enter'){var hit=search(e.target.value)[0];if(hit)select(hit.getAttribute('data-net'),+hit.getAttribute('data-i'),true)}});
  $('#zoom-in').addEventListener('click',function(){zoom(SCALE*1.25)});$('#zoom-out').addEventListener('click',function(){zoom(SCALE/1.25)});
  $('#zoom-fit').addEventListener('click',fit);$('#zoom-1').addEventListener('click',function(){zoom(1)});
  $('#filter').addEventListener('input',table);
  $('#table thead').addEventListener('click',function(e){var th=e.target.closest('th');if(!th)return;var c=th.getAttribute('data-sort');SORT={col:c,dir:SORT.col===c?-SORT.dir:(c==='name'||c==='type'||c==='i'?1:-1)};table()});
  $('#table tbody').addEventListener('click',function(e){var tr=e.target.closest('tr');if(tr)select(NET,+tr.getAttribute('data-i'),true)});
  $('#export-svg').addEventListener('click',function(){var g=$('.net-graph:not([hidden]) svg.graph');download('caffemem-graph.svg','image/svg+xml','<?xml version="1.0" encoding="UTF-8"?>\n'+g.outerHTML)});
  $('#export-json').addEventListener('click',function(){download('caffemem.json','application/json',JSON.stringify(A,null,1)+'\n')});
  $('#export-csv').addEventListener('click',function(){download('caffemem.csv','text/csv',csv())});
  recolor(false);table();diffPanel();logPanel();
  window.addEventListener('hashchange',fromHash);fromHash();
  requestAnimationFrame(function(){window.__caffememReady=true});
}
try{init()}catch(e){window.__caffememError=String(e&&e.stack||e);throw e}
})();
"""
