"""The page server: routes, bodies, concurrency and its peak counter."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from concurrency_lab.pageserver import PageServer, page_body


def fetch(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("size", [0, 1, 10, 57, 2048, 100_000])
def test_page_body_has_exact_size(size):
    """page_body returns exactly the requested number of bytes, deterministically."""
    body = page_body(3, size)
    assert type(body) is bytes and len(body) == size
    assert body == page_body(3, size)
    if size >= 60:
        assert b"Page 3" in body and body != page_body(4, size)


def test_page_body_rejects_negative_size():
    """A negative size is an error, not an empty page."""
    with pytest.raises(ValueError):
        page_body(0, -1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pages": -1},
        {"page_size": -5},
        {"latency": -0.1},
        {"gather": -1},
        {"gather": 2, "mode": "asyncio"},
        {"gather": 2, "gather_timeout": 0},
    ],
)
def test_server_rejects_bad_settings(kwargs):
    """Negative pages, sizes or latencies are refused up front."""
    with pytest.raises(ValueError):
        PageServer(**kwargs)


def test_routes_answer_as_documented():
    """Pages answer 200 with their body; /missing 404; /error 500; page N is 404."""
    with PageServer(pages=3, page_size=500, latency=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert len(server.page_urls) == 3
        status, body = fetch(server.page_url(2))
        assert (status, body) == (200, server.body(2))
        assert len(body) == 500
        assert fetch(server.page_url(3))[0] == 404
        assert fetch(server.not_found_url)[0] == 404
        assert fetch(server.error_url)[0] == 500
        assert fetch(server.url + "/pages/x")[0] == 404
        assert fetch(server.page_url(0) + "?delay=abc")[0] == 400
        assert server.requests == 6


def test_hang_route_times_out_the_client_and_stops_cleanly():
    """/hang does not answer within a client timeout; stopping the server releases it."""
    server = PageServer(latency=0, hang_seconds=30).start()
    try:
        start = time.perf_counter()
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(server.hang_url, timeout=0.3)
        assert time.perf_counter() - start < 5
    finally:
        stop_start = time.perf_counter()
        server.stop()
    assert time.perf_counter() - stop_start < 5
    assert not server.running


def test_latency_is_applied_and_can_be_overridden():
    """Each request waits the configured latency; ?delay= overrides it for one request."""
    # A long latency, so a busy machine cannot make the unwaited request look waited.
    with PageServer(pages=1, latency=1.0) as server:
        start = time.perf_counter()
        fetch(server.page_url(0))
        assert time.perf_counter() - start >= 1.0
        start = time.perf_counter()
        fetch(server.page_url(0) + "?delay=0")
        assert time.perf_counter() - start < 1.0


def test_peak_is_one_when_fetched_one_after_another():
    """16 pages fetched sequentially never overlap at the server."""
    with PageServer(pages=16, latency=0.1) as server:
        for url in server.page_urls:
            assert fetch(url)[0] == 200
        assert server.requests == 16
        assert server.peak_in_flight == 1
        assert server.in_flight == 0


def test_peak_is_eight_with_eight_threads():
    """16 pages at 100 ms fetched by 8 threads: the peak in flight reads exactly 8."""
    with PageServer(pages=16, latency=0.1) as server:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda u: fetch(u)[0], server.page_urls))
        assert statuses == [200] * 16
        assert server.peak_in_flight == 8
        assert server.requests == 16


def test_gather_holds_requests_until_that_many_wait_together():
    """With gather=4, four threads whose starts are spread out are still all in flight at once.

    The threads start 0.1 s apart and each page takes 0.05 s: without the gate no two
    would overlap. The last, smaller group (2 of 10 pages) is let through at once.
    """
    with PageServer(pages=10, latency=0.05, gather=4, gather_timeout=10) as server:
        todo = list(server.page_urls)
        lock = threading.Lock()
        statuses = []

        def worker() -> None:
            while True:
                with lock:
                    if not todo:
                        return
                    url = todo.pop(0)
                statuses.append(fetch(url)[0])

        threads = [threading.Thread(target=worker) for _ in range(4)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        for thread in threads:
            thread.join(timeout=20)
        elapsed = time.perf_counter() - start
        assert statuses == [200] * 10
        assert server.peak_in_flight == 4
        assert elapsed < 5, f"the last group of 2 should not wait for the 10 s gather_timeout ({elapsed:.1f} s)"


def test_gather_gives_up_once_when_too_few_requests_come():
    """One request at a time never fills a gate of 3: the first waits gather_timeout, the rest go at once."""
    with PageServer(pages=4, latency=0.0, gather=3, gather_timeout=0.5) as server:
        times = []
        for url in server.page_urls:
            start = time.perf_counter()
            assert fetch(url)[0] == 200
            times.append(time.perf_counter() - start)
        assert server.peak_in_flight == 1
    assert times[0] >= 0.45, times
    assert all(t < 0.45 for t in times[1:]), times


def test_stop_releases_requests_held_at_the_gate():
    """A request waiting at the gate ends when the server stops, and the stop does not hang."""
    server = PageServer(pages=4, latency=0.0, gather=4, gather_timeout=30).start()
    client = threading.Thread(target=lambda: _ignore_errors(fetch, server.page_url(1)), daemon=True)
    client.start()
    deadline = time.monotonic() + 5
    while server.in_flight < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.perf_counter()
    server.stop()
    client.join(timeout=5)
    assert not client.is_alive()
    assert time.perf_counter() - start < 5


def _ignore_errors(func, *args):
    try:
        func(*args)
    except (OSError, urllib.error.URLError):
        pass


def test_thirty_two_concurrent_clients_are_served_in_parallel():
    """32 clients released together are all in flight at once and all get their page."""
    pages = 32
    with PageServer(pages=pages, latency=0.3, page_size=4096) as server:
        barrier = threading.Barrier(pages)
        results: dict[int, tuple[int, bytes]] = {}

        def client(i: int) -> None:
            barrier.wait(timeout=10)
            results[i] = fetch(server.page_url(i))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(pages)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        elapsed = time.perf_counter() - start
        assert all(results[i] == (200, server.body(i)) for i in range(pages))
        assert server.peak_in_flight == pages
        # Serialised, 32 requests would take 9.6 s; in parallel about 0.3 s.
        assert elapsed < 5


def test_backlog_is_raised_above_the_default():
    """The listen backlog is 128, not the standard library's 5."""
    with PageServer() as server:
        assert server._httpd.request_queue_size >= 128


def test_reset_stats_and_properties_need_a_running_server():
    """Counters reset; the address is an error before start."""
    server = PageServer(pages=2, latency=0)
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        fetch(server.page_url(0))
        assert server.requests == 1
        server.reset_stats()
        assert (server.requests, server.peak_in_flight) == (0, 0)
        with pytest.raises(RuntimeError):
            server.start()


def test_port_is_free_after_stop():
    """Stopping closes the listening socket."""
    with PageServer() as server:
        port = server.port
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("mode", ["threads", "asyncio"])
def test_failing_addresses_raise_what_the_lesson_shows(mode):
    """refused_url is refused, connect_hang_url times out connecting, /loop redirects forever."""
    exceptions = requests.exceptions
    with PageServer(pages=1, latency=0, mode=mode) as server:
        with pytest.raises(exceptions.ConnectionError) as refused:
            requests.get(server.refused_url, timeout=2)
        assert not isinstance(refused.value, exceptions.Timeout)
        start = time.perf_counter()
        with pytest.raises(exceptions.ConnectTimeout):
            requests.get(server.connect_hang_url, timeout=0.3)
        assert time.perf_counter() - start >= 0.25
        with pytest.raises(exceptions.TooManyRedirects):
            requests.get(server.redirect_loop_url, timeout=2)
        assert server.requests == 31  # the first request and requests' 30 redirects
    with pytest.raises(RuntimeError):
        _ = server.refused_url
    with pytest.raises(RuntimeError):
        _ = server.connect_hang_url


def test_a_server_stops_within_milliseconds():
    """stop() does not wait out a long poll of the serving loop: a test starts and stops many servers.

    The best of five start-and-stop rounds, so that a busy machine does not decide it.
    """
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        with PageServer(pages=1):
            pass
        rounds.append(time.perf_counter() - start)
    assert min(rounds) < 0.03, rounds
