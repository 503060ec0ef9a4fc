"""Errors that reach the user, and the exit codes the CLI maps them to.

A :class:`UserError` is the user's input being wrong (malformed prototxt, unknown layer type,
dangling bottom...).  It carries a message meant to be printed as is, on one line, without a
traceback.  Anything else escaping to the CLI is a bug in caffemem (exit code 2).

Text from the user's files that a message quotes goes through :func:`shown` (escaped like
Python's ``repr`` and shortened), so a control character, an ANSI escape or a carriage return
in a file can never split or rewrite the one line on the terminal.
"""

from __future__ import annotations

import difflib
import re
from typing import Iterable

#: the run did what was asked
EXIT_OK = 0
#: the user's input (files, options, usage) is wrong; the message says what to do
EXIT_USER = 1
#: a bug in caffemem; the message asks for a report
EXIT_INTERNAL = 2
#: ``--gpu-mem`` (or ``--host-mem``) was given and the modeled need does not fit in it
EXIT_NOFIT = 3

#: the exit codes of a command that never says "does not fit" (log, plot, report, layers)
EXIT_HELP_NO_FIT = ("exit status: 0 done; 1 the input or the options are wrong (one line on "
                    "stderr says what to do); 2 a bug in caffemem (please report it; --debug or "
                    "CAFFEMEM_DEBUG=1 shows the traceback)")
#: the exit codes, as ``caffemem --help`` and README state them
EXIT_HELP = (EXIT_HELP_NO_FIT + "; 3 the net does not fit in --gpu-mem or --host-mem (analyze, "
             "diff: the new net; fit: not even batch 1)")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


def shown(text: object, limit: int = 60) -> str:
    """``text`` quoted for a one-line message: control characters, ANSI escapes, CR, a BOM
    escaped as ``repr`` does, and cut to ``limit`` characters (saying how long it was)."""
    s = str(text)
    cut = s[:limit]
    out = repr(cut)
    if len(s) > limit:
        out += f"... ({len(s):,} characters)"
    return out


def one_line(message: str) -> str:
    """A message made safe for one terminal line: newlines become '; ', and any control
    character left is escaped (messages should already quote file text with :func:`shown`)."""
    msg = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    return _CONTROL.sub(lambda m: repr(m.group(0))[1:-1], msg)


def close_matches(word: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.75) -> list[str]:
    """Names among ``candidates`` close to ``word`` (difflib), a case-only difference first."""
    cands = [c for c in dict.fromkeys(candidates) if c]
    same_case = [c for c in cands if c.lower() == word.lower() and c != word]
    fuzzy = difflib.get_close_matches(word, cands, n=n, cutoff=cutoff)
    if not fuzzy:
        low = {c.lower(): c for c in cands}
        fuzzy = [low[m] for m in difflib.get_close_matches(word.lower(), list(low), n=n, cutoff=cutoff)]
    return list(dict.fromkeys(same_case + [c for c in fuzzy if c != word]))[:n]


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.75) -> str:
    """``"; did you mean 'Convolution'?"`` when a candidate is close to ``word``, else ``""``."""
    m = close_matches(word, candidates, cutoff=cutoff)
    if not m:
        return ""
    return "; did you mean " + " or ".join(repr(x) for x in m[:2]) + "?"


class UserError(Exception):
    """Bad input: printed as ``caffemem: <message>`` and exit code 1."""


class PrototxtError(UserError):
    """A prototxt that does not parse; the message starts with ``file:line:col:``."""

    def __init__(self, path: str, line: int, col: int, message: str) -> None:
        self.path, self.line, self.col = path, line, col
        super().__init__(f"{path}:{line}:{col}: {message}" if line else f"{path}: {message}")


class NetError(UserError):
    """A net that parses but cannot be built (dangling bottom, bad shape, unknown layer...)."""


class UnsupportedLayerError(NetError):
    """A layer type caffemem has no rule for, whose top shapes cannot be guessed; names the
    layer and asks for ``--input`` by top name."""

    def __init__(self, layer: str, type_: str, tops: Iterable[str] = ()) -> None:
        self.layer, self.type = layer, type_
        tops = list(tops)
        ask = (" ".join(f"--input {t}=N,C,H,W" for t in tops[:3]) if tops
               else "--input TOP=N,C,H,W (repeatable)")
        super().__init__(
            f"layer {shown(layer, 40)} has type {shown(type_, 40)}, which caffemem has no rule for "
            f"(a fork's layer?); give its top shapes with {ask} so the rest of the net can be "
            f"analyzed, or see 'caffemem layers' for the supported types"
        )


_NOTICES: list[str] = []


def notice(message: str) -> None:
    """A warning the CLI prints on stderr once the command is done (``caffemem: warning:``),
    whatever the output format: approximations and skipped fields that every output must
    mark.  Library callers find the same text in the nets' ``warnings``."""
    if message not in _NOTICES and len(_NOTICES) < 50:
        _NOTICES.append(message)


def take_notices() -> list[str]:
    """The notices so far, in order, each once; the list is emptied."""
    out = list(_NOTICES)
    _NOTICES.clear()
    return out
