"""Caffe's own net-setup log lines, reproduced from a built net.

For every layer in ``Net::Init`` order (inserted splits included) Caffe prints, after glog's
prefix: ``Setting up NAME``, one ``Top shape: d0 d1 ... (count)`` per top (``(1)`` for a
scalar), ``    with loss weight W`` after a top with a nonzero loss weight, and the cumulative
``Memory required for data: BYTES``.  A layer that builds a net inside itself (recurrent
layers) logs that inner net's lines before its own ``Setting up``.
"""

from __future__ import annotations

from typing import Iterator

from ..net import Net, shape_string


def format_float(x: float) -> str:
    """C++ ``ostream << float`` with default precision: like ``%g`` with 6 digits."""
    return f"{x:g}"


def net_lines(net: Net) -> Iterator[str]:
    for layer in net.layers:
        for inner in layer.inner_nets:
            yield from net_lines(inner)
        yield f"Setting up {layer.name}"
        for j, bid in enumerate(layer.tops):
            yield f"Top shape: {shape_string(net.blobs[bid].shape)}"
            if layer.loss_weights[j]:
                yield f"    with loss weight {format_float(layer.loss_weights[j])}"
        yield f"Memory required for data: {layer.memory_after}"


def header(label: str, net: Net) -> str:
    return f"# {label}: {net.name or '(unnamed)'} (phase {net.phase})"
