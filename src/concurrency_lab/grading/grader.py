"""Grade a whole class with nbgrader, safely and in parallel.

What it adds to ``nbgrader autograde``:

* **Never drops a submission.** Each student's files are staged in
  ``.grader/submitted/`` (:func:`~.staging.stage_submission`): a notebook that
  is not valid JSON, or missing, scores 0 without being run (a submission with
  no notebook at all is graded as the unanswered release copies), a renamed
  notebook is graded under its real name, and the student's own files are
  never touched. A dead or stuck kernel costs one cell:
  :class:`~.resilientexecute.ResilientExecute` restarts it, replays what ran
  before, and carries on; the report names the cell. A notebook whose
  autograde raises (nbgrader then drops the whole submission) is graded as
  unanswered, the others keep their scores, and the report names the notebook
  and the cause.
* **Caps each kernel.** Kernels start through :mod:`.sandbox`: a pids cgroup
  (``max_pids``) or RLIMIT_NPROC, an address-space limit (``memory_bytes``),
  and nbgrader's per-cell timeout (``timeout``). After each student every
  process the kernel left behind is killed: the worker is a child subreaper,
  so even double-forked and new-session children are found; the worker's own
  processes (a Dask worker's) are left alone.
* **Grades in parallel** on any :class:`concurrent.futures.Executor`:
  long-lived worker processes (``--jobs``), or a Dask distributed cluster
  (``--dask``, :mod:`.cluster`) with the gradebook in PostgreSQL (``db_url``).
  The grades are the same as a sequential run.
* **Says what a busy machine could not judge.** A check that times a computation
  passes without judging it when no run got enough of a core
  (:data:`~concurrency_lab.fixtures.NOT_JUDGED`). Each such cell is named in the
  report, and its student is graded once more after the others, one student at a
  time; the report says so if the cell still could not be judged.
* **Re-runs safely.** A student whose submission has not changed since it was
  last graded is skipped (:func:`needs_grading`). State is written atomically
  after each student, so killing a run part-way and running it again finishes
  the job; SQLite's transactions keep ``gradebook.db`` whole.

The command line is in :mod:`.cli`; the settings and their defaults in :mod:`.settings`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .resilientexecute import on_notebook_start
from .sandbox import children_now, kill_strays, setup_worker
from .settings import AUTOGRADE_PREPROCESSORS, EVENTS_ENV, KERNEL_NAME, SANITIZE_PREPROCESSORS, WORK, GradeSettings
from .staging import fingerprint, stage_submission
from .warmkernel import discard as discard_warm_kernel
from .warmkernel import expect as expect_notebooks

__all__ = [
    "Status",
    "StudentResult",
    "check_assignment",
    "failure_cause",
    "grade_class",
    "grade_student",
    "gradebook_url",
    "list_students",
    "nbgrader_config",
    "needs_grading",
    "not_judged",
    "previous_result",
    "run_nbgrader",
    "summary_table",
]

#: How a submission was graded this run: now, earlier (unchanged since), or not at all.
Status = Literal["graded", "skipped", "error"]


@dataclass
class StudentResult:
    """How one student's submission was graded.

    Attributes:
        student: the student id (their folder in ``submitted/``).
        status: graded now, skipped (unchanged since it was graded), or error.
        score: points earned.
        max_score: points available.
        seconds: wall-clock time spent grading the submission.
        notes: what the report says about it (renamed notebooks, dead kernels, ...).
        worker: the process that graded it, ``host:pid`` ("" if none did).
        not_judged: the test cells ("notebook: grade_id") that passed without judging a
            computation, the machine being too busy to time it.
    """

    student: str
    status: Status
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    worker: str = ""
    not_judged: list[str] = field(default_factory=list)


# One student at a time per worker process: the events file and nbgrader's
# NBGRADER_EXECUTION are process-wide (a Dask worker may run several threads).
_ONE_AT_A_TIME = threading.Lock()


def nbgrader_config(settings: GradeSettings) -> Any:
    """The course's ``nbgrader_config.py``, with the grader's staging folder, kernel and timeout.

    Returns:
        A traitlets ``Config``.
    """
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (settings.root / "nbgrader_config.py").exists():
        config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(settings.root)).load_config())
    overrides = Config()
    overrides.CourseDirectory.root = str(settings.root)
    overrides.CourseDirectory.submitted_directory = f"{WORK}/submitted"
    overrides.Autograde.autograde_preprocessors = list(AUTOGRADE_PREPROCESSORS)
    overrides.Autograde.sanitize_preprocessors = list(SANITIZE_PREPROCESSORS)
    overrides.Execute.timeout = settings.timeout
    overrides.Execute.kernel_name = KERNEL_NAME
    if settings.db_url:
        overrides.CourseDirectory.db_url = settings.db_url
    config.merge(overrides)
    return config


def _state_path(settings: GradeSettings, student: str) -> Path:
    return settings.root / WORK / "state" / settings.assignment / f"{student}.json"


def gradebook_url(settings: GradeSettings, config: Any) -> str:
    """The gradebook the nbgrader ``config`` names, by default the course's SQLite file."""
    return config.CourseDirectory.get("db_url") or f"sqlite:///{settings.root / 'gradebook.db'}"


def _scores(settings: GradeSettings, student: str, config: Any) -> tuple[float, float]:
    from nbgrader.api import Gradebook

    with Gradebook(gradebook_url(settings, config)) as gradebook:
        submission = gradebook.find_submission(settings.assignment, student)
        return float(submission.score), float(submission.max_score)


def grade_student(settings: GradeSettings, student: str) -> StudentResult:
    """Stage, autograde and clean up after one student (runs in a worker process)."""
    with _ONE_AT_A_TIME:
        return _grade_student(settings, student)


def _grade_student(settings: GradeSettings, student: str) -> StudentResult:
    from nbgrader.apps import NbGraderAPI

    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    setup_worker(settings)
    before = children_now()
    notes = stage_submission(settings, student)
    events = settings.root / WORK / "events" / f"{student}.jsonl"
    events.parent.mkdir(parents=True, exist_ok=True)
    events.unlink(missing_ok=True)
    os.environ[EVENTS_ENV] = str(events)
    config = nbgrader_config(settings)
    api = NbGraderAPI(config=config)
    # Each notebook's kernel starts while the one before runs (.warmkernel); none outlives the student.
    staged = settings.root / WORK / "submitted" / student / settings.assignment
    autograded = settings.root / "autograded" / student / settings.assignment
    expect_notebooks(autograded, [path.stem for path in staged.glob("*.ipynb")] if settings.overlap else [])
    ahead = None
    if settings.feedback and settings.overlap:  # each notebook's feedback page is made while the next one runs
        from .feedback import FeedbackAhead

        ahead = FeedbackAhead(settings, student, config)
        on_notebook_start(ahead.notebook_started)
    try:
        outcome = api.autograde(settings.assignment, student, force=True, create=True)
        in_one_run = bool(outcome.get("success"))
        on_notebook_start(None)
        if not in_one_run:
            # nbgrader drops the whole submission when one notebook raises: grade them one by one.
            outcome, broken = _autograde_each_notebook(settings, student)
            notes += [f"{name}: autograde failed ({cause}); graded as unanswered: 0 points" for name, cause in broken]
    except BaseException:
        if ahead is not None:
            ahead.abandon()
        raise
    finally:
        on_notebook_start(None)
        expect_notebooks(autograded, [])
        discard_warm_kernel()
    killed = kill_strays(before)
    if events.exists():
        for line in events.read_text().splitlines():
            event = json.loads(line)
            cell = event.get("cell")
            where = event.get("grade_id") or ("start-up" if cell is None else f"cell {cell}")
            notes.append(f"{event.get('notebook')}: {where}: {event.get('reason')}")
    if killed:
        listed = ", ".join(killed[:3]) + (f" and {len(killed) - 3} more" if len(killed) > 3 else "")
        notes.append(f"killed {len(killed)} process(es) left behind: {listed}")
    if not outcome.get("success"):
        if ahead is not None:
            ahead.abandon()
        notes.append("nbgrader failed: " + failure_cause(outcome))
        return StudentResult(student, "error", seconds=time.perf_counter() - start, notes=notes, worker=worker)
    score, max_score = _scores(settings, student, config)
    if ahead is not None:
        notes += ahead.finish(graded_in_one_run=in_one_run)
    elif settings.feedback:
        from .feedback import write_feedback

        notes += write_feedback(settings, student, config)
    unjudged = not_judged(autograded)
    notes += [f"{cell}: not judged (no run of the computation got 70 % of a core)" for cell in unjudged]
    result = StudentResult(student, "graded", score, max_score, time.perf_counter() - start, notes, worker, unjudged)
    record = {
        "fingerprint": fingerprint(settings.root / "submitted" / student / settings.assignment),
        "result": asdict(result),
    }
    _write_state(_state_path(settings, student), record)
    return result


def _write_state(state: Path, record: dict[str, Any]) -> None:
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp = state.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, state)  # atomic: a killed run leaves the old state or the new one


def _restate(settings: GradeSettings, student: str, result: StudentResult) -> None:
    """Store ``result`` (with the notes this run added) as the student's, keeping the graded fingerprint."""
    state = _state_path(settings, student)
    try:
        record = json.loads(state.read_text())
    except (OSError, ValueError):  # nothing stored: the next run grades the student anyway
        return
    record["result"] = asdict(result)
    _write_state(state, record)


def not_judged(autograded: Path) -> list[str]:
    """The test cells of the graded notebooks in ``autograded`` whose output says they judged nothing.

    Returns:
        "notebook: grade_id" for each test cell that printed :data:`~concurrency_lab.fixtures.NOT_JUDGED`.
    """
    import nbformat
    from nbgrader.utils import is_grade, is_solution

    from concurrency_lab.fixtures import NOT_JUDGED

    found = []
    for path in sorted(autograded.glob("*.ipynb")):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # an unreadable notebook was reported when it was graded
            continue
        for cell in nb.cells:
            if not is_grade(cell) or is_solution(cell):  # test cells only: an answer may print anything
                continue
            printed = "".join(
                out.get("text", "") for out in cell.get("outputs", []) if out.get("output_type") == "stream"
            )
            if NOT_JUDGED in printed:
                found.append(f"{path.stem}: {cell.metadata['nbgrader']['grade_id']}")
    return found


def failure_cause(outcome: dict[str, Any]) -> str:
    """The exception that made an nbgrader run fail, from its log: "ValueError: ...", at most 160 characters."""
    lines = [line.strip() for line in f"{outcome.get('log') or ''}\n{outcome.get('error') or ''}".splitlines()]
    causes = [
        line
        for line in lines
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", line) and "NbGraderException" not in line
    ]
    cause = causes[-1] if causes else next((line for line in reversed(lines) if line), "no log")
    return cause if len(cause) <= 160 else cause[:157] + "..."


def _autograde_each_notebook(settings: GradeSettings, student: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Autograde each staged notebook on its own; one that still fails is graded as unanswered.

    Returns:
        The outcome (a success unless even an unanswered release copy could not
        be graded), and (notebook, cause) for each notebook that failed.
    """
    from nbgrader.apps import NbGraderAPI

    staged = settings.root / WORK / "submitted" / student / settings.assignment
    release = settings.root / "release" / settings.assignment
    outcome: dict[str, Any] = {"success": True}
    broken = []
    for path in sorted(staged.glob("*.ipynb")):
        config = nbgrader_config(settings)
        config.CourseDirectory.notebook_id = path.stem
        done = NbGraderAPI(config=config).autograde(settings.assignment, student, force=True, create=True)
        if done.get("success"):
            continue
        broken.append((path.name, failure_cause(done)))
        if (release / path.name).is_file():
            shutil.copy(release / path.name, path)
            done = NbGraderAPI(config=config).autograde(settings.assignment, student, force=True, create=True)
        if not done.get("success"):
            outcome = done
    return outcome, broken


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
    results = _grade_all(settings, students, executor, progress)
    # A cell a busy machine could not judge: grade its student once more, now that the others are
    # done, one student at a time, so that they do not load each other.
    again = [s for s in students if results[s].status == "graded" and results[s].not_judged]
    if again and progress:
        print(f"grading {len(again)} student(s) again, one at a time: cells not judged on a busy machine", flush=True)
    for student in again:
        result = _grade_all(settings, [student], executor, progress)[student]
        if result.status == "error":  # the scores of the first grading stay; the next run grades it again
            _state_path(settings, student).unlink(missing_ok=True)
            results[student].notes.append(f"grading again failed ({'; '.join(result.notes)}): the next run grades it")
            continue
        result.notes.insert(0, f"graded again: not judged the first time: {', '.join(results[student].not_judged)}")
        _restate(settings, student, result)
        results[student] = result
    return [results[s] for s in students]


def _grade_all(
    settings: GradeSettings, students: Sequence[str], executor: Executor, progress: bool
) -> dict[str, StudentResult]:
    futures = {}
    results: dict[str, StudentResult] = {}
    for student in students:
        try:
            futures[executor.submit(grade_student, settings, student)] = student
        except Exception as error:  # a pool a dead worker broke: report, never lose the others
            results[student] = StudentResult(student, "error", notes=[f"grader crashed: {error!r}"])
    for done, future in enumerate(as_completed(futures), start=1):
        student = futures[future]
        try:
            results[student] = future.result()
        except Exception as error:  # a worker itself failed: report, never lose others
            results[student] = StudentResult(student, "error", notes=[f"grader crashed: {error!r}"])
        if progress:
            r = results[student]
            print(
                f"[{done}/{len(students)}] {student}: {r.status} {r.score:g}/{r.max_score:g} ({r.seconds:.1f} s)",
                flush=True,
            )
    return results


def run_nbgrader(settings: GradeSettings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run this environment's ``nbgrader`` command in the course folder."""
    exe = Path(sys.executable).parent / "nbgrader"
    env = {**os.environ, "PATH": os.pathsep.join([str(exe.parent), os.environ.get("PATH", "")])}
    return subprocess.run([str(exe), *args], cwd=settings.root, env=env, capture_output=True, text=True, check=False)


def summary_table(results: Iterable[StudentResult]) -> str:
    """A plain-text table: student, status, score, notes."""
    rows = [("student", "status", "score", "notes")]
    for r in results:
        score = f"{r.score:g}/{r.max_score:g}" if r.status != "error" else "-"
        rows.append((r.student, r.status, score, "; ".join(r.notes)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3] for row in rows)


def check_assignment(settings: GradeSettings) -> str | None:
    """A message if the gradebook does not know the assignment yet, else None."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(gradebook_url(settings, nbgrader_config(settings))) as gradebook:
        try:
            gradebook.find_assignment(settings.assignment)
        except MissingEntry:
            return (
                f"the gradebook has no assignment {settings.assignment!r}: "
                f"run `make release` (nbgrader generate_assignment) first"
            )
    return None
