"""Split insertion, as Caffe's ``InsertSplits`` (util/insert_splits.cpp) does it.

When one top feeds several consumers, Caffe inserts a ``Split`` layer right after the producer,
named ``<blob>_<layer>_<top index>_split``, with tops ``<blob>_<layer>_<top index>_split_<k>``,
and rewires each consumer to its own split top.  A nonzero explicit ``loss_weight`` on a top
counts as one more consumer, and then the first split top carries that loss weight.

Splits matter for memory: each split top is a blob of its own (counted again in "Memory
required for data", and given its own diff in training) although it shares its data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import NetError, did_you_mean


@dataclass
class LayerDef:
    """One layer as the net builder sees it: names and wiring, plus the original message."""

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    loss_weights: list[float] = field(default_factory=list)
    proto: object = None  # caffe_pb2.LayerParameter; None for an inserted Split layer
    split_of: str | None = None  # for an inserted Split: the blob it splits

    @classmethod
    def from_proto(cls, p) -> "LayerDef":
        return cls(p.name, p.type, list(p.bottom), list(p.top), list(p.loss_weight), p)


def split_layer_name(layer: str, blob: str, top_index: int) -> str:
    return f"{blob}_{layer}_{top_index}_split"


def split_blob_name(layer: str, blob: str, top_index: int, k: int) -> str:
    return f"{blob}_{layer}_{top_index}_split_{k}"


def insert_splits(layers: list[LayerDef]) -> list[LayerDef]:
    """Return a new layer list with Split layers inserted; the input list is not changed."""
    last_top: dict[str, tuple[int, int]] = {}
    source_of: dict[tuple[int, int], tuple[int, int]] = {}
    consumers: dict[tuple[int, int], int] = {}
    loss_weight_of: dict[tuple[int, int], float] = {}
    for i, layer in enumerate(layers):
        for j, blob in enumerate(layer.bottoms):
            top = last_top.get(blob)
            if top is None:
                raise NetError(
                    f"layer '{layer.name}' (type {layer.type}): bottom '{blob}' (bottom index {j}) "
                    f"is not produced by any earlier layer"
                    + _dangling_hint(blob, layers, i))
            source_of[(i, j)] = top
            consumers[top] = consumers.get(top, 0) + 1
        for j, blob in enumerate(layer.tops):
            last_top[blob] = (i, j)
        for j in range(min(len(layer.loss_weights), len(layer.tops))):
            top = last_top[layer.tops[j]]
            weight = layer.loss_weights[j]
            loss_weight_of[top] = weight
            if weight:
                consumers[top] = consumers.get(top, 0) + 1

    out: list[LayerDef] = []
    next_split: dict[tuple[int, int], int] = {}
    for i, layer in enumerate(layers):
        new = LayerDef(layer.name, layer.type, list(layer.bottoms), list(layer.tops),
                       list(layer.loss_weights), layer.proto, layer.split_of)
        for j, blob in enumerate(new.bottoms):
            top = source_of[(i, j)]
            if consumers[top] > 1:
                k = next_split.get(top, 0)
                next_split[top] = k + 1
                new.bottoms[j] = split_blob_name(layers[top[0]].name, blob, top[1], k)
        out.append(new)
        for j, blob in enumerate(new.tops):
            count = consumers.get((i, j), 0)
            if count > 1:
                weight = loss_weight_of.get((i, j), 0.0)
                split = LayerDef(
                    name=split_layer_name(layer.name, blob, j), type="Split", bottoms=[blob],
                    tops=[split_blob_name(layer.name, blob, j, k) for k in range(count)],
                    loss_weights=([weight] + [0.0] * (count - 1)) if weight else [],
                    split_of=blob)
                out.append(split)
                if weight:
                    new.loss_weights = []
                    next_split[(i, j)] = next_split.get((i, j), 0) + 1
    return out


def _dangling_hint(blob: str, layers: list[LayerDef], index: int) -> str:
    later = [l.name for l in layers[index + 1:] if blob in l.tops]
    if later:
        return f"; it is produced later by layer '{later[0]}' (layers must come in order; a cycle?)"
    earlier = {t for l in layers[:index] for t in l.tops}
    typo = did_you_mean(blob, earlier, cutoff=0.8)
    if typo:
        return typo
    return "; check the spelling, or whether its producer was filtered out by include/exclude rules for this phase"
