"""A net (or the union of two nets) as a finished SVG graph for the HTML report.

Boxes follow netscope's and netron's convention: a layer whose tops are all in place (ReLU,
BatchNorm, Scale, Dropout...) and an inserted Split are rows inside the box of the layer
that produced their blob, so ResNet-152's ~1,000 layers become ~210 boxes.  Every layer is
still its own element, ``<g class="row" data-layer=NAME data-net=LABEL>``, with its bytes
and heat colour; the page's script only recolours and selects, it never lays out.

Every name that reaches the markup goes through :func:`esc` (a net may name a layer
``<img src=x onerror=alert(1)>``).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Optional

from .layout import layout

CHAR_W = 6.7  # px per character of the 11px monospace font
ROW_H = 17.0
SHAPE_H = 14.0
PAD = 6.0
MIN_W, MAX_W = 96.0, 300.0
MAX_CHARS = int((MAX_W - 2 * PAD) / CHAR_W)
#: heat ramp (light to dark); text turns white on the last two
HEAT = ("#f4f4f2", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#800026")
MARGIN = 16.0
FAILING = "#f6d5ff"  # the failing layer of a log keeps this fill, whatever the heat


def esc(text) -> str:
    """Text for HTML/SVG markup, attribute values included."""
    return html.escape(str(text), quote=True)


def short(text: str, n: int = MAX_CHARS) -> str:
    return text if len(text) <= n else text[:n - 1] + "\u2026"


def heat_index(value: int, top: int) -> int:
    """0 for nothing, else 1..8 by the square root of the share of the largest value."""
    if value <= 0 or top <= 0:
        return 0
    return min(len(HEAT) - 1, 1 + int(math.sqrt(value / top) * (len(HEAT) - 1)))  # as the page's script


def shape_text(shape) -> str:
    return "\u00d7".join(str(d) for d in shape) if shape else "scalar"


@dataclass
class Row:
    """One layer drawn as a row of a box."""

    net: str
    index: int  # the layer's index in its net (in a union: in the net it is drawn from)
    name: str
    type: str
    value: int = 0  # bytes of the kind the page opens with
    flag: str = ""  # "unmodelled" for a type caffemem does not know; diff statuses
    title: str = ""


@dataclass
class Box:
    rows: list[Row]
    tops: list[str] = field(default_factory=list)  # "name 32x64x56x56" of the box's outputs
    cls: str = ""


@dataclass
class Graph:
    boxes: list[Box]
    edges: list[tuple[int, int, str]]  # (box, box, blob name), box indices in topological order


def net_graph(net_dict: dict, label: str, values: list[int], unknown: set) -> Graph:
    """Boxes and edges of one net of ``--format json`` (its ``layers``), with each layer's
    bytes of the opening kind in ``values``; ``unknown``: indices of layers of types
    caffemem does not model."""
    layers = net_dict["layers"]
    boxes: list[Box] = []
    box_of_blob: dict[str, int] = {}
    edges: list[tuple[int, int, str]] = []
    seen: dict[tuple[int, int], bool] = {}

    def edge(src: int, dst: int, blob: str) -> None:
        if src != dst and (src, dst) not in seen:
            seen[(src, dst)] = True
            edges.append((src, dst, blob))

    for i, l in enumerate(layers):
        row = Row(label, i, l["name"], l["type"], values[i] if i < len(values) else 0,
                  "unmodelled" if i in unknown else "")
        tops = l["tops"]
        host = None
        if l["bottoms"] and tops and (l["inserted_split"] or all(t["in_place"] for t in tops)):
            host = box_of_blob.get(l["bottoms"][0])
            others = [box_of_blob.get(b) for b in l["bottoms"][1:]]
            if host is not None and any(o is None or o > host for o in others):
                host = None  # a later box feeds it: a row here would need an upward edge
        if host is not None:
            boxes[host].rows.append(row)
            for b in l["bottoms"][1:]:
                edge(box_of_blob[b], host, b)
            target = host
            if l["inserted_split"]:
                for t in tops:
                    box_of_blob[t["name"]] = host
        else:
            target = len(boxes)
            for b in l["bottoms"]:
                if b in box_of_blob:
                    edge(box_of_blob[b], target, b)
            boxes.append(Box([row]))
            for t in tops:
                box_of_blob[t["name"]] = target
        if not l["inserted_split"]:
            for t in tops:
                if not t["in_place"]:
                    boxes[target].tops.append(f"{t['name']} {shape_text(t['shape'])}")
    return Graph(boxes, edges)


def _box_size(box: Box) -> tuple[float, float]:
    texts = [f"{r.name}  {r.type}" for r in box.rows] + [f"\u2192 {t}" for t in box.tops[:2]]
    chars = max(len(t) for t in texts)
    w = min(MAX_W, max(MIN_W, chars * CHAR_W + 2 * PAD))
    h = len(box.rows) * ROW_H + min(2, len(box.tops)) * SHAPE_H + 4
    return w, h


def render_svg(g: Graph, svg_id: str, top_value: int) -> tuple[str, dict]:
    """The graph as one ``<svg>`` (positions computed here) and layout facts for the tests."""
    sizes = [_box_size(b) for b in g.boxes]
    lay = layout(sizes, [(u, v) for u, v, _ in g.edges])
    out = []
    W, H = lay.width + 2 * MARGIN, lay.height + 2 * MARGIN
    out.append(f'<svg class="graph" id="{esc(svg_id)}" xmlns="http://www.w3.org/2000/svg" '
               f'viewBox="0 0 {W:.0f} {H:.0f}" width="{W:.0f}" height="{H:.0f}" '
               f'data-width="{W:.0f}" data-height="{H:.0f}" role="img">')
    out.append('<g class="edges">')
    for (u, v, blob), pts in zip(g.edges, lay.routes):
        d = _path([(x + MARGIN, y + MARGIN) for x, y in pts])
        cls = "edge old-only" if blob.endswith("(old net only)") else "edge"
        out.append(f'<path class="{cls}" data-from="{u}" data-to="{v}" d="{d}"><title>{esc(blob)}</title></path>')
    out.append('</g><g class="boxes">')
    for bi, (box, (x, y, w, h)) in enumerate(zip(g.boxes, lay.boxes)):
        x += MARGIN
        y += MARGIN
        cls = "box" + (" " + box.cls if box.cls else "")
        out.append(f'<g class="{cls}" data-box="{bi}">')
        out.append(f'<rect class="frame" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="3"/>')
        ry = y + 1
        for k, r in enumerate(box.rows):
            failing = "oom" in r.flag.split()
            hi = 0 if failing else heat_index(r.value, top_value)
            rcls = "row" + (" head" if k == 0 else " inplace") + (f" {r.flag}" if r.flag else "") \
                + (" dark" if hi >= len(HEAT) - 3 else "")
            label = short(f"{'' if k == 0 else chr(0x21b3) + ' '}{r.name}", MAX_CHARS - len(r.type) - 2)
            oom = '<tspan class="oom-mark">\u26a0 OOM </tspan>' if failing else ""
            out.append(
                f'<g class="{rcls}" data-layer="{esc(r.name)}" data-net="{esc(r.net)}" data-i="{r.index}" '
                f'tabindex="0" role="button" aria-label="{esc(r.name)} ({esc(r.type)})">'
                f'<title>{esc(r.title or (r.name + " (" + r.type + ")"))}</title>'
                f'<rect x="{x + 1:.1f}" y="{ry:.1f}" width="{w - 2:.1f}" height="{ROW_H - 1:.1f}" fill="{FAILING if failing else HEAT[hi]}"/>'
                f'<text x="{x + PAD:.1f}" y="{ry + 12:.1f}">{esc(label)}'
                f'<tspan class="ty" x="{x + w - PAD:.1f}" text-anchor="end">{oom}'
                f'{esc(short(r.type, 18))}{" ?" if r.flag == "unmodelled" else ""}</tspan></text></g>')
            ry += ROW_H
        for t in box.tops[:2]:
            more = f" +{len(box.tops) - 2}" if len(box.tops) > 2 and t == box.tops[1] else ""
            out.append(f'<text class="shape" x="{x + PAD:.1f}" y="{ry + 10:.1f}">{esc(short(chr(0x2192) + " " + t + more))}</text>')
            ry += SHAPE_H
        out.append('</g>')
    out.append('</g></svg>')
    facts = {"boxes": len(g.boxes), "edges": len(g.edges), "crossings": lay.crossings}
    return "".join(out), facts


def _path(pts: list[tuple[float, float]]) -> str:
    """A smooth path through the route's points, downward all the way (vertical tangents)."""
    (x0, y0) = pts[0]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
        if abs(xa - xb) < 0.05:
            parts.append(f"L{xb:.1f},{yb:.1f}")
        else:
            m = (ya + yb) / 2
            parts.append(f"C{xa:.1f},{m:.1f} {xb:.1f},{m:.1f} {xb:.1f},{yb:.1f}")
    return "".join(parts)


def union_graph(old_dict: dict, new_dict: dict, pairs: list[tuple[Optional[str], Optional[str]]],
                status: dict[str, str], values: dict[str, int]) -> Graph:
    """One graph of two nets: the new net's boxes and edges, with the old net's layers that
    have no counterpart added where the old net had them.  ``pairs``: (old name, new name)
    as the diff aligned them; ``status[name]``: added/removed/changed/same (by the name
    drawn: the new one, or the old one for removed layers); ``values``: bytes to colour."""
    old_to_new = {o: n for o, n in pairs if o is not None and n is not None}
    g_new = net_graph(new_dict, "new", [0] * len(new_dict["layers"]), set())
    g_old = net_graph(old_dict, "old", [0] * len(old_dict["layers"]), set())

    def key(row: Row) -> str:  # the union's name of a layer
        return row.name if row.net == "new" else old_to_new.get(row.name, row.name)

    # union boxes: every new box, then old boxes none of whose layers is in the new net
    new_names = {r.name for b in g_new.boxes for r in b.rows}
    union: list[Box] = []
    box_of_name: dict[str, int] = {}
    for b in g_new.boxes:
        box_of_name.update({r.name: len(union) for r in b.rows})
        union.append(Box(list(b.rows), list(b.tops)))
    old_box_map: dict[int, int] = {}
    for bi, b in enumerate(g_old.boxes):
        in_new = [key(r) for r in b.rows if key(r) in new_names]
        if in_new:
            target = box_of_name[in_new[0]]
            old_box_map[bi] = target
            for r in b.rows:
                if key(r) not in new_names and key(r) not in box_of_name:
                    union[target].rows.append(r)
                    box_of_name[key(r)] = target
        else:
            old_box_map[bi] = len(union)
            for r in b.rows:
                box_of_name[key(r)] = len(union)
            union.append(Box(list(b.rows), list(b.tops)))
    edges = [(u, v, blob) for u, v, blob in g_new.edges]
    new_pairs = {(u, v) for u, v, _ in edges}
    edges += [(old_box_map[u], old_box_map[v], f"{blob} (old net only)") for u, v, blob in g_old.edges
              if (old_box_map[u], old_box_map[v]) not in new_pairs]
    order = _topological(len(union), [(u, v) for u, v, _ in edges],
                         # old-only boxes go right after the box that fed them in the old net
                         anchor=_anchors(len(g_new.boxes), union, edges))
    pos = {b: i for i, b in enumerate(order)}
    boxes = [union[b] for b in order]
    seen: dict[tuple[int, int], bool] = {}
    out_edges = []
    for u, v, blob in edges:
        pu, pv = pos[u], pos[v]
        if pu < pv and (pu, pv) not in seen:
            seen[(pu, pv)] = True
            out_edges.append((pu, pv, blob))
    for b in boxes:
        for r in b.rows:
            name = key(r)
            r.flag = status.get(name, "same")
            r.value = values.get(name, 0)
            r.name = name
        flags = [r.flag for r in b.rows]
        b.cls = "removed" if all(f == "removed" for f in flags) else \
            "added" if all(f == "added" for f in flags) else \
            "changed" if any(f != "same" for f in flags) else "same"
    return Graph(boxes, out_edges)


def _anchors(n_new: int, union: list[Box], edges) -> dict[int, float]:
    """A sort key per union box: new boxes keep their order; an old-only box sits just after
    the latest box that feeds it."""
    key = {i: float(i) for i in range(n_new)}
    for i in range(n_new, len(union)):
        feeds = [key[u] for u, v, _ in edges if v == i and u in key]
        key[i] = (max(feeds) if feeds else -1.0) + 0.5 + (i - n_new) * 1e-6
    return key


def _topological(n: int, edges: list[tuple[int, int]], anchor: dict[int, float]) -> list[int]:
    """Kahn's algorithm, taking the lowest anchor first; a cycle (two nets that order
    layers differently) is broken at the lowest-anchored remaining box."""
    import heapq

    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        if u != v:
            succ[u].append(v)
            indeg[v] += 1
    heap = [(anchor[i], i) for i in range(n) if indeg[i] == 0]
    heapq.heapify(heap)
    done = [False] * n
    out = []
    while len(out) < n:
        if not heap:
            rest = min((anchor[i], i) for i in range(n) if not done[i])
            heap.append(rest)
            indeg[rest[1]] = 0
        _, u = heapq.heappop(heap)
        if done[u]:
            continue
        done[u] = True
        out.append(u)
        for v in succ[u]:
            indeg[v] -= 1
            if indeg[v] == 0 and not done[v]:
                heapq.heappush(heap, (anchor[v], v))
    return out
