"""The one table of layer types: type name -> rule.

``@register`` on a :class:`~caffemem.layers.base.LayerRule` subclass adds it under its
``type`` and ``aliases``.  Importing :mod:`caffemem.layers` imports every rule module once.
"""

from __future__ import annotations

from typing import Optional, Type

from .base import LayerRule

_RULES: dict[str, LayerRule] = {}


def register(cls: Type[LayerRule]) -> Type[LayerRule]:
    """Class decorator: register one instance of ``cls`` under its type and aliases."""
    rule = cls()
    for name in (cls.type, *cls.aliases):
        if name in _RULES and type(_RULES[name]) is not cls:
            raise RuntimeError(f"layer type '{name}' registered twice "
                               f"({type(_RULES[name]).__name__} and {cls.__name__})")
        _RULES[name] = rule
    return cls


def lookup(type_name: str) -> Optional[LayerRule]:
    """The rule for ``type_name``, or None when caffemem has none."""
    return _RULES.get(type_name)


def known_types() -> dict[str, LayerRule]:
    """Every registered type name (aliases included) with its rule."""
    return dict(_RULES)
