"""Helpers for the grader tests: a drill course, the grader run the way instructors run it, its grades."""

from __future__ import annotations

import atexit
import csv
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import psutil
from hostile import Hostile, make_submission

from nbtools import ROOT, nbgrader

FIXTURE = Path(__file__).parent / "grader_course"


def _release_drill(course: Path, db_url: str = "") -> None:
    shutil.copytree(FIXTURE / "source", course / "source")
    shutil.copy(ROOT / "source" / "header.ipynb", course / "source" / "header.ipynb")
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    extra = [f"--CourseDirectory.db_url={db_url}"] if db_url else []
    done = nbgrader("generate_assignment", "drill", "--force", *extra, cwd=course)
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr


@functools.cache
def _released_drill() -> Path:
    """The drill released once per test process (its SQLite gradebook included), to copy from."""
    folder = Path(tempfile.mkdtemp(prefix="cl-drill-"))
    atexit.register(shutil.rmtree, folder, True)
    _release_drill(folder / "course")
    return folder / "course"


def drill_course(tmp_path: Path, entries: list[Hostile], db_url: str = "") -> Path:
    """The drill assignment in ``tmp_path/course``, released, with one submission per entry.

    ``db_url`` puts its gradebook elsewhere (PostgreSQL) instead of ``gradebook.db``.
    """
    course = tmp_path / "course"
    if db_url:
        _release_drill(course, db_url)
    else:
        shutil.copytree(_released_drill(), course)
    release = course / "release" / "drill" / "drill.ipynb"
    for entry in entries:
        make_submission(release, course / "submitted" / entry.name / "drill", entry)
    return course


def grader_command(*args: str) -> list[str]:
    """The grader's command line for the drill: 6 s per cell, 64 processes per kernel."""
    return [
        sys.executable,
        "-m",
        "concurrency_lab.grading",
        "--assignment",
        "drill",
        "--timeout",
        "6",
        "--max-pids",
        "64",
        *args,
    ]


def run_grader(course: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        grader_command(*args),
        cwd=course,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def grades(course: Path) -> dict[str, float]:
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}


def processes_in(folder: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
        try:
            if proc.pid != os.getpid() and proc.info["cwd"] and proc.info["cwd"].startswith(str(folder)):
                found.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:80]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def course_from(tmp_path: Path, assignment: str, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    """A course whose one assignment holds ``notebooks`` (name: source notebook), released."""
    course = tmp_path / "course"
    (course / "source" / assignment).mkdir(parents=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, course / "source" / assignment / name)
    shutil.copy(ROOT / "source" / "header.ipynb", course / "source" / "header.ipynb")
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    done = nbgrader("generate_assignment", assignment, "--force", cwd=course)
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr
    return course
