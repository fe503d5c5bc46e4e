"""Grading on a Dask distributed cluster: each worker set up for grading, and a cluster to test on.

``python -m concurrency_lab.grading --dask tcp://SCHEDULER:8786`` connects to
a running cluster (:func:`connect`), registers :class:`GraderPlugin` (every
worker, including those that join later, sets itself up as a ``--jobs``
worker does) and grades each student as one Dask task. A task whose worker
dies is run again on another worker (Dask's
``distributed.scheduler.allowed-failures``, 3 by default); nbgrader's
gradebook keeps one row per student, notebook and cell, so nothing is
written twice. Workers must see the course folder at the same path (shared
storage) and share one gradebook (``db_url``, PostgreSQL).

:func:`dask_cluster` starts a real cluster on this machine, a ``dask
scheduler`` and ``dask worker`` processes, for the tests and ``make
grade-bench``.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distributed import Client
from distributed.diagnostics.plugin import WorkerPlugin

from .sandbox import setup_worker
from .settings import GradeSettings

__all__ = ["DaskCluster", "GraderPlugin", "connect", "dask_cluster"]


class GraderPlugin(WorkerPlugin):
    """Sets each Dask worker up for grading when it joins (:func:`~.sandbox.setup_worker`).

    The grader's kernelspec, the child subreaper, the pids cgroup (or
    RLIMIT_NPROC for kernels when not root) and the kernels' memory limit:
    what a ``--jobs`` worker does when it starts. The clean-up after each
    student runs in the task itself and spares the Dask worker's own processes.
    """

    name = "concurrency-lab-grader"

    def __init__(self, settings: GradeSettings) -> None:
        self.settings = settings

    def setup(self, worker: Any) -> None:
        """Runs in each worker: set it up for grading in ``settings.root``."""
        setup_worker(self.settings)


@contextlib.contextmanager
def connect(address: str, settings: GradeSettings, timeout: float = 60) -> Iterator[Client]:
    """A client of the Dask scheduler at ``address``, with :class:`GraderPlugin` on every worker.

    ``client.get_executor(pure=False)`` then grades on the cluster with
    :func:`~.grader.grade_class`.
    """
    with Client(address, timeout=timeout) as client:
        client.register_plugin(GraderPlugin(settings))
        yield client


@dataclass
class DaskCluster:
    """A ``dask scheduler`` and its ``dask worker`` processes, each in its own process group."""

    folder: Path
    address: str = ""
    scheduler: subprocess.Popen | None = None
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def launch(self, name: str, command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
        """Start ``dask <command>`` in a process group of its own, its output in ``<name>.log``."""
        with open(self.folder / f"{name}.log", "w") as log:
            return subprocess.Popen(
                [str(Path(sys.executable).parent / "dask"), *command],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_worker(self, name: str, env: dict[str, str], cwd: Path) -> None:
        """Start ``dask worker`` named ``name``: a nanny and one worker process with one thread."""
        self.workers[name] = self.launch(
            name,
            [
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
            cwd,
            env,
        )

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker's whole process group (its nanny, itself, everything it started)."""
        proc = self.workers[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
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
        cluster.scheduler = cluster.launch(
            "scheduler",
            ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
            folder,
            env,
        )
        _wait_for(info.exists, 60, "the Dask scheduler to start")
        _wait_for(lambda: bool(info.read_text().strip()), 10, "the scheduler file")
        cluster.address = json.loads(info.read_text())["address"]
        for i in range(workers):
            cluster.start_worker(f"w{i}", env, cwd)
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
