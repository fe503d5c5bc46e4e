"""Worker functions that other processes import.

A function defined in a notebook lives in ``__main__``, which ``spawn`` and
``forkserver`` workers cannot import ("Can't get attribute ... on <module
'__main__'>"). The demos and the speedup lab therefore take their workers
from this module. (Students write their own in notebook 04, with
``%%writefile``.)

Each ``timed_*`` worker returns its result together with a :class:`TaskSpan`:
which thread or process ran the task, and when it started and ended
(:func:`time.perf_counter`, which every process on a machine shares), so the
charts can draw a timeline.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

__all__ = [
    "TaskSpan",
    "balanced_ranges",
    "count_primes",
    "is_prime",
    "sleep_then",
    "timed_count_primes",
    "timed_fetch",
]


@dataclass(frozen=True)
class TaskSpan:
    """One task on a timeline.

    Attributes:
        worker: the thread name or ``pid <n>`` that ran it.
        task: a short label for the task.
        start: :func:`time.perf_counter` when it started, in seconds.
        end: :func:`time.perf_counter` when it ended, in seconds.
        pid: the process that ran it.
    """

    worker: str
    task: str
    start: float
    end: float
    pid: int

    @property
    def duration(self) -> float:
        """Seconds from start to end."""
        return self.end - self.start


def _span(kind: str, task: str, start: float) -> TaskSpan:
    pid = os.getpid()
    thread = threading.current_thread()
    if kind == "process":
        worker = f"pid {pid}"
    else:
        worker = thread.name
    return TaskSpan(worker, task, start, time.perf_counter(), pid)


def is_prime(n: int) -> bool:
    """True if ``n`` is prime, by trial division (deliberately CPU-bound)."""
    if n < 2:
        return False
    if n < 4:
        return True
    if n % 2 == 0 or n % 3 == 0:
        return False
    k = 5
    while k * k <= n:
        if n % k == 0 or n % (k + 2) == 0:
            return False
        k += 6
    return True


def count_primes(start: int, stop: int) -> int:
    """How many primes ``p`` satisfy ``start <= p < stop``."""
    return sum(1 for n in range(max(start, 0), stop) if is_prime(n))


def balanced_ranges(limit: int, parts: int) -> list[tuple[int, int]]:
    """Split ``[0, limit]`` into ``parts`` half-open ranges of about equal cost.

    Trial division of ``n`` costs about ``sqrt(n)``, so the work below ``x``
    grows like ``x ** 1.5`` and equal slices of ``range(limit + 1)`` are
    unequal work: the last slice is the most expensive. Cutting at
    ``limit * (k / parts) ** (2 / 3)`` gives every range the same share.

    Raises:
        ValueError: if ``limit`` < 0 or ``parts`` < 1.
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    stop = limit + 1
    cuts = [0] + [round(stop * (k / parts) ** (2 / 3)) for k in range(1, parts)] + [stop]
    return [(a, b) for a, b in zip(cuts, cuts[1:])]


def sleep_then(task: tuple[float, object]) -> object:
    """Wait, then return the outcome, or raise it if it is an exception.

    Args:
        task: ``(seconds, outcome)``. A test maps it over several tasks to make
            one result, or one exception, arrive later than the ones after it.
    """
    seconds, outcome = task
    time.sleep(seconds)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def timed_count_primes(bounds: tuple[int, int], kind: str = "process") -> tuple[int, TaskSpan]:
    """Count primes in ``[start, stop)`` and say who did it, and when.

    Args:
        bounds: ``(start, stop)``.
        kind: ``"process"`` labels the span with the PID, ``"thread"`` with
            the thread name.
    """
    start_t = time.perf_counter()
    start, stop = bounds
    result = count_primes(start, stop)
    return result, _span(kind, f"{start}-{stop}", start_t)


def timed_fetch(url: str, timeout: float = 10.0, kind: str = "thread") -> tuple[int, TaskSpan]:
    """Download ``url`` and return its size in bytes with the task's span.

    Raises:
        urllib.error.URLError: if the download fails.
    """
    import urllib.request  # here, not at the top: worker processes that never fetch skip it

    start_t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        size = len(response.read())
    return size, _span(kind, url.rsplit("/", 1)[-1], start_t)
