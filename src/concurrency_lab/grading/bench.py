"""Time grading a class three ways: plain sequential ``nbgrader autograde``, ``--jobs N``, Dask.

``python -m concurrency_lab.grading.bench --students 20 --jobs 2`` copies the
course into a temporary folder, makes ``--students`` solved submissions of the
assignment and grades them, in one run, with

* ``nbgrader autograde`` (one process, one student after another),
* ``python -m concurrency_lab.grading --jobs N``,
* ``python -m concurrency_lab.grading --dask ADDRESS`` on a Dask cluster of
  ``N`` worker processes started here (``dask scheduler``, ``dask worker``),

checks that all gave the same grades, and prints each time
(``time.perf_counter``, median of ``--repeats`` runs) as a ratio to the
sequential run, with the machine line and the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from ..machine import describe_machine
from .cluster import dask_cluster
from .settings import WORK, default
from .staging import fill_answers, solutions

__all__ = ["main", "make_class"]


def make_class(course: Path, assignment: str, students: int) -> list[str]:
    """Write ``students`` solved submissions into ``course/submitted``; return their ids."""
    names = [f"student{i:02d}" for i in range(1, students + 1)]
    release = course / "release" / assignment
    for name in names:
        folder = course / "submitted" / name / assignment
        folder.mkdir(parents=True)
        for release_nb in sorted(release.glob("*.ipynb")):
            answers = solutions(nbformat.read(course / "source" / assignment / release_nb.name, as_version=4))
            solved = fill_answers(nbformat.read(release_nb, as_version=4), answers)
            nbformat.write(solved, folder / release_nb.name)
    return names


def _run(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def _grades(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {s.student.id: float(s.score) for s in gradebook.find_assignment(assignment).submissions}


def _reset(course: Path) -> None:
    for name in ("autograded", WORK):
        shutil.rmtree(course / name, ignore_errors=True)


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the comparison."""
    parser = argparse.ArgumentParser(prog="python -m concurrency_lab.grading.bench")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--assignment", default=default("assignment"))
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2, help="grader workers, and Dask workers")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    bin_dir = Path(sys.executable).parent
    grader = [sys.executable, "-m", "concurrency_lab.grading", "--assignment", args.assignment, "--force"]
    times: dict[str, list[float]] = {"plain": [], "jobs": [], "dask": []}
    grades: list[dict[str, float]] = []
    load_before = _load()
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        for name in ("source", "release"):
            shutil.copytree(args.root / name, course / name)
        shutil.copy(args.root / "nbgrader_config.py", course)
        _run([str(bin_dir / "nbgrader"), "generate_assignment", args.assignment, "--force"], course)
        make_class(course, args.assignment, args.students)
        with dask_cluster(args.jobs, cwd=course) as cluster:  # started before the clock, like a pool
            for _ in range(args.repeats):
                runs = {
                    "plain": [str(bin_dir / "nbgrader"), "autograde", args.assignment, "--force"],
                    "jobs": [*grader, "--jobs", str(args.jobs), "--no-feedback"],
                    "dask": [*grader, "--dask", cluster.address, "--no-feedback"],
                }
                for way, cmd in runs.items():
                    _reset(course)
                    times[way].append(_run(cmd, course))
                    grades.append(_grades(course, args.assignment))
    same = all(g == grades[0] for g in grades)
    median = {way: statistics.median(t) for way, t in times.items()}
    print(describe_machine())
    print(
        f"{args.students} solved submissions of {args.assignment}, median of {args.repeats} run(s) of each; "
        f"load average {load_before:.2f} before, {_load():.2f} after"
    )
    labels = {
        "plain": "nbgrader autograde (sequential)",
        "jobs": f"grader --jobs {args.jobs}",
        "dask": f"grader on Dask, {args.jobs} workers",
    }
    for way, label in labels.items():
        print(f"  {label:<34} {median[way]:7.1f} s  {median['plain'] / median[way]:5.2f}x")
    print(f"identical grades: {same}")
    if not same:
        ways = [way for _ in range(args.repeats) for way in times]
        for student in sorted(grades[0]):
            scores = ", ".join(f"{way} {g.get(student)}" for way, g in zip(ways, grades))
            print(f"  {student}: {scores}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
