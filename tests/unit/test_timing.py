"""Timing helpers on synthetic inputs: median, spread, speedup."""

from __future__ import annotations

import pytest

from concurrency_lab import timing
from concurrency_lab.timing import Timing, measure, speedup, summarize


def test_summarize_median_and_spread():
    """The median of odd and even counts, and max minus min as the spread."""
    t = summarize([3.0, 1.0, 2.0])
    assert (t.median, t.spread, t.best, t.worst, t.repeats) == (2.0, 2.0, 1.0, 3.0, 3)
    assert summarize([1.0, 2.0, 3.0, 10.0]).median == 2.5
    assert summarize([0.5]).spread == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, -0.1]])
def test_summarize_rejects_empty_and_negative(bad):
    """No times, or a negative time, is an error."""
    with pytest.raises(ValueError):
        summarize(bad)


def test_speedup_of_numbers_and_timings():
    """speedup is baseline / candidate, using medians for Timing objects."""
    assert speedup(8.0, 2.0) == 4.0
    assert speedup(summarize([4.0, 4.0, 100.0]), summarize([1.0, 2.0, 3.0])) == 2.0
    with pytest.raises(ValueError):
        speedup(1.0, 0.0)
    with pytest.raises(ValueError):
        speedup(-1.0, 1.0)


def test_measure_uses_perf_counter_with_warmup(monkeypatch):
    """measure runs warm-ups unmeasured, then times each repeat with perf_counter."""
    clock = iter([0.0, 1.0, 10.0, 13.0, 20.0, 22.0])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    calls = []
    result = measure(calls.append, "x", repeats=3, warmup=2)
    assert calls == ["x"] * 5
    assert isinstance(result, Timing)
    assert result.times == (1.0, 3.0, 2.0)
    assert result.median == 2.0 and result.spread == 2.0
    assert "median of 3" in str(result)


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"warmup": -1}])
def test_measure_rejects_bad_counts(kwargs):
    """Zero repeats or negative warm-ups are errors."""
    with pytest.raises(ValueError):
        measure(lambda: None, **kwargs)
