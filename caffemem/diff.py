"""Comparing two nets: where the extra bytes come from.

Layers are aligned by name first; the rest by type and position (a longest common
subsequence over the unmatched layers' types), so a renamed layer still pairs with its
counterpart.  Each side's per-layer costs come from :func:`layer_costs` (bytes by kind);
the deltas are sorted by size, and a headline names the few layers and kinds that make most
of the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .flops import Flops, total
from .net import DTYPE_BYTES, Net
from .units import human


@dataclass
class LayerCost:
    """One layer's footprint: its identity, shapes, bytes by kind and forward FLOPs."""

    name: str
    type: str
    index: int
    top_shapes: list[tuple]
    param_shapes: list[tuple]
    bytes: dict[str, int] = field(default_factory=dict)
    #: what its forward pass computes (None: not counted, or not known)
    flops: Optional[Flops] = None

    @property
    def total(self) -> int:
        return sum(self.bytes.values())


def shape_costs(nets: list[Net]) -> list[LayerCost]:
    """Costs from shapes alone: each layer's unique top data and owned parameters (float32).

    The allocation model (``caffemem.memory``) gives the full picture; this is the fallback
    and the part that is exact without any modelling."""
    out = []
    for net in nets:
        for l in net.layers:
            data = sum(net.blobs[t].count for j, t in enumerate(l.tops)
                       if not l.in_place[j] and net.blobs[t].shares_data_of is None)
            # a solver's test nets share the train net's parameters (ShareTrainedLayersWith)
            shared = net.label.startswith("test")
            params = 0 if shared else sum(p.count for p in l.params if p.learnable)
            out.append(LayerCost(cost_name(l.name, net.display_label), l.type, len(out),
                                 [net.blobs[t].shape for t in l.tops], [p.shape for p in l.params],
                                 {"activations": data * DTYPE_BYTES, "params": params * DTYPE_BYTES},
                                 l.flops))
    return out


def forward_flops(costs: list[LayerCost]) -> Flops:
    """The forward FLOPs of the first net among ``costs`` (the train net, or the only one:
    test nets' layers carry ``@label``, see :func:`cost_name`)."""
    return total(c.flops for c in costs if "@" not in c.name)


def cost_name(layer: str, net_label: str) -> str:
    """Layer names in costs: the train net's (or the only net's) as they are, so that a net
    file and a solver built on it align; test nets' suffixed with their label."""
    return f"{layer}@{net_label}" if net_label.startswith("test") else layer


def align(old: list[LayerCost], new: list[LayerCost]) -> list[tuple[Optional[LayerCost], Optional[LayerCost]]]:
    """Pairs (old, new) in the new net's order; unmatched layers pair with None."""
    by_name = {c.name: c for c in old}
    matched_old: set[int] = set()
    pair_of_new: dict[int, LayerCost] = {}
    for c in new:
        o = by_name.get(c.name)
        if o is not None and o.index not in matched_old:
            pair_of_new[c.index] = o
            matched_old.add(o.index)
    rest_old = [c for c in old if c.index not in matched_old]
    rest_new = [c for c in new if c.index not in pair_of_new]
    for o, n in _lcs(rest_old, rest_new, key=lambda c: c.type):
        pair_of_new[n.index] = o
        matched_old.add(o.index)
    pairs: list[tuple[Optional[LayerCost], Optional[LayerCost]]] = []
    for c in new:
        pairs.append((pair_of_new.get(c.index), c))
    pairs.extend((c, None) for c in old if c.index not in matched_old)
    return pairs


def _lcs(a: list, b: list, key: Callable) -> list[tuple]:
    """Longest common subsequence of ``a`` and ``b`` under ``key`` (quadratic; small lists)."""
    if not a or not b or len(a) * len(b) > 4_000_000:
        return []
    n, m = len(a), len(b)
    dp = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        ka = key(a[i])
        row, nxt = dp[i], dp[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = nxt[j + 1] + 1 if ka == key(b[j]) else max(nxt[j], row[j + 1])
    i = j = 0
    out = []
    while i < n and j < m:
        if key(a[i]) == key(b[j]):
            out.append((a[i], b[j]))
            i += 1
            j += 1
        elif dp[i + 1][j] >= dp[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


@dataclass
class Contributor:
    layer: str
    kind: str
    delta_bytes: int
    status: str  # "added", "removed", "changed"


#: contributor kinds whose bytes the layer's weights decide
_WEIGHT_KINDS = ("params", "param_diffs", "history")


@dataclass
class NetDiff:
    pairs: list[tuple[Optional[LayerCost], Optional[LayerCost]]]
    contributors: list[Contributor]
    old_total: int
    new_total: int
    old_log_figure: int
    new_log_figure: int

    @property
    def delta_bytes(self) -> int:
        return self.new_total - self.old_total

    def changes(self) -> list[tuple[str, str, str]]:
        """(status, layer, what) for added, removed and changed layers."""
        out = []
        for o, n in self.pairs:
            if o is None:
                out.append(("added", n.name, f"{n.type} -> {', '.join(_fmt(s) for s in n.top_shapes)}"))
            elif n is None:
                out.append(("removed", o.name, o.type))
            else:
                what = []
                if o.name != n.name:
                    what.append(f"renamed from {o.name}")
                if o.type != n.type:
                    what.append(f"type {o.type} -> {n.type}")
                if o.top_shapes != n.top_shapes:
                    what.append(f"tops {', '.join(_fmt(s) for s in o.top_shapes)} -> "
                                f"{', '.join(_fmt(s) for s in n.top_shapes)}")
                if o.param_shapes != n.param_shapes:
                    what.append(f"params {', '.join(_fmt(s) for s in o.param_shapes)} -> "
                                f"{', '.join(_fmt(s) for s in n.param_shapes)}")
                if what:
                    out.append(("changed", n.name, "; ".join(what)))
        return out

    def _why(self, c: "Contributor") -> str:
        """A few words on why a changed layer's bytes changed: its weights for the kinds
        the weights size (params, their diffs, history), else its tops (a batch change
        shrinks conv1's activations even when its weights changed too)."""
        for o, n in self.pairs:
            if o is not None and n is not None and n.name == c.layer:
                weights = (f" (weights {_fmt(o.param_shapes[0])} -> {_fmt(n.param_shapes[0])})"
                           if o.param_shapes and o.param_shapes[:1] != n.param_shapes[:1] else "")
                top = (f" (top {_fmt(o.top_shapes[0])} -> {_fmt(n.top_shapes[0])})"
                       if o.top_shapes and o.top_shapes[:1] != n.top_shapes[:1] else "")
                return (weights or top) if c.kind in _WEIGHT_KINDS else (top or weights)
        return ""

    def headline(self, top: int = 3, totals: bool = True) -> str:
        """What changed, in a few sentences; ``totals=False`` leaves out the plain sentence
        with both totals (for a caller that stated them already)."""
        grew = self.delta_bytes >= 0
        parts = []
        if (self.new_log_figure < self.old_log_figure) and grew:
            parts.append(f"The new net's log figure is smaller ({human(self.new_log_figure)} vs "
                         f"{human(self.old_log_figure)}), but its real need is larger: "
                         f"{human(self.new_total)} vs {human(self.old_total)} ({human(self.delta_bytes)} more).")
        elif totals:
            parts.append(f"Modeled total {human(self.old_total)} -> {human(self.new_total)} "
                         f"({'+' if grew else ''}{human(self.delta_bytes)}); log figure "
                         f"{human(self.old_log_figure)} -> {human(self.new_log_figure)}.")
        same_sign = [c for c in self.contributors if (c.delta_bytes > 0) == grew and c.delta_bytes]
        if same_sign and self.delta_bytes:
            lead = same_sign[:top]
            share = sum(c.delta_bytes for c in lead)
            parts.append("Most of the difference: " + "; ".join(
                f"{c.layer} {c.kind} {'+' if c.delta_bytes > 0 else ''}{human(c.delta_bytes)}"
                f"{' (new layer)' if c.status == 'added' else ' (removed layer)' if c.status == 'removed' else self._why(c)}"
                for c in lead) + f" (together {'+' if share > 0 else ''}{human(share)}"
                + ("; other layers' changes partly offset them)." if abs(share) > abs(self.delta_bytes) else ")."))
            kinds: dict[str, int] = {}
            for c in self.contributors:
                kinds[c.kind] = kinds.get(c.kind, 0) + c.delta_bytes
            parts.append("By kind: " + ", ".join(
                f"{k} {'+' if v > 0 else ''}{human(v)}" for k, v in
                sorted(kinds.items(), key=lambda kv: -abs(kv[1])) if v) + ".")
        elif not self.delta_bytes and not self.contributors:
            parts = ["No change: both nets allocate the same bytes in every layer and kind."]
        return " ".join(parts)


def _fmt(shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def diff_costs(old: list[LayerCost], new: list[LayerCost], old_log: int, new_log: int,
               old_total: Optional[int] = None, new_total: Optional[int] = None) -> NetDiff:
    pairs = align(old, new)
    contributors = []
    for o, n in pairs:
        kinds = set(o.bytes if o else ()) | set(n.bytes if n else ())
        status = "added" if o is None else "removed" if n is None else "changed"
        for k in sorted(kinds):
            d = (n.bytes.get(k, 0) if n else 0) - (o.bytes.get(k, 0) if o else 0)
            if d:
                contributors.append(Contributor((n or o).name, k, d, status))
    contributors.sort(key=lambda c: (-abs(c.delta_bytes), c.layer, c.kind))
    ot = old_total if old_total is not None else sum(c.total for c in old)
    nt = new_total if new_total is not None else sum(c.total for c in new)
    return NetDiff(pairs, contributors, ot, nt, old_log, new_log)
