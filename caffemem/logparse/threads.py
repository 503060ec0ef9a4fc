"""A few threads doing work ahead of the one that needs it, results taken in order.

The log's chunks are scanned (:mod:`.scanahead`) and its curves' rows written
(:mod:`.export`) a little ahead of their consumer, in threads: numpy and the C extension
let go of Python's lock while they work.  That is all this asks of a thread pool, so it
does without :mod:`concurrent.futures`, whose import (with :mod:`logging` and
:mod:`queue`) costs ``caffemem log`` more than a pool of its own.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable


class Job:
    """One call, run by a worker; :meth:`result` waits for it."""

    __slots__ = ("call", "args", "_done", "_value", "_error")

    def __init__(self, call: Callable, args: tuple) -> None:
        self.call, self.args = call, args
        self._done = threading.Lock()
        self._done.acquire()  # released when the call has returned
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._value = self.call(*self.args)
        except BaseException as e:  # handed to the consumer by result()
            self._error = e
        finally:
            self.call = self.args = None
            self._done.release()

    def result(self) -> Any:
        self._done.acquire()
        self._done.release()
        if self._error is not None:
            raise self._error
        return self._value


class Workers:
    """``count`` threads running submitted jobs first come, first served.  Use as a context
    manager: leaving it drops the jobs not started yet and waits for the running ones."""

    def __init__(self, count: int, name: str = "caffemem") -> None:
        self._jobs: deque = deque()
        self._ready = threading.Semaphore(0)
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(count)]
        for t in self._threads:
            t.start()

    def submit(self, call: Callable, *args) -> Job:
        job = Job(call, args)
        self._jobs.append(job)
        self._ready.release()
        return job

    def _work(self) -> None:
        while True:
            self._ready.acquire()
            try:
                job = self._jobs.popleft()
            except IndexError:  # the jobs were dropped: nothing more to do
                return
            if job is None:
                return
            job.run()

    def close(self) -> None:
        """Drop the jobs not started, let the running ones finish, end the threads."""
        dropped = []
        while True:
            try:
                dropped.append(self._jobs.popleft())
            except IndexError:
                break
        for job in dropped:  # anyone waiting on a dropped job is told
            if job is not None:
                job._error = RuntimeError("dropped when the workers closed")
                job._done.release()
        for _ in self._threads:
            self._jobs.append(None)
            self._ready.release()
        for t in self._threads:
            t.join()

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
