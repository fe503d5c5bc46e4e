"""Notebook 01 (concurrency basics): the hidden tests accept right answers and reject wrong ones.

Each case runs the source notebook once, as nbgrader's autograder would, with
the answer cells replaced by the variants below (one variant per part, since
the parts are independent).
"""

from __future__ import annotations

import pytest

from concurrency_lab.fixtures import NOT_JUDGED
from nbtools import SOURCE, Case, judge

NOTEBOOK = SOURCE / "01-concurrency-basics.ipynb"
CLASSIFY = "classify_workload_answer"
AMDAHL = "amdahl_speedup_answer"

CLASSIFY_TESTS = {
    "test_classify_returns_label",
    "test_classify_io_bound",
    "test_classify_cpu_bound",
    "test_classify_not_by_duration",
    "test_classify_counts_all_threads",
}
AMDAHL_TESTS = {"test_amdahl_returns_float", "test_amdahl_values", "test_amdahl_rejects_bad_input"}

# -- other correct answers ------------------------------------------------------------------

CLASSIFY_RUSAGE = """
import resource


def classify_workload(func, *args):
    def cpu_seconds():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    func(*args)
    cpu, wall = cpu_seconds() - cpu_before, time.monotonic() - wall_before
    if 2 * cpu >= wall:
        return "cpu-bound"
    return "io-bound"
"""

CLASSIFY_OS_TIMES = """
from contextlib import contextmanager


@contextmanager
def clocks(box):
    times_before, wall_before = os.times(), time.perf_counter()
    yield
    times_after = os.times()
    box["cpu"] = (times_after.user - times_before.user) + (times_after.system - times_before.system)
    box["wall"] = time.perf_counter() - wall_before


def classify_workload(func, *args):
    box = {}
    with clocks(box):
        func(*args)
    ratio = box["cpu"] / box["wall"] if box["wall"] > 0 else 0.0
    return "io-bound" if ratio < 0.5 else "cpu-bound"
"""

AMDAHL_INTEGRAL = """
import numbers


def amdahl_speedup(parallel_fraction, workers):
    p, n = parallel_fraction, workers
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"workers must be a whole number, got {n!r}")
    if n < 1 or p < 0 or p > 1:
        raise ValueError(f"out of range: parallel_fraction={p!r}, workers={n!r}")
    return n / (n * (1 - p) + p)
"""

AMDAHL_COLLECTED = """
def amdahl_speedup(parallel_fraction, workers):
    problems = []
    if not 0.0 <= float(parallel_fraction) <= 1.0:
        problems.append("parallel_fraction must be between 0 and 1")
    if int(workers) != workers or workers < 1:
        problems.append("workers must be a whole number >= 1")
    if problems:
        raise ValueError("; ".join(problems))
    serial = 1.0 - parallel_fraction
    return float(1.0 / (serial + parallel_fraction / int(workers)))
"""

# -- wrong answers --------------------------------------------------------------------------

CLASSIFY_BY_WALL_TIME = '''
def classify_workload(func, *args):
    """Long calls must be waiting for something (wrong: decides from wall time only)."""
    start = time.perf_counter()
    func(*args)
    return "io-bound" if time.perf_counter() - start > 0.1 else "cpu-bound"
'''

CLASSIFY_THREAD_TIME = '''
def classify_workload(func, *args):
    """Wrong: counts only the calling thread's CPU time."""
    wall, cpu = time.perf_counter(), time.thread_time()
    func(*args)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    return "cpu-bound" if cpu >= 0.5 * wall else "io-bound"
'''

AMDAHL_NO_VALIDATION = '''
def amdahl_speedup(parallel_fraction, workers):
    """Right formula, no checks."""
    return 1 / ((1 - parallel_fraction) + parallel_fraction / workers)
'''

AMDAHL_GUSTAFSON = '''
def amdahl_speedup(parallel_fraction, workers):
    """Wrong law: Gustafson's scaled speedup instead of Amdahl's."""
    if not 0 <= parallel_fraction <= 1 or not isinstance(workers, int) or workers < 1:
        raise ValueError("out of range")
    return float((1 - parallel_fraction) + parallel_fraction * workers)
'''

CASES = [
    Case("reference solution"),
    Case("rusage classifier, integral amdahl", {CLASSIFY: CLASSIFY_RUSAGE, AMDAHL: AMDAHL_INTEGRAL}),
    Case("os.times classifier, collected-checks amdahl", {CLASSIFY: CLASSIFY_OS_TIMES, AMDAHL: AMDAHL_COLLECTED}),
    Case(
        "wall-time classifier, amdahl without validation",
        {CLASSIFY: CLASSIFY_BY_WALL_TIME, AMDAHL: AMDAHL_NO_VALIDATION},
        must_fail=CLASSIFY_TESTS | {"test_amdahl_rejects_bad_input"},
    ),
    Case(
        "thread-time classifier, Gustafson instead of Amdahl",
        {CLASSIFY: CLASSIFY_THREAD_TIME, AMDAHL: AMDAHL_GUSTAFSON},
        must_fail={"test_classify_counts_all_threads", "test_amdahl_values"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hidden_tests_judge_answers(case, tmp_path):
    """Right answers pass every test cell; each wrong answer fails exactly the cells meant to catch it.

    On a machine too busy to give a computation 70 % of a core, a CPU-bound check cannot judge the
    label: it says so and passes, for a wrong answer too (a right one must never lose points to load).
    """
    judge(NOTEBOOK, case, tmp_path, CLASSIFY_TESTS | AMDAHL_TESTS, not_judged=NOT_JUDGED)
