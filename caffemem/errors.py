"""Errors that reach the user, and the exit codes the CLI maps them to.

A :class:`UserError` is the user's input being wrong (malformed prototxt, unknown layer type,
dangling bottom...).  It carries a message meant to be printed as is, without a traceback.
Anything else escaping to the CLI is a bug in caffemem (exit code 2).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USER = 1
EXIT_INTERNAL = 2
#: ``--gpu-mem`` (or ``--host-mem``) was given and the modeled need does not fit in it
EXIT_NOFIT = 3


class UserError(Exception):
    """Bad input: printed as ``caffemem: <message>`` and exit code 1."""


class PrototxtError(UserError):
    """A prototxt that does not parse; the message starts with ``file:line:col:``."""

    def __init__(self, path: str, line: int, col: int, message: str) -> None:
        self.path, self.line, self.col = path, line, col
        super().__init__(f"{path}:{line}:{col}: {message}")


class NetError(UserError):
    """A net that parses but cannot be built (dangling bottom, bad shape, unknown layer...)."""


class UnsupportedLayerError(NetError):
    """A layer type caffemem has no rule for; names the layer and suggests ``--input``."""

    def __init__(self, layer: str, type_: str) -> None:
        self.layer, self.type = layer, type_
        super().__init__(
            f"layer '{layer}' has type '{type_}', which caffemem has no rule for; "
            f"give its top shapes with --input TOP=N,C,H,W (repeatable) so the rest of the net "
            f"can be analyzed, or see 'caffemem layers' for the supported types"
        )
