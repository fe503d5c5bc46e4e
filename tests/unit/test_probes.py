"""call_within: results, exceptions, and a deadline that kills stuck workers."""

from __future__ import annotations

import gc
import multiprocessing
import threading
import time
import traceback
import weakref

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


class _Held:
    """Stands for a queue in the student's frame: something whose clean-up must not wait for the collector."""


def _raise_holding(held: list[weakref.ref]) -> None:
    thing = _Held()
    held.append(weakref.ref(thing))
    try:
        raise ValueError("bad item")
    except ValueError as error:
        value = error  # the frame now holds its own exception: a reference cycle
    raise value


def test_a_raised_call_lets_go_of_its_frames_without_the_garbage_collector():
    """What the failed call's frames held is freed when the exception is dropped, with the collector off."""
    held: list[weakref.ref] = []
    gc.disable()
    try:
        with pytest.raises(ValueError, match="bad item") as caught:
            call_within(5, _raise_holding, held)
        assert "_raise_holding" in "".join(traceback.format_tb(caught.value.__traceback__))  # lines kept
        del caught
        assert held[0]() is None, "the failed call's locals live on until the cyclic collector runs"
    finally:
        gc.enable()
