"""Grade a whole class with nbgrader, safely and in parallel.

Usage (from the course root; ``make grade`` runs it)::

    python -m concurrency_lab.grader [--assignment day3] [--jobs 2] [--force]
                                     [--timeout 60] [--memory-mb 4096] [--max-pids 512]
                                     [--zip-collect] [--student ID ...]

What it adds to ``nbgrader autograde``:

* **Never drops a submission.** Each student's files are staged in
  ``.grader/submitted/``: a notebook that is not valid JSON, or missing, is
  graded as the unanswered release copy (0 points), a renamed notebook is
  graded under its real name, and the student's own files are never touched.
  A dead or stuck kernel costs one cell: :class:`~concurrency_lab.grading.ResilientExecute`
  restarts it, replays what ran before, and carries on; the report names the cell.
* **Caps each kernel.** Kernels start through :mod:`concurrency_lab.sandbox`:
  a pids cgroup (``--max-pids``) or RLIMIT_NPROC, an address-space limit
  (``--memory-mb``), and nbgrader's per-cell timeout (``--timeout``). After
  each student every process the kernel left behind is killed: the worker is
  a child subreaper, so even double-forked and new-session children are found.
* **Grades in parallel** on any :class:`concurrent.futures.Executor`
  (``--jobs`` long-lived worker processes here; for a class that outgrows one
  machine, pass e.g. Dask's ``Client().get_executor()`` to :func:`grade_class`
  and point ``CourseDirectory.db_url`` at PostgreSQL). The grades are the same
  as a sequential run.
* **Re-runs safely.** A student whose submission has not changed since it was
  last graded is skipped (``--force`` grades everyone). State is written
  atomically after each student, so killing a run part-way and running it
  again finishes the job; SQLite's transactions keep ``gradebook.db`` whole.

Then it runs ``generate_feedback`` (hidden tests stripped) and ``export``
(``grades.csv``) and prints a summary table.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import multiprocessing
import multiprocessing.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

__all__ = [
    "GradeSettings",
    "StudentResult",
    "fingerprint",
    "grade_class",
    "grade_student",
    "main",
    "stage_submission",
]

KERNEL_NAME = "concurrency-lab-grader"
CGROUP_PREFIX = "concurrency-lab-grader-"
WORK = ".grader"


@dataclass(frozen=True)
class GradeSettings:
    """What to grade and how hard to cap it.

    Attributes:
        root: the course folder (holds nbgrader_config.py).
        assignment: the assignment id, such as ``day3``.
        timeout: seconds a cell may run before it is interrupted.
        memory_bytes: address-space limit per kernel process (0: none).
        max_pids: processes and threads a kernel may have in all (0: none).
    """

    root: Path
    assignment: str = "day3"
    timeout: int = 60
    memory_bytes: int = 4 * 1024**3
    max_pids: int = 512


@dataclass
class StudentResult:
    """How one student's submission was graded."""

    student: str
    status: str  # "graded", "skipped" or "error"
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------
# Staging: the student's files, made gradable, without touching the originals.


def fingerprint(folder: Path) -> str:
    """A SHA-256 over every file's relative path and bytes ("" if the folder is missing)."""
    digest = hashlib.sha256()
    if not folder.is_dir():
        return ""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _grade_ids(path: Path) -> set[str]:
    nb = nbformat.read(path, as_version=4)
    return {
        cell.metadata["nbgrader"]["grade_id"]
        for cell in nb.cells
        if "grade_id" in cell.get("metadata", {}).get("nbgrader", {})
    }


def stage_submission(settings: GradeSettings, student: str) -> list[str]:
    """Copy a submission to ``.grader/submitted/`` and make every notebook gradable.

    Returns:
        Notes for the report: malformed, missing and renamed notebooks.
    """
    root, assignment = settings.root, settings.assignment
    source = root / "submitted" / student / assignment
    staged = root / WORK / "submitted" / student / assignment
    if staged.exists():
        shutil.rmtree(staged)
    if source.is_dir():
        shutil.copytree(source, staged)
    else:
        staged.mkdir(parents=True)
    release = root / "release" / assignment
    expected = {p.name: p for p in sorted(release.glob("*.ipynb"))}
    notes: list[str] = []
    readable: dict[str, set[str]] = {}
    for path in sorted(staged.glob("*.ipynb")):
        try:
            ids = _grade_ids(path)
        except Exception as error:  # not JSON, not a notebook: grade as unanswered
            path.rename(path.with_name(path.name + ".malformed"))
            notes.append(f"{path.name} is not a valid notebook ({type(error).__name__}): 0 points")
            continue
        readable[path.name] = ids
    unknown = {name: ids for name, ids in readable.items() if name not in expected}
    for name, release_nb in expected.items():
        if name in readable and name not in unknown:
            continue
        wanted = _grade_ids(release_nb)
        best = max(unknown, key=lambda n: len(unknown[n] & wanted), default=None)
        if best is not None and wanted and len(unknown[best] & wanted) * 2 >= len(wanted):
            (staged / best).rename(staged / name)
            del unknown[best]
            notes.append(f"{best} graded as {name} (renamed)")
        elif name not in readable:
            shutil.copy(release_nb, staged / name)
            if not any(n.startswith(name) and n.endswith(".malformed") for n in os.listdir(staged)):
                notes.append(f"{name} is missing: 0 points")
    return notes


# --------------------------------------------------------------------------
# The worker side: one long-lived process grades many students.

_WORKER: dict[str, object] = {}


def _become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so none escapes the clean-up."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def _make_pids_cgroup(max_pids: int) -> Path | None:
    """A pids cgroup (v1 or v2) for this worker's kernels, or None where we may not make one."""
    if max_pids <= 0:
        return None
    for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
            continue
        if base == Path("/sys/fs/cgroup") and "pids" not in (base / "cgroup.controllers").read_text(
            errors="ignore"
        ):
            continue
        _remove_stale_cgroups(base)
        group = base / f"{CGROUP_PREFIX}{os.getpid()}"
        try:
            group.mkdir(exist_ok=True)
            (group / "pids.max").write_text(str(max_pids))
        except OSError:
            continue
        # Remove it when this worker exits normally (multiprocessing runs Finalize, not atexit).
        multiprocessing.util.Finalize(None, _remove_cgroup, args=(group,), exitpriority=10)
        return group
    return None


def _remove_cgroup(group: Path) -> None:
    try:
        group.rmdir()  # only succeeds when no process is left in it
    except OSError:
        pass


def _remove_stale_cgroups(base: Path) -> None:
    """Remove empty groups left by grader workers that were killed."""
    for group in base.glob(f"{CGROUP_PREFIX}*"):
        pid = group.name[len(CGROUP_PREFIX):]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove_cgroup(group)


def _setup_worker(settings: GradeSettings) -> None:
    if _WORKER.get("root") == str(settings.root):
        return
    _become_subreaper()
    work = settings.root / WORK
    spec = work / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-m", "concurrency_lab.sandbox", sys.executable,
                 "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.log_level=ERROR"],
        "display_name": "Concurrency Lab grader (limited)",
        "language": "python",
    }
    tmp = spec / f"kernel.json.{os.getpid()}"
    tmp.write_text(json.dumps(kernel, indent=1))
    os.replace(tmp, spec / "kernel.json")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(work), *filter(None, [os.environ.get("JUPYTER_PATH")])]
    )
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    group = _make_pids_cgroup(settings.max_pids)
    if group is not None:
        os.environ["CONCURRENCY_LAB_PIDS_CGROUP"] = str(group)
    elif settings.max_pids > 0 and os.getuid() != 0:
        os.environ["CONCURRENCY_LAB_MAX_PROCS"] = str(_own_process_count() + settings.max_pids)
    if settings.memory_bytes > 0:
        os.environ["CONCURRENCY_LAB_MEMORY_BYTES"] = str(settings.memory_bytes)
    _WORKER["root"] = str(settings.root)
    _WORKER["cgroup"] = group


def _own_process_count() -> int:
    import psutil

    uid = os.getuid()
    return sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid)


def kill_strays() -> int:
    """Kill every descendant of this process and everything in its pids cgroup; return the count."""
    import psutil

    victims: dict[int, psutil.Process] = {}
    for _ in range(5):  # forks may race the kill: sweep until nothing is left
        found = {p.pid: p for p in psutil.Process().children(recursive=True)}
        group = _WORKER.get("cgroup")
        if isinstance(group, Path) and (group / "cgroup.procs").exists():
            for pid in (group / "cgroup.procs").read_text().split():
                try:
                    found.setdefault(int(pid), psutil.Process(int(pid)))
                except psutil.NoSuchProcess:
                    pass
        found.pop(os.getpid(), None)
        if not found:
            break
        for proc in found.values():
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(list(found.values()), timeout=5)
        victims.update(found)
    return len(victims)


def _nbgrader_config(settings: GradeSettings):  # -> traitlets Config
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    from .grading import ResilientExecute

    config = Config()
    if (settings.root / "nbgrader_config.py").exists():
        config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(settings.root)).load_config())
    overrides = Config()
    overrides.CourseDirectory.root = str(settings.root)
    overrides.CourseDirectory.submitted_directory = f"{WORK}/submitted"
    overrides.Autograde.autograde_preprocessors = [
        ResilientExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]
    overrides.Execute.timeout = settings.timeout
    overrides.Execute.kernel_name = KERNEL_NAME
    config.merge(overrides)
    return config


def _state_path(settings: GradeSettings, student: str) -> Path:
    return settings.root / WORK / "state" / settings.assignment / f"{student}.json"


def _db_url(settings: GradeSettings, config) -> str:
    """The gradebook the nbgrader ``config`` names, by default the course's SQLite file."""
    return config.CourseDirectory.get("db_url") or f"sqlite:///{settings.root / 'gradebook.db'}"


def _scores(settings: GradeSettings, student: str, config) -> tuple[float, float]:
    from nbgrader.api import Gradebook

    with Gradebook(_db_url(settings, config)) as gradebook:
        submission = gradebook.find_submission(settings.assignment, student)
        return float(submission.score), float(submission.max_score)


def grade_student(settings: GradeSettings, student: str) -> StudentResult:
    """Stage, autograde and clean up after one student (runs in a worker process)."""
    from nbgrader.apps import NbGraderAPI

    start = time.perf_counter()
    _setup_worker(settings)
    notes = stage_submission(settings, student)
    events = settings.root / WORK / "events" / f"{student}.jsonl"
    events.parent.mkdir(parents=True, exist_ok=True)
    events.unlink(missing_ok=True)
    os.environ["CONCURRENCY_LAB_GRADER_EVENTS"] = str(events)
    config = _nbgrader_config(settings)
    api = NbGraderAPI(config=config)
    outcome = api.autograde(settings.assignment, student, force=True, create=True)
    killed = kill_strays()
    if events.exists():
        for line in events.read_text().splitlines():
            event = json.loads(line)
            cell = event.get("cell")
            where = event.get("grade_id") or ("start-up" if cell is None else f"cell {cell}")
            notes.append(f"{event.get('notebook')}: {where}: {event.get('reason')}")
    if killed:
        notes.append(f"killed {killed} process(es) left behind")
    if not outcome.get("success"):
        log = (outcome.get("error") or outcome.get("log") or "").strip().splitlines()
        notes.append("nbgrader failed: " + (log[-1] if log else "no log"))
        return StudentResult(student, "error", seconds=time.perf_counter() - start, notes=notes)
    score, max_score = _scores(settings, student, config)
    result = StudentResult(student, "graded", score, max_score, time.perf_counter() - start, notes)
    state = _state_path(settings, student)
    state.parent.mkdir(parents=True, exist_ok=True)
    record = {"fingerprint": fingerprint(settings.root / "submitted" / student / settings.assignment),
              "result": asdict(result)}
    tmp = state.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, state)  # atomic: a killed run leaves the old state or the new one
    return result


# --------------------------------------------------------------------------
# The instructor's side.


def list_students(settings: GradeSettings) -> list[str]:
    """Every student folder in ``submitted/`` (hidden folders excluded), sorted."""
    submitted = settings.root / "submitted"
    if not submitted.is_dir():
        return []
    return sorted(p.name for p in submitted.iterdir() if p.is_dir() and not p.name.startswith("."))


def needs_grading(settings: GradeSettings, student: str) -> bool:
    """True unless this exact submission was graded before and its result is on disk."""
    state = _state_path(settings, student)
    if not state.exists():
        return True
    try:
        record = json.loads(state.read_text())
    except ValueError:
        return True
    autograded = settings.root / "autograded" / student / settings.assignment
    current = fingerprint(settings.root / "submitted" / student / settings.assignment)
    return record.get("fingerprint") != current or not autograded.is_dir()


def previous_result(settings: GradeSettings, student: str) -> StudentResult:
    """The stored result of a student who is skipped this time."""
    record = json.loads(_state_path(settings, student).read_text())
    result = StudentResult(**record["result"])
    result.status = "skipped"
    return result


def grade_class(
    settings: GradeSettings,
    students: Sequence[str],
    executor: Executor,
    progress: bool = True,
) -> list[StudentResult]:
    """Grade ``students`` on ``executor``; results in the order given.

    Any :class:`concurrent.futures.Executor` works: a ``ProcessPoolExecutor``
    here, or a cluster engine's executor for a large class.
    """
    futures = {executor.submit(grade_student, settings, s): s for s in students}
    results: dict[str, StudentResult] = {}
    for done, future in enumerate(as_completed(futures), start=1):
        student = futures[future]
        try:
            results[student] = future.result()
        except Exception as error:  # a worker itself failed: report, never lose others
            results[student] = StudentResult(student, "error", notes=[f"grader crashed: {error!r}"])
        if progress:
            r = results[student]
            print(f"[{done}/{len(students)}] {student}: {r.status} {r.score:g}/{r.max_score:g} "
                  f"({r.seconds:.1f} s)", flush=True)
    return [results[s] for s in students]


def _nbgrader(settings: GradeSettings, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "nbgrader"
    env = {**os.environ, "PATH": os.pathsep.join([str(exe.parent), os.environ.get("PATH", "")])}
    return subprocess.run([str(exe), *args], cwd=settings.root, env=env,
                          capture_output=True, text=True, check=False)


def summary_table(results: Iterable[StudentResult]) -> str:
    """A plain-text table: student, status, score, notes."""
    rows = [("student", "status", "score", "notes")]
    for r in results:
        score = f"{r.score:g}/{r.max_score:g}" if r.status != "error" else "-"
        rows.append((r.student, r.status, score, "; ".join(r.notes)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3] for row in rows
    )


def _check_assignment(settings: GradeSettings) -> str | None:
    """A message if the gradebook does not know the assignment yet, else None."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(_db_url(settings, _nbgrader_config(settings))) as gradebook:
        try:
            gradebook.find_assignment(settings.assignment)
        except MissingEntry:
            return (f"the gradebook has no assignment {settings.assignment!r}: "
                    f"run `make release` (nbgrader generate_assignment) first")
    return None


def main(argv: list[str] | None = None) -> int:
    """The command line: grade, give feedback, export, summarise. Exit 1 if any grading failed."""
    parser = argparse.ArgumentParser(prog="python -m concurrency_lab.grader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="course folder (default: here)")
    parser.add_argument("--assignment", default="day3")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", "1") or 1),
                        help="worker processes (default: $JOBS or 1)")
    parser.add_argument("--force", action="store_true", help="grade everyone, changed or not")
    parser.add_argument("--student", action="append", help="grade only this student (repeatable)")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per cell (default 60)")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address space per kernel process")
    parser.add_argument("--max-pids", type=int, default=512, help="processes+threads per kernel")
    parser.add_argument("--zip-collect", action="store_true",
                        help="first import downloaded/<assignment>/archive/*.zip with nbgrader zip_collect")
    parser.add_argument("--no-feedback", action="store_true", help="skip generate_feedback and export")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    settings = GradeSettings(args.root.resolve(), args.assignment, args.timeout,
                             args.memory_mb * 1024**2, args.max_pids)
    if args.zip_collect:
        done = _nbgrader(settings, "zip_collect", settings.assignment, "--force")
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            return 1
    problem = _check_assignment(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    students = args.student or list_students(settings)
    if not students:
        print(f"nothing to grade: no student folders in {settings.root / 'submitted'}")
        return 0
    todo = [s for s in students if args.force or needs_grading(settings, s)]
    skipped = {s: previous_result(settings, s) for s in students if s not in todo}
    print(f"grading {len(todo)} of {len(students)} submissions of {settings.assignment} "
          f"with {args.jobs} worker(s); {len(skipped)} unchanged", flush=True)
    graded: dict[str, StudentResult] = {}
    if todo:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(args.jobs, len(todo)), mp_context=context) as pool:
            graded = {r.student: r for r in grade_class(settings, todo, pool)}
    results = [graded.get(s) or skipped[s] for s in students]
    if not args.no_feedback:
        for step in (("generate_feedback", settings.assignment, "--force"), ("export",)):
            done = _nbgrader(settings, *step)
            if done.returncode != 0:
                print(f"nbgrader {step[0]} failed:\n{done.stdout}{done.stderr}", file=sys.stderr)
                return 1
    print()
    print(summary_table(results))
    return 1 if any(r.status == "error" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
