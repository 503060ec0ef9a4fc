"""Reading prototxt files (nets and solvers) into ``caffe_pb2`` messages.

Caffe reads these with protobuf's text format; so do we, through the compiled schema.  What we
add is error reporting a person can act on: every parse failure becomes
``file:line:col: message`` (a :class:`~caffemem.errors.PrototxtError`).
"""

from __future__ import annotations

import os
import re

from .errors import PrototxtError, UserError
from .pb import Message, caffe_pb2, text_format

# Top-level fields that exist in SolverParameter but not in NetParameter: one of them at the
# start of a line means the file is a solver.
_SOLVER_KEYS = re.compile(
    r"^[ \t]*(net|net_param|train_net|train_net_param|test_net|test_net_param|base_lr|"
    r"max_iter|lr_policy|solver_mode|test_iter|test_interval|snapshot_prefix|solver_type|"
    r"momentum|weight_decay|iter_size|train_state|test_state)[ \t]*[:{]",
    re.MULTILINE,
)
_NET_KEYS = re.compile(r"^[ \t]*(layer|layers)[ \t]*\{", re.MULTILINE)


def read_text(path: str) -> str:
    """The file's text; a missing, unreadable or binary file is a user error naming it."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a .prototxt file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    if b"\x00" in raw[:4096]:
        raise UserError(f"{path}: looks binary (a .caffemodel or .binaryproto?); expected a text prototxt")
    return raw.decode("utf-8", errors="replace")


def parse_text(text: str, message: Message, path: str = "<string>") -> Message:
    """Parse protobuf text format into ``message``; errors name ``path:line:col``."""
    try:
        text_format.Parse(text, message, allow_unknown_extension=False)
    except text_format.ParseError as e:
        line, col = e.GetLine() or 0, e.GetColumn() or 0
        msg = str(e)
        m = re.match(r"^\d+:\d+ : ", msg)
        if m:
            msg = msg[m.end():]
        hint = ""
        unknown = re.search(r'has no field named "([^"]+)"', msg)
        if unknown:
            hint = (" (not a field of Caffe's schema nor of the forks caffemem knows; "
                    "check the spelling or the fork this net was written for)")
        raise PrototxtError(path, line, col, msg + hint) from None
    return message


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
