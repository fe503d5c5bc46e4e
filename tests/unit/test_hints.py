"""Hints: the failure a student may see, and each diagnosis measured on a real run."""

from __future__ import annotations

import faulthandler
import linecache
import multiprocessing
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from concurrency_lab.hints import (
    HINT_ENAME,
    CallSpy,
    Hint,
    Leftovers,
    TrackedLock,
    deadlock_report,
    fail_with_hint,
    format_thread_dump,
    hang_report,
    is_cell_file,
    lost_updates,
    where_it_ran,
)


def test_fail_with_hint_raises_an_assertion_error_that_keeps_its_message():
    """A hint fails a test like an assert does, and is told apart by its class name."""
    with pytest.raises(AssertionError) as caught:
        fail_with_hint("3 of 40 increments were lost")
    assert type(caught.value) is Hint and HINT_ENAME == "Hint"
    assert str(caught.value) == "3 of 40 increments were lost"


# -- deadlocks ------------------------------------------------------------------------------


def _wait_until(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_tracked_lock_behaves_like_a_lock():
    """acquire/release/locked/with and a non-blocking acquire work as on threading.Lock."""
    lock = TrackedLock("x.lock")
    assert not lock.locked() and lock.owner is None
    with lock:
        assert lock.locked() and lock.owner == threading.get_ident()
        assert lock.acquire(False) is False
        assert lock.acquire(timeout=0.01) is False
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    assert lock.acquire() is True
    done = threading.Thread(target=lock.release)  # any thread may release a Lock
    done.start()
    done.join()
    assert not lock.locked() and deadlock_report([lock]) == ""


def test_deadlock_report_names_the_wait_for_cycle():
    """Two threads taking two locks in opposite orders: the report is the cycle, read from the books."""
    alice, bob = TrackedLock("alice.lock"), TrackedLock("bob.lock")
    both_hold_one = threading.Barrier(2)

    def take(first, second):
        with first:
            both_hold_one.wait()
            if second.acquire(timeout=3):  # gives up after the report was taken
                second.release()

    threads = [threading.Thread(target=take, args=pair) for pair in ((alice, bob), (bob, alice))]
    for thread in threads:
        thread.start()
    _wait_until(lambda: len(alice.waiters()) + len(bob.waiters()) == 2)
    report = deadlock_report([alice, bob])
    one = deadlock_report([alice, bob], threads=[threads[0].ident])
    for thread in threads:
        thread.join()
    assert one.startswith("thread-1 holds alice.lock and waits for bob.lock (held by thread-2)")
    assert (
        report == "thread-1 holds alice.lock and waits for bob.lock;\nthread-2 holds bob.lock and waits for alice.lock"
    )
    assert deadlock_report([alice, bob]) == ""


def test_deadlock_report_names_a_lock_taken_twice_and_a_lock_never_released():
    """A thread waiting for a lock it holds, and a lock a finished thread still holds."""
    again, kept = TrackedLock("a.lock"), TrackedLock("b.lock")

    def twice():
        with again:
            again.acquire(timeout=1.5)

    thread = threading.Thread(target=twice)
    thread.start()
    _wait_until(lambda: again.waiters())
    report = deadlock_report([again])
    thread.join()
    assert report.startswith("thread-1 holds a.lock and waits for a.lock again\n(a Lock is not re-entrant")

    leak = threading.Thread(target=kept.acquire)
    leak.start()
    leak.join()
    assert deadlock_report([kept]) == "b.lock is still held by a thread that has finished: it was never released"
    kept.release()


# -- hangs ----------------------------------------------------------------------------------


def _cell(source: str) -> dict:
    """Compile ``source`` as IPython does a cell (a file under ipykernel_<pid>/), and run it."""
    folder = Path(tempfile.gettempdir()) / f"ipykernel_{os.getpid()}"
    filename = str(folder / f"{abs(hash(source)) % 10**9}.py")
    assert is_cell_file(filename)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"threading": threading}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


STUDENT = """
def transfer(source, target, release):
    with source:
        release.wait()
"""

HIDDEN = """
### BEGIN HIDDEN TESTS
def _shuffle(transfer, lock, release):
    transfer(lock, None, release)
### END HIDDEN TESTS
"""


def test_hang_report_shows_student_frames_and_never_a_hidden_test():
    """A thread stuck in the student's code shows that line; the hidden test that called it shows nothing."""
    student, hidden = _cell(STUDENT), _cell(HIDDEN)
    release = threading.Event()
    thread = threading.Thread(target=hidden["_shuffle"], args=(student["transfer"], TrackedLock("l"), release))
    thread.start()
    try:
        _wait_until(lambda: "release.wait()" in hang_report([thread.ident]))
        report = hang_report([thread.ident])
    finally:
        release.set()
        thread.join()
    assert "in transfer, line 4: release.wait()" in report
    assert "(inside Event.wait, threading.py)" in report and "thread 1:" in report
    assert "_shuffle" not in report and "HIDDEN" not in report
    assert hang_report([threading.get_ident()]) == ""  # pytest's own frames are nobody's cell


def test_format_thread_dump_reads_a_real_faulthandler_dump():
    """faulthandler's dump, innermost first, comes out as the student's frames, outermost first."""
    student = _cell(
        "def spin(stop):\n    while not stop.is_set():\n        pass\n\n\ndef outer(stop):\n    spin(stop)\n"
    )
    stop = threading.Event()
    thread = threading.Thread(target=student["outer"], args=(stop,))
    thread.start()
    try:
        with tempfile.TemporaryFile("w+") as dump:
            faulthandler.dump_traceback(dump, all_threads=True)
            dump.seek(0)
            text = dump.read()
    finally:
        stop.set()
        thread.join()

    def source(filename, lineno):
        return linecache.getline(filename, lineno).strip() if is_cell_file(filename) else None

    report = format_thread_dump(text, source)
    assert report.startswith("Where each thread was in your code when the cell was interrupted")
    lines = report.splitlines()
    outer = lines.index("  in outer, line 7: spin(stop)")
    assert lines[outer + 1] in ("  in spin, line 2: while not stop.is_set():", "  in spin, line 3: pass")
    assert format_thread_dump(text, lambda filename, lineno: None) == ""


# -- lost updates, place, bounds, clean-up -----------------------------------------------------


def test_lost_updates_counts_the_missing_increments():
    """The hint says how many were lost, or that the count is not an int."""
    assert lost_updates(400, 363) == "37 of 400 increments were lost"
    assert lost_updates(400, 400) == ""
    assert lost_updates(10, 12) == "the count is 2 higher than the 10 increments made"
    assert lost_updates(10, 10.0) == "the count is 10.0, not an int"


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_where_it_ran_tells_this_process_from_its_children():
    """Work measured here is a hint naming this pid; work measured in child processes is not."""
    message = where_it_ran("the counting", here=0.31, children=0.0, reference=0.3)
    assert message == (
        f"the counting ran in this kernel (pid {os.getpid()}), not in child processes: this kernel used "
        "0.31 s of CPU time and child processes 0.00 s, for work of 0.30 s of CPU time"
    )
    assert where_it_ran("the counting", here=0.01, children=0.29, reference=0.3) == ""
    assert where_it_ran("the counting", here=0.01, children=0.1, reference=0.3) != ""  # the work went missing


def test_call_spy_tells_a_pool_from_own_threads_and_the_caller():
    """Calls from a pool are fine; from the caller's thread or hand-made threads they get a hint."""
    spy = CallSpy(lambda x: x, delay=0.05)
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(spy, range(6))) == list(range(6))
    assert spy.place("reading") == "" and spy.peak == 3 and len(set(spy.threads)) == 3
    assert spy.bounds("opens", "max_workers", 3, want=3) == ""
    assert spy.bounds("opens", "max_workers", 4, want=4) == (
        "with max_workers=4, at most 3 opens were in flight at once (expected 4); your code made them from 3 threads"
    )

    spy.reset()
    spy.calling(lambda items: [spy(i) for i in items])(range(2))
    assert spy.place("reading", "read_files") == (
        "reading ran in the main thread (the one that called read_files), not in a pool"
    )

    spy.reset()
    threads = [threading.Thread(target=spy, args=(i,)) for i in range(2)]
    spy.calling(lambda: [t.start() for t in threads] and [t.join() for t in threads])()
    assert spy.place("reading") == "reading ran in 2 threads you started yourself, not in a pool"
    assert spy.peak == 2


def test_call_spy_gather_overlaps_calls_whose_threads_start_late():
    """With gather=3, three calls started 0.1 s apart (each 0.02 s long) are in flight together."""
    spy = CallSpy(lambda x: x, delay=0.02, gather=3, gather_timeout=10)
    threads = [threading.Thread(target=spy, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join(timeout=20)
    assert spy.peak == 3 and len(spy.calls) == 6


def test_call_spy_gather_gives_up_once_and_again_after_reset():
    """Calls one at a time never fill a gate of 2: the first waits gather_timeout, the next goes at once."""
    spy = CallSpy(lambda x: x, gather=2, gather_timeout=0.3)
    waits = []
    for _ in range(2):
        start = time.perf_counter()
        spy(1)
        waits.append(time.perf_counter() - start)
    assert waits[0] >= 0.25 and waits[1] < 0.25, waits
    spy.reset()
    start = time.perf_counter()
    spy(1)
    assert time.perf_counter() - start >= 0.25


def test_call_spy_patches_a_method_and_puts_it_back():
    """patched() stands in for a method (self is passed) only inside the block."""

    class Session:
        def request(self, url):
            return f"got {url}"

    spy = CallSpy(None)
    with spy.patched(Session, "request"):
        assert Session().request("a") == "got a"
    assert len(spy.calls) == 1 and Session.request.__name__ == "request"


def test_leftovers_names_the_processes_and_threads_left_running():
    """A child process and a thread started and not waited for are reported; joined ones are not."""
    stop = threading.Event()
    context = multiprocessing.get_context("fork")
    with Leftovers(settle=0.2) as left:
        finished = context.Process(target=time.sleep, args=(0,))
        finished.start()
        finished.join()
        stray = context.Process(target=time.sleep, args=(30,))
        stray.start()
        helper = threading.Thread(target=stop.wait, name="helper")
        helper.start()
    try:
        report = left.report("queue_map")
        assert report.startswith(f"queue_map left running after it returned: 1 process (pid {stray.pid} (")
        assert report.endswith("and 1 thread ('helper')")
    finally:
        stray.kill()
        stray.join()
        stop.set()
        helper.join()
    with Leftovers(settle=0.2) as clean:
        pass
    assert clean.report() == ""


def test_process_watch_sees_the_start_method_and_which_child_worked():
    """A process started under another method is named; one busy child of two is a hint, two are not."""
    from concurrency_lab.hints import ProcessWatch

    with ProcessWatch() as watch:
        busy = multiprocessing.get_context("fork").Process(target=_busy, args=(0.3,))
        idle = multiprocessing.get_context("fork").Process(target=time.sleep, args=(0.3,))
        busy.start(), idle.start()
        busy.join(), idle.join()
    assert watch.methods == {"fork"}
    assert watch.picked_method("fork") == ""
    assert watch.picked_method("spawn", "parallel_prime_counts").startswith(
        "parallel_prime_counts started its processes with the 'fork' start method while the default was 'spawn'"
    )
    assert watch.cpu[busy.pid] > 0.2 and watch.cpu[idle.pid] < 0.05
    assert watch.spread("the counting", 2, reference=0.3).startswith(
        f"the counting ran in 1 of the 2 processes (pid {busy.pid} used "
    )
    with ProcessWatch() as both:
        workers = [multiprocessing.get_context("fork").Process(target=_busy, args=(0.2,)) for _ in range(2)]
        [w.start() for w in workers]
        [w.join() for w in workers]
    assert both.spread("the counting", 2, reference=0.4) == ""
