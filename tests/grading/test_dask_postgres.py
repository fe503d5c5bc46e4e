"""Grading on a real Dask cluster (a scheduler and two worker processes) with a real PostgreSQL gradebook.

The grades must be exactly those of a sequential run on SQLite, a worker killed
mid-run must lose nothing, and the clean-up after each student must spare the
Dask workers' own processes.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from cluster import dask_cluster, postgres_bindir, postgres_server
from distributed import Client
from gradertools import drill_course, grader_command
from hostile import CORPUS

# Six students, hostile ones included: a timeout, a dead kernel, a segfault, a fork bomb, a renamed notebook.
STUDENTS = ["correct", "infinite_loop", "os_exit", "segfault", "fork_bomb", "renamed_notebook"]
# The rows nbgrader writes for each graded student, table by table.
TABLES = ["student", "submitted_assignment", "submitted_notebook", "grade", "comment"]

if postgres_bindir() is None:
    if os.environ.get("CI"):
        raise RuntimeError("PostgreSQL's server is missing: .ci/run installs Debian's postgresql package")
    pytest.skip("PostgreSQL's server is not installed (apt-get install postgresql)", allow_module_level=True)


def _course(tmp_path: Path, students: list[str], db_url: str = "") -> Path:
    return drill_course(tmp_path, [e for e in CORPUS if e.name in students], db_url)


def _grader(course: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        grader_command(*args),
        cwd=course,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: int = 240) -> str:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    return out


def _exported(course: Path) -> dict[str, float]:
    """The scores in grades.csv (nbgrader export)."""
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}


def _scores(url: str) -> dict[str, float]:
    """The scores in a gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(url) as gradebook:
        return {s.student.id: float(s.score) for s in gradebook.find_assignment("drill").submissions}


def _results(course: Path) -> dict[str, dict]:
    state = course / ".grader" / "state" / "drill"
    return {p.stem: json.loads(p.read_text())["result"] for p in state.glob("*.json")}


def _row_counts_sqlite(course: Path) -> dict[str, int]:
    with sqlite3.connect(course / "gradebook.db") as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _row_counts_postgres(pg, database: str) -> dict[str, int]:
    return {t: pg.query(database, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}


def _kill_leftovers(folder: Path) -> None:
    for proc in psutil.process_iter(["cwd"]):
        try:
            if proc.pid != os.getpid() and (proc.info["cwd"] or "").startswith(str(folder)):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


class Reference:
    """The same students graded one after another on SQLite, started at once and awaited when needed."""

    def __init__(self, course: Path) -> None:
        self.course = course
        self.proc = _grader(course, "--jobs", "1", "--no-feedback")
        self.done = False

    def wait(self) -> Path:
        if not self.done:
            _finish(self.proc)
            self.done = True
        return self.course

    def scores(self) -> dict[str, float]:
        return _scores(f"sqlite:///{self.wait() / 'gradebook.db'}")

    def rows(self) -> dict[str, int]:
        return _row_counts_sqlite(self.wait())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers, shared by the tests (the last one kills a worker)."""
    with dask_cluster(2, cwd=tmp_path_factory.mktemp("dask")) as running:
        yield running


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The reference run, on SQLite, in the background while the cluster grades."""
    reference = Reference(_course(tmp_path_factory.mktemp("sequential"), STUDENTS))
    yield reference
    if reference.proc.poll() is None:
        os.killpg(reference.proc.pid, signal.SIGKILL)
        reference.proc.wait()
    _kill_leftovers(reference.course)


def test_dask_and_postgres_give_the_sequential_grades(tmp_path, pg, cluster, sequential):
    """Six students on two Dask workers and PostgreSQL: the grades and rows of a sequential SQLite run."""
    url = pg.create_database("same_grades")
    course = _course(tmp_path, STUDENTS, url)
    try:
        with Client(cluster.address) as client:  # a child of each worker's own, as Dask's would be
            own = client.run(os.spawnlp, os.P_NOWAIT, "sleep", "sleep", "600")
        out = _finish(_grader(course, "--dask", cluster.address, "--db-url", url))
        assert "on the Dask cluster" in out, out
        # The workers and their own processes outlived the clean-up after every student.
        assert all(proc.poll() is None for proc in cluster.workers.values())
        for address, pid in own.items():
            assert psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE, address
        graded_by = {r["worker"] for r in _results(course).values()}
        assert len(graded_by) == 2, f"both workers should have graded: {graded_by}"
        assert _scores(url) == sequential.scores()
        assert _scores(url) == {e.name: float(e.expected) for e in CORPUS if e.name in STUDENTS}
        assert _exported(course) == _scores(url), "feedback and export read the PostgreSQL gradebook"
        assert _row_counts_postgres(pg, "same_grades") == sequential.rows()
        assert not (course / "gradebook.db").exists(), "the grader wrote a SQLite gradebook too"
    finally:
        _kill_leftovers(course)


def test_a_worker_killed_mid_run_loses_nothing(tmp_path, pg, cluster, sequential):
    """Kill a Dask worker while it grades: its student is graded by the other, each row written once."""
    url = pg.create_database("worker_dies")
    course = _course(tmp_path, STUDENTS, url)
    try:
        nanny = psutil.Process(cluster.workers["w0"].pid)
        grader = _grader(course, "--dask", cluster.address, "--db-url", url, "--no-feedback")
        # Wait until w0 runs a student's kernel (its cwd names the student), then kill w0 for good.
        victim, deadline = None, time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and grader.poll() is None:
            for proc in nanny.children(recursive=True):
                try:
                    if "ipykernel_launcher" in " ".join(proc.cmdline()):
                        victim = Path(proc.cwd()).parent.name
                        worker = proc.parent()
                        break
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.05)
        assert victim in STUDENTS, f"w0 never ran a kernel: {cluster.log('w0')[-2000:]}"
        dead = f"{worker.pid}"
        cluster.kill_worker("w0")
        _finish(grader)
        results = _results(course)
        assert sorted(results) == sorted(STUDENTS)
        assert all(r["status"] == "graded" for r in results.values()), results
        assert not results[victim]["worker"].endswith(f":{dead}"), "the killed worker cannot have finished"
        assert _scores(url) == sequential.scores()
        assert _row_counts_postgres(pg, "worker_dies") == sequential.rows()
    finally:
        _kill_leftovers(course)
