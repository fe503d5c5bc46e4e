"""The page server's asyncio mode, its connection count, its child process and its limits."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import urllib.error
import urllib.request

import aiohttp
import pytest
import requests

from concurrency_lab.pageserver import (
    MODES,
    PageServer,
    PageServerProcess,
    raise_open_file_limit,
    tcp_drop_counters,
)


def fetch(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("mode", MODES)
def test_routes_answer_the_same_in_both_modes(mode):
    """Pages 200 with their exact body; /missing 404; /error 500; a bad delay 400; in either mode."""
    with PageServer(pages=3, page_size=500, latency=0, mode=mode) as server:
        assert fetch(server.page_url(2)) == (200, server.body(2))
        assert fetch(server.page_url(3))[0] == 404
        assert fetch(server.not_found_url) == (404, b"not found\n")
        assert fetch(server.error_url) == (500, b"internal error\n")
        assert fetch(server.page_url(0) + "?delay=abc")[0] == 400
        response = requests.get(server.page_url(1), timeout=5)
        assert response.headers["Content-Type"] == "text/html; charset=ascii"
        assert server.requests == 6 and server.connections == 6


def test_unknown_mode_is_refused():
    """A mode other than threads or asyncio is an error up front."""
    with pytest.raises(ValueError, match="mode"):
        PageServer(mode="processes")


def test_asyncio_mode_applies_latency_and_hang_stops_cleanly():
    """The asyncio mode waits the latency; /hang times a client out and stopping releases it."""
    server = PageServer(pages=1, latency=0.5, hang_seconds=30, mode="asyncio").start()
    port = server.port
    try:
        start = time.perf_counter()
        assert fetch(server.page_url(0))[0] == 200
        assert time.perf_counter() - start >= 0.5
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(server.hang_url, timeout=0.3)
    finally:
        stop_start = time.perf_counter()
        server.stop()
    assert time.perf_counter() - stop_start < 5
    assert not server.running
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_asyncio_mode_holds_300_connections_at_once():
    """300 coroutines with no bound are all in flight at the asyncio server at once, one connection each."""
    pages = 300

    async def all_at_once(urls):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(url):
                async with session.get(url) as response:
                    return response.status, await response.read()

            return await asyncio.gather(*(one(url) for url in urls))

    with PageServer(pages=pages, latency=1.0, page_size=100, mode="asyncio") as server:
        answers = asyncio.run(all_at_once(server.page_urls))
        stats = server.stats()
    assert answers == [(200, server.body(i)) for i in range(pages)]
    assert stats == {"requests": pages, "connections": pages, "in_flight": 0, "peak_in_flight": pages}


@pytest.mark.parametrize("mode", MODES)
def test_a_connection_without_a_request_is_counted_as_a_connection_only(mode):
    """Opening and closing a socket counts one connection and no request."""
    with PageServer(pages=1, latency=0, mode=mode) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass
        fetch(server.page_url(0))
        deadline = time.monotonic() + 5
        while server.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (server.connections, server.requests) == (2, 1)
        server.reset_stats()
        assert server.stats() == {"requests": 0, "connections": 0, "in_flight": 0, "peak_in_flight": 0}


def test_server_in_a_child_process_serves_and_counts():
    """PageServerProcess serves from another process, with the same addresses and counters."""
    with PageServerProcess(pages=4, page_size=300, latency=0.2, mode="asyncio") as server:
        assert server.pid != os.getpid()
        assert server.url.startswith("http://127.0.0.1:") and len(server.page_urls) == 4
        server.reset_stats()
        with requests.Session() as session:
            assert session.get(server.page_url(3), timeout=5).content == server.body(3)
        assert (server.requests, server.connections, server.peak_in_flight, server.in_flight) == (1, 1, 1, 0)
        port = server.port
    assert not server.running
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    with pytest.raises(RuntimeError):
        _ = server.url


def test_tcp_drop_counters_read_the_tcpext_lines(tmp_path):
    """The kernel's listen drops, overflows and SYN retransmits come from the TcpExt lines."""
    netstat = tmp_path / "netstat"
    netstat.write_text(
        "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPSynRetrans\n"
        "TcpExt: 0 7 9 11\n"
        "IpExt: InNoRoutes\nIpExt: 0\n"
    )
    assert tcp_drop_counters(str(netstat)) == {"ListenOverflows": 7, "ListenDrops": 9, "TCPSynRetrans": 11}
    assert tcp_drop_counters(str(tmp_path / "absent")) is None
    if os.path.exists("/proc/net/netstat"):
        assert set(tcp_drop_counters()) == {"ListenOverflows", "ListenDrops", "TCPSynRetrans"}


def test_raise_open_file_limit_raises_the_soft_limit_only():
    """The soft limit on open files goes up to what is asked (never above the hard limit), never down."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        assert raise_open_file_limit(1100) == 1100
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (1100, hard)
        assert raise_open_file_limit(300) == 1100  # never lowered
        if hard != resource.RLIM_INFINITY:
            assert raise_open_file_limit(hard + 10) == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
