"""Fixtures that several hidden tests share, so that each lives in one place.

The test cells of the graded notebooks import these instead of defining the
same helper again in every cell. Each one only sets up a situation or
watches what a student's function does; the checks stay in the test cells.

- :func:`spin` and :func:`cpu_label` (01): busy the CPU, and classify a run
  that really got a core (or say, with :data:`TOO_BUSY`, that none did).
- :func:`cpu_split_under_spawn` (04, 06): the CPU time spent in this process
  and in its children while a call runs.
- :func:`prime_count` (04): the right count for any limit, without the student's code.
- :data:`DRAIN_BEFORE_JOIN` (05): the hint given when ``queue_map`` hangs.
- :func:`finish_after` and :func:`outcome_after` (05): worker functions whose results (or
  exceptions) arrive in a forced order.
- :func:`random_texts` and :class:`OpenSpy` (06): texts to analyse, and an
  ``opener`` that counts the opens in flight and the threads that made them.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Generic, NamedTuple, TypeVar

from .hints import CallSpy

__all__ = [
    "DRAIN_BEFORE_JOIN",
    "NOT_JUDGED",
    "TOO_BUSY",
    "CpuSplit",
    "OpenSpy",
    "cpu_label",
    "cpu_split_under_spawn",
    "finish_after",
    "outcome_after",
    "prime_count",
    "random_texts",
    "spin",
]

T = TypeVar("T")

#: The hint :func:`concurrency_lab.probes.call_within` adds when ``queue_map`` hangs (05).
DRAIN_BEFORE_JOIN = (
    "Its worker processes were killed. A worker cannot exit while results it put are still "
    "waiting to be read: read every result before you join the workers"
)


def spin(seconds: float, box: dict[str, float]) -> None:
    """Busy this thread until the process used ``seconds`` more CPU; note the CPU/wall ratio seen.

    Args:
        seconds: CPU seconds of this process (all its threads) to burn.
        box: receives ``box["ratio"]``, the process's CPU time over the wall time of the spin.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    end = cpu + seconds
    while time.process_time() < end:
        pass
    box["ratio"] = (time.process_time() - cpu) / (time.perf_counter() - wall)


class _TooBusy:
    def __repr__(self) -> str:
        return "TOO_BUSY (no run got 70 % of a core: the machine was too busy to tell)"


#: What :func:`cpu_label` returns when no run got enough of a core to decide anything.
TOO_BUSY: Any = _TooBusy()
#: What :func:`cpu_label` prints then (on stdout, which costs no points), so the feedback says so.
NOT_JUDGED = "(not judged: no run of the computation got 70 % of a core; the machine was too busy to tell)"


def cpu_label(
    classify: Callable[..., Any],
    run: Callable[[dict[str, float]], None],
    attempts: int = 8,
    budget: float = 15.0,
) -> Any:
    """``classify(run, box)`` until a run is labelled cpu-bound or clearly was (>= 70 % of a core).

    On a busy machine a computation may get less than half a core. By the rule
    the students implement (CPU time at least half the wall time) such a run is
    then *not* CPU-bound, so it decides nothing and is tried again, up to
    ``attempts`` runs or ``budget`` seconds. If no run decides, the machine was
    too busy to judge the label, and a test must not fail a right answer for
    that: it prints :data:`NOT_JUDGED` and returns :data:`TOO_BUSY`.

    Args:
        classify: the function under test, called as ``classify(run, box)``.
        run: a computation that stores its CPU/wall ratio in ``box["ratio"]`` (see :func:`spin`).

    Returns:
        The label of the run that decided, whatever its type, or :data:`TOO_BUSY`.
    """
    deadline = time.monotonic() + budget
    for _ in range(attempts):
        box: dict[str, float] = {}
        label = classify(run, box)
        if (type(label) is str and label == "cpu-bound") or box.get("ratio", 0.0) >= 0.7:
            return label
        if time.monotonic() > deadline:
            break
    print(NOT_JUDGED)
    return TOO_BUSY


class CpuSplit(NamedTuple, Generic[T]):
    """What :func:`cpu_split_under_spawn` saw: the call's value and where its CPU time went."""

    value: T
    #: CPU seconds (user + system) this process used during the call.
    here: float
    #: CPU seconds (user + system) of the children this process joined during the call.
    children: float


def cpu_split_under_spawn(call: Callable[[], T]) -> CpuSplit[T]:
    """Run ``call()`` with the start method ``spawn``; measure CPU time here and in children.

    Under spawn every worker is this process's own child, so ``os.times()``
    adds up its CPU time once it has been joined (forkserver workers are the
    fork server's children instead). The start method is put back afterwards,
    even if ``call`` raises.
    """
    old_method = multiprocessing.get_start_method()
    multiprocessing.set_start_method("spawn", force=True)
    try:
        before = os.times()
        value = call()
        after = os.times()
    finally:
        multiprocessing.set_start_method(old_method, force=True)
    here = (after.user + after.system) - (before.user + before.system)
    children = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    return CpuSplit(value, here, children)


def prime_count(limit: int) -> int:
    """How many primes are ``<= limit``: a sieve of Eratosthenes (about 0.2 s for 20 million)."""
    if limit < 2:
        return 0
    sieve = bytearray([1]) * (limit + 1)
    sieve[:2] = b"\x00\x00"
    for n in range(2, math.isqrt(limit) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, limit + 1, n)))
    return sieve.count(1)


def random_texts(count: int, words: int, variant: int) -> list[str]:
    """``count`` random texts of ``words`` words each, 12 words to a line.

    The words come from a made-up vocabulary of 400; the same ``variant`` gives
    the same texts in every process and on every machine.
    """
    rng = random.Random(variant)
    vocabulary = ["".join(rng.choices("etaoinshrdlu", k=rng.randint(2, 7))) for _ in range(400)]
    texts = []
    for _ in range(count):
        chosen = rng.choices(vocabulary, k=words)
        texts.append("\n".join(" ".join(chosen[i : i + 12]) for i in range(0, words, 12)) + "\n")
    return texts


class OpenSpy(CallSpy):
    """An ``opener`` that opens slowly and counts the opens in flight, and who made them.

    A :class:`~concurrency_lab.hints.CallSpy` of ``open``, so it can also say
    whether the opens ran in a pool's threads (:meth:`~concurrency_lab.hints.CallSpy.place`).

    Attributes:
        now: opens in flight now.
        peak: the most opens in flight at once.
        threads: the ``threading.get_ident()`` of the thread of each open, in order.
        paths: ``str(path)`` of each open, in order.
        caller: set by the test to the ident of the thread that called the function under test.
        gather: set by the test to hold each open until that many wait together (see
            :class:`~concurrency_lab.hints.CallSpy`); 0, the default, holds none.
    """

    def __init__(self) -> None:
        super().__init__(open)
        self.paths: list[str] = []

    def reset(self) -> None:
        """Forget every open so far."""
        super().reset()
        with self.lock:
            self.paths = []

    def open(self, path: str | Path, mode: str = "rb", delay: float = 0.2) -> IO[Any]:
        """``open(path, mode)`` after ``delay`` seconds, counting the opens in flight."""
        with self.lock:
            self.paths.append(str(path))
        return self.spied_call(delay, open, path, mode)


def _wait_for(folder: str, after: tuple[Any, ...]) -> None:
    """Wait (up to 20 s) for the files ``<name>.done`` of every name in ``after``, then 0.1 s more."""
    if after:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all((Path(folder) / f"{other}.done").exists() for other in after):
            time.sleep(0.005)
        time.sleep(0.1)


def finish_after(item: tuple[Any, str, tuple[Any, ...]]) -> Any:
    """Return ``value`` of ``item = (value, folder, after)``, but only after the items ``after``.

    A worker function (importable, for any start method) that forces the order in
    which results arrive: each call leaves a file named after its value in
    ``folder``; a call first waits (up to 20 s) for the files of the values in
    ``after``, then 0.1 s more, so that their results are on their way back
    before its own. With two workers, ``[(0, f, (1, 3)), (1, f, ()), (2, f, ()),
    (3, f, ())]`` always sends the result of item 1 back before that of item 0,
    whether the workers share one task queue or each has its own.
    """
    value, folder, after = item
    _wait_for(folder, after)
    (Path(folder) / f"{value}.done").touch()
    return value


def outcome_after(item: tuple[int, Any, str, tuple[int, ...]]) -> Any:
    """Return ``outcome`` of ``item = (index, outcome, folder, after)``, or raise it if it is an exception.

    :func:`finish_after` for exceptions: the call leaves ``<index>.done`` in
    ``folder`` once its wait is over, and waits (up to 20 s) for the files of
    the indexes in ``after``, then 0.1 s more. With two workers,
    ``[(0, KeyError("first"), f, (1,)), (1, ValueError("second"), f, ()), (2, 3, f, ())]``
    always sends the ``ValueError`` back before the ``KeyError``.
    """
    index, outcome, folder, after = item
    _wait_for(folder, after)
    (Path(folder) / f"{index}.done").touch()
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
