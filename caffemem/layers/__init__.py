"""Layer rules, one module per family; importing this package registers them all.

Each rule is one class holding everything Caffe's ``<Type>Layer`` decides (see
:mod:`caffemem.layers.base`).  To add a fork's layer: write a module here with a
:class:`~caffemem.layers.base.LayerRule` subclass decorated with ``@register`` and add its
module name to ``_MODULES`` (docs/ARCHITECTURE.md, "How to add a layer type").
"""

from importlib import import_module

from .registry import known_types, lookup, register  # noqa: F401

_MODULES = ("data", "conv", "pooling", "neuron", "common", "normalization", "loss",
            "recurrent", "ssd", "segnet", "frcnn", "deeplab", "treepool")

for _name in _MODULES:
    import_module(f"{__name__}.{_name}")
