"""The asyncio lab's measurement: threads against asyncio on the download workload, at scale.

Four ways to download ``pages`` pages from a :class:`~.pageserver.PageServer`
that answers each after ``latency`` seconds (full size: 1,000 pages, 100 ms):

* **one thread per page**: a ``threading.Thread`` for each page, each calling
  ``requests.get`` (Task 1 of the Day 3 tutorial without a bound);
* **a thread pool of 50**: ``ThreadPoolExecutor(50).map`` over the pages;
* **asyncio, 50 in flight** and **asyncio, 1,000 in flight**: one coroutine
  per page on one event loop, with ``aiohttp``, bounded by an
  ``asyncio.Semaphore``.

Each way runs in a process of its own, started before the clock, so its peak
resident memory and its threads are its own; the page server runs in another
process (:class:`~.pageserver.PageServerProcess`, asyncio mode, so it holds
1,000 connections at once). The runs go round-robin over the ways, and each
point is the median of ``repeats`` runs after ``warmup`` runs, timed with
:func:`time.perf_counter` around the whole download (starting the threads or
the session included: a program pays for that too).

For each way, :func:`compare` reports the wall time, the peak resident memory
(and its growth over the idle process), the most threads alive in the
client, the peak number of requests in flight counted at the server, and that
nothing was lost: every page answered 200, the server accepted exactly one
connection per page, and the kernel dropped no connection at the listen
queue and sent no connection attempt again (:func:`~.pageserver.tcp_drop_counters`).

From a shell (``make asyncio-bench``)::

    python -m concurrency_lab.asyncio_lab --out docs

Quick mode (100 pages at 20 ms, bounds of 10 and 100, 3 repeats) is on when
``CONCURRENCY_LAB_QUICK`` or ``NBGRADER_EXECUTION`` is set.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .machine import cpu_count, describe_machine, quick_mode
from .pageserver import PageServerProcess, raise_open_file_limit, tcp_drop_counters
from .timing import summarize

__all__ = [
    "COLUMNS",
    "KINDS",
    "LabConfig",
    "Mode",
    "Point",
    "RunResult",
    "analyze_text",
    "compare",
    "fetch_asyncio",
    "fetch_thread_per_page",
    "fetch_thread_pool",
    "main",
    "make_config",
    "modes_for",
    "peak_rss_bytes",
    "plot",
    "read_csv",
    "run_mode",
    "slow_read",
    "table",
    "write_csv",
]

#: The kinds of downloader, in the order the table and chart show them.
KINDS: tuple[str, ...] = ("thread per page", "thread pool", "asyncio")

#: The columns of ``docs/asyncio.csv``.
COLUMNS: tuple[str, ...] = (
    "mode",
    "kind",
    "bound",
    "pages",
    "latency_s",
    "median_s",
    "spread_s",
    "repeats",
    "peak_rss_mb",
    "rss_growth_mb",
    "threads",
    "peak_in_flight",
    "failed_requests",
    "extra_connections",
    "listen_drops",
    "syn_retries",
    "cores",
)

#: Open files each side asks for: 1,000 sockets plus what the interpreter holds.
OPEN_FILES = 4096


# -- the downloaders (run in the measuring processes) ---------------------------------


@dataclass(frozen=True)
class RunResult:
    """One download of every page, seen from the client.

    Attributes:
        statuses: how many answers of each HTTP status arrived.
        errors: how many requests failed without an answer, by exception name.
        nbytes: body bytes received, in total.
        threads: the most threads alive in this process when a request started.
        elapsed: seconds for the whole download (:func:`time.perf_counter`).
    """

    statuses: dict[int, int]
    errors: dict[str, int]
    nbytes: int
    threads: int
    elapsed: float = 0.0

    @property
    def failed(self) -> int:
        """Requests that got no answer or an answer other than 200."""
        return sum(self.errors.values()) + sum(n for s, n in self.statuses.items() if s != 200)


class _Tally:
    """Collects answers and the thread high-water mark from many threads or coroutines."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.nbytes = 0
        self.threads = threading.active_count()

    def starting(self) -> None:
        count = threading.active_count()
        if count > self.threads:
            with self.lock:
                self.threads = max(self.threads, count)

    def answer(self, status: int, nbytes: int) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.nbytes += nbytes

    def error(self, error: BaseException) -> None:
        with self.lock:
            self.errors[type(error).__name__] += 1

    def result(self, elapsed: float) -> RunResult:
        return RunResult(dict(self.statuses), dict(self.errors), self.nbytes, self.threads, elapsed)


def _get_with_requests(url: str, timeout: float, tally: _Tally) -> None:
    import requests

    tally.starting()
    try:
        response = requests.get(url, timeout=timeout)
        tally.answer(response.status_code, len(response.content))
    except Exception as error:  # counted, never raised: one page must not stop the others
        tally.error(error)


def fetch_thread_per_page(urls: Sequence[str], timeout: float = 60.0) -> RunResult:
    """Download every URL with one ``threading.Thread`` each (``requests.get``); no bound."""
    tally = _Tally()
    start = time.perf_counter()
    threads = [threading.Thread(target=_get_with_requests, args=(url, timeout, tally)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally.result(time.perf_counter() - start)


def fetch_thread_pool(urls: Sequence[str], workers: int = 50, timeout: float = 60.0) -> RunResult:
    """Download every URL on a ``ThreadPoolExecutor`` of ``workers`` threads (``requests.get``).

    Raises:
        ValueError: if ``workers`` < 1.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    tally = _Tally()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda url: _get_with_requests(url, timeout, tally), urls))
    return tally.result(time.perf_counter() - start)


async def fetch_asyncio(urls: Sequence[str], limit: int = 50, timeout: float = 60.0) -> RunResult:
    """Download every URL with one coroutine each, at most ``limit`` in flight (aiohttp).

    An ``asyncio.Semaphore(limit)`` bounds the requests in flight. aiohttp's
    own connection limit (100 by default) is switched off, so the semaphore
    is the only bound. Each request has ``timeout`` seconds (``asyncio.timeout``).

    Raises:
        ValueError: if ``limit`` < 1.
    """
    import aiohttp

    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    tally = _Tally()
    bound = asyncio.Semaphore(limit)

    async def one(session: aiohttp.ClientSession, url: str) -> None:
        async with bound:
            tally.starting()
            try:
                async with asyncio.timeout(timeout), session.get(url) as response:
                    tally.answer(response.status, len(await response.read()))
            except Exception as error:  # counted, never raised
                tally.error(error)

    start = time.perf_counter()
    # The pages are on 127.0.0.1: no name to look up. aiohttp's default resolver is aiodns when it is
    # installed (JupyterHub brings it), and aiodns starts a thread of its own; this one starts none.
    connector = aiohttp.TCPConnector(limit=0, resolver=aiohttp.ThreadedResolver())
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session, url) for url in urls))
    return tally.result(time.perf_counter() - start)


@dataclass(frozen=True)
class Mode:
    """One way of downloading: ``kind`` (see :data:`KINDS`) and its bound (threads or in flight)."""

    kind: str
    bound: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if (self.kind == "thread per page") != (self.bound is None):
            raise ValueError(f"{self.kind!r} takes {'no' if self.kind == 'thread per page' else 'a'} bound")
        if self.bound is not None and self.bound < 1:
            raise ValueError(f"bound must be >= 1, got {self.bound}")

    @property
    def label(self) -> str:
        """Such as ``asyncio, 1,000 in flight``."""
        if self.kind == "thread per page":
            return "one thread per page"
        if self.kind == "thread pool":
            return f"thread pool of {self.bound:,}"
        return f"asyncio, {self.bound:,} in flight"


def run_mode(mode: Mode, urls: Sequence[str], timeout: float = 60.0) -> RunResult:
    """Download ``urls`` once the way ``mode`` says, in this process."""
    if mode.kind == "thread per page":
        return fetch_thread_per_page(urls, timeout)
    if mode.kind == "thread pool":
        return fetch_thread_pool(urls, mode.bound or 1, timeout)
    return asyncio.run(fetch_asyncio(urls, mode.bound or 1, timeout))


def modes_for(small: int, large: int) -> list[Mode]:
    """The four ways compared: one thread per page, a pool of ``small``, asyncio with ``small`` and ``large``."""
    return [Mode("thread per page"), Mode("thread pool", small), Mode("asyncio", small), Mode("asyncio", large)]


# -- memory ---------------------------------------------------------------------------


def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """The most resident memory this process has used so far, in bytes.

    ``ru_maxrss`` from :func:`resource.getrusage` (kilobytes on Linux, bytes
    on macOS); on Windows, psutil's peak working set.
    """
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return int(getattr(psutil.Process().memory_info(), "peak_wset", _rss_bytes()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# -- a measuring process per mode ---------------------------------------------------------


def _measure_in_child(conn: multiprocessing.connection.Connection, mode: Mode, open_files: int) -> None:
    """Wait for ("run", urls, timeout) commands, answer each with a RunResult; "rss" with memory."""
    raise_open_file_limit(open_files)
    import aiohttp  # noqa: F401  (imported before the idle memory is read, in every mode)
    import requests  # noqa: F401

    idle = _rss_bytes()
    conn.send(os.getpid())
    try:
        while True:
            command = conn.recv()
            if command[0] == "run":
                conn.send(run_mode(mode, command[1], command[2]))
            elif command[0] == "rss":
                conn.send((idle, peak_rss_bytes()))
            else:
                return
    except EOFError:
        return
    finally:
        conn.close()


class _Client:
    """A process that downloads the pages one way, on command."""

    def __init__(self, mode: Mode, context: multiprocessing.context.BaseContext) -> None:
        self.mode = mode
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_measure_in_child, args=(child, mode, OPEN_FILES), name=f"client: {mode.label}", daemon=True
        )
        self.process.start()
        child.close()
        if not self.conn.poll(60):
            self.close()
            raise RuntimeError(f"the measuring process for {mode.label} did not start")
        self.pid = self.conn.recv()

    def ask(self, *command: Any) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def close(self) -> None:
        try:
            self.conn.send(("stop",))
        except OSError:
            pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        self.conn.close()


# -- the comparison -------------------------------------------------------------------------


@dataclass(frozen=True)
class LabConfig:
    """What :func:`compare` measures. Build one with :func:`make_config`.

    Attributes:
        pages: pages to download in each run.
        latency: seconds the server waits before each answer.
        page_size: bytes per page.
        small: the bound of the thread pool and of the first asyncio run.
        large: the bound of the second asyncio run (all the pages: 1,000).
        repeats: measured runs per mode (the median is reported).
        warmup: unmeasured runs per mode before them.
        timeout: seconds each request may take.
        quick: whether these are the quick-mode sizes.
    """

    pages: int = 1000
    latency: float = 0.1
    page_size: int = 2048
    small: int = 50
    large: int = 1000
    repeats: int = 5
    warmup: int = 1
    timeout: float = 60.0
    quick: bool = False

    def __post_init__(self) -> None:
        if min(self.pages, self.small, self.large, self.repeats) < 1 or self.warmup < 0:
            raise ValueError("pages, small, large and repeats must be >= 1, warmup >= 0")
        if self.latency < 0 or self.timeout <= 0:
            raise ValueError("latency must be >= 0 and timeout > 0 seconds")

    @property
    def modes(self) -> list[Mode]:
        """The four ways compared."""
        return modes_for(self.small, self.large)

    def describe(self) -> str:
        """One line that says what is measured."""
        mode = "quick mode" if self.quick else "full mode"
        return (
            f"{mode}: {self.pages:,} pages of {self.page_size:,} bytes, {self.latency * 1000:.0f} ms latency "
            f"each; median of {self.repeats} runs after {self.warmup} warm-up run(s) per way"
        )


def make_config(quick: bool | None = None, **overrides: Any) -> LabConfig:
    """Full size (1,000 pages, 100 ms, bounds 50 and 1,000, 5 repeats) or quick, with overrides.

    Quick: 100 pages at 20 ms, bounds 10 and 100, 3 repeats after 1 warm-up.
    """
    quick = quick_mode() if quick is None else quick
    base = LabConfig(pages=100, latency=0.02, small=10, large=100, repeats=3, quick=True) if quick else LabConfig()
    return dataclasses.replace(base, **overrides)


@dataclass(frozen=True)
class Point:
    """The measurements of one way of downloading (one row of the table).

    Attributes:
        mode: the way, with its label.
        pages, latency_s: the workload.
        times: every measured run, in seconds.
        median_s: their median.
        peak_rss_mb: the measuring process's peak resident memory, in MiB.
        rss_growth_mb: how far that peak rose above the idle process (all
            libraries imported, before the first run), in MiB.
        threads: the most threads alive in the measuring process when a request started.
        peak_in_flight: the most requests the server handled at once, over all runs.
        failed_requests: requests, over all runs, without a 200 answer.
        extra_connections: connections the server accepted beyond one per request.
        listen_drops: connections the kernel dropped at a full listen queue during the runs.
        syn_retries: connection attempts the kernel sent again during the runs.
        cores: cores this process may use.
    """

    mode: Mode
    pages: int
    latency_s: float
    times: tuple[float, ...]
    median_s: float
    peak_rss_mb: float
    rss_growth_mb: float
    threads: int
    peak_in_flight: int
    failed_requests: int
    extra_connections: int
    listen_drops: int | None
    syn_retries: int | None
    cores: int

    @property
    def spread_s(self) -> float:
        """Slowest minus fastest run, in seconds."""
        return max(self.times) - min(self.times)

    @property
    def repeats(self) -> int:
        """How many runs the median is of."""
        return len(self.times)

    @property
    def lost(self) -> int:
        """Everything that went wrong: failed requests, extra connections, drops, SYN retries."""
        return self.failed_requests + self.extra_connections + (self.listen_drops or 0) + (self.syn_retries or 0)

    def csv_row(self) -> dict[str, str]:
        """The CSV columns (:data:`COLUMNS`) as text."""
        return {
            "mode": self.mode.label,
            "kind": self.mode.kind,
            "bound": "" if self.mode.bound is None else str(self.mode.bound),
            "pages": str(self.pages),
            "latency_s": f"{self.latency_s:g}",
            "median_s": f"{self.median_s:.4f}",
            "spread_s": f"{self.spread_s:.4f}",
            "repeats": str(self.repeats),
            "peak_rss_mb": f"{self.peak_rss_mb:.1f}",
            "rss_growth_mb": f"{self.rss_growth_mb:.1f}",
            "threads": str(self.threads),
            "peak_in_flight": str(self.peak_in_flight),
            "failed_requests": str(self.failed_requests),
            "extra_connections": str(self.extra_connections),
            "listen_drops": "" if self.listen_drops is None else str(self.listen_drops),
            "syn_retries": "" if self.syn_retries is None else str(self.syn_retries),
            "cores": str(self.cores),
        }


def _drops() -> dict[str, int] | None:
    return tcp_drop_counters()


def compare(
    config: LabConfig | None = None, *, modes: Sequence[Mode] | None = None, progress: bool = True
) -> list[Point]:
    """Measure every way of downloading (``config.modes`` unless ``modes``); one :class:`Point` each.

    Starts the page server (asyncio mode) in a process of its own and one
    measuring process per way, then runs ``warmup + repeats`` rounds; each
    round downloads all the pages once per way, one way after another.

    Raises:
        RuntimeError: if a measuring process does not start.
    """
    config = make_config() if config is None else config
    modes = list(config.modes if modes is None else modes)
    raise_open_file_limit(OPEN_FILES)
    context = multiprocessing.get_context()
    rounds = config.warmup + config.repeats
    times: dict[Mode, list[float]] = {m: [] for m in modes}
    peaks = dict.fromkeys(modes, 0)
    threads = dict.fromkeys(modes, 0)
    failed = dict.fromkeys(modes, 0)
    extra = dict.fromkeys(modes, 0)
    drops: dict[Mode, int | None] = dict.fromkeys(modes, 0)
    retries: dict[Mode, int | None] = dict.fromkeys(modes, 0)
    memory: dict[Mode, tuple[int, int]] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=rounds * len(modes), desc="runs", unit="run", file=sys.stdout, ncols=90, mininterval=0.5)
    with PageServerProcess(
        pages=config.pages, page_size=config.page_size, latency=config.latency, mode="asyncio"
    ) as server:
        urls = server.page_urls
        clients = []
        try:
            for mode in modes:
                clients.append(_Client(mode, context))
            for round_ in range(rounds):
                for client in clients:
                    mode = client.mode
                    server.reset_stats()
                    before = _drops()
                    result: RunResult = client.ask("run", urls, config.timeout)
                    after = _drops()
                    stats = server.stats()
                    if round_ >= config.warmup:
                        times[mode].append(result.elapsed)
                    peaks[mode] = max(peaks[mode], stats["peak_in_flight"])
                    threads[mode] = max(threads[mode], result.threads)
                    failed[mode] += result.failed
                    extra[mode] += stats["connections"] - stats["requests"] + abs(stats["requests"] - len(urls))
                    if before is None or after is None:
                        drops[mode] = retries[mode] = None
                    else:
                        drops[mode] = (drops[mode] or 0) + max(
                            after["ListenDrops"] - before["ListenDrops"],
                            after["ListenOverflows"] - before["ListenOverflows"],
                        )
                        retries[mode] = (retries[mode] or 0) + after["TCPSynRetrans"] - before["TCPSynRetrans"]
                    if bar is not None:
                        bar.set_postfix_str(mode.label, refresh=False)
                        bar.update(1)
            for client in clients:
                memory[client.mode] = client.ask("rss")
        finally:
            for client in clients:
                client.close()
            if bar is not None:
                bar.close()
    mib = 1024 * 1024
    points = []
    for mode in modes:
        timing = summarize(times[mode])
        idle, peak = memory[mode]
        points.append(
            Point(
                mode=mode,
                pages=config.pages,
                latency_s=config.latency,
                times=timing.times,
                median_s=timing.median,
                peak_rss_mb=peak / mib,
                rss_growth_mb=max(0, peak - idle) / mib,
                threads=threads[mode],
                peak_in_flight=peaks[mode],
                failed_requests=failed[mode],
                extra_connections=extra[mode],
                listen_drops=drops[mode],
                syn_retries=retries[mode],
                cores=cpu_count(),
            )
        )
    return points


# -- results -----------------------------------------------------------------------------------


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def table(points: Iterable[Point]) -> str:
    """A Markdown table: time, memory, threads, peak in flight, and what was lost."""
    lines = [
        "| way | wall time (median) | spread | peak RSS | RSS growth | threads | peak in flight "
        "| failed | extra connections | listen drops | SYN retries |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        lines.append(
            f"| {p.mode.label} | {p.median_s:.3f} s | {p.spread_s:.3f} s | {p.peak_rss_mb:.0f} MiB "
            f"| {p.rss_growth_mb:.1f} MiB | {p.threads:,} | {p.peak_in_flight:,} | {p.failed_requests} "
            f"| {p.extra_connections} | {_count(p.listen_drops)} | {_count(p.syn_retries)} |"
        )
    return "\n".join(lines)


def write_csv(points: Iterable[Point], path: str | os.PathLike[str]) -> Path:
    """Write the points as a CSV with :data:`COLUMNS`; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for p in points:
            writer.writerow(p.csv_row())
    return path


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a CSV written by :func:`write_csv`.

    Raises:
        ValueError: if the columns are not :data:`COLUMNS`.
    """
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames}, expected {list(COLUMNS)}")
        return list(reader)


_COLORS = {"thread per page": "#d62728", "thread pool": "#1f77b4", "asyncio": "#2ca02c"}


def plot(points: Sequence[Point], machine: str | None = None) -> Any:
    """Four bar charts side by side: wall time, RSS growth, threads, peak in flight at the server.

    Returns:
        The matplotlib figure.
    """
    from .charts import pyplot

    plt = pyplot()  # with the off-screen backend outside a notebook

    labels = [textwrap.fill(p.mode.label, 12) for p in points]
    colors = [_COLORS[p.mode.kind] for p in points]
    panels = [
        ("wall time (s, median)", [p.median_s for p in points], "{:.2f}"),
        ("peak RSS above the idle process (MiB)", [p.rss_growth_mb for p in points], "{:.1f}"),
        ("threads in the client", [p.threads for p in points], "{:,}"),
        ("peak requests in flight at the server", [p.peak_in_flight for p in points], "{:,}"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.2))
    for ax, (title, values, fmt) in zip(axes, panels):
        bars = ax.bar(range(len(points)), values, color=colors)
        ax.bar_label(bars, [fmt.format(v) for v in values], fontsize=8, padding=2)
        ax.set_xticks(range(len(points)), labels, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, max(values + [1e-9]) * 1.18)
        ax.grid(axis="y", alpha=0.3)
    first = points[0] if points else None
    what = f"{first.pages:,} pages, {first.latency_s * 1000:.0f} ms latency each" if first else "no data"
    runs = "/".join(sorted({str(p.repeats) for p in points})) or "?"
    lost = sum(p.lost for p in points)
    fig.suptitle(
        f"Threads against asyncio: {what}; median of {runs} runs; "
        f"failed, dropped or retried connections: {lost}\n{machine or describe_machine()}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _load_line(when: str) -> str:
    if not hasattr(os, "getloadavg"):
        return f"load average {when}: unknown on this platform"
    return f"load average {when}: {os.getloadavg()[0]:.2f} (on {cpu_count()} cores)"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m concurrency_lab.asyncio_lab``: measure, print the table, write the CSV and chart.

    Writes ``asyncio.csv`` and ``asyncio.png`` into ``--out`` (default ``docs``).
    """
    from .machine import setup

    parser = argparse.ArgumentParser(prog="python -m concurrency_lab.asyncio_lab", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs", help="folder for asyncio.csv and asyncio.png (default: docs)")
    parser.add_argument("--quick", action="store_true", help="quick mode: 100 pages at 20 ms")
    parser.add_argument("--repeats", type=int, default=None, help="measured runs per way")
    args = parser.parse_args(argv)
    machine = setup()
    overrides = {} if args.repeats is None else {"repeats": args.repeats}
    config = make_config(quick=True if args.quick else None, **overrides)
    print(machine)
    print(config.describe())
    print(f"open files allowed (soft limit): {raise_open_file_limit(OPEN_FILES)}")
    print(_load_line("before"))
    points = compare(config)
    print(_load_line("after"))
    print(table(points))
    out = Path(args.out)
    write_csv(points, out / "asyncio.csv")
    plot(points, machine).savefig(out / "asyncio.png", dpi=110)
    print(f"wrote {out / 'asyncio.csv'} and {out / 'asyncio.png'}")
    return 0


# -- notebook 06's Task 4 pipeline, with asyncio ---------------------------------------------------


def slow_read(path: str | os.PathLike[str], latency: float = 0.02) -> str:
    """The text of a UTF-8 file, after waiting ``latency`` seconds like a remote store (blocking)."""
    time.sleep(latency)
    return Path(path).read_text(encoding="utf-8")


def analyze_text(text: str, rounds: int = 20) -> dict[str, Any]:
    """CPU-bound analysis, in pure Python: the word count and the 5 most common words.

    The counting is done ``rounds`` times so that it costs milliseconds, like
    the MinHash of notebook 06 (it holds the GIL the whole time).
    """
    words = text.lower().split()
    counts: Counter[str] = Counter()
    for _ in range(rounds):
        counts = Counter(words)
    return {"words": len(words), "top": counts.most_common(5)}


if __name__ == "__main__":
    sys.exit(main())
