"""Notebook 05 (queues): the hidden tests accept right answers and reject wrong ones.

Each case runs the source notebook once, as nbgrader's autograder would, with the
two answer cells (the worker module and queue_map) replaced by the variants below.
A deadlocking answer must fail within the tests' time limit, never hang.
"""

from __future__ import annotations

import time

import pytest

from nbtools import SOURCE, Case, judge

NOTEBOOK = SOURCE / "05-queues.ipynb"
WORKER = "queue_worker_answer"
QUEUE_MAP = "queue_map_answer"

ALL_TESTS = {
    "test_queue_map_input_order",
    "test_queue_map_worker_processes",
    "test_queue_map_large_results",
    "test_queue_map_sentinel_shutdown",
    "test_queue_map_reraises_errors",
    "test_queue_map_validates_input",
}

# -- another correct answer: one task queue per worker, dealt round robin ---------------------

WORKER_PER_QUEUE = r"""
%%writefile queue_worker.py
def serve(func, inbox, outbox):
    while True:
        task = inbox.get()
        if task is None:
            break
        index, item = task
        try:
            outbox.put((index, None, func(item)))
        except Exception as error:
            outbox.put((index, error, None))
"""

QUEUE_MAP_PER_QUEUE = r"""
import queue_worker

importlib.reload(queue_worker)


def queue_map(func, items, processes=2):
    if type(processes) is not int or processes < 1:
        raise ValueError("processes must be a positive int")
    items = list(items)
    count = min(processes, len(items))
    inboxes = [mp.Queue() for _ in range(count)]
    outbox = mp.Queue()
    workers = [mp.Process(target=queue_worker.serve, args=(func, inbox, outbox)) for inbox in inboxes]
    for worker in workers:
        worker.start()
    for index, item in enumerate(items):
        inboxes[index % count].put((index, item))
    for inbox in inboxes:
        inbox.put(None)
    done = {}
    while len(done) < len(items):
        index, error, value = outbox.get()
        done[index] = (error, value)
    for worker in workers:
        worker.join()
    errors = [done[i][0] for i in range(len(items)) if done[i][0] is not None]
    if errors:
        raise errors[0]
    return [done[i][1] for i in range(len(items))]
"""

# -- wrong answers (they use the reference worker module) -------------------------------------

START = r"""
import queue_worker

importlib.reload(queue_worker)


def queue_map(func, items, processes=2):
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError("processes must be an int >= 1")
    items = list(items)
    tasks, results = mp.Queue(), mp.Queue()
    workers = [
        mp.Process(target=queue_worker.work, args=(func, tasks, results))
        for _ in range(min(processes, len(items)))
    ]
    for worker in workers:
        worker.start()
    for task in enumerate(items):
        tasks.put(task)
    for _ in workers:
        tasks.put(None)
"""

COLLECT = r"""
    answers = {}
    for _ in items:
        index, ok, value = results.get()
        answers[index] = (ok, value)
"""

FINISH = r"""
    for index in range(len(items)):
        if not answers[index][0]:
            raise answers[index][1]
    return [answers[index][1] for index in range(len(items))]
"""

JOIN = r"""
    for worker in workers:
        worker.join()
"""

TERMINATE = r"""
    for worker in workers:
        worker.terminate()
        worker.join()
"""

# Wrong: joins the workers before draining their results.
QUEUE_MAP_JOINS_FIRST = START + JOIN + COLLECT + FINISH
# Wrong: kills the workers instead of letting them read their sentinels.
QUEUE_MAP_TERMINATES = START + COLLECT + TERMINATE + FINISH
# Wrong: returns the results in the order the workers finished them (errors are handled right).
ARRIVAL = r"""
    arrived = [results.get() for _ in items]
"""
RAISE_FIRST_IN_INPUT_ORDER = r"""
    failed = [(index, value) for index, ok, value in arrived if not ok]
    if failed:
        raise min(failed, key=lambda pair: pair[0])[1]
    return [value for _index, ok, value in arrived]
"""
QUEUE_MAP_ARRIVAL_ORDER = START + ARRIVAL + JOIN + RAISE_FIRST_IN_INPUT_ORDER

# Wrong: raises the first exception to arrive, not the first in input order.
COLLECT_FIRST_ARRIVED = r"""
    answers = {}
    failure = None
    for _ in items:
        index, ok, value = results.get()
        if not ok and failure is None:
            failure = value
        answers[index] = (ok, value)
"""
RAISE_FIRST_ARRIVED = r"""
    if failure is not None:
        raise failure
    return [answers[index][1] for index in range(len(items))]
"""
QUEUE_MAP_FIRST_ARRIVED = START + COLLECT_FIRST_ARRIVED + JOIN + RAISE_FIRST_ARRIVED

# Wrong: the try wraps the whole loop, so a worker stops at the first exception.
WORKER_STOPS = r"""
%%writefile queue_worker.py
def work(func, tasks, results):
    try:
        for index, item in iter(tasks.get, None):
            results.put((index, True, func(item)))
    except Exception as error:
        results.put((index, False, error))
"""

CASES = [
    Case("reference solution"),
    Case(
        "one queue per worker, under spawn",
        {WORKER: WORKER_PER_QUEUE, QUEUE_MAP: QUEUE_MAP_PER_QUEUE},
        start_method="spawn",
    ),
    Case(
        "consumer joins before draining",
        {QUEUE_MAP: QUEUE_MAP_JOINS_FIRST},
        must_fail={"test_queue_map_large_results"},
    ),
    Case(
        "the first exception to arrive is raised",
        {QUEUE_MAP: QUEUE_MAP_FIRST_ARRIVED},
        must_fail={"test_queue_map_reraises_errors"},
    ),
    Case(
        "a worker that stops at the first exception",
        {WORKER: WORKER_STOPS},
        must_fail={"test_queue_map_reraises_errors"},
    ),
    Case(
        "workers terminated instead of sentinels",
        {QUEUE_MAP: QUEUE_MAP_TERMINATES},
        must_fail={"test_queue_map_sentinel_shutdown"},
    ),
    Case(
        "results in the order they arrived",
        {QUEUE_MAP: QUEUE_MAP_ARRIVAL_ORDER},
        must_fail={"test_queue_map_input_order"},
    ),
]

# What those two must fail for: the rule each breaks.
MESSAGES = {
    "the first exception to arrive is raised": "Hint: two items failed, and queue_map raised ValueError",
    "a worker that stops at the first exception": "carries on with the next task",
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hidden_tests_judge_answers(case, tmp_path):
    """Right answers pass every test cell; each wrong answer fails exactly the cells meant to catch it."""
    started = time.monotonic()
    _, results = judge(NOTEBOOK, case, tmp_path, ALL_TESTS)
    assert time.monotonic() - started < 60, "a deadlocked answer must fail within the tests' time limit"
    if "joins before draining" in case.name:
        assert "did not return within 15 s" in results["test_queue_map_large_results"].output
    if case.name in MESSAGES:
        output = results["test_queue_map_reraises_errors"].output
        assert MESSAGES[case.name] in output, f"{case.name} failed for another reason:\n{output[-1500:]}"
    if "arrived" in case.name:
        assert "in the order the workers finished them" in results["test_queue_map_input_order"].output
