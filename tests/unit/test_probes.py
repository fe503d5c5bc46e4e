"""call_within: results, exceptions, and a deadline that kills stuck workers."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from concurrency_lab.probes import call_within


def test_returns_the_result_and_passes_arguments():
    """A quick call returns its value; positional and keyword arguments get through."""
    assert call_within(5, pow, 2, 10) == 1024
    assert call_within(5, sorted, [3, 1, 2], reverse=True) == [3, 2, 1]


def test_reraises_the_functions_exception():
    """An exception inside the call is raised to the caller unchanged."""
    with pytest.raises(ZeroDivisionError):
        call_within(5, lambda: 1 / 0)


def test_a_deadlock_fails_with_the_name_and_hint():
    """A call that never returns fails after the deadline, naming the function and the hint."""
    lock = threading.Lock()
    lock.acquire()

    def transfer():
        with lock:
            return 1

    start = time.perf_counter()
    with pytest.raises(AssertionError, match=r"transfer did not return within 0.3 s\. lock order"):
        call_within(0.3, transfer, hint="lock order")
    assert time.perf_counter() - start < 3
    with pytest.raises(AssertionError, match=r"^queue_map did not return within 0.2 s$"):
        call_within(0.2, transfer, name="queue_map")
    lock.release()


def test_stuck_worker_processes_are_killed():
    """Children that multiprocessing started during the hung call do not outlive it."""
    ctx = multiprocessing.get_context("spawn")

    def start_and_wait():
        child = ctx.Process(target=time.sleep, args=(60,))
        child.start()
        child.join()

    with pytest.raises(AssertionError):
        call_within(3, start_and_wait)
    time.sleep(0.5)
    assert not [c for c in multiprocessing.active_children() if c.is_alive()]
