"""Run a few pure computations at once on a multi-core machine, in forked children.

The HTML report's card table probes the model at a few batches; the probes of one round do
not depend on each other, and each is a pure function of the loaded net (nets are built and
replayed, never changed).  :func:`warm` runs all but the first in forked children (the
first in this process) and returns whatever each produced.  It only ever saves time: where
``os.fork`` is missing, one CPU is all there is, or a child fails (an exception, a result
that does not pickle, a crash), that result is simply absent and the caller computes it
itself, raising what it raises there.  The warnings a child notes for the CLI
(:func:`caffemem.errors.notice`) are noted again here, in the order of the jobs.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Callable, Hashable, Sequence

from .errors import notice, take_notices

_MISSING = object()


def can_fork() -> bool:
    """fork exists and there is more than one CPU to run the children on."""
    if not hasattr(os, "fork"):
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return cpus > 1


def warm(jobs: Sequence[tuple[Hashable, Callable[[], Any]]]) -> dict:
    """``{key: result}`` of the jobs that succeeded (the first run here, the rest in forked
    children at the same time); a job that raises or whose child fails is left out."""
    out: dict = {}
    if not jobs:
        return out
    children = []
    if len(jobs) > 1 and can_fork():
        for key, fn in jobs[1:]:
            child = _spawn(fn)
            if child is not None:
                children.append((key, *child))
    ran = {key for key, _, _ in children}
    for key, fn in jobs:
        if key in ran:
            continue
        try:
            out[key] = fn()
        except Exception:  # noqa: BLE001 - the caller computes it again and sees the error
            pass
    for key, pid, fd in children:
        got = _collect(pid, fd)
        if got is not _MISSING:
            out[key], notes = got
            for message in notes:
                notice(message)
    return out


def _spawn(fn: Callable[[], Any]):
    """(pid, read end) of a child computing ``fn()``, or None when the fork fails."""
    try:
        r, w = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # the child: compute, send, leave without running the parent's cleanup
        code = 1
        try:
            os.close(r)
            take_notices()  # the parent's, inherited: the child sends back only its own
            result = fn()
            data = pickle.dumps((result, take_notices()), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(w, "wb") as f:
                f.write(data)
            code = 0
        except BaseException:  # noqa: BLE001 - the parent sees a failed child
            pass
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _collect(pid: int, fd: int):
    chunks = []
    try:
        with os.fdopen(fd, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                chunks.append(b)
    finally:
        _, status = os.waitpid(pid, 0)
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        return _MISSING
    try:
        return pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001
        return _MISSING
