"""Hints: test failures written to be shown to the student, and the measurements behind them.

A hidden test must not show its source, its inputs or the answer it expects,
but the student should still learn what went wrong in *their* run. A test
fails with :func:`fail_with_hint` to say so: the feedback filter shows the
message of a :class:`Hint` and withholds everything else (the test's source,
tracebacks, plain ``assert`` messages).

The rest of this module measures what a hint reports, on the student's own
code:

* :class:`TrackedLock` and :func:`deadlock_report`: which threads were
  blocked, on which locks, holding which: the lock wait-for cycle;
* :func:`hang_report`: where every thread stood in the student's code when a
  call was given up on (:func:`format_thread_dump` does the same for a
  ``faulthandler`` dump taken from outside the kernel);
* :func:`lost_updates`: how many increments were lost;
* :func:`where_it_ran`: did CPU-bound work run here or in child processes;
* :class:`ProcessWatch`: the start method each process used, and which did the work;
* :class:`CallSpy`: which threads made a call, and how many calls were in
  flight at once;
* :class:`Leftovers`: the processes and threads a call left running.
"""

from __future__ import annotations

import _thread
import contextlib
import linecache
import os
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

__all__ = [
    "HINT_ENAME",
    "CallSpy",
    "Hint",
    "Leftovers",
    "ProcessWatch",
    "TrackedLock",
    "deadlock_report",
    "fail_with_hint",
    "format_thread_dump",
    "hang_report",
    "is_cell_file",
    "lost_updates",
    "where_it_ran",
]


class Hint(AssertionError):
    """A failed check whose message is written to be shown to the student.

    It is an ``AssertionError``, so a test cell that raises it fails like any
    other test. Its message must describe the student's run, never the test:
    no test source, no hidden inputs, no expected values that give the answer away.
    """


HINT_ENAME = Hint.__name__
"""The ``ename`` a :class:`Hint` has in a notebook's error output."""


def fail_with_hint(message: str) -> NoReturn:
    """Fail the current test with ``message``, which the feedback shows to the student.

    Raises:
        Hint: always.
    """
    raise Hint(message)


# --------------------------------------------------------------------------
# Deadlocks: locks that know who holds them and who waits for them.

_BOOKS = _thread.allocate_lock()  # guards the two tables below; never held while blocking
_HOLDING: dict[int, list[TrackedLock]] = {}  # thread ident -> tracked locks it holds, in order
_WAITING: dict[int, TrackedLock] = {}  # thread ident -> the tracked lock it waits for
_LOCKS: weakref.WeakSet[TrackedLock] = weakref.WeakSet()


class TrackedLock:
    """A ``threading.Lock`` that records its owner thread and the threads waiting for it.

    It has the same methods as a ``Lock`` (``acquire(blocking, timeout)``,
    ``release``, ``locked``, ``with``), so a test can put one where a student's
    code expects a lock, such as an account's ``lock`` attribute. Like a
    ``Lock`` it is not re-entrant, and any thread may release it.

    Args:
        name: how a report names the lock, for example ``"alice.lock"``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = _thread.allocate_lock()
        self._owner: int | None = None
        with _BOOKS:
            _LOCKS.add(self)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, as ``Lock.acquire`` does; while blocked, the lock lists this thread as waiting."""
        me = threading.get_ident()
        if blocking:
            with _BOOKS:
                _WAITING[me] = self
        try:
            got = self._lock.acquire(blocking, timeout)
        finally:
            with _BOOKS:
                if _WAITING.get(me) is self:
                    del _WAITING[me]
        if got:
            with _BOOKS:
                self._owner = me
                _HOLDING.setdefault(me, []).append(self)
        return got

    def release(self) -> None:
        """Release the lock, as ``Lock.release`` does (``RuntimeError`` if it is not held)."""
        with _BOOKS:
            owner = self._owner
            self._lock.release()  # raises RuntimeError, books untouched, if not held
            self._owner = None
            held = _HOLDING.get(owner, []) if owner is not None else []
            if self in held:
                held.remove(self)
                if not held:
                    del _HOLDING[owner]

    def locked(self) -> bool:
        """True if some thread holds the lock."""
        return self._lock.locked()

    @property
    def owner(self) -> int | None:
        """The ident of the thread that holds the lock, or None."""
        return self._owner

    def waiters(self) -> list[int]:
        """The idents of the threads blocked in ``acquire`` on this lock."""
        with _BOOKS:
            return [ident for ident, lock in _WAITING.items() if lock is self]

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<TrackedLock {self.name} {state}>"


def _thread_names() -> dict[int, str]:
    return {thread.ident: thread.name for thread in threading.enumerate() if thread.ident is not None}


def deadlock_report(locks: Iterable[TrackedLock] | None = None, threads: Iterable[int] | None = None) -> str:
    """Describe the threads blocked on tracked locks: the wait-for cycles first.

    Threads are numbered ``thread-1``, ``thread-2``, ... in the order the
    report first meets them. A cycle reads, for example (one thread a line, so
    that Validate, which cuts long lines, shows it whole)::

        thread-1 holds alice.lock and waits for bob.lock;
        thread-2 holds bob.lock and waits for alice.lock

    A lock still held by a thread that has ended is named too (a lock that was
    never released).

    Args:
        locks: the locks to look at (default: every tracked lock alive).
        threads: the waiting threads to look at (default: all), such as the
            threads of one call, leaving out threads stuck since an earlier test.

    Returns:
        The report, or "" if no thread is blocked on these locks and none is
        held by a finished thread.
    """
    with _BOOKS:
        chosen = list(_LOCKS) if locks is None else list(locks)
        mine = {id(lock) for lock in chosen}
        chosen_threads = None if threads is None else set(threads)
        waiting = {
            ident: lock
            for ident, lock in _WAITING.items()
            if id(lock) in mine and (chosen_threads is None or ident in chosen_threads)
        }
        holding = {ident: [lock for lock in held if id(lock) in mine] for ident, held in _HOLDING.items()}
        owners = {id(lock): lock._owner for lock in chosen}
    alive = _thread_names()
    labels: dict[int, str] = {}

    def label(ident: int) -> str:
        if ident not in labels:
            labels[ident] = f"thread-{len(labels) + 1}"
        return labels[ident]

    def held_by(ident: int) -> str:
        held = holding.get(ident) or []
        return "holds " + " and ".join(lock.name for lock in held) if held else "holds no tracked lock"

    sentences: list[str] = []
    in_cycle: set[int] = set()
    # Start each cycle at the thread holding the first lock by name, so a report reads the same every run.
    for start in sorted(waiting, key=lambda ident: [lock.name for lock in holding.get(ident) or []] or ["~"]):
        if start in in_cycle:
            continue
        path, ident = [], start
        while ident in waiting and ident not in path:
            path.append(ident)
            ident = owners.get(id(waiting[ident]))
            if ident is None:
                break
        if ident is None or ident not in path:
            continue
        cycle = path[path.index(ident) :]
        in_cycle.update(cycle)
        parts = []
        for member in cycle:
            wanted = waiting[member]
            if owners.get(id(wanted)) == member:
                parts.append(
                    f"{label(member)} {held_by(member)} and waits for {wanted.name} again\n"
                    "(a Lock is not re-entrant: the thread that holds it cannot take it twice)"
                )
            else:
                parts.append(f"{label(member)} {held_by(member)} and waits for {wanted.name}")
        sentences.append(";\n".join(parts))
    for ident, wanted in sorted(waiting.items(), key=lambda item: item[1].name):
        if ident in in_cycle:
            continue
        owner = owners.get(id(wanted))
        name = label(ident)  # numbered before the thread it waits for
        whom = f"held by {label(owner)}" if owner is not None else "free again"
        sentences.append(f"{name} {held_by(ident)} and waits for {wanted.name} ({whom})")
    for lock in sorted(chosen, key=lambda lock: lock.name):
        owner = owners.get(id(lock))
        if owner is not None and owner not in alive:
            sentences.append(f"{lock.name} is still held by a thread that has finished: it was never released")
    return "\n".join(sentences)


# --------------------------------------------------------------------------
# Hangs: where each thread stood in the student's code.

HIDDEN_MARK = "BEGIN HIDDEN TESTS"
_CELL_FILE = re.compile(r"(ipykernel_\d+[/\\]\d+\.py$)|(^<ipython-input-\d+-[0-9a-f]+>$)")


def is_cell_file(filename: str) -> bool:
    """True if ``filename`` is where IPython compiled a notebook cell."""
    return bool(_CELL_FILE.search(filename))


def _in_folder(filename: str, folder: str) -> bool:
    return os.path.dirname(os.path.abspath(filename)) == folder


def _student_source(filename: str, lineno: int, folder: str) -> str | None:
    """The source line of a student's frame, or None if the frame is not the student's.

    A student's frames run in notebook cells and in modules next to the
    notebook (``%%writefile``). A cell holding hidden tests is never the
    student's: nothing from it is shown, not even a line number.
    """
    if not (is_cell_file(filename) or (filename.endswith(".py") and _in_folder(filename, folder))):
        return None
    lines = linecache.getlines(filename)
    if any(HIDDEN_MARK in line for line in lines):
        return None
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


@dataclass
class _Frame:
    filename: str
    lineno: int
    function: str


def _format_stacks(stacks: list[tuple[str, list[_Frame]]], source: Callable[[str, int], str | None], title: str) -> str:
    """Shared by :func:`hang_report` and :func:`format_thread_dump`: frames outermost first."""
    blocks = []
    for label, frames in stacks:
        lines = []
        last = -1
        for index, frame in enumerate(frames):
            text = source(frame.filename, frame.lineno)
            if text is None:
                continue
            lines.append(f"  in {frame.function}, line {frame.lineno}: {text}")
            last = index
        if not lines:
            continue
        if last + 1 < len(frames):  # the call it was inside, below the student's code
            inner = frames[last + 1]
            lines.append(f"    (inside {inner.function}, {os.path.basename(inner.filename)})")
        blocks.append(f"{label}:\n" + "\n".join(lines))
    if not blocks:
        return ""
    return f"{title}\n" + "\n".join(blocks)


def _frames(frame: FrameType | None) -> list[_Frame]:
    found = []
    while frame is not None:
        code = frame.f_code
        found.append(_Frame(code.co_filename, frame.f_lineno, getattr(code, "co_qualname", code.co_name)))
        frame = frame.f_back
    return found[::-1]


def hang_report(threads: Iterable[int] | None = None, folder: str | None = None) -> str:
    """Where every thread of this process stands in the student's code, right now.

    Call it when giving up on a call (a deadlock, an endless wait): it shows,
    per thread, the student's frames (outermost first) and the library call
    it was inside. Frames of cells that hold hidden tests are left out.

    Args:
        threads: the thread idents to show (default: every thread but the caller).
        folder: where the student's modules are (default: the current folder).

    Returns:
        The report, or "" if no thread is in the student's code.
    """
    folder = os.path.abspath(folder or os.getcwd())
    names = _thread_names()
    frames = sys._current_frames()
    me = threading.get_ident()
    chosen = [ident for ident in frames if ident != me] if threads is None else list(threads)
    stacks = []
    for number, ident in enumerate(chosen, start=1):
        if ident in frames:
            name = names.get(ident, "")
            if ident == threading.main_thread().ident:
                label = "main thread"
            elif _DEFAULT_NAME.match(name):  # "Thread-3 (func)" names the target, maybe a test's helper
                label = f"thread {number}"
            else:
                label = f"thread {name!r}"
            stacks.append((label, _frames(frames[ident])))
    return _format_stacks(
        stacks,
        lambda filename, lineno: _student_source(filename, lineno, folder),
        "Where each thread was in your code when it was stopped (outermost call first):",
    )


_DEFAULT_NAME = re.compile(r"^Thread-\d+( \(.*\))?$")
_DUMP_THREAD = re.compile(r"^(Current thread|Thread) (0x[0-9a-f]+)")
_DUMP_FRAME = re.compile(r'^\s+File "(.*)", line (\d+) in (.+)$')


def format_thread_dump(dump: str, source: Callable[[str, int], str | None]) -> str:
    """Turn a ``faulthandler`` all-threads dump into the student's view of it.

    Args:
        dump: what ``faulthandler.dump_traceback(all_threads=True)`` wrote
            (innermost frame first, as it writes them).
        source: gives the source line to show for a frame, or None to leave
            the frame out (library code, hidden tests).

    Returns:
        The report in :func:`hang_report`'s form, or "" if no thread was in
        the student's code.
    """
    stacks: list[tuple[str, list[_Frame]]] = []
    current: list[_Frame] | None = None
    for line in dump.splitlines():
        head = _DUMP_THREAD.match(line)
        if head:
            current = []
            stacks.append(("", current))
            continue
        frame = _DUMP_FRAME.match(line)
        if frame and current is not None:
            current.append(_Frame(frame.group(1), int(frame.group(2)), frame.group(3)))
    labelled = []
    others = 0
    for _, frames in stacks:
        frames.reverse()  # faulthandler writes the innermost frame first
        if any(f.function == "start" and f.filename.endswith("kernelapp.py") for f in frames):
            label = "main thread"
        else:
            others += 1
            label = f"thread {others}"
        labelled.append((label, frames))
    labelled.sort(key=lambda item: item[0] != "main thread")  # the cell's own thread first
    return _format_stacks(
        labelled, source, "Where each thread was in your code when the cell was interrupted (outermost call first):"
    )


# --------------------------------------------------------------------------
# Lost updates, and where the work ran.


def lost_updates(expected: int, got: Any, what: str = "increments") -> str:
    """Say how many of ``expected`` updates are missing from ``got``, e.g. "37 of 400 increments were lost"."""
    if type(got) is not int:
        return f"the count is {got!r}, not an int"
    if got == expected:
        return ""
    if got < expected:
        return f"{expected - got} of {expected} {what} were lost"
    return f"the count is {got - expected} higher than the {expected} {what} made"


def where_it_ran(what: str, here: float, children: float, reference: float) -> str:
    """A hint if CPU-bound work ran in this process rather than in child processes; "" otherwise.

    Args:
        what: the work, as the hint names it ("the counting").
        here: CPU seconds this process used during the call.
        children: CPU seconds its child processes used during the call (joined ones).
        reference: CPU seconds the work costs: done once in one process, or the call's own
            CPU time here and in its children.

    (:func:`concurrency_lab.fixtures.cpu_split_under_spawn` measures ``here`` and ``children``.)
    """
    if here < 0.5 * reference and children > 0.5 * reference:
        return ""
    return (
        f"{what} ran in this kernel (pid {os.getpid()}), not in child processes: this kernel used "
        f"{here:.2f} s of CPU time and child processes {children:.2f} s, for work of "
        f"{reference:.2f} s of CPU time"
    )


# --------------------------------------------------------------------------
# Processes: which start method they used, and how much CPU each one spent.


class ProcessWatch:
    """Inside a ``with`` block: the multiprocessing processes started, and the CPU each child used.

    Every process started through ``multiprocessing`` (``Process``, ``Pool``,
    ``ProcessPoolExecutor``) is recorded with the start method it really
    used. A sampler thread reads the CPU time of each of them every
    ``interval`` seconds (a process's time stays readable until it is joined),
    so :attr:`cpu` knows which processes did the work. The sampling costs
    this process little CPU time, so a CPU split measured meanwhile stays fair.

    Args:
        interval: seconds between samples.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.started: list[tuple[Any, str]] = []  # (process, start method)
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()

    def __enter__(self) -> ProcessWatch:
        import multiprocessing
        from multiprocessing.process import BaseProcess

        original = BaseProcess.start
        watch = self

        def start(process: Any) -> None:
            method = type(process)._start_method or multiprocessing.get_start_method()
            watch.started.append((process, method))
            return original(process)

        self._restore = (BaseProcess, original)
        BaseProcess.start = start
        self._sampler = threading.Thread(target=self._sample_until_stopped, name="process-watch", daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        """Read the CPU time of each process started so far (one /proc read each: cheap)."""
        import psutil

        for process, _ in list(self.started):
            pid = process.pid
            if pid is None:
                continue
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:  # reaped already: its last sample stands
                continue
            self.cpu[pid] = max(self.cpu.get(pid, 0.0), times.user + times.system)

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sampler.join()
        self._sample()
        owner, original = self._restore
        owner.start = original

    @property
    def methods(self) -> set[str]:
        """The start methods of the processes started."""
        return {method for _, method in self.started}

    def picked_method(self, default: str, func: str = "your function") -> str:
        """A hint if a process was started with another start method than ``default``; "" otherwise."""
        other = sorted(self.methods - {default})
        if not other:
            return ""
        return (
            f"{func} started its processes with the {other[0]!r} start method while the default was "
            f"{default!r}: use the default start method and do not pick one (fork does not exist on "
            "Windows, and macOS starts processes with spawn)"
        )

    def spread(self, what: str, processes: int, reference: float, share: float = 0.1) -> str:
        """A hint unless at least ``processes`` child processes each did a fair part of the work.

        Args:
            what: the work, as the hint names it ("the counting of a single limit").
            processes: how many processes should have worked.
            reference: CPU seconds the whole work costs (done once in one process, or in all).
            share: the part of ``reference`` a process must have used to count as working.
        """
        busy = sorted(self.cpu.items(), key=lambda item: -item[1])
        working = [pid for pid, seconds in busy if seconds >= share * reference]
        if len(working) >= processes:
            return ""
        shown = ", ".join(f"pid {pid} used {seconds:.2f} s" for pid, seconds in busy[: max(processes, 2)])
        return (
            f"{what} ran in {len(working)} of the {processes} processes ({shown or 'no child process ran'}): "
            "split the work so that every process gets some"
        )


# --------------------------------------------------------------------------
# Bounds and places: which threads made a call, and how many at once.

_POOL_MODULES = ("concurrent.futures.thread", "multiprocessing.pool")


@dataclass(frozen=True)
class Call:
    """One call a :class:`CallSpy` saw."""

    thread: int
    thread_name: str
    pooled: bool
    pid: int


class CallSpy:
    """Wraps a function and records, for each call, its thread, and the calls in flight.

    Use it as the function itself (``opener=spy``), or put it in a class's
    place with :meth:`patched`. Record the thread that calls the student's
    function with :meth:`calling`, so :meth:`place` can tell "in the calling
    thread" from "in a pool".

    Args:
        func: the function to call.
        delay: seconds to sleep in each call before calling ``func`` (so that
            calls that can overlap do overlap).
        gather: hold each call until this many calls wait together, then
            start their delays (0: hold none). Calls that can overlap are then
            seen overlapping however late their threads start, without a long
            delay. If ``gather_timeout`` seconds pass first, the waiting calls
            go on and the spy stops gathering until :meth:`reset`.
        gather_timeout: seconds a call waits for the others at most.
    """

    def __init__(
        self,
        func: Callable[..., Any] | None = None,
        delay: float = 0.0,
        gather: int = 0,
        gather_timeout: float = 3.0,
    ) -> None:
        self.func = func
        self.delay = delay
        self.gather = gather
        self.gather_timeout = gather_timeout
        self._gate = threading.Condition()
        self._held = 0
        self._wave = 0
        self._gathering = True
        self.calls: list[Call] = []
        self.now = 0
        self.peak = 0
        self.caller: int | None = None
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        assert self.func is not None, "CallSpy has no function to call"
        return self.spied_call(self.delay, self.func, *args, **kwargs)

    def spied_call(self, delay: float, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)`` after ``delay`` seconds, recorded as one call."""
        thread = threading.current_thread()
        target = getattr(thread, "_target", None)
        pooled = getattr(target, "__module__", "") in _POOL_MODULES
        with self.lock:
            self.calls.append(Call(threading.get_ident(), thread.name, pooled, os.getpid()))
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            self._wait_at_gate()
            if delay:
                time.sleep(delay)
            return func(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1

    def _wait_at_gate(self) -> None:
        """Hold this call until ``gather`` calls wait together (see the class's ``gather``)."""
        with self._gate:
            if self.gather <= 0 or not self._gathering:
                return
            self._held += 1
            wave = self._wave
            if self._held < self.gather:
                self._gate.wait_for(lambda: self._wave != wave, timeout=self.gather_timeout)
                if self._wave != wave:
                    return
                self._gathering = False  # never enough together: stop holding calls
            self._held = 0
            self._wave += 1
            self._gate.notify_all()

    def reset(self) -> None:
        """Forget every call seen so far (the caller stays), and gather again."""
        with self.lock:
            self.calls, self.now, self.peak = [], 0, 0
        with self._gate:
            self._held, self._gathering = 0, True
            self._wave += 1
            self._gate.notify_all()

    @contextlib.contextmanager
    def patched(self, owner: Any, name: str) -> Iterator[CallSpy]:
        """Replace ``owner.name`` by this spy (bound like a method) inside the block."""
        original = getattr(owner, name)
        self.func = original

        def spied(*args: Any, **kwargs: Any) -> Any:
            return self(*args, **kwargs)

        setattr(owner, name, spied)
        try:
            yield self
        finally:
            setattr(owner, name, original)

    def calling(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func``, wrapped so the spy knows which thread called it."""

        def call(*args: Any, **kwargs: Any) -> Any:
            self.caller = threading.get_ident()
            return func(*args, **kwargs)

        return call

    @property
    def threads(self) -> list[int]:
        """The ``threading.get_ident()`` of the thread of each call, in order."""
        return [call.thread for call in self.calls]

    def place(self, what: str, func: str = "your function") -> str:
        """Where the calls ran, as a hint: "" if all ran in a pool's threads.

        For example "reading ran in the main thread (the one that called
        read_files), not in a pool" or "reading ran in 3 threads you started
        yourself, not in a pool".
        """
        if not self.calls or all(call.pooled for call in self.calls):
            return ""
        if self.caller is not None and any(call.thread == self.caller for call in self.calls):
            return f"{what} ran in the main thread (the one that called {func}), not in a pool"
        own = {call.thread for call in self.calls if not call.pooled}
        return f"{what} ran in {len(own)} thread{'s' if len(own) != 1 else ''} you started yourself, not in a pool"

    def bounds(self, what: str, limit_name: str, limit: int, want: int, peak: int | None = None) -> str:
        """A hint when the calls in flight at once were not ``want``: "" otherwise.

        Args:
            what: the calls, plural ("requests").
            limit_name: the parameter that sets the bound ("max_threads").
            limit: its value in this run.
            want: how many should have been in flight at the peak.
            peak: the peak measured elsewhere (a server's count); default: this spy's.
        """
        peak = self.peak if peak is None else peak
        if peak == want:
            return ""
        used = len(set(self.threads))
        return (
            f"with {limit_name}={limit}, at most {peak} {what} were in flight at once (expected {want}); "
            f"your code made them from {used} thread{'s' if used != 1 else ''}"
        )


# --------------------------------------------------------------------------
# Clean-up: what a call left running.


def _describe_process(proc: Any) -> str:
    try:
        command = " ".join(proc.cmdline()) or proc.name()
    except Exception:  # it ended, or we may not look: the pid is enough
        command = "?"
    if len(command) > 70:
        command = command[:67] + "..."
    return f"pid {proc.pid} ({command})"


class Leftovers:
    """The threads and child processes that appeared inside a ``with`` block and are still running.

    Example::

        with Leftovers() as left:
            queue_map(abs, [1, 2])
        if left.report():
            fail_with_hint(left.report("queue_map"))
    """

    def __init__(self, settle: float = 0.5) -> None:
        self.settle = settle
        self.processes: list[Any] = []
        self.threads: list[threading.Thread] = []

    @staticmethod
    def _children() -> dict[int, Any]:
        import psutil

        try:
            return {p.pid: p for p in psutil.Process().children(recursive=True)}
        except psutil.Error:
            return {}

    def __enter__(self) -> Leftovers:
        self._threads = {thread.ident for thread in threading.enumerate()}
        self._procs = set(self._children())
        return self

    def __exit__(self, *exc: object) -> None:
        import psutil

        deadline = time.monotonic() + self.settle
        while True:  # processes and threads that are on their way out get a moment to finish
            threads = [t for t in threading.enumerate() if t.ident not in self._threads and t.is_alive()]
            procs = []
            for pid, proc in self._children().items():
                try:
                    if pid not in self._procs and proc.status() != psutil.STATUS_ZOMBIE:
                        procs.append(proc)
                except psutil.Error:
                    pass
            if not (threads or procs) or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        self.threads, self.processes = threads, procs

    def report(self, who: str = "your code") -> str:
        """For example "queue_map left running after it returned: 2 processes (...)"; "" if nothing."""
        parts = []
        if self.processes:
            count = len(self.processes)
            listed = ", ".join(_describe_process(p) for p in self.processes[:4])
            more = f" and {count - 4} more" if count > 4 else ""
            parts.append(f"{count} process{'es' if count != 1 else ''} ({listed}{more})")
        if self.threads:
            count = len(self.threads)
            listed = ", ".join(repr(t.name) for t in self.threads[:4])
            more = f" and {count - 4} more" if count > 4 else ""
            parts.append(f"{count} thread{'s' if count != 1 else ''} ({listed}{more})")
        return f"{who} left running after it returned: " + " and ".join(parts) if parts else ""
