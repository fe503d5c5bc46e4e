"""Notebook 02 (threads, Task 1): the hidden tests accept right downloaders and reject wrong ones.

Each case runs the source notebook once, as nbgrader's autograder would, with
the answer cell replaced by one of the variants below. The concurrency checks
read the page server's peak_in_flight counter, so they do not depend on timing.
Each wrong answer's message is checked too, so that it failed for the rule it breaks.
"""

from __future__ import annotations

import nbformat
import pytest

from nbtools import SOURCE, Case, grade_cells, judge

NOTEBOOK = SOURCE / "02-threads.ipynb"
ANSWER = "download_pages_answer"
TESTS = {
    "test_download_result_type",
    "test_download_bodies",
    "test_download_bounded_threads",
    "test_download_errors_classified",
    "test_download_edge_cases",
}

# -- other correct answers ------------------------------------------------------------------

# Fixed shares (thread k takes every k-th distinct URL), one dict per thread merged at the end,
# errors classified through an ordered table.
SLICES = """
ERROR_KINDS = [
    (requests.exceptions.Timeout, "timeout"),
    (requests.exceptions.MissingSchema, "invalid url"),
    (requests.exceptions.InvalidSchema, "invalid url"),
    (requests.exceptions.InvalidURL, "invalid url"),
    (requests.exceptions.ConnectionError, "connection"),
    (Exception, "other"),
]


def get_one(url, timeout):
    started = time.perf_counter()
    try:
        response = requests.get(url, timeout=timeout)
        size = len(response.content)
    except Exception as error:
        kind = next(name for cls, name in ERROR_KINDS if isinstance(error, cls))
        return PageResult(url, None, 0, time.perf_counter() - started, f"{kind} ({error})")
    return PageResult(url, response.status_code, size, time.perf_counter() - started)


def download_pages(urls, max_threads=8, timeout=5.0):
    if max_threads < 1:
        raise ValueError("max_threads must be at least 1")
    unique = list(dict.fromkeys(urls))
    n = min(max_threads, len(unique))
    partial = [{} for _ in range(n)]

    def run(k):
        for url in unique[k::n]:
            partial[k][url] = get_one(url, timeout)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merged = {}
    for part in partial:
        merged.update(part)
    return merged
"""

# One thread per URL, but a semaphore lets only max_threads of them talk to the network at once;
# results go into a dict under a lock; elapsed from time.monotonic.
SEMAPHORE = """
def download_pages(urls, max_threads=8, timeout=5.0):
    if not max_threads >= 1:
        raise ValueError(f"max_threads={max_threads}")
    gate = threading.BoundedSemaphore(max_threads)
    lock = threading.Lock()
    results = {}

    def fetch(url):
        with gate:
            t0 = time.monotonic()
            try:
                r = requests.get(url, timeout=timeout)
                result = PageResult(url, r.status_code, len(r.content), time.monotonic() - t0)
            except requests.exceptions.Timeout as e:
                result = PageResult(url, None, 0, time.monotonic() - t0, "timeout: " + str(e))
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema) as e:
                result = PageResult(url, None, 0, time.monotonic() - t0, "invalid url: " + str(e))
            except requests.exceptions.ConnectionError as e:
                result = PageResult(url, None, 0, time.monotonic() - t0, "connection: " + str(e))
            except Exception as e:
                result = PageResult(url, None, 0, time.monotonic() - t0, "other: " + repr(e))
        with lock:
            results[url] = result

    workers = [threading.Thread(target=fetch, args=(u,)) for u in set(urls)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results
"""

# The statement read literally, and no more: the four kinds in its order (Timeout first, as it says
# ConnectTimeout is a timeout), any other RequestException is "other"; a queue.Queue to-do list.
LITERAL = """
import queue


def kind_of(error):
    if isinstance(error, requests.exceptions.Timeout):
        return "timeout"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection"
    if isinstance(error, (requests.exceptions.MissingSchema, requests.exceptions.InvalidURL,
                          requests.exceptions.InvalidSchema)):
        return "invalid url"
    return "other"


def download_pages(urls, max_threads=8, timeout=5.0):
    if max_threads < 1:
        raise ValueError("max_threads must be at least 1")
    todo = queue.Queue()
    for url in dict.fromkeys(urls):
        todo.put(url)
    results = {}

    def worker():
        while True:
            try:
                url = todo.get_nowait()
            except queue.Empty:
                return
            start = time.perf_counter()
            try:
                response = requests.get(url, timeout=timeout)
                results[url] = PageResult(url, response.status_code, len(response.content),
                                          time.perf_counter() - start)
            except requests.exceptions.RequestException as error:
                results[url] = PageResult(url, None, 0, time.perf_counter() - start,
                                          f"{kind_of(error)}: {error}")

    threads = [threading.Thread(target=worker) for _ in range(min(max_threads, todo.qsize()))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
"""


# -- wrong answers --------------------------------------------------------------------------

# The same careful fetch and error handling, shared by the wrong downloaders below, so that
# each of them is wrong in exactly one way.
FETCH = """
def error_kind(error):
    if isinstance(error, requests.exceptions.Timeout):
        return "timeout"
    if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                          requests.exceptions.InvalidSchema)):
        return "invalid url"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection"
    return "other"


def fetch_one(url, timeout):
    start = time.perf_counter()
    try:
        response = requests.get(url, timeout=timeout)
        size = len(response.content)
    except Exception as error:
        return PageResult(url, None, 0, time.perf_counter() - start, f"{error_kind(error)}: {error}")
    return PageResult(url, response.status_code, size, time.perf_counter() - start)
"""

SEQUENTIAL = (
    FETCH
    + '''

def download_pages(urls, max_threads=8, timeout=5.0):
    """Wrong: no threads at all, one request after another."""
    if max_threads < 1:
        raise ValueError("max_threads must be >= 1")
    return {url: fetch_one(url, timeout) for url in dict.fromkeys(urls)}
'''
)

UNBOUNDED = (
    FETCH
    + '''

def download_pages(urls, max_threads=8, timeout=5.0):
    """Wrong: one thread per URL, all requests in flight at once (max_threads ignored)."""
    if max_threads < 1:
        raise ValueError("max_threads must be >= 1")
    results = {}

    def fetch(url):
        results[url] = fetch_one(url, timeout)

    threads = [threading.Thread(target=fetch, args=(url,)) for url in dict.fromkeys(urls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
'''
)

NO_ERROR_HANDLING = '''
def download_pages(urls, max_threads=8, timeout=5.0):
    """Wrong: bounded and concurrent, but a bad URL kills its thread; duplicates fetched twice."""
    results = {}
    todo = list(urls)
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not todo:
                    return
                url = todo.pop(0)
            start = time.perf_counter()
            response = requests.get(url, timeout=timeout)
            results[url] = PageResult(url, response.status_code, len(response.content),
                                      time.perf_counter() - start)

    threads = [threading.Thread(target=work) for _ in range(min(max_threads, len(urls)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
'''

POOL = (
    FETCH
    + '''

def download_pages(urls, max_threads=8, timeout=5.0):
    """Wrong here: right results and bounds, but a ThreadPoolExecutor does the threading."""
    from concurrent.futures import ThreadPoolExecutor

    if max_threads < 1:
        raise ValueError("max_threads must be >= 1")
    unique = list(dict.fromkeys(urls))
    with ThreadPoolExecutor(max_workers=max_threads) as pool:
        return dict(zip(unique, pool.map(lambda url: fetch_one(url, timeout), unique)))
'''
)

# Wrong twice: ConnectionError tested before Timeout (so a ConnectTimeout is "connection"), and
# elapsed counted from the start of the call instead of from each request.
CONNECTION_FIRST = (
    LITERAL.replace(
        '''    if isinstance(error, requests.exceptions.Timeout):
        return "timeout"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection"''',
        '''    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection"
    if isinstance(error, requests.exceptions.Timeout):
        return "timeout"''',
    )
    .replace("    results = {}\n", "    results = {}\n    start = time.perf_counter()\n")
    .replace("            start = time.perf_counter()\n", "")
)

# Wrong: catches only the kinds it names, so a redirect loop escapes and ends its thread.
NO_OTHER = LITERAL.replace(
    "except requests.exceptions.RequestException as error:",
    "except (requests.exceptions.Timeout, requests.exceptions.ConnectionError,\n"
    "                    requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,\n"
    "                    requests.exceptions.InvalidSchema) as error:",
)

CASES = [
    Case("reference solution"),
    Case("fixed shares per thread", {ANSWER: SLICES}),
    Case("thread per URL behind a semaphore", {ANSWER: SEMAPHORE}),
    Case("the statement read literally, a queue.Queue to-do list", {ANSWER: LITERAL}),
    Case(
        "ConnectionError tested before Timeout, elapsed from the call",
        {ANSWER: CONNECTION_FIRST},
        must_fail={"test_download_errors_classified", "test_download_bodies"},
    ),
    Case("no 'other' kind: a redirect loop escapes", {ANSWER: NO_OTHER}, must_fail={"test_download_errors_classified"}),
    Case("sequential downloader", {ANSWER: SEQUENTIAL}, must_fail={"test_download_bounded_threads"}),
    Case("unbounded: one thread per URL", {ANSWER: UNBOUNDED}, must_fail={"test_download_bounded_threads"}),
    Case("a thread pool instead of threads", {ANSWER: POOL}, must_fail={"test_download_bounded_threads"}),
    Case(
        "no error handling, no de-duplication",
        {ANSWER: NO_ERROR_HANDLING},
        must_fail={"test_download_result_type", "test_download_errors_classified", "test_download_edge_cases"},
    ),
]


# What the failing cells of some wrong answers must say: the rule they break.
MESSAGES = {
    "ConnectionError tested before Timeout, elapsed from the call": {
        "test_download_errors_classified": "Hint: a URL that never accepts the connection (ConnectTimeout)",
        "test_download_bodies": "Hint: with one thread, a page served in 20 ms",
    },
    "no 'other' kind: a redirect loop escapes": {"test_download_errors_classified": "TooManyRedirects"},
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hidden_tests_judge_downloaders(case, tmp_path):
    """Right downloaders pass every test cell; each wrong one fails exactly the cells meant to catch it."""
    _, results = judge(NOTEBOOK, case, tmp_path, TESTS)
    for gid, text in MESSAGES.get(case.name, {}).items():
        output = results[gid].output
        assert text in output, f"{case.name}: {gid} failed for another reason:\n{output[-1500:]}"


def test_result_type_is_locked_and_tests_use_the_package_time_limit():
    """PageResult is read-only; test cells call download_pages through probes.call_within, not a copy."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = grade_cells(nb)
    assert cells["page_result_class"].metadata["nbgrader"]["locked"]
    assert "run_with_timeout" not in "".join(cell.source for cell in nb.cells)
    for gid in TESTS:
        assert "from concurrency_lab.probes import call_within" in cells[gid].source, gid
