"""call_within's failure is a hint: the lock cycle and where the call's threads were stuck."""

from __future__ import annotations

import linecache
import os
import tempfile
import threading
from pathlib import Path

import pytest

from concurrency_lab.hints import Hint, TrackedLock
from concurrency_lab.probes import call_within

STUDENT = """import threading


def transfer(source, target, ready):
    with source:
        ready.wait()
        if target.acquire(timeout=3):
            target.release()


def both_ways(alice, bob):
    ready = threading.Barrier(2)
    threads = [
        threading.Thread(target=transfer, args=(alice, bob, ready)),
        threading.Thread(target=transfer, args=(bob, alice, ready)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
"""


def _cell(source: str) -> dict:
    """Compile ``source`` as IPython compiles a notebook cell, and run it."""
    filename = str(Path(tempfile.gettempdir()) / f"ipykernel_{os.getpid()}" / "424242.py")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def test_a_deadlocked_call_fails_with_the_cycle_and_the_student_lines():
    """The hint names the cycle and each stuck thread's line in the student's code."""
    student = _cell(STUDENT)
    alice, bob = TrackedLock("alice.lock"), TrackedLock("bob.lock")
    with pytest.raises(Hint) as caught:
        call_within(1.0, student["both_ways"], alice, bob, hint="Take the locks in one global order")
    message = str(caught.value)
    first, cycle, *rest = message.split("\n")
    assert first == "both_ways did not return within 1.0 s. Take the locks in one global order"
    assert cycle == (
        "Blocked on locks: thread-1 holds alice.lock and waits for bob.lock; "
        "thread-2 holds bob.lock and waits for alice.lock"
    )
    report = "\n".join(rest)
    assert "in both_ways, line 20: thread.join()" in report
    assert report.count("in transfer, line 7: if target.acquire(timeout=3):") == 2
    for thread in threading.enumerate():  # the two transfers give up after 3 s
        if thread is not threading.current_thread() and thread.daemon is False:
            thread.join(5)


def test_a_call_that_returns_in_time_is_unchanged():
    """No hint when the call returns; its exception passes through as it was."""
    assert call_within(5, sorted, [2, 1]) == [1, 2]
    with pytest.raises(ZeroDivisionError):
        call_within(5, lambda: 1 / 0)
