"""The grader's command line: grade, give feedback, export, summarise.

Usage (from the course root; ``make grade`` runs it)::

    python -m concurrency_lab.grading [--assignment day3] [--jobs N | --dask ADDRESS]
                                      [--db-url URL] [--force] [--timeout 60]
                                      [--memory-mb 4096] [--max-pids 512]
                                      [--zip-collect] [--student ID ...]

It grades every changed submission in ``submitted/`` (:mod:`.grader`), on
``--jobs`` worker processes here or on a Dask cluster (``--dask``,
:mod:`.cluster`), writes
each graded student's feedback (hidden tests stripped) and its zip for an LMS,
exports ``grades.csv`` (:mod:`.feedback`) and prints a summary table. The defaults come from
:class:`~.settings.GradeSettings`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..machine import cpu_count
from .feedback import export_grades, feedback_pages, write_feedback
from .grader import (
    StudentResult,
    check_assignment,
    grade_class,
    list_students,
    nbgrader_config,
    needs_grading,
    previous_result,
    run_nbgrader,
    summary_table,
)
from .settings import MIB, GradeSettings, default, help_text

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The command line's options; every grading default is read from :class:`GradeSettings`."""
    cli = argparse.ArgumentParser(
        prog="python -m concurrency_lab.grading",
        description="Grade a whole class with nbgrader, safely and in parallel.",
    )
    cli.add_argument("--root", type=Path, default=Path.cwd(), help="course folder")
    cli.add_argument(
        "--assignment", default=default("assignment"), help=help_text("assignment") + " (default: %(default)s)"
    )
    # More workers than cores does not pay: grading is mostly waiting, but every kernel
    # also computes, and CPU-bound hidden tests lose points when their kernel gets
    # less than half a core (measured in the README).
    cli.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("JOBS") or cpu_count()),
        help="worker processes on this machine ($JOBS if set, else the cores this process may use: %(default)s)",
    )
    cli.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="grade on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://10.0.0.5:8786) instead of --jobs",
    )
    cli.add_argument("--db-url", default=default("db_url"), help=help_text("db_url"))
    cli.add_argument("--force", action="store_true", help="grade everyone, changed or not")
    cli.add_argument("--student", action="append", help="grade only this student (repeatable)")
    cli.add_argument(
        "--timeout", type=int, default=default("timeout"), help=help_text("timeout") + " (default: %(default)s)"
    )
    cli.add_argument(
        "--memory-mb",
        type=int,
        default=default("memory_bytes") // MIB,
        help=help_text("memory_bytes").replace("in bytes", "in MiB") + " (default: %(default)s)",
    )
    cli.add_argument(
        "--max-pids", type=int, default=default("max_pids"), help=help_text("max_pids") + " (default: %(default)s)"
    )
    cli.add_argument(
        "--zip-collect",
        action="store_true",
        help="first import downloaded/<assignment>/archive/*.zip with nbgrader zip_collect",
    )
    cli.add_argument("--no-feedback", action="store_true", help="no feedback pages, zips or grades.csv (only grade)")
    cli.add_argument(
        "--no-overlap",
        action="store_true",
        help="do not " + help_text("overlap").replace("(saves", "(which saves"),
    )
    return cli


def main(argv: list[str] | None = None) -> int:
    """Grade, give feedback, export, summarise. Exit 1 if any grading failed, 2 if nothing was released."""
    cli = parser()
    args = cli.parse_args(argv)
    if args.jobs < 1:
        cli.error("--jobs must be at least 1")
    settings = GradeSettings(
        root=args.root.resolve(),
        assignment=args.assignment,
        timeout=args.timeout,
        memory_bytes=args.memory_mb * MIB,
        max_pids=args.max_pids,
        db_url=args.db_url,
        feedback=not args.no_feedback,
        overlap=not args.no_overlap,
    )
    if args.zip_collect:
        done = run_nbgrader(settings, "zip_collect", settings.assignment, "--force")
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            return 1
    problem = check_assignment(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    students = args.student or list_students(settings)
    if not students:
        print(f"nothing to grade: no student folders in {settings.root / 'submitted'}")
        return 0
    todo = [s for s in students if args.force or needs_grading(settings, s)]
    skipped = {s: previous_result(settings, s) for s in students if s not in todo}
    graded: dict[str, StudentResult] = {}
    if args.dask:
        from .cluster import connect

        with connect(args.dask, settings) as client:
            workers = len(client.scheduler_info(n_workers=-1)["workers"])
            print(
                f"grading {len(todo)} of {len(students)} submissions of {settings.assignment} "
                f"on the Dask cluster at {args.dask} ({workers} worker(s)); {len(skipped)} unchanged",
                flush=True,
            )
            if todo:
                graded = {r.student: r for r in grade_class(settings, todo, client.get_executor(pure=False))}
    else:
        print(
            f"grading {len(todo)} of {len(students)} submissions of {settings.assignment} "
            f"with {args.jobs} worker(s); {len(skipped)} unchanged",
            flush=True,
        )
        if todo:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(args.jobs, len(todo)), mp_context=context) as pool:
                graded = {r.student: r for r in grade_class(settings, todo, pool)}
    results = [graded.get(s) or skipped[s] for s in students]
    if settings.feedback:
        config = nbgrader_config(settings)
        # Graded students got their feedback in their worker; a skipped one whose pages are gone gets them here.
        for result in results:
            if result.status == "skipped" and not feedback_pages(settings, result.student):
                result.notes += write_feedback(settings, result.student, config)
        export_grades(settings, config)
    print()
    print(summary_table(results))
    return 1 if any(r.status == "error" for r in results) else 0
