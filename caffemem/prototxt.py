"""Reading prototxt files (nets and solvers) into ``caffe_pb2`` messages.

Caffe reads these with protobuf's text format; so do we, through the compiled schema.  What we
add is what a person needs when a file is not quite what Caffe's own schema says:

- the file is checked and decoded first (:mod:`caffemem.sniff`: empty, binary, BOM, CRLF...);
- every parse failure becomes one line, ``file:line:col: message``
  (:class:`~caffemem.errors.PrototxtError`), with the offending text escaped and a
  "did you mean" for a mistyped enum value;
- a field the schema does not know (a fork's own field: ``multi_stage_meanfield_param``,
  a person re-id net's top-level option) is skipped, never refused, and recorded with its
  line, so the caller gives one warning that names them all (:func:`skipped_warning`),
  with "did you mean" when a known field is close (a typo is likelier than a fork).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional

from .errors import PrototxtError, UserError, close_matches, one_line
from .pb import Message, caffe_pb2, text_format
from .sniff import read_text as _read_checked
from .textproto import fast_parse

# Top-level fields that exist in SolverParameter but not in NetParameter: one of them at the
# start of a line means the file is a solver.
_SOLVER_KEYS = re.compile(
    r"^[ \t]*(net|net_param|train_net|train_net_param|test_net|test_net_param|base_lr|"
    r"max_iter|lr_policy|solver_mode|test_iter|test_interval|snapshot_prefix|solver_type|"
    r"momentum|weight_decay|iter_size|train_state|test_state)[ \t]*[:{]",
    re.MULTILINE,
)
_NET_KEYS = re.compile(r"^[ \t]*(layer|layers)[ \t]*\{", re.MULTILINE)


@dataclass
class SkippedField:
    """A field the schema does not know, skipped where it stood."""

    name: str
    message: str  # the message type it appeared in, e.g. "caffe.LayerParameter"
    line: int
    col: int

    @property
    def suggestion(self) -> Optional[str]:
        """A known field of the same message close to this name (a likely typo)."""
        desc = caffe_pb2.DESCRIPTOR.message_types_by_name.get(self.message.split(".")[-1])
        if desc is None:
            return None
        m = close_matches(self.name, desc.fields_by_name, n=1, cutoff=0.75)
        return m[0] if m else None


def read_text(path: str) -> str:
    """The file's text; a missing, unreadable, empty or binary file is a user error naming it
    (and what it looks like).  BOMs, CRLF and Latin-1 are accepted."""
    return _read_checked(path, "prototxt")


class _Parser(text_format._Parser):  # noqa: SLF001 - the one hook protobuf offers for this
    """protobuf's text parser, noting each unknown field it skips (name, line, column)."""

    def __init__(self, skipped: list) -> None:
        super().__init__(allow_unknown_field=True)
        self.skipped = skipped
        self._inside = 0  # fields inside a skipped field are skipped with it, not listed

    def _SkipFieldContents(self, tokenizer, field_name, immediate_message_type, *rest):  # noqa: N802
        if not self._inside:
            line = getattr(tokenizer, "_previous_line", tokenizer._line)  # noqa: SLF001
            col = getattr(tokenizer, "_previous_column", tokenizer._column)  # noqa: SLF001
            self.skipped.append(SkippedField(field_name, immediate_message_type, line + 1, col + 1))
        self._inside += 1
        try:
            return super()._SkipFieldContents(tokenizer, field_name, immediate_message_type, *rest)
        finally:
            self._inside -= 1


def parse_text(text: str, message: Message, path: str = "<string>",
               skipped: Optional[list] = None) -> Message:
    """Parse protobuf text format into ``message``; errors name ``path:line:col``.

    Unknown fields are skipped and appended to ``skipped`` (:class:`SkippedField`) when a
    list is given; a syntax error, a bad value or an unknown enum value is an error."""
    notes: list = [] if skipped is None else skipped
    if not message.ListFields() and fast_parse(text, message):
        return message  # the common case, in one pass (see caffemem.textproto)
    try:
        _Parser(notes).ParseLines(text.split("\n"), message)
    except text_format.ParseError as e:
        line, col = e.GetLine() or 0, e.GetColumn() or 0
        msg = str(e)
        m = re.match(r"^\d+:\d+ : ", msg)
        if m:
            msg = msg[m.end():]
        msg = _escape_echo(msg).rstrip(".") + _enum_hint(msg)
        raise PrototxtError(path, line, col, msg) from None
    except RecursionError:
        raise UserError(f"{path}: messages nested too deeply to read (a damaged file?)") from None
    return message


def _escape_echo(msg: str) -> str:
    """protobuf quotes the offending source line raw: escape it (control characters, ANSI
    escapes and CR must not reach the terminal) and keep it short."""
    m = re.match(r"^'(.*)': (.*)$", msg, re.S)
    if m:
        from .errors import shown

        return f"{shown(m.group(1), 80)}: {one_line(m.group(2))}"
    return one_line(msg)


def _enum_hint(msg: str) -> str:
    m = re.search(r'Enum type "([\w.]+)" has no value named (\w+)', msg)
    if not m:
        return ""
    enum = _find_enum(m.group(1))
    if enum is None:
        return ""
    values = list(enum.values_by_name)
    close = close_matches(m.group(2), values, n=2)
    return (f"; did you mean {' or '.join(close)}?" if close
            else f"; one of: {', '.join(values[:12])}")


def _find_enum(full_name: str):
    parts = full_name.split(".")[1:]  # drop the package
    desc = caffe_pb2.DESCRIPTOR
    try:
        if len(parts) == 1:
            return desc.enum_types_by_name[parts[0]]
        msg = desc.message_types_by_name[parts[0]]
        for p in parts[1:-1]:
            msg = msg.nested_types_by_name[p]
        return msg.enum_types_by_name[parts[-1]]
    except KeyError:
        return None


def skipped_warning(path: str, skipped: list) -> Optional[str]:
    """One warning naming every skipped field and its lines, or None."""
    if not skipped:
        return None
    by_name: dict[str, list] = {}
    for f in skipped:
        by_name.setdefault(f.name, []).append(f)
    parts = []
    for name, fields in list(by_name.items())[:8]:
        lines = sorted({f.line for f in fields})
        where = (f"line {lines[0]}" if len(lines) == 1 else
                 f"lines {', '.join(map(str, lines[:4]))}{', ...' if len(lines) > 4 else ''}")
        typo = fields[0].suggestion
        parts.append(f"{name} ({where}{'; did you mean ' + typo + '?' if typo else ''})")
    more = f" and {len(by_name) - 8} more" if len(by_name) > 8 else ""
    return (f"{path}: skipped {len(skipped)} field{'s' if len(skipped) > 1 else ''} that Caffe's "
            f"schema does not know (a fork's own, or a typo): {', '.join(parts)}{more}")


def looks_like_solver(text: str) -> bool:
    """True when the text's top-level fields are a SolverParameter's rather than a net's."""
    # Nested net_param blocks contain `layer {`, so a solver match wins when both appear
    # at the start of a line: nets never have solver keys at top level.
    solver = _SOLVER_KEYS.search(text)
    if not solver:
        return False
    net = _NET_KEYS.search(text)
    return net is None or solver.start() < net.start()


def load_net_parameter(path: str) -> "caffe_pb2.NetParameter":
    """Read a net prototxt (any version: V0, V1 or current)."""
    return parse_text(read_text(path), caffe_pb2.NetParameter(), path)


def load_solver_parameter(path: str) -> "caffe_pb2.SolverParameter":
    """Read a solver prototxt."""
    return parse_text(read_text(path), caffe_pb2.SolverParameter(), path)


def resolve_path(ref: str, solver_path: str) -> str:
    """Find a net file a solver names: as given (Caffe resolves it against the working
    directory), then relative to the solver's own folder, then walking up from it (solvers
    often name nets relative to the Caffe root, e.g. ``examples/mnist/lenet.prototxt``)."""
    if os.path.isfile(ref):
        return ref
    base = os.path.dirname(os.path.abspath(solver_path))
    cand = os.path.join(base, ref)
    if os.path.isfile(cand):
        return cand
    name = os.path.basename(ref)
    parts = ref.replace("\\", "/").split("/")
    d = base
    for _ in range(6):
        for k in range(len(parts)):
            cand = os.path.join(d, *parts[k:])
            if os.path.isfile(cand):
                return cand
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    raise UserError(
        f"{solver_path}: net file '{ref}' not found (looked relative to the working directory "
        f"and to the solver's folder); pass the net prototxt directly, or fix the path"
        + ("" if name == ref else f" (a file named '{name}' next to the solver would do)")
    )
