"""Progress on stderr while a long file is read: only when stderr is a terminal, only once
the work has taken more than a second, and never with ``--quiet``."""

from __future__ import annotations

import os
import sys
import time
from typing import Optional, TextIO


class Progress:
    """Call with the bytes read so far; :meth:`done` clears the line.  Prints at most five
    times a second, nothing before ``after`` seconds, nothing when ``stream`` is not a
    terminal (a pipe, a file, CI)."""

    def __init__(self, path: str, stream: Optional[TextIO] = None, after: float = 1.0,
                 quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.on = not quiet and _is_tty(self.stream)
        self.path = path
        try:
            self.total = os.path.getsize(path)
        except OSError:
            self.total = 0
        self.start = time.monotonic()
        self.after = after
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int) -> None:
        if not self.on:
            return
        now = time.monotonic()
        if now - self.start < self.after or now - self.last < 0.2:
            return
        self.last = now
        mib = done / 2**20
        share = f"{100 * done / self.total:3.0f}% of {self.total / 2**20:,.0f} MiB" if self.total else f"{mib:,.0f} MiB"
        rate = mib / (now - self.start)
        self.stream.write(f"\rcaffemem: reading {os.path.basename(self.path)}: {share}, {rate:,.0f} MiB/s ")
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
