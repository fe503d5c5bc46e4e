"""The fixtures that hidden tests share: each sets up or records what it promises."""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import pytest

from concurrency_lab import fixtures
from concurrency_lab.workers import count_primes


def test_spin_burns_the_cpu_time_asked_and_notes_the_ratio():
    """spin uses at least `seconds` of this process's CPU and records CPU/wall."""
    box = {}
    cpu = time.process_time()
    fixtures.spin(0.05, box)
    assert time.process_time() - cpu >= 0.05
    assert 0 < box["ratio"] <= 1.5


def test_cpu_label_tries_again_only_while_a_run_got_too_little_cpu():
    """A run that got < 70 % of a core is tried again; a cpu-bound label or a busy run decides."""
    calls = []

    def classify(run, box):
        calls.append(run)
        run(box)
        return "io-bound"

    def starved(box):
        box["ratio"] = 0.3

    def busy(box):
        box["ratio"] = 0.9

    assert fixtures.cpu_label(classify, starved, attempts=5) is fixtures.TOO_BUSY
    assert len(calls) == 5
    calls.clear()
    assert fixtures.cpu_label(classify, busy) == "io-bound"
    assert len(calls) == 1
    assert fixtures.cpu_label(lambda run, box: "cpu-bound", starved) == "cpu-bound"


def test_cpu_label_gives_up_after_its_time_budget():
    """On a machine too busy to decide, cpu_label stops after `budget` seconds and says TOO_BUSY."""

    def slow_starved(run, box):
        time.sleep(0.05)
        box["ratio"] = 0.2
        return "io-bound"

    start = time.monotonic()
    assert fixtures.cpu_label(slow_starved, None, attempts=100, budget=0.2) is fixtures.TOO_BUSY
    assert time.monotonic() - start < 1.0


def test_cpu_split_under_spawn_counts_children_and_restores_the_start_method():
    """Work done in spawn children counts as children's CPU time; the start method is put back."""
    before = multiprocessing.get_start_method()

    def in_children():
        with multiprocessing.Pool(2) as pool:
            return sum(pool.starmap(count_primes, [(0, 60_000), (60_000, 100_000)]))

    split = fixtures.cpu_split_under_spawn(in_children)
    assert split.value == 9_592
    assert split.children > 0.02 and split.children > split.here
    assert multiprocessing.get_start_method() == before

    here = fixtures.cpu_split_under_spawn(lambda: count_primes(0, 100_000))
    assert here.value == 9_592 and here.here > 0.02 and here.children < 0.01
    with pytest.raises(ZeroDivisionError):
        fixtures.cpu_split_under_spawn(lambda: 1 / 0)
    assert multiprocessing.get_start_method() == before


def test_prime_count_agrees_with_trial_division_and_known_counts():
    """The sieve counts the primes <= limit: the same as trial division, and the known large counts."""
    for limit in (-3, 0, 1, 2, 3, 4, 10, 97, 100, 7_919, 30_000):
        assert fixtures.prime_count(limit) == count_primes(0, limit + 1), limit
    assert fixtures.prime_count(1_000_000) == 78_498
    assert fixtures.prime_count(2_000_003) == 148_934


def test_random_texts_are_the_same_for_the_same_variant():
    """count texts of `words` words, 12 to a line; one variant always gives the same texts."""
    texts = fixtures.random_texts(3, 30, variant=1)
    assert len(texts) == 3 and texts == fixtures.random_texts(3, 30, variant=1)
    assert texts != fixtures.random_texts(3, 30, variant=2)
    for text in texts:
        lines = text.splitlines()
        assert len(text.split()) == 30 and [len(line.split()) for line in lines] == [12, 12, 6]


def test_open_spy_counts_opens_in_flight_and_their_threads(tmp_path):
    """Three files opened by a pool of 3 threads overlap 3 at once, none in the calling thread."""
    files = []
    for i in range(3):
        files.append(tmp_path / f"f{i}.txt")
        files[-1].write_text("x" * i)
    spy = fixtures.OpenSpy()

    def read(path):
        with spy.open(path, "rb", delay=0.1) as file:
            return file.read()

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(read, files)) == [b"", b"x", b"xx"]
    assert spy.peak == 3 and spy.now == 0
    assert sorted(spy.paths) == sorted(map(str, files))
    assert threading.get_ident() not in spy.threads
    read(files[0])
    assert spy.peak == 3 and spy.threads[-1] == threading.get_ident()
    spy.reset()
    assert (spy.now, spy.peak, spy.threads, spy.paths) == (0, 0, [], [])


def test_open_spy_tells_a_pool_from_the_calling_thread(tmp_path):
    """The opens of a pool's threads need no hint; the same opens from the calling thread get one."""
    path = tmp_path / "f.txt"
    path.write_text("x")
    spy = fixtures.OpenSpy()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda p: spy.open(p, delay=0).close(), [path, path]))
    assert spy.place("reading") == ""
    spy.reset()
    spy.calling(lambda: spy.open(path, delay=0).close())()
    assert (
        spy.place("reading", "read_files")
        == "reading ran in the main thread (the one that called read_files), not in a pool"
    )


def test_finish_after_forces_the_order_results_arrive_in(tmp_path):
    """With two workers, the item told to wait for the next one always finishes second."""
    items = [(0, str(tmp_path), (1,)), (1, str(tmp_path), ())]
    order = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(fixtures.finish_after, item) for item in items]
        for future in as_completed(futures):
            order.append(future.result())
    assert order == [1, 0]


def test_outcome_after_raises_in_the_forced_order(tmp_path):
    """The exception told to wait for the next item arrives second; a plain outcome is returned."""
    items = [(0, KeyError("first"), str(tmp_path), (1,)), (1, ValueError("second"), str(tmp_path), ())]
    order = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(fixtures.outcome_after, item) for item in items]
        for future in as_completed(futures):
            order.append(type(future.exception()).__name__)
    assert order == ["ValueError", "KeyError"]
    assert fixtures.outcome_after((2, 3, str(tmp_path), ())) == 3
