"""A layered (Sugiyama-style) layout of a net's graph, computed in Python at report time.

Caffe nets are a trunk with fan-out and fan-in blocks (inception, residual, concat, SSD
heads), listed in topological order.  The layout exploits that:

1. ranks by longest path in prototxt order; a source that only feeds later layers (a label
   Input) is pulled down to just above its first consumer;
2. the *spine*: a longest path, walked back from the deepest node; it stays at x = 0, so
   the main trunk is one straight vertical line;
3. long edges get a dummy node per rank they cross (lanes of their own);
4. crossing reduction: median/barycenter sweeps down and up, each followed by a transpose
   pass (adjacent swaps that lower the crossings); the best order seen is kept;
5. x: the spine at 0, the other nodes of each rank packed left and right of it towards the
   median of their neighbours, relaxed downwards and upwards a few times; dummies follow
   their edge, so long edges run straight;
6. y: ranks stacked top to bottom, so every edge runs downward and no two boxes overlap.

Pure Python, no dependency: grandalf (GPL/EPL) would add a copyleft runtime dependency and is
slow past a few thousand nodes, fast-sugiyama needs Python >= 3.11 and glibc >= 2.34 (the
research note in ../shared/notes/html-report-research.md measured both).  Deterministic:
only lists and index order, never set iteration, so the same graph gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

DUMMY_WIDTH = 6.0


@dataclass
class Layout:
    """Boxes (x, y: top-left corner, w, h) of the real nodes, and one polyline per edge
    (points top to bottom: the source's bottom centre ... the target's top centre)."""

    boxes: list[tuple[float, float, float, float]]
    routes: list[list[tuple[float, float]]]
    width: float
    height: float
    ranks: list[int] = field(default_factory=list)
    crossings: int = 0


def layout(sizes: Sequence[tuple[float, float]], edges: Sequence[tuple[int, int]],
           rank_sep: float = 30.0, node_sep: float = 16.0, sweeps: int = 8) -> Layout:
    """Lay out nodes ``0..n-1`` (``sizes``: width, height) with ``edges`` (u, v), u < v
    (nodes in a topological order, as a net's layers are).  Duplicate edges are drawn once
    each but laid out as one."""
    n = len(sizes)
    if n == 0:
        return Layout([], [], 0.0, 0.0)
    for u, v in edges:
        if not (0 <= u < v < n):
            raise ValueError(f"edge {u}->{v}: nodes must be in topological order")
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        if v not in succ[u]:
            succ[u].append(v)
            pred[v].append(u)

    rank = _ranks(n, pred, succ)
    spine = _spine(n, rank, pred)

    # dummy nodes: one per rank crossed by a long edge; chains[(u, v)] = [u, d1, ..., v]
    width = [float(w) for w, _ in sizes]
    height = [float(h) for _, h in sizes]
    node_rank = list(rank)
    up: list[list[int]] = [list(p) for p in pred]
    down: list[list[int]] = [list(s) for s in succ]
    chains: dict[tuple[int, int], list[int]] = {}
    for u in range(n):
        for v in succ[u]:
            chain, prev = [u], u
            for r in range(rank[u] + 1, rank[v]):
                d = len(node_rank)
                node_rank.append(r)
                width.append(DUMMY_WIDTH)
                height.append(0.0)
                up.append([prev])
                down.append([])
                if prev == u:
                    down[u][down[u].index(v)] = d
                else:
                    down[prev].append(d)
                chain.append(d)
                prev = d
            if prev != u:
                down[prev].append(v)
                up[v][up[v].index(u)] = prev
            chain.append(v)
            chains[(u, v)] = chain
    total = len(node_rank)
    n_ranks = max(node_rank) + 1
    layers: list[list[int]] = [[] for _ in range(n_ranks)]
    for v in range(total):  # real nodes in prototxt order, then dummies in edge order
        layers[node_rank[v]].append(v)

    order = _order(layers, up, down, sweeps)
    crossings = _total_crossings(order, up)
    xs = _place_x(order, up, down, width, spine, node_sep)

    # y: ranks stacked
    rank_top = []
    y = 0.0
    for r in range(n_ranks):
        rank_top.append(y)
        y += max((height[v] for v in order[r]), default=0.0) + rank_sep
    total_h = y - rank_sep
    rank_h = [max((height[v] for v in order[r]), default=0.0) for r in range(n_ranks)]

    min_x = min(xs[v] - width[v] / 2 for v in range(total))
    max_x = max(xs[v] + width[v] / 2 for v in range(total))
    shift = -min_x
    boxes = [(xs[v] + shift - width[v] / 2, rank_top[node_rank[v]], width[v], height[v]) for v in range(n)]
    routes = []
    for u, v in edges:
        chain = chains[(u, v)]
        pts = [(xs[u] + shift, rank_top[rank[u]] + height[u])]
        for d in chain[1:-1]:
            r = node_rank[d]
            pts.append((xs[d] + shift, rank_top[r]))
            pts.append((xs[d] + shift, rank_top[r] + rank_h[r]))
        pts.append((xs[v] + shift, rank_top[rank[v]]))
        routes.append(pts)
    return Layout(boxes, routes, max_x - min_x, total_h, rank, crossings)


def _ranks(n: int, pred: list[list[int]], succ: list[list[int]]) -> list[int]:
    rank = [0] * n
    for v in range(n):
        for u in pred[v]:
            rank[v] = max(rank[v], rank[u] + 1)
    # sources that feed only later layers sit just above their first consumer
    for v in range(n - 1, -1, -1):
        if not pred[v] and succ[v]:
            rank[v] = max(rank[v], min(rank[s] for s in succ[v]) - 1)
    return rank


def _spine(n: int, rank: list[int], pred: list[list[int]]) -> list[int]:
    """A longest path, from the deepest node (the first of them) back to a source."""
    end = max(range(n), key=lambda v: (rank[v], -v))
    path = [end]
    v = end
    while True:
        ups = [u for u in pred[v] if rank[u] == rank[v] - 1]
        if not ups:
            break
        v = ups[0]
        path.append(v)
    return path[::-1]


def _crossings_between(upper_pos: dict, lower: list[int], up: list[list[int]]) -> int:
    """Crossings of the edges between two adjacent ranks (inversions of the targets'
    positions when edges are sorted by their sources' positions)."""
    pairs = []
    for j, v in enumerate(lower):
        for u in up[v]:
            pairs.append((upper_pos[u], j))
    pairs.sort()
    seq = [j for _, j in pairs]
    return _inversions(seq)


def _inversions(seq: list[int]) -> int:
    if len(seq) < 2:
        return 0
    # Fenwick tree over positions
    size = max(seq) + 2
    tree = [0] * (size + 1)
    inv = 0
    for i, x in enumerate(seq):
        # count earlier elements greater than x
        k, s = x + 1, 0
        while k > 0:
            s += tree[k]
            k -= k & -k
        inv += i - s
        k = x + 1
        while k <= size:
            tree[k] += 1
            k += k & -k
    return inv


def _total_crossings(order: list[list[int]], up: list[list[int]]) -> int:
    """Crossings over all adjacent rank pairs (every edge spans one rank once dummies are in)."""
    total = 0
    for r in range(len(order) - 1):
        pos = {v: i for i, v in enumerate(order[r])}
        total += _crossings_between(pos, order[r + 1], up)
    return total


def _median(values: list[float]) -> float:
    values = sorted(values)
    m = len(values)
    if m % 2:
        return values[m // 2]
    return (values[m // 2 - 1] + values[m // 2]) / 2


def _order(layers: list[list[int]], up: list[list[int]], down: list[list[int]], sweeps: int) -> list[list[int]]:
    order = [list(l) for l in layers]
    best = [list(l) for l in order]
    best_c = _total_crossings(order, up)
    for it in range(sweeps):
        if best_c == 0:
            break
        downward = it % 2 == 0
        ranks = range(1, len(order)) if downward else range(len(order) - 2, -1, -1)
        for r in ranks:
            ref = order[r - 1] if downward else order[r + 1]
            pos = {v: i for i, v in enumerate(ref)}
            nbrs = up if downward else down
            keyed = []
            for i, v in enumerate(order[r]):
                ps = [pos[u] for u in nbrs[v] if u in pos]
                keyed.append((_median(ps) if ps else float(i), i, v))
            keyed.sort()
            order[r] = [v for _, _, v in keyed]
        _transpose(order, up, down)
        c = _total_crossings(order, up)
        if c < best_c:
            best_c = c
            best = [list(l) for l in order]
    return best


def _pair_crossings(a: int, b: int, nbrs: list[list[int]], pos: dict) -> int:
    """Crossings between a's and b's edges to a neighbouring rank when a is left of b."""
    c = 0
    for pa in nbrs[a]:
        ia = pos.get(pa)
        if ia is None:
            continue
        for pb in nbrs[b]:
            ib = pos.get(pb)
            if ib is not None and ia > ib:
                c += 1
    return c


def _transpose(order: list[list[int]], up: list[list[int]], down: list[list[int]], passes: int = 4) -> None:
    for _ in range(passes):
        improved = False
        for r in range(len(order)):
            row = order[r]
            if len(row) < 2:
                continue
            above = {v: i for i, v in enumerate(order[r - 1])} if r > 0 else {}
            below = {v: i for i, v in enumerate(order[r + 1])} if r + 1 < len(order) else {}
            for i in range(len(row) - 1):
                a, b = row[i], row[i + 1]
                now = _pair_crossings(a, b, up, above) + _pair_crossings(a, b, down, below)
                swapped = _pair_crossings(b, a, up, above) + _pair_crossings(b, a, down, below)
                if swapped < now:
                    row[i], row[i + 1] = b, a
                    improved = True
        if not improved:
            break


def _place_x(order: list[list[int]], up: list[list[int]], down: list[list[int]], width: list[float],
             spine: list[int], sep: float) -> list[float]:
    total = len(width)
    xs = [0.0] * total
    on_spine = [False] * total
    for v in spine:
        on_spine[v] = True

    def pack(row: list[int], desired: list[float]) -> None:
        pin = next((i for i, v in enumerate(row) if on_spine[v]), None)
        if pin is None:  # no spine node in this rank: centre the row's desired positions
            pin = len(row) // 2
            anchor = desired[pin]
        else:
            anchor = 0.0
        xs[row[pin]] = anchor
        for i in range(pin - 1, -1, -1):
            v, w = row[i], row[i + 1]
            xs[v] = min(desired[i], xs[w] - (width[v] + width[w]) / 2 - sep)
        for i in range(pin + 1, len(row)):
            v, w = row[i], row[i - 1]
            xs[v] = max(desired[i], xs[w] + (width[v] + width[w]) / 2 + sep)

    for row in order:
        pack(row, [0.0] * len(row))
    for it in range(6):
        downward = it % 2 == 0
        ranks = range(1, len(order)) if downward else range(len(order) - 2, -1, -1)
        nbrs = up if downward else down
        for r in ranks:
            row = order[r]
            desired = []
            for v in row:
                ps = [xs[u] for u in nbrs[v]]
                if not ps:  # no neighbour on that side: keep to the other side's median
                    ps = [xs[u] for u in (down if downward else up)[v]]
                desired.append(_median(ps) if ps else xs[v])
            pack(row, desired)
    return xs
