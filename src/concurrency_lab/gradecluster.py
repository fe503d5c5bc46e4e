"""Grading on a Dask distributed cluster, and finding the processes a student's kernels started.

A grading worker may be a process of its own (``--jobs``) or a Dask worker
(``--dask ADDRESS``). A Dask worker has processes of its own that grading
must never touch, so the clean-up after each student kills only what the
student's kernels started: a process is the student's when

* it carries the kernel marker (``CONCURRENCY_LAB_GRADED_KERNEL`` in the
  environment it started with: the grader's kernelspec sets it, and every
  process a kernel starts inherits it),
* it descends from such a process,
* it is in the worker's pids cgroup (only kernels join it), or
* it was adopted by the worker (a child subreaper) while this student was
  graded: a double-forked process whose parent died, even one that emptied
  its environment. Kernels start in sessions of their own, so everything a
  kernel starts is outside the worker's session; the worker's own children
  are inside it.

Everything else under the worker, such as the Dask worker's own children, is
left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MARKER_ENV",
    "DaskCluster",
    "GraderPlugin",
    "dask_cluster",
    "dask_executor",
    "children_now",
    "kill_student_processes",
    "student_processes",
]

MARKER_ENV = "CONCURRENCY_LAB_GRADED_KERNEL"


def _marked(proc: Any) -> bool:
    import psutil

    try:
        return proc.environ().get(MARKER_ENV) == "1"
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return False
    except psutil.NoSuchProcess:
        return False


def children_now() -> frozenset[tuple[int, float]]:
    """This process's children as (pid, start time): call it when a student's grading begins."""
    import psutil

    found = set()
    for proc in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess):
            found.add((proc.pid, proc.create_time()))
    return frozenset(found)


def student_processes(before: frozenset[tuple[int, float]], cgroup: Path | None = None) -> dict[int, Any]:
    """The processes under this one (and in ``cgroup``) that a student's kernel started.

    Args:
        before: :func:`children_now` when this student's grading began; a
            child not in it, outside this process's session, was adopted.
        cgroup: the worker's pids cgroup, whose members are all kernels' processes.
    """
    import psutil

    me = psutil.Process()
    found: dict[int, psutil.Process] = {}
    descendants = {}
    for proc in me.children(recursive=True):
        descendants[proc.pid] = proc
    parents: dict[int, int] = {}
    for pid, proc in descendants.items():
        try:
            parents[pid] = proc.ppid()
        except psutil.NoSuchProcess:
            continue
    direct = {pid for pid, parent in parents.items() if parent == me.pid}
    session = os.getsid(0)
    owned: set[int] = set()
    for pid, proc in descendants.items():
        if pid not in parents:
            continue
        if _marked(proc):
            owned.add(pid)
        elif pid in direct:
            try:  # adopted while this student was graded, from outside the worker's session
                if (pid, proc.create_time()) not in before and os.getsid(pid) != session:
                    owned.add(pid)
            except (psutil.NoSuchProcess, ProcessLookupError):
                continue
    for pid in parents:  # everything below an owned process is owned too
        chain, cursor = [], pid
        while cursor in parents and cursor not in owned and cursor != me.pid:
            chain.append(cursor)
            cursor = parents[cursor]
        if cursor in owned:
            owned.update(chain)
    found.update({pid: descendants[pid] for pid in owned})
    if cgroup is not None and (cgroup / "cgroup.procs").exists():
        for text in (cgroup / "cgroup.procs").read_text().split():
            with contextlib.suppress(psutil.NoSuchProcess):
                found.setdefault(int(text), psutil.Process(int(text)))
    found.pop(me.pid, None)
    return found


def kill_student_processes(before: frozenset[tuple[int, float]], cgroup: Path | None = None) -> int:
    """SIGKILL every process :func:`student_processes` finds, until none is left; return the count."""
    import psutil

    victims: dict[int, psutil.Process] = {}
    for _ in range(5):  # forks may race the kill: sweep until nothing is left
        found = student_processes(before, cgroup)
        if not found:
            break
        for proc in found.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        psutil.wait_procs(list(found.values()), timeout=5)  # reaps our own (and adopted) children
        victims.update(found)
    return len(victims)


try:  # Dask is optional for grading on one machine
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover (dask is pinned in requirements.txt)
    WorkerPlugin = object  # type: ignore[misc,assignment]


class GraderPlugin(WorkerPlugin):
    """Prepares each Dask worker for grading, including workers that join later.

    It installs the grader's kernelspec, makes the worker a child subreaper,
    creates its pids cgroup (or RLIMIT_NPROC for kernels when not root) and
    sets the kernels' memory limit: what a ``--jobs`` worker does when it starts.
    """

    name = "concurrency-lab-grader"

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def setup(self, worker: Any = None) -> None:  # noqa: D102 (Dask's)
        from .grader import _setup_worker

        _setup_worker(self.settings)


@contextlib.contextmanager
def dask_executor(address: str, settings: Any, timeout: float = 60) -> Iterator[Executor]:
    """A :class:`concurrent.futures.Executor` on the Dask cluster at ``address``, its workers set up.

    A task whose worker dies is run again on another worker (Dask's
    ``distributed.scheduler.allowed-failures``, 3 by default).
    """
    from distributed import Client

    with Client(address, timeout=timeout) as client:
        client.register_plugin(GraderPlugin(settings))
        yield client.get_executor(pure=False)


def worker_id() -> str:
    """Which worker process graded a student: ``host:pid``."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class DaskCluster:
    """A ``dask scheduler`` and its ``dask worker`` processes, each in its own process group."""

    folder: Path
    address: str = ""
    scheduler: subprocess.Popen | None = None
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_worker(self, name: str, env: dict[str, str], cwd: Path) -> None:
        """Start ``dask worker`` (one process, one thread) and wait until the scheduler sees it."""
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 (kept open while it runs)
        self.workers[name] = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dask"),
                "worker",
                self.address,
                "--name",
                name,
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--local-directory",
                str(self.folder / name),
                "--death-timeout",
                "60",
            ],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker's whole process group (its nanny, itself, everything it started)."""
        proc = self.workers[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"gave up waiting {seconds:g} s for {what}")


@contextlib.contextmanager
def dask_cluster(workers: int, cwd: Path, env: dict[str, str] | None = None) -> Iterator[DaskCluster]:
    """A ``dask scheduler`` on 127.0.0.1 and ``workers`` ``dask worker`` processes named w0, w1, ...

    Each worker has one thread: it grades one student at a time. Everything is
    stopped afterwards.
    """
    env = {
        **os.environ,
        **(env or {}),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    folder = Path(tempfile.mkdtemp(prefix="cl-dask-"))
    cluster = DaskCluster(folder)
    info = folder / "scheduler.json"
    try:
        log = open(folder / "scheduler.log", "w")  # noqa: SIM115
        cluster.scheduler = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(info),
            ],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _wait_for(info.exists, 60, "the Dask scheduler to start")
        _wait_for(lambda: bool(info.read_text().strip()), 10, "the scheduler file")
        cluster.address = json.loads(info.read_text())["address"]
        for i in range(workers):
            cluster.start_worker(f"w{i}", env, cwd)
        from distributed import Client

        with Client(cluster.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield cluster
    finally:
        for name in list(cluster.workers):
            cluster.kill_worker(name)
        if cluster.scheduler is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cluster.scheduler.pid, signal.SIGKILL)
            cluster.scheduler.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
