"""Folding long nets into modules: layers grouped by name prefix, never across nets.

GoogLeNet's ``inception_3a/1x1`` ... ``inception_3a/output`` become ``inception_3a``,
ResNet's ``res4b12_branch2a`` ... become ``res4b12``; an inserted split
(``BLOB_LAYER_I_split``, Caffe's ``SplitLayerName``) goes with the blob it copies.  Test nets'
layers carry their net in the key (``conv1@test net #0``), so a train and a test layer that
share a name are never folded together.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
_SPLIT = re.compile(r"^(.*?)_\d+_split$")


def module_prefix(name: str) -> str:
    """The module a layer belongs to, from its name (a ``@net`` suffix is kept)."""
    name, at, net = name.partition("@")
    m = _SPLIT.match(name)
    if m:
        name = m.group(1).rsplit("_", 1)[0] if "_" in m.group(1) else m.group(1)
    for sep in ("/", "_", "."):
        if sep in name:
            name = name.split(sep)[0]
            break
    return name + at + net


def fold(items: Iterable[T], key: Callable[[T], str]) -> list[tuple[str, list[T]]]:
    """``items`` grouped by ``key``, groups in order of first appearance."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.items())


def bins(items: list[T], most: int) -> list[list[T]]:
    """``items`` cut into at most ``most`` runs of consecutive items, as even as possible."""
    n = len(items)
    if n <= most:
        return [[x] for x in items]
    return [items[i * n // most:(i + 1) * n // most] for i in range(most)]
