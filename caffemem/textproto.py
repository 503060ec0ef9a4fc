"""A fast path for protobuf text format, for the files people actually write.

protobuf's own text parser is pure Python and spends ~20 us per token: a 10^5-layer net takes
many seconds.  :func:`fast_parse` reads the common subset -- known fields, ``{ }`` messages,
numbers, identifiers, enums, plain quoted strings -- in one regex pass and an iterative walk,
converting values with protobuf's own functions (``ParseInteger``, ``ParseFloat``,
``ParseBool``, ``ParseEnum``) so the message is the same.  Anything else (an unknown field,
a string with escapes, ``< >`` or ``[ ]`` lists, a repeated singular field, a syntax error)
makes it return False and the caller parses with protobuf's parser, which gives the exact
semantics and the ``line:col`` of an error.  A test checks that both parsers give identical
messages on every prototxt we have.
"""

from __future__ import annotations

import re
from typing import Callable

from google.protobuf import descriptor as _d
from google.protobuf import text_format as _tf

# one token per match, after whitespace and '#' comments: what text_format's Tokenizer
# calls an identifier, a number, a quoted string without escapes, else one character
_TOKEN = re.compile(r"""(?:\s|\#[^\n]*)*(
    [a-zA-Z_][0-9a-zA-Z_+-]*
  | (?:[0-9+-]|\.[0-9])[0-9a-zA-Z_.+-]*
  | "[^"\n\\]*"
  | '[^'\n\\]*'
  | \S)""", re.VERBOSE)

_MESSAGE = 0
_SCALAR = 1
_T = _d.FieldDescriptor


def _int(signed: bool, long: bool) -> Callable[[str], int]:
    return lambda tok: _tf.ParseInteger(tok, is_signed=signed, is_long=long)


def _string(tok: str) -> str:
    if tok[:1] not in ("'", '"') or len(tok) < 2 or tok[-1] != tok[0]:
        raise ValueError(tok)
    return tok[1:-1]


_CONVERT: dict[int, Callable] = {
    _T.TYPE_INT32: _int(True, False), _T.TYPE_SINT32: _int(True, False),
    _T.TYPE_SFIXED32: _int(True, False), _T.TYPE_INT64: _int(True, True),
    _T.TYPE_SINT64: _int(True, True), _T.TYPE_SFIXED64: _int(True, True),
    _T.TYPE_UINT32: _int(False, False), _T.TYPE_FIXED32: _int(False, False),
    _T.TYPE_UINT64: _int(False, True), _T.TYPE_FIXED64: _int(False, True),
    _T.TYPE_FLOAT: _tf.ParseFloat, _T.TYPE_DOUBLE: _tf.ParseFloat,
    _T.TYPE_BOOL: _tf.ParseBool, _T.TYPE_STRING: _string,
    _T.TYPE_BYTES: lambda tok: _string(tok).encode("utf-8"),
}

_FIELDS: dict[str, dict] = {}  # message full name -> field name -> (kind, name, convert, repeated, type)


def _fields(desc) -> dict:
    table = _FIELDS.get(desc.full_name)
    if table is None:
        table = {}
        for f in desc.fields:
            if f.containing_oneof is not None or f.is_extension:
                continue  # left to protobuf's parser (oneof checks)
            repeated = f.is_repeated
            if f.cpp_type == _T.CPPTYPE_MESSAGE:
                if f.message_type.GetOptions().map_entry:
                    continue
                table[f.name] = (_MESSAGE, f.name, None, repeated, f.message_type)
            elif f.type == _T.TYPE_ENUM:
                table[f.name] = (_SCALAR, f.name, (lambda fd: lambda tok: _tf.ParseEnum(fd, tok))(f),
                                 repeated, None)
            elif f.type in _CONVERT:
                table[f.name] = (_SCALAR, f.name, _CONVERT[f.type], repeated, None)
        _FIELDS[desc.full_name] = table
    return table


def fast_parse(text: str, message) -> bool:
    """Fill the (empty) ``message`` from ``text`` and return True, or return False -- with
    ``message`` cleared -- when the text needs protobuf's own parser."""
    try:
        if _walk(_TOKEN.findall(text), message):
            return True
    except (ValueError, TypeError, AttributeError, KeyError):
        pass
    message.Clear()
    return False


def _walk(toks: list, message) -> bool:
    n = len(toks)
    i = 0
    msg, table, seen = message, _fields(message.DESCRIPTOR), set()
    stack: list = []
    while i < n:
        t = toks[i]
        if t == "}":
            if not stack:
                return False
            msg, table, seen = stack.pop()
            i += 1
        else:
            f = table.get(t)
            if f is None:
                return False
            kind, name, convert, repeated, sub = f
            i += 1
            if kind == _MESSAGE:
                if i < n and toks[i] == ":":
                    i += 1
                if i >= n or toks[i] != "{":
                    return False
                i += 1
                if repeated:
                    child = getattr(msg, name).add()
                else:
                    if name in seen:
                        return False
                    seen.add(name)
                    child = getattr(msg, name)
                    child.SetInParent()
                stack.append((msg, table, seen))
                msg, table, seen = child, _fields(sub), set()
                continue
            if i + 1 >= n or toks[i] != ":":
                return False
            value = convert(toks[i + 1])
            i += 2
            if i < n and toks[i][:1] in ("'", '"'):
                return False  # adjacent strings are concatenated: protobuf's parser does it
            if repeated:
                getattr(msg, name).append(value)
            else:
                if name in seen:
                    return False
                seen.add(name)
                setattr(msg, name, value)
        if i < n and toks[i] in (",", ";"):
            i += 1
    return not stack
