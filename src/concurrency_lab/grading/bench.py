"""Time grading a class: plain sequential ``nbgrader autograde`` against the grader.

``python -m concurrency_lab.grading.bench --students 20 --jobs 2`` copies the
course into a temporary folder, makes ``--students`` solved submissions of the
assignment, grades them once with ``nbgrader autograde`` (one process, one
student after another) and once with ``python -m concurrency_lab.grading
--jobs N``, checks that both gave the same grades, and prints both times
(``time.perf_counter``, median of ``--repeats`` runs) with the machine line.
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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the comparison."""
    parser = argparse.ArgumentParser(prog="python -m concurrency_lab.grading.bench")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--assignment", default=default("assignment"))
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        for name in ("source", "release"):
            shutil.copytree(args.root / name, course / name)
        shutil.copy(args.root / "nbgrader_config.py", course)
        _run([str(bin_dir / "nbgrader"), "generate_assignment", args.assignment, "--force"], course)
        make_class(course, args.assignment, args.students)
        plain, ours, grades = [], [], []
        for _ in range(args.repeats):
            _reset(course)
            plain.append(_run([str(bin_dir / "nbgrader"), "autograde", args.assignment, "--force"], course))
            grades.append(_grades(course, args.assignment))
            _reset(course)
            ours.append(
                _run(
                    [
                        sys.executable,
                        "-m",
                        "concurrency_lab.grading",
                        "--assignment",
                        args.assignment,
                        "--jobs",
                        str(args.jobs),
                        "--force",
                        "--no-feedback",
                    ],
                    course,
                )
            )
            grades.append(_grades(course, args.assignment))
    same = all(g == grades[0] for g in grades)
    t_plain, t_ours = statistics.median(plain), statistics.median(ours)
    print(describe_machine())
    print(f"{args.students} submissions of {args.assignment}, median of {args.repeats} run(s):")
    print(f"  nbgrader autograde (sequential): {t_plain:7.1f} s")
    print(f"  grader --jobs {args.jobs}:               {t_ours:7.1f} s")
    print(f"  speedup: {t_plain / t_ours:.2f}x; identical grades: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
