"""The small thread pool the log's scan and writers use (logparse/threads.py)."""

from __future__ import annotations

import threading
import time

import pytest

from caffemem.logparse.threads import Workers


def test_results_come_back_in_order_from_several_threads():
    seen = set()

    def square(x):
        seen.add(threading.current_thread().name)
        time.sleep(0.001 * (x % 3))
        return x * x

    with Workers(3, "t") as pool:
        jobs = [pool.submit(square, x) for x in range(60)]
        assert [j.result() for j in jobs] == [x * x for x in range(60)]
    assert seen <= {"t-0", "t-1", "t-2"} and seen


def test_an_error_reaches_the_consumer_and_the_pool_still_closes():
    def fail(x):
        raise ValueError(f"bad {x}")

    with Workers(2) as pool:
        job = pool.submit(fail, 7)
        with pytest.raises(ValueError, match="bad 7"):
            job.result()
        assert pool.submit(len, "abc").result() == 3


def test_closing_drops_jobs_not_started_and_ends_every_thread():
    gate = threading.Event()
    pool = Workers(1)
    first = pool.submit(gate.wait, 5)
    later = [pool.submit(len, "x") for _ in range(5)]
    time.sleep(0.05)  # the worker is inside the first job
    closer = threading.Thread(target=pool.close)
    closer.start()
    time.sleep(0.05)
    gate.set()
    closer.join(5)
    assert not closer.is_alive() and first.result() is True
    for job in later:  # dropped, or run before the drop: never left waiting
        try:
            assert job.result() == 1
        except RuntimeError as e:
            assert "dropped" in str(e)
    assert not any(t.is_alive() for t in pool._threads)
