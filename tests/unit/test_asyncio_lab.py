"""The asyncio lab: the four downloaders, their bounds seen at the server, and the comparison."""

from __future__ import annotations

import asyncio
import threading

import aiohttp
import pytest

from concurrency_lab import asyncio_lab
from concurrency_lab.asyncio_lab import LabConfig, Mode, RunResult, fetch_asyncio, modes_for, run_mode
from concurrency_lab.pageserver import PageServer

PAGES, BOUND, LATENCY = 16, 4, 0.25


@pytest.fixture(scope="module")
def server():
    with PageServer(pages=PAGES, page_size=700, latency=LATENCY, mode="asyncio") as running:
        yield running


@pytest.mark.parametrize(
    ("mode", "peak"),
    [
        (Mode("thread per page"), PAGES),
        (Mode("thread pool", BOUND), BOUND),
        (Mode("asyncio", BOUND), BOUND),
        (Mode("asyncio", PAGES), PAGES),
    ],
    ids=lambda value: value.label if isinstance(value, Mode) else str(value),
)
def test_peak_in_flight_at_the_server_for_each_mode(server, mode, peak):
    """Each way of downloading has exactly its bound in flight at the server (all pages when unbounded)."""
    server.reset_stats()
    result = run_mode(mode, server.page_urls, timeout=10)
    assert result.statuses == {200: PAGES} and result.errors == {} and result.failed == 0
    assert result.nbytes == PAGES * 700
    assert server.peak_in_flight == peak, f"{mode.label}: {server.peak_in_flight} in flight at most"
    assert server.requests == server.connections == PAGES


async def ignores_its_bound(urls, limit):
    """A coroutine downloader that makes a semaphore and never uses it."""
    bound = asyncio.Semaphore(limit)  # noqa: F841 (the mistake under test)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(url):
            async with session.get(url) as response:
                return await response.read()

        return await asyncio.gather(*(one(url) for url in urls))


def test_a_coroutine_downloader_that_ignores_its_bound_shows_a_peak_above_it(server):
    """Gathering every coroutine without taking the semaphore puts more than the bound in flight."""
    server.reset_stats()
    bodies = asyncio.run(ignores_its_bound(server.page_urls, BOUND))
    assert len(bodies) == PAGES
    assert server.peak_in_flight > BOUND, f"peak {server.peak_in_flight} should exceed the bound {BOUND}"


def test_threads_used_by_each_downloader(server):
    """asyncio starts no thread; a pool of 4 starts 4; one thread per page starts one per page."""
    urls = [url + "?delay=0.1" for url in server.page_urls[:8]]
    before = threading.active_count()
    assert asyncio.run(fetch_asyncio(urls, limit=8, timeout=10)).threads == before
    assert run_mode(Mode("thread pool", BOUND), urls, timeout=10).threads == before + BOUND
    assert run_mode(Mode("thread per page"), urls, timeout=10).threads > before + BOUND


def test_failed_requests_are_counted_by_kind_and_never_raised(server):
    """A 404, a 500, a refused connection and a timeout are counted, and the good pages still arrive."""
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}/page"
    urls = [server.page_url(0) + "?delay=0", server.not_found_url + "?delay=0", server.error_url + "?delay=0"]
    try:
        for mode in (Mode("asyncio", 2), Mode("thread pool", 2)):
            result = run_mode(mode, [*urls, refused, server.hang_url], timeout=0.5)
            assert result.statuses == {200: 1, 404: 1, 500: 1}, mode.label
            assert sum(result.errors.values()) == 2 and result.failed == 4, (mode.label, result.errors)
    finally:
        closed.close()
    assert RunResult({200: 3, 503: 1}, {"TimeoutError": 2}, 10, 1).failed == 3


def test_modes_and_configs_are_checked():
    """Modes need a bound unless one thread per page; configs refuse empty sizes; quick mode is smaller."""
    assert [m.label for m in modes_for(50, 1000)] == [
        "one thread per page",
        "thread pool of 50",
        "asyncio, 50 in flight",
        "asyncio, 1,000 in flight",
    ]
    for bad in (("thread pool", None), ("thread per page", 3), ("asyncio", 0), ("processes", 2)):
        with pytest.raises(ValueError):
            Mode(*bad)
    with pytest.raises(ValueError):
        LabConfig(pages=0)
    with pytest.raises(ValueError):
        asyncio.run(fetch_asyncio([], limit=0))
    full, quick = asyncio_lab.make_config(quick=False), asyncio_lab.make_config(quick=True)
    assert (full.pages, full.latency, full.small, full.large) == (1000, 0.1, 50, 1000)
    assert quick.quick and quick.pages < full.pages and quick.repeats >= 3
    assert asyncio_lab.make_config(quick=True, repeats=7).repeats == 7


def test_quick_mode_follows_the_environment(monkeypatch):
    """CONCURRENCY_LAB_QUICK switches quick mode on; without it (and NBGRADER_EXECUTION) it is off."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("CONCURRENCY_LAB_QUICK", raising=False)
    assert asyncio_lab.quick_mode() is False
    assert asyncio_lab.make_config().quick is False
    monkeypatch.setenv("CONCURRENCY_LAB_QUICK", "1")
    assert asyncio_lab.quick_mode() is True
    assert asyncio_lab.make_config().quick is True


def test_peak_rss_sees_a_large_allocation():
    """peak_rss_bytes rises by at least the size of 64 MiB that were written to."""
    before = asyncio_lab.peak_rss_bytes()
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])
    assert asyncio_lab.peak_rss_bytes() >= before + 48 * 1024 * 1024
    del block


def test_compare_measures_each_way_in_its_own_process(tmp_path):
    """compare runs each way in a process of its own: asyncio there has one thread, nothing is lost."""
    config = LabConfig(pages=12, latency=0.15, small=3, large=12, repeats=1, warmup=0, timeout=20)
    points = asyncio_lab.compare(config, progress=False)
    by_label = {p.mode.label: p for p in points}
    assert list(by_label) == [m.label for m in config.modes]
    assert [p.peak_in_flight for p in points[1:]] == [3, 3, 12]
    assert by_label["asyncio, 3 in flight"].threads == 1 and by_label["asyncio, 12 in flight"].threads == 1
    assert by_label["thread pool of 3"].threads == 4
    assert by_label["one thread per page"].threads > 4
    for p in points:
        assert (p.failed_requests, p.extra_connections, p.repeats) == (0, 0, 1), p
        assert p.median_s >= 0.15 and p.peak_rss_mb > 10 and p.rss_growth_mb >= 0
    text = asyncio_lab.table(points)
    assert text.count("\n") == 1 + len(points) and "asyncio, 12 in flight" in text
    rows = asyncio_lab.read_csv(asyncio_lab.write_csv(points, tmp_path / "asyncio.csv"))
    assert [r["peak_in_flight"] for r in rows[1:]] == ["3", "3", "12"]
    figure = asyncio_lab.plot(points, machine="test machine")
    assert len(figure.axes) == 4
    figure.savefig(tmp_path / "asyncio.png")
    assert (tmp_path / "asyncio.png").stat().st_size > 10_000


def test_pipeline_helpers(tmp_path):
    """slow_read waits, then reads UTF-8; analyze_text counts words and the most common ones."""
    path = tmp_path / "doc.txt"
    path.write_text("b a b c b a\n", encoding="utf-8")
    assert asyncio_lab.slow_read(path, latency=0.01) == "b a b c b a\n"
    assert asyncio_lab.analyze_text("b a b c b a", rounds=2) == {"words": 6, "top": [("b", 3), ("a", 2), ("c", 1)]}
