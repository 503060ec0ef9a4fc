"""Which implementation each layer runs under, as Caffe's ``layer_factory.cpp`` decides.

The factory is compile-time: a cuDNN build (``engine='cudnn'``) turns a layer's ``DEFAULT``
engine into ``CUDNN`` where cuDNN has the layer, a build without cuDNN (``engine='caffe'``)
into ``CAFFE``; a layer's own ``engine:`` field wins, with the exceptions each type's rule
states (:meth:`caffemem.layers.base.LayerRule.engine`: Convolution, Pooling, LRN, ReLU,
Sigmoid, TanH, Softmax and SoftmaxWithLoss's inner softmax).  In cpu mode nothing runs on
cuDNN.  This module only asks the rule; it knows no layer type.
"""

from __future__ import annotations

from typing import Optional

from ..buffers import CAFFE, CUDNN, MemoryEnv
from ..layers.registry import lookup

__all__ = ["CAFFE", "CUDNN", "layer_engine"]


def layer_engine(type_: str, param, env: MemoryEnv, notes: Optional[list] = None) -> str:
    """``CAFFE`` or ``CUDNN`` for a layer of ``type_`` with LayerParameter ``param`` (CAFFE
    for a type caffemem has no rule for).  ``notes`` (optional) receives a sentence when
    Caffe overrides the requested engine."""
    rule = lookup(type_)
    return rule.engine(param, env, notes) if rule is not None else CAFFE
