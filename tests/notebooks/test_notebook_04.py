"""Notebook 04 (processes, Task 2): the hidden tests accept right answers and reject wrong ones.

Each case runs the source notebook once, as nbgrader's autograder would, with the
answer cells replaced by the variants below. The other correct answers also run
under spawn (macOS, Windows) and fork, so they are judged under every start
method the course supports (the hidden tests themselves switch methods too).
"""

from __future__ import annotations

import pytest

from nbtools import SOURCE, Case, judge

NOTEBOOK = SOURCE / "04-processes.ipynb"
WORKER = "primes_worker_answer"
PARALLEL = "parallel_prime_counts_answer"

WORKER_TESTS = {"test_count_primes_known_ranges", "test_count_primes_edges"}
PARALLEL_TESTS = {
    "test_parallel_counts_known_values",
    "test_parallel_counts_rejects_bad_input",
    "test_parallel_counts_in_child_processes",
    "test_parallel_counts_every_start_method",
    "test_parallel_counts_processes",
}
ALL_TESTS = WORKER_TESTS | PARALLEL_TESTS
IN_CHILDREN = {"test_parallel_counts_in_child_processes"}
PROCESSES = {"test_parallel_counts_processes"}

# -- other correct answers ------------------------------------------------------------------

WORKER_SIEVE = r'''
%%writefile primes_worker.py
"""Part A with a segmented sieve of Eratosthenes."""
import math


def count_primes(start, stop):
    start = max(start, 2)
    if stop <= start:
        return 0
    root = math.isqrt(stop - 1)
    small = bytearray([1]) * (root + 1)
    small[:2] = b"\x00\x00"
    for n in range(2, math.isqrt(root) + 1):
        if small[n]:
            small[n * n :: n] = bytearray(len(range(n * n, root + 1, n)))
    segment = bytearray([1]) * (stop - start)
    for p in range(2, root + 1):
        if small[p]:
            first = max(p * p, (start + p - 1) // p * p)
            segment[first - start :: p] = bytearray(len(range(first, stop, p)))
    return segment.count(1)
'''

PARALLEL_EXECUTOR = r"""
from concurrent.futures import ProcessPoolExecutor

from concurrency_lab.workers import balanced_ranges


def parallel_prime_counts(limits, processes=2):
    limits = list(limits)
    if any(type(limit) is not int or limit < 0 for limit in limits):
        raise ValueError("limits must be non-negative ints")
    if type(processes) is not int or processes < 1:
        raise ValueError("processes must be a positive int")
    result = {}
    with ProcessPoolExecutor(max_workers=processes) as pool:
        for limit in dict.fromkeys(limits):
            starts, stops = zip(*balanced_ranges(limit, 2 * processes))
            result[limit] = sum(pool.map(primes_worker.count_primes, starts, stops))
    return result
"""

WORKER_WITH_QUEUE_HELPER = r'''
%%writefile primes_worker.py
"""Part A by plain trial division, plus a helper that reports counts through a queue."""


def _is_prime(n):
    if n < 2:
        return False
    divisor = 2
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 1
    return True


def count_primes(start, stop):
    return sum(_is_prime(n) for n in range(start, stop))


def count_many(queue, pieces):
    for start, stop in pieces:
        queue.put((start, count_primes(start, stop)))
'''

PARALLEL_PROCESS_QUEUE = r"""
import numbers


def parallel_prime_counts(limits, processes=2):
    limits = list(limits)
    for limit in limits:
        if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 0:
            raise ValueError(f"bad limit {limit!r}")
    if isinstance(processes, bool) or not isinstance(processes, numbers.Integral) or processes < 1:
        raise ValueError(f"bad number of processes {processes!r}")
    if not limits:
        return {}
    top = max(limits)
    step = max(1, (top + 1) // (4 * processes))
    edges = sorted({0, top + 1} | {limit + 1 for limit in limits} | set(range(0, top + 1, step)))
    pieces = list(zip(edges, edges[1:]))
    queue = mp.Queue()
    workers = [
        mp.Process(target=primes_worker.count_many, args=(queue, pieces[i::processes]))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    counts = dict(queue.get() for _ in pieces)
    for worker in workers:
        worker.join()
    return {limit: sum(c for start, c in counts.items() if start <= limit) for limit in limits}
"""

# -- wrong answers --------------------------------------------------------------------------

VALIDATION = """
    limits = list(limits)
    for limit in limits:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"bad limit {limit!r}")
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"bad number of processes {processes!r}")
"""

PARALLEL_THREADS = (
    '''
from concurrent.futures import ThreadPoolExecutor


def parallel_prime_counts(limits, processes=2):
    """Wrong: threads share one GIL, so this counts on one core, in this kernel."""'''
    + VALIDATION
    + """
    result = {}
    with ThreadPoolExecutor(max_workers=processes) as pool:
        for limit in limits:
            ranges = balanced_ranges(limit, 2 * processes)
            result[limit] = sum(pool.map(lambda r: primes_worker.count_primes(*r), ranges))
    return result
"""
)

PARALLEL_IN_PARENT = (
    '''
def parallel_prime_counts(limits, processes=2):
    """Wrong: counts right here, one limit after another."""'''
    + VALIDATION
    + """
    return {limit: primes_worker.count_primes(0, limit + 1) for limit in limits}
"""
)

# Part A as its statement says, and no more: trial division, trying divisors only up to the square root.
WORKER_SQRT = r'''
%%writefile primes_worker.py
"""Part A: trial division up to the square root."""
import math


def count_primes(start, stop):
    count = 0
    for n in range(max(start, 2), stop):
        if all(n % d for d in range(2, math.isqrt(n) + 1)):
            count += 1
    return count
'''

PARALLEL_CHECKS_LATE = '''
def parallel_prime_counts(limits, processes=2):
    """Wrong: starts its pool before it checks the limits."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"bad number of processes {processes!r}")
    limits = list(limits)
    with mp.Pool(processes) as pool:
        for limit in limits:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValueError(f"bad limit {limit!r}")
        return {
            limit: sum(pool.starmap(primes_worker.count_primes, balanced_ranges(limit, 2 * processes)))
            for limit in limits
        }
'''

PARALLEL_DEFAULT_POOL = (
    '''
def parallel_prime_counts(limits, processes=2):
    """Wrong: Pool() has one process per core, whatever `processes` says."""'''
    + VALIDATION
    + """
    with mp.Pool() as pool:
        return {
            limit: sum(pool.starmap(primes_worker.count_primes, balanced_ranges(limit, 2 * processes)))
            for limit in limits
        }
"""
)

PARALLEL_KEPT_POOL = (
    '''
POOLS = {}


def parallel_prime_counts(limits, processes=2):
    """Wrong: keeps a pool per process count for the next call, so its workers keep running."""'''
    + VALIDATION
    + """
    if processes not in POOLS:
        POOLS[processes] = mp.Pool(processes)
    return {
        limit: sum(POOLS[processes].starmap(primes_worker.count_primes, balanced_ranges(limit, 2 * processes)))
        for limit in limits
    }
"""
)

PARALLEL_ONE_TASK_PER_LIMIT = (
    '''
def parallel_prime_counts(limits, processes=2):
    """Wrong: each limit is one task, so a single limit keeps one process busy and the others idle."""'''
    + VALIDATION
    + """
    with mp.Pool(processes) as pool:
        counts = pool.starmap(primes_worker.count_primes, [(0, limit + 1) for limit in limits])
    return dict(zip(limits, counts))
"""
)

PARALLEL_FORK_NOTEBOOK_WORKER = (
    '''
def count_piece(piece):
    return primes_worker.count_primes(*piece)


def parallel_prime_counts(limits, processes=2):
    """Wrong: picks fork, so a worker defined in this notebook reaches the processes; spawn cannot import it."""'''
    + VALIDATION
    + """
    if not limits:
        return {}
    top = max(limits)
    edges = {0, top + 1} | {limit + 1 for limit in limits}
    edges = sorted(edges | {stop for _, stop in balanced_ranges(top, 4 * processes)})
    pieces = list(zip(edges, edges[1:]))
    with mp.get_context("fork").Pool(processes) as pool:
        counts = pool.map(count_piece, pieces)
    return {limit: sum(c for (_, stop), c in zip(pieces, counts) if stop <= limit + 1) for limit in limits}
"""
)

CASES = [
    Case("reference solution"),
    Case(
        "sieve worker, ProcessPoolExecutor, under spawn",
        {WORKER: WORKER_SIEVE, PARALLEL: PARALLEL_EXECUTOR},
        start_method="spawn",
    ),
    Case(
        "trial-division worker, Process and Queue, under fork",
        {WORKER: WORKER_WITH_QUEUE_HELPER, PARALLEL: PARALLEL_PROCESS_QUEUE},
        start_method="fork",
    ),
    Case("primes counted in threads", {PARALLEL: PARALLEL_THREADS}, must_fail=IN_CHILDREN),
    Case("primes counted in the parent", {PARALLEL: PARALLEL_IN_PARENT}, must_fail=IN_CHILDREN),
    Case(
        "square-root trial division, a pool started before the check",
        {WORKER: WORKER_SQRT, PARALLEL: PARALLEL_CHECKS_LATE},
        must_fail=PROCESSES,
    ),
    Case("Pool() whatever processes says", {PARALLEL: PARALLEL_DEFAULT_POOL}, must_fail=PROCESSES),
    # Its workers are never joined, so their CPU time never reaches os.times(): in_child fails too.
    Case("a pool kept for the next call", {PARALLEL: PARALLEL_KEPT_POOL}, must_fail=PROCESSES | IN_CHILDREN),
    Case(
        "a single limit sent to one process as one task",
        {PARALLEL: PARALLEL_ONE_TASK_PER_LIMIT},
        must_fail=IN_CHILDREN,
    ),
    Case(
        "fork picked, with a worker defined in the notebook",
        {PARALLEL: PARALLEL_FORK_NOTEBOOK_WORKER},
        must_fail={"test_parallel_counts_every_start_method"},
    ),
]

# What each of those must fail for: the rule it breaks.
MESSAGES = {
    "square-root trial division, a pool started before the check": "processes before it raised ValueError",
    "Pool() whatever processes says": "Hint: with processes=1,",
    "a pool kept for the next call": "were still running after parallel_prime_counts returned",
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hidden_tests_judge_answers(case, tmp_path):
    """Right answers pass every test cell; each wrong answer fails exactly the cells meant to catch it."""
    nb, results = judge(NOTEBOOK, case, tmp_path, ALL_TESTS)
    if case.name in MESSAGES:
        output = results["test_parallel_counts_processes"].output
        assert MESSAGES[case.name] in output, f"{case.name} failed for another reason:\n{output[-1500:]}"
    if not case.answers:
        printed = "".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []))
        assert "Can't get attribute 'square' on <module '__main__'" in printed
        assert "exit code 1" in printed and "exit code -15" in printed
