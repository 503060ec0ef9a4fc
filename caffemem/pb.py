"""The compiled Caffe schema and protobuf helpers used across caffemem.

``caffe_pb2`` is generated from ``proto/caffe.proto`` (see README, "Regenerating the schema").
Everything that touches protobuf messages imports it from here, so there is one place that
knows how the schema is loaded.
"""

from __future__ import annotations

from google.protobuf import text_format
from google.protobuf.message import Message

from . import caffe_pb2

__all__ = ["caffe_pb2", "text_format", "Message", "has_field", "enum_name"]


def has_field(msg: Message, name: str) -> bool:
    """``msg.HasField(name)`` that is False (not an error) for unknown or repeated fields."""
    try:
        return msg.HasField(name)
    except ValueError:
        return False


def enum_name(msg: Message, field: str) -> str:
    """The symbolic name of an enum field's current value, e.g. ``'MAX'`` for pooling."""
    fd = msg.DESCRIPTOR.fields_by_name[field]
    return fd.enum_type.values_by_number[getattr(msg, field)].name
