"""A threaded HTTP server on loopback that stands in for the web.

There is no internet in CI, and a real site's latency varies from run to run.
:class:`PageServer` serves ``pages`` pages of ``page_size`` bytes, each after
``latency`` seconds, so that the download workload is offline and repeatable.

It answers every request on its own thread (a single-threaded server would
serialise the downloads and hide every speedup), listens with a backlog of 128
(the standard library's 5 drops connections under a burst of 16), and counts
requests and the peak number in flight, so tests can prove concurrency
without a stopwatch.

Routes::

    /pages/<i>   200, page i (0 <= i < pages); 404 for any other i
    /missing     404
    /error       500
    /hang        never answers within a client's timeout (until shutdown)
    /loop        302, redirects to itself forever (a client gives up: too many redirects)

Any route takes ``?delay=SECONDS`` to override the latency of one request.

Two more addresses fail before any HTTP, so that a lesson or a test can show
every way a download fails: :attr:`PageServer.refused_url` (nothing listens:
the connection is refused) and :attr:`PageServer.connect_hang_url` (a port
whose queue of pending connections is full, so a new connection is never
accepted and the client's connect timeout runs out; on Linux and macOS).
"""

from __future__ import annotations

import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

__all__ = ["PageServer", "page_body"]


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
    return body[: max(0, size - len(tail))] + tail[: size]


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a deep listen backlog and daemon worker threads."""

    request_queue_size = 128
    daemon_threads = True
    allow_reuse_address = True


class PageServer:
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
    """

    def __init__(
        self,
        pages: int = 16,
        page_size: int = 2048,
        latency: float = 0.1,
        host: str = "127.0.0.1",
        port: int = 0,
        hang_seconds: float = 60.0,
    ) -> None:
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
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests = 0
        self._in_flight = 0
        self._peak = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closed_socket: socket.socket | None = None
        self._full_sockets: list[socket.socket] = []

    # -- life cycle -----------------------------------------------------
    def start(self) -> PageServer:
        """Bind the port and serve on a background thread; return ``self``."""
        if self._httpd is not None:
            raise RuntimeError("PageServer is already running")
        self._stopping.clear()
        self._httpd = _Server((self._host, self._port), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="PageServer",
            daemon=True,
        )
        self._thread.start()
        self._open_failing_ports()
        return self

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

    def stop(self) -> None:
        """Stop serving, release requests held by ``/hang`` and close the port."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None
        for sock in [self._closed_socket, *self._full_sockets]:
            if sock is not None:
                sock.close()
        self._closed_socket = None
        self._full_sockets = []

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
        return self._httpd is not None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._httpd is None:
            raise RuntimeError("PageServer is not running; use it in a with block")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base address, such as ``http://127.0.0.1:40123``."""
        return f"http://{self._host}:{self.port}"

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

    def body(self, index: int) -> bytes:
        """The exact bytes that page ``index`` serves."""
        return page_body(index, self.page_size)

    # -- counters ---------------------------------------------------------
    @property
    def requests(self) -> int:
        """How many requests arrived since start or the last :meth:`reset_stats`."""
        with self._lock:
            return self._requests

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

    def reset_stats(self) -> None:
        """Set the request count and the peak back to zero (or to those in flight)."""
        with self._lock:
            self._requests = 0
            self._peak = self._in_flight

    def _enter(self) -> None:
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # -- the handler ------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "ConcurrencyLab/1.0"

            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
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
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                delay = server.latency
                if "delay" in query:
                    try:
                        delay = max(0.0, float(query["delay"][0]))
                    except ValueError:
                        self._send(HTTPStatus.BAD_REQUEST, b"bad delay\n")
                        return
                path = parts.path.rstrip("/")
                if path == "/hang":
                    server._stopping.wait(server.hang_seconds)
                    return  # close without an answer
                if server._stopping.wait(delay):
                    return
                if path == "/loop":
                    self.send_response(HTTPStatus.FOUND)
                    self.send_header("Location", "/loop?delay=0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self._done()
                    return
                if path == "/error":
                    self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n")
                    return
                prefix = "/pages/"
                if path.startswith(prefix) and path[len(prefix):].isdigit():
                    index = int(path[len(prefix):])
                    if index < server.pages:
                        self._send(HTTPStatus.OK, server.body(index), "text/html")
                        return
                self._send(HTTPStatus.NOT_FOUND, b"not found\n")

            def _send(
                self, status: HTTPStatus, body: bytes, ctype: str = "text/plain"
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", f"{ctype}; charset=ascii")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self._done()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Stay silent: anything on stderr costs a student points in nbgrader."""

        return Handler
