"""Timing helpers: repeat a call, report the median and the spread.

All times are wall-clock seconds from :func:`time.perf_counter`. A single run
is noise; the course reports the median of several repeats after a warm-up.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Timing", "measure", "speedup", "summarize"]


@dataclass(frozen=True)
class Timing:
    """The summary of repeated runs, in seconds.

    Attributes:
        times: every measured run, in order.
        median: the median run.
        spread: max minus min, a simple, honest measure of the noise.
        best: the fastest run.
        worst: the slowest run.
    """

    times: tuple[float, ...]
    median: float
    spread: float
    best: float
    worst: float

    @property
    def repeats(self) -> int:
        """How many runs were measured."""
        return len(self.times)

    def __str__(self) -> str:
        return f"{self.median:.3f} s (median of {self.repeats}, spread {self.spread:.3f} s)"


def summarize(times: Sequence[float]) -> Timing:
    """Summarise measured run times (seconds) into a :class:`Timing`.

    Raises:
        ValueError: if ``times`` is empty or holds a negative time.
    """
    values = tuple(float(t) for t in times)
    if not values:
        raise ValueError("need at least one time to summarise")
    if min(values) < 0:
        raise ValueError(f"times must be >= 0 seconds, got {min(values)}")
    return Timing(
        times=values,
        median=statistics.median(values),
        spread=max(values) - min(values),
        best=min(values),
        worst=max(values),
    )


def measure(
    func: Callable[..., Any],
    *args: Any,
    repeats: int = 5,
    warmup: int = 1,
    **kwargs: Any,
) -> Timing:
    """Call ``func(*args, **kwargs)`` ``warmup`` times unmeasured, then ``repeats`` times.

    Returns:
        The :class:`Timing` of the measured calls.

    Raises:
        ValueError: if ``repeats`` < 1 or ``warmup`` < 0.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    for _ in range(warmup):
        func(*args, **kwargs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return summarize(times)


def speedup(baseline: float | Timing, candidate: float | Timing) -> float:
    """How many times faster ``candidate`` is than ``baseline`` (medians for :class:`Timing`).

    Raises:
        ValueError: if either time is not positive.
    """
    base = baseline.median if isinstance(baseline, Timing) else float(baseline)
    cand = candidate.median if isinstance(candidate, Timing) else float(candidate)
    if base <= 0 or cand <= 0:
        raise ValueError(f"times must be > 0 seconds, got {base} and {cand}")
    return base / cand
