"""Worker functions: primes, balanced ranges, timed spans, in real child processes."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest

from concurrency_lab.pageserver import PageServer
from concurrency_lab.workers import (
    TaskSpan,
    balanced_ranges,
    count_primes,
    is_prime,
    sleep_then,
    timed_count_primes,
    timed_fetch,
)

SMALL_PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]


def test_is_prime_matches_a_known_list():
    """is_prime is right for every n below 50, negatives and 0/1 included."""
    assert [n for n in range(-5, 50) if is_prime(n)] == SMALL_PRIMES
    assert is_prime(7919) and not is_prime(7917) and not is_prime(25)


def test_count_primes_known_values():
    """pi(10) = 4, pi(1000) = 168, pi(10**5) = 9592 (ranges are half-open)."""
    assert count_primes(0, 11) == 4
    assert count_primes(0, 1001) == 168
    assert count_primes(0, 100_001) == 9592
    assert count_primes(2, 3) == 1 and count_primes(10, 10) == 0


@pytest.mark.parametrize("limit,parts", [(0, 1), (10, 3), (100_000, 2), (50_000, 7)])
def test_balanced_ranges_cover_everything_once(limit, parts):
    """The ranges tile [0, limit] without gaps or overlaps."""
    ranges = balanced_ranges(limit, parts)
    assert len(ranges) == parts
    assert ranges[0][0] == 0 and ranges[-1][1] == limit + 1
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert sum(count_primes(a, b) for a, b in ranges) == count_primes(0, limit + 1)


def test_balanced_ranges_balance_cost_not_length():
    """Later ranges are shorter, because large n cost more to test."""
    (a0, a1), (b0, b1) = balanced_ranges(100_000, 2)
    assert a1 - a0 > b1 - b0
    cost = [sum(n**0.5 for n in range(a, b)) for a, b in balanced_ranges(100_000, 4)]
    assert max(cost) / min(cost) < 1.05


@pytest.mark.parametrize("kwargs", [{"limit": -1, "parts": 2}, {"limit": 10, "parts": 0}])
def test_balanced_ranges_rejects_bad_input(kwargs):
    """Negative limits and fewer than one part are errors."""
    with pytest.raises(ValueError):
        balanced_ranges(**kwargs)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_timed_count_primes_runs_in_child_processes(method):
    """Under every start method the worker imports, runs in a child and labels its PID."""
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        results = pool.map(timed_count_primes, balanced_ranges(20_000, 4))
    assert sum(count for count, _ in results) == count_primes(0, 20_001)
    pids = {span.pid for _, span in results}
    assert os.getpid() not in pids
    assert all(span.worker == f"pid {span.pid}" for _, span in results)
    assert all(span.end >= span.start for _, span in results)


def test_timed_fetch_labels_threads():
    """timed_fetch returns the byte count and a span named after the thread."""
    with PageServer(pages=1, page_size=1234, latency=0.05) as server:
        out: list[tuple[int, TaskSpan]] = []
        t = threading.Thread(target=lambda: out.append(timed_fetch(server.page_url(0))), name="fetcher-1")
        t.start()
        t.join(5)
    size, span = out[0]
    assert size == 1234
    assert span.worker == "fetcher-1" and span.task == "0"
    assert span.duration >= 0.05


def test_sleep_then_waits_then_returns_or_raises():
    """sleep_then returns a value and raises an exception, each after the wait."""
    start = time.perf_counter()
    assert sleep_then((0.05, 7)) == 7
    assert time.perf_counter() - start >= 0.05
    with pytest.raises(KeyError, match="late"):
        sleep_then((0, KeyError("late")))


def test_a_worker_process_imports_no_page_server():
    """Unpickling a worker imports the package, but not the page server (asyncio, http.server) it never uses."""
    import subprocess
    import sys

    code = (
        "import pickle, sys\n"
        "import concurrency_lab.workers as w\n"
        "pickle.loads(pickle.dumps(w.count_primes))\n"
        "print(sorted(m for m in ('concurrency_lab.pageserver', 'asyncio', 'http.server', 'urllib.request') "
        "if m in sys.modules))\n"
        "from concurrency_lab import PageServer, measure\n"
        "print(PageServer.__module__, measure.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "concurrency_lab.pageserver concurrency_lab.timing"], done.stdout
