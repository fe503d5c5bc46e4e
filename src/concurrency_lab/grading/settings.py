"""Every grading default, name and list, in one place.

The command line (:mod:`.cli`) takes its defaults from :class:`GradeSettings`;
``nbgrader_config.py`` and the grader share :data:`AUTOGRADE_PREPROCESSORS` and
:data:`RUNTIME_FILES`; the grader, the kernel sandbox and the executor share the
environment variable names below.

This module imports nothing heavy, and nothing else of the package: the kernel
launcher (:mod:`.sandbox`) reads it before every grading kernel starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AUTOGRADE_PREPROCESSORS",
    "CGROUP_PREFIX",
    "EVENTS_ENV",
    "FEEDBACK_ZIPS",
    "KERNEL_ENV",
    "KERNEL_MARKER_ENV",
    "KERNEL_NAME",
    "MAX_PROCS_ENV",
    "MEMORY_ENV",
    "MIB",
    "PIDS_CGROUP_ENV",
    "RUNTIME_FILES",
    "SANITIZE_PREPROCESSORS",
    "USER_PROCS_ENV",
    "WARM_CGROUP_ENV",
    "WARM_SUFFIX",
    "WORK",
    "GradeSettings",
    "default",
    "help_text",
]

MIB = 1024**2

# -- environment variables: the grader sets them, the sandbox and the executor read them.

#: The pids cgroup (a folder) that a grading kernel joins; the executor reads its ``pids.events``.
PIDS_CGROUP_ENV = "CONCURRENCY_LAB_PIDS_CGROUP"
#: A warm kernel (:mod:`.warmkernel`) waits in this pids cgroup instead of :data:`PIDS_CGROUP_ENV`'s
#: and joins that one when taken; the sandbox removes the variable before the kernel starts.
WARM_CGROUP_ENV = "CONCURRENCY_LAB_WARM_CGROUP"
#: Address-space limit per kernel process, in bytes (RLIMIT_AS).
MEMORY_ENV = "CONCURRENCY_LAB_MEMORY_BYTES"
#: Process limit (RLIMIT_NPROC) where no pids cgroup could be made and the grader is not root. The
#: kernel counts it in a user namespace of its own, so the cap holds that kernel's processes only.
MAX_PROCS_ENV = "CONCURRENCY_LAB_MAX_PROCS"
#: The processes the grader's user ran when the worker started: added to the limit where a kernel
#: cannot have a user namespace of its own (RLIMIT_NPROC then counts all of the user's processes).
USER_PROCS_ENV = "CONCURRENCY_LAB_USER_PROCS"
#: A file that :class:`~.resilientexecute.ResilientExecute` appends one JSON line to per kernel event.
EVENTS_ENV = "CONCURRENCY_LAB_GRADER_EVENTS"
#: Set to "1" in every grading kernel's environment (by the grader's kernelspec), and so
#: inherited by every process a kernel starts: the clean-up after a student kills those.
KERNEL_MARKER_ENV = "CONCURRENCY_LAB_GRADED_KERNEL"
#: What a grading kernel's environment sets besides the marker (the grader's kernelspec, the
#: profile and the judgement tests use it): matplotlib's Agg backend, so that a chart is drawn
#: into no PNG that nobody grades (the inline backend renders every figure; Agg renders none
#: until asked to save one). Figures and their data are made exactly as in JupyterLab.
KERNEL_ENV: dict[str, str] = {"MPLBACKEND": "agg"}

# -- names on disk.

#: The grader's folder in the course root: staged submissions, kernelspec, state, events.
WORK = ".grader"
#: Each student's feedback pages zipped, for an LMS: ``<this folder>/<assignment>/<student>.zip``.
FEEDBACK_ZIPS = "feedback_zips"
#: The kernelspec the grader's kernels start from (in ``.grader/kernels/``).
KERNEL_NAME = "concurrency-lab-grader"
#: Each grading worker's pids cgroup is this prefix followed by the worker's PID; its warm kernel
#: waits in a second one, the same name followed by :data:`WARM_SUFFIX`.
CGROUP_PREFIX = "concurrency-lab-grader-"
WARM_SUFFIX = "-warm"

#: The preprocessors ``nbgrader autograde`` runs, in order: nbgrader's own list, but
#: with an executor that survives, so a dead or stuck kernel costs the student that
#: cell, not the whole submission. Dotted names (nbconvert imports them), so that
#: this module stays light.
AUTOGRADE_PREPROCESSORS: tuple[str, ...] = (
    "concurrency_lab.grading.resilientexecute.ResilientExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
)

#: The preprocessors ``nbgrader autograde`` runs first, to make a submission gradable:
#: nbgrader's own list, but with :class:`~.restorecells.RestoreCells` for
#: ``OverwriteCells``, so deleted test cells and read-only cells go back where they
#: sat (nbgrader's own raises ``KeyError`` for a test cell after a read-only cell).
SANITIZE_PREPROCESSORS: tuple[str, ...] = (
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "concurrency_lab.grading.restorecells.RestoreCells",
    "nbgrader.preprocessors.CheckCellMetadata",
)

#: Files and folders the notebooks write next to themselves while they run
#: (``%%writefile`` modules, a generated corpus). They are not part of the
#: assignment: ``CourseDirectory.ignore`` skips them, and ``.gitignore`` must
#: cover them (``tests/repo/test_layout.py`` checks it).
RUNTIME_FILES: tuple[str, ...] = (
    "primes_worker.py",
    "square_worker.py",
    "queue_demo.py",
    "queue_worker.py",
    "corpus_analysis.py",
    "corpus",
)


@dataclass(frozen=True)
class GradeSettings:
    """What to grade and how hard to cap it.

    Each field's ``help`` (in its metadata) says what it means; the command
    line shows it, with the field's default.
    """

    root: Path = field(metadata={"help": "the course folder (holds nbgrader_config.py)"})
    assignment: str = field(default="day3", metadata={"help": "the assignment id"})
    timeout: int = field(default=60, metadata={"help": "seconds a cell may run before it is interrupted"})
    memory_bytes: int = field(
        default=4096 * MIB, metadata={"help": "address-space limit per kernel process, in bytes (0: none)"}
    )
    max_pids: int = field(default=512, metadata={"help": "processes and threads a kernel may have in all (0: none)"})
    feedback: bool = field(
        default=True,
        metadata={"help": "write each graded student's feedback pages and their zip (feedback_zips/), then grades.csv"},
    )
    overlap: bool = field(
        default=True,
        metadata={
            "help": "start the next notebook's kernel and make the last one's feedback page while a notebook runs "
            "(saves waiting where a core is free)"
        },
    )
    db_url: str = field(
        default="",
        metadata={
            "help": "the gradebook's SQLAlchemy URL, e.g. postgresql+psycopg2://user@host/db "
            "(default: CourseDirectory.db_url in nbgrader_config.py, else gradebook.db in the course folder)"
        },
    )


def _field(name: str) -> dataclasses.Field[Any]:
    for candidate in dataclasses.fields(GradeSettings):
        if candidate.name == name:
            return candidate
    raise KeyError(f"GradeSettings has no field {name!r}")


def default(name: str) -> Any:
    """The default of a :class:`GradeSettings` field.

    Raises:
        KeyError: for an unknown field, or one without a default.
    """
    value = _field(name).default
    if value is dataclasses.MISSING:
        raise KeyError(f"GradeSettings.{name} has no default")
    return value


def help_text(name: str) -> str:
    """The help text of a :class:`GradeSettings` field."""
    return str(_field(name).metadata["help"])
