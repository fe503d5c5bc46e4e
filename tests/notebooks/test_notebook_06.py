"""Notebook 06 (pools, Tasks 3 and 4): the hidden tests accept right answers and reject wrong ones.

Each case runs the source notebook once, as nbgrader's autograder would, with the
answer cells replaced by the variants below: one variant for Task 3 (read_files)
and one for Task 4 (analyze_corpus) per run, since the two parts are independent.
"""

from __future__ import annotations

import nbformat
import pytest

from nbtools import SOURCE, Case, grade_cells, judge

NOTEBOOK = SOURCE / "06-pools.ipynb"
READ = "read_files_answer"
ANALYZE = "analyze_corpus_answer"

READ_TESTS = {"test_read_files_counts", "test_read_files_errors_are_results", "test_read_files_uses_threads"}
ANALYZE_TESTS = {
    "test_analyze_corpus_matches_sequential",
    "test_analyze_corpus_reads_with_threads",
    "test_analyze_corpus_analyzes_in_processes",
}
ALL_TESTS = READ_TESTS | ANALYZE_TESTS

# -- other correct answers ------------------------------------------------------------------

READ_AS_COMPLETED = r"""
def read_files(paths, max_workers=8, opener=open):
    def stats(path):
        try:
            with opener(path, "rb") as handle:
                raw = handle.read()
            text = raw.decode("utf-8")
        except Exception as problem:
            return dict(lines=None, words=None, bytes=None, error=f"{problem.__class__.__name__}: {problem}")
        return dict(lines=len(text.splitlines()), words=len(text.split()), bytes=len(raw), error=None)

    results = {}
    with ThreadPoolExecutor(max_workers) as pool:
        futures = {pool.submit(stats, path): path for path in paths}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
    return results
"""

ANALYZE_THREADS_THEN_POOL = r"""
import multiprocessing


def analyze_corpus(paths, io_workers=8, cpu_workers=2, opener=open):
    paths = list(dict.fromkeys(paths))

    def read(path):
        with opener(path, "rb") as file:
            return file.read().decode("utf-8")

    with ThreadPoolExecutor(max_workers=io_workers) as readers:
        texts = list(readers.map(read, paths))
    with multiprocessing.Pool(cpu_workers) as pool:
        analyses = pool.map(corpus_analysis.analyze_text, texts)
    return dict(zip(paths, analyses))
"""

# -- wrong answers --------------------------------------------------------------------------

READ_SEQUENTIAL = r'''
def read_files(paths, max_workers=8, opener=open):
    """Wrong: one file after another, no thread pool."""
    result = {}
    for path in paths:
        try:
            with opener(path, "rb") as file:
                data = file.read()
            text = data.decode("utf-8")
            counts = {"lines": len(text.splitlines()), "words": len(text.split()), "bytes": len(data)}
            result[path] = {**counts, "error": None}
        except Exception as exc:
            result[path] = {"lines": None, "words": None, "bytes": None, "error": f"{type(exc).__name__}: {exc}"}
    return result
'''

READ_OWN_THREADS = r'''
import threading


def read_files(paths, max_workers=8, opener=open):
    """Wrong: threads it starts itself, at most max_workers at a time, instead of a ThreadPoolExecutor."""
    results = {}
    gate = threading.Semaphore(max_workers)

    def stats(path):
        with gate:
            try:
                with opener(path, "rb") as file:
                    data = file.read()
                text = data.decode("utf-8")
                counts = {"lines": len(text.splitlines()), "words": len(text.split()), "bytes": len(data)}
                results[path] = {**counts, "error": None}
            except Exception as exc:
                results[path] = {"lines": None, "words": None, "bytes": None, "error": f"{type(exc).__name__}: {exc}"}

    threads = [threading.Thread(target=stats, args=(path,)) for path in dict.fromkeys(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {path: results[path] for path in paths}
'''

READ_RAISES = r'''
def read_files(paths, max_workers=8, opener=open):
    """Wrong: a bad file raises instead of becoming an error in the result."""
    paths = list(paths)

    def stats(path):
        with opener(path, "rb") as file:
            data = file.read()
        text = data.decode("utf-8")
        return {"lines": len(text.splitlines()), "words": len(text.split()), "bytes": len(data), "error": None}

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return dict(zip(paths, pool.map(stats, paths)))
'''

READ_IGNORES_MAX_WORKERS = r'''
def read_files(paths, max_workers=8, opener=open):
    """Wrong: a thread for every file, whatever max_workers says."""
    paths = list(paths)

    def stats(path):
        try:
            with opener(path, "rb") as file:
                data = file.read()
            text = data.decode("utf-8")
            return {"lines": len(text.splitlines()), "words": len(text.split()), "bytes": len(data), "error": None}
        except Exception as exc:
            return {"lines": None, "words": None, "bytes": None, "error": f"{type(exc).__name__}: {exc}"}

    with ThreadPoolExecutor(max_workers=max(1, len(paths))) as pool:
        return dict(zip(paths, pool.map(stats, paths)))
'''

ANALYZE_ALL_THREADS = r'''
def analyze_corpus(paths, io_workers=8, cpu_workers=2, opener=open):
    """Wrong: reads and analyses in one thread pool, so the analysis runs under one GIL."""
    if io_workers < 1 or cpu_workers < 1:
        raise ValueError("need at least one worker of each kind")
    paths = list(dict.fromkeys(paths))

    def read_and_analyze(path):
        with opener(path, "rb") as file:
            return corpus_analysis.analyze_text(file.read().decode("utf-8"))

    with ThreadPoolExecutor(max_workers=io_workers) as pool:
        return dict(zip(paths, pool.map(read_and_analyze, paths)))
'''

ANALYZE_ALL_PROCESSES = r'''
def analyze_corpus(paths, io_workers=8, cpu_workers=2, opener=open):
    """Wrong: reads and analyses in one process pool (and cannot send it the opener)."""
    if io_workers < 1 or cpu_workers < 1:
        raise ValueError("need at least one worker of each kind")
    paths = list(dict.fromkeys(paths))
    with ProcessPoolExecutor(max_workers=cpu_workers) as pool:
        texts = list(pool.map(corpus_analysis.slow_read, paths, [0] * len(paths)))
        return dict(zip(paths, pool.map(corpus_analysis.analyze_text, texts)))
'''

# Wrong: picks the forkserver start method for its process pool.
ANALYZE_PICKS_FORKSERVER = r"""
import multiprocessing


def analyze_corpus(paths, io_workers=8, cpu_workers=2, opener=open):
    paths = list(dict.fromkeys(paths))

    def read(path):
        with opener(path, "rb") as file:
            return file.read().decode("utf-8")

    context = multiprocessing.get_context("forkserver")
    with ThreadPoolExecutor(io_workers) as readers, ProcessPoolExecutor(cpu_workers, mp_context=context) as analysts:
        return dict(zip(paths, analysts.map(corpus_analysis.analyze_text, readers.map(read, paths))))
"""

# Wrong: ProcessPoolExecutor() has one process per core, whatever cpu_workers says.
ANALYZE_IGNORES_CPU_WORKERS = r"""
def analyze_corpus(paths, io_workers=8, cpu_workers=2, opener=open):
    if io_workers < 1 or cpu_workers < 1:
        raise ValueError("need at least one worker of each kind")
    paths = list(dict.fromkeys(paths))

    def read(path):
        with opener(path, "rb") as file:
            return file.read().decode("utf-8")

    with ThreadPoolExecutor(io_workers) as readers, ProcessPoolExecutor() as analysts:
        return dict(zip(paths, analysts.map(corpus_analysis.analyze_text, readers.map(read, paths))))
"""

CASES = [
    Case("reference solution"),
    Case(
        "as_completed reader, threads then multiprocessing.Pool, under spawn",
        {READ: READ_AS_COMPLETED, ANALYZE: ANALYZE_THREADS_THEN_POOL},
        start_method="spawn",
    ),
    Case(
        "sequential reader, Task 4 all in threads",
        {READ: READ_SEQUENTIAL, ANALYZE: ANALYZE_ALL_THREADS},
        must_fail={"test_read_files_uses_threads", "test_analyze_corpus_analyzes_in_processes"},
    ),
    Case("hand-made reader threads, not a pool", {READ: READ_OWN_THREADS}, must_fail={"test_read_files_uses_threads"}),
    Case("reader ignores max_workers", {READ: READ_IGNORES_MAX_WORKERS}, must_fail={"test_read_files_uses_threads"}),
    Case(
        "reader that raises, Task 4 all in processes",
        {READ: READ_RAISES, ANALYZE: ANALYZE_ALL_PROCESSES},
        must_fail={"test_read_files_errors_are_results", "test_analyze_corpus_reads_with_threads"},
        breaks_check_it=True,  # its Check it cell reads a missing file
    ),
    Case(
        "Task 4 picks the forkserver start method",
        {ANALYZE: ANALYZE_PICKS_FORKSERVER},
        must_fail={"test_analyze_corpus_analyzes_in_processes"},
    ),
    Case(
        "Task 4 ignores cpu_workers",
        {ANALYZE: ANALYZE_IGNORES_CPU_WORKERS},
        must_fail={"test_analyze_corpus_analyzes_in_processes"},
    ),
]

# What these must fail for: the test cell, and the rule each breaks in its words.
MESSAGES = {
    "reader ignores max_workers": (
        "test_read_files_uses_threads",
        "with max_workers=3, at most 6 slow opens were in flight at once (expected 3)",
    ),
    "Task 4 picks the forkserver start method": (
        "test_analyze_corpus_analyzes_in_processes",
        "with the 'forkserver' start method while the default was 'spawn'",
    ),
    "Task 4 ignores cpu_workers": ("test_analyze_corpus_analyzes_in_processes", "with cpu_workers=1,"),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hidden_tests_judge_answers(case, tmp_path):
    """Right answers pass every test cell; each wrong answer fails exactly the cells meant to catch it."""
    _, results = judge(NOTEBOOK, case, tmp_path, ALL_TESTS)
    if case.name in MESSAGES:
        test, message = MESSAGES[case.name]
        output = results[test].output
        assert message in output, f"{case.name} failed for another reason:\n{output[-1500:]}"
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir())[:2] == ["doc_00.txt", "doc_01.txt"]


def test_the_analysis_module_is_locked():
    """Students call the corpus analysis; they cannot edit it."""
    cells = grade_cells(nbformat.read(NOTEBOOK, as_version=4))
    module = cells["corpus_analysis_module"]
    assert module.metadata["nbgrader"]["locked"] and module.source.startswith("%%writefile corpus_analysis.py")
