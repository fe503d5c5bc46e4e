"""A threaded HTTP server on loopback that stands in for the web.

There is no internet in CI, and a real site's latency varies from run to run.
:class:`PageServer` serves ``pages`` pages of ``page_size`` bytes, each after
``latency`` seconds, so that the download workload is offline and repeatable.

It answers every request on its own thread (a single-threaded server would
serialise the downloads and hide every speedup), listens with a backlog of
4096 (the standard library's 5 drops connections under a burst of 16; the
kernel caps it at ``net.core.somaxconn``), and counts requests, accepted
connections and the peak number in flight, so tests can prove concurrency
without a stopwatch.

``PageServer(mode="asyncio")`` serves the same routes with coroutines on one
event loop instead: no thread per connection, so 1,000 connections arrive
and wait together. (The threaded server starts a thread per connection, and
under the GIL a burst of 1,000 starts one after another.)
For 1,000 connections at once, :class:`PageServerProcess` runs either
server in a child process (so its threads and memory are not counted as the
client's), :func:`raise_open_file_limit` lifts the soft limit on open files
that each side needs, and :func:`tcp_drop_counters` reads the kernel's counts
of connections dropped at a full listen queue and of connection attempts sent
again.

Routes::

    /pages/<i>   200, page i (0 <= i < pages); 404 for any other i
    /missing     404
    /error       500
    /hang        never answers within a client's timeout (until shutdown)
    /loop        302, redirects to itself forever (a client gives up: too many redirects)

Any route takes ``?delay=SECONDS`` to override the latency of one request.

``PageServer(gather=n)`` holds page requests at a gate until ``n`` of them
wait there together (or every page not yet answered does), and only then
starts their latency: a client that keeps ``n`` requests in flight is seen
with ``n`` in flight however late its threads start, without a long latency.

Two more addresses of a :class:`PageServer` fail before any HTTP, so that a
lesson or a test can show every way a download fails:
:attr:`PageServer.refused_url` (nothing listens: the connection is refused)
and :attr:`PageServer.connect_hang_url` (a port whose queue of pending
connections is full, so a new connection is never accepted and the client's
connect timeout runs out; on Linux and macOS).
"""

from __future__ import annotations

import asyncio
import email.utils
import multiprocessing
import multiprocessing.connection
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "BACKLOG",
    "MODES",
    "PageServer",
    "PageServerProcess",
    "TCP_DROP_COUNTERS",
    "page_body",
    "raise_open_file_limit",
    "tcp_drop_counters",
]

#: The listen backlog: connections the kernel queues before the server accepts
#: them. A burst of 1,000 connects must fit, or the kernel drops SYNs and each
#: dropped client tries again a second later (the kernel caps the value at
#: ``net.core.somaxconn``, 4096 on Linux 5.4 and newer).
BACKLOG = 4096

#: How the server handles connections: a thread each, or coroutines on one event loop.
MODES: tuple[str, ...] = ("threads", "asyncio")

#: Kernel counters (``/proc/net/netstat``, ``TcpExt``) that grow when a
#: connection is dropped at a full listen queue or a connection attempt (SYN)
#: is sent again.
TCP_DROP_COUNTERS: tuple[str, ...] = ("ListenOverflows", "ListenDrops", "TCPSynRetrans")


def tcp_drop_counters(path: str = "/proc/net/netstat") -> dict[str, int] | None:
    """The kernel's :data:`TCP_DROP_COUNTERS` now, for the whole machine; ``None`` off Linux.

    Take them before and after a run: a difference of zero means no
    connection was dropped at a listen queue and none had to be tried again.
    They count every process on the machine, so a difference can also come
    from other work; zero is the strong statement.
    """
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return {name: int(table.get(name, 0)) for name in TCP_DROP_COUNTERS}
    return None


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files to ``wanted`` (at most the hard limit).

    Every connection is a file descriptor on each side: 1,000 requests in
    flight need over 1,000 descriptors in the client and in the server, more
    than the common soft limit of 1,024 (256 on macOS). Only the soft limit
    is raised, which needs no privileges; it is never lowered.

    Returns:
        The soft limit now in force (``wanted`` or more, unless the hard limit
        is lower). On platforms without the ``resource`` module (Windows), ``wanted``.
    """
    try:
        import resource
    except ImportError:  # Windows: no such per-process limit on sockets
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft) if soft != resource.RLIM_INFINITY else wanted


def page_body(index: int, size: int) -> bytes:
    """Return the body of page ``index``: exactly ``size`` bytes of ASCII HTML.

    The content is deterministic, so a test can compare byte counts and
    contents with what a download returned.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    head = f"<html><head><title>Page {index}</title></head><body>\n".encode()
    tail = b"\n</body></html>\n"
    line = f"<p>Concurrency Lab page {index}.</p>\n".encode()
    lines = max(0, size - len(head) - len(tail)) // len(line) + 1
    body = head + line * lines
    return body[: max(0, size - len(tail))] + tail[:size]


@dataclass(frozen=True)
class _Plan:
    """How to answer one request: wait ``delay`` seconds (or hang), then send."""

    delay: float
    status: HTTPStatus = HTTPStatus.OK
    body: bytes = b""
    ctype: str = "text/plain"
    hang: bool = False
    location: str | None = None
    page: bool = False


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a deep listen backlog, daemon threads and an accept count."""

    request_queue_size = BACKLOG
    daemon_threads = True
    allow_reuse_address = True
    on_accept: object = None

    def verify_request(self, request: object, client_address: object) -> bool:
        """Count each accepted connection (called once per connection, before its thread)."""
        if callable(self.on_accept):
            self.on_accept()
        return True


class _Routes:
    """The addresses of the routes, for any server that knows its ``url``."""

    pages: int
    page_size: int

    @property
    def url(self) -> str:
        raise NotImplementedError

    def page_url(self, index: int) -> str:
        """The address of page ``index``."""
        return f"{self.url}/pages/{index}"

    @property
    def page_urls(self) -> list[str]:
        """The addresses of all pages, in order."""
        return [self.page_url(i) for i in range(self.pages)]

    @property
    def not_found_url(self) -> str:
        """An address that answers 404."""
        return f"{self.url}/missing"

    @property
    def error_url(self) -> str:
        """An address that answers 500."""
        return f"{self.url}/error"

    @property
    def hang_url(self) -> str:
        """An address that does not answer within any sensible client timeout."""
        return f"{self.url}/hang"

    @property
    def redirect_loop_url(self) -> str:
        """An address that redirects to itself forever (``requests`` raises ``TooManyRedirects``)."""
        return f"{self.url}/loop"

    def body(self, index: int) -> bytes:
        """The exact bytes that page ``index`` serves."""
        return page_body(index, self.page_size)


class PageServer(_Routes):
    """A local, threaded page server with artificial latency and counters.

    Use it as a context manager::

        with PageServer(pages=16, latency=0.1) as server:
            urls = server.page_urls
            ...
            print(server.peak_in_flight)

    Args:
        pages: how many pages ``/pages/0`` .. ``/pages/{pages-1}`` exist.
        page_size: size of each page body, in bytes.
        latency: seconds the server waits before answering each request.
        host: the loopback address to bind.
        port: the port; 0 picks a free one.
        hang_seconds: how long ``/hang`` holds a request before it gives up
            (it is also released when the server stops).
        mode: ``"threads"`` (a thread per connection, the default) or
            ``"asyncio"`` (coroutines on one event loop, in one thread).
        gather: hold each page request until this many page requests wait
            together, or until every page not yet answered is waiting (so a
            last, smaller group goes too); then all of them wait ``latency``
            and are answered. 0 (the default) holds nothing. Threads mode only.
        gather_timeout: seconds a request waits at the gate at most; when it
            runs out, the waiting requests go on and the server stops
            gathering, so a client that never has ``gather`` requests in
            flight waits once, not at every request.
    """

    def __init__(
        self,
        pages: int = 16,
        page_size: int = 2048,
        latency: float = 0.1,
        host: str = "127.0.0.1",
        port: int = 0,
        hang_seconds: float = 60.0,
        mode: str = "threads",
        gather: int = 0,
        gather_timeout: float = 3.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if gather < 0 or (gather and mode != "threads"):
            raise ValueError(f"gather must be >= 0, and 0 unless mode is 'threads'; got {gather} in mode {mode!r}")
        if gather_timeout <= 0:
            raise ValueError(f"gather_timeout must be > 0 seconds, got {gather_timeout}")
        if pages < 0:
            raise ValueError(f"pages must be >= 0, got {pages}")
        if page_size < 0:
            raise ValueError(f"page_size must be >= 0, got {page_size}")
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency}")
        self.pages = pages
        self.page_size = page_size
        self.latency = latency
        self.hang_seconds = hang_seconds
        self.mode = mode
        self.gather = gather
        self.gather_timeout = gather_timeout
        self._gate = threading.Condition()
        self._held = 0  # page requests waiting at the gate
        self._released = 0  # page requests let through the gate
        self._wave = 0  # how many times the gate opened
        self._gathering = gather > 0
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests = 0
        self._connections = 0
        self._in_flight = 0
        self._peak = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._stop_serving: asyncio.Event | None = None
        self._closed_socket: socket.socket | None = None
        self._full_sockets: list[socket.socket] = []

    # -- life cycle -----------------------------------------------------
    def start(self) -> PageServer:
        """Bind the port and serve on a background thread; return ``self``."""
        if self._thread is not None:
            raise RuntimeError("PageServer is already running")
        self._stopping.clear()
        self._open_failing_ports()
        if self.mode == "asyncio":
            self._start_loop()
            return self
        self._httpd = _Server((self._host, self._port), self._handler_class())
        self._httpd.on_accept = self._accepted
        self._bound_port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            # stop() waits until the loop next looks at its flag: at most this long (a test
            # starts and stops a dozen servers; 50 ms each added up to half a second).
            kwargs={"poll_interval": 0.005},
            name="PageServer",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release requests held by ``/hang`` or at the gate, and close the port."""
        if self._thread is None:
            return
        self._stopping.set()
        with self._gate:
            self._gate.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        elif self._loop is not None and self._stop_serving is not None:
            self._loop.call_soon_threadsafe(self._stop_serving.set)
        self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None
        self._loop = None
        self._bound_port = None
        for sock in [self._closed_socket, *self._full_sockets]:
            if sock is not None:
                sock.close()
        self._closed_socket = None
        self._full_sockets = []

    def _open_failing_ports(self) -> None:
        # Bound but not listening: connecting is refused.
        self._closed_socket = socket.socket()
        self._closed_socket.bind((self._host, 0))
        # Listening with the shortest queue, never accepting, and the queue filled by
        # connections of our own: the kernel drops further connection requests.
        full = socket.socket()
        full.bind((self._host, 0))
        full.listen(0)
        self._full_sockets = [full]
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(full.getsockname())
            self._full_sockets.append(filler)

    @property
    def refused_url(self) -> str:
        """An address where nothing listens: the connection is refused (``ConnectionError``)."""
        if self._closed_socket is None:
            raise RuntimeError("PageServer is not running; use it in a with block")
        return f"http://{self._host}:{self._closed_socket.getsockname()[1]}/page"

    @property
    def connect_hang_url(self) -> str:
        """An address that never accepts the connection (``requests`` raises ``ConnectTimeout``)."""
        if not self._full_sockets:
            raise RuntimeError("PageServer is not running; use it in a with block")
        return f"http://{self._host}:{self._full_sockets[0].getsockname()[1]}/page"

    def __enter__(self) -> PageServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------
    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._bound_port is None:
            raise RuntimeError("PageServer is not running; use it in a with block")
        return self._bound_port

    @property
    def url(self) -> str:
        """The base address, such as ``http://127.0.0.1:40123``."""
        return f"http://{self._host}:{self.port}"

    # -- counters ---------------------------------------------------------
    @property
    def requests(self) -> int:
        """How many requests arrived since start or the last :meth:`reset_stats`."""
        with self._lock:
            return self._requests

    @property
    def connections(self) -> int:
        """How many connections were accepted since start or the last :meth:`reset_stats`.

        Every client in the course opens one connection per request (the
        server speaks HTTP/1.0), so more connections than requests means
        connections that were opened and given up, or tried again.
        """
        with self._lock:
            return self._connections

    @property
    def in_flight(self) -> int:
        """How many requests are being handled right now."""
        with self._lock:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The largest number of requests handled at the same time."""
        with self._lock:
            return self._peak

    def stats(self) -> dict[str, int]:
        """The counters at one moment: requests, connections, in_flight, peak_in_flight."""
        with self._lock:
            return {
                "requests": self._requests,
                "connections": self._connections,
                "in_flight": self._in_flight,
                "peak_in_flight": self._peak,
            }

    def reset_stats(self) -> None:
        """Set the request and connection counts and the peak back to zero (or to those in flight)."""
        with self._lock:
            self._requests = 0
            self._connections = 0
            self._peak = self._in_flight

    def _accepted(self) -> None:
        with self._lock:
            self._connections += 1

    def _enter(self) -> None:
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _wait_at_gate(self) -> None:
        """Hold a page request until ``gather`` of them wait (see the class's ``gather``)."""
        with self._gate:
            if not self._gathering:
                return
            self._held += 1
            wave = self._wave
            if self._held < min(self.gather, max(1, self.pages - self._released)):
                opened = self._gate.wait_for(
                    lambda: self._wave != wave or self._stopping.is_set(), timeout=self.gather_timeout
                )
                if self._wave != wave:
                    return
                if not opened or self._stopping.is_set():
                    self._gathering = False  # never enough together: stop holding requests
            self._released += self._held
            self._held = 0
            self._wave += 1
            self._gate.notify_all()

    # -- what to answer -----------------------------------------------------
    def _plan(self, target: str) -> _Plan:
        """How to answer a GET of ``target`` (a path with an optional query)."""
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        delay = self.latency
        if "delay" in query:
            try:
                delay = max(0.0, float(query["delay"][0]))
            except ValueError:
                return _Plan(0.0, HTTPStatus.BAD_REQUEST, b"bad delay\n")
        path = parts.path.rstrip("/")
        if path == "/hang":
            return _Plan(self.hang_seconds, hang=True)
        if path == "/error":
            return _Plan(delay, HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n")
        if path == "/loop":
            return _Plan(delay, HTTPStatus.FOUND, location="/loop?delay=0")
        prefix = "/pages/"
        if path.startswith(prefix) and path[len(prefix) :].isdigit():
            index = int(path[len(prefix) :])
            if index < self.pages:
                return _Plan(delay, HTTPStatus.OK, self.body(index), "text/html", page=True)
        return _Plan(delay, HTTPStatus.NOT_FOUND, b"not found\n")

    # -- the asyncio mode ---------------------------------------------------
    def _start_loop(self) -> None:
        """Serve with coroutines on an event loop in a background thread."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._stop_serving = asyncio.Event()
            server = await asyncio.start_server(
                self._handle, self._host, self._port, backlog=BACKLOG, reuse_address=True
            )
            self._bound_port = int(server.sockets[0].getsockname()[1])
            ready.set()
            try:
                await self._stop_serving.wait()
            finally:
                server.close()
                for task in list(self._handlers):
                    task.cancel()
                await asyncio.gather(*self._handlers, return_exceptions=True)
                await server.wait_closed()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(serve())
            except BaseException as error:  # handed to start() below
                failure.append(error)
            finally:
                ready.set()
                loop.close()

        self._thread = threading.Thread(target=run, name="PageServer", daemon=True)
        self._thread.start()
        ready.wait(timeout=10)
        if failure or self._bound_port is None:
            self._thread.join(timeout=5)
            self._thread = None
            raise RuntimeError("the asyncio page server did not start") from (failure[0] if failure else None)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one connection: one request, then close (HTTP/1.0, like the threaded mode)."""
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._accepted()
        counted = False
        try:
            request_line = await reader.readline()
            while await reader.readline() not in (b"\r\n", b"\n", b""):
                pass  # headers: nothing in them changes the answer
            words = request_line.decode("latin-1").split()
            if len(words) != 3 or not words[2].startswith("HTTP/"):
                self._write(writer, _Plan(0.0, HTTPStatus.BAD_REQUEST, b"bad request\n"))
                return
            if words[0] != "GET":
                self._write(writer, _Plan(0.0, HTTPStatus.NOT_IMPLEMENTED, b"only GET\n"))
                return
            self._enter()
            counted = True
            plan = self._plan(words[1])
            await asyncio.sleep(plan.delay)
            if plan.hang:
                return  # close without an answer
            # Leave the in-flight count before the answer goes out, as the threaded mode does.
            counted = False
            self._leave()
            self._write(writer, plan)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client gave up, or the server is stopping
        finally:
            if counted:
                self._leave()
            writer.close()
            if task is not None:
                self._handlers.discard(task)

    @staticmethod
    def _write(writer: asyncio.StreamWriter, plan: _Plan) -> None:
        head = (
            f"HTTP/1.0 {plan.status.value} {plan.status.phrase}\r\n"
            f"Server: ConcurrencyLab/1.0 asyncio\r\n"
            f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
            f"Content-Type: {plan.ctype}; charset=ascii\r\n"
            + (f"Location: {plan.location}\r\n" if plan.location else "")
            + f"Content-Length: {len(plan.body)}\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + plan.body)

    # -- the threaded mode's handler ----------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "ConcurrencyLab/1.0"

            def do_GET(self) -> None:  # the name http.server calls
                server._enter()
                self._counted = True
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout): nothing to tell it
                finally:
                    self._done()

            def _done(self) -> None:
                # Leave the in-flight count before the last byte goes out: once
                # the client has its answer it may send the next request at once.
                if self._counted:
                    self._counted = False
                    server._leave()

            def _answer(self) -> None:
                plan = server._plan(self.path)
                if plan.hang:
                    server._stopping.wait(server.hang_seconds)
                    return  # close without an answer
                if plan.page:
                    server._wait_at_gate()
                if server._stopping.wait(plan.delay):
                    return
                self._send(plan.status, plan.body, plan.ctype, plan.location)

            def _send(
                self, status: HTTPStatus, body: bytes, ctype: str = "text/plain", location: str | None = None
            ) -> None:
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", f"{ctype}; charset=ascii")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self._done()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Stay silent: anything on stderr costs a student points in nbgrader."""

        return Handler


# -- the server in a process of its own ------------------------------------------------


def _serve_in_child(
    conn: multiprocessing.connection.Connection, settings: Mapping[str, object], open_files: int
) -> None:
    """Run a :class:`PageServer` in this (child) process and answer the parent's commands."""
    raise_open_file_limit(open_files)
    server = PageServer(**settings).start()  # type: ignore[arg-type]
    try:
        conn.send({"url": server.url, "pid": os.getpid()})
        while True:
            try:
                command = conn.recv()
            except EOFError:  # the parent has gone
                return
            if command == "stats":
                conn.send(server.stats())
            elif command == "reset":
                server.reset_stats()
                conn.send(None)
            else:  # "stop"
                return
    finally:
        server.stop()
        conn.close()


class PageServerProcess(_Routes):
    """A :class:`PageServer` in a child process, with the same addresses and counters.

    A client that measures its own memory and threads needs the server
    elsewhere: a threaded server holding 1,000 connections runs 1,000 threads.
    The child raises its open-file limit to ``open_files`` first (see
    :func:`raise_open_file_limit`). Use it as a context manager::

        with PageServerProcess(pages=1000, latency=0.1) as server:
            server.reset_stats()
            ...  # download server.page_urls
            print(server.peak_in_flight, server.connections)

    Args:
        pages, page_size, latency, hang_seconds, mode: as for :class:`PageServer`
            (``mode="asyncio"`` holds 1,000 connections at once).
        open_files: the soft limit on open files the child asks for.
        context: the multiprocessing context; the current start method by default.
        start_timeout: seconds to wait for the child to listen.
    """

    def __init__(
        self,
        pages: int = 16,
        page_size: int = 2048,
        latency: float = 0.1,
        hang_seconds: float = 60.0,
        mode: str = "threads",
        open_files: int = 4096,
        context: multiprocessing.context.BaseContext | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        PageServer(pages=pages, page_size=page_size, latency=latency, mode=mode)  # checks the settings
        self.pages = pages
        self.mode = mode
        self.page_size = page_size
        self.latency = latency
        self._settings = {
            "pages": pages,
            "page_size": page_size,
            "latency": latency,
            "hang_seconds": hang_seconds,
            "mode": mode,
        }
        self._open_files = open_files
        self._context = context or multiprocessing.get_context()
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._url: str | None = None
        self._pid: int | None = None

    def start(self) -> PageServerProcess:
        """Start the child and wait until it listens; return ``self``."""
        if self._process is not None:
            raise RuntimeError("PageServerProcess is already running")
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_serve_in_child,
            args=(child, self._settings, self._open_files),
            name="PageServerProcess",
            daemon=True,
        )
        process.start()
        child.close()
        if not parent.poll(self._start_timeout):
            process.terminate()
            raise RuntimeError(f"the page server process did not start within {self._start_timeout} s")
        hello = parent.recv()
        self._conn, self._process = parent, process
        self._url, self._pid = hello["url"], hello["pid"]
        return self

    def stop(self) -> None:
        """Stop the child's server and wait for the child to end."""
        if self._process is None:
            return
        with self._lock:
            try:
                self._conn.send("stop")  # type: ignore[union-attr]
            except (BrokenPipeError, OSError):
                pass
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=5)
            self._conn.close()  # type: ignore[union-attr]
        self._process = self._conn = None
        self._url = None

    def __enter__(self) -> PageServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._process is not None

    @property
    def pid(self) -> int:
        """The child's process ID."""
        if self._pid is None or self._process is None:
            raise RuntimeError("PageServerProcess is not running; use it in a with block")
        return self._pid

    @property
    def url(self) -> str:
        """The base address, such as ``http://127.0.0.1:40123``."""
        if self._url is None:
            raise RuntimeError("PageServerProcess is not running; use it in a with block")
        return self._url

    @property
    def port(self) -> int:
        """The port the child listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def _ask(self, command: str) -> object:
        if self._conn is None:
            raise RuntimeError("PageServerProcess is not running; use it in a with block")
        with self._lock:
            self._conn.send(command)
            return self._conn.recv()

    def stats(self) -> dict[str, int]:
        """The child's counters: requests, connections, in_flight, peak_in_flight."""
        return dict(self._ask("stats"))  # type: ignore[call-overload]

    def reset_stats(self) -> None:
        """Set the child's request and connection counts and its peak back to zero."""
        self._ask("reset")

    @property
    def requests(self) -> int:
        """How many requests arrived since start or the last :meth:`reset_stats`."""
        return self.stats()["requests"]

    @property
    def connections(self) -> int:
        """How many connections the child accepted since start or the last :meth:`reset_stats`."""
        return self.stats()["connections"]

    @property
    def in_flight(self) -> int:
        """How many requests the child is handling right now."""
        return self.stats()["in_flight"]

    @property
    def peak_in_flight(self) -> int:
        """The largest number of requests the child handled at the same time."""
        return self.stats()["peak_in_flight"]
